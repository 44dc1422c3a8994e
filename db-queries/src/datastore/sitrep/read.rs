//! Reading sitreps and the history.
//!
//! A sitrep is read in one transaction, so it is either complete or
//! NotFound, never torn: the pruner deletes a sitrep's row and its children
//! in one transaction too. Children are read page by page
//! ([`super::READ_PAGE_ROWS`] rows per statement), so even a sitrep with a
//! million requests never needs one unbounded statement.

use super::{
    READ_PAGE_ROWS, alert_request_counts_query, alert_request_id_page_query,
    alert_request_page_query, case_count_query, case_page_query, current_history_entry_query,
    history_entry_by_sitrep_query, load_all_pages, sitrep_metadata_query,
    support_bundle_request_counts_query, support_bundle_request_id_page_query,
    support_bundle_request_page_query,
};
use crate::context::{Action, OpContext};
use crate::datastore::{DataStore, page_limit};
use crate::db_schema::fm_sitrep_history;
use crate::error::Error;
use crate::model::{BadRow, SitrepHistoryRow};
use crate::transaction::{TransactionError, transaction_retry};
use diesel::dsl::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nexus_fm_types::ids::SitrepUuid;
use nexus_fm_types::{
    AlertRequest, Case, RequestCounts, ResourceType, Sitrep, SitrepHistoryEntry, SitrepMetadata,
    SitrepSummary, SitrepVersion, SupportBundleRequest,
};
use uuid::Uuid;

/// Which way a history page runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first: entries with a version greater than the marker.
    Ascending,
    /// Newest first: entries with a version smaller than the marker.
    Descending,
}

impl DataStore {
    /// Reads one sitrep, complete.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no such sitrep exists (or it has been pruned).
    pub async fn sitrep_read(&self, opctx: &OpContext, id: SitrepUuid) -> Result<Sitrep, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let done = transaction_retry(&mut conn, &opctx.log, "sitrep_read", |conn| {
            Box::pin(async move {
                match sitrep_read_in_txn(conn, id).await? {
                    Some(sitrep) => Ok(sitrep),
                    None => Err(TransactionError::Abort(not_found(id))),
                }
            })
        })
        .await?;
        Ok(done.value)
    }

    /// Reads one sitrep's metadata and counts its cases and requests
    /// without reading them: what an executor keeps in memory.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no such sitrep exists (or it has been pruned).
    pub async fn sitrep_summary(
        &self,
        opctx: &OpContext,
        id: SitrepUuid,
    ) -> Result<SitrepSummary, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let done = transaction_retry(&mut conn, &opctx.log, "sitrep_summary", |conn| {
            Box::pin(async move {
                match sitrep_summary_in_txn(conn, id).await? {
                    Some(summary) => Ok(summary),
                    None => Err(TransactionError::Abort(not_found(id))),
                }
            })
        })
        .await?;
        Ok(done.value)
    }

    /// Reads the current sitrep and its version, or `None` before the first
    /// publish.
    ///
    /// # Errors
    ///
    /// Database errors only.
    pub async fn sitrep_read_current(
        &self,
        opctx: &OpContext,
    ) -> Result<Option<(SitrepVersion, Sitrep)>, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let done = transaction_retry(&mut conn, &opctx.log, "sitrep_read_current", |conn| {
            Box::pin(async move {
                let Some(entry) =
                    current_history_entry_query().get_result(conn).await.optional()?
                else {
                    return Ok(None);
                };
                let entry = history_entry(entry)?;
                // The current sitrep is never pruned, so its row exists in
                // this snapshot.
                match sitrep_read_in_txn(conn, entry.sitrep_id).await? {
                    Some(sitrep) => Ok(Some((entry.version, sitrep))),
                    None => Err(TransactionError::Abort(Error::BadData {
                        context: format!("reading current sitrep {}", entry.sitrep_id),
                        source: "its history entry exists but its fm_sitrep row does not".into(),
                    })),
                }
            })
        })
        .await?;
        Ok(done.value)
    }

    /// The current history entry alone: one index lookup, cheap enough to
    /// poll.
    ///
    /// # Errors
    ///
    /// Database errors only.
    pub async fn sitrep_current_version(
        &self,
        opctx: &OpContext,
    ) -> Result<Option<SitrepHistoryEntry>, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let row = current_history_entry_query()
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| Error::database("reading the current sitrep version", e))?;
        row.map(history_entry).transpose().map_err(abort_to_error)
    }

    /// The history entry of one sitrep, or `None` if it never became
    /// current or has been pruned.
    ///
    /// # Errors
    ///
    /// Database errors only.
    pub async fn sitrep_history_entry(
        &self,
        opctx: &OpContext,
        id: SitrepUuid,
    ) -> Result<Option<SitrepHistoryEntry>, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let row = history_entry_by_sitrep_query(id.into_untyped())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| Error::database(format_args!("reading the history entry of {id}"), e))?;
        row.map(history_entry).transpose().map_err(abort_to_error)
    }

    /// One page of the history, by version, starting after `marker`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a limit of 0 or above
    /// [`crate::datastore::MAX_PAGE_LIMIT`].
    pub async fn sitrep_history_list(
        &self,
        opctx: &OpContext,
        marker: Option<SitrepVersion>,
        direction: Direction,
        limit: u32,
    ) -> Result<Vec<SitrepHistoryEntry>, Error> {
        let limit = page_limit(limit)?;
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let rows = match direction {
            Direction::Ascending => {
                let after = marker.map_or(0, SitrepVersion::as_i64);
                history_page_ascending_query(after, limit).load(&mut conn).await
            }
            Direction::Descending => {
                let before = marker.map_or(i64::MAX, SitrepVersion::as_i64);
                history_page_descending_query(before, limit).load(&mut conn).await
            }
        }
        .map_err(|e| Error::database("listing the sitrep history", e))?;
        rows.into_iter().map(history_entry).collect::<Result<_, _>>().map_err(abort_to_error)
    }

    /// One page of the request ids of one type in one sitrep, in id order,
    /// after `after`. Used by execution and by the sweep.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a limit of 0 or above
    /// [`crate::datastore::MAX_PAGE_LIMIT`].
    pub async fn sitrep_request_ids(
        &self,
        opctx: &OpContext,
        sitrep_id: SitrepUuid,
        resource: ResourceType,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>, Error> {
        let limit = page_limit(limit)?;
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let id = sitrep_id.into_untyped();
        match resource {
            ResourceType::Alert => {
                alert_request_id_page_query(id, after, limit).load(&mut conn).await
            }
            ResourceType::SupportBundle => {
                support_bundle_request_id_page_query(id, after, limit).load(&mut conn).await
            }
        }
        .map_err(|e| Error::database(format_args!("listing {resource} requests of {sitrep_id}"), e))
    }
}

/// One page of the history, oldest first, with versions above `after`.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn history_page_ascending_query(after: i64, limit: i64) -> _ {
    let columns: AsSelect<SitrepHistoryRow, Pg> = SitrepHistoryRow::as_select();
    fm_sitrep_history::table
        .filter(fm_sitrep_history::version.gt(after))
        .order(fm_sitrep_history::version.asc())
        .limit(limit)
        .select(columns)
}

/// One page of the history, newest first, with versions below `before`.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn history_page_descending_query(before: i64, limit: i64) -> _ {
    let columns: AsSelect<SitrepHistoryRow, Pg> = SitrepHistoryRow::as_select();
    fm_sitrep_history::table
        .filter(fm_sitrep_history::version.lt(before))
        .order(fm_sitrep_history::version.desc())
        .limit(limit)
        .select(columns)
}

fn not_found(id: SitrepUuid) -> Error {
    Error::NotFound { what: "sitrep", id: id.to_string() }
}

fn history_entry(row: SitrepHistoryRow) -> Result<SitrepHistoryEntry, TransactionError> {
    SitrepHistoryEntry::try_from(row).map_err(|e| bad(e, "reading the sitrep history"))
}

fn bad(e: BadRow, context: &str) -> TransactionError {
    TransactionError::Abort(Error::BadData { context: context.to_string(), source: Box::new(e) })
}

fn abort_to_error(e: TransactionError) -> Error {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Database(e) => Error::database("reading the sitrep history", e),
    }
}

/// Reads a sitrep's metadata and counts its children inside the caller's
/// transaction; `None` if its row does not exist. The counts are computed
/// by the server, one pass over the sitrep's primary-key range per table:
/// one row comes back per table, whatever the sitrep's size.
pub(crate) async fn sitrep_summary_in_txn(
    conn: &mut AsyncPgConnection,
    id: SitrepUuid,
) -> Result<Option<SitrepSummary>, TransactionError> {
    let sitrep_id = id.into_untyped();
    let Some(row) = sitrep_metadata_query(sitrep_id).get_result(conn).await.optional()? else {
        return Ok(None);
    };
    let metadata =
        SitrepMetadata::try_from(row).map_err(|e| bad(e, &format!("reading sitrep {id}")))?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let cases = count(case_count_query(sitrep_id).get_result(conn).await?);
    let counts = |(requested, newly_requested): (i64, i64)| RequestCounts {
        requested: count(requested),
        newly_requested: count(newly_requested),
    };
    let alert_requests = counts(alert_request_counts_query(sitrep_id).get_result(conn).await?);
    let support_bundle_requests =
        counts(support_bundle_request_counts_query(sitrep_id).get_result(conn).await?);
    Ok(Some(SitrepSummary { metadata, cases, alert_requests, support_bundle_requests }))
}

/// Reads a whole sitrep inside the caller's transaction; `None` if its row
/// does not exist.
pub(crate) async fn sitrep_read_in_txn(
    conn: &mut AsyncPgConnection,
    id: SitrepUuid,
) -> Result<Option<Sitrep>, TransactionError> {
    let sitrep_id = id.into_untyped();
    let Some(row) = sitrep_metadata_query(sitrep_id).get_result(conn).await.optional()? else {
        return Ok(None);
    };
    let metadata =
        SitrepMetadata::try_from(row).map_err(|e| bad(e, &format!("reading sitrep {id}")))?;

    let cases =
        load_all_pages(conn, READ_PAGE_ROWS, |after| case_page_query(sitrep_id, after), |r| r.id)
            .await?
            .into_iter()
            .map(Case::from)
            .collect();
    let alert_requests = load_all_pages(
        conn,
        READ_PAGE_ROWS,
        |after| alert_request_page_query(sitrep_id, after, READ_PAGE_ROWS),
        |r| r.id,
    )
    .await?
    .into_iter()
    .map(AlertRequest::from)
    .collect();
    let support_bundle_requests = load_all_pages(
        conn,
        READ_PAGE_ROWS,
        |after| support_bundle_request_page_query(sitrep_id, after, READ_PAGE_ROWS),
        |r| r.id,
    )
    .await?
    .into_iter()
    .map(SupportBundleRequest::from)
    .collect();
    Ok(Some(Sitrep { metadata, cases, alert_requests, support_bundle_requests }))
}
