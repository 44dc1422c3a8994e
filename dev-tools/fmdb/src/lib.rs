//! `fmdb`: the debug CLI of fault-management execution, in the manner of
//! omicron's `omdb`.
//!
//! Ground rules (see CONVENTIONS.md, "The debug CLI"):
//! - It never lies: what it cannot tell, it says it cannot tell; bad data
//!   is shown as bad data and the command carries on.
//! - Read-only by default, enforced by PostgreSQL: read commands connect
//!   with `default_transaction_read_only=on` ([`db::read_only_url`]), so the
//!   server refuses any write with SQLSTATE 25006. Writes need
//!   `-w/--destructive`.
//! - Human tables by default, `--json` for scripts; listings have a fetch
//!   limit and warn on stderr when it cuts them.
//! - Every usage error is one line on stderr with its own exit code
//!   ([`Exit`]); nothing panics on bad input.

pub mod db;
pub mod executors;
pub mod explain;
pub mod output;
pub mod resources;
pub mod sitrep;
pub mod tombstones;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Exit statuses. Each kind of failure has its own, so scripts can branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// The command ran and found a problem (e.g. `explain` flagged a
    /// sequential scan), or an unexpected database error.
    Failure = 1,
    /// A usage error: a bad flag, or a write without `-w/--destructive`.
    Usage = 2,
    /// An argument that should be a UUID is not one.
    BadUuid = 3,
    /// A sitrep selector (or query name) that fmdb does not know.
    UnknownSelector = 4,
    /// The named object exists nowhere fmdb can look.
    NotFound = 5,
    /// No database could be reached.
    Unreachable = 6,
    /// The database's schema version is not the one fmdb was built for.
    SchemaVersion = 7,
}

/// A failure of a command: one line for stderr and the exit status.
#[derive(Debug)]
pub struct CliError {
    /// Which kind of failure.
    pub exit: Exit,
    /// One line: what was wrong and what to do.
    pub message: String,
}

impl CliError {
    /// A failure of kind `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> CliError {
        CliError { exit, message: message.into() }
    }

    /// An unexpected error from the datastore, with its cause chain.
    pub fn database(context: &str, error: &fm_db_queries::Error) -> CliError {
        CliError::new(
            Exit::Failure,
            format!("{context}: {}", fm_db_queries::error::error_chain(error)),
        )
    }
}

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "fmdb",
    about = "Debug fault-management execution: sitreps, alerts, support bundles, executors, query plans",
    long_about = "Debug fault-management execution: sitreps, alerts, support bundles, executors, \
                  query plans.\n\nfmdb only reads, in read-only transactions enforced by \
                  PostgreSQL, unless a write command is given -w/--destructive. It never starts \
                  or migrates a database.",
    disable_version_flag = true
)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The database. Without it (and without FM_DB_URL), fmdb connects to
    /// the embedded database of an `fmd` running in --data-dir.
    #[arg(long, env = "FM_DB_URL", value_name = "URL", global = true, hide_env_values = true)]
    pub db_url: Option<String>,
    /// fmd's data directory, where its embedded database lives (in
    /// DIR/postgres); used only without --db-url.
    #[arg(long, value_name = "DIR", default_value = ".fm", global = true)]
    pub data_dir: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Most rows a listing fetches; a listing cut by it says so on stderr.
    #[arg(long, value_name = "N", default_value_t = 500, global = true,
          value_parser = clap::value_parser!(u32).range(1..9_999))]
    pub fetch_limit: u32,
    /// Allow commands that write (deletes).
    #[arg(short = 'w', long, global = true)]
    pub destructive: bool,
    /// The time ages are measured against (RFC 3339), for reproducible
    /// output; default: now.
    #[arg(long, value_name = "TIME", global = true)]
    pub now: Option<DateTime<Utc>>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sitreps: the history, one sitrep, the difference between two.
    #[command(subcommand)]
    Sitrep(sitrep::SitrepCommand),
    /// Alerts: list, show, delete.
    #[command(subcommand)]
    Alert(resources::ResourceCommand),
    /// Support bundles: list, show, delete.
    #[command(subcommand)]
    SupportBundle(resources::ResourceCommand),
    /// The current sitrep and what every executor's tasks last did.
    Executors(executors::ExecutorsArgs),
    /// Per type, the tombstones not yet swept, the oldest one's age and a dry
    /// run of the next sweep driven by the current sitrep (--list: each
    /// tombstone with the reason the sweep would delete or keep it).
    Tombstones(tombstones::TombstonesArgs),
    /// The plan of every catalogued production query (or one), flagging
    /// sequential scans; exits 1 if any is flagged.
    Explain(explain::ExplainArgs),
}

/// What a command needs: options, the clock, where output goes.
pub struct Context {
    /// The shared options.
    pub global: GlobalArgs,
    /// The time ages are measured against.
    pub now: DateTime<Utc>,
    /// A logger (discarding: fmdb reports through its output).
    pub log: slog::Logger,
}

impl Context {
    /// Prints a warning that a listing was cut at the fetch limit.
    pub fn warn_cut(&self, what: &str) {
        eprintln!(
            "warning: showing only the first {} {what}: the listing was cut at --fetch-limit",
            self.global.fetch_limit
        );
    }
}

/// Parses and runs a command line; returns the exit status. Output goes to
/// stdout, warnings and errors to stderr.
pub fn main_with_args(args: Vec<std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help goes to stdout with status 0; a usage error to stderr
            // with status 2 (clap's convention, which fmdb keeps).
            let _ = e.print();
            return e.exit_code();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return Exit::Failure as i32;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(exit) => exit as i32,
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.exit as i32
        }
    }
}

/// Runs a parsed command.
///
/// # Errors
///
/// A [`CliError`] with the line to print and the exit status.
pub async fn run(cli: Cli) -> Result<Exit, CliError> {
    let Cli { global, command } = cli;
    let now = global.now.unwrap_or_else(Utc::now);
    let ctx = Context { global, now, log: slog::Logger::root(slog::Discard, slog::o!()) };
    match command {
        Command::Sitrep(command) => sitrep::run(&ctx, command).await,
        Command::Alert(command) => {
            resources::run(&ctx, nexus_fm_types::ResourceType::Alert, command).await
        }
        Command::SupportBundle(command) => {
            resources::run(&ctx, nexus_fm_types::ResourceType::SupportBundle, command).await
        }
        Command::Executors(args) => executors::run(&ctx, args).await,
        Command::Tombstones(args) => tombstones::run(&ctx, args).await,
        Command::Explain(args) => explain::run(&ctx, args).await,
    }
}

/// Parses a period such as `250ms`, `30s`, `1m` (a bare number is seconds).
///
/// # Errors
///
/// A message for clap when it is not a positive duration.
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let parsed = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("{e} (expected e.g. 250ms, 30s, 1m)"))?,
    };
    if parsed.is_zero() {
        return Err("the period must be positive".into());
    }
    Ok(parsed)
}
