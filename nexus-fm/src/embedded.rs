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
use std::path::PathBuf;

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
