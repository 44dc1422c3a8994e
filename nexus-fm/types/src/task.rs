//! Background-task status: what one activation of a task did, as persisted
//! per executor for the debug CLI.
//!
//! Each task has one typed status ([`FmSitrepLoaderStatus`],
//! [`FmRendezvousStatus`], [`FmSitrepPrunerStatus`]); the driver serializes
//! it into the `status` of a [`TaskActivationRecord`]. The status types are
//! also `Deserialize`, so the CLI and the demo can read a persisted record
//! back into its type. Each status type carries its task's name as
//! `TASK_NAME`, the same string as the task's file, its registered name and
//! the CLI's.

use crate::generation::Generation;
use crate::ids::{ExecutorUuid, SitrepUuid};
use crate::sitrep::{ResourceType, SitrepVersion};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The last completed activation of one task on one executor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskActivationRecord {
    /// The executor (control-plane instance) that ran it.
    pub executor_id: ExecutorUuid,
    /// The task's registered name, e.g. `fm_rendezvous`.
    pub task_name: String,
    /// Activation number within the executor process, starting at 1.
    pub iteration: u64,
    /// When the activation started.
    pub time_started: DateTime<Utc>,
    /// How long it took, in microseconds.
    pub duration_usec: u64,
    /// The task's typed status, serialized.
    pub status: serde_json::Value,
}

/// The names of every fault-management background task, in the order the
/// daemon registers them.
pub const ALL_TASK_NAMES: [&str; 3] = [
    FmSitrepLoaderStatus::TASK_NAME,
    FmRendezvousStatus::TASK_NAME,
    FmSitrepPrunerStatus::TASK_NAME,
];

/// Why the driver activated a task.
///
/// Reasons are only reported: an activation does the same work whatever
/// woke it. Several reasons that arrive while a task is busy are merged into
/// one activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationReason {
    /// The task's period elapsed (the first period elapses at start-up).
    Periodic,
    /// Someone asked for an activation through the task's handle.
    Explicit,
    /// The database announced a newly published sitrep (LISTEN/NOTIFY).
    Notification,
    /// The rendezvous task found that the sitrep it holds is no longer
    /// current.
    StaleReport,
    /// The sitrep loader published a different sitrep.
    SitrepLoaded,
    /// The daemon runs every task exactly once (`fmd --once`).
    RunOnce,
}

impl fmt::Display for ActivationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActivationReason::Periodic => "periodic",
            ActivationReason::Explicit => "explicit",
            ActivationReason::Notification => "notification",
            ActivationReason::StaleReport => "stale report",
            ActivationReason::SitrepLoaded => "sitrep loaded",
            ActivationReason::RunOnce => "run once",
        })
    }
}

/// A sitrep together with its position in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitrepRef {
    /// The sitrep's history version.
    pub version: SitrepVersion,
    /// The sitrep's id.
    pub sitrep_id: SitrepUuid,
}

impl fmt::Display for SitrepRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sitrep {} (version {})", self.sitrep_id, self.version)
    }
}

/// Status of one activation of `fm_sitrep_loader`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FmSitrepLoaderStatus {
    /// What woke this activation (several wake-ups may be merged into one).
    pub woken_by: Vec<ActivationReason>,
    /// The one sitrep the loader is pinned to (`fmd --once --sitrep ID`),
    /// or `None` when it follows the current sitrep.
    pub pinned: Option<SitrepUuid>,
    /// The current history entry this activation saw (`None`: the history
    /// is empty, the read failed, or the loader is pinned).
    pub current: Option<SitrepRef>,
    /// The sitrep the loader holds (and publishes) after this activation.
    pub loaded: Option<SitrepRef>,
    /// Whether this activation loaded and published a different sitrep.
    pub changed: bool,
    /// The state of the LISTEN connection, e.g. "listening on
    /// fm_sitrep_published" or "not listening: polling only".
    pub listener: String,
    /// What happened, e.g. "loaded a new sitrep" or "unchanged".
    pub outcome: String,
    /// Why the activation failed, with its whole cause chain.
    pub error: Option<String>,
}

impl FmSitrepLoaderStatus {
    /// The task's name.
    pub const TASK_NAME: &'static str = "fm_sitrep_loader";
}

/// Status of one activation of `fm_rendezvous`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FmRendezvousStatus {
    /// When the activation started.
    pub time_started: DateTime<Utc>,
    /// How long it took, in microseconds.
    pub duration_usec: u64,
    /// The sitrep executed (`None`: no sitrep was loaded yet).
    pub sitrep: Option<SitrepRef>,
    /// What happened overall, e.g. "skipped: no sitrep loaded yet".
    pub outcome: String,
    /// What happened for alerts (`None` when nothing was executed).
    pub alert: Option<RendezvousTypeStatus>,
    /// What happened for support bundles (`None` when nothing was executed).
    pub support_bundle: Option<RendezvousTypeStatus>,
}

impl FmRendezvousStatus {
    /// The task's name.
    pub const TASK_NAME: &'static str = "fm_rendezvous";

    /// The status of one resource type, if it was executed.
    pub fn of(&self, resource: ResourceType) -> Option<&RendezvousTypeStatus> {
        match resource {
            ResourceType::Alert => self.alert.as_ref(),
            ResourceType::SupportBundle => self.support_bundle.as_ref(),
        }
    }
}

/// What one rendezvous activation did for one resource type.
///
/// Creation and the sweep are reported separately: each runs whether or
/// not the other succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RendezvousTypeStatus {
    /// The resource type.
    pub resource: ResourceType,
    /// The sitrep executed.
    pub sitrep: SitrepRef,
    /// That sitrep's generation for this type.
    pub generation: Generation,
    /// Requests of this type in the sitrep.
    pub requested: u64,
    /// Requests first made by this very sitrep (their
    /// `requested_sitrep_id` is the sitrep executed).
    pub newly_requested: u64,
    /// Resources created by this activation.
    pub created: u64,
    /// Requests whose resource already existed, live.
    pub already_existed: u64,
    /// Requests not re-created because their resource was deleted by an
    /// operator (a tombstone blocks re-creation).
    pub deleted_not_recreated: u64,
    /// Requests not created because their id is the nil UUID (rows that
    /// predate schema version 3).
    #[serde(default)]
    pub refused_nil_id: u64,
    /// Whether creation was skipped because the latest sitrep has a
    /// different generation for this type.
    pub stale: bool,
    /// The latest sitrep's generation for this type, when the sitrep was
    /// found stale (`None` otherwise, or when there is no latest sitrep).
    pub latest_generation: Option<Generation>,
    /// SQL statements issued for creation.
    pub statements: u64,
    /// Serialization-failure retries of those statements.
    #[serde(default)]
    pub retries: u64,
    /// What happened, e.g. "created 3 of 3 requested" or "skipped: this
    /// executor's sitrep is no longer current".
    pub outcome: String,
    /// Creation errors, each with its whole cause chain.
    pub errors: Vec<String>,
    /// The tombstone sweep.
    pub sweep: SweepStatus,
}

/// What one tombstone sweep (docs/design.md, "The sweep") did for one resource
/// type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepStatus {
    /// What happened, e.g. "hard-deleted 2 of 5 tombstone(s); kept 3 still
    /// requested, 0 too new for this sitrep".
    pub outcome: String,
    /// Pages of the tombstone index walked.
    pub pages: u64,
    /// Tombstones examined.
    pub tombstones_examined: u64,
    /// Tombstones hard-deleted.
    pub hard_deleted: u64,
    /// Tombstones kept because the sitrep still requests them.
    pub retained_still_requested: u64,
    /// Tombstones kept because their generation is not older than the
    /// sitrep's.
    pub retained_too_new: u64,
    /// Tombstones kept because the sitrep's row is missing (pruned, or it
    /// never became current), so it may not drive a sweep.
    pub retained_sitrep_missing: u64,
    /// Serialization-failure retries of the sweep's statements.
    #[serde(default)]
    pub retries: u64,
    /// Sweep errors, each with its whole cause chain.
    pub errors: Vec<String>,
}

impl SweepStatus {
    /// A sweep that did nothing, with the given outcome label.
    pub fn nothing_done(outcome: impl Into<String>) -> Self {
        SweepStatus { outcome: outcome.into(), ..SweepStatus::default() }
    }
}

/// Status of one activation of `fm_sitrep_pruner`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FmSitrepPrunerStatus {
    /// History entries the policy keeps.
    pub keep: u32,
    /// Archive entries the policy keeps.
    pub archive_keep: u32,
    /// The current version when the pass started (`None`: empty history or
    /// the pass failed first).
    pub current_version: Option<SitrepVersion>,
    /// Sitreps archived and deleted, oldest first.
    pub pruned: Vec<SitrepRef>,
    /// History entries another pruner removed first.
    pub already_gone: u64,
    /// Archive entries deleted to respect the policy.
    pub archive_entries_deleted: u64,
    /// Pruned sitreps whose archive entry is partial (too large to archive
    /// whole; the entry says what it left out).
    #[serde(default)]
    pub archives_truncated: u64,
    /// Sitreps this pass could not archive, oldest first: which one, the
    /// error, and whether it was pruned with a failure record or kept. At
    /// most a few are listed; `archive_failures_not_listed` counts the rest.
    #[serde(default)]
    pub archive_failures: Vec<PrunerArchiveFailure>,
    /// Archive failures beyond those listed in `archive_failures`.
    #[serde(default)]
    pub archive_failures_not_listed: u64,
    /// Serialization-failure retries over the pass's transactions.
    #[serde(default)]
    pub retries: u64,
    /// What happened, e.g. "nothing to prune".
    pub outcome: String,
    /// Why the pass failed, with its whole cause chain.
    pub error: Option<String>,
}

impl FmSitrepPrunerStatus {
    /// The task's name.
    pub const TASK_NAME: &'static str = "fm_sitrep_pruner";
}

/// A sitrep the pruner could not archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunerArchiveFailure {
    /// The sitrep and its history version.
    pub sitrep: SitrepRef,
    /// Why archiving it failed, with the whole cause chain.
    pub error: String,
    /// What the pruner did with it.
    pub outcome: ArchiveFailureOutcome,
}

/// What the pruner did with a sitrep it could not archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArchiveFailureOutcome {
    /// Pruned, with an archive entry that says archiving failed and why
    /// (and keeps the metadata when it could be read).
    PrunedWithFailureRecord,
    /// Not even the failure record could be written: the sitrep is kept
    /// whole (retaining a sitrep longer is always safe) and the next pass
    /// tries again.
    Retained {
        /// Why the failure record could not be written.
        failure_record_error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_match_the_file_names() {
        assert_eq!(ALL_TASK_NAMES, ["fm_sitrep_loader", "fm_rendezvous", "fm_sitrep_pruner"]);
    }

    #[test]
    fn statuses_round_trip_through_json() {
        let sitrep = SitrepRef { version: SitrepVersion::FIRST, sitrep_id: SitrepUuid::new_v4() };
        let type_status = RendezvousTypeStatus {
            resource: ResourceType::SupportBundle,
            sitrep,
            generation: Generation::FIRST,
            requested: 3,
            newly_requested: 1,
            created: 1,
            already_existed: 1,
            deleted_not_recreated: 1,
            stale: false,
            latest_generation: None,
            refused_nil_id: 0,
            statements: 1,
            retries: 0,
            outcome: "created 1 of 3 requested".into(),
            errors: vec![],
            sweep: SweepStatus::nothing_done("no tombstones"),
        };
        let status = FmRendezvousStatus {
            time_started: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            duration_usec: 12,
            sitrep: Some(sitrep),
            outcome: "executed".into(),
            alert: None,
            support_bundle: Some(type_status.clone()),
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["support_bundle"]["resource"], "support_bundle");
        assert_eq!(json["support_bundle"]["sweep"]["outcome"], "no tombstones");
        let back: FmRendezvousStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
        assert_eq!(back.of(ResourceType::SupportBundle), Some(&type_status));
        assert_eq!(back.of(ResourceType::Alert), None);

        let loader = FmSitrepLoaderStatus {
            woken_by: vec![ActivationReason::Periodic, ActivationReason::StaleReport],
            pinned: None,
            current: Some(sitrep),
            loaded: Some(sitrep),
            changed: true,
            listener: "polling only".into(),
            outcome: "loaded a new sitrep".into(),
            error: None,
        };
        let json = serde_json::to_value(&loader).unwrap();
        assert_eq!(json["woken_by"], serde_json::json!(["periodic", "stale_report"]));
        assert_eq!(serde_json::from_value::<FmSitrepLoaderStatus>(json).unwrap(), loader);
    }
}
