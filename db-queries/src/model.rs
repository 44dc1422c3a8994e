//! Row models: how the domain types of `nexus-fm-types` are stored.
//!
//! Rows are separate from domain types. Every conversion destructures every
//! field, so adding a field on either side breaks the build until the
//! conversion is updated.

use crate::db_schema::{
    fm_alert_request, fm_case, fm_sitrep, fm_sitrep_archive, fm_sitrep_history,
    fm_support_bundle_request,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use nexus_fm_types::{
    AlertRequest, Case, Generation, GenerationError, SitrepHistoryEntry, SitrepMetadata,
    SitrepVersion, SupportBundleRequest,
    ids::{AlertUuid, CaseUuid, ExecutorUuid, SitrepUuid, SupportBundleUuid},
    sitrep::SitrepVersionError,
};
use uuid::Uuid;

/// A value read from the database that the domain types refuse.
#[derive(Debug, thiserror::Error)]
pub enum BadRow {
    /// A generation below 1.
    #[error(transparent)]
    Generation(#[from] GenerationError),
    /// A history version below 1.
    #[error(transparent)]
    Version(#[from] SitrepVersionError),
}

/// A row of `fm_sitrep`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = fm_sitrep, check_for_backend(diesel::pg::Pg))]
pub struct SitrepRow {
    /// See the column comments in `schema/dbinit.sql`.
    pub id: Uuid,
    /// Parent sitrep.
    pub parent_sitrep_id: Option<Uuid>,
    /// Creator.
    pub creator_id: Uuid,
    /// Build time.
    pub time_created: DateTime<Utc>,
    /// Note.
    pub comment: String,
    /// Alert generation.
    pub alert_generation: i64,
    /// Support-bundle generation.
    pub support_bundle_generation: i64,
}

impl From<&SitrepMetadata> for SitrepRow {
    fn from(m: &SitrepMetadata) -> Self {
        let SitrepMetadata {
            id,
            parent_sitrep_id,
            creator_id,
            time_created,
            comment,
            alert_generation,
            support_bundle_generation,
        } = m;
        SitrepRow {
            id: id.into_untyped(),
            parent_sitrep_id: parent_sitrep_id.map(SitrepUuid::into_untyped),
            creator_id: creator_id.into_untyped(),
            time_created: *time_created,
            comment: comment.clone(),
            alert_generation: alert_generation.as_i64(),
            support_bundle_generation: support_bundle_generation.as_i64(),
        }
    }
}

impl TryFrom<SitrepRow> for SitrepMetadata {
    type Error = BadRow;
    fn try_from(row: SitrepRow) -> Result<Self, BadRow> {
        let SitrepRow {
            id,
            parent_sitrep_id,
            creator_id,
            time_created,
            comment,
            alert_generation,
            support_bundle_generation,
        } = row;
        Ok(SitrepMetadata {
            id: SitrepUuid::from_untyped(id),
            parent_sitrep_id: parent_sitrep_id.map(SitrepUuid::from_untyped),
            creator_id: ExecutorUuid::from_untyped(creator_id),
            time_created,
            comment,
            alert_generation: Generation::try_new(alert_generation)?,
            support_bundle_generation: Generation::try_new(support_bundle_generation)?,
        })
    }
}

/// A row of `fm_sitrep_history`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = fm_sitrep_history, check_for_backend(diesel::pg::Pg))]
pub struct SitrepHistoryRow {
    /// Position in the history.
    pub version: i64,
    /// Sitrep made current.
    pub sitrep_id: Uuid,
    /// When.
    pub time_made_current: DateTime<Utc>,
}

impl TryFrom<SitrepHistoryRow> for SitrepHistoryEntry {
    type Error = BadRow;
    fn try_from(row: SitrepHistoryRow) -> Result<Self, BadRow> {
        let SitrepHistoryRow { version, sitrep_id, time_made_current } = row;
        Ok(SitrepHistoryEntry {
            version: SitrepVersion::try_new(version)?,
            sitrep_id: SitrepUuid::from_untyped(sitrep_id),
            time_made_current,
        })
    }
}

/// A row of `fm_case`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = fm_case, check_for_backend(diesel::pg::Pg))]
pub struct CaseRow {
    /// Owning sitrep.
    pub sitrep_id: Uuid,
    /// Case id.
    pub id: Uuid,
    /// Diagnosis engine.
    pub diagnosis_engine: String,
    /// Opening sitrep.
    pub opened_sitrep_id: Uuid,
    /// Closing sitrep.
    pub closed_sitrep_id: Option<Uuid>,
    /// Note.
    pub comment: String,
}

impl CaseRow {
    /// The row of `case` in sitrep `sitrep_id`.
    pub fn new(sitrep_id: SitrepUuid, case: &Case) -> Self {
        let Case { id, diagnosis_engine, opened_sitrep_id, closed_sitrep_id, comment } = case;
        CaseRow {
            sitrep_id: sitrep_id.into_untyped(),
            id: id.into_untyped(),
            diagnosis_engine: diagnosis_engine.clone(),
            opened_sitrep_id: opened_sitrep_id.into_untyped(),
            closed_sitrep_id: closed_sitrep_id.map(SitrepUuid::into_untyped),
            comment: comment.clone(),
        }
    }
}

impl From<CaseRow> for Case {
    fn from(row: CaseRow) -> Self {
        let CaseRow {
            sitrep_id: _,
            id,
            diagnosis_engine,
            opened_sitrep_id,
            closed_sitrep_id,
            comment,
        } = row;
        Case {
            id: CaseUuid::from_untyped(id),
            diagnosis_engine,
            opened_sitrep_id: SitrepUuid::from_untyped(opened_sitrep_id),
            closed_sitrep_id: closed_sitrep_id.map(SitrepUuid::from_untyped),
            comment,
        }
    }
}

/// A row of `fm_alert_request`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = fm_alert_request, check_for_backend(diesel::pg::Pg))]
pub struct AlertRequestRow {
    /// Owning sitrep.
    pub sitrep_id: Uuid,
    /// Alert id.
    pub id: Uuid,
    /// Requesting case.
    pub case_id: Uuid,
    /// First requesting sitrep.
    pub requested_sitrep_id: Uuid,
    /// Alert class.
    pub class: String,
    /// Payload.
    pub payload: serde_json::Value,
}

impl AlertRequestRow {
    /// The row of `request` in sitrep `sitrep_id`.
    pub fn new(sitrep_id: SitrepUuid, request: &AlertRequest) -> Self {
        let AlertRequest { id, case_id, requested_sitrep_id, class, payload } = request;
        AlertRequestRow {
            sitrep_id: sitrep_id.into_untyped(),
            id: id.into_untyped(),
            case_id: case_id.into_untyped(),
            requested_sitrep_id: requested_sitrep_id.into_untyped(),
            class: class.clone(),
            payload: payload.clone(),
        }
    }
}

impl From<AlertRequestRow> for AlertRequest {
    fn from(row: AlertRequestRow) -> Self {
        let AlertRequestRow { sitrep_id: _, id, case_id, requested_sitrep_id, class, payload } =
            row;
        AlertRequest {
            id: AlertUuid::from_untyped(id),
            case_id: CaseUuid::from_untyped(case_id),
            requested_sitrep_id: SitrepUuid::from_untyped(requested_sitrep_id),
            class,
            payload,
        }
    }
}

/// A row of `fm_support_bundle_request`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = fm_support_bundle_request, check_for_backend(diesel::pg::Pg))]
pub struct SupportBundleRequestRow {
    /// Owning sitrep.
    pub sitrep_id: Uuid,
    /// Bundle id.
    pub id: Uuid,
    /// Requesting case.
    pub case_id: Uuid,
    /// First requesting sitrep.
    pub requested_sitrep_id: Uuid,
    /// Why.
    pub reason: String,
    /// What to collect.
    pub data_selection: serde_json::Value,
}

impl SupportBundleRequestRow {
    /// The row of `request` in sitrep `sitrep_id`.
    pub fn new(sitrep_id: SitrepUuid, request: &SupportBundleRequest) -> Self {
        let SupportBundleRequest { id, case_id, requested_sitrep_id, reason, data_selection } =
            request;
        SupportBundleRequestRow {
            sitrep_id: sitrep_id.into_untyped(),
            id: id.into_untyped(),
            case_id: case_id.into_untyped(),
            requested_sitrep_id: requested_sitrep_id.into_untyped(),
            reason: reason.clone(),
            data_selection: data_selection.clone(),
        }
    }
}

impl From<SupportBundleRequestRow> for SupportBundleRequest {
    fn from(row: SupportBundleRequestRow) -> Self {
        let SupportBundleRequestRow {
            sitrep_id: _,
            id,
            case_id,
            requested_sitrep_id,
            reason,
            data_selection,
        } = row;
        SupportBundleRequest {
            id: SupportBundleUuid::from_untyped(id),
            case_id: CaseUuid::from_untyped(case_id),
            requested_sitrep_id: SitrepUuid::from_untyped(requested_sitrep_id),
            reason,
            data_selection,
        }
    }
}

/// A row of `fm_sitrep_archive`.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = fm_sitrep_archive, check_for_backend(diesel::pg::Pg))]
pub struct SitrepArchiveRow {
    /// Sitrep id.
    pub sitrep_id: Uuid,
    /// History version.
    pub version: i64,
    /// When it became current.
    pub time_made_current: DateTime<Utc>,
    /// When it was archived.
    pub time_archived: DateTime<Utc>,
    /// The sitrep as JSON.
    pub sitrep: serde_json::Value,
}
