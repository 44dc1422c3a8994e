//! The demo's verification: reading the database once every executor has
//! stopped, it checks what docs/design.md promises.
//!
//! - Everything the current sitrep requests exists: each requested alert and
//!   support bundle has a live row, or a tombstone (deleted by an operator,
//!   which blocks re-creation, so it counts as done).
//! - Nothing an operator deleted during the demo came back: no such
//!   resource is live again.
//! - The sweeps collected what they may, and only that (docs/design.md,
//!   "The sweep"): every resource an operator deleted that the current sitrep no
//!   longer requests is gone (its tombstone was hard-deleted), and every
//!   one it still requests is still a tombstone. The demo makes the
//!   listening executors execute the current sitrep after the last
//!   deletion, so by the end their sweeps have run with it.
//! - No executor reported an error, and every executor's last activation of
//!   every task is persisted (what `fmdb` shows).

use super::analysis::RequestedEver;
use super::operator::DeletedResource;
use super::report::{ExecutorSummary, ResourceRows};
use anyhow::Context;
use fm_db_queries::{DataStore, OpContext};
use nexus_fm_types::{ALL_TASK_NAMES, ExecutorUuid, ResourceType, SitrepRef};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Task statuses read back per executor (there are three tasks).
const STATUS_LIMIT: u32 = 10;

/// The current sitrep's contents, in numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SitrepShape {
    /// Open cases.
    pub open_cases: usize,
    /// Closed cases still waiting for some of their resources.
    pub closed_cases: usize,
    /// Alert requests.
    pub alert_requests: usize,
    /// Support-bundle requests.
    pub support_bundle_requests: usize,
}

/// How the current sitrep's requests of one type stand in the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCheck {
    /// Requests in the current sitrep.
    pub requested: usize,
    /// Of those, resources that exist (live).
    pub live: usize,
    /// Of those, resources deleted by an operator (tombstones).
    pub deleted: usize,
}

/// What the verification found. [`Verification::passed`] says whether the
/// demo's outcome is right; [`Verification::details`] says what is wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// The current sitrep at the end (`None`: the history is empty, which
    /// fails the verification).
    pub sitrep: Option<SitrepRef>,
    /// Its contents.
    pub shape: SitrepShape,
    /// Its alert requests.
    pub alerts: RequestCheck,
    /// Its support-bundle requests.
    pub support_bundles: RequestCheck,
    /// Requests of the current sitrep with no row at all (other than
    /// those an operator deleted: see [`Verification::tombstone_gone`]).
    pub missing: Vec<DeletedResource>,
    /// Resources an operator deleted during the demo.
    pub operator_deleted: usize,
    /// Of those, the ones no longer requested whose tombstone a sweep
    /// hard-deleted, as it must.
    pub operator_deleted_swept: usize,
    /// Of those, the ones still requested that are still tombstones, as
    /// they must be.
    pub operator_deleted_retained: usize,
    /// Of those, the ones that are live again.
    pub came_back: Vec<DeletedResource>,
    /// Of those, the ones the current sitrep no longer requests whose
    /// tombstone is still there: no sweep collected it.
    pub not_swept: Vec<DeletedResource>,
    /// Of those, the ones the current sitrep still requests whose row is
    /// gone: a sweep removed a tombstone the sitrep requests.
    pub tombstone_gone: Vec<DeletedResource>,
    /// Errors reported by executors: (executor, error).
    pub executor_errors: Vec<(String, String)>,
    /// Executors whose last activation of some task is not persisted:
    /// (executor, the tasks missing).
    pub statuses_missing: Vec<(String, Vec<String>)>,
}

impl Verification {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.sitrep.is_some()
            && self.missing.is_empty()
            && self.came_back.is_empty()
            && self.not_swept.is_empty()
            && self.tombstone_gone.is_empty()
            && self.executor_errors.is_empty()
            && self.statuses_missing.is_empty()
    }

    /// What is wrong, one item per problem (empty when it passed).
    pub fn details(&self) -> Vec<String> {
        let mut details = Vec::new();
        if self.sitrep.is_none() {
            details.push("the database has no current sitrep".to_string());
        }
        for missing in &self.missing {
            details.push(format!(
                "{} {} is requested by the current sitrep but does not exist",
                missing.resource, missing.id
            ));
        }
        for back in &self.came_back {
            details.push(format!(
                "{} {} was deleted by an operator but is live again",
                back.resource, back.id
            ));
        }
        for kept in &self.not_swept {
            details.push(format!(
                "{} {} was deleted by an operator and is no longer requested by the current \
                 sitrep, but its tombstone was not hard-deleted by a sweep",
                kept.resource, kept.id
            ));
        }
        for gone in &self.tombstone_gone {
            details.push(format!(
                "{} {} was deleted by an operator and is still requested by the current sitrep, \
                 but its tombstone is gone (hard-deleted while still requested)",
                gone.resource, gone.id
            ));
        }
        for (executor, error) in &self.executor_errors {
            details.push(format!("{executor} reported an error: {error}"));
        }
        for (executor, tasks) in &self.statuses_missing {
            details.push(format!("{executor} has no persisted status for {}", tasks.join(", ")));
        }
        details
    }

    /// The one-line verdict, "PASS: ..." or "FAIL: ...".
    pub fn verdict(&self) -> String {
        if !self.passed() {
            let details = self.details();
            return format!("FAIL: {} problem(s): {}", details.len(), details.join("; "));
        }
        let sitrep = self.sitrep.map_or_else(String::new, |s| format!(" (version {})", s.version));
        let Self { alerts, support_bundles, .. } = self;
        format!(
            "PASS: every request of the current sitrep{sitrep} exists: {} alert(s) ({} live, {} \
             deleted by an operator) and {} support bundle(s) ({} live, {} deleted by an \
             operator); none of the {} resources deleted by an operator came back: {} no longer \
             requested were hard-deleted by a sweep, {} still requested are still tombstones; \
             no executor reported an error",
            alerts.requested,
            alerts.live,
            alerts.deleted,
            support_bundles.requested,
            support_bundles.live,
            support_bundles.deleted,
            self.operator_deleted,
            self.operator_deleted_swept,
            self.operator_deleted_retained,
        )
    }

    /// Sorts the resources of type `resource` an operator deleted (`ids`)
    /// by what became of them: `rows` are their rows (id → a tombstone),
    /// `requested` what the current sitrep requests (`None`: there is no
    /// current sitrep, which fails on its own; only a live row is checked).
    fn classify_deleted(
        &mut self,
        resource: ResourceType,
        ids: &BTreeSet<Uuid>,
        rows: &BTreeMap<Uuid, bool>,
        requested: Option<&BTreeSet<Uuid>>,
    ) {
        for &id in ids {
            let named = DeletedResource { resource, id };
            let still_requested = requested.map(|r| r.contains(&id));
            match (rows.get(&id), still_requested) {
                (Some(false), _) => self.came_back.push(named),
                (_, None) => {}
                (Some(true), Some(true)) => self.operator_deleted_retained += 1,
                (Some(true), Some(false)) => self.not_swept.push(named),
                (None, Some(true)) => self.tombstone_gone.push(named),
                (None, Some(false)) => self.operator_deleted_swept += 1,
            }
        }
    }
}

/// Runs every check against the database.
pub(super) async fn verify(
    datastore: &DataStore,
    opctx: &OpContext,
    executors: &[ExecutorSummary],
    executor_ids: &[(String, ExecutorUuid)],
    deleted: &[DeletedResource],
) -> anyhow::Result<Verification> {
    let mut deleted_ids: BTreeMap<ResourceType, BTreeSet<Uuid>> = BTreeMap::new();
    for d in deleted {
        deleted_ids.entry(d.resource).or_default().insert(d.id);
    }
    let no_ids = BTreeSet::new();
    let deleted_of = |resource| deleted_ids.get(&resource).unwrap_or(&no_ids);
    let mut verification = Verification {
        operator_deleted: deleted_ids.values().map(BTreeSet::len).sum(),
        executor_errors: executors
            .iter()
            .flat_map(|e| e.tally.errors.iter().map(|error| (e.name.clone(), error.clone())))
            .collect(),
        ..Verification::default()
    };

    // What the current sitrep requests, per type (`None`: no sitrep).
    let mut requested_now: Option<BTreeMap<ResourceType, BTreeSet<Uuid>>> = None;
    let current =
        datastore.sitrep_read_current(opctx).await.context("reading the current sitrep")?;
    if let Some((version, sitrep)) = current {
        verification.sitrep = Some(SitrepRef { version, sitrep_id: sitrep.id() });
        let closed = sitrep.cases.iter().filter(|c| c.closed_sitrep_id.is_some()).count();
        verification.shape = SitrepShape {
            open_cases: sitrep.cases.len() - closed,
            closed_cases: closed,
            alert_requests: sitrep.alert_requests.len(),
            support_bundle_requests: sitrep.support_bundle_requests.len(),
        };
        for resource in ResourceType::ALL {
            let requested = sitrep.request_ids(resource);
            let rows = rows_of(datastore, opctx, resource, &requested).await?;
            let check = RequestCheck {
                requested: requested.len(),
                live: rows.values().filter(|deleted| !**deleted).count(),
                deleted: rows.values().filter(|deleted| **deleted).count(),
            };
            match resource {
                ResourceType::Alert => verification.alerts = check,
                ResourceType::SupportBundle => verification.support_bundles = check,
            }
            // A deleted request with no row is a tombstone gone, below.
            verification.missing.extend(
                requested
                    .iter()
                    .filter(|id| !rows.contains_key(id) && !deleted_of(resource).contains(id))
                    .map(|&id| DeletedResource { resource, id }),
            );
            requested_now.get_or_insert_default().insert(resource, requested);
        }
    }

    for resource in ResourceType::ALL {
        let ids = deleted_of(resource);
        let rows = rows_of(datastore, opctx, resource, ids).await?;
        let requested = requested_now.as_ref().map(|r| r.get(&resource).unwrap_or(&no_ids));
        verification.classify_deleted(resource, ids, &rows, requested);
    }

    for (name, id) in executor_ids {
        let records = datastore
            .executor_task_status_of(opctx, *id, STATUS_LIMIT)
            .await
            .with_context(|| format!("reading the persisted task statuses of {name}"))?;
        let persisted: BTreeSet<&str> = records.iter().map(|r| r.task_name.as_str()).collect();
        let missing: Vec<String> = ALL_TASK_NAMES
            .iter()
            .filter(|task| !persisted.contains(*task))
            .map(|task| task.to_string())
            .collect();
        if !missing.is_empty() {
            verification.statuses_missing.push((name.clone(), missing));
        }
    }
    Ok(verification)
}

/// How many of the resources the analysis ever requested have a row, live
/// or tombstoned.
pub(super) async fn resource_rows(
    datastore: &DataStore,
    opctx: &OpContext,
    requested: &RequestedEver,
) -> anyhow::Result<ResourceRows> {
    let mut counts = ResourceRows::default();
    for resource in ResourceType::ALL {
        let ids = requested.of(resource);
        let rows = rows_of(datastore, opctx, resource, ids).await?;
        let live = rows.values().filter(|deleted| !**deleted).count();
        let deleted = rows.len() - live;
        match resource {
            ResourceType::Alert => {
                counts.alerts_requested = ids.len();
                counts.alerts_live = live;
                counts.alerts_deleted = deleted;
            }
            ResourceType::SupportBundle => {
                counts.support_bundles_requested = ids.len();
                counts.support_bundles_live = live;
                counts.support_bundles_deleted = deleted;
            }
        }
    }
    Ok(counts)
}

/// The rows of `ids` (id → deleted by an operator).
async fn rows_of(
    datastore: &DataStore,
    opctx: &OpContext,
    resource: ResourceType,
    ids: &BTreeSet<Uuid>,
) -> anyhow::Result<BTreeMap<Uuid, bool>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<Uuid> = ids.iter().copied().collect();
    let rows = datastore
        .fm_resource_rows_including_deleted(opctx, resource, &ids)
        .await
        .with_context(|| format!("looking up {resource} rows"))?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_fm_types::{SitrepUuid, SitrepVersion};

    fn passing() -> Verification {
        Verification {
            sitrep: Some(SitrepRef {
                version: SitrepVersion::try_new(41).unwrap(),
                sitrep_id: SitrepUuid::new_v4(),
            }),
            alerts: RequestCheck { requested: 5, live: 5, deleted: 0 },
            support_bundles: RequestCheck { requested: 2, live: 1, deleted: 1 },
            operator_deleted: 4,
            operator_deleted_swept: 3,
            operator_deleted_retained: 1,
            ..Verification::default()
        }
    }

    #[test]
    fn a_clean_outcome_passes() {
        let v = passing();
        assert!(v.passed());
        assert!(v.details().is_empty());
        assert_eq!(
            v.verdict(),
            "PASS: every request of the current sitrep (version 41) exists: 5 alert(s) (5 live, 0 \
             deleted by an operator) and 2 support bundle(s) (1 live, 1 deleted by an operator); \
             none of the 4 resources deleted by an operator came back: 3 no longer requested \
             were hard-deleted by a sweep, 1 still requested are still tombstones; no executor \
             reported an error"
        );
    }

    #[test]
    fn every_problem_fails_and_is_named() {
        let id = Uuid::from_u128(7);
        let problems: [fn(&mut Verification); 7] = [
            |v| v.sitrep = None,
            |v| {
                v.missing
                    .push(DeletedResource { resource: ResourceType::Alert, id: Uuid::from_u128(7) })
            },
            |v| {
                v.came_back.push(DeletedResource {
                    resource: ResourceType::SupportBundle,
                    id: Uuid::from_u128(7),
                })
            },
            |v| {
                v.not_swept
                    .push(DeletedResource { resource: ResourceType::Alert, id: Uuid::from_u128(7) })
            },
            |v| {
                v.tombstone_gone.push(DeletedResource {
                    resource: ResourceType::SupportBundle,
                    id: Uuid::from_u128(7),
                })
            },
            |v| v.executor_errors.push(("executor 2".into(), "fm_rendezvous: boom".into())),
            |v| v.statuses_missing.push(("executor 1".into(), vec!["fm_sitrep_pruner".into()])),
        ];
        let expected = [
            "the database has no current sitrep".to_string(),
            format!("alert {id} is requested by the current sitrep but does not exist"),
            format!("support bundle {id} was deleted by an operator but is live again"),
            format!(
                "alert {id} was deleted by an operator and is no longer requested by the current \
                 sitrep, but its tombstone was not hard-deleted by a sweep"
            ),
            format!(
                "support bundle {id} was deleted by an operator and is still requested by the \
                 current sitrep, but its tombstone is gone (hard-deleted while still requested)"
            ),
            "executor 2 reported an error: fm_rendezvous: boom".to_string(),
            "executor 1 has no persisted status for fm_sitrep_pruner".to_string(),
        ];
        for (problem, expected) in problems.iter().zip(expected) {
            let mut v = passing();
            problem(&mut v);
            assert!(!v.passed(), "{expected}");
            assert_eq!(v.details(), std::slice::from_ref(&expected));
            assert_eq!(v.verdict(), format!("FAIL: 1 problem(s): {expected}"));
        }
    }

    #[test]
    fn each_deleted_resource_is_sorted_by_what_became_of_it() {
        let id = Uuid::from_u128;
        // 1: a tombstone, still requested. 2: gone, no longer requested.
        // 3: live again. 4: a tombstone, no longer requested. 5: gone,
        // still requested. 6: live again, no longer requested.
        let deleted: BTreeSet<Uuid> = (1..=6).map(id).collect();
        let rows: BTreeMap<Uuid, bool> =
            [(id(1), true), (id(3), false), (id(4), true), (id(6), false)].into();
        let requested: BTreeSet<Uuid> = [id(1), id(3), id(5), id(9)].into();
        let named = |n| DeletedResource { resource: ResourceType::Alert, id: id(n) };

        let mut v = passing();
        v.operator_deleted_swept = 0;
        v.operator_deleted_retained = 0;
        v.classify_deleted(ResourceType::Alert, &deleted, &rows, Some(&requested));
        assert_eq!((v.operator_deleted_swept, v.operator_deleted_retained), (1, 1));
        assert_eq!(v.came_back, [named(3), named(6)]);
        assert_eq!(v.not_swept, [named(4)]);
        assert_eq!(v.tombstone_gone, [named(5)]);
        assert_eq!(v.details().len(), 4, "{:?}", v.details());

        // Without a current sitrep only a live row is judged.
        let mut v = passing();
        v.operator_deleted_swept = 0;
        v.operator_deleted_retained = 0;
        v.classify_deleted(ResourceType::Alert, &deleted, &rows, None);
        assert_eq!((v.operator_deleted_swept, v.operator_deleted_retained), (0, 0));
        assert_eq!(v.came_back, [named(3), named(6)]);
        assert!(v.not_swept.is_empty() && v.tombstone_gone.is_empty());
    }
}
