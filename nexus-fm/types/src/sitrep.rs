//! Sitreps: immutable desired-state documents.
//!
//! A [`Sitrep`] holds its [`SitrepMetadata`], the open (and recently closed)
//! [`Case`]s, and the [`AlertRequest`]s and [`SupportBundleRequest`]s those
//! cases make. Its JSON form (serde) is the one `fm-dev sitrep publish`
//! reads and the README documents.
//!
//! [`Sitrep::validate`] checks everything that can be checked without the
//! database: duplicate ids, requests naming a case the sitrep does not hold,
//! empty or oversized fields, too many entries. Publishing runs it first and
//! writes nothing when it fails.

use crate::generation::Generation;
use crate::ids::{AlertUuid, CaseUuid, ExecutorUuid, SitrepUuid, SupportBundleUuid};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use uuid::Uuid;

/// Most cases one sitrep may hold.
pub const MAX_CASES: usize = 100_000;
/// Most requests of one resource type one sitrep may hold.
pub const MAX_REQUESTS_PER_TYPE: usize = 1_000_000;
/// Longest sitrep or case comment, in bytes.
pub const MAX_COMMENT_BYTES: usize = 4096;
/// Longest diagnosis-engine name or alert class, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest support-bundle reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// Largest alert payload or bundle data selection, in bytes of compact JSON.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// A resource type that sitreps request. Each is handled independently
/// everywhere: its own request set, generation, creation and sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// Alerts.
    Alert,
    /// Support bundles.
    SupportBundle,
}

impl ResourceType {
    /// Both types, in a fixed order.
    pub const ALL: [ResourceType; 2] = [ResourceType::Alert, ResourceType::SupportBundle];
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceType::Alert => "alert",
            ResourceType::SupportBundle => "support bundle",
        })
    }
}

/// A sitrep's position in the history: 1 for the first sitrep made
/// current, one more for each after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct SitrepVersion(i64);

/// A value that cannot be a [`SitrepVersion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("sitrep version must be at least 1, got {0}")]
pub struct SitrepVersionError(pub i64);

impl SitrepVersion {
    /// The first version.
    pub const FIRST: SitrepVersion = SitrepVersion(1);

    /// Builds a version from a database or user value.
    ///
    /// # Errors
    ///
    /// [`SitrepVersionError`] if `value < 1`.
    pub const fn try_new(value: i64) -> Result<Self, SitrepVersionError> {
        if value < 1 { Err(SitrepVersionError(value)) } else { Ok(SitrepVersion(value)) }
    }

    /// The version after this one.
    ///
    /// # Panics
    ///
    /// At `i64::MAX`, which a history growing by one per publish never
    /// reaches.
    pub const fn next(self) -> SitrepVersion {
        SitrepVersion(self.0 + 1)
    }

    /// The value as stored in the database.
    pub const fn as_i64(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for SitrepVersion {
    type Error = SitrepVersionError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::try_new(value)
    }
}

impl From<SitrepVersion> for i64 {
    fn from(v: SitrepVersion) -> i64 {
        v.0
    }
}

impl fmt::Display for SitrepVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Everything about a sitrep except its contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SitrepMetadata {
    /// The sitrep's id.
    pub id: SitrepUuid,
    /// The sitrep that was current when this one was built; `None` for the
    /// first sitrep.
    pub parent_sitrep_id: Option<SitrepUuid>,
    /// The control-plane instance whose fault-management analysis built it.
    pub creator_id: ExecutorUuid,
    /// When it was built.
    pub time_created: DateTime<Utc>,
    /// A human-readable note.
    pub comment: String,
    /// Alert generation (docs/design.md, "Publishing a sitrep").
    pub alert_generation: Generation,
    /// Support-bundle generation (docs/design.md, "Publishing a sitrep").
    pub support_bundle_generation: Generation,
}

impl SitrepMetadata {
    /// The generation of one resource type.
    pub fn generation(&self, resource: ResourceType) -> Generation {
        match resource {
            ResourceType::Alert => self.alert_generation,
            ResourceType::SupportBundle => self.support_bundle_generation,
        }
    }
}

/// A fault-management case as it stands in one sitrep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The case's id, the same in every sitrep that carries it.
    pub id: CaseUuid,
    /// The diagnosis engine that opened it.
    pub diagnosis_engine: String,
    /// The sitrep in which it was opened.
    pub opened_sitrep_id: SitrepUuid,
    /// The sitrep in which it was closed, if it is closed.
    pub closed_sitrep_id: Option<SitrepUuid>,
    /// A human-readable note.
    pub comment: String,
}

/// An alert that a sitrep asks to exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRequest {
    /// The id of the alert to create.
    pub id: AlertUuid,
    /// The case that asks for it.
    pub case_id: CaseUuid,
    /// The sitrep in which the request first appeared.
    pub requested_sitrep_id: SitrepUuid,
    /// The alert class, e.g. `hw.pwr.remove.psu`.
    pub class: String,
    /// The alert payload.
    pub payload: serde_json::Value,
}

/// A support bundle that a sitrep asks to exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportBundleRequest {
    /// The id of the bundle to create.
    pub id: SupportBundleUuid,
    /// The case that asks for it.
    pub case_id: CaseUuid,
    /// The sitrep in which the request first appeared.
    pub requested_sitrep_id: SitrepUuid,
    /// Why the bundle is wanted.
    pub reason: String,
    /// What the bundle should collect.
    pub data_selection: serde_json::Value,
}

/// A whole sitrep.
///
/// The child lists are kept sorted by id ([`Sitrep::normalize`]); reads
/// return them that way, so two equal sitreps compare equal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sitrep {
    /// Metadata.
    pub metadata: SitrepMetadata,
    /// Cases.
    #[serde(default)]
    pub cases: Vec<Case>,
    /// Alert requests.
    #[serde(default)]
    pub alert_requests: Vec<AlertRequest>,
    /// Support-bundle requests.
    #[serde(default)]
    pub support_bundle_requests: Vec<SupportBundleRequest>,
}

impl Sitrep {
    /// The sitrep's id.
    pub fn id(&self) -> SitrepUuid {
        self.metadata.id
    }

    /// Sorts every child list by id.
    pub fn normalize(&mut self) {
        self.cases.sort_by_key(|c| c.id);
        self.alert_requests.sort_by_key(|r| r.id);
        self.support_bundle_requests.sort_by_key(|r| r.id);
    }

    /// The request set of one resource type, as bare ids.
    pub fn request_ids(&self, resource: ResourceType) -> BTreeSet<Uuid> {
        match resource {
            ResourceType::Alert => {
                self.alert_requests.iter().map(|r| r.id.into_untyped()).collect()
            }
            ResourceType::SupportBundle => {
                self.support_bundle_requests.iter().map(|r| r.id.into_untyped()).collect()
            }
        }
    }

    /// Checks everything that can be checked without the database.
    ///
    /// # Errors
    ///
    /// The first [`SitrepValidationError`] found.
    pub fn validate(&self) -> Result<(), SitrepValidationError> {
        use SitrepValidationError as E;
        let m = &self.metadata;
        self.check_no_nil_ids()?;
        if m.parent_sitrep_id == Some(m.id) {
            return Err(E::OwnParent { id: m.id });
        }
        check_text("sitrep comment", &m.comment, MAX_COMMENT_BYTES, true)?;

        check_count("cases", self.cases.len(), MAX_CASES)?;
        check_count("alert requests", self.alert_requests.len(), MAX_REQUESTS_PER_TYPE)?;
        check_count(
            "support-bundle requests",
            self.support_bundle_requests.len(),
            MAX_REQUESTS_PER_TYPE,
        )?;

        let mut cases = HashSet::with_capacity(self.cases.len());
        for case in &self.cases {
            if !cases.insert(case.id) {
                return Err(E::DuplicateId { what: "case", id: case.id.into_untyped() });
            }
            check_text(
                &format!("diagnosis engine of case {}", case.id),
                &case.diagnosis_engine,
                MAX_NAME_BYTES,
                false,
            )?;
            check_text(
                &format!("comment of case {}", case.id),
                &case.comment,
                MAX_COMMENT_BYTES,
                true,
            )?;
        }

        let mut seen = HashSet::with_capacity(self.alert_requests.len());
        for r in &self.alert_requests {
            let id = r.id.into_untyped();
            if !seen.insert(id) {
                return Err(E::DuplicateId { what: "alert request", id });
            }
            if !cases.contains(&r.case_id) {
                return Err(E::UnknownCase { what: "alert request", id, case_id: r.case_id });
            }
            check_text(&format!("class of alert request {id}"), &r.class, MAX_NAME_BYTES, false)?;
            check_json(&format!("payload of alert request {id}"), &r.payload)?;
        }

        let alert_ids = seen;
        let mut seen = HashSet::with_capacity(self.support_bundle_requests.len());
        for r in &self.support_bundle_requests {
            let id = r.id.into_untyped();
            if !seen.insert(id) {
                return Err(E::DuplicateId { what: "support-bundle request", id });
            }
            if alert_ids.contains(&id) {
                return Err(E::DuplicateId {
                    what: "request (alert and support-bundle requests share one id space)",
                    id,
                });
            }
            if !cases.contains(&r.case_id) {
                return Err(E::UnknownCase {
                    what: "support-bundle request",
                    id,
                    case_id: r.case_id,
                });
            }
            check_text(
                &format!("reason of support-bundle request {id}"),
                &r.reason,
                MAX_REASON_BYTES,
                false,
            )?;
            check_json(
                &format!("data selection of support-bundle request {id}"),
                &r.data_selection,
            )?;
        }
        Ok(())
    }

    /// Fails on the first nil id anywhere in the sitrep, naming the field.
    ///
    /// The nil UUID is never a valid id: it is the value an unset field
    /// takes, and keyset cursors once started below it. The schema refuses
    /// it too. Other UUID versions are accepted: ids made by the builder are
    /// random v4, but uniqueness is what the rules rely on, and the database
    /// checks it (a v4-only rule would refuse ids that other writers made
    /// legitimately, and add nothing to safety).
    fn check_no_nil_ids(&self) -> Result<(), SitrepValidationError> {
        let nil = |what: String, id: Uuid| {
            if id.is_nil() { Err(SitrepValidationError::NilId { what }) } else { Ok(()) }
        };
        let m = &self.metadata;
        nil("sitrep id".into(), m.id.into_untyped())?;
        if let Some(parent) = m.parent_sitrep_id {
            nil("parent sitrep id".into(), parent.into_untyped())?;
        }
        nil("creator id".into(), m.creator_id.into_untyped())?;
        for (i, case) in self.cases.iter().enumerate() {
            nil(format!("id of case #{i}"), case.id.into_untyped())?;
            nil(
                format!("opened sitrep id of case {}", case.id),
                case.opened_sitrep_id.into_untyped(),
            )?;
            if let Some(closed) = case.closed_sitrep_id {
                nil(format!("closed sitrep id of case {}", case.id), closed.into_untyped())?;
            }
        }
        for (i, r) in self.alert_requests.iter().enumerate() {
            nil(format!("id of alert request #{i}"), r.id.into_untyped())?;
            nil(format!("case id of alert request {}", r.id), r.case_id.into_untyped())?;
            nil(
                format!("requested sitrep id of alert request {}", r.id),
                r.requested_sitrep_id.into_untyped(),
            )?;
        }
        for (i, r) in self.support_bundle_requests.iter().enumerate() {
            nil(format!("id of support-bundle request #{i}"), r.id.into_untyped())?;
            nil(format!("case id of support-bundle request {}", r.id), r.case_id.into_untyped())?;
            nil(
                format!("requested sitrep id of support-bundle request {}", r.id),
                r.requested_sitrep_id.into_untyped(),
            )?;
        }
        Ok(())
    }
}

/// A sitrep that is malformed on its own, before any database check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SitrepValidationError {
    /// The same id appears twice among the sitrep's cases or requests of one
    /// type.
    #[error("{what} id {id} appears more than once in the sitrep")]
    DuplicateId {
        /// "case", "alert request" or "support-bundle request".
        what: &'static str,
        /// The repeated id.
        id: Uuid,
    },
    /// A request names a case the sitrep does not hold.
    #[error("{what} {id} names case {case_id}, which is not in the sitrep")]
    UnknownCase {
        /// "alert request" or "support-bundle request".
        what: &'static str,
        /// The request's id.
        id: Uuid,
        /// The missing case.
        case_id: CaseUuid,
    },
    /// A required text field is empty.
    #[error("{what} is empty")]
    EmptyField {
        /// Which field.
        what: String,
    },
    /// A field is larger than allowed.
    #[error("{what} is {len} bytes, more than the limit of {max}")]
    FieldTooLong {
        /// Which field.
        what: String,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many entries of one kind.
    #[error("the sitrep has {count} {what}, more than the limit of {max}")]
    TooMany {
        /// Which kind.
        what: &'static str,
        /// How many there are.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An id is the nil UUID.
    #[error("{what} is the nil UUID, which is never a valid id")]
    NilId {
        /// Which field.
        what: String,
    },
    /// A text field, or a string or key inside a JSON field, holds a NUL
    /// character, which PostgreSQL cannot store.
    #[error("{what} contains a NUL character (U+0000), which the database cannot store")]
    NulCharacter {
        /// Which field.
        what: String,
    },
    /// The sitrep names itself as its parent.
    #[error("sitrep {id} names itself as its parent")]
    OwnParent {
        /// The sitrep.
        id: SitrepUuid,
    },
}

fn check_count(what: &'static str, count: usize, max: usize) -> Result<(), SitrepValidationError> {
    if count > max { Err(SitrepValidationError::TooMany { what, count, max }) } else { Ok(()) }
}

fn check_text(
    what: &str,
    value: &str,
    max: usize,
    may_be_empty: bool,
) -> Result<(), SitrepValidationError> {
    if value.contains('\0') {
        return Err(SitrepValidationError::NulCharacter { what: what.to_string() });
    }
    if !may_be_empty && value.trim().is_empty() {
        return Err(SitrepValidationError::EmptyField { what: what.to_string() });
    }
    if value.len() > max {
        return Err(SitrepValidationError::FieldTooLong {
            what: what.to_string(),
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// Whether a JSON value holds a NUL character in any string or key.
fn json_has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v))
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            false
        }
    }
}

fn check_json(what: &str, value: &serde_json::Value) -> Result<(), SitrepValidationError> {
    if json_has_nul(value) {
        return Err(SitrepValidationError::NulCharacter { what: what.to_string() });
    }
    // Serializing a `Value` cannot fail; its compact length is what the
    // database stores (JSONB may differ slightly, which the margin absorbs).
    let len = serde_json::to_string(value).map_or(usize::MAX, |s| s.len());
    if len > MAX_JSON_BYTES {
        return Err(SitrepValidationError::FieldTooLong {
            what: what.to_string(),
            len,
            max: MAX_JSON_BYTES,
        });
    }
    Ok(())
}

/// What a sitrep asks for, counted rather than held: its metadata and, per
/// resource type, how many requests it carries and how many it made itself.
/// What an executor keeps in memory, since execution reads the requests
/// from the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitrepSummary {
    /// The sitrep's metadata (id, parent, generations, ...).
    pub metadata: SitrepMetadata,
    /// Cases it carries.
    pub cases: u64,
    /// Its alert requests.
    pub alert_requests: RequestCounts,
    /// Its support-bundle requests.
    pub support_bundle_requests: RequestCounts,
}

impl SitrepSummary {
    /// The sitrep's id.
    pub fn id(&self) -> SitrepUuid {
        self.metadata.id
    }

    /// The counts of one resource type.
    pub fn requests(&self, resource: ResourceType) -> RequestCounts {
        match resource {
            ResourceType::Alert => self.alert_requests,
            ResourceType::SupportBundle => self.support_bundle_requests,
        }
    }

    /// The summary of a sitrep held whole.
    pub fn of(sitrep: &Sitrep) -> SitrepSummary {
        let id = sitrep.id();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        SitrepSummary {
            metadata: sitrep.metadata.clone(),
            cases: count(sitrep.cases.len()),
            alert_requests: RequestCounts {
                requested: count(sitrep.alert_requests.len()),
                newly_requested: count(
                    sitrep.alert_requests.iter().filter(|r| r.requested_sitrep_id == id).count(),
                ),
            },
            support_bundle_requests: RequestCounts {
                requested: count(sitrep.support_bundle_requests.len()),
                newly_requested: count(
                    sitrep
                        .support_bundle_requests
                        .iter()
                        .filter(|r| r.requested_sitrep_id == id)
                        .count(),
                ),
            },
        }
    }
}

/// How many requests of one type a sitrep carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// All of them.
    pub requested: u64,
    /// Those first made by this very sitrep (`requested_sitrep_id` is the
    /// sitrep itself).
    pub newly_requested: u64,
}

/// One entry of the sitrep history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitrepHistoryEntry {
    /// Position in the history.
    pub version: SitrepVersion,
    /// The sitrep made current at that version.
    pub sitrep_id: SitrepUuid,
    /// When it was made current.
    pub time_made_current: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Sitrep {
        let sitrep_id = SitrepUuid::new_v4();
        let case_id = CaseUuid::new_v4();
        let mut sitrep = Sitrep {
            metadata: SitrepMetadata {
                id: sitrep_id,
                parent_sitrep_id: None,
                creator_id: ExecutorUuid::new_v4(),
                time_created: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                comment: "first".into(),
                alert_generation: Generation::FIRST,
                support_bundle_generation: Generation::FIRST,
            },
            cases: vec![Case {
                id: case_id,
                diagnosis_engine: "power".into(),
                opened_sitrep_id: sitrep_id,
                closed_sitrep_id: None,
                comment: String::new(),
            }],
            alert_requests: (0..3)
                .map(|i| AlertRequest {
                    id: AlertUuid::new_v4(),
                    case_id,
                    requested_sitrep_id: sitrep_id,
                    class: "hw.pwr.remove.psu".into(),
                    payload: json!({ "slot": i }),
                })
                .collect(),
            support_bundle_requests: vec![SupportBundleRequest {
                id: SupportBundleUuid::new_v4(),
                case_id,
                requested_sitrep_id: sitrep_id,
                reason: "PSU removed".into(),
                data_selection: json!({ "all": true }),
            }],
        };
        sitrep.normalize();
        sitrep
    }

    #[test]
    fn json_round_trip_and_unknown_fields_rejected() {
        let sitrep = sample();
        sitrep.validate().unwrap();
        let text = serde_json::to_string_pretty(&sitrep).unwrap();
        let back: Sitrep = serde_json::from_str(&text).unwrap();
        assert_eq!(back, sitrep);

        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["metadata"]["colour"] = json!("blue");
        let err = serde_json::from_value::<Sitrep>(value).unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");

        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["metadata"]["alert_generation"] = json!(0);
        let err = serde_json::from_value::<Sitrep>(value).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }

    #[test]
    fn request_sets() {
        let sitrep = sample();
        let alerts = sitrep.request_ids(ResourceType::Alert);
        assert_eq!(alerts.len(), 3);
        assert!(alerts.contains(&sitrep.alert_requests[0].id.into_untyped()));
        let bundles = sitrep.request_ids(ResourceType::SupportBundle);
        assert_eq!(
            bundles.into_iter().collect::<Vec<_>>(),
            vec![sitrep.support_bundle_requests[0].id.into_untyped()]
        );
    }

    #[test]
    fn validation_catches_each_problem() {
        use SitrepValidationError as E;

        let mut s = sample();
        let dup = s.alert_requests[0].clone();
        s.alert_requests.push(dup.clone());
        assert_eq!(
            s.validate(),
            Err(E::DuplicateId { what: "alert request", id: dup.id.into_untyped() })
        );

        let mut s = sample();
        let stray = CaseUuid::new_v4();
        s.support_bundle_requests[0].case_id = stray;
        assert!(matches!(s.validate(), Err(E::UnknownCase { case_id, .. }) if case_id == stray));

        let mut s = sample();
        s.alert_requests[1].class = "  ".into();
        assert!(
            matches!(s.validate(), Err(E::EmptyField { ref what }) if what.starts_with("class of alert request"))
        );

        let mut s = sample();
        s.cases[0].diagnosis_engine = "x".repeat(MAX_NAME_BYTES + 1);
        assert!(
            matches!(s.validate(), Err(E::FieldTooLong { len, .. }) if len == MAX_NAME_BYTES + 1)
        );

        let mut s = sample();
        s.alert_requests[0].payload = json!({ "blob": "x".repeat(MAX_JSON_BYTES) });
        assert!(
            matches!(s.validate(), Err(E::FieldTooLong { ref what, .. }) if what.starts_with("payload"))
        );

        let mut s = sample();
        s.cases.push(s.cases[0].clone());
        assert!(matches!(s.validate(), Err(E::DuplicateId { what: "case", .. })));

        let mut s = sample();
        s.metadata.parent_sitrep_id = Some(s.metadata.id);
        assert!(matches!(s.validate(), Err(E::OwnParent { .. })));

        let mut s = sample();
        s.support_bundle_requests[0].reason = String::new();
        let err = s.validate().unwrap_err();
        assert!(err.to_string().ends_with("is empty"), "{err}");
    }

    #[test]
    fn nil_ids_are_refused_naming_the_field() {
        use SitrepValidationError as E;
        let nil_field = |s: &Sitrep| match s.validate() {
            Err(E::NilId { what }) => what,
            other => panic!("expected a nil-id error, got {other:?}"),
        };
        let nil = Uuid::nil();

        let mut s = sample();
        s.metadata.id = SitrepUuid::from_untyped(nil);
        assert_eq!(nil_field(&s), "sitrep id");
        let mut s = sample();
        s.metadata.parent_sitrep_id = Some(SitrepUuid::from_untyped(nil));
        assert_eq!(nil_field(&s), "parent sitrep id");
        let mut s = sample();
        s.metadata.creator_id = ExecutorUuid::from_untyped(nil);
        assert_eq!(nil_field(&s), "creator id");
        let mut s = sample();
        s.cases[0].id = CaseUuid::from_untyped(nil);
        assert_eq!(nil_field(&s), "id of case #0");
        let mut s = sample();
        s.cases[0].opened_sitrep_id = SitrepUuid::from_untyped(nil);
        assert!(nil_field(&s).starts_with("opened sitrep id of case"));
        let mut s = sample();
        s.cases[0].closed_sitrep_id = Some(SitrepUuid::from_untyped(nil));
        assert!(nil_field(&s).starts_with("closed sitrep id of case"));
        let mut s = sample();
        s.alert_requests[2].id = AlertUuid::from_untyped(nil);
        assert_eq!(nil_field(&s), "id of alert request #2");
        let mut s = sample();
        s.alert_requests[0].requested_sitrep_id = SitrepUuid::from_untyped(nil);
        assert!(nil_field(&s).starts_with("requested sitrep id of alert request"));
        let mut s = sample();
        s.support_bundle_requests[0].id = SupportBundleUuid::from_untyped(nil);
        assert_eq!(nil_field(&s), "id of support-bundle request #0");
        let mut s = sample();
        s.support_bundle_requests[0].case_id = CaseUuid::from_untyped(nil);
        assert!(nil_field(&s).starts_with("case id of support-bundle request"));
    }

    #[test]
    fn nul_characters_are_refused_in_text_and_json() {
        use SitrepValidationError as E;
        let nul_field = |s: &Sitrep| match s.validate() {
            Err(E::NulCharacter { what }) => what,
            other => panic!("expected a NUL error, got {other:?}"),
        };
        let mut s = sample();
        s.metadata.comment = "a\0b".into();
        assert_eq!(nul_field(&s), "sitrep comment");
        let mut s = sample();
        s.alert_requests[0].class = "hw\0".into();
        assert!(nul_field(&s).starts_with("class of alert request"));
        let mut s = sample();
        s.alert_requests[1].payload = json!({ "deep": [1, { "x": "nul\u{0}here" }] });
        assert!(nul_field(&s).starts_with("payload of alert request"));
        let mut s = sample();
        s.support_bundle_requests[0].data_selection = json!({ "key\u{0}": 1 });
        assert!(nul_field(&s).starts_with("data selection of support-bundle request"));
        let mut s = sample();
        s.cases[0].comment = "\0".into();
        assert!(nul_field(&s).starts_with("comment of case"));
    }

    #[test]
    fn an_id_may_not_be_both_an_alert_and_a_bundle_request() {
        let mut s = sample();
        let shared = s.alert_requests[0].id.into_untyped();
        s.support_bundle_requests[0].id = SupportBundleUuid::from_untyped(shared);
        s.normalize();
        assert!(matches!(
            s.validate(),
            Err(SitrepValidationError::DuplicateId { id, .. }) if id == shared
        ));
    }

    #[test]
    fn versions() {
        assert_eq!(SitrepVersion::FIRST.next().as_i64(), 2);
        assert_eq!(SitrepVersion::try_new(0), Err(SitrepVersionError(0)));
        assert_eq!(serde_json::to_string(&SitrepVersion::FIRST).unwrap(), "1");
    }
}
