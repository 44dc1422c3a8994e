//! The sitrep builder: how a fault-management analysis makes the next sitrep.
//!
//! An analysis starts a [`SitrepBuilder`] from the current sitrep (or from
//! nothing, for the very first one), opens and closes cases, asks for alerts
//! and support bundles or withdraws earlier requests, and finally calls
//! [`SitrepBuilder::build`]. Publishing the result is the datastore's job.
//!
//! The builder upholds the rules of docs/design.md, "Publishing a sitrep" that are in its power:
//!
//! - **Fresh ids (G2).** The sitrep id and every new request id are random v4
//!   UUIDs made here; no method accepts an id for a new object, so a caller
//!   cannot reuse one. Requests carried forward from the parent keep their id
//!   and the sitrep in which they were first requested.
//! - **Generation rule (G1).** Each resource type's generation is computed by
//!   [`Generation::successor`] from a comparison of that type's request-id set
//!   with the parent's, independently of the other type.
//! - **Validity.** The finished sitrep is normalized (sorted by id) and passes
//!   [`Sitrep::validate`], or the build fails.
//!
//! A closed case is kept while any of its requests still waits for its
//! resource: dropping it earlier would take the request out of the request
//! set before an executor had a chance to create the resource. Once every
//! request of a closed case is satisfied (its resource row exists, live,
//! failed or tombstoned), [`SitrepBuilder::build`] drops the case together
//! with its requests.

use chrono::{DateTime, Utc};
use nexus_fm_types::{
    AlertRequest, AlertUuid, Case, CaseUuid, ExecutorUuid, Generation, GenerationError, Sitrep,
    SitrepMetadata, SitrepUuid, SitrepValidationError, SupportBundleRequest, SupportBundleUuid,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Request ids whose resource already has a row in the database (live,
/// failed or tombstoned).
///
/// [`SitrepBuilder::build`] uses it to decide which closed cases are finished
/// and can be dropped. An id missing from this set only keeps a closed case
/// alive a little longer, so an incomplete set is safe; an id listed here
/// whose resource does not exist would lose that resource for good.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SatisfiedRequests {
    /// Alert requests whose alert row exists.
    pub alerts: HashSet<AlertUuid>,
    /// Support-bundle requests whose bundle row exists.
    pub support_bundles: HashSet<SupportBundleUuid>,
}

/// A builder operation that cannot be carried out.
///
/// A failed operation leaves the builder unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuilderError {
    /// The case is neither carried forward from the parent nor opened in this
    /// sitrep.
    #[error("case {0} is not in the sitrep being built")]
    UnknownCase(CaseUuid),
    /// The case is closed: it cannot be closed again or make new requests.
    #[error("case {0} is closed")]
    CaseClosed(CaseUuid),
    /// No alert request with this id is in the sitrep being built.
    #[error("alert request {0} is not in the sitrep being built")]
    UnknownAlertRequest(AlertUuid),
    /// No support-bundle request with this id is in the sitrep being built.
    #[error("support-bundle request {0} is not in the sitrep being built")]
    UnknownSupportBundleRequest(SupportBundleUuid),
    /// The finished sitrep failed validation (for example an empty alert
    /// class or an oversized payload).
    #[error("the built sitrep is invalid")]
    Invalid(#[from] SitrepValidationError),
    /// A generation could not be computed (it would overflow).
    #[error("cannot compute the sitrep's generations")]
    Generation(#[from] GenerationError),
}

/// What the builder remembers of the parent sitrep to apply the generation
/// rule.
#[derive(Clone, Debug)]
struct ParentSummary {
    /// The parent's id, recorded as the new sitrep's parent.
    id: SitrepUuid,
    /// The parent's alert generation.
    alert_generation: Generation,
    /// The parent's support-bundle generation.
    support_bundle_generation: Generation,
    /// The parent's alert request set.
    alert_ids: BTreeSet<AlertUuid>,
    /// The parent's support-bundle request set.
    support_bundle_ids: BTreeSet<SupportBundleUuid>,
}

/// Builds the next sitrep from the current one.
///
/// See the [module documentation](self) for the rules it upholds.
#[derive(Clone, Debug)]
pub struct SitrepBuilder {
    /// The new sitrep's id.
    id: SitrepUuid,
    /// The parent, or `None` when this is the first sitrep.
    parent: Option<ParentSummary>,
    /// Who builds the sitrep.
    creator_id: ExecutorUuid,
    /// When the builder was started.
    time_created: DateTime<Utc>,
    /// The sitrep's comment.
    comment: String,
    /// Cases, open and closed, keyed by id.
    cases: BTreeMap<CaseUuid, Case>,
    /// Alert requests, keyed by id.
    alert_requests: BTreeMap<AlertUuid, AlertRequest>,
    /// Support-bundle requests, keyed by id.
    support_bundle_requests: BTreeMap<SupportBundleUuid, SupportBundleRequest>,
}

impl SitrepBuilder {
    /// Starts the sitrep that follows `parent` (`None` for the very first
    /// sitrep).
    ///
    /// The new sitrep gets a fresh random id, the current time, and `parent`'s
    /// id as its parent. Everything in `parent` is carried forward unchanged:
    /// its cases, open and closed, and all its requests with their ids and the
    /// sitrep in which each was first requested.
    ///
    /// `parent` is expected to be a valid sitrep (every published or loaded
    /// sitrep is). Should it hold a duplicate id anyway, the last entry with
    /// that id is kept; a request naming a missing case makes
    /// [`SitrepBuilder::build`] fail validation.
    pub fn new(
        parent: Option<&Sitrep>,
        creator_id: ExecutorUuid,
        comment: impl Into<String>,
    ) -> Self {
        let id = fresh_sitrep_id(parent.map(Sitrep::id));
        let mut builder = SitrepBuilder {
            id,
            parent: None,
            creator_id,
            // The database keeps microseconds; truncating here means a
            // sitrep reads back exactly equal to what was built.
            time_created: nexus_fm_types::time::now(),
            comment: comment.into(),
            cases: BTreeMap::new(),
            alert_requests: BTreeMap::new(),
            support_bundle_requests: BTreeMap::new(),
        };
        if let Some(parent) = parent {
            builder.cases = parent.cases.iter().map(|c| (c.id, c.clone())).collect();
            builder.alert_requests =
                parent.alert_requests.iter().map(|r| (r.id, r.clone())).collect();
            builder.support_bundle_requests =
                parent.support_bundle_requests.iter().map(|r| (r.id, r.clone())).collect();
            builder.parent = Some(ParentSummary {
                id: parent.id(),
                alert_generation: parent.metadata.alert_generation,
                support_bundle_generation: parent.metadata.support_bundle_generation,
                alert_ids: builder.alert_requests.keys().copied().collect(),
                support_bundle_ids: builder.support_bundle_requests.keys().copied().collect(),
            });
        }
        builder
    }

    /// The id the new sitrep will have.
    pub fn sitrep_id(&self) -> SitrepUuid {
        self.id
    }

    /// The parent's id, or `None` when this is the first sitrep.
    pub fn parent_sitrep_id(&self) -> Option<SitrepUuid> {
        self.parent.as_ref().map(|p| p.id)
    }

    /// One case of the sitrep being built, open or closed.
    pub fn case(&self, id: CaseUuid) -> Option<&Case> {
        self.cases.get(&id)
    }

    /// The cases of the sitrep being built, open and closed, sorted by id.
    pub fn cases(&self) -> impl Iterator<Item = &Case> {
        self.cases.values()
    }

    /// The alert requests of the sitrep being built, sorted by id.
    pub fn alert_requests(&self) -> impl Iterator<Item = &AlertRequest> {
        self.alert_requests.values()
    }

    /// The support-bundle requests of the sitrep being built, sorted by id.
    pub fn support_bundle_requests(&self) -> impl Iterator<Item = &SupportBundleRequest> {
        self.support_bundle_requests.values()
    }

    /// Opens a new case in this sitrep and returns its fresh id.
    pub fn open_case(
        &mut self,
        diagnosis_engine: impl Into<String>,
        comment: impl Into<String>,
    ) -> CaseUuid {
        let id = fresh_id(CaseUuid::new_v4, |id| self.cases.contains_key(id));
        let case = Case {
            id,
            diagnosis_engine: diagnosis_engine.into(),
            opened_sitrep_id: self.id,
            closed_sitrep_id: None,
            comment: comment.into(),
        };
        self.cases.insert(id, case);
        id
    }

    /// Closes an open case in this sitrep.
    ///
    /// The case and its requests stay in the sitrep until
    /// [`SitrepBuilder::build`] finds every one of its requests satisfied.
    ///
    /// # Errors
    ///
    /// [`BuilderError::UnknownCase`] if the case is not in the sitrep,
    /// [`BuilderError::CaseClosed`] if it is already closed.
    pub fn close_case(&mut self, case: CaseUuid) -> Result<(), BuilderError> {
        let id = self.id;
        let case = self.open_case_mut(case)?;
        case.closed_sitrep_id = Some(id);
        Ok(())
    }

    /// Asks for a new alert on behalf of an open case and returns the fresh
    /// id the alert will have.
    ///
    /// # Errors
    ///
    /// [`BuilderError::UnknownCase`] if the case is not in the sitrep,
    /// [`BuilderError::CaseClosed`] if it is closed.
    pub fn request_alert(
        &mut self,
        case: CaseUuid,
        class: impl Into<String>,
        payload: serde_json::Value,
    ) -> Result<AlertUuid, BuilderError> {
        self.open_case_mut(case)?;
        let id = fresh_id(AlertUuid::new_v4, |id| {
            self.alert_requests.contains_key(id)
                || self.parent.as_ref().is_some_and(|p| p.alert_ids.contains(id))
        });
        let request = AlertRequest {
            id,
            case_id: case,
            requested_sitrep_id: self.id,
            class: class.into(),
            payload,
        };
        self.alert_requests.insert(id, request);
        Ok(id)
    }

    /// Asks for a new support bundle on behalf of an open case and returns
    /// the fresh id the bundle will have.
    ///
    /// # Errors
    ///
    /// [`BuilderError::UnknownCase`] if the case is not in the sitrep,
    /// [`BuilderError::CaseClosed`] if it is closed.
    pub fn request_support_bundle(
        &mut self,
        case: CaseUuid,
        reason: impl Into<String>,
        data_selection: serde_json::Value,
    ) -> Result<SupportBundleUuid, BuilderError> {
        self.open_case_mut(case)?;
        let id = fresh_id(SupportBundleUuid::new_v4, |id| {
            self.support_bundle_requests.contains_key(id)
                || self.parent.as_ref().is_some_and(|p| p.support_bundle_ids.contains(id))
        });
        let request = SupportBundleRequest {
            id,
            case_id: case,
            requested_sitrep_id: self.id,
            reason: reason.into(),
            data_selection,
        };
        self.support_bundle_requests.insert(id, request);
        Ok(id)
    }

    /// Withdraws an alert request: the analysis no longer wants that alert.
    ///
    /// The request may belong to an open or a closed case. A withdrawn id
    /// never returns to the request set, because new requests always get
    /// fresh ids.
    ///
    /// # Errors
    ///
    /// [`BuilderError::UnknownAlertRequest`] if no such request is in the
    /// sitrep.
    pub fn withdraw_alert_request(&mut self, id: AlertUuid) -> Result<(), BuilderError> {
        match self.alert_requests.remove(&id) {
            Some(_) => Ok(()),
            None => Err(BuilderError::UnknownAlertRequest(id)),
        }
    }

    /// Withdraws a support-bundle request: the analysis no longer wants that
    /// bundle.
    ///
    /// The request may belong to an open or a closed case. A withdrawn id
    /// never returns to the request set, because new requests always get
    /// fresh ids.
    ///
    /// # Errors
    ///
    /// [`BuilderError::UnknownSupportBundleRequest`] if no such request is in
    /// the sitrep.
    pub fn withdraw_support_bundle_request(
        &mut self,
        id: SupportBundleUuid,
    ) -> Result<(), BuilderError> {
        match self.support_bundle_requests.remove(&id) {
            Some(_) => Ok(()),
            None => Err(BuilderError::UnknownSupportBundleRequest(id)),
        }
    }

    /// Finishes the sitrep.
    ///
    /// Every closed case whose requests are all in `satisfied` (including a
    /// closed case with no requests at all) is dropped together with its
    /// requests; open cases are never dropped. Each type's generation then
    /// follows the generation rule: the parent's generation if the type's
    /// request-id set equals the parent's, the next one otherwise, and 1 for
    /// the first sitrep. The result is normalized and validated.
    ///
    /// # Errors
    ///
    /// [`BuilderError::Invalid`] if the sitrep fails [`Sitrep::validate`],
    /// [`BuilderError::Generation`] if a generation would overflow.
    pub fn build(mut self, satisfied: &SatisfiedRequests) -> Result<Sitrep, BuilderError> {
        self.drop_finished_cases(satisfied);

        let (alert_generation, support_bundle_generation) = match &self.parent {
            None => (Generation::FIRST, Generation::FIRST),
            Some(parent) => {
                let alerts_unchanged = self.alert_requests.keys().eq(parent.alert_ids.iter());
                let bundles_unchanged =
                    self.support_bundle_requests.keys().eq(parent.support_bundle_ids.iter());
                (
                    Generation::successor(Some(parent.alert_generation), alerts_unchanged)?,
                    Generation::successor(
                        Some(parent.support_bundle_generation),
                        bundles_unchanged,
                    )?,
                )
            }
        };

        let mut sitrep = Sitrep {
            metadata: SitrepMetadata {
                id: self.id,
                parent_sitrep_id: self.parent.as_ref().map(|p| p.id),
                creator_id: self.creator_id,
                time_created: self.time_created,
                comment: self.comment,
                alert_generation,
                support_bundle_generation,
            },
            cases: self.cases.into_values().collect(),
            alert_requests: self.alert_requests.into_values().collect(),
            support_bundle_requests: self.support_bundle_requests.into_values().collect(),
        };
        // The maps already yield their entries sorted by id; normalizing
        // anyway keeps the ordering guarantee in one place, the types crate.
        sitrep.normalize();
        sitrep.validate()?;
        Ok(sitrep)
    }

    /// Looks up a case that must exist and be open.
    fn open_case_mut(&mut self, id: CaseUuid) -> Result<&mut Case, BuilderError> {
        let case = self.cases.get_mut(&id).ok_or(BuilderError::UnknownCase(id))?;
        if case.closed_sitrep_id.is_some() {
            return Err(BuilderError::CaseClosed(id));
        }
        Ok(case)
    }

    /// Removes every closed case none of whose requests still waits for its
    /// resource, together with its requests.
    fn drop_finished_cases(&mut self, satisfied: &SatisfiedRequests) {
        // A closed case is kept exactly when at least one of its requests is
        // unsatisfied; collect those cases first.
        let waiting: BTreeSet<CaseUuid> = self
            .alert_requests
            .values()
            .filter(|r| !satisfied.alerts.contains(&r.id))
            .map(|r| r.case_id)
            .chain(
                self.support_bundle_requests
                    .values()
                    .filter(|r| !satisfied.support_bundles.contains(&r.id))
                    .map(|r| r.case_id),
            )
            .collect();
        let dropped: BTreeSet<CaseUuid> = self
            .cases
            .values()
            .filter(|c| c.closed_sitrep_id.is_some() && !waiting.contains(&c.id))
            .map(|c| c.id)
            .collect();
        if dropped.is_empty() {
            return;
        }
        self.cases.retain(|id, _| !dropped.contains(id));
        self.alert_requests.retain(|_, r| !dropped.contains(&r.case_id));
        self.support_bundle_requests.retain(|_, r| !dropped.contains(&r.case_id));
    }
}

/// Makes a fresh sitrep id that differs from the parent's.
fn fresh_sitrep_id(parent: Option<SitrepUuid>) -> SitrepUuid {
    fresh_id(SitrepUuid::new_v4, |id| Some(*id) == parent)
}

/// Draws random ids until one is not `taken`.
///
/// With v4 UUIDs the first draw is fresh in all but astronomically rare
/// cases; checking anyway makes a collision with an id the builder can see
/// impossible rather than merely unlikely. Ids of older sitreps and existing
/// resource rows are out of the builder's sight; publishing checks those
/// (docs/design.md, "Publishing a sitrep", fresh ids).
fn fresh_id<T>(mut generate: impl FnMut() -> T, taken: impl Fn(&T) -> bool) -> T {
    loop {
        let id = generate();
        if !taken(&id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_fm_types::ResourceType;
    use serde_json::json;

    /// The generations of a sitrep as plain numbers, (alert, support bundle).
    fn generations(sitrep: &Sitrep) -> (i64, i64) {
        (
            sitrep.metadata.alert_generation.as_i64(),
            sitrep.metadata.support_bundle_generation.as_i64(),
        )
    }

    fn alert_ids(sitrep: &Sitrep) -> BTreeSet<AlertUuid> {
        sitrep.alert_requests.iter().map(|r| r.id).collect()
    }

    fn bundle_ids(sitrep: &Sitrep) -> BTreeSet<SupportBundleUuid> {
        sitrep.support_bundle_requests.iter().map(|r| r.id).collect()
    }

    fn case_ids(sitrep: &Sitrep) -> BTreeSet<CaseUuid> {
        sitrep.cases.iter().map(|c| c.id).collect()
    }

    fn find_case(sitrep: &Sitrep, id: CaseUuid) -> &Case {
        sitrep.cases.iter().find(|c| c.id == id).expect("case is in the sitrep")
    }

    fn set<T: Ord + Copy>(ids: &[T]) -> BTreeSet<T> {
        ids.iter().copied().collect()
    }

    /// A first sitrep with one open case holding two alert requests and one
    /// support-bundle request. Returns the sitrep, the case, the alerts and
    /// the bundle.
    fn first_with_requests() -> (Sitrep, CaseUuid, [AlertUuid; 2], SupportBundleUuid) {
        let mut b = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "first");
        let case = b.open_case("power", "PSU trouble");
        let a1 = b.request_alert(case, "hw.pwr.remove.psu", json!({ "slot": 1 })).unwrap();
        let a2 = b.request_alert(case, "hw.pwr.remove.psu", json!({ "slot": 2 })).unwrap();
        let sb = b.request_support_bundle(case, "PSU removed", json!({ "all": true })).unwrap();
        let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
        (sitrep, case, [a1, a2], sb)
    }

    #[test]
    fn first_sitrep() {
        let creator = ExecutorUuid::new_v4();
        let before = nexus_fm_types::time::now();
        let mut b = SitrepBuilder::new(None, creator, "the very first");
        let sitrep_id = b.sitrep_id();
        assert_eq!(b.parent_sitrep_id(), None);
        let case = b.open_case("power", "PSU trouble");
        let alert = b.request_alert(case, "hw.pwr.remove.psu", json!({ "slot": 3 })).unwrap();
        let bundle = b.request_support_bundle(case, "PSU removed", json!({ "all": true })).unwrap();
        let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
        let after = Utc::now();

        assert_eq!(sitrep.metadata.id, sitrep_id);
        assert_eq!(sitrep.metadata.parent_sitrep_id, None);
        assert_eq!(sitrep.metadata.creator_id, creator);
        assert_eq!(sitrep.metadata.comment, "the very first");
        assert!(before <= sitrep.metadata.time_created && sitrep.metadata.time_created <= after);
        assert_eq!(sitrep.metadata.time_created.timestamp_subsec_nanos() % 1000, 0, "microseconds");
        assert_eq!(sitrep.metadata.alert_generation, Generation::FIRST);
        assert_eq!(sitrep.metadata.support_bundle_generation, Generation::FIRST);

        for id in [
            sitrep_id.into_untyped(),
            case.into_untyped(),
            alert.into_untyped(),
            bundle.into_untyped(),
        ] {
            assert_eq!(id.get_version_num(), 4, "{id} is not a v4 UUID");
        }

        assert_eq!(
            sitrep.cases,
            vec![Case {
                id: case,
                diagnosis_engine: "power".into(),
                opened_sitrep_id: sitrep_id,
                closed_sitrep_id: None,
                comment: "PSU trouble".into(),
            }]
        );
        assert_eq!(
            sitrep.alert_requests,
            vec![AlertRequest {
                id: alert,
                case_id: case,
                requested_sitrep_id: sitrep_id,
                class: "hw.pwr.remove.psu".into(),
                payload: json!({ "slot": 3 }),
            }]
        );
        assert_eq!(
            sitrep.support_bundle_requests,
            vec![SupportBundleRequest {
                id: bundle,
                case_id: case,
                requested_sitrep_id: sitrep_id,
                reason: "PSU removed".into(),
                data_selection: json!({ "all": true }),
            }]
        );
    }

    #[test]
    fn empty_first_sitrep_has_generation_one() {
        let sitrep = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "")
            .build(&Default::default())
            .unwrap();
        assert_eq!(generations(&sitrep), (1, 1));
        assert!(sitrep.cases.is_empty());
        assert!(sitrep.alert_requests.is_empty());
        assert!(sitrep.support_bundle_requests.is_empty());
    }

    #[test]
    fn carry_forward_without_changes() {
        // The parent holds an open case and a closed case that still waits
        // for its alert, so both kinds of case are carried forward.
        let (first, _, _, _) = first_with_requests();
        let mut b = SitrepBuilder::new(Some(&first), ExecutorUuid::new_v4(), "second");
        let closing = b.open_case("disk", "");
        let waiting = b.request_alert(closing, "hw.disk.fail", json!({ "disk": "d0" })).unwrap();
        b.close_case(closing).unwrap();
        let parent = b.build(&SatisfiedRequests::default()).unwrap();
        assert!(parent.alert_requests.iter().any(|r| r.id == waiting));
        assert!(find_case(&parent, closing).closed_sitrep_id.is_some());

        let creator = ExecutorUuid::new_v4();
        let b = SitrepBuilder::new(Some(&parent), creator, "no changes");
        assert_eq!(b.parent_sitrep_id(), Some(parent.id()));
        assert_ne!(b.sitrep_id(), parent.id());
        let child = b.build(&SatisfiedRequests::default()).unwrap();

        assert_eq!(child.metadata.parent_sitrep_id, Some(parent.id()));
        assert_ne!(child.id(), parent.id());
        assert_eq!(child.id().into_untyped().get_version_num(), 4);
        assert_eq!(child.metadata.creator_id, creator);
        assert_eq!(child.metadata.comment, "no changes");
        // Whole-struct equality compares ids, opened and closed sitrep ids,
        // first-requested sitrep ids, classes, payloads and selections.
        assert_eq!(child.cases, parent.cases);
        assert_eq!(child.alert_requests, parent.alert_requests);
        assert_eq!(child.support_bundle_requests, parent.support_bundle_requests);
        assert!(child.alert_requests.iter().all(|r| r.requested_sitrep_id != child.id()));
        assert_eq!(generations(&child), generations(&parent));
    }

    #[test]
    fn adding_an_alert_request_bumps_only_the_alert_generation() {
        let (parent, case, [a1, a2], sb) = first_with_requests();
        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "more alerts");
        let a3 = b.request_alert(case, "hw.pwr.remove.psu", json!({ "slot": 3 })).unwrap();
        let child = b.build(&SatisfiedRequests::default()).unwrap();

        assert_eq!(generations(&parent), (1, 1));
        assert_eq!(generations(&child), (2, 1));
        assert_eq!(alert_ids(&child), set(&[a1, a2, a3]));
        assert_eq!(bundle_ids(&child), set(&[sb]));
        let new = child.alert_requests.iter().find(|r| r.id == a3).unwrap();
        assert_eq!(new.requested_sitrep_id, child.id());
        assert_eq!(new.case_id, case);
        let old = child.alert_requests.iter().find(|r| r.id == a1).unwrap();
        assert_eq!(old.requested_sitrep_id, parent.id());
    }

    #[test]
    fn adding_a_bundle_request_bumps_only_the_bundle_generation() {
        let (parent, case, [a1, a2], sb) = first_with_requests();
        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "more bundles");
        let sb2 = b.request_support_bundle(case, "again", json!({ "logs": true })).unwrap();
        let child = b.build(&SatisfiedRequests::default()).unwrap();

        assert_eq!(generations(&child), (1, 2));
        assert_eq!(alert_ids(&child), set(&[a1, a2]));
        assert_eq!(bundle_ids(&child), set(&[sb, sb2]));
        let new = child.support_bundle_requests.iter().find(|r| r.id == sb2).unwrap();
        assert_eq!(new.requested_sitrep_id, child.id());
        assert_eq!(new.data_selection, json!({ "logs": true }));
    }

    #[test]
    fn withdrawing_bumps_only_that_type() {
        let (parent, _, [a1, a2], sb) = first_with_requests();

        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "");
        b.withdraw_alert_request(a1).unwrap();
        let child = b.build(&SatisfiedRequests::default()).unwrap();
        assert_eq!(generations(&child), (2, 1));
        assert_eq!(alert_ids(&child), set(&[a2]));
        assert_eq!(bundle_ids(&child), set(&[sb]));

        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "");
        b.withdraw_support_bundle_request(sb).unwrap();
        let child = b.build(&SatisfiedRequests::default()).unwrap();
        assert_eq!(generations(&child), (1, 2));
        assert_eq!(alert_ids(&child), set(&[a1, a2]));
        assert!(bundle_ids(&child).is_empty());
    }

    #[test]
    fn withdraw_and_add_in_one_build_bumps_once() {
        let (parent, case, [a1, a2], sb) = first_with_requests();
        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "swap");
        b.withdraw_alert_request(a1).unwrap();
        let a3 = b.request_alert(case, "hw.pwr.remove.psu", json!({ "slot": 1 })).unwrap();
        b.withdraw_support_bundle_request(sb).unwrap();
        let sb2 = b.request_support_bundle(case, "PSU removed", json!({ "all": true })).unwrap();
        let child = b.build(&SatisfiedRequests::default()).unwrap();

        // The set sizes are unchanged but the sets are not: each generation
        // moves, by exactly one.
        assert_eq!(generations(&child), (2, 2));
        assert_eq!(alert_ids(&child), set(&[a2, a3]));
        assert_eq!(bundle_ids(&child), set(&[sb2]));
        assert_ne!(a3, a1);
        assert_ne!(sb2, sb);
    }

    #[test]
    fn opening_or_closing_cases_keeps_generations() {
        let (parent, case, [a1, a2], sb) = first_with_requests();

        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "open");
        let other = b.open_case("thermal", "");
        let opened = b.build(&SatisfiedRequests::default()).unwrap();
        assert_eq!(generations(&opened), (1, 1));
        assert_eq!(case_ids(&opened), set(&[case, other]));
        assert_eq!(find_case(&opened, other).opened_sitrep_id, opened.id());

        // The closed case still waits for its requests, so it stays.
        let mut b = SitrepBuilder::new(Some(&opened), ExecutorUuid::new_v4(), "close");
        b.close_case(case).unwrap();
        let closed = b.build(&SatisfiedRequests::default()).unwrap();
        assert_eq!(generations(&closed), (1, 1));
        assert_eq!(alert_ids(&closed), set(&[a1, a2]));
        assert_eq!(bundle_ids(&closed), set(&[sb]));
        assert_eq!(find_case(&closed, case).closed_sitrep_id, Some(closed.id()));
    }

    #[test]
    fn closing_cases() {
        let (parent, case, [a1, _], _) = first_with_requests();
        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "close");
        let child_id = b.sitrep_id();
        b.close_case(case).unwrap();
        assert_eq!(b.case(case).unwrap().closed_sitrep_id, Some(child_id));
        assert_eq!(b.case(case).unwrap().opened_sitrep_id, parent.id());

        // A closed case cannot be closed again or ask for anything.
        assert_eq!(b.close_case(case), Err(BuilderError::CaseClosed(case)));
        assert_eq!(
            b.request_alert(case, "hw.pwr.remove.psu", json!({})),
            Err(BuilderError::CaseClosed(case))
        );
        assert_eq!(
            b.request_support_bundle(case, "why", json!({})),
            Err(BuilderError::CaseClosed(case))
        );

        // Unknown cases and requests are refused.
        let stranger = CaseUuid::new_v4();
        assert_eq!(b.close_case(stranger), Err(BuilderError::UnknownCase(stranger)));
        assert_eq!(
            b.request_alert(stranger, "c", json!({})),
            Err(BuilderError::UnknownCase(stranger))
        );
        assert_eq!(
            b.request_support_bundle(stranger, "r", json!({})),
            Err(BuilderError::UnknownCase(stranger))
        );
        let alert = AlertUuid::new_v4();
        assert_eq!(b.withdraw_alert_request(alert), Err(BuilderError::UnknownAlertRequest(alert)));
        let bundle = SupportBundleUuid::new_v4();
        assert_eq!(
            b.withdraw_support_bundle_request(bundle),
            Err(BuilderError::UnknownSupportBundleRequest(bundle))
        );

        // A request withdrawn once is gone: withdrawing it again fails.
        b.withdraw_alert_request(a1).unwrap();
        assert_eq!(b.withdraw_alert_request(a1), Err(BuilderError::UnknownAlertRequest(a1)));

        // The failed calls changed nothing: the result is the parent with the
        // case closed and one alert withdrawn.
        let child = b.build(&SatisfiedRequests::default()).unwrap();
        let mut expected_cases = parent.cases.clone();
        expected_cases[0].closed_sitrep_id = Some(child_id);
        assert_eq!(child.cases, expected_cases);
        let expected_alerts: Vec<_> =
            parent.alert_requests.iter().filter(|r| r.id != a1).cloned().collect();
        assert_eq!(child.alert_requests, expected_alerts);
        assert_eq!(child.support_bundle_requests, parent.support_bundle_requests);

        // A case closed in an earlier sitrep stays closed in the next one.
        let mut b = SitrepBuilder::new(Some(&child), ExecutorUuid::new_v4(), "");
        assert_eq!(b.close_case(case), Err(BuilderError::CaseClosed(case)));
        let grandchild = b.build(&SatisfiedRequests::default()).unwrap();
        assert_eq!(find_case(&grandchild, case).closed_sitrep_id, Some(child_id));
    }

    #[test]
    fn dropping_satisfied_closed_cases() {
        // Parent cases:
        // - `alerts_only`: alerts x1, x2 (both will be satisfied);
        // - `mixed`: alert m1 (satisfied) and bundle mb (not satisfied);
        // - `open`: alert o1 and bundle ob (both satisfied, but it stays open);
        // - `empty`: no requests;
        // - `bundles_only`: bundle y1 (satisfied, closed only later).
        let mut b = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "parent");
        let alerts_only = b.open_case("a", "");
        let x1 = b.request_alert(alerts_only, "c.x", json!(1)).unwrap();
        let x2 = b.request_alert(alerts_only, "c.x", json!(2)).unwrap();
        let mixed = b.open_case("m", "");
        let m1 = b.request_alert(mixed, "c.m", json!(3)).unwrap();
        let mb = b.request_support_bundle(mixed, "m", json!(4)).unwrap();
        let open = b.open_case("o", "");
        let o1 = b.request_alert(open, "c.o", json!(5)).unwrap();
        let ob = b.request_support_bundle(open, "o", json!(6)).unwrap();
        let empty = b.open_case("e", "");
        let bundles_only = b.open_case("b", "");
        let y1 = b.request_support_bundle(bundles_only, "y", json!(7)).unwrap();
        let parent = b.build(&SatisfiedRequests::default()).unwrap();
        assert_eq!(generations(&parent), (1, 1));

        let satisfied = SatisfiedRequests {
            alerts: [x1, x2, m1, o1].into_iter().collect(),
            support_bundles: [ob, y1].into_iter().collect(),
        };
        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "child");
        b.close_case(alerts_only).unwrap();
        b.close_case(mixed).unwrap();
        b.close_case(empty).unwrap();
        // A case opened and closed in the same build without requests has
        // nothing left to do either.
        let fleeting = b.open_case("f", "");
        b.close_case(fleeting).unwrap();
        let child = b.build(&satisfied).unwrap();

        // `alerts_only`, `empty` and `fleeting` are gone, and x1, x2 with
        // them; `mixed` stays with all its requests because mb waits; `open`
        // stays although everything it asked for exists.
        assert_eq!(case_ids(&child), set(&[mixed, open, bundles_only]));
        assert_eq!(find_case(&child, mixed).closed_sitrep_id, Some(child.id()));
        assert_eq!(find_case(&child, open).closed_sitrep_id, None);
        assert_eq!(alert_ids(&child), set(&[m1, o1]));
        assert_eq!(bundle_ids(&child), set(&[mb, ob, y1]));
        // Only the alert set shrank.
        assert_eq!(generations(&child), (2, 1));

        // Closing `bundles_only`, whose only request is satisfied, drops it
        // and bumps only the bundle generation.
        let mut b = SitrepBuilder::new(Some(&child), ExecutorUuid::new_v4(), "grandchild");
        b.close_case(bundles_only).unwrap();
        let grandchild = b.build(&satisfied).unwrap();
        assert_eq!(case_ids(&grandchild), set(&[mixed, open]));
        assert_eq!(alert_ids(&grandchild), set(&[m1, o1]));
        assert_eq!(bundle_ids(&grandchild), set(&[mb, ob]));
        assert_eq!(generations(&grandchild), (2, 2));

        // Once mb's bundle exists, `mixed` (closed in an earlier sitrep) is
        // dropped with both its requests, and both generations move.
        let mut satisfied = satisfied;
        satisfied.support_bundles.insert(mb);
        let next = SitrepBuilder::new(Some(&grandchild), ExecutorUuid::new_v4(), "")
            .build(&satisfied)
            .unwrap();
        assert_eq!(case_ids(&next), set(&[open]));
        assert_eq!(alert_ids(&next), set(&[o1]));
        assert_eq!(bundle_ids(&next), set(&[ob]));
        assert_eq!(generations(&next), (3, 3));
    }

    #[test]
    fn withdrawing_the_last_waiting_request_lets_a_closed_case_go() {
        let (parent, case, [a1, a2], sb) = first_with_requests();
        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "");
        b.close_case(case).unwrap();
        let closed = b.build(&SatisfiedRequests::default()).unwrap();
        assert_eq!(case_ids(&closed), set(&[case]));

        // a1 and sb exist; a2 never will, so the analysis withdraws it.
        let satisfied = SatisfiedRequests {
            alerts: [a1].into_iter().collect(),
            support_bundles: [sb].into_iter().collect(),
        };
        let mut b = SitrepBuilder::new(Some(&closed), ExecutorUuid::new_v4(), "");
        b.withdraw_alert_request(a2).unwrap();
        let child = b.build(&satisfied).unwrap();
        assert!(child.cases.is_empty());
        assert!(child.alert_requests.is_empty());
        assert!(child.support_bundle_requests.is_empty());
        assert_eq!(generations(&child), (2, 2));
    }

    #[test]
    fn chain_of_builds_follows_the_generation_rule() {
        let satisfied = SatisfiedRequests::default();
        let mut chain = Vec::new();
        let mut b = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "0");
        let c1 = b.open_case("power", "");
        let a1 = b.request_alert(c1, "c", json!(1)).unwrap();
        chain.push(b.build(&satisfied).unwrap());

        // Each step is one build on top of the previous sitrep.
        type Step = Box<dyn Fn(&mut SitrepBuilder)>;
        let steps: Vec<Step> = vec![
            // Nothing changes.
            Box::new(|_| {}),
            // A bundle is requested.
            Box::new(move |b| {
                b.request_support_bundle(c1, "r", json!(2)).unwrap();
            }),
            // A second case opens with an alert.
            Box::new(|b| {
                let c2 = b.open_case("disk", "");
                b.request_alert(c2, "d", json!(3)).unwrap();
            }),
            // The first alert is withdrawn and replaced.
            Box::new(move |b| {
                b.withdraw_alert_request(a1).unwrap();
                b.request_alert(c1, "c", json!(4)).unwrap();
            }),
            // The first case closes; its requests keep it alive.
            Box::new(move |b| b.close_case(c1).unwrap()),
            // Nothing changes again.
            Box::new(|_| {}),
            // Every bundle request is withdrawn.
            Box::new(|b| {
                let ids: Vec<_> = b.support_bundle_requests().map(|r| r.id).collect();
                for id in ids {
                    b.withdraw_support_bundle_request(id).unwrap();
                }
            }),
        ];
        for (i, step) in steps.iter().enumerate() {
            let parent = chain.last().unwrap();
            let mut b = SitrepBuilder::new(Some(parent), ExecutorUuid::new_v4(), i.to_string());
            step(&mut b);
            let child = b.build(&satisfied).unwrap();
            assert_eq!(child.metadata.parent_sitrep_id, Some(parent.id()));
            chain.push(child);
        }

        assert_eq!(
            chain.iter().map(generations).collect::<Vec<_>>(),
            vec![(1, 1), (1, 1), (1, 2), (2, 2), (3, 2), (3, 2), (3, 2), (3, 3)]
        );
        for resource in ResourceType::ALL {
            let generation = |s: &Sitrep| s.metadata.generation(resource);
            for pair in chain.windows(2) {
                let (parent, child) = (&pair[0], &pair[1]);
                let same = parent.request_ids(resource) == child.request_ids(resource);
                let expected = Generation::successor(Some(generation(parent)), same).unwrap();
                assert_eq!(generation(child), expected, "{resource} in sitrep {}", child.id());
            }
            // Along the chain, equal generations mean equal request sets (C1).
            for (i, s) in chain.iter().enumerate() {
                for t in &chain[i + 1..] {
                    assert!(generation(s) <= generation(t));
                    if generation(s) == generation(t) {
                        assert_eq!(s.request_ids(resource), t.request_ids(resource));
                    }
                }
            }
        }
    }

    #[test]
    fn new_request_ids_are_never_reused() {
        let (parent, case, [a1, a2], sb) = first_with_requests();
        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "");
        b.withdraw_alert_request(a1).unwrap();
        let fresh: Vec<_> =
            (0..100).map(|i| b.request_alert(case, "c", json!(i)).unwrap()).collect();
        let fresh_set = set(&fresh);
        assert_eq!(fresh_set.len(), fresh.len());
        assert!(!fresh_set.contains(&a1) && !fresh_set.contains(&a2));
        assert!(fresh.iter().all(|id| id.into_untyped().get_version_num() == 4));
        let bundle = b.request_support_bundle(case, "r", json!(null)).unwrap();
        assert_ne!(bundle, sb);
    }

    #[test]
    fn invalid_contents_fail_the_build() {
        let mut b = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "");
        let case = b.open_case("power", "");
        b.request_alert(case, "   ", json!({})).unwrap();
        let err = b.build(&SatisfiedRequests::default()).unwrap_err();
        assert!(
            matches!(err, BuilderError::Invalid(SitrepValidationError::EmptyField { ref what })
                if what.starts_with("class of alert request")),
            "{err:?}"
        );
        // The error's message does not repeat its source.
        assert_eq!(err.to_string(), "the built sitrep is invalid");

        let mut b = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "");
        b.open_case("", "");
        assert!(matches!(
            b.build(&SatisfiedRequests::default()),
            Err(BuilderError::Invalid(SitrepValidationError::EmptyField { .. }))
        ));
    }

    #[test]
    fn generation_overflow_is_an_error() {
        let (mut parent, case, _, _) = first_with_requests();
        let max = Generation::try_new(i64::MAX).unwrap();
        parent.metadata.alert_generation = max;

        // Unchanged requests keep the largest generation.
        let same = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "")
            .build(&SatisfiedRequests::default())
            .unwrap();
        assert_eq!(same.metadata.alert_generation, max);

        let mut b = SitrepBuilder::new(Some(&parent), ExecutorUuid::new_v4(), "");
        b.request_alert(case, "c", json!({})).unwrap();
        assert_eq!(
            b.build(&SatisfiedRequests::default()),
            Err(BuilderError::Generation(GenerationError::Overflow(i64::MAX)))
        );
    }
}
