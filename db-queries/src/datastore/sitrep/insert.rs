//! Publishing a sitrep: one serializable transaction that makes it current
//! or writes nothing.
//!
//! The checks here are what the deletion-safety argument rests on
//! (docs/design.md, "Publishing a sitrep" and "The sweep"), so no caller bug can break them:
//!
//! 1. compare-and-swap on the parent: it must be the current sitrep;
//! 2. the generation rule, per resource type, verified against the parent's
//!    request set;
//! 3. fresh ids: a request that is new relative to the parent must not name
//!    an existing resource row of either type (live or tombstoned), a
//!    request of either type in another retained sitrep, nor an id in the
//!    ledger of collected resources (so retention never reopens an id);
//! 4. consistency with the history: new requests and new cases name this
//!    sitrep or one in the history as where they first appeared, and a case
//!    keeps the parent's opening sitrep;
//! 5. everything [`Sitrep::validate`] checks (nil ids, duplicates, missing
//!    cases, empty, oversized or NUL-bearing fields).

use super::{
    READ_PAGE_ROWS, alert_any_of_query, alert_request_any_of_query, alert_request_id_page_query,
    case_opened_of_query, collected_any_of_query, current_history_entry_query,
    history_entry_by_sitrep_query, load_all_pages, sitrep_metadata_query,
    support_bundle_any_of_query, support_bundle_request_any_of_query,
    support_bundle_request_id_page_query,
};
use crate::context::{Action, OpContext};
use crate::datastore::DataStore;
use crate::db_schema::{
    fm_alert_request, fm_case, fm_sitrep, fm_sitrep_history, fm_support_bundle_request,
};
use crate::error::Error;
use crate::model::{
    AlertRequestRow, CaseRow, SitrepHistoryRow, SitrepRow, SupportBundleRequestRow,
};
use crate::transaction::{TransactionError, transaction_retry};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nexus_fm_types::ids::SitrepUuid;
use nexus_fm_types::{Generation, ResourceType, Sitrep, SitrepVersion};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// Rows per multi-row INSERT statement. The widest child row has 6 columns,
/// so a statement carries at most 48,000 bind parameters, under
/// PostgreSQL's limit of 65,535.
pub const INSERT_CHUNK_ROWS: usize = 8_000;

/// Ids per `id = ANY($1)` lookup when checking that new request ids are
/// fresh. One array parameter per statement, so this bounds work per
/// statement, not bind parameters.
pub const LOOKUP_CHUNK_IDS: usize = 10_000;

/// The PostgreSQL notification channel on which a publish announces a new
/// current sitrep (payload: its version), from inside its transaction, so
/// listeners hear of it exactly when it commits. Executors LISTEN on it to
/// start on a new sitrep at once; polling remains the fallback (CockroachDB
/// has no LISTEN/NOTIFY, so there the datastore does not notify).
pub const SITREP_NOTIFY_CHANNEL: &str = "fm_sitrep_published";

/// `SELECT pg_notify(channel, version)`: announces a new current sitrep.
#[derive(Clone, Debug)]
pub struct SitrepNotifyQuery {
    payload: String,
}

/// The notification of a publish at `version`.
pub fn sitrep_notify_query(version: SitrepVersion) -> SitrepNotifyQuery {
    SitrepNotifyQuery { payload: version.to_string() }
}

impl diesel::query_builder::QueryId for SitrepNotifyQuery {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for SitrepNotifyQuery {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql("SELECT pg_notify(");
        out.push_bind_param::<Text, _>(SITREP_NOTIFY_CHANNEL)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.payload)?;
        out.push_sql(")");
        Ok(())
    }
}

/// Inserts a sitrep's row.
pub fn sitrep_row_insert_query(row: SitrepRow) -> impl crate::WriteQuery {
    diesel::insert_into(fm_sitrep::table).values(row)
}

/// Inserts up to [`INSERT_CHUNK_ROWS`] cases.
pub fn case_rows_insert_query(rows: Vec<CaseRow>) -> impl crate::WriteQuery {
    diesel::insert_into(fm_case::table).values(rows)
}

/// Inserts up to [`INSERT_CHUNK_ROWS`] alert requests.
pub fn alert_request_rows_insert_query(rows: Vec<AlertRequestRow>) -> impl crate::WriteQuery {
    diesel::insert_into(fm_alert_request::table).values(rows)
}

/// Inserts up to [`INSERT_CHUNK_ROWS`] support-bundle requests.
pub fn support_bundle_request_rows_insert_query(
    rows: Vec<SupportBundleRequestRow>,
) -> impl crate::WriteQuery {
    diesel::insert_into(fm_support_bundle_request::table).values(rows)
}

/// Makes a sitrep current: its history entry, unless the version is taken.
pub fn history_insert_query(row: SitrepHistoryRow) -> impl crate::WriteQuery {
    diesel::insert_into(fm_sitrep_history::table)
        .values(row)
        .on_conflict(fm_sitrep_history::version)
        .do_nothing()
}

/// A sitrep that became current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishedSitrep {
    /// Its id.
    pub sitrep_id: SitrepUuid,
    /// Its position in the history.
    pub version: SitrepVersion,
    /// How many times the transaction was retried after serialization
    /// failures.
    pub retries: u32,
}

impl DataStore {
    /// Publishes `sitrep`: makes it the current sitrep if it follows every
    /// rule, or writes nothing.
    ///
    /// # Errors
    ///
    /// - [`Error::Forbidden`] unless the role is the FM executor;
    /// - [`Error::InvalidSitrep`] for a sitrep malformed on its own
    ///   (duplicate ids, missing cases, empty or oversized fields);
    /// - [`Error::ParentNotCurrent`] when its parent is not the current
    ///   sitrep (or it has no parent but the history is not empty);
    /// - [`Error::GenerationMismatch`] when a generation breaks the rule;
    /// - [`Error::RequestIdReused`] when a new request reuses an id;
    /// - [`Error::InconsistentSitrep`] when it contradicts the history;
    /// - [`Error::SitrepExists`] when its id is taken.
    pub async fn sitrep_insert(
        &self,
        opctx: &OpContext,
        sitrep: &Sitrep,
    ) -> Result<PublishedSitrep, Error> {
        self.sitrep_insert_shared(opctx, Arc::new(sitrep.clone())).await
    }

    /// [`DataStore::sitrep_insert`] for a sitrep the caller no longer needs
    /// to own: it is shared with the transaction instead of copied, which
    /// matters for large sitreps (`fm-dev sitrep publish`).
    ///
    /// # Errors
    ///
    /// As [`DataStore::sitrep_insert`].
    pub async fn sitrep_insert_shared(
        &self,
        opctx: &OpContext,
        sitrep: Arc<Sitrep>,
    ) -> Result<PublishedSitrep, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::FmWrite).await?;
        sitrep.validate()?;
        let notify = self.notifications_supported();
        let done = transaction_retry(&mut conn, &opctx.log, "sitrep_insert", |conn| {
            let sitrep = Arc::clone(&sitrep);
            Box::pin(async move { sitrep_insert_in_txn(conn, &sitrep, notify).await })
        })
        .await?;
        let published =
            PublishedSitrep { sitrep_id: sitrep.id(), version: done.value, retries: done.retries };
        slog::info!(opctx.log, "sitrep published";
            "sitrep_id" => %published.sitrep_id,
            "version" => %published.version,
            "alert_generation" => %sitrep.metadata.alert_generation,
            "support_bundle_generation" => %sitrep.metadata.support_bundle_generation,
            "cases" => sitrep.cases.len(),
            "alert_requests" => sitrep.alert_requests.len(),
            "support_bundle_requests" => sitrep.support_bundle_requests.len(),
            "retries" => done.retries);
        Ok(published)
    }
}

fn abort<T>(e: Error) -> Result<T, TransactionError> {
    Err(TransactionError::Abort(e))
}

async fn sitrep_insert_in_txn(
    conn: &mut AsyncPgConnection,
    sitrep: &Sitrep,
    notify: bool,
) -> Result<SitrepVersion, TransactionError> {
    let meta = &sitrep.metadata;
    let sitrep_id = meta.id;

    // 1. Compare-and-swap on the parent.
    let current = current_history_entry_query().get_result(conn).await.optional()?;
    let version = match (&current, meta.parent_sitrep_id) {
        (None, None) => SitrepVersion::FIRST,
        (Some(SitrepHistoryRow { version, sitrep_id: current_id, .. }), Some(parent))
            if *current_id == parent.into_untyped() =>
        {
            SitrepVersion::try_new(*version).map_err(bad_row)?.next()
        }
        _ => {
            return abort(Error::ParentNotCurrent {
                sitrep_id,
                parent: meta.parent_sitrep_id,
                current: current.map(|c| SitrepUuid::from_untyped(c.sitrep_id)),
            });
        }
    };

    // The sitrep's own id must be new.
    if sitrep_metadata_query(sitrep_id.into_untyped()).get_result(conn).await.optional()?.is_some()
    {
        return abort(Error::SitrepExists(sitrep_id));
    }

    // 2. The generation rule, and 3. fresh ids, per resource type.
    let parent_row = match meta.parent_sitrep_id {
        None => None,
        Some(parent) => Some(
            sitrep_metadata_query(parent.into_untyped())
                .get_result(conn)
                .await
                .optional()?
                .ok_or_else(|| {
                    TransactionError::Abort(Error::BadData {
                        context: format!("reading current sitrep {parent}"),
                        source: "its history entry exists but its fm_sitrep row does not".into(),
                    })
                })?,
        ),
    };
    // Requests new relative to the parent, of both types.
    let mut added: HashMap<Uuid, ResourceType> = HashMap::new();
    for resource in ResourceType::ALL {
        let new_ids = sitrep.request_ids(resource);
        let (parent_generation, parent_ids) = match (&parent_row, meta.parent_sitrep_id) {
            (Some(row), Some(parent)) => {
                let generation = match resource {
                    ResourceType::Alert => row.alert_generation,
                    ResourceType::SupportBundle => row.support_bundle_generation,
                };
                let generation = Generation::try_new(generation).map_err(bad_row)?;
                (Some(generation), request_ids_in_txn(conn, parent.into_untyped(), resource).await?)
            }
            _ => (None, HashSet::new()),
        };
        let unchanged =
            parent_ids.len() == new_ids.len() && new_ids.iter().all(|id| parent_ids.contains(id));
        let expected = Generation::successor(parent_generation, unchanged).map_err(|e| {
            TransactionError::Abort(Error::InvalidArgument(format!("{resource} generation: {e}")))
        })?;
        let found = meta.generation(resource);
        if found != expected {
            return abort(Error::GenerationMismatch {
                sitrep_id,
                resource,
                expected,
                found,
                unchanged,
            });
        }
        added.extend(
            new_ids.into_iter().filter(|id| !parent_ids.contains(id)).map(|id| (id, resource)),
        );
    }
    check_fresh_in_txn(conn, &added).await?;
    check_history_consistency_in_txn(conn, sitrep, &added).await?;

    // 4. Write: the sitrep row, its children, then the history entry that
    // makes it current. All in this transaction, so a reader sees all of it
    // or none of it.
    sitrep_row_insert_query(SitrepRow::from(meta)).execute(conn).await?;
    // Rows are built a chunk at a time, so a large sitrep is never copied
    // whole.
    for chunk in sitrep.cases.chunks(INSERT_CHUNK_ROWS) {
        let rows = chunk.iter().map(|c| CaseRow::new(sitrep_id, c)).collect();
        case_rows_insert_query(rows).execute(conn).await?;
    }
    for chunk in sitrep.alert_requests.chunks(INSERT_CHUNK_ROWS) {
        let rows = chunk.iter().map(|r| AlertRequestRow::new(sitrep_id, r)).collect();
        alert_request_rows_insert_query(rows).execute(conn).await?;
    }
    for chunk in sitrep.support_bundle_requests.chunks(INSERT_CHUNK_ROWS) {
        let rows = chunk.iter().map(|r| SupportBundleRequestRow::new(sitrep_id, r)).collect();
        support_bundle_request_rows_insert_query(rows).execute(conn).await?;
    }

    // A concurrent publisher that read the same current sitrep and took
    // this version first makes this insert conflict. At SERIALIZABLE that
    // is reported as a serialization failure, and the retry then sees the
    // new current sitrep and returns `ParentNotCurrent`; the check of the
    // row count is a second line of defence.
    let inserted = history_insert_query(SitrepHistoryRow {
        version: version.as_i64(),
        sitrep_id: sitrep_id.into_untyped(),
        time_made_current: nexus_fm_types::time::now(),
    })
    .execute(conn)
    .await?;
    if inserted != 1 {
        return abort(Error::ParentNotCurrent {
            sitrep_id,
            parent: meta.parent_sitrep_id,
            current: None,
        });
    }
    if notify {
        // Delivered to listeners only if, and when, this transaction commits.
        sitrep_notify_query(version).execute(conn).await?;
    }
    Ok(version)
}

fn bad_row(e: impl std::error::Error + Send + Sync + 'static) -> TransactionError {
    TransactionError::Abort(Error::BadData {
        context: "reading the sitrep history".to_string(),
        source: Box::new(e),
    })
}

/// All request ids of one type in one sitrep, read page by page.
pub(crate) async fn request_ids_in_txn(
    conn: &mut AsyncPgConnection,
    sitrep_id: Uuid,
    resource: ResourceType,
) -> Result<HashSet<Uuid>, diesel::result::Error> {
    let ids = match resource {
        ResourceType::Alert => {
            load_all_pages(
                conn,
                READ_PAGE_ROWS,
                |after| alert_request_id_page_query(sitrep_id, after, READ_PAGE_ROWS),
                |id| *id,
            )
            .await?
        }
        ResourceType::SupportBundle => {
            load_all_pages(
                conn,
                READ_PAGE_ROWS,
                |after| support_bundle_request_id_page_query(sitrep_id, after, READ_PAGE_ROWS),
                |id| *id,
            )
            .await?
        }
    };
    Ok(ids.into_iter().collect())
}

/// Fails unless every id in `added` (new requests of either type) is
/// unused: no resource row of either type (live or tombstoned), no request
/// of either type in any retained sitrep, and no entry in the ledger of
/// collected ids. Ids are unique across both resource types, and the
/// ledger makes the check independent of retention: an id whose resource
/// an operator deleted and the sweep collected is refused even after every
/// sitrep that named it has been pruned.
async fn check_fresh_in_txn(
    conn: &mut AsyncPgConnection,
    added: &HashMap<Uuid, ResourceType>,
) -> Result<(), TransactionError> {
    let ids: Vec<Uuid> = added.keys().copied().collect();
    let reused = |id: Uuid, used_by: String| {
        let resource = added.get(&id).copied().unwrap_or(ResourceType::Alert);
        abort(Error::RequestIdReused { resource, id, used_by })
    };
    for chunk in ids.chunks(LOOKUP_CHUNK_IDS) {
        let chunk = chunk.to_vec();
        if let Some(id) = alert_any_of_query(chunk.clone()).get_result(conn).await.optional()? {
            return reused(id, "an alert with this id exists (live or deleted)".to_string());
        }
        if let Some(id) =
            support_bundle_any_of_query(chunk.clone()).get_result(conn).await.optional()?
        {
            return reused(
                id,
                "a support bundle with this id exists (live or deleted)".to_string(),
            );
        }
        if let Some((other, id)) = alert_request_any_of_query(chunk.clone())
            .get_result::<(Uuid, Uuid)>(conn)
            .await
            .optional()?
        {
            return reused(id, format!("sitrep {other} requests an alert with this id"));
        }
        if let Some((other, id)) = support_bundle_request_any_of_query(chunk.clone())
            .get_result::<(Uuid, Uuid)>(conn)
            .await
            .optional()?
        {
            return reused(id, format!("sitrep {other} requests a support bundle with this id"));
        }
        if let Some((id, kind)) =
            collected_any_of_query(chunk).get_result::<(Uuid, String)>(conn).await.optional()?
        {
            return reused(
                id,
                format!(
                    "it named a {kind} that an operator deleted and the sweep removed; \
                     a deleted resource is never requested again"
                ),
            );
        }
    }
    Ok(())
}

/// Fails unless the sitrep agrees with the history it joins: every new
/// request, and every case the parent does not hold, names as its first
/// sitrep this sitrep or one in the history (whose entries are all its
/// ancestors, the history being linear and the parent current); and every
/// case the parent holds keeps the parent's opening sitrep.
///
/// A new request first appears in this sitrep, so the builder names the
/// sitrep itself; an ancestor still in the history is tolerated. An
/// ancestor that has been pruned cannot be told from an invented id, so it
/// is refused.
async fn check_history_consistency_in_txn(
    conn: &mut AsyncPgConnection,
    sitrep: &Sitrep,
    added: &HashMap<Uuid, ResourceType>,
) -> Result<(), TransactionError> {
    let own = sitrep.id();
    let inconsistent = |detail: String| abort(Error::InconsistentSitrep { sitrep_id: own, detail });
    // The parent's opening sitrep of each of this sitrep's cases that the
    // parent holds: primary-key lookups of this sitrep's case ids only.
    let mut parent_cases: HashMap<Uuid, Uuid> = HashMap::new();
    if let Some(parent) = sitrep.metadata.parent_sitrep_id {
        let ids: Vec<Uuid> = sitrep.cases.iter().map(|c| c.id.into_untyped()).collect();
        for chunk in ids.chunks(LOOKUP_CHUNK_IDS) {
            let found: Vec<(Uuid, Uuid)> =
                case_opened_of_query(parent.into_untyped(), chunk.to_vec()).load(conn).await?;
            parent_cases.extend(found);
        }
    }
    // (what names it, the sitrep it names), for everything that must name
    // this sitrep or one in the history.
    let mut named: Vec<(String, SitrepUuid)> = Vec::new();
    for case in &sitrep.cases {
        match parent_cases.get(&case.id.into_untyped()) {
            Some(&opened) if opened != case.opened_sitrep_id.into_untyped() => {
                return inconsistent(format!(
                    "case {} was opened in sitrep {opened} according to the parent, but this \
                     sitrep says {}",
                    case.id, case.opened_sitrep_id
                ));
            }
            Some(_) => {}
            None => named.push((format!("new case {}", case.id), case.opened_sitrep_id)),
        }
    }
    for r in &sitrep.alert_requests {
        if added.contains_key(&r.id.into_untyped()) {
            named.push((format!("new alert request {}", r.id), r.requested_sitrep_id));
        }
    }
    for r in &sitrep.support_bundle_requests {
        if added.contains_key(&r.id.into_untyped()) {
            named.push((format!("new support-bundle request {}", r.id), r.requested_sitrep_id));
        }
    }
    let mut known: HashSet<SitrepUuid> = HashSet::from([own]);
    for (what, sitrep_id) in named {
        if known.contains(&sitrep_id) {
            continue;
        }
        let entry = history_entry_by_sitrep_query(sitrep_id.into_untyped())
            .get_result(conn)
            .await
            .optional()?;
        if entry.is_none() {
            return inconsistent(format!(
                "{what} names sitrep {sitrep_id} as where it first appeared, which is neither \
                 this sitrep nor one in the history"
            ));
        }
        known.insert(sitrep_id);
    }
    Ok(())
}
