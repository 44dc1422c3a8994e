//! The embedded default database: PostgreSQL started from the machine's
//! server binaries, with the `fm` database created and migrated.
//!
//! `fmd` runs on it when no `--db-url` is given, `fm-dev db-run` serves it,
//! and `fm-dev demo` runs in a temporary one. The server never outlives the
//! process (see `fm_embedded_pg::cluster`).

use anyhow::Context;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use fm_db_queries::migration::{self, MigrationReport};
use fm_embedded_pg::{PgCluster, PgClusterOptions, find_pg_binaries};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The database that holds the fault-management tables.
pub const DATABASE: &str = "fm";

/// How to start the embedded database.
#[derive(Clone, Debug, Default)]
pub struct EmbeddedOptions {
    /// A persistent data directory (created if missing, reused with its
    /// data), or `None` for a temporary one removed on stop.
    pub data_dir: Option<PathBuf>,
    /// The port (it names the Unix socket; with `tcp`, the TCP port too).
    /// `None` means 5432, which cannot clash because the socket lives in a
    /// private directory.
    pub port: Option<u16>,
    /// Also listen on 127.0.0.1.
    pub tcp: bool,
    /// Turn durability off (fsync and friends): only for throwaway data.
    pub fast_and_unsafe: bool,
}

/// A running embedded database with the current schema.
#[derive(Debug)]
pub struct EmbeddedDatabase {
    cluster: PgCluster,
    url: String,
    migration: MigrationReport,
}

impl EmbeddedDatabase {
    /// Starts the server, creates the `fm` database if needed and applies
    /// pending migrations.
    ///
    /// # Errors
    ///
    /// No server binaries (the error names the package to install), a data
    /// directory the server cannot use, or a failed migration; a database
    /// newer than this software is refused.
    pub async fn start(
        log: &slog::Logger,
        options: EmbeddedOptions,
    ) -> anyhow::Result<EmbeddedDatabase> {
        let binaries = find_pg_binaries()?;
        slog::info!(log, "starting the embedded PostgreSQL";
            "bindir" => %binaries.bindir().display(),
            "data_dir" => options.data_dir.as_ref()
                .map_or_else(|| "(temporary)".to_string(), |d| d.display().to_string()));
        let mut cluster_options = PgClusterOptions::new()
            .binaries(binaries)
            .durable(!options.fast_and_unsafe)
            .listen_tcp(options.tcp);
        if let Some(port) = options.port {
            cluster_options = cluster_options.port(port);
        }
        if let Some(dir) = &options.data_dir {
            cluster_options = cluster_options.data_dir(dir);
        }
        // Starting a cluster is blocking work (initdb, waiting for ready).
        let cluster = tokio::task::spawn_blocking(move || PgCluster::start(&cluster_options))
            .await
            .context("starting PostgreSQL")??;
        let migration = prepare_database(log, &cluster).await?;
        let url = cluster.url(DATABASE);
        slog::info!(log, "embedded PostgreSQL ready";
            "url" => &url, "server_log" => %cluster.log_path().display(),
            "schema" => %migration);
        Ok(EmbeddedDatabase { cluster, url, migration })
    }

    /// The URL of the `fm` database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server.
    pub fn cluster(&self) -> &PgCluster {
        &self.cluster
    }

    /// What the migration step did at start.
    pub fn migration(&self) -> &MigrationReport {
        &self.migration
    }

    /// Stops the server (and removes a temporary data directory).
    ///
    /// # Errors
    ///
    /// If the server could not be stopped cleanly.
    pub fn stop(self) -> anyhow::Result<()> {
        self.cluster.stop()
    }
}

/// Creates the `fm` database if missing and applies pending migrations.
async fn prepare_database(
    log: &slog::Logger,
    cluster: &PgCluster,
) -> anyhow::Result<MigrationReport> {
    let admin = fm_embedded_pg::connect(&cluster.admin_url()).await?;
    let exists = !admin
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&DATABASE])
        .await
        .context("looking for the fm database")?
        .is_empty();
    if !exists {
        // The name is a constant identifier, so it needs no quoting.
        admin
            .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
            .await
            .context("creating the fm database")?;
        slog::info!(log, "database created"; "database" => DATABASE);
    }
    drop(admin);
    let url = cluster.url(DATABASE);
    let mut conn =
        AsyncPgConnection::establish(&url).await.with_context(|| format!("connecting to {url}"))?;
    migration::apply_migrations(&mut conn, log).await.context("applying the schema migrations")
}

/// The lock file in a data directory.
pub const LOCK_FILE: &str = "lock";

/// Why a data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DataDirLockError {
    /// Another process (or another lock in this one) holds the directory.
    #[error("data directory {} in use by {}", dir.display(),
        pid.map_or_else(|| "another process".to_string(), |p| format!("process {p}")))]
    InUse {
        /// The data directory.
        dir: PathBuf,
        /// The holder's process id, as it wrote it in the lock file
        /// (`None` if it has not written it yet).
        pid: Option<u32>,
    },
    /// The directory or its lock file could not be created or locked.
    #[error("locking data directory {}", dir.display())]
    Io {
        /// The data directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive lock on a data directory, held until dropped (or until
/// the process dies: it is an advisory `flock` on `DIR/lock`, which the
/// kernel releases with the process).
///
/// Taken before anything else touches the directory, so two processes
/// started on one fresh directory never race inside `initdb` or over the
/// executor id: the second is refused, having written nothing.
#[derive(Debug)]
pub struct DataDirLock {
    dir: PathBuf,
    /// Holds the lock; never read after locking.
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if missing and locks it, without waiting.
    ///
    /// # Errors
    ///
    /// [`DataDirLockError::InUse`] (with the holder's process id) if it
    /// is locked; [`DataDirLockError::Io`] if it cannot be created or
    /// locked.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, DataDirLockError> {
        let io = |source| DataDirLockError::Io { dir: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        // Opened without truncating: the holder's process id must stay
        // readable until this process holds the lock.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid =
                    file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(DataDirLockError::InUse { dir: dir.to_path_buf(), pid });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DataDirLock { dir: dir.to_path_buf(), _file: file })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_data_directory_is_refused_until_released() {
        let dir = std::env::temp_dir().join(format!("fm-lock-test-{}", uuid::Uuid::new_v4()));
        let held = DataDirLock::acquire(&dir).unwrap();
        assert_eq!(held.dir(), dir);
        // A second lock (another open file description, as another process
        // would have) is refused and names this process.
        let err = DataDirLock::acquire(&dir).unwrap_err();
        assert!(
            matches!(&err, DataDirLockError::InUse { pid: Some(p), .. } if *p == std::process::id()),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("data directory {} in use by process {}", dir.display(), std::process::id())
        );
        drop(held);
        let again = DataDirLock::acquire(&dir).expect("free once released");
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
