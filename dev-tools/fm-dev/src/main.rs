//! `fm-dev`: developer commands for fault-management execution.
//!
//! - `fm-dev db-run` runs a PostgreSQL server holding the `fm` database at
//!   the current schema version, prints how to connect, and stops it cleanly
//!   on Ctrl-C or SIGTERM.
//! - `fm-dev sitrep publish FILE` publishes a sitrep written as JSON.
//! - `fm-dev demo` runs fault-management execution end to end: a simulated
//!   analysis publishes sitreps while several executors (one lagging)
//!   execute them, then it verifies the outcome (see `fm_dev::demo`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};
use fm_dev::demo::{
    DemoConfig, Interrupted, MAX_EXECUTORS, MIN_EXECUTORS, ProgressMode, fmdb_command_line,
    run_demo,
};
use nexus_fm::embedded::{DATABASE, EmbeddedDatabase, EmbeddedOptions};
use slog::{Drain, Logger, info};
use tokio::signal::unix::{SignalKind, signal};

/// Developer tools for fault-management execution.
#[derive(Debug, Parser)]
#[command(name = "fm-dev", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run PostgreSQL with the `fm` database at the current schema version,
    /// until Ctrl-C or SIGTERM.
    ///
    /// Without --data-dir the data lives in a temporary directory that is
    /// removed when the server stops. Log messages go to stderr; the
    /// connection URL and a ready-to-paste psql command go to stdout.
    DbRun(DbRunArgs),

    /// Work with sitreps in their JSON form.
    #[command(subcommand)]
    Sitrep(SitrepCommand),

    /// Watch fault-management execution end to end, then verify it.
    ///
    /// A simulated fault-management analysis publishes a stream of sitreps
    /// (cases opening and closing, alert and support-bundle requests added
    /// and withdrawn) while several executors run the sitrep loader,
    /// rendezvous and pruner tasks concurrently in this process, each with
    /// its own database pool and executor id. The last executor lags: its
    /// loader only polls, every --lag-ms, so its rendezvous often holds an
    /// outdated sitrep and reports it stale; the others LISTEN for publishes.
    /// After each publish an operator deletes some of the alerts and bundles
    /// the new sitrep requests (see --deletions-per-sitrep).
    ///
    /// At the end the executors converge and stop, a table shows what each
    /// did, and the demo checks, reading the database, that every alert and
    /// bundle the current sitrep requests exists (or was deleted by an
    /// operator), that nothing an operator deleted came back, that the
    /// executors' sweeps hard-deleted every deleted resource the current
    /// sitrep no longer requests and kept the tombstones it still requests,
    /// and that no executor reported an error. It prints PASS or FAIL and
    /// exits 1 on FAIL.
    ///
    /// Without --db-url it runs on an embedded PostgreSQL in a temporary
    /// directory, stopped and removed at the end (also on Ctrl-C). Progress
    /// and the summary go to stdout, logs to stderr.
    Demo(DemoArgs),
}

/// `fm-dev sitrep ...`.
#[derive(Debug, Subcommand)]
enum SitrepCommand {
    /// Publish the sitrep in FILE (JSON, as described in the README) and
    /// print its id and history version.
    ///
    /// The datastore checks it like any other publish: its parent must be
    /// the current sitrep, its generations must follow its request sets,
    /// and new request ids must never have been used. A malformed file or a
    /// broken rule is reported, the exit status is 1, and nothing is
    /// written.
    Publish {
        /// The sitrep, as JSON.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The database, e.g. the URL `fm-dev db-run` prints.
        #[arg(long, env = "FM_DB_URL", value_name = "URL")]
        db_url: String,
    },
}

/// Options of `db-run`.
#[derive(Debug, Args)]
struct DbRunArgs {
    /// Keep the data in DIR (created if missing) instead of a temporary
    /// directory, and reuse it on the next run: an existing cluster is
    /// started as it is and only pending migrations are applied. When run as
    /// root the directory is handed to the `postgres` OS user, which must be
    /// able to reach it (so not under /root).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The port: it names the Unix socket (which lives in a private
    /// directory, so it cannot clash with another server) and, with --tcp,
    /// is the TCP port.
    #[arg(long, value_name = "N", default_value_t = 5432)]
    port: u16,

    /// Also accept TCP connections on 127.0.0.1:PORT (only the local host;
    /// any local user may connect as the superuser without a password).
    /// Without it the server listens on its private Unix socket only.
    #[arg(long)]
    tcp: bool,
}

/// Options of `demo`.
#[derive(Debug, Args)]
struct DemoArgs {
    /// Run on this existing database (at the current schema version, e.g.
    /// the URL `fm-dev db-run` prints) instead of a temporary embedded
    /// PostgreSQL. The demo adds to its history and continues from its
    /// current sitrep.
    #[arg(long, value_name = "URL")]
    db_url: Option<String>,

    /// Keep the temporary database running after the demo, until Ctrl-C,
    /// and print the fmdb command line that opens it.
    #[arg(long, conflicts_with = "db_url")]
    keep: bool,

    /// Executors to run concurrently (2 to 16); the last one lags.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().executors,
        value_parser = RangedU64ValueParser::<usize>::new()
            .range(MIN_EXECUTORS as u64..=MAX_EXECUTORS as u64))]
    executors: usize,

    /// The lagging executor's loader polls every MS milliseconds (and
    /// whenever its rendezvous finds its sitrep stale); it does not LISTEN.
    #[arg(long, value_name = "MS", default_value_t = millis(DemoConfig::default().lag),
        value_parser = clap::value_parser!(u64).range(1..))]
    lag_ms: u64,

    /// Every executor's rendezvous runs at least every MS milliseconds, and
    /// whenever its loader loads a new sitrep.
    #[arg(long, value_name = "MS",
        default_value_t = millis(DemoConfig::default().rendezvous_period),
        value_parser = clap::value_parser!(u64).range(1..))]
    rendezvous_ms: u64,

    /// Sitreps the simulated analysis publishes.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().sitreps,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    sitreps: usize,

    /// Pause between two publishes, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = millis(DemoConfig::default().interval))]
    interval_ms: u64,

    /// Seed of the analysis's decisions and of the operator's draws (random
    /// if not given; printed either way). On a fresh database a seed
    /// replays the same cases and requests; what the executors do in
    /// between, and so which resources the operator finds to delete,
    /// depends on timing.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Most cases open at once.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().max_open_cases,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    max_open_cases: usize,

    /// Most requests (alerts and support bundles together) one open case
    /// holds at once.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().max_requests_per_case,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    max_requests_per_case: usize,

    /// After each publish, an operator deletes N live alerts or support
    /// bundles among the new sitrep's requests, drawn at random (fewer if
    /// fewer are live), once an executor has created them. Deleting leaves
    /// a tombstone that keeps every executor from creating the resource
    /// again; the sweeps remove it once no sitrep requests it. 0 disables
    /// the deletions.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().deletions_per_sitrep)]
    deletions_per_sitrep: usize,

    /// History entries the executors' pruners keep (at least 2); older
    /// sitreps are archived and deleted while the demo runs.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().keep_sitreps,
        value_parser = clap::value_parser!(u32).range(2..))]
    keep_sitreps: u32,

    /// Log at info level (what every task activation did) instead of warn.
    #[arg(long, short)]
    verbose: bool,
}

/// A duration in whole milliseconds, for option defaults.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The exit status after an interruption by a signal (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo logs at warn unless asked, so that its progress bar stays
    // readable; the other commands log everything.
    let level = match &cli.command {
        Command::Demo(DemoArgs { verbose: false, .. }) => slog::Level::Warning,
        Command::Demo(DemoArgs { verbose: true, .. }) => slog::Level::Info,
        Command::DbRun(_) | Command::Sitrep(_) => slog::Level::Trace,
    };
    let (log, guard) = logger(level);
    let result = match cli.command {
        Command::DbRun(args) => db_run(&log, &args).map(|()| ExitCode::SUCCESS),
        Command::Sitrep(SitrepCommand::Publish { file, db_url }) => {
            sitrep_publish(&log, &db_url, &file).map(|()| ExitCode::SUCCESS)
        }
        Command::Demo(args) => demo(&log, &args),
    };
    // Flush the log before the error, so that the error is the last line.
    drop(log);
    drop(guard);
    match result {
        Ok(code) => code,
        Err(error) if error.downcast_ref::<Interrupted>().is_some() => {
            eprintln!("fm-dev: {error:#}");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Err(error) => {
            eprintln!("fm-dev: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A logger that writes human-readable lines at `level` or above to stderr.
fn logger(level: slog::Level) -> (Logger, slog_async::AsyncGuard) {
    let decorator = slog_term::TermDecorator::new().stderr().build();
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let drain = drain.filter_level(level).fuse();
    let (drain, guard) = slog_async::Async::new(drain).build_with_guard();
    (Logger::root(drain.fuse(), slog::o!("name" => "fm-dev")), guard)
}

/// `fm-dev demo`: runs the demo, prints its summary, and exits 1 if the
/// verification failed.
fn demo(log: &Logger, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let config = DemoConfig {
        db_url: args.db_url.clone(),
        executors: args.executors,
        lag: Duration::from_millis(args.lag_ms),
        rendezvous_period: Duration::from_millis(args.rendezvous_ms),
        sitreps: args.sitreps,
        interval: Duration::from_millis(args.interval_ms),
        seed,
        max_open_cases: args.max_open_cases,
        max_requests_per_case: args.max_requests_per_case,
        deletions_per_sitrep: args.deletions_per_sitrep,
        keep_sitreps: args.keep_sitreps,
        progress: ProgressMode::Auto,
        keep: args.keep,
        ..DemoConfig::default()
    };
    println!(
        "fm-dev demo: {} sitreps, {} executors (the last one lagging), up to {} operator \
         deletion(s) after each publish, seed {seed}",
        config.sitreps, config.executors, config.deletions_per_sitrep
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let result = runtime.block_on(async {
        // Installed before anything starts, so that Ctrl-C and SIGTERM
        // always go through the orderly stop.
        let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        let stop = async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        };
        run_demo(log, &config, stop).await
    });
    // Dropping the runtime waits for a server start cut short by a signal
    // (a blocking task); the server it started is stopped as it is dropped.
    drop(runtime);
    let report = result?;
    if !args.keep {
        println!("{report}");
    }
    match &args.db_url {
        Some(url) => println!("inspect the database with fmdb: {}", fmdb_command_line(url)),
        None if !args.keep => println!(
            "the demo's temporary database is gone; run with --keep to inspect it with fmdb"
        ),
        None => {}
    }
    if report.verification.passed() {
        Ok(ExitCode::SUCCESS)
    } else {
        println!("replay the analysis: fm-dev demo --seed {seed}");
        Ok(ExitCode::FAILURE)
    }
}

/// `fm-dev sitrep publish`.
fn sitrep_publish(log: &Logger, url: &str, file: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let published = runtime.block_on(fm_dev::sitrep::publish_file(log, url, file))?;
    println!("published sitrep {} as version {}", published.sitrep_id, published.version);
    Ok(())
}

/// `fm-dev db-run`.
fn db_run(log: &Logger, args: &DbRunArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.data_dir {
        let reuse = dir.join("PG_VERSION").exists();
        info!(log, "using a persistent data directory";
            "data_dir" => %dir.display(), "existing_cluster" => reuse);
    } else {
        info!(log, "using a temporary data directory (removed on exit)");
    }
    // A persistent data directory may hold data worth keeping, so the test
    // settings that turn durability off are not used here.
    let options = EmbeddedOptions {
        data_dir: args.data_dir.clone(),
        port: Some(args.port),
        tcp: args.tcp,
        fast_and_unsafe: false,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let served = runtime.block_on(serve(log, options));
    // Dropping the runtime waits for a server start cut short by a signal
    // (a blocking task); the server it started is stopped as it is dropped.
    drop(runtime);
    let Some(database) = served? else {
        return Ok(());
    };

    info!(log, "stopping PostgreSQL");
    let data_dir = database.cluster().data_dir().to_path_buf();
    let temporary = database.cluster().is_temporary();
    database.stop().context("stopping PostgreSQL")?;
    if temporary {
        info!(log, "PostgreSQL stopped; temporary data removed");
    } else {
        info!(log, "PostgreSQL stopped; data kept"; "data_dir" => %data_dir.display());
    }
    Ok(())
}

/// Starts the database, prints how to reach it, and waits for a signal.
/// Returns the database to stop, or `None` if a signal arrived during setup.
async fn serve(log: &Logger, options: EmbeddedOptions) -> anyhow::Result<Option<EmbeddedDatabase>> {
    let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;

    // A signal during setup (e.g. a slow migration) stops right away; the
    // migration steps are idempotent, so the next run finishes the job.
    let database = tokio::select! {
        result = EmbeddedDatabase::start(log, options) => result?,
        _ = interrupt.recv() => {
            info!(log, "interrupted during setup (SIGINT)");
            return Ok(None);
        }
        _ = terminate.recv() => {
            info!(log, "interrupted during setup (SIGTERM)");
            return Ok(None);
        }
    };
    let cluster = database.cluster();
    info!(log, "PostgreSQL is ready";
        "pid" => cluster.postmaster_pid(),
        "data_dir" => %cluster.data_dir().display(),
        "socket_dir" => %cluster.socket_dir().display(),
        "server_log" => %cluster.log_path().display());

    let url = database.url();
    let psql = psql_command();
    println!("PostgreSQL is running; the `{DATABASE}` database is ready.");
    println!("URL:  {url}");
    if let Some(tcp_url) = cluster.tcp_url(DATABASE) {
        println!("TCP:  {tcp_url}");
    }
    println!("psql: {psql} '{url}'");
    println!("Press Ctrl-C to stop.");

    let which = tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    info!(log, "received {which}, shutting down");
    Ok(Some(database))
}

/// How to invoke psql: plain `psql` if it is on PATH, else its full path
/// next to the server binaries.
fn psql_command() -> String {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("psql").is_file()));
    let beside_server = fm_dev::find_pg_binaries().ok().and_then(|b| b.psql());
    match beside_server {
        Some(psql) if !on_path => psql.display().to_string(),
        _ => "psql".to_string(),
    }
}
