//! Alerts: reading, dispatching and deleting them.
//!
//! Every reader here ignores tombstones (rows with `time_deleted` set): an
//! alert an operator deleted is gone for everyone except the fault-management
//! internals that must know it existed (the guarded insert, and
//! [`DataStore::fm_resource_rows_including_deleted`]) and the debug reader
//! [`DataStore::alert_get_including_deleted`], which says so in its name
//! (docs/design.md, "Deleting a resource").
//!
//! Each query states `time_deleted IS NULL` itself, even where an index is
//! partial on that predicate: PostgreSQL uses a partial index only when the
//! query states its predicate, and stating it everywhere is what makes the
//! tombstones invisible. The queries and the indexes they use:
//!
//! | query | index |
//! |---|---|
//! | [`alert_get_query`] | `alert_pkey` |
//! | [`alert_page_query`] | `alert_pkey` |
//! | [`alert_by_case_page_query`] | `lookup_live_alert_by_case` |
//! | [`alert_dispatch_queue_first_query`], [`alert_dispatch_queue_after_query`] | `lookup_undispatched_alert` |
//! | [`alert_mark_dispatched_query`] | `alert_pkey` |
//! | [`alert_tombstone_query`], [`alert_hard_delete_query`] | `alert_pkey` |
//!
//! The items shared with [`super::support_bundle`] (provenance, the outcome of
//! a delete, the debug wrapper and the page-limit check) live here too.

use crate::context::{Action, OpContext};
use crate::datastore::DataStore;
use crate::datastore::page_limit;
use crate::db_schema::alert;
use crate::error::Error;
use crate::keyset::KeysetPage;
use crate::transaction::{TransactionError, transaction_retry};
use chrono::{DateTime, Utc};
use diesel::dsl::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use nexus_fm_types::ids::{AlertUuid, CaseUuid, SitrepUuid};
use nexus_fm_types::{Generation, GenerationError};
use uuid::Uuid;

/// Where a resource created by fault management came from. Resources
/// created any other way have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FmProvenance {
    /// The case that requested the resource.
    pub case_id: CaseUuid,
    /// The sitrep the creating executor was executing.
    pub sitrep_id: SitrepUuid,
    /// That sitrep's generation for the resource's type.
    pub generation: Generation,
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deleted {
    /// The resource was created by fault management: it was soft-deleted
    /// (`time_deleted` set), and the tombstone keeps any executor from
    /// creating it again until the sweep may remove it.
    Tombstoned,
    /// The resource was not created by fault management: its row was
    /// removed.
    Removed,
}

/// A resource as the debug readers show it: possibly a tombstone.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IncludingDeleted<T> {
    /// The resource.
    pub resource: T,
    /// When an operator deleted it, or `None` while it is live.
    pub time_deleted: Option<DateTime<Utc>>,
}

/// A row of `alert` or `support_bundle` that the domain types refuse.
/// The schema's CHECK constraints make these impossible unless the schema
/// and this code disagree.
#[derive(Debug, thiserror::Error)]
pub enum BadResourceRow {
    /// Some provenance columns are set and others are not.
    #[error("its provenance is incomplete (fm_case_id, fm_sitrep_id, fm_generation)")]
    IncompleteProvenance,
    /// `fm_generation` is below 1.
    #[error(transparent)]
    Generation(#[from] GenerationError),
    /// `support_bundle.state` holds a value this software does not know.
    #[error("unknown support bundle state {0:?}")]
    UnknownState(String),
}

/// The provenance of a row from its three columns.
///
/// # Errors
///
/// [`BadResourceRow`] when only some are set, or the generation is below 1.
pub fn provenance_from_columns(
    case_id: Option<Uuid>,
    sitrep_id: Option<Uuid>,
    generation: Option<i64>,
) -> Result<Option<FmProvenance>, BadResourceRow> {
    match (case_id, sitrep_id, generation) {
        (None, None, None) => Ok(None),
        (Some(case_id), Some(sitrep_id), Some(generation)) => Ok(Some(FmProvenance {
            case_id: CaseUuid::from_untyped(case_id),
            sitrep_id: SitrepUuid::from_untyped(sitrep_id),
            generation: Generation::try_new(generation)?,
        })),
        _ => Err(BadResourceRow::IncompleteProvenance),
    }
}

/// A transaction's "the row changed under us" abort. Serializable execution
/// makes it impossible; it exists so that a broken assumption fails loudly
/// and rolls back instead of reporting success.
pub(crate) fn unexpected_row_count(what: String, count: usize) -> TransactionError {
    TransactionError::Abort(Error::BadData {
        context: what,
        source: format!("expected to change exactly one row, changed {count}").into(),
    })
}

/// An alert, as every reader returns it (tombstones are never returned,
/// except by the debug reader, wrapped in [`IncludingDeleted`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    /// Its id; for an FM-created alert, the id of the request that asked
    /// for it.
    pub id: AlertUuid,
    /// Alert class, for example `hw.pwr.remove.psu`.
    pub class: String,
    /// Payload.
    pub payload: serde_json::Value,
    /// When the row was created.
    pub time_created: DateTime<Utc>,
    /// When it was handed to its receivers, or `None` while queued.
    pub time_dispatched: Option<DateTime<Utc>>,
    /// Where it came from, if fault management created it.
    pub provenance: Option<FmProvenance>,
}

/// A row of `alert`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = alert, check_for_backend(diesel::pg::Pg))]
pub struct AlertRow {
    /// See the column comments in `schema/dbinit.sql`.
    pub id: Uuid,
    /// Alert class.
    pub class: String,
    /// Payload.
    pub payload: serde_json::Value,
    /// Creation time.
    pub time_created: DateTime<Utc>,
    /// Dispatch time.
    pub time_dispatched: Option<DateTime<Utc>>,
    /// Provenance: case.
    pub fm_case_id: Option<Uuid>,
    /// Provenance: sitrep.
    pub fm_sitrep_id: Option<Uuid>,
    /// Provenance: generation.
    pub fm_generation: Option<i64>,
    /// Tombstone time.
    pub time_deleted: Option<DateTime<Utc>>,
}

impl TryFrom<AlertRow> for IncludingDeleted<Alert> {
    type Error = BadResourceRow;
    fn try_from(row: AlertRow) -> Result<Self, BadResourceRow> {
        let AlertRow {
            id,
            class,
            payload,
            time_created,
            time_dispatched,
            fm_case_id,
            fm_sitrep_id,
            fm_generation,
            time_deleted,
        } = row;
        Ok(IncludingDeleted {
            resource: Alert {
                id: AlertUuid::from_untyped(id),
                class,
                payload,
                time_created,
                time_dispatched,
                provenance: provenance_from_columns(fm_case_id, fm_sitrep_id, fm_generation)?,
            },
            time_deleted,
        })
    }
}

/// Converts a row that a tombstone-free query returned.
fn live_alert(row: AlertRow) -> Result<Alert, Error> {
    let id = row.id;
    let found = IncludingDeleted::<Alert>::try_from(row).map_err(|e| Error::BadData {
        context: format!("reading alert {id}"),
        source: Box::new(e),
    })?;
    match found.time_deleted {
        None => Ok(found.resource),
        // The query stated `time_deleted IS NULL`; a tombstone here means
        // it did not, which must never reach a caller.
        Some(_) => Err(Error::BadData {
            context: format!("reading alert {id}"),
            source: "a reader of live alerts returned a tombstone".into(),
        }),
    }
}

fn live_alerts(rows: Vec<AlertRow>) -> Result<Vec<Alert>, Error> {
    rows.into_iter().map(live_alert).collect()
}

fn alert_not_found(id: AlertUuid) -> Error {
    Error::NotFound { what: "alert", id: id.to_string() }
}

/// Where a page of the dispatch queue ends: the next page starts after this
/// alert. The queue is ordered by `(time_created, id)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DispatchQueueMarker {
    /// The last alert's creation time.
    pub time_created: DateTime<Utc>,
    /// The last alert's id.
    pub id: AlertUuid,
}

impl From<&Alert> for DispatchQueueMarker {
    fn from(alert: &Alert) -> Self {
        DispatchQueueMarker { time_created: alert.time_created, id: alert.id }
    }
}

/// What marking an alert dispatched did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkDispatched {
    /// The alert was queued; it is now dispatched at this time.
    Dispatched(DateTime<Utc>),
    /// The alert had already been dispatched at this time; nothing changed.
    AlreadyDispatched(DateTime<Utc>),
}

/// One live alert, by primary key.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_get_query(id: Uuid) -> _ {
    let columns: AsSelect<AlertRow, Pg> = AlertRow::as_select();
    alert::table.filter(alert::id.eq(id)).filter(alert::time_deleted.is_null()).select(columns)
}

/// One alert by primary key, live or a tombstone. Debug tooling only.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_get_including_deleted_query(id: Uuid) -> _ {
    let columns: AsSelect<AlertRow, Pg> = AlertRow::as_select();
    alert::table.filter(alert::id.eq(id)).select(columns)
}

/// One page of live alerts in id order, after `after` (`None`: the first
/// page, with no lower bound, so no id is skipped), by the primary key.
/// The scan passes over tombstones in the page's id range; the sweep keeps
/// their number bounded.
pub fn alert_page_query(
    after: Option<Uuid>,
    limit: i64,
) -> KeysetPage<page_statements::alert_first_page_query, page_statements::alert_after_page_query> {
    KeysetPage::new(
        after,
        || page_statements::alert_first_page_query(limit),
        |after| page_statements::alert_after_page_query(after, limit),
    )
}

/// One page of one case's live alerts in id order, after `after` (`None`:
/// the first page).
pub fn alert_by_case_page_query(
    case_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> KeysetPage<
    page_statements::alert_by_case_first_page_query,
    page_statements::alert_by_case_after_page_query,
> {
    KeysetPage::new(
        after,
        || page_statements::alert_by_case_first_page_query(case_id, limit),
        |after| page_statements::alert_by_case_after_page_query(case_id, after, limit),
    )
}

/// The first page of the dispatch queue: live, undispatched alerts, oldest
/// first.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_dispatch_queue_first_query(limit: i64) -> _ {
    let columns: AsSelect<AlertRow, Pg> = AlertRow::as_select();
    alert::table
        .filter(alert::time_deleted.is_null())
        .filter(alert::time_dispatched.is_null())
        .order((alert::time_created, alert::id))
        .limit(limit)
        .select(columns)
}

/// A later page of the dispatch queue: live, undispatched alerts after
/// `(after_time, after_id)` in `(time_created, id)` order.
///
/// The redundant `time_created >= after_time` bounds the index scan from
/// below; the disjunction alone would make it start at the queue's head.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_dispatch_queue_after_query(
    after_time: DateTime<Utc>,
    after_id: Uuid,
    limit: i64,
) -> _ {
    let columns: AsSelect<AlertRow, Pg> = AlertRow::as_select();
    alert::table
        .filter(alert::time_deleted.is_null())
        .filter(alert::time_dispatched.is_null())
        .filter(alert::time_created.ge(after_time))
        .filter(
            alert::time_created
                .gt(after_time)
                .or(alert::time_created.eq(after_time).and(alert::id.gt(after_id))),
        )
        .order((alert::time_created, alert::id))
        .limit(limit)
        .select(columns)
}

/// Sets `time_dispatched` on one live, undispatched alert.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_mark_dispatched_query(id: Uuid, at: DateTime<Utc>) -> _ {
    diesel::dsl::update(
        alert::table
            .filter(alert::id.eq(id))
            .filter(alert::time_deleted.is_null())
            .filter(alert::time_dispatched.is_null()),
    )
    .set(alert::time_dispatched.eq(at))
}

/// Soft-deletes one live FM-created alert (sets `time_deleted`).
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_tombstone_query(id: Uuid, at: DateTime<Utc>) -> _ {
    diesel::dsl::update(
        alert::table
            .filter(alert::id.eq(id))
            .filter(alert::time_deleted.is_null())
            .filter(alert::fm_case_id.is_not_null()),
    )
    .set(alert::time_deleted.eq(at))
}

/// Removes one live alert that fault management did not create.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_hard_delete_query(id: Uuid) -> _ {
    diesel::dsl::delete(
        alert::table
            .filter(alert::id.eq(id))
            .filter(alert::time_deleted.is_null())
            .filter(alert::fm_case_id.is_null()),
    )
}

impl DataStore {
    /// One live alert.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if it does not exist or an operator deleted it.
    pub async fn alert_get(&self, opctx: &OpContext, id: AlertUuid) -> Result<Alert, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let row = alert_get_query(id.into_untyped())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| Error::database(format_args!("reading alert {id}"), e))?;
        live_alert(row.ok_or_else(|| alert_not_found(id))?)
    }

    /// One alert, **including a tombstone**: for debug tooling, which must
    /// be able to show what an operator deleted. Everything else uses
    /// [`DataStore::alert_get`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no row exists (never created, hard-deleted,
    /// or swept).
    pub async fn alert_get_including_deleted(
        &self,
        opctx: &OpContext,
        id: AlertUuid,
    ) -> Result<IncludingDeleted<Alert>, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let row = alert_get_including_deleted_query(id.into_untyped())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| Error::database(format_args!("reading alert {id}"), e))?
            .ok_or_else(|| alert_not_found(id))?;
        IncludingDeleted::try_from(row).map_err(|e| Error::BadData {
            context: format!("reading alert {id}"),
            source: Box::new(e),
        })
    }

    /// One page of live alerts in id order, after `after` (from the start
    /// when `None`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a limit outside 1 to
    /// [`crate::datastore::MAX_PAGE_LIMIT`]; a database error.
    pub async fn alert_list(
        &self,
        opctx: &OpContext,
        after: Option<AlertUuid>,
        limit: u32,
    ) -> Result<Vec<Alert>, Error> {
        let limit = page_limit(limit)?;
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let after = after.map(AlertUuid::into_untyped);
        let rows = alert_page_query(after, limit)
            .load(&mut conn)
            .await
            .map_err(|e| Error::database("listing alerts", e))?;
        live_alerts(rows)
    }

    /// One page of the live alerts that case `case_id` requested, in id
    /// order, after `after`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a limit outside 1 to
    /// [`crate::datastore::MAX_PAGE_LIMIT`]; a database error.
    pub async fn alert_list_by_case(
        &self,
        opctx: &OpContext,
        case_id: CaseUuid,
        after: Option<AlertUuid>,
        limit: u32,
    ) -> Result<Vec<Alert>, Error> {
        let limit = page_limit(limit)?;
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let after = after.map(AlertUuid::into_untyped);
        let rows = alert_by_case_page_query(case_id.into_untyped(), after, limit)
            .load(&mut conn)
            .await
            .map_err(|e| {
                Error::database(format_args!("listing the alerts of case {case_id}"), e)
            })?;
        live_alerts(rows)
    }

    /// One page of the dispatch queue: live alerts not yet dispatched,
    /// oldest first (by creation time, then id), after `after` (from the
    /// head of the queue when `None`; pass the last alert of the previous
    /// page, see [`DispatchQueueMarker::from`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a limit outside 1 to
    /// [`crate::datastore::MAX_PAGE_LIMIT`]; a database error.
    pub async fn alert_dispatch_queue(
        &self,
        opctx: &OpContext,
        after: Option<DispatchQueueMarker>,
        limit: u32,
    ) -> Result<Vec<Alert>, Error> {
        let limit = page_limit(limit)?;
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let rows = match after {
            None => alert_dispatch_queue_first_query(limit).load(&mut conn).await,
            Some(DispatchQueueMarker { time_created, id }) => {
                alert_dispatch_queue_after_query(time_created, id.into_untyped(), limit)
                    .load(&mut conn)
                    .await
            }
        }
        .map_err(|e| Error::database("reading the alert dispatch queue", e))?;
        live_alerts(rows)
    }

    /// Marks a live alert dispatched (FM executor only). Marking an alert
    /// that is already dispatched changes nothing and says when it was.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] unless the role is the FM executor;
    /// [`Error::NotFound`] if the alert does not exist or an operator
    /// deleted it.
    pub async fn alert_mark_dispatched(
        &self,
        opctx: &OpContext,
        id: AlertUuid,
    ) -> Result<MarkDispatched, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::FmWrite).await?;
        let done = transaction_retry(&mut conn, &opctx.log, "alert_mark_dispatched", |conn| {
            Box::pin(async move {
                let row = alert_get_query(id.into_untyped()).get_result(conn).await.optional()?;
                let Some(row) = row else {
                    return Err(TransactionError::Abort(alert_not_found(id)));
                };
                if let Some(at) = row.time_dispatched {
                    return Ok(MarkDispatched::AlreadyDispatched(at));
                }
                let at = nexus_fm_types::time::now();
                let changed =
                    alert_mark_dispatched_query(id.into_untyped(), at).execute(conn).await?;
                if changed != 1 {
                    return Err(unexpected_row_count(format!("dispatching alert {id}"), changed));
                }
                Ok(MarkDispatched::Dispatched(at))
            })
        })
        .await?;
        Ok(done.value)
    }

    /// Deletes an alert (operator only): an alert that fault management
    /// created is soft-deleted, so that no executor creates it again;
    /// any other alert is removed. The row is read and then written exactly
    /// once, in one transaction.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] unless the role is operator;
    /// [`Error::NotFound`] (and nothing written) if the alert does not exist
    /// or is already deleted.
    pub async fn alert_delete(&self, opctx: &OpContext, id: AlertUuid) -> Result<Deleted, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::DeleteResource).await?;
        let done = transaction_retry(&mut conn, &opctx.log, "alert_delete", |conn| {
            Box::pin(async move {
                let row = alert_get_query(id.into_untyped()).get_result(conn).await.optional()?;
                let Some(row) = row else {
                    return Err(TransactionError::Abort(alert_not_found(id)));
                };
                let (outcome, changed) = if row.fm_case_id.is_some() {
                    let at = nexus_fm_types::time::now();
                    let n = alert_tombstone_query(id.into_untyped(), at).execute(conn).await?;
                    (Deleted::Tombstoned, n)
                } else {
                    (
                        Deleted::Removed,
                        alert_hard_delete_query(id.into_untyped()).execute(conn).await?,
                    )
                };
                if changed != 1 {
                    return Err(unexpected_row_count(format!("deleting alert {id}"), changed));
                }
                Ok(outcome)
            })
        })
        .await?;
        slog::info!(opctx.log, "alert deleted"; "alert_id" => %id, "outcome" => ?done.value);
        Ok(done.value)
    }
}

/// The two statements of each keyset page query above: the first page (no
/// lower bound) and a later page. `auto_type` names each statement's type
/// after its function.
pub mod page_statements {
    #![allow(missing_docs)] // the type aliases that auto_type generates

    use super::*;

    /// The first page of [`alert_page_query`]: no lower bound.
    #[diesel::dsl::auto_type]
    pub fn alert_first_page_query(limit: i64) -> _ {
        let columns: AsSelect<AlertRow, Pg> = AlertRow::as_select();
        alert::table
            .filter(alert::time_deleted.is_null())
            .order(alert::id)
            .limit(limit)
            .select(columns)
    }

    /// A later page of [`alert_page_query`]: keys above `after`.
    #[diesel::dsl::auto_type]
    pub fn alert_after_page_query(after: Uuid, limit: i64) -> _ {
        let first: alert_first_page_query = alert_first_page_query(limit);
        first.filter(alert::id.gt(after))
    }

    /// The first page of [`alert_by_case_page_query`]: no lower bound.
    #[diesel::dsl::auto_type]
    pub fn alert_by_case_first_page_query(case_id: Uuid, limit: i64) -> _ {
        let columns: AsSelect<AlertRow, Pg> = AlertRow::as_select();
        alert::table
            .filter(alert::fm_case_id.eq(case_id))
            .filter(alert::time_deleted.is_null())
            .order(alert::id)
            .limit(limit)
            .select(columns)
    }

    /// A later page of [`alert_by_case_page_query`]: keys above `after`.
    #[diesel::dsl::auto_type]
    pub fn alert_by_case_after_page_query(case_id: Uuid, after: Uuid, limit: i64) -> _ {
        let first: alert_by_case_first_page_query = alert_by_case_first_page_query(case_id, limit);
        first.filter(alert::id.gt(after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_is_all_or_nothing() {
        let (c, s) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(provenance_from_columns(None, None, None).unwrap(), None);
        let p = provenance_from_columns(Some(c), Some(s), Some(3)).unwrap().unwrap();
        assert_eq!(
            (p.case_id.into_untyped(), p.sitrep_id.into_untyped(), p.generation.as_i64()),
            (c, s, 3)
        );
        assert!(matches!(
            provenance_from_columns(Some(c), None, Some(3)),
            Err(BadResourceRow::IncompleteProvenance)
        ));
        assert!(matches!(
            provenance_from_columns(Some(c), Some(s), Some(0)),
            Err(BadResourceRow::Generation(_))
        ));
    }

    #[test]
    fn a_tombstone_never_leaves_a_live_reader() {
        let row = AlertRow {
            id: Uuid::new_v4(),
            class: "c".into(),
            payload: serde_json::json!({}),
            time_created: nexus_fm_types::time::now(),
            time_dispatched: None,
            fm_case_id: None,
            fm_sitrep_id: None,
            fm_generation: None,
            time_deleted: Some(nexus_fm_types::time::now()),
        };
        assert!(matches!(live_alert(row.clone()), Err(Error::BadData { .. })));
        let live = AlertRow { time_deleted: None, ..row };
        assert_eq!(live_alert(live.clone()).unwrap().id.into_untyped(), live.id);
    }
}
