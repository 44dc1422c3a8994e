//! The tombstone sweep: hard-deleting operator-deleted resources that no
//! sitrep that can still execute asks for.
//!
//! An executor holding sitrep S may hard-delete tombstone X of type T when
//! all of these hold, checked inside the deleting statement
//! (docs/design.md, "The sweep"):
//!
//! - S was committed (it has a history entry) and its `fm_sitrep` row still
//!   exists; missing evidence means delete nothing;
//! - X's id is not in `Req_T(S)` (a primary-key lookup);
//! - `X.fm_generation < g_T(S)`, or X was not created by FM.
//!
//! The sweep walks the tombstone-only partial index with a keyset cursor, a
//! page of [`SWEEP_PAGE_ROWS`] at a time; the cursor advances past every
//! examined row, so a page that deletes nothing still makes progress. Its
//! cost grows with the number of tombstones, never with the number of live
//! rows, and never with the size of S: "still requested" is one primary-key
//! probe per examined tombstone. `g_T(S)` is read from the database in the
//! same statement, never taken from the caller. Every FM-created resource
//! hard-deleted here is recorded, by the same statement, in the ledger of
//! collected ids that publishing checks (docs/design.md, "Publishing a sitrep").

use crate::context::{Action, OpContext};
use crate::datastore::DataStore;
use crate::datastore::rendezvous::push_committed_sitrep_cte;
use crate::datastore::resource::{ResourceTables, resource_tables};
use crate::error::Error;
use crate::transaction::transaction_retry;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Nullable, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use nexus_fm_types::ResourceType;
use nexus_fm_types::ids::SitrepUuid;
use uuid::Uuid;

/// Tombstones examined per sweep statement.
pub const SWEEP_PAGE_ROWS: i64 = 1_000;

/// What one sweep of one resource type did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SweepCounts {
    /// Pages (statements) run.
    pub pages: u64,
    /// Tombstones looked at.
    pub tombstones_examined: u64,
    /// Tombstones hard-deleted.
    pub hard_deleted: u64,
    /// Kept because the executing sitrep still requests them.
    pub retained_still_requested: u64,
    /// Kept because they were created at (or after) the executing sitrep's
    /// generation.
    pub retained_too_new: u64,
    /// Kept because the executing sitrep has no history entry or no row
    /// (never committed, or pruned): the sweep then deletes nothing.
    pub retained_sitrep_missing: u64,
    /// Serialization-failure retries over all pages.
    #[serde(default)]
    pub retries: u64,
}

/// One page of the sweep: examine the next tombstones after `after` (from
/// the first tombstone when `None`) and hard-delete the eligible ones, all
/// in one statement; each hard-deleted FM-created resource is recorded in
/// the ledger of collected ids (`fm_collected_resource`) by the same
/// statement, so publishing can refuse its id forever after. Hand-built
/// for the data-modifying CTE; snapshot-tested and EXPLAINed like every
/// query.
///
/// "Still requested" is a primary-key probe of `(sitrep_id, id)` per
/// examined tombstone (`LATERAL ... LIMIT 1`), so a page costs the same
/// whatever the size of the sitrep that drives it.
#[derive(Clone, Debug)]
pub struct SweepPageQuery {
    resource: ResourceType,
    sitrep_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
}

/// The sweep page after tombstone `after` (`None`: the first page),
/// driven by sitrep `sitrep_id`.
pub fn sweep_page_query(
    resource: ResourceType,
    sitrep_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> SweepPageQuery {
    SweepPageQuery { resource, sitrep_id, after, limit }
}

impl QueryId for SweepPageQuery {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for SweepPageQuery {
    /// (sitrep present, examined, last examined id, hard-deleted, retained
    /// still requested, retained too new)
    type SqlType = (Bool, BigInt, Nullable<SqlUuid>, BigInt, BigInt, BigInt);
}

impl QueryFragment<Pg> for SweepPageQuery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use crate::datastore::rendezvous::shared::{
            COLLECTED, COLLECTED_ID, COLLECTED_TIME_COLLECTED, COLLECTED_TIME_DELETED,
            COLLECTED_TYPE,
        };
        let ResourceTables {
            table,
            id,
            time_deleted,
            fm_generation,
            request_table,
            request_sitrep_id,
            request_id,
            collected_type,
            ..
        } = resource_tables(self.resource);
        // Evidence that S may drive a sweep, the same definition the
        // guarded creation uses. No row: delete nothing.
        out.push_sql("WITH ");
        push_committed_sitrep_cte(&mut out, self.resource, &self.sitrep_id)?;
        // The next page of tombstones, by the tombstone-only partial index
        // (the predicate is stated so the planner can use it).
        out.push_sql(&format!(
            ", page AS (SELECT t.{id} AS id, t.{fm_generation} AS fm_generation FROM {table} \
             AS t WHERE t.{time_deleted} IS NOT NULL"
        ));
        if let Some(after) = &self.after {
            out.push_sql(&format!(" AND t.{id} > "));
            out.push_bind_param::<SqlUuid, _>(after)?;
        }
        out.push_sql(&format!(" ORDER BY t.{id} LIMIT "));
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql("), ");
        // Per examined tombstone: is it in Req_T(S)? One primary-key probe.
        out.push_sql(&format!(
            "probed AS (SELECT p.id, p.fm_generation, x.requested IS NOT NULL AS requested \
             FROM page AS p LEFT JOIN LATERAL (SELECT true AS requested FROM {request_table} \
             AS r WHERE r.{request_sitrep_id} = "
        ));
        out.push_bind_param::<SqlUuid, _>(&self.sitrep_id)?;
        out.push_sql(&format!(" AND r.{request_id} = p.id LIMIT 1) AS x ON true), "));
        out.push_sql(
            "eligible AS (SELECT p.id FROM probed AS p, evidence AS e \
             WHERE NOT p.requested \
             AND (p.fm_generation IS NULL OR p.fm_generation < e.generation)), ",
        );
        out.push_sql(&format!(
            "deleted AS (DELETE FROM {table} AS d WHERE d.{id} IN (SELECT id FROM eligible) \
             AND d.{time_deleted} IS NOT NULL \
             RETURNING d.{id} AS id, d.{fm_generation} AS fm_generation, \
             d.{time_deleted} AS time_deleted), "
        ));
        // The ledger: every FM-created resource removed here, so that no
        // later sitrep can request its id again, whatever is retained.
        out.push_sql(&format!(
            "collected AS (INSERT INTO {COLLECTED} \
             ({COLLECTED_ID}, {COLLECTED_TYPE}, {COLLECTED_TIME_DELETED}, \
             {COLLECTED_TIME_COLLECTED}) SELECT d.id, '{collected_type}', \
             d.time_deleted, now() FROM deleted AS d WHERE d.fm_generation IS NOT NULL \
             ON CONFLICT ({COLLECTED_ID}) DO NOTHING RETURNING {COLLECTED_ID}) "
        ));
        out.push_sql(
            "SELECT EXISTS (SELECT 1 FROM evidence) AS sitrep_present, \
             (SELECT count(*) FROM page) AS examined, \
             (SELECT p.id FROM page AS p ORDER BY p.id DESC LIMIT 1) AS last_id, \
             (SELECT count(*) FROM deleted) AS hard_deleted, \
             (SELECT count(*) FROM probed AS p WHERE p.requested) AS retained_requested, \
             (SELECT count(*) FROM probed AS p, evidence AS e \
               WHERE NOT p.requested AND p.fm_generation >= e.generation) AS retained_too_new",
        );
        Ok(())
    }
}

impl DataStore {
    /// Sweeps the tombstones of one resource type, driven by the sitrep the
    /// executor holds, page by page until every tombstone has been examined.
    /// `page_rows` overrides [`SWEEP_PAGE_ROWS`] (tests use tiny pages).
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] unless the role is the FM executor;
    /// [`Error::InvalidArgument`] for a page size below 1; database errors.
    pub async fn fm_tombstones_sweep(
        &self,
        opctx: &OpContext,
        sitrep_id: SitrepUuid,
        resource: ResourceType,
        page_rows: Option<i64>,
    ) -> Result<SweepCounts, Error> {
        let limit = page_rows.unwrap_or(SWEEP_PAGE_ROWS);
        if limit < 1 {
            return Err(Error::InvalidArgument(format!("sweep page size must be >= 1: {limit}")));
        }
        let mut conn = self.pool_connection_authorized(opctx, Action::FmWrite).await?;
        let mut counts = SweepCounts::default();
        let mut after = None;
        loop {
            let query = sweep_page_query(resource, sitrep_id.into_untyped(), after, limit);
            let done = transaction_retry(&mut conn, &opctx.log, "fm_tombstones_sweep", |conn| {
                let query = query.clone();
                Box::pin(async move {
                    let row: (bool, i64, Option<Uuid>, i64, i64, i64) =
                        query.get_result(conn).await?;
                    Ok(row)
                })
            })
            .await?;
            let (present, examined, last, deleted, requested, too_new) = done.value;
            counts.pages += 1;
            counts.retries += u64::from(done.retries);
            counts.tombstones_examined += examined as u64;
            if !present {
                // Missing evidence: this sitrep may not drive a sweep at
                // all, so stop here having deleted nothing.
                counts.retained_sitrep_missing += examined as u64;
                break;
            }
            counts.hard_deleted += deleted as u64;
            counts.retained_still_requested += requested as u64;
            counts.retained_too_new += too_new as u64;
            // The cursor comes from the examined rows (not from RETURNING,
            // whose order is unspecified), so retained rows are passed too.
            match last {
                Some(id) if examined == limit => after = Some(id),
                _ => break,
            }
        }
        if counts.hard_deleted > 0 {
            slog::info!(opctx.log, "tombstones swept";
                "resource" => %resource, "sitrep_id" => %sitrep_id,
                "hard_deleted" => counts.hard_deleted,
                "examined" => counts.tombstones_examined, "pages" => counts.pages);
        }
        Ok(counts)
    }
}

/// Sample parameters for the catalogue: the first page (`after` `None`) or
/// a later one.
pub fn sweep_page_sample(resource: ResourceType, after: Option<Uuid>) -> SweepPageQuery {
    sweep_page_query(
        resource,
        Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0001),
        after,
        SWEEP_PAGE_ROWS,
    )
}
