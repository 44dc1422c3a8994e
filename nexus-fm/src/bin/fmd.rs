//! `fmd`: the fault-management execution daemon. See [`nexus_fm::fmd`].

use anyhow::Context;
use clap::{Parser, ValueEnum};
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use nexus_fm::fmd::{DatabaseChoice, Fmd, FmdConfig, activation_errors, check_config, summarize};
use nexus_fm::tasks::TaskPeriods;
use nexus_fm_types::{ExecutorUuid, SitrepUuid};
use slog::Drain;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Executes the latest fault-management sitrep: creates the alerts and
/// support bundles it requests, never re-creates what an operator deleted,
/// and keeps the sitrep history bounded.
///
/// Without --db-url, fmd starts its own PostgreSQL (the embedded default)
/// from the machine's server binaries, in DATA_DIR/postgres, and applies the
/// schema. Any number of fmd processes may run against one database.
#[derive(Debug, Parser)]
#[command(name = "fmd", version)]
struct Args {
    /// The database (at the current schema version). Without it, fmd runs
    /// on the embedded default.
    #[arg(long, env = "FM_DB_URL", value_name = "URL")]
    db_url: Option<String>,

    /// Where fmd keeps its state: the executor id and, for the embedded
    /// default, the PostgreSQL cluster.
    #[arg(long, value_name = "DIR", default_value = ".fm")]
    data_dir: PathBuf,

    /// This executor's id. Without it, the id remembered in DATA_DIR is
    /// used, or a new one is made and remembered.
    #[arg(long, value_name = "UUID")]
    executor_id: Option<ExecutorUuid>,

    /// Run one activation of each task (loader, rendezvous, pruner), print
    /// a summary and exit; exit status 1 if any reported an error.
    #[arg(long)]
    once: bool,

    /// With --once: execute this committed sitrep instead of the current
    /// one, to reproduce what a lagging executor would do.
    #[arg(long, value_name = "SITREP_ID", requires = "once")]
    sitrep: Option<SitrepUuid>,

    /// How often the loader polls the current sitrep version (it also
    /// listens for publishes on PostgreSQL), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    loader_period: f64,

    /// How often the rendezvous runs even without a new sitrep, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    rendezvous_period: f64,

    /// How often the history pruner runs, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pruner_period: f64,

    /// History entries the pruner keeps (at least 2).
    #[arg(long, value_name = "N", default_value_t = RetentionPolicy::default().keep)]
    keep: u32,

    /// Archived (pruned) sitreps the pruner keeps.
    #[arg(long, value_name = "N", default_value_t = RetentionPolicy::default().archive_keep)]
    archive_keep: u32,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Terminal)]
    log_format: LogFormat,

    /// Least severe log level shown.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    log_level: LogLevel,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Terminal,
    /// One JSON object per line.
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

fn logger(format: LogFormat, level: LogLevel) -> (slog::Logger, slog_async::AsyncGuard) {
    let level = match level {
        LogLevel::Debug => slog::Level::Debug,
        LogLevel::Info => slog::Level::Info,
        LogLevel::Warn => slog::Level::Warning,
        LogLevel::Error => slog::Level::Error,
    };
    let drain: Box<dyn Drain<Ok = (), Err = slog::Never> + Send> = match format {
        LogFormat::Terminal => {
            let decorator = slog_term::TermDecorator::new().stderr().build();
            Box::new(slog_term::FullFormat::new(decorator).build().fuse())
        }
        LogFormat::Json => {
            Box::new(slog_json::Json::new(std::io::stderr()).add_default_keys().build().fuse())
        }
    };
    let drain = drain.filter_level(level).fuse();
    let (drain, guard) = slog_async::Async::new(drain).build_with_guard();
    (slog::Logger::root(drain.fuse(), slog::o!("name" => "fmd")), guard)
}

fn period(what: &str, secs: f64) -> anyhow::Result<Duration> {
    if !(secs.is_finite() && secs > 0.0) {
        anyhow::bail!("--{what} must be a positive number of seconds, got {secs}");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn config(args: &Args) -> anyhow::Result<FmdConfig> {
    let config = FmdConfig {
        data_dir: args.data_dir.clone(),
        database: match &args.db_url {
            Some(url) => DatabaseChoice::Url(url.clone()),
            None => DatabaseChoice::Embedded,
        },
        executor_id: args.executor_id,
        periods: TaskPeriods {
            fm_sitrep_loader: period("loader-period", args.loader_period)?,
            fm_rendezvous: period("rendezvous-period", args.rendezvous_period)?,
            fm_sitrep_pruner: period("pruner-period", args.pruner_period)?,
        },
        retention: RetentionPolicy { keep: args.keep, archive_keep: args.archive_keep },
        pinned_sitrep: args.sitrep,
    };
    check_config(&config, args.once)?;
    Ok(config)
}

async fn run(log: &slog::Logger, args: &Args) -> anyhow::Result<bool> {
    let config = config(args)?;
    let fmd = Fmd::open(log, config).await?;
    let ok = if args.once {
        let records = fmd.run_once().await;
        print!("{}", summarize(&records));
        println!("executor {}", fmd.executor_id());
        activation_errors(&records).is_empty()
    } else {
        let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        let log = log.clone();
        fmd.run_until(async move {
            let which = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            slog::info!(log, "received {which}");
        })
        .await;
        true
    };
    fmd.close()?;
    Ok(ok)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (log, guard) = logger(args.log_format, args.log_level);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")
        .and_then(|runtime| runtime.block_on(run(&log, &args)));
    // Flush the log before the final line.
    drop(log);
    drop(guard);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("fmd: an activation reported an error (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("fmd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
