//! The `fmd` daemon: runs the fault-management tasks of one executor.
//!
//! `fmd` loads the latest sitrep (`fm_sitrep_loader`), makes every alert and
//! support bundle it requests exist (`fm_rendezvous`), and keeps the sitrep
//! history bounded (`fm_sitrep_pruner`). Any number of `fmd` processes may
//! run against one database: the datastore's guards make creation
//! exactly-once and keep a lagging executor from creating anything from an
//! outdated sitrep.
//!
//! Without `--db-url` it runs on an embedded default: a PostgreSQL it starts
//! itself in its data directory (`./.fm/postgres` unless told otherwise),
//! with the schema applied. The executor id is generated once and kept in
//! the data directory, so a restarted `fmd` is the same executor. On the
//! embedded default the data directory is locked (`DATA_DIR/lock`) before
//! anything else, so a second `fmd` on the same directory is refused, having
//! written nothing, instead of racing the first inside `initdb`.
//!
//! An existing database is prepared with `fmd migrate --db-url URL`
//! ([`migrate`]); `fmd --db-url URL` refuses a database whose schema is
//! missing or older than this build ([`FmdError::SchemaNotReady`]) and says
//! to run it.

use crate::driver::{Driver, PanickedActivationStatus};
use crate::embedded::{DataDirLock, EmbeddedDatabase, EmbeddedOptions};
use crate::tasks::fm_rendezvous::FmRendezvous;
use crate::tasks::fm_sitrep_loader::FmSitrepLoader;
use crate::tasks::fm_sitrep_pruner::FmSitrepPruner;
use crate::tasks::{TaskPeriods, register_all};
use anyhow::{Context, bail};
use fm_db_queries::DataStore;
use fm_db_queries::datastore::PoolConfig;
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use fm_db_queries::migration::{self, MigrationReport};
use nexus_fm_types::task::{
    ALL_TASK_NAMES, FmRendezvousStatus, FmSitrepLoaderStatus, FmSitrepPrunerStatus,
    RendezvousTypeStatus,
};
use nexus_fm_types::{ExecutorUuid, SitrepUuid, TaskActivationRecord};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file in the data directory that remembers the executor id.
pub const EXECUTOR_ID_FILE: &str = "executor-id";

/// The subdirectory of the data directory that holds the embedded
/// PostgreSQL cluster.
pub const EMBEDDED_CLUSTER_DIR: &str = "postgres";

/// Where `fmd` finds its database.
#[derive(Clone, Debug)]
pub enum DatabaseChoice {
    /// An existing database at the current schema version.
    Url(String),
    /// The embedded default, started from the data directory.
    Embedded,
}

/// What `fmd` runs.
#[derive(Clone, Debug)]
pub struct FmdConfig {
    /// Where state lives: the executor id and, for the embedded default,
    /// the PostgreSQL cluster.
    pub data_dir: PathBuf,
    /// The database.
    pub database: DatabaseChoice,
    /// The executor id; `None`: the one remembered in the data directory,
    /// or a new one (then remembered).
    pub executor_id: Option<ExecutorUuid>,
    /// Activation periods.
    pub periods: TaskPeriods,
    /// History retention.
    pub retention: RetentionPolicy,
    /// Execute this committed sitrep instead of following the current one
    /// (only with `once`).
    pub pinned_sitrep: Option<SitrepUuid>,
}

/// Errors of `fmd` that callers (and tests) tell apart.
#[derive(Debug, thiserror::Error)]
pub enum FmdError {
    /// The database has no schema, or an older one than this build's: it
    /// must be migrated first.
    #[error(
        "the database is not ready: {}, and this fmd needs version {expected}; \
         prepare it with `fmd migrate --db-url URL` (the same URL)",
        found.map_or_else(|| "it has no fault-management schema".to_string(),
            |v| format!("its schema is at version {v}"))
    )]
    SchemaNotReady {
        /// The version found (`None`: no schema).
        found: Option<i64>,
        /// The version this build runs on.
        expected: i64,
    },
}

/// `fmd migrate`: applies the pending migrations to the database at `url`
/// (holding the migration lock, so concurrent runs wait for each other).
///
/// # Errors
///
/// No connection, a database newer than this build (nothing is written),
/// or a failed migration step.
pub async fn migrate(log: &slog::Logger, url: &str) -> anyhow::Result<MigrationReport> {
    let mut conn = fm_db_queries::datastore::establish_connection(url.to_string())
        .await
        .context("connecting to the database")?;
    let report = migration::apply_migrations(&mut conn, log).await?;
    slog::info!(log, "schema ready"; "from" => report.from, "to" => report.to);
    Ok(report)
}

/// What `fmd migrate` prints: "schema at version N, migrated to M" or
/// "schema already at version M".
pub fn migrate_summary(report: &MigrationReport) -> String {
    if report.from == report.to {
        format!("schema already at version {}", report.to)
    } else {
        format!("schema at version {}, migrated to {}", report.from, report.to)
    }
}

/// Reads the remembered executor id from `data_dir`, or makes and remembers
/// a new one.
///
/// # Errors
///
/// An unreadable or malformed id file, or a data directory that cannot be
/// written.
pub fn executor_id_in(data_dir: &Path) -> anyhow::Result<(ExecutorUuid, bool)> {
    let path = data_dir.join(EXECUTOR_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().parse::<ExecutorUuid>().with_context(|| {
                format!("{} does not hold an executor id (a UUID)", path.display())
            })?;
            Ok((id, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let id = ExecutorUuid::new_v4();
            std::fs::write(&path, format!("{id}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
            Ok((id, true))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A started `fmd`: its database (embedded or not), datastore and identity.
pub struct Fmd {
    /// The caller's logger; the driver adds the executor id itself.
    root_log: slog::Logger,
    log: slog::Logger,
    config: FmdConfig,
    executor_id: ExecutorUuid,
    url: String,
    datastore: DataStore,
    embedded: Option<EmbeddedDatabase>,
    /// The lock on the data directory (embedded default only), released
    /// after the embedded database has stopped.
    lock: Option<DataDirLock>,
}

impl Fmd {
    /// Opens (or starts) the database and checks its schema version.
    ///
    /// On the embedded default, the data directory is locked first.
    ///
    /// # Errors
    ///
    /// A data directory in use by another process
    /// ([`crate::embedded::DataDirLockError::InUse`]), a database without
    /// the current schema ([`FmdError::SchemaNotReady`], or the
    /// datastore's error for a newer one), no database, or an unusable data
    /// directory.
    pub async fn open(log: &slog::Logger, config: FmdConfig) -> anyhow::Result<Fmd> {
        let lock = match config.database {
            DatabaseChoice::Embedded => Some(DataDirLock::acquire(&config.data_dir)?),
            DatabaseChoice::Url(_) => None,
        };
        let (executor_id, new) = match config.executor_id {
            Some(id) => (id, false),
            None => executor_id_in(&config.data_dir)?,
        };
        let root_log = log;
        let log = log.new(slog::o!("executor_id" => executor_id.to_string()));
        slog::info!(log, "fmd starting"; "new_executor_id" => new,
            "data_dir" => %config.data_dir.display());
        let (url, embedded) = match &config.database {
            DatabaseChoice::Url(url) => (url.clone(), None),
            DatabaseChoice::Embedded => {
                let embedded = EmbeddedDatabase::start(
                    &log,
                    EmbeddedOptions {
                        data_dir: Some(config.data_dir.join(EMBEDDED_CLUSTER_DIR)),
                        ..EmbeddedOptions::default()
                    },
                )
                .await
                .context("starting the embedded database")?;
                (embedded.url().to_string(), Some(embedded))
            }
        };
        let datastore = match DataStore::new(&log, &url, PoolConfig::default()).await {
            Ok(datastore) => datastore,
            Err(fm_db_queries::Error::SchemaVersion { found, expected })
                if found.is_none_or(|v| v < expected) =>
            {
                return Err(FmdError::SchemaNotReady { found, expected }.into());
            }
            Err(e) => return Err(anyhow::Error::new(e).context("opening the database")),
        };
        Ok(Fmd {
            root_log: root_log.clone(),
            log,
            config,
            executor_id,
            url,
            datastore,
            embedded,
            lock,
        })
    }

    /// The executor id.
    pub fn executor_id(&self) -> ExecutorUuid {
        self.executor_id
    }

    /// The datastore.
    pub fn datastore(&self) -> &DataStore {
        &self.datastore
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn driver(&self) -> Driver {
        let mut driver =
            Driver::new(&self.root_log, self.executor_id, Arc::new(self.datastore.clone()));
        let loader = match self.config.pinned_sitrep {
            Some(id) => FmSitrepLoader::pinned(self.datastore.clone(), id),
            None => FmSitrepLoader::new(self.datastore.clone(), self.url.clone()),
        };
        let rendezvous = FmRendezvous::new(self.datastore.clone(), loader.subscribe());
        let pruner = FmSitrepPruner::new(self.datastore.clone(), self.config.retention);
        register_all(&mut driver, loader, rendezvous, pruner, self.config.periods);
        driver
    }

    /// Runs one activation of each task, in order, and returns their
    /// records.
    pub async fn run_once(&self) -> Vec<TaskActivationRecord> {
        self.driver().run_once().await
    }

    /// Runs the tasks until `stop` resolves, then lets running activations
    /// finish.
    pub async fn run_until(&self, stop: impl std::future::Future<Output = ()>) {
        if self.config.pinned_sitrep.is_some() {
            slog::warn!(self.log, "a pinned sitrep is only executed with --once; ignoring it");
        }
        let running = self.driver().start();
        slog::info!(self.log, "fmd running";
            "loader_period" => ?self.config.periods.fm_sitrep_loader,
            "rendezvous_period" => ?self.config.periods.fm_rendezvous,
            "pruner_period" => ?self.config.periods.fm_sitrep_pruner);
        stop.await;
        slog::info!(self.log, "stopping: letting running activations finish");
        running.shutdown().await;
    }

    /// Stops the embedded database, if any.
    ///
    /// # Errors
    ///
    /// If the server did not stop cleanly.
    pub fn close(self) -> anyhow::Result<()> {
        if let Some(embedded) = self.embedded {
            embedded.stop().context("stopping the embedded database")?;
            slog::info!(self.log, "embedded database stopped");
        }
        drop(self.lock);
        Ok(())
    }
}

/// A persisted activation status: the driver's record of an activation
/// that panicked (whatever the task), or the task's own status.
#[derive(Clone, Debug, PartialEq)]
pub enum Activation {
    /// The activation panicked; the driver recorded this instead.
    Panicked(PanickedActivationStatus),
    /// The task's own status.
    Ran(TaskStatus),
}

/// A task's own status, decoded by the task's name into its status type, so
/// that a status of the wrong shape is a typed error ([`StatusDecodeError`])
/// and never silently skipped.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(tag = "task_name", content = "status")]
pub enum TaskStatus {
    /// `fm_sitrep_loader` ([`FmSitrepLoaderStatus::TASK_NAME`]).
    #[serde(rename = "fm_sitrep_loader")]
    FmSitrepLoader(FmSitrepLoaderStatus),
    /// `fm_rendezvous` ([`FmRendezvousStatus::TASK_NAME`]).
    #[serde(rename = "fm_rendezvous")]
    FmRendezvous(Box<FmRendezvousStatus>),
    /// `fm_sitrep_pruner` ([`FmSitrepPrunerStatus::TASK_NAME`]).
    #[serde(rename = "fm_sitrep_pruner")]
    FmSitrepPruner(FmSitrepPrunerStatus),
}

/// Why a persisted status could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum StatusDecodeError {
    /// The record names a task this build does not know.
    #[error("unknown task {0}")]
    UnknownTask(String),
    /// The status does not have its task's shape.
    #[error("unreadable status: {0}")]
    Unreadable(serde_json::Error),
}

impl Activation {
    /// Decodes a record's status: a panicked activation by the driver's
    /// explicit mark (`"activation_panicked": true`, for any task), anything
    /// else by its task's name.
    ///
    /// # Errors
    ///
    /// [`StatusDecodeError`] for an unknown task or a status of the wrong
    /// shape.
    pub fn decode(record: &TaskActivationRecord) -> Result<Activation, StatusDecodeError> {
        if record.status.get("activation_panicked") == Some(&serde_json::Value::Bool(true)) {
            return serde_json::from_value(record.status.clone())
                .map(Activation::Panicked)
                .map_err(StatusDecodeError::Unreadable);
        }
        if !ALL_TASK_NAMES.contains(&record.task_name.as_str()) {
            return Err(StatusDecodeError::UnknownTask(record.task_name.clone()));
        }
        serde_json::from_value(serde_json::json!({
            "task_name": record.task_name,
            "status": record.status,
        }))
        .map(Activation::Ran)
        .map_err(StatusDecodeError::Unreadable)
    }
}

/// The errors the activations reported, one line each.
pub fn activation_errors(records: &[TaskActivationRecord]) -> Vec<String> {
    let mut errors = Vec::new();
    for record in records {
        let name = record.task_name.as_str();
        let mut push = |e: &str| errors.push(format!("{name}: {e}"));
        match Activation::decode(record) {
            Err(e) => push(&e.to_string()),
            Ok(Activation::Panicked(panicked)) => {
                push(&format!("the activation panicked: {}", panicked.panic_message));
            }
            Ok(Activation::Ran(TaskStatus::FmSitrepLoader(s))) => {
                s.error.iter().for_each(|e| push(e));
            }
            Ok(Activation::Ran(TaskStatus::FmRendezvous(s))) => {
                for t in [&s.alert, &s.support_bundle].into_iter().flatten() {
                    t.errors.iter().chain(&t.sweep.errors).for_each(|e| push(e));
                }
            }
            Ok(Activation::Ran(TaskStatus::FmSitrepPruner(s))) => {
                s.error.iter().for_each(|e| push(e));
            }
        }
    }
    errors
}

/// A readable summary of one activation of each task. A status that cannot
/// be decoded is listed with the errors at the end.
pub fn summarize(records: &[TaskActivationRecord]) -> String {
    let mut out = String::new();
    for record in records {
        let ms = record.duration_usec as f64 / 1000.0;
        let _ = writeln!(out, "{} (activation {}, {ms:.1} ms)", record.task_name, record.iteration);
        match Activation::decode(record) {
            Ok(Activation::Ran(TaskStatus::FmSitrepLoader(s))) => {
                let loaded = s.loaded.map_or_else(
                    || "none".to_string(),
                    |r| format!("{} (version {})", r.sitrep_id, r.version),
                );
                let _ = writeln!(out, "    {}; sitrep held: {loaded}", s.outcome);
            }
            Ok(Activation::Ran(TaskStatus::FmRendezvous(s))) => {
                let _ = writeln!(out, "    {}", s.outcome);
                if let Some(t) = &s.alert {
                    summarize_type(&mut out, "alerts", t);
                }
                if let Some(t) = &s.support_bundle {
                    summarize_type(&mut out, "support bundles", t);
                }
            }
            Ok(Activation::Ran(TaskStatus::FmSitrepPruner(s))) => {
                let _ = writeln!(
                    out,
                    "    {}; keep {} history entries, {} pruned, {} archive entries deleted",
                    s.outcome,
                    s.keep,
                    s.pruned.len(),
                    s.archive_entries_deleted
                );
            }
            Ok(Activation::Panicked(_)) => {
                let _ = writeln!(out, "    {}", PanickedActivationStatus::OUTCOME);
            }
            Err(_) => {}
        }
    }
    for error in activation_errors(records) {
        let _ = writeln!(out, "ERROR {error}");
    }
    out
}

fn summarize_type(out: &mut String, what: &str, s: &RendezvousTypeStatus) {
    let _ = writeln!(
        out,
        "    {what} (sitrep version {}, generation {}): {}",
        s.sitrep.version, s.generation, s.outcome
    );
    let _ = writeln!(
        out,
        "      requested {} ({} new), created {}, already existed {}, \
         not re-created (deleted by an operator) {}, stale {}, statements {}",
        s.requested,
        s.newly_requested,
        s.created,
        s.already_existed,
        s.deleted_not_recreated,
        if s.stale { "yes" } else { "no" },
        s.statements,
    );
    let _ = writeln!(out, "      sweep: {}", s.sweep.outcome);
}

/// Checks that a configuration makes sense before anything starts.
///
/// # Errors
///
/// A pinned sitrep without `once`, or a retention below the floor.
pub fn check_config(config: &FmdConfig, once: bool) -> anyhow::Result<()> {
    if config.pinned_sitrep.is_some() && !once {
        bail!("--sitrep executes one committed sitrep and exits: it needs --once");
    }
    if config.retention.keep < fm_db_queries::datastore::sitrep::prune::MIN_KEEP {
        bail!("--keep must be at least {}", fm_db_queries::datastore::sitrep::prune::MIN_KEEP);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_id_is_made_once_and_remembered() {
        let dir = tempfile_dir();
        let (first, new) = executor_id_in(&dir).unwrap();
        assert!(new);
        let (second, new) = executor_id_in(&dir).unwrap();
        assert!(!new);
        assert_eq!(first, second);
        std::fs::write(dir.join(EXECUTOR_ID_FILE), "not a uuid").unwrap();
        let err = executor_id_in(&dir).unwrap_err();
        assert!(format!("{err:#}").contains("does not hold an executor id"), "{err:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn record(task_name: &str, status: serde_json::Value) -> TaskActivationRecord {
        serde_json::from_value(serde_json::json!({
            "executor_id": uuid::Uuid::new_v4(),
            "task_name": task_name,
            "iteration": 1,
            "time_started": "2024-01-01T00:00:00Z",
            "duration_usec": 1000,
            "status": status,
        }))
        .unwrap()
    }

    /// A panicked activation is recognised under every task name, every
    /// task's status decodes by its name (the serde names match
    /// `TASK_NAME`), and a wrong shape or
    /// an unknown task is a typed error that the summary reports.
    #[test]
    fn statuses_decode_by_task_name() {
        let panicked = serde_json::to_value(PanickedActivationStatus::new("boom")).unwrap();
        for name in ALL_TASK_NAMES {
            let status = Activation::decode(&record(name, panicked.clone())).unwrap();
            assert!(matches!(status, Activation::Panicked(p) if p.panic_message == "boom"));
            let wrong = record(name, serde_json::json!({"outcome": 3}));
            let error = Activation::decode(&wrong).unwrap_err();
            assert!(matches!(error, StatusDecodeError::Unreadable(_)));
            assert!(!error.to_string().contains("unknown variant"), "{error}");
            assert_eq!(activation_errors(std::slice::from_ref(&wrong)).len(), 1);
            assert!(summarize(&[wrong]).contains(&format!("ERROR {name}: unreadable status: ")));
        }
        // A panicked activation of any task, known or not, is reported as one.
        let other = record("test_task", panicked);
        assert_eq!(activation_errors(&[other]), ["test_task: the activation panicked: boom"]);
        let unknown = record("fm_nothing", serde_json::json!({}));
        assert!(matches!(Activation::decode(&unknown), Err(StatusDecodeError::UnknownTask(_))));
        assert_eq!(activation_errors(&[unknown]), ["fm_nothing: unknown task fm_nothing"]);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fmd-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
