//! `fm_rendezvous`: makes the resources the loaded sitrep requests exist.
//!
//! Why it exists: sitreps only describe the desired state; something has to
//! create the alerts and support bundles they ask for, on every
//! control-plane instance, however slow or stale that instance is.
//!
//! What it guarantees (docs/design.md, "Executing a sitrep"):
//!
//! - Each activation executes the sitrep it holds from
//!   [`fm_sitrep_loader`](super::fm_sitrep_loader), for alerts and for
//!   support bundles independently, through the datastore's guarded insert
//!   ([`DataStore::fm_resources_create`]). That insert never touches an
//!   existing row, so a resource deleted by an operator is never re-created,
//!   and it inserts nothing when the latest sitrep's generation for the type
//!   differs, so a stale executor cannot create what a newer sitrep
//!   withdrew.
//! - A stale sitrep is a normal outcome: it is logged at info, reported in
//!   the status, and wakes the loader (through
//!   [`FmRendezvous::stale_wake_source`]) to fetch the current sitrep.
//! - A failure for one type never stops the other type, and never stops the
//!   sweep of either type: after creation, the sweep of each type runs
//!   whether or not its creation succeeded, and each reports its own status.
//!   There is no "sitrep fully executed" watermark: every activation starts
//!   again from the sitrep and the database, so the next activation is the
//!   retry.

use super::fm_sitrep_loader::{LoadedSitrep, LoadedSitrepReceiver};
use crate::driver::{ActivationOutcome, BackgroundTask, TaskReport, WakeSource, error_chain};
use fm_db_queries::datastore::rendezvous::{CreateCounts, CreateOutcome};
use fm_db_queries::{DataStore, OpContext};
use futures::future::BoxFuture;
use nexus_fm_types::{
    ActivationReason, FmRendezvousStatus, Generation, RendezvousTypeStatus, ResourceType,
    SweepStatus,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

/// The outcome label of an activation that had no sitrep to execute.
pub const NO_SITREP_LOADED: &str = "skipped: no sitrep loaded yet";

/// The outcome label of creation skipped because the sitrep is stale.
pub const STALE_SITREP: &str = "skipped: this executor's sitrep is no longer current";

/// The outcome label of creation skipped because the sitrep is no longer in
/// the database.
pub const SITREP_GONE: &str =
    "skipped: this executor's sitrep is no longer in the database (pruned)";

/// The outcome label of a sweep that failed.
pub const SWEEP_FAILED: &str = "sweep failed";

/// The outcome label of a sweep: what it removed and why it kept the rest.
pub fn sweep_outcome(c: &fm_db_queries::datastore::sweep::SweepCounts) -> String {
    if c.retained_sitrep_missing > 0 {
        return format!(
            "deleted nothing: this executor's sitrep is gone (pruned or never current); \
             {} tombstone(s) kept",
            c.retained_sitrep_missing
        );
    }
    if c.tombstones_examined == 0 {
        return "no tombstones".to_string();
    }
    format!(
        "hard-deleted {} of {} tombstone(s); kept {} still requested, {} too new for this sitrep",
        c.hard_deleted, c.tombstones_examined, c.retained_still_requested, c.retained_too_new
    )
}

/// Fault injection for tests: makes the creation of chosen resource types
/// fail, without touching the database, as if the datastore had returned an
/// error. Shared by clones, so a test can change it while the task runs.
///
/// Production code never builds one; a rendezvous task without it behaves
/// exactly as one whose injector has no failures set.
#[derive(Clone, Debug, Default)]
pub struct RendezvousFaultInjection {
    failing: Arc<Mutex<BTreeSet<ResourceType>>>,
}

impl RendezvousFaultInjection {
    /// From now on, creating `resource` fails with an injected error.
    pub fn fail_creation(&self, resource: ResourceType) {
        self.failing.lock().unwrap().insert(resource);
    }

    /// From now on, creating `resource` works again.
    pub fn heal_creation(&self, resource: ResourceType) {
        self.failing.lock().unwrap().remove(&resource);
    }

    fn creation_fails(&self, resource: ResourceType) -> bool {
        self.failing.lock().unwrap().contains(&resource)
    }
}

/// Why creating one resource type failed.
#[derive(Debug, thiserror::Error)]
enum CreateError {
    #[error("creating {resource}s")]
    Datastore {
        resource: ResourceType,
        #[source]
        source: fm_db_queries::Error,
    },
    #[error("creating {0}s: failure injected by a test")]
    Injected(ResourceType),
}

/// The `fm_rendezvous` task.
pub struct FmRendezvous {
    datastore: DataStore,
    sitrep: LoadedSitrepReceiver,
    stale_reports: Arc<Notify>,
    faults: Option<RendezvousFaultInjection>,
}

impl FmRendezvous {
    /// A rendezvous task executing whatever sitrep `sitrep` holds (the
    /// receiver of an [`FmSitrepLoader`](super::fm_sitrep_loader::FmSitrepLoader)).
    pub fn new(datastore: DataStore, sitrep: LoadedSitrepReceiver) -> FmRendezvous {
        FmRendezvous { datastore, sitrep, stale_reports: Arc::new(Notify::new()), faults: None }
    }

    /// Test hook: consults `faults` before each creation (see
    /// [`RendezvousFaultInjection`]).
    pub fn with_fault_injection(mut self, faults: RendezvousFaultInjection) -> FmRendezvous {
        self.faults = Some(faults);
        self
    }

    /// The wake source, for the loader, that fires whenever this task finds
    /// its sitrep stale.
    pub fn stale_wake_source(&self) -> WakeSource {
        WakeSource::notify(ActivationReason::StaleReport, Arc::clone(&self.stale_reports))
    }

    /// One activation; see the module documentation.
    async fn execute(&mut self, opctx: &OpContext) -> FmRendezvousStatus {
        let time_started = nexus_fm_types::time::now();
        let clock = Instant::now();
        // Mark the value seen: a later publish wakes this task again.
        let loaded = self.sitrep.borrow_and_update().clone();
        let mut status = FmRendezvousStatus {
            time_started,
            duration_usec: 0,
            sitrep: loaded.as_ref().map(|l| l.sitrep_ref()),
            outcome: NO_SITREP_LOADED.to_string(),
            alert: None,
            support_bundle: None,
        };
        if let Some(loaded) = loaded {
            status.alert = Some(self.execute_type(opctx, &loaded, ResourceType::Alert).await);
            status.support_bundle =
                Some(self.execute_type(opctx, &loaded, ResourceType::SupportBundle).await);
            status.outcome = ResourceType::ALL
                .iter()
                .filter_map(|&r| status.of(r).map(|s| format!("{r}: {}", s.outcome)))
                .collect::<Vec<_>>()
                .join("; ");
        }
        status.duration_usec = u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX);
        status
    }

    /// Creation, then the sweep, for one resource type.
    async fn execute_type(
        &self,
        opctx: &OpContext,
        loaded: &LoadedSitrep,
        resource: ResourceType,
    ) -> RendezvousTypeStatus {
        let sitrep = &loaded.sitrep;
        let (requested, newly_requested) = request_counts(loaded, resource);
        let mut status = RendezvousTypeStatus {
            resource,
            sitrep: loaded.sitrep_ref(),
            generation: sitrep.metadata.generation(resource),
            requested,
            newly_requested,
            created: 0,
            already_existed: 0,
            deleted_not_recreated: 0,
            stale: false,
            latest_generation: None,
            refused_nil_id: 0,
            statements: 0,
            retries: 0,
            outcome: String::new(),
            errors: Vec::new(),
            sweep: SweepStatus::default(),
        };
        match self.create(opctx, loaded, resource).await {
            Ok(CreateOutcome::Executed(counts)) => {
                apply_counts(&mut status, &counts);
                status.outcome = executed_label(&status);
            }
            Ok(CreateOutcome::Stale { sitrep_generation, latest_generation, counts }) => {
                apply_counts(&mut status, &counts);
                status.stale = true;
                status.latest_generation = latest_generation;
                status.outcome = stale_label(sitrep_generation, latest_generation);
                slog::info!(opctx.log, "sitrep is stale; asking the loader for the current one";
                    "resource" => %resource,
                    "sitrep_id" => %sitrep.id(),
                    "version" => %loaded.version,
                    "sitrep_generation" => %sitrep_generation,
                    "latest_generation" => latest_generation.map(Generation::as_i64),
                    "created_before_stale" => counts.created);
                self.stale_reports.notify_one();
            }
            Err(CreateError::Datastore {
                source: fm_db_queries::Error::SitrepNotCommitted { .. },
                ..
            }) => {
                // The loader only hands out committed sitreps, so this one
                // was pruned while this executor held it: it is far behind,
                // which is normal for a lagging executor.
                status.stale = true;
                status.outcome = SITREP_GONE.to_string();
                slog::info!(opctx.log, "sitrep is gone (pruned); asking the loader for the current one";
                    "resource" => %resource,
                    "sitrep_id" => %sitrep.id(),
                    "version" => %loaded.version);
                self.stale_reports.notify_one();
            }
            Err(error) => {
                let chain = error_chain(&error);
                slog::warn!(opctx.log, "resource creation failed";
                    "resource" => %resource, "sitrep_id" => %sitrep.id(), "error" => &chain);
                status.outcome = format!("failed: {error}");
                status.errors.push(chain);
            }
        }
        // The sweep's safety does not depend on creation: it runs whatever
        // creation did.
        status.sweep = self.sweep(opctx, loaded, resource).await;
        status
    }

    async fn create(
        &self,
        opctx: &OpContext,
        loaded: &LoadedSitrep,
        resource: ResourceType,
    ) -> Result<CreateOutcome, CreateError> {
        if self.faults.as_ref().is_some_and(|f| f.creation_fails(resource)) {
            return Err(CreateError::Injected(resource));
        }
        let sitrep = &loaded.sitrep;
        self.datastore
            .fm_resources_create(opctx, sitrep.id(), sitrep.metadata.generation(resource), resource)
            .await
            .map_err(|source| CreateError::Datastore { resource, source })
    }

    /// The tombstone sweep of one type (docs/design.md, "The sweep"), driven by the
    /// sitrep this executor holds. Its safety checks run inside the
    /// datastore's deleting statement, so it does not depend on creation
    /// having succeeded, nor on the held sitrep being current.
    async fn sweep(
        &self,
        opctx: &OpContext,
        loaded: &LoadedSitrep,
        resource: ResourceType,
    ) -> SweepStatus {
        match self.datastore.fm_tombstones_sweep(opctx, loaded.sitrep.id(), resource, None).await {
            Ok(c) => SweepStatus {
                outcome: sweep_outcome(&c),
                pages: c.pages,
                tombstones_examined: c.tombstones_examined,
                hard_deleted: c.hard_deleted,
                retained_still_requested: c.retained_still_requested,
                retained_too_new: c.retained_too_new,
                retained_sitrep_missing: c.retained_sitrep_missing,
                retries: c.retries,
                errors: Vec::new(),
            },
            Err(e) => {
                let error = format!("{:#}", anyhow::Error::new(e));
                slog::warn!(opctx.log, "tombstone sweep failed";
                    "resource" => %resource, "error" => &error);
                SweepStatus {
                    outcome: SWEEP_FAILED.to_string(),
                    errors: vec![error],
                    ..SweepStatus::nothing_done(SWEEP_FAILED)
                }
            }
        }
    }
}

/// Requests of `resource` in the sitrep, and how many of them the sitrep
/// itself made (rather than carried forward from its parent), as the loader
/// counted them.
fn request_counts(loaded: &LoadedSitrep, resource: ResourceType) -> (u64, u64) {
    let counts = loaded.sitrep.requests(resource);
    (counts.requested, counts.newly_requested)
}

fn apply_counts(status: &mut RendezvousTypeStatus, counts: &CreateCounts) {
    // `requested` comes from the sitrep itself, which is known even when
    // creation fails; the datastore counts the same requests.
    let CreateCounts {
        requested: _,
        created,
        already_existed,
        deleted_not_recreated,
        refused_nil_id,
        statements,
        retries,
    } = *counts;
    status.refused_nil_id = refused_nil_id;
    status.retries = retries;
    status.created = created;
    status.already_existed = already_existed;
    status.deleted_not_recreated = deleted_not_recreated;
    status.statements = statements;
}

/// The outcome label of a creation that ran to the end.
fn executed_label(status: &RendezvousTypeStatus) -> String {
    if status.requested == 0 {
        return "nothing requested".to_string();
    }
    let mut parts = vec![format!("created {} of {} requested", status.created, status.requested)];
    if status.already_existed > 0 {
        parts.push(format!("{} already existed", status.already_existed));
    }
    if status.deleted_not_recreated > 0 {
        parts.push(format!(
            "{} not re-created: deleted by an operator",
            status.deleted_not_recreated
        ));
    }
    if status.refused_nil_id > 0 {
        parts.push(format!(
            "{} refused: the nil id (a request row from before schema version 3)",
            status.refused_nil_id
        ));
    }
    parts.join(", ")
}

/// The outcome label of a creation that found the sitrep stale.
fn stale_label(sitrep_generation: Generation, latest: Option<Generation>) -> String {
    match latest {
        Some(latest) => format!(
            "{STALE_SITREP} (its generation is {sitrep_generation}, the latest sitrep's is \
             {latest})"
        ),
        None => format!("{STALE_SITREP} (the history has no latest sitrep)"),
    }
}

impl BackgroundTask for FmRendezvous {
    fn name(&self) -> &'static str {
        FmRendezvousStatus::TASK_NAME
    }

    fn activate<'a>(
        &'a mut self,
        opctx: &'a OpContext,
        _reasons: &'a [ActivationReason],
    ) -> BoxFuture<'a, TaskReport> {
        Box::pin(async move {
            let status = self.execute(opctx).await;
            let types: Vec<&RendezvousTypeStatus> =
                ResourceType::ALL.iter().filter_map(|&r| status.of(r)).collect();
            let outcome =
                if types.iter().any(|t| !t.errors.is_empty() || !t.sweep.errors.is_empty()) {
                    ActivationOutcome::Failed
                } else if types.iter().any(|t| t.created > 0 || t.stale || t.sweep.hard_deleted > 0)
                {
                    ActivationOutcome::DidWork
                } else {
                    ActivationOutcome::NothingToDo
                };
            let summary = match status.sitrep {
                Some(sitrep) => format!("{sitrep}: {}", status.outcome),
                None => status.outcome.clone(),
            };
            TaskReport::new(&status, outcome, summary)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_say_what_happened() {
        let g = |v| Generation::try_new(v).unwrap();
        assert_eq!(
            stale_label(g(2), Some(g(3))),
            "skipped: this executor's sitrep is no longer current (its generation is 2, the \
             latest sitrep's is 3)"
        );
        let faults = RendezvousFaultInjection::default();
        let shared = faults.clone();
        shared.fail_creation(ResourceType::SupportBundle);
        assert!(faults.creation_fails(ResourceType::SupportBundle));
        assert!(!faults.creation_fails(ResourceType::Alert));
        shared.heal_creation(ResourceType::SupportBundle);
        assert!(!faults.creation_fails(ResourceType::SupportBundle));
        assert_eq!(
            CreateError::Injected(ResourceType::SupportBundle).to_string(),
            "creating support bundles: failure injected by a test"
        );
    }
}
