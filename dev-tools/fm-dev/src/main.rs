//! `fm-dev`: developer commands for fault-management execution.
//!
//! - `fm-dev db-run` runs a PostgreSQL server holding the `fm` database at
//!   the current schema version, prints how to connect, and stops it cleanly
//!   on Ctrl-C or SIGTERM.
//! - `fm-dev sitrep publish FILE` publishes a sitrep written as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use fm_dev::{PgCluster, PgClusterOptions};
use slog::{Drain, Logger, info};
use tokio::signal::unix::{SignalKind, signal};

/// The database that `db-run` creates and migrates.
const DATABASE: &str = "fm";

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (log, guard) = logger();
    let result = match cli.command {
        Command::DbRun(args) => db_run(&log, &args),
        Command::Sitrep(SitrepCommand::Publish { file, db_url }) => {
            sitrep_publish(&log, &db_url, &file)
        }
    };
    // Flush the log before the error, so that the error is the last line.
    drop(log);
    drop(guard);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fm-dev: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A logger that writes human-readable lines to stderr.
fn logger() -> (Logger, slog_async::AsyncGuard) {
    let decorator = slog_term::TermDecorator::new().stderr().build();
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let (drain, guard) = slog_async::Async::new(drain).build_with_guard();
    (Logger::root(drain.fuse(), slog::o!("component" => "fm-dev")), guard)
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
    let binaries = fm_dev::find_pg_binaries()?;
    info!(log, "found PostgreSQL"; "bindir" => %binaries.bindir().display());
    // A persistent data directory may hold data worth keeping, so the test
    // settings that turn durability off are not used here.
    let mut options = PgClusterOptions::new()
        .binaries(binaries.clone())
        .durable(true)
        .port(args.port)
        .listen_tcp(args.tcp);
    if let Some(dir) = &args.data_dir {
        let reuse = dir.join("PG_VERSION").exists();
        info!(log, "using a persistent data directory";
            "data_dir" => %dir.display(), "existing_cluster" => reuse);
        options = options.data_dir(dir);
    } else {
        info!(log, "using a temporary data directory (removed on exit)");
    }
    let cluster = PgCluster::start(&options).context("starting PostgreSQL")?;
    info!(log, "PostgreSQL is ready";
        "pid" => cluster.postmaster_pid(),
        "data_dir" => %cluster.data_dir().display(),
        "socket_dir" => %cluster.socket_dir().display(),
        "server_log" => %cluster.log_path().display());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let served = runtime.block_on(serve(log, &cluster, &binaries));
    drop(runtime);

    info!(log, "stopping PostgreSQL");
    let data_dir = cluster.data_dir().to_path_buf();
    let temporary = cluster.is_temporary();
    let stopped = cluster.stop().context("stopping PostgreSQL");
    served?;
    stopped?;
    if temporary {
        info!(log, "PostgreSQL stopped; temporary data removed");
    } else {
        info!(log, "PostgreSQL stopped; data kept"; "data_dir" => %data_dir.display());
    }
    Ok(())
}

/// Prepares the database, prints how to reach it, and waits for a signal.
async fn serve(
    log: &Logger,
    cluster: &PgCluster,
    binaries: &fm_dev::PgBinaries,
) -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;

    // A signal during setup (e.g. a slow migration) stops right away; the
    // migration steps are idempotent, so the next run finishes the job.
    tokio::select! {
        result = prepare_database(log, cluster) => result?,
        _ = interrupt.recv() => {
            info!(log, "interrupted during setup (SIGINT)");
            return Ok(());
        }
        _ = terminate.recv() => {
            info!(log, "interrupted during setup (SIGTERM)");
            return Ok(());
        }
    }

    let url = cluster.url(DATABASE);
    let psql = psql_command(binaries);
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
    Ok(())
}

/// Creates the `fm` database if missing and applies pending migrations.
async fn prepare_database(log: &Logger, cluster: &PgCluster) -> anyhow::Result<()> {
    let admin = fm_dev::connect(&cluster.admin_url()).await?;
    let exists = !admin
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&DATABASE])
        .await
        .context("looking for the fm database")?
        .is_empty();
    if exists {
        info!(log, "database exists"; "database" => DATABASE);
    } else {
        // The name is a constant identifier, so it needs no quoting.
        admin
            .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
            .await
            .context("creating the fm database")?;
        info!(log, "database created"; "database" => DATABASE);
    }
    drop(admin);

    let url = cluster.url(DATABASE);
    let mut conn =
        AsyncPgConnection::establish(&url).await.with_context(|| format!("connecting to {url}"))?;
    let report = fm_db_queries::migration::apply_migrations(&mut conn, log)
        .await
        .context("applying the schema migrations")?;
    info!(log, "{report}"; "from" => report.from, "to" => report.to);
    Ok(())
}

/// How to invoke psql: plain `psql` if it is on PATH, else its full path.
fn psql_command(binaries: &fm_dev::PgBinaries) -> String {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_file(&dir.join("psql"))));
    match binaries.psql() {
        Some(psql) if !on_path => psql.display().to_string(),
        _ => "psql".to_string(),
    }
}

/// Whether `path` is an existing file.
fn is_file(path: &Path) -> bool {
    path.is_file()
}
