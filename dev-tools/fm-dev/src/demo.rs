//! `fm-dev demo`: fault-management execution end to end, in one process.
//!
//! A simulated fault-management analysis publishes a stream of sitreps while
//! several executors, one of them deliberately lagging, execute them
//! concurrently against one database, and an operator deletes some of the
//! resources they create. At the end the executors converge, the demo
//! prints what each did, and it checks, reading the database, that the
//! outcome is the one docs/design.md promises: everything the current sitrep
//! requests exists (or was deleted by an operator), nothing an operator
//! deleted came back, the tombstones the current sitrep no longer requests
//! were hard-deleted by a sweep while those it still requests remain, and
//! no executor reported an error.
//!
//! [`run_demo`] goes through these phases:
//!
//! 1. **Database.** An embedded PostgreSQL in a temporary directory (with
//!    durability off: the data is thrown away), or an existing database at
//!    the current schema version ([`DemoConfig::db_url`]).
//! 2. **First sitrep.** The analysis (`analysis`) publishes its first
//!    sitrep before any executor starts, and the demo waits until every
//!    executor has loaded a sitrep, so that even the lagging executor starts
//!    from one and has something to be late about.
//! 3. **Executors** (`executor`). Each has its own [`DataStore`], its own
//!    [`ExecutorUuid`](nexus_fm_types::ExecutorUuid) and a [`Driver`]
//!    running the three tasks wired by [`register_all`]. The listening
//!    executors' loaders LISTEN for publishes; the lagging executor's loader
//!    only polls, every [`DemoConfig::lag`], so its rendezvous often holds an
//!    outdated sitrep and reports it stale (which in turn wakes its loader).
//! 4. **The stream.** The analysis publishes the remaining sitreps, one every
//!    [`DemoConfig::interval`]. After each publish an operator deletes up to
//!    [`DemoConfig::deletions_per_sitrep`] live resources among the new
//!    sitrep's requests (`operator`). An operator deletes what it sees, so
//!    it first waits (at most [`PATIENCE`]) until some listening executor
//!    has executed the new sitrep: its requests then exist. Requests the
//!    analysis later withdraws (or drops with their closed case) leave
//!    tombstones that only the sweeps can collect.
//! 5. **Convergence**, after the last deletion. The listening executors'
//!    loader and rendezvous are activated (and awaited) a few times, so
//!    their sweeps run with the current sitrep and collect every tombstone
//!    it does not request; the lagging executor's rendezvous runs once more
//!    with whatever sitrep it holds; one pruner makes a last pass.
//! 6. **Shutdown** of every driver (no activation is cut short), then
//!    **verification** (`verify`) and the [`DemoReport`].
//!
//! # Reproducibility
//!
//! The seed fixes the analysis's decisions: on a fresh database the same
//! seed opens and closes the same cases and adds and withdraws the same
//! requests, in the same order. Ids are fresh random UUIDs whatever the seed
//! (the builder makes them), and what the executors do in between depends
//! on timing. The operator's draws come from an RNG derived from the seed
//! too, but what it can pick from (the live requests) is random ids.
//!
//! [`DataStore`]: fm_db_queries::DataStore
//! [`Driver`]: nexus_fm::driver::Driver
//! [`register_all`]: nexus_fm::tasks::register_all

mod analysis;
mod executor;
mod operator;
mod progress;
mod report;
mod verify;

pub use operator::DeletedResource;
pub use progress::ProgressMode;
pub use report::{DemoReport, ExecutorSummary, ResourceRows, Tally};
pub use verify::{RequestCheck, SitrepShape, Verification};

use anyhow::{Context, bail};
use fm_db_queries::datastore::PoolConfig;
use fm_db_queries::datastore::sitrep::prune::MIN_KEEP;
use fm_db_queries::{DataStore, OpContext, Role};
use nexus_fm::embedded::{EmbeddedDatabase, EmbeddedOptions};
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::watch;

use analysis::{Analysis, AnalysisLimits};
use executor::DemoExecutor;
use nexus_fm_types::SitrepVersion;
use operator::Operator;
use progress::{LiveCounts, Progress};

/// The fewest executors a demo runs: at least one listening and one lagging.
pub const MIN_EXECUTORS: usize = 2;

/// The most executors a demo runs. Each holds a pool of up to 4 connections
/// plus a LISTEN connection, so this stays well under PostgreSQL's default
/// limit of 100 connections.
pub const MAX_EXECUTORS: usize = 16;

/// How long the demo waits for one activation it asked for before it gives
/// up with an error. Activations take milliseconds; this only bounds a hang.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How many times the listening executors' loader and rendezvous are
/// activated, one after the other, once the last sitrep is published.
pub const CONVERGENCE_ROUNDS: usize = 2;

/// Archived (pruned) sitreps each executor's pruner keeps.
pub const ARCHIVE_KEEP: u32 = 100;

/// Resources the operator deletes after each publish unless told
/// otherwise.
pub const DEFAULT_DELETIONS_PER_SITREP: usize = 1;

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoConfig {
    /// An existing database at the current schema version, or `None` to
    /// start an embedded PostgreSQL in a temporary directory (stopped, and
    /// its data removed, at the end).
    pub db_url: Option<String>,
    /// Executors run concurrently, from [`MIN_EXECUTORS`] to
    /// [`MAX_EXECUTORS`]; the last one lags.
    pub executors: usize,
    /// The lagging executor's loader period: it only polls, so it learns of
    /// a new sitrep this late, or when its rendezvous reports stale.
    pub lag: Duration,
    /// Every executor's rendezvous period (besides the wake-ups by its
    /// loader).
    pub rendezvous_period: Duration,
    /// The listening executors' loader period: a fallback poll, since they
    /// hear of publishes through LISTEN/NOTIFY.
    pub listening_loader_period: Duration,
    /// Every executor's pruner period.
    pub pruner_period: Duration,
    /// History entries the pruners keep (at least [`MIN_KEEP`]).
    pub keep_sitreps: u32,
    /// Sitreps the analysis publishes (at least 1).
    pub sitreps: usize,
    /// The pause before each publish after the first.
    pub interval: Duration,
    /// The seed of the analysis's decisions.
    pub seed: u64,
    /// Most cases open at once.
    pub max_open_cases: usize,
    /// Most requests (alerts and support bundles together) one open case
    /// holds at once.
    pub max_requests_per_case: usize,
    /// Live resources, among the current sitrep's requests, that an
    /// operator deletes after each publish (fewer if fewer are live; 0: no
    /// deletions, and no waiting for an executor before them).
    pub deletions_per_sitrep: usize,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// On the temporary embedded database: after the demo, print the
    /// summary and the `fmdb` command line that opens the database, and keep
    /// it running until interrupted (Ctrl-C) instead of removing it at once.
    pub keep: bool,
}

/// The command line that opens `fmdb` on the database at `url`.
pub fn fmdb_command_line(url: &str) -> String {
    format!("cargo run -p fmdb -- --db-url '{url}' executors")
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            db_url: None,
            executors: MIN_EXECUTORS,
            lag: Duration::from_millis(1500),
            rendezvous_period: Duration::from_millis(400),
            listening_loader_period: Duration::from_secs(1),
            pruner_period: Duration::from_secs(1),
            keep_sitreps: 10,
            sitreps: 40,
            interval: Duration::from_millis(150),
            seed: 1,
            max_open_cases: 5,
            max_requests_per_case: 4,
            deletions_per_sitrep: DEFAULT_DELETIONS_PER_SITREP,
            progress: ProgressMode::Auto,
            keep: false,
        }
    }
}

impl DemoConfig {
    /// Checks that the settings make a demo.
    ///
    /// # Errors
    ///
    /// A message naming the setting that is out of range.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.executors < MIN_EXECUTORS {
            bail!(
                "the demo needs at least {MIN_EXECUTORS} executors (one listening, one lagging), \
                 asked for {}",
                self.executors
            );
        }
        if self.executors > MAX_EXECUTORS {
            bail!(
                "the demo runs at most {MAX_EXECUTORS} executors (each holds up to 5 database \
                 connections), asked for {}",
                self.executors
            );
        }
        for (name, period) in [
            ("the lag", self.lag),
            ("the rendezvous period", self.rendezvous_period),
            ("the listening loaders' period", self.listening_loader_period),
            ("the pruner period", self.pruner_period),
        ] {
            if period.is_zero() {
                bail!("{name} must be longer than zero");
            }
        }
        if self.keep_sitreps < MIN_KEEP {
            bail!(
                "the pruners must keep at least {MIN_KEEP} sitreps, asked to keep {}",
                self.keep_sitreps
            );
        }
        if self.sitreps == 0 {
            bail!("the demo must publish at least one sitrep");
        }
        if self.max_open_cases == 0 {
            bail!("at least one case must be allowed to be open");
        }
        if self.max_requests_per_case == 0 {
            bail!("a case must be allowed at least one request");
        }
        Ok(())
    }
}

/// The demo stopped because it was interrupted (Ctrl-C); everything it
/// started was stopped cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted; the executors and the database were stopped cleanly")
    }
}

impl std::error::Error for Interrupted {}

/// Runs the demo described by `config` and reports what happened.
///
/// When `interrupt` completes (e.g. on Ctrl-C) the demo stops publishing,
/// shuts its executors down, stops the embedded database it started, and
/// returns an [`Interrupted`] error.
///
/// A failed verification is not an error: it is in the report
/// ([`Verification::passed`]).
///
/// # Errors
///
/// A bad configuration, a database that cannot be started or reached (or is
/// at another schema version), a publish that fails for another reason than
/// losing a race, an activation that never completes within [`PATIENCE`],
/// an interruption; each with its context.
pub async fn run_demo<F>(
    log: &slog::Logger,
    config: &DemoConfig,
    interrupt: F,
) -> anyhow::Result<DemoReport>
where
    F: Future<Output = ()> + Send + 'static,
{
    config.validate()?;
    let clock = Instant::now();
    let interrupt = Interrupt::spawn(interrupt);
    let log = log.clone();
    let progress = Progress::new(config.progress, config.sitreps);

    let (database, url, description) = match &config.db_url {
        Some(url) => (None, url.clone(), format!("existing database {url}")),
        None => {
            progress.note("starting an embedded PostgreSQL in a temporary directory");
            let options =
                EmbeddedOptions { data_dir: None, port: None, tcp: false, fast_and_unsafe: true };
            // If interrupted here, the server being started is stopped as
            // soon as its start finishes (dropping it stops it).
            let database = interrupt
                .guard(EmbeddedDatabase::start(&log, options))
                .await?
                .context("starting the embedded PostgreSQL")?;
            let url = database.url().to_string();
            let description = format!("embedded PostgreSQL (temporary) {url}");
            (Some(database), url, description)
        }
    };
    progress.note(&format!("database: {description}"));

    let result = run_on(&log, config, &url, description, &interrupt, &progress).await;
    progress.finish();
    if let (true, Some(_), Ok(report)) = (config.keep, &database, &result) {
        // The caller prints the summary only when the demo returns, after
        // the database is gone: print it now, with how to inspect it.
        let mut shown = report.clone();
        shown.elapsed = clock.elapsed();
        println!("{shown}");
        println!("the database stays up until Ctrl-C; inspect it with fmdb:");
        println!("  {}", fmdb_command_line(&url));
        let _ = interrupt.guard(std::future::pending::<()>()).await;
    }

    let stopped = match database {
        None => Ok(()),
        Some(database) => {
            slog::info!(log, "stopping the embedded PostgreSQL");
            tokio::task::spawn_blocking(move || database.stop())
                .await
                .context("stopping the embedded PostgreSQL")?
                .context("stopping the embedded PostgreSQL")
        }
    };
    match (result, stopped) {
        (Ok(mut report), Ok(())) => {
            report.elapsed = clock.elapsed();
            Ok(report)
        }
        (Ok(_), Err(error)) | (Err(error), Ok(())) => Err(error),
        (Err(error), Err(stop_error)) => {
            slog::error!(log, "stopping the embedded PostgreSQL failed too";
                "error" => format!("{stop_error:#}"));
            Err(error)
        }
    }
}

/// The demo proper, on the database at `url`.
async fn run_on(
    log: &slog::Logger,
    config: &DemoConfig,
    url: &str,
    description: String,
    interrupt: &Interrupt,
    progress: &Progress,
) -> anyhow::Result<DemoReport> {
    let datastore = interrupt
        .guard(DataStore::new(log, url, PoolConfig { max_size: 2, ..PoolConfig::default() }))
        .await?
        .with_context(|| format!("opening the database {url}"))?;
    let limits = AnalysisLimits {
        max_open_cases: config.max_open_cases,
        max_requests_per_case: config.max_requests_per_case,
    };
    let mut analysis =
        interrupt.guard(Analysis::start(log, datastore.clone(), config.seed, limits)).await??;

    // Phase 2: the first sitrep, before any executor runs.
    let first = interrupt.guard(analysis.publish_next()).await??;
    progress.published(1, first.version, &LiveCounts::default());

    // Phase 3: the executors.
    let mut executors = Vec::with_capacity(config.executors);
    for index in 0..config.executors {
        let lagging = index + 1 == config.executors;
        match interrupt.guard(DemoExecutor::start(log, url, index + 1, lagging, config)).await {
            Ok(Ok(executor)) => {
                progress.note(&executor.describe());
                executors.push(executor);
            }
            Ok(Err(error)) => {
                shut_down(executors).await;
                return Err(error);
            }
            Err(interrupted) => {
                shut_down(executors).await;
                return Err(interrupted.into());
            }
        }
    }

    // Phases 4 and 5; whatever happens, phase 6 shuts the executors down.
    let mut deleted = Vec::new();
    let outcome = interrupt
        .guard(publish_and_converge(
            log,
            config,
            &datastore,
            &mut analysis,
            &executors,
            &mut deleted,
            progress,
        ))
        .await;
    let executor_ids: Vec<_> = executors.iter().map(|e| (e.name().to_string(), e.id())).collect();
    let summaries = shut_down(executors).await;
    outcome??;
    slog::info!(log, "executors converged and stopped");

    // Phase 6: verification, reading the database.
    let viewer = OpContext::new(log.clone(), "fm-dev demo verification", Role::Viewer);
    let verification = verify::verify(&datastore, &viewer, &summaries, &executor_ids, &deleted)
        .await
        .context("verifying the outcome")?;
    let rows = verify::resource_rows(&datastore, &viewer, analysis.requested_ever())
        .await
        .context("counting the demo's resource rows")?;
    if verification.passed() {
        slog::info!(log, "verification passed");
    } else {
        slog::warn!(log, "verification failed"; "details" => verification.details().join("; "));
    }
    let sitreps_pruned = summaries.iter().map(|s| s.tally.sitreps_pruned).sum();
    Ok(DemoReport {
        seed: config.seed,
        database: description,
        executors: summaries,
        sitreps_published: analysis.published(),
        publish_races_lost: analysis.races_lost(),
        sitreps_pruned,
        keep_sitreps: config.keep_sitreps,
        operator_deletions: deleted,
        deletions_per_sitrep: config.deletions_per_sitrep,
        rows,
        verification,
        elapsed: Duration::ZERO,
    })
}

/// Phases 4 and 5: the rest of the stream, with operator deletions after
/// each publish, then convergence (after the last deletion, so that the
/// listening executors' sweeps run with the current sitrep once every
/// deletion is made).
async fn publish_and_converge(
    log: &slog::Logger,
    config: &DemoConfig,
    datastore: &DataStore,
    analysis: &mut Analysis,
    executors: &[DemoExecutor],
    deleted: &mut Vec<DeletedResource>,
    progress: &Progress,
) -> anyhow::Result<()> {
    // Every executor holds a sitrep before the stream goes on.
    for executor in executors {
        executor.wait_for_first_load().await?;
    }
    let listening: Vec<&DemoExecutor> = executors.iter().filter(|e| !e.is_lagging()).collect();
    let opctx = OpContext::new(log.clone(), "fm-dev demo operator", Role::Operator);
    let mut operator = Operator::new(opctx, config.seed, config.deletions_per_sitrep);
    for done in 2..=config.sitreps {
        tokio::time::sleep(config.interval).await;
        let published = analysis.publish_next().await?;
        if operator.deletes() {
            wait_until_executed(&listening, published.version).await?;
            let current = analysis.current().context("the analysis holds no sitrep")?;
            deleted.extend(operator.delete_some(datastore, current).await?);
        }
        let counts = LiveCounts::of(executors, analysis.races_lost(), deleted.len());
        progress.published(done, published.version, &counts);
    }

    for _ in 0..CONVERGENCE_ROUNDS {
        for executor in &listening {
            executor.load_and_execute().await?;
        }
    }
    // The lagging executor executes whatever it holds once more: with its
    // slow loader that is usually an outdated sitrep, reported stale.
    for executor in executors.iter().filter(|e| e.is_lagging()) {
        executor.execute().await?;
    }
    // A last pruning pass: the history ends at its retention bound.
    if let Some(executor) = listening.first() {
        executor.prune().await?;
    }
    Ok(())
}

/// Waits until one of `executors` has executed sitrep `version` (or a newer
/// one), for at most [`PATIENCE`].
async fn wait_until_executed(
    executors: &[&DemoExecutor],
    version: SitrepVersion,
) -> anyhow::Result<()> {
    if executors.is_empty() {
        bail!("no listening executor to wait for");
    }
    let waits = executors.iter().map(|e| Box::pin(e.wait_until_executed(version)));
    match tokio::time::timeout(PATIENCE, futures::future::select_all(waits)).await {
        Ok((true, _, _)) => Ok(()),
        Ok((false, index, _)) => {
            bail!("{} stopped before it executed sitrep version {version}", executors[index].name())
        }
        Err(_) => bail!(
            "no listening executor executed sitrep version {version} within {} s",
            PATIENCE.as_secs()
        ),
    }
}

/// Shuts every executor's driver down (activations in flight finish
/// first) and reports what each did.
async fn shut_down(executors: Vec<DemoExecutor>) -> Vec<ExecutorSummary> {
    let mut summaries = Vec::with_capacity(executors.len());
    for executor in executors {
        summaries.push(executor.shutdown().await);
    }
    summaries
}

use fm_db_queries::error::error_chain;

/// Completes once the caller's interrupt future has.
#[derive(Debug)]
struct Interrupt {
    fired: watch::Receiver<bool>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Interrupt {
    /// Watches `interrupt` in a task of its own.
    fn spawn<F>(interrupt: F) -> Interrupt
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (sender, fired) = watch::channel(false);
        let watcher = tokio::spawn(async move {
            interrupt.await;
            sender.send_replace(true);
            // Keep the sender, so that receivers see `true` rather than a
            // closed channel.
            std::future::pending::<()>().await;
        });
        Interrupt { fired, watcher }
    }

    /// Runs `future` to completion, unless the interrupt comes first (the
    /// future is then dropped).
    async fn guard<T>(&self, future: impl Future<Output = T>) -> Result<T, Interrupted> {
        let mut fired = self.fired.clone();
        tokio::select! {
            biased;
            // A closed channel cannot happen while `self` lives (the watcher
            // keeps the sender); treat it as "never interrupted".
            Ok(_) = fired.wait_for(|fired| *fired) => Err(Interrupted),
            value = future => Ok(value),
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}
