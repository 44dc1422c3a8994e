//! `fmd`: the fault-management execution daemon. See [`nexus_fm::fmd`].

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use nexus_fm::fmd::{
    DatabaseChoice, Fmd, FmdConfig, activation_errors, check_config, migrate, migrate_summary,
    summarize,
};
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
/// schema. Any number of fmd processes may run against one database; an
/// existing database is prepared with `fmd migrate --db-url URL`.
///
/// Periods are durations such as 250ms, 30s, 5m or 1h (a bare number is
/// seconds), from 10ms to 1 day.
#[derive(Debug, Parser)]
#[command(name = "fmd", version, args_conflicts_with_subcommands = true)]
struct Args {
    /// What to do; without a subcommand, fmd runs the tasks.
    #[command(subcommand)]
    command: Option<Command>,

    /// The database (at the current schema version; prepare it with `fmd
    /// migrate`). Without it, fmd runs on the embedded default.
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
    /// listens for publishes on PostgreSQL): a duration from 10ms to 1 day.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_period)]
    loader_period: Duration,

    /// How often the rendezvous runs even without a new sitrep: a duration
    /// from 10ms to 1 day.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_period)]
    rendezvous_period: Duration,

    /// How often the history pruner runs: a duration from 10ms to 1 day.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_period)]
    pruner_period: Duration,

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending schema migrations to an existing database and report
    /// the versions ("schema at version N, migrated to M" or "schema
    /// already at version M"). Safe to run while other fmd processes
    /// start: migration runners wait for each other. A database newer than
    /// this fmd is refused, with nothing written.
    Migrate {
        /// The database to migrate.
        #[arg(long, env = "FM_DB_URL", value_name = "URL")]
        db_url: String,

        /// Log format on stderr.
        #[arg(long, value_enum, default_value_t = LogFormat::Terminal)]
        log_format: LogFormat,

        /// Least severe log level shown.
        #[arg(long, value_enum, default_value_t = LogLevel::Info)]
        log_level: LogLevel,
    },
}

/// The shortest period accepted.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// The longest period accepted.
const MAX_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses a period: a humantime duration (`250ms`, `30s`, `5m`, `1h 30m`)
/// or a bare number of seconds, within [`MIN_PERIOD`]..=[`MAX_PERIOD`].
/// Anything else is a usage error (exit status 2), never a panic.
fn parse_period(text: &str) -> Result<Duration, String> {
    let bounds = "periods must be from 10ms to 1 day (e.g. 250ms, 30s, 5m)";
    let duration = match text.trim().parse::<f64>() {
        // Checked before converting: `Duration::from_secs_f64` panics on
        // overflow, and a tiny value would round to zero.
        Ok(secs) if secs.is_finite() => {
            if !(MIN_PERIOD.as_secs_f64()..=MAX_PERIOD.as_secs_f64()).contains(&secs) {
                return Err(format!("{text} seconds is out of range: {bounds}"));
            }
            Duration::from_secs_f64(secs)
        }
        Ok(_) => return Err(format!("{text} is not a duration: {bounds}")),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("{text:?} is not a duration ({e}): {bounds}"))?,
    };
    if !(MIN_PERIOD..=MAX_PERIOD).contains(&duration) {
        return Err(format!("{text} is out of range: {bounds}"));
    }
    Ok(duration)
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
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// The logger on stderr.
///
/// Every level is compiled in, release builds included (the workspace
/// enables slog's `max_level_trace` and `release_max_level_trace`), so
/// `level` alone decides what is shown.
fn logger(format: LogFormat, level: LogLevel) -> (slog::Logger, slog_async::AsyncGuard) {
    let drain: BoxedDrain = match format {
        LogFormat::Terminal => {
            let decorator = slog_term::TermDecorator::new().stderr().build();
            Box::new(slog_term::FullFormat::new(decorator).build().fuse())
        }
        LogFormat::Json => {
            Box::new(slog_json::Json::new(std::io::stderr()).add_default_keys().build().fuse())
        }
    };
    filtered_logger(drain, level)
}

type BoxedDrain = Box<dyn Drain<Ok = (), Err = slog::Never> + Send>;

/// The root logger over `drain`, showing `level` and above.
fn filtered_logger(drain: BoxedDrain, level: LogLevel) -> (slog::Logger, slog_async::AsyncGuard) {
    let level = match level {
        LogLevel::Trace => slog::Level::Trace,
        LogLevel::Debug => slog::Level::Debug,
        LogLevel::Info => slog::Level::Info,
        LogLevel::Warn => slog::Level::Warning,
        LogLevel::Error => slog::Level::Error,
    };
    let drain = drain.filter_level(level).fuse();
    let (drain, guard) = slog_async::Async::new(drain).build_with_guard();
    (slog::Logger::root(drain.fuse(), slog::o!("name" => "fmd")), guard)
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
            fm_sitrep_loader: args.loader_period,
            fm_rendezvous: args.rendezvous_period,
            fm_sitrep_pruner: args.pruner_period,
        },
        retention: RetentionPolicy { keep: args.keep, archive_keep: args.archive_keep },
        pinned_sitrep: args.sitrep,
    };
    check_config(&config, args.once)?;
    Ok(config)
}

async fn run(log: &slog::Logger, args: &Args) -> anyhow::Result<bool> {
    if let Some(Command::Migrate { db_url, .. }) = &args.command {
        let report = migrate(log, db_url).await?;
        println!("{}", migrate_summary(&report));
        return Ok(true);
    }
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
    let (log_format, log_level) = match &args.command {
        Some(Command::Migrate { log_format, log_level, .. }) => (*log_format, *log_level),
        None => (args.log_format, args.log_level),
    };
    let (log, guard) = logger(log_format, log_level);
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use std::sync::{Arc, Mutex};

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("fmd").chain(args.iter().copied()))
    }

    #[test]
    fn periods_take_durations_within_bounds() {
        let args = parse(&[]).unwrap();
        assert_eq!(
            (args.loader_period, args.rendezvous_period, args.pruner_period),
            (Duration::from_secs(10), Duration::from_secs(60), Duration::from_secs(600))
        );
        for (text, want) in [
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h 30m", Duration::from_secs(5400)),
            ("10ms", MIN_PERIOD),
            ("1day", MAX_PERIOD),
            ("2.5", Duration::from_millis(2500)),
            ("86400", MAX_PERIOD),
        ] {
            let args = parse(&["--loader-period", text]).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(args.loader_period, want, "{text}");
        }
    }

    #[test]
    fn bad_periods_are_usage_errors_not_panics() {
        for flag in ["--loader-period", "--rendezvous-period", "--pruner-period"] {
            for text in
                ["1e300", "1e-12", "0", "-1", "NaN", "inf", "9ms", "25h", "1000000000000y", "soon"]
            {
                // `--flag=VALUE`, so that `-1` is a value, not a flag.
                let err = parse(&[&format!("{flag}={text}")]).expect_err(text);
                assert_eq!(err.kind(), ErrorKind::ValueValidation, "{flag} {text}: {err}");
                // clap exits with status 2 for usage errors.
                assert_eq!(err.exit_code(), 2, "{flag} {text}");
                let message = err.to_string();
                assert!(message.contains("10ms to 1 day"), "{flag} {text}: {message}");
            }
        }
    }

    #[test]
    fn migrate_is_a_subcommand_and_run_flags_still_work() {
        let args = parse(&["migrate", "--db-url", "postgresql://x/fm"]).unwrap();
        assert!(
            matches!(&args.command, Some(Command::Migrate { db_url, .. }) if db_url == "postgresql://x/fm")
        );
        let args = parse(&["--db-url", "postgresql://x/fm", "--once", "--keep", "3"]).unwrap();
        assert!(args.command.is_none());
        assert_eq!(args.db_url.as_deref(), Some("postgresql://x/fm"));
        assert!(args.once);
        // Run flags do not mix with the subcommand.
        let err = parse(&["--once", "migrate", "--db-url", "u"]).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
    }

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(level: LogLevel) -> String {
        let buffer = Buffer::default();
        let drain = slog_json::Json::new(buffer.clone()).add_default_keys().build().fuse();
        let (log, guard) = filtered_logger(Box::new(drain), level);
        slog::trace!(log, "a trace message");
        slog::debug!(log, "a debug message");
        slog::info!(log, "an info message");
        drop(log);
        drop(guard);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    /// `--log-level debug` shows debug messages. This test is only
    /// meaningful per profile: in a release build (`cargo test --release`)
    /// it fails without slog's `release_max_level_trace` feature (slog then
    /// strips `debug!` at compile time); in a debug build, the `trace`
    /// case fails without `max_level_trace`.
    #[test]
    fn the_log_level_flag_decides_what_is_shown() {
        let debug = logged(LogLevel::Debug);
        assert!(debug.contains("a debug message"), "{debug}");
        assert!(debug.contains("an info message"), "{debug}");
        assert!(!debug.contains("a trace message"), "{debug}");
        let trace = logged(LogLevel::Trace);
        assert!(trace.contains("a trace message"), "{trace}");
        let info = logged(LogLevel::Info);
        assert!(!info.contains("a debug message") && info.contains("an info message"), "{info}");
        // The flag is accepted by both the run mode and `migrate`.
        assert!(matches!(parse(&["--log-level", "debug"]).unwrap().log_level, LogLevel::Debug));
        let args = parse(&["migrate", "--db-url", "u", "--log-level", "trace"]).unwrap();
        assert!(matches!(args.command, Some(Command::Migrate { log_level: LogLevel::Trace, .. })));
    }
}
