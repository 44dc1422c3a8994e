//! One executor of the demo: a control-plane instance in miniature.
//!
//! Each executor has its own [`DataStore`] (its own connection pool), its
//! own [`ExecutorUuid`] and a [`Driver`] running `fm_sitrep_loader`,
//! `fm_rendezvous` and `fm_sitrep_pruner`, wired by [`register_all`] exactly
//! as the daemon wires them. A listening executor's loader LISTENs for
//! publishes (and polls as a fallback); the lagging executor's loader only
//! polls, slowly.
//!
//! The demo counts what every activation did through the driver's
//! [`StatusRecorder`]: [`TallyingRecorder`] sees every activation record on
//! its way to the database (where it persists it, as the plain datastore
//! recorder would) and adds it up, so no activation is missed, however
//! quickly they follow each other. It also publishes the newest sitrep
//! version the executor's rendezvous has executed, so that the demo can
//! wait until some executor has executed a sitrep
//! ([`DemoExecutor::wait_until_executed`]).

use super::{
    DemoConfig, PATIENCE,
    report::{ExecutorSummary, Tally},
};
use anyhow::{Context, anyhow};
use fm_db_queries::datastore::PoolConfig;
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use fm_db_queries::{DataStore, OpContext};
use futures::future::BoxFuture;
use nexus_fm::driver::{Driver, RunningDriver, StatusRecorder, TaskHandle};
use nexus_fm::tasks::fm_rendezvous::FmRendezvous;
use nexus_fm::tasks::fm_sitrep_loader::FmSitrepLoader;
use nexus_fm::tasks::fm_sitrep_pruner::FmSitrepPruner;
use nexus_fm::tasks::{FmTaskHandles, TaskPeriods, register_all};
use nexus_fm_types::{
    ExecutorUuid, FmRendezvousStatus, FmSitrepLoaderStatus, FmSitrepPrunerStatus, ResourceType,
    SitrepVersion, TaskActivationRecord,
};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Connections in each executor's pool.
const POOL_SIZE: u32 = 4;

impl Tally {
    /// Adds up one activation record.
    fn count(&mut self, record: &TaskActivationRecord) {
        let task = record.task_name.as_str();
        if task == FmSitrepLoaderStatus::TASK_NAME {
            self.loader_activations += 1;
            if let Some(status) = self.decode::<FmSitrepLoaderStatus>(task, &record.status) {
                self.errors.extend(status.error.map(|e| format!("{task}: {e}")));
            }
        } else if task == FmRendezvousStatus::TASK_NAME {
            self.rendezvous_activations += 1;
            if let Some(status) = self.decode::<FmRendezvousStatus>(task, &record.status) {
                self.count_rendezvous(&status);
            }
        } else if task == FmSitrepPrunerStatus::TASK_NAME {
            self.pruner_activations += 1;
            if let Some(status) = self.decode::<FmSitrepPrunerStatus>(task, &record.status) {
                self.sitreps_pruned += status.pruned.len() as u64;
                self.errors.extend(status.error.map(|e| format!("{task}: {e}")));
            }
        } else {
            self.errors.push(format!("an activation of an unknown task {task:?}"));
        }
    }

    fn count_rendezvous(&mut self, status: &FmRendezvousStatus) {
        let task = FmRendezvousStatus::TASK_NAME;
        if let Some(sitrep) = status.sitrep {
            self.last_executed = self.last_executed.max(Some(sitrep.version));
        }
        let mut stale = false;
        for resource in ResourceType::ALL {
            let Some(of_type) = status.of(resource) else { continue };
            match resource {
                ResourceType::Alert => self.alerts_created += of_type.created,
                ResourceType::SupportBundle => self.bundles_created += of_type.created,
            }
            self.already_existed += of_type.already_existed;
            self.deleted_not_recreated += of_type.deleted_not_recreated;
            self.tombstones_hard_deleted += of_type.sweep.hard_deleted;
            stale |= of_type.stale;
            for error in of_type.errors.iter().chain(&of_type.sweep.errors) {
                self.errors.push(format!("{task} ({resource}s): {error}"));
            }
        }
        if stale {
            self.stale_reports += 1;
        }
    }

    /// Reads a status back into its type; a status that does not decode is
    /// an error of its own.
    fn decode<T: serde::de::DeserializeOwned>(&mut self, task: &str, status: &Value) -> Option<T> {
        match serde_json::from_value(status.clone()) {
            Ok(status) => Some(status),
            Err(error) => {
                self.errors.push(format!("{task}: its status does not decode: {error}"));
                None
            }
        }
    }
}

/// Persists activation records through the datastore, like the datastore's
/// own recorder, and adds each one to the executor's [`Tally`] first.
struct TallyingRecorder {
    datastore: DataStore,
    tally: Arc<Mutex<Tally>>,
    /// [`Tally::last_executed`], for those waiting for an execution.
    executed: watch::Sender<Option<SitrepVersion>>,
}

impl StatusRecorder for TallyingRecorder {
    fn record<'a>(
        &'a self,
        opctx: &'a OpContext,
        record: &'a TaskActivationRecord,
    ) -> BoxFuture<'a, Result<(), fm_db_queries::Error>> {
        Box::pin(async move {
            let executed = {
                let mut tally = self.tally.lock().unwrap();
                tally.count(record);
                tally.last_executed
            };
            self.executed.send_if_modified(|last| {
                let newer = executed > *last;
                if newer {
                    *last = executed;
                }
                newer
            });
            let persisted = self.datastore.executor_task_status_upsert(opctx, record).await;
            if let Err(error) = &persisted {
                self.tally.lock().unwrap().errors.push(format!(
                    "{}: persisting its status: {}",
                    record.task_name,
                    super::error_chain(error)
                ));
            }
            persisted
        })
    }
}

/// One running executor.
pub(super) struct DemoExecutor {
    name: String,
    id: ExecutorUuid,
    lagging: bool,
    loader_period: Duration,
    /// `None` once shut down.
    running: Option<RunningDriver>,
    handles: FmTaskHandles,
    tally: Arc<Mutex<Tally>>,
    /// The newest sitrep version its rendezvous executed.
    executed: watch::Receiver<Option<SitrepVersion>>,
}

impl DemoExecutor {
    /// Opens the executor's datastore on `url` and starts its driver.
    /// `number` names it ("executor 1", ...).
    pub async fn start(
        log: &slog::Logger,
        url: &str,
        number: usize,
        lagging: bool,
        config: &DemoConfig,
    ) -> anyhow::Result<DemoExecutor> {
        let name = format!("executor {number}");
        let id = ExecutorUuid::new_v4();
        let log = log.new(slog::o!("demo" => name.clone()));
        let datastore =
            DataStore::new(&log, url, PoolConfig { max_size: POOL_SIZE, ..PoolConfig::default() })
                .await
                .with_context(|| format!("opening the database for {name}"))?;
        let (loader, loader_period) = if lagging {
            (FmSitrepLoader::polling(datastore.clone()), config.lag)
        } else {
            (FmSitrepLoader::new(datastore.clone(), url), config.listening_loader_period)
        };
        let rendezvous = FmRendezvous::new(datastore.clone(), loader.subscribe());
        let policy =
            RetentionPolicy { keep: config.keep_sitreps, archive_keep: super::ARCHIVE_KEEP };
        let pruner = FmSitrepPruner::new(datastore.clone(), policy);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (executed_tx, executed) = watch::channel(None);
        let recorder = Arc::new(TallyingRecorder {
            datastore,
            tally: Arc::clone(&tally),
            executed: executed_tx,
        });
        let mut driver = Driver::new(&log, id, recorder);
        let periods = TaskPeriods {
            fm_sitrep_loader: loader_period,
            fm_rendezvous: config.rendezvous_period,
            fm_sitrep_pruner: config.pruner_period,
        };
        let handles = register_all(&mut driver, loader, rendezvous, pruner, periods);
        let running = Some(driver.start());
        slog::info!(log, "executor started";
            "executor_id" => %id, "lagging" => lagging,
            "loader_period_ms" => loader_period.as_millis());
        Ok(DemoExecutor { name, id, lagging, loader_period, running, handles, tally, executed })
    }

    /// Its name, e.g. "executor 2".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its executor id.
    pub fn id(&self) -> ExecutorUuid {
        self.id
    }

    /// Whether this is the lagging executor.
    pub fn is_lagging(&self) -> bool {
        self.lagging
    }

    /// How its loader learns of new sitreps.
    pub fn loader_mode(&self) -> String {
        let period = self.loader_period.as_secs_f64();
        if self.lagging {
            format!("lagging: polls every {period} s")
        } else {
            format!("LISTEN (+ poll every {period} s)")
        }
    }

    /// One line introducing it.
    pub fn describe(&self) -> String {
        format!("{} ({}): {}", self.name, self.loader_mode(), self.id)
    }

    /// A copy of its tally.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// What it did so far.
    pub fn summary(&self) -> ExecutorSummary {
        ExecutorSummary {
            name: self.name.clone(),
            executor_id: self.id,
            lagging: self.lagging,
            loader: self.loader_mode(),
            tally: self.tally(),
        }
    }

    /// Waits until its loader's first activation (at start-up) is done.
    pub async fn wait_for_first_load(&self) -> anyhow::Result<()> {
        let loader = &self.handles.fm_sitrep_loader;
        self.patiently(loader, loader.wait_for_iteration(1)).await
    }

    /// Waits until its rendezvous has completed an activation that executed
    /// sitrep `version` or a newer one. Returns `false` if its driver stops
    /// first. Unbounded: the caller bounds the wait.
    pub async fn wait_until_executed(&self, version: SitrepVersion) -> bool {
        let mut executed = self.executed.clone();
        executed.wait_for(|last| *last >= Some(version)).await.is_ok()
    }

    /// Activates its loader, then its rendezvous, each time waiting for the
    /// activation to complete.
    pub async fn load_and_execute(&self) -> anyhow::Result<()> {
        let loader = &self.handles.fm_sitrep_loader;
        self.patiently(loader, loader.activate_and_wait()).await?;
        self.execute().await
    }

    /// Activates its rendezvous and waits for the activation to complete.
    pub async fn execute(&self) -> anyhow::Result<()> {
        let rendezvous = &self.handles.fm_rendezvous;
        self.patiently(rendezvous, rendezvous.activate_and_wait()).await
    }

    /// Activates its pruner and waits for the activation to complete.
    pub async fn prune(&self) -> anyhow::Result<()> {
        let pruner = &self.handles.fm_sitrep_pruner;
        self.patiently(pruner, pruner.activate_and_wait()).await
    }

    /// Stops its driver (an activation in flight finishes first) and
    /// reports what it did, the last activations included.
    pub async fn shutdown(mut self) -> ExecutorSummary {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        self.summary()
    }

    /// Waits for an activation of `task` for at most [`PATIENCE`].
    async fn patiently(
        &self,
        task: &TaskHandle,
        activation: impl Future<Output = Option<TaskActivationRecord>>,
    ) -> anyhow::Result<()> {
        match tokio::time::timeout(PATIENCE, activation).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(anyhow!("{}'s {} stopped unexpectedly", self.name, task.name())),
            Err(_) => Err(anyhow!(
                "{}'s {} did not complete an activation within {} s",
                self.name,
                task.name(),
                PATIENCE.as_secs()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use nexus_fm_types::{
        Generation, RendezvousTypeStatus, SitrepRef, SitrepUuid, SitrepVersion, SweepStatus,
    };

    fn record(task: &str, status: Value) -> TaskActivationRecord {
        TaskActivationRecord {
            executor_id: ExecutorUuid::new_v4(),
            task_name: task.to_string(),
            iteration: 1,
            time_started: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap(),
            duration_usec: 10,
            status,
        }
    }

    fn type_status(resource: ResourceType, created: u64, stale: bool) -> RendezvousTypeStatus {
        RendezvousTypeStatus {
            resource,
            sitrep: SitrepRef { version: SitrepVersion::FIRST, sitrep_id: SitrepUuid::new_v4() },
            generation: Generation::FIRST,
            requested: 3,
            newly_requested: 0,
            created,
            already_existed: 1,
            deleted_not_recreated: 0,
            stale,
            latest_generation: None,
            refused_nil_id: 0,
            statements: 1,
            retries: 0,
            outcome: String::new(),
            errors: if stale { vec![] } else { vec!["boom".into()] },
            sweep: SweepStatus { hard_deleted: created + 1, ..SweepStatus::default() },
        }
    }

    #[test]
    fn the_tally_adds_up_every_kind_of_record() {
        let mut tally = Tally::default();
        let rendezvous = FmRendezvousStatus {
            time_started: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap(),
            duration_usec: 1,
            sitrep: Some(SitrepRef {
                version: SitrepVersion::try_new(3).unwrap(),
                sitrep_id: SitrepUuid::new_v4(),
            }),
            outcome: String::new(),
            alert: Some(type_status(ResourceType::Alert, 2, true)),
            support_bundle: Some(type_status(ResourceType::SupportBundle, 1, false)),
        };
        tally.count(&record("fm_rendezvous", serde_json::to_value(&rendezvous).unwrap()));
        tally.count(&record("fm_rendezvous", serde_json::json!({ "nonsense": true })));
        tally.count(&record("fm_sitrep_pruner", serde_json::json!(null)));
        assert_eq!(tally.rendezvous_activations, 2);
        assert_eq!(tally.pruner_activations, 1);
        assert_eq!((tally.alerts_created, tally.bundles_created), (2, 1));
        assert_eq!(tally.already_existed, 2);
        assert_eq!(tally.stale_reports, 1);
        assert_eq!(tally.tombstones_hard_deleted, 5);
        assert_eq!(tally.last_executed, Some(SitrepVersion::try_new(3).unwrap()));
        assert_eq!(tally.errors.len(), 3, "{:?}", tally.errors);
        assert_eq!(tally.errors[0], "fm_rendezvous (support bundles): boom");
        assert!(tally.errors[1].starts_with("fm_rendezvous: its status does not decode"));
        assert!(tally.errors[2].starts_with("fm_sitrep_pruner: its status does not decode"));
    }
}
