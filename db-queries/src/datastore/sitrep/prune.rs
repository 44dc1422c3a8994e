//! History retention: keep the newest sitreps, archive and delete the rest.
//!
//! The pruner keeps the newest `keep` history entries (never fewer than
//! [`MIN_KEEP`], so the current sitrep and its parent always stay) and
//! removes older sitreps one at a time, oldest first, a page of history
//! entries at a time. Each sitrep goes in one transaction that archives it
//! as JSON and then deletes its `fm_sitrep` row first and its children after
//! it; a reader therefore sees a whole sitrep or none, and "the sitrep row
//! exists" always implies its requests are visible, which the sweep relies
//! on (DESIGN.md section 9). Pruning never makes a tombstone collectable
//! early: the sweep driven by a pruned sitrep simply deletes nothing.
//!
//! The archive is bounded too: only the newest `archive_keep` entries stay.

use super::current_history_entry_query;
use super::read::sitrep_read_in_txn;
use crate::context::{Action, OpContext};
use crate::datastore::DataStore;
use crate::db_schema::{
    fm_alert_request, fm_case, fm_sitrep, fm_sitrep_archive, fm_sitrep_history,
    fm_support_bundle_request,
};
use crate::error::Error;
use crate::model::{SitrepArchiveRow, SitrepHistoryRow};
use crate::transaction::{TransactionError, transaction_retry};
use chrono::{DateTime, Utc};
use diesel::dsl::{AsSelect, delete};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nexus_fm_types::ids::SitrepUuid;
use nexus_fm_types::{Sitrep, SitrepVersion};
use uuid::Uuid;

/// The fewest history entries the pruner keeps: the current sitrep and its
/// parent.
pub const MIN_KEEP: u32 = 2;

/// History entries (or archive entries) handled per page.
pub const PRUNE_PAGE_ROWS: i64 = 100;

/// How much to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// History entries to keep (at least [`MIN_KEEP`]).
    pub keep: u32,
    /// Archive entries to keep (0 disables archiving's retention of old
    /// entries entirely: every archived sitrep is deleted at the end of the
    /// pass).
    pub archive_keep: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy { keep: 100, archive_keep: 1000 }
    }
}

/// One sitrep the pruner removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PrunedSitrep {
    /// Its history version.
    pub version: SitrepVersion,
    /// Its id.
    pub sitrep_id: SitrepUuid,
}

/// What one pruning pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    /// The current version when the pass started (`None`: empty history).
    pub current_version: Option<SitrepVersion>,
    /// Sitreps archived and deleted, oldest first.
    pub pruned: Vec<PrunedSitrep>,
    /// History entries that another pruner removed first.
    pub already_gone: usize,
    /// Archive entries deleted to respect `archive_keep`.
    pub archive_entries_deleted: usize,
}

/// A sitrep as the archive keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedSitrep {
    /// The history version it had.
    pub version: SitrepVersion,
    /// When it became current.
    pub time_made_current: DateTime<Utc>,
    /// When it was archived.
    pub time_archived: DateTime<Utc>,
    /// The sitrep itself.
    pub sitrep: Sitrep,
}

/// History entries at or below `cutoff`, oldest first, after `after`.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn prunable_history_page_query(cutoff: i64, after: i64) -> _ {
    let columns: AsSelect<SitrepHistoryRow, Pg> = SitrepHistoryRow::as_select();
    let page: i64 = PRUNE_PAGE_ROWS;
    fm_sitrep_history::table
        .filter(fm_sitrep_history::version.le(cutoff))
        .filter(fm_sitrep_history::version.gt(after))
        .order(fm_sitrep_history::version.asc())
        .limit(page)
        .select(columns)
}

/// The history entry at one version.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn history_entry_by_version_query(version: i64) -> _ {
    let columns: AsSelect<SitrepHistoryRow, Pg> = SitrepHistoryRow::as_select();
    fm_sitrep_history::table.filter(fm_sitrep_history::version.eq(version)).select(columns)
}

/// Archives a sitrep. No conflict target: a concurrent pruner archiving the
/// same sitrep clashes on the primary key or on the version key; either way
/// (at SERIALIZABLE, as a serialization failure that is retried) the pass
/// then finds the history entry gone.
pub fn archive_insert_query(row: SitrepArchiveRow) -> impl crate::WriteQuery {
    diesel::insert_into(fm_sitrep_archive::table).values(row).on_conflict_do_nothing()
}

/// Deletes a sitrep's row. Runs before its children are deleted.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn sitrep_delete_query(sitrep_id: Uuid) -> _ {
    delete(fm_sitrep::table.filter(fm_sitrep::id.eq(sitrep_id)))
}

/// Deletes a sitrep's cases.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn case_delete_query(sitrep_id: Uuid) -> _ {
    delete(fm_case::table.filter(fm_case::sitrep_id.eq(sitrep_id)))
}

/// Deletes a sitrep's alert requests.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_request_delete_query(sitrep_id: Uuid) -> _ {
    delete(fm_alert_request::table.filter(fm_alert_request::sitrep_id.eq(sitrep_id)))
}

/// Deletes a sitrep's support-bundle requests.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_request_delete_query(sitrep_id: Uuid) -> _ {
    delete(
        fm_support_bundle_request::table.filter(fm_support_bundle_request::sitrep_id.eq(sitrep_id)),
    )
}

/// Deletes a history entry.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn history_delete_query(version: i64) -> _ {
    delete(fm_sitrep_history::table.filter(fm_sitrep_history::version.eq(version)))
}

/// The archive entry of one sitrep.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn archive_entry_query(sitrep_id: Uuid) -> _ {
    let columns: AsSelect<SitrepArchiveRow, Pg> = SitrepArchiveRow::as_select();
    fm_sitrep_archive::table.filter(fm_sitrep_archive::sitrep_id.eq(sitrep_id)).select(columns)
}

/// The version of the archive entry that is the `skip`-th newest (0 = the
/// newest): everything older than the `archive_keep`-th newest goes.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn archive_nth_newest_version_query(skip: i64) -> _ {
    let one: i64 = 1;
    fm_sitrep_archive::table
        .order(fm_sitrep_archive::version.desc())
        .offset(skip)
        .limit(one)
        .select(fm_sitrep_archive::version)
}

/// A page of archive entries at or below a version, oldest first.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn archive_page_at_or_below_query(version: i64) -> _ {
    let page: i64 = PRUNE_PAGE_ROWS;
    fm_sitrep_archive::table
        .filter(fm_sitrep_archive::version.le(version))
        .order(fm_sitrep_archive::version.asc())
        .limit(page)
        .select(fm_sitrep_archive::sitrep_id)
}

/// Deletes archive entries by id.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn archive_delete_query(ids: Vec<Uuid>) -> _ {
    delete(fm_sitrep_archive::table.filter(fm_sitrep_archive::sitrep_id.eq_any(ids)))
}

impl DataStore {
    /// One pruning pass: archives and deletes every sitrep older than the
    /// newest `policy.keep` history entries, then trims the archive to
    /// `policy.archive_keep` entries.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `policy.keep` is below [`MIN_KEEP`];
    /// [`Error::Forbidden`] unless the role is the FM executor.
    pub async fn sitrep_history_prune(
        &self,
        opctx: &OpContext,
        policy: RetentionPolicy,
    ) -> Result<PruneReport, Error> {
        if policy.keep < MIN_KEEP {
            return Err(Error::InvalidArgument(format!(
                "the pruner must keep at least {MIN_KEEP} history entries, asked to keep {}",
                policy.keep
            )));
        }
        let mut conn = self.pool_connection_authorized(opctx, Action::FmWrite).await?;
        let mut report = PruneReport::default();

        let Some(current) = current_history_entry_query()
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| Error::database("reading the current sitrep version", e))?
        else {
            return Ok(report);
        };
        report.current_version = SitrepVersion::try_new(current.version).ok();
        let cutoff = current.version - i64::from(policy.keep);

        let mut after = 0;
        loop {
            let page: Vec<SitrepHistoryRow> = prunable_history_page_query(cutoff, after)
                .load(&mut conn)
                .await
                .map_err(|e| Error::database("listing prunable sitreps", e))?;
            let Some(last) = page.last() else { break };
            after = last.version;
            let full = page.len() as i64 == PRUNE_PAGE_ROWS;
            for entry in page {
                match self.sitrep_prune_one(opctx, &mut conn, &entry, cutoff).await? {
                    Some(pruned) => report.pruned.push(pruned),
                    None => report.already_gone += 1,
                }
            }
            if !full {
                break;
            }
        }

        report.archive_entries_deleted =
            archive_trim(&mut conn, i64::from(policy.archive_keep)).await?;
        if !report.pruned.is_empty() || report.archive_entries_deleted > 0 {
            slog::info!(opctx.log, "sitrep history pruned";
                "pruned" => report.pruned.len(),
                "oldest_kept_version" => cutoff + 1,
                "archive_entries_deleted" => report.archive_entries_deleted);
        }
        Ok(report)
    }

    /// Archives and deletes one sitrep in one transaction. `None` if another
    /// pruner got there first.
    async fn sitrep_prune_one(
        &self,
        opctx: &OpContext,
        conn: &mut AsyncPgConnection,
        entry: &SitrepHistoryRow,
        cutoff: i64,
    ) -> Result<Option<PrunedSitrep>, Error> {
        let version = entry.version;
        let done = transaction_retry(conn, &opctx.log, "sitrep_prune_one", move |conn| {
            Box::pin(async move { sitrep_prune_one_in_txn(conn, version, cutoff).await })
        })
        .await?;
        Ok(done.value)
    }

    /// Reads an archived sitrep.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the archive has no entry for it.
    pub async fn sitrep_archive_read(
        &self,
        opctx: &OpContext,
        id: SitrepUuid,
    ) -> Result<ArchivedSitrep, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let row = archive_entry_query(id.into_untyped())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| Error::database(format_args!("reading archived sitrep {id}"), e))?
            .ok_or(Error::NotFound { what: "archived sitrep", id: id.to_string() })?;
        let SitrepArchiveRow { sitrep_id: _, version, time_made_current, time_archived, sitrep } =
            row;
        let bad = |source: Box<dyn std::error::Error + Send + Sync>| Error::BadData {
            context: format!("decoding archived sitrep {id}"),
            source,
        };
        Ok(ArchivedSitrep {
            version: SitrepVersion::try_new(version).map_err(|e| bad(Box::new(e)))?,
            time_made_current,
            time_archived,
            sitrep: serde_json::from_value(sitrep).map_err(|e| bad(Box::new(e)))?,
        })
    }
}

async fn sitrep_prune_one_in_txn(
    conn: &mut AsyncPgConnection,
    version: i64,
    cutoff: i64,
) -> Result<Option<PrunedSitrep>, TransactionError> {
    // Check again inside the transaction: the entry may be gone (another
    // pruner), and the current sitrep must never be pruned.
    let Some(entry) = history_entry_by_version_query(version).get_result(conn).await.optional()?
    else {
        return Ok(None);
    };
    let current = current_history_entry_query().get_result(conn).await?;
    if entry.version > cutoff || entry.version >= current.version {
        return Ok(None);
    }
    let id = SitrepUuid::from_untyped(entry.sitrep_id);
    let pruned = PrunedSitrep {
        version: SitrepVersion::try_new(entry.version).map_err(|e| {
            TransactionError::Abort(Error::BadData {
                context: "reading the sitrep history".into(),
                source: Box::new(e),
            })
        })?,
        sitrep_id: id,
    };

    // Archive first, while the sitrep can still be read.
    if let Some(sitrep) = sitrep_read_in_txn(conn, id).await? {
        let json = serde_json::to_value(&sitrep).map_err(|e| {
            TransactionError::Abort(Error::BadData {
                context: format!("encoding sitrep {id} for the archive"),
                source: Box::new(e),
            })
        })?;
        archive_insert_query(SitrepArchiveRow {
            sitrep_id: entry.sitrep_id,
            version: entry.version,
            time_made_current: entry.time_made_current,
            time_archived: nexus_fm_types::time::now(),
            sitrep: json,
        })
        .execute(conn)
        .await?;
    }

    // Write ordering: the sitrep row goes first, then its children, all in
    // this transaction. "The fm_sitrep row exists" must imply that all of
    // its requests are still visible, because the sweep treats a missing
    // row as "delete nothing" and an existing one as evidence of its
    // complete request set.
    sitrep_delete_query(entry.sitrep_id).execute(conn).await?;
    case_delete_query(entry.sitrep_id).execute(conn).await?;
    alert_request_delete_query(entry.sitrep_id).execute(conn).await?;
    support_bundle_request_delete_query(entry.sitrep_id).execute(conn).await?;
    history_delete_query(entry.version).execute(conn).await?;
    Ok(Some(pruned))
}

/// Deletes archive entries older than the newest `keep`, a page at a time.
async fn archive_trim(conn: &mut AsyncPgConnection, keep: i64) -> Result<usize, Error> {
    let Some(boundary) = archive_nth_newest_version_query(keep)
        .get_result::<i64>(conn)
        .await
        .optional()
        .map_err(|e| Error::database("finding the archive retention boundary", e))?
    else {
        return Ok(0);
    };
    let mut deleted = 0;
    loop {
        let ids: Vec<Uuid> = archive_page_at_or_below_query(boundary)
            .load(conn)
            .await
            .map_err(|e| Error::database("listing old archive entries", e))?;
        if ids.is_empty() {
            break;
        }
        deleted += archive_delete_query(ids)
            .execute(conn)
            .await
            .map_err(|e| Error::database("deleting old archive entries", e))?;
    }
    Ok(deleted)
}
