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
//! What alerts share with support bundles (the delete transaction, the
//! live-row conversion, the readers and their statements) is written once in
//! [`super::resource`]; [`Alerts`] says what is an alert's own, and the
//! public methods below wrap the generic ones. Only the dispatch queue is an
//! alert's alone.

pub use super::resource::{
    BadResourceRow, Deleted, FmProvenance, IncludingDeleted, provenance_from_columns,
};

use super::resource::{
    FmResource, ResourceTables, column_name, fm_resource_page_statements, fm_resource_queries,
    fm_resource_statements, live_row_in_txn, live_rows, table_name, unexpected_row_count,
};
use crate::context::{Action, OpContext};
use crate::datastore::DataStore;
use crate::datastore::page_limit;
use crate::db_schema::alert;
use crate::error::Error;
use crate::transaction::transaction_retry;
use chrono::{DateTime, Utc};
use diesel::dsl::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use nexus_fm_types::ResourceType;
use nexus_fm_types::ids::{AlertUuid, CaseUuid};
use uuid::Uuid;

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

/// Alerts as an [`FmResource`]: an alert's own names and statements.
/// What differs from a support bundle is the dispatch queue, which is not
/// part of the trait.
#[derive(Clone, Copy, Debug)]
pub struct Alerts;

impl FmResource for Alerts {
    type Row = AlertRow;
    type Id = AlertUuid;
    type Resource = Alert;

    const TYPE: ResourceType = ResourceType::Alert;
    const WHAT: &'static str = "alert";
    const WHAT_PLURAL: &'static str = "alerts";
    const DELETE_TRANSACTION: &'static str = "alert_delete";
    const TABLES: ResourceTables = ResourceTables {
        table: table_name!(alert),
        id: column_name!(alert::id),
        time_created: column_name!(alert::time_created),
        time_deleted: column_name!(alert::time_deleted),
        fm_case_id: column_name!(alert::fm_case_id),
        fm_sitrep_id: column_name!(alert::fm_sitrep_id),
        fm_generation: column_name!(alert::fm_generation),
        text_column: column_name!(alert::class),
        json_column: column_name!(alert::payload),
        creation_constants: &[],
        sitrep_generation: column_name!(fm_sitrep::alert_generation),
        request_table: table_name!(fm_alert_request),
        request_sitrep_id: column_name!(fm_alert_request::sitrep_id),
        request_id: column_name!(fm_alert_request::id),
        request_case_id: column_name!(fm_alert_request::case_id),
        request_text: column_name!(fm_alert_request::class),
        request_json: column_name!(fm_alert_request::payload),
        collected_type: "alert",
    };

    fn untyped(id: AlertUuid) -> Uuid {
        id.into_untyped()
    }

    fn row_id(row: &AlertRow) -> Uuid {
        row.id
    }

    fn row_is_fm_created(row: &AlertRow) -> bool {
        row.fm_case_id.is_some()
    }

    fn from_row(row: AlertRow) -> Result<IncludingDeleted<Alert>, BadResourceRow> {
        IncludingDeleted::try_from(row)
    }

    fm_resource_statements! {
        get: alert_get_query,
        get_including_deleted: alert_get_including_deleted_query,
        page: alert_page_query,
        by_case_page: alert_by_case_page_query,
        tombstone: alert_tombstone_query,
        hard_delete: alert_hard_delete_query,
    }
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

fm_resource_queries! {
    table: alert,
    row: AlertRow,
    what: "alert",
    get: alert_get_query,
    get_including_deleted: alert_get_including_deleted_query,
    page: alert_page_query(alert_first_page_query, alert_after_page_query),
    by_case_page: alert_by_case_page_query(
        alert_by_case_first_page_query,
        alert_by_case_after_page_query
    ),
    tombstone: alert_tombstone_query,
    hard_delete: alert_hard_delete_query,
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

impl DataStore {
    /// One live alert.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if it does not exist or an operator deleted it.
    pub async fn alert_get(&self, opctx: &OpContext, id: AlertUuid) -> Result<Alert, Error> {
        self.resource_get::<Alerts>(opctx, id).await
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
        self.resource_get_including_deleted::<Alerts>(opctx, id).await
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
        self.resource_list::<Alerts>(opctx, after, limit).await
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
        self.resource_list_by_case::<Alerts>(opctx, case_id, after, limit).await
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
        live_rows::<Alerts>(rows)
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
                let row = live_row_in_txn::<Alerts>(conn, id).await?;
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
        self.resource_delete::<Alerts>(opctx, id).await
    }
}

/// The two statements of each keyset page query above: the first page (no
/// lower bound) and a later page. `auto_type` names each statement's type
/// after its function.
pub mod page_statements {
    #![allow(missing_docs)] // the type aliases that auto_type generates

    use super::*;

    fm_resource_page_statements! {
        table: alert,
        row: AlertRow,
        page: (alert_first_page_query, alert_after_page_query),
        by_case_page: (alert_by_case_first_page_query, alert_by_case_after_page_query),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::resource::live;

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
        assert!(matches!(live::<Alerts>(row.clone()), Err(Error::BadData { .. })));
        let live_row = AlertRow { time_deleted: None, ..row };
        assert_eq!(live::<Alerts>(live_row.clone()).unwrap().id.into_untyped(), live_row.id);
    }
}
