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
//!
//! The predicate is written once, in [`push_sweep_examined_ctes`]: one
//! [`SweepReason`] per examined tombstone. The deleting page deletes the
//! rows whose reason is "eligible"; the read-only dry run
//! ([`SweepDryRunPageQuery`], [`DataStore::fm_tombstones_sweep_dry_run`],
//! what `fmdb tombstones` shows) returns the reasons.

use crate::context::{Action, OpContext};
use crate::datastore::DataStore;
use crate::datastore::rendezvous::push_committed_sitrep_cte;
use crate::datastore::resource::{ResourceTables, resource_tables};
use crate::error::Error;
use crate::transaction::transaction_retry;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
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

/// Why the sweep keeps a tombstone, or that it may hard-delete it: the one
/// definition, computed in SQL by [`push_sweep_examined_ctes`] for every
/// examined tombstone, that both the deleting [`SweepPageQuery`] and the
/// read-only [`SweepDryRunPageQuery`] use.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SweepReason {
    /// The driving sitrep has no history entry or no row: nothing is deleted.
    SitrepMissing,
    /// The driving sitrep still requests it.
    StillRequested,
    /// Created by FM at (or after) the driving sitrep's generation.
    TooNew,
    /// The sweep hard-deletes it.
    Eligible,
}

impl SweepReason {
    /// Every reason, in the order of the `CASE` that computes it.
    pub const ALL: [SweepReason; 4] =
        [Self::SitrepMissing, Self::StillRequested, Self::TooNew, Self::Eligible];

    /// Its text in SQL (a constant, inlined as a literal).
    pub const fn sql_text(self) -> &'static str {
        match self {
            Self::SitrepMissing => "sitrep_missing",
            Self::StillRequested => "still_requested",
            Self::TooNew => "too_new",
            Self::Eligible => "eligible",
        }
    }

    /// Decodes the text [`Self::sql_text`] gives.
    pub fn from_sql(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.sql_text() == text)
    }
}

impl std::fmt::Display for SweepReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SitrepMissing => "sitrep missing",
            Self::StillRequested => "still requested",
            Self::TooNew => "too new",
            Self::Eligible => "eligible",
        })
    }
}

/// Pushes `WITH evidence, page, probed, classified`: the page of tombstones
/// after `after` (from the first when `None`) and, per examined tombstone,
/// its [`SweepReason`] in column `reason` of `classified` (with `id`,
/// `fm_generation`, `time_deleted`). This is the sweep's predicate; the
/// deleting page and the dry run both build on it.
fn push_sweep_examined_ctes<'b>(
    out: &mut AstPass<'_, 'b, Pg>,
    resource: ResourceType,
    sitrep_id: &'b Uuid,
    after: Option<&'b Uuid>,
    limit: &'b i64,
) -> QueryResult<()> {
    let ResourceTables {
        table,
        id,
        time_deleted,
        fm_generation,
        request_table,
        request_sitrep_id,
        request_id,
        ..
    } = resource_tables(resource);
    // Evidence that S may drive a sweep, the same definition the guarded
    // creation uses. No row: delete nothing.
    out.push_sql("WITH ");
    push_committed_sitrep_cte(out, resource, sitrep_id)?;
    // The next page of tombstones, by the tombstone-only partial index (the
    // predicate is stated so the planner can use it).
    out.push_sql(&format!(
        ", page AS (SELECT t.{id} AS id, t.{fm_generation} AS fm_generation, \
         t.{time_deleted} AS time_deleted FROM {table} AS t WHERE t.{time_deleted} IS NOT NULL"
    ));
    if let Some(after) = after {
        out.push_sql(&format!(" AND t.{id} > "));
        out.push_bind_param::<SqlUuid, _>(after)?;
    }
    out.push_sql(&format!(" ORDER BY t.{id} LIMIT "));
    out.push_bind_param::<BigInt, _>(limit)?;
    out.push_sql("), ");
    // Per examined tombstone: is it in Req_T(S)? One primary-key probe.
    out.push_sql(&format!(
        "probed AS (SELECT p.id, p.fm_generation, p.time_deleted, \
         x.requested IS NOT NULL AS requested \
         FROM page AS p LEFT JOIN LATERAL (SELECT true AS requested FROM {request_table} \
         AS r WHERE r.{request_sitrep_id} = "
    ));
    out.push_bind_param::<SqlUuid, _>(sitrep_id)?;
    out.push_sql(&format!(" AND r.{request_id} = p.id LIMIT 1) AS x ON true), "));
    // The reason, one per examined tombstone. `evidence` has at most one
    // row (by primary key) and its generation is NOT NULL, so a NULL
    // generation after the outer join means no evidence.
    let [missing, requested, too_new, eligible] = SweepReason::ALL.map(SweepReason::sql_text);
    out.push_sql(&format!(
        "classified AS (SELECT p.id, p.fm_generation, p.time_deleted, CASE \
         WHEN e.generation IS NULL THEN '{missing}' \
         WHEN p.requested THEN '{requested}' \
         WHEN p.fm_generation IS NULL OR p.fm_generation < e.generation THEN '{eligible}' \
         ELSE '{too_new}' END AS reason \
         FROM probed AS p LEFT JOIN evidence AS e ON true)"
    ));
    Ok(())
}

impl QueryFragment<Pg> for SweepPageQuery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use crate::datastore::rendezvous::shared::{
            COLLECTED, COLLECTED_ID, COLLECTED_TIME_COLLECTED, COLLECTED_TIME_DELETED,
            COLLECTED_TYPE,
        };
        let ResourceTables { table, id, time_deleted, fm_generation, collected_type, .. } =
            resource_tables(self.resource);
        push_sweep_examined_ctes(
            &mut out,
            self.resource,
            &self.sitrep_id,
            self.after.as_ref(),
            &self.limit,
        )?;
        let eligible = SweepReason::Eligible.sql_text();
        out.push_sql(&format!(
            ", deleted AS (DELETE FROM {table} AS d WHERE d.{id} IN \
             (SELECT c.id FROM classified AS c WHERE c.reason = '{eligible}') \
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
        let requested = SweepReason::StillRequested.sql_text();
        let too_new = SweepReason::TooNew.sql_text();
        out.push_sql(&format!(
            "SELECT EXISTS (SELECT 1 FROM evidence) AS sitrep_present, \
             (SELECT count(*) FROM page) AS examined, \
             (SELECT p.id FROM page AS p ORDER BY p.id DESC LIMIT 1) AS last_id, \
             (SELECT count(*) FROM deleted) AS hard_deleted, \
             (SELECT count(*) FROM classified AS c WHERE c.reason = '{requested}') \
             AS retained_requested, \
             (SELECT count(*) FROM classified AS c WHERE c.reason = '{too_new}') \
             AS retained_too_new"
        ));
        Ok(())
    }
}

/// One page of the sweep's dry run: the tombstones the sweep page after
/// `after` would examine, each with its [`SweepReason`], computed by the
/// sweep's own CTEs ([`push_sweep_examined_ctes`]) and deleting nothing.
/// Rows: (id, fm_generation, time_deleted, reason), by id.
#[derive(Clone, Debug)]
pub struct SweepDryRunPageQuery(SweepPageQuery);

/// The dry-run page after tombstone `after` (`None`: the first page),
/// driven by sitrep `sitrep_id`: the same parameters as the deleting page.
pub fn sweep_dry_run_page_query(
    resource: ResourceType,
    sitrep_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> SweepDryRunPageQuery {
    SweepDryRunPageQuery(sweep_page_query(resource, sitrep_id, after, limit))
}

impl QueryId for SweepDryRunPageQuery {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for SweepDryRunPageQuery {
    /// (id, fm_generation, time_deleted, reason)
    type SqlType = (SqlUuid, Nullable<BigInt>, Nullable<Timestamptz>, Text);
}

impl QueryFragment<Pg> for SweepDryRunPageQuery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let SweepPageQuery { resource, sitrep_id, after, limit } = &self.0;
        push_sweep_examined_ctes(&mut out, *resource, sitrep_id, after.as_ref(), limit)?;
        out.push_sql(
            " SELECT c.id, c.fm_generation, c.time_deleted, c.reason FROM classified AS c \
             ORDER BY c.id",
        );
        Ok(())
    }
}

/// A row of [`SweepDryRunPageQuery`]: (id, fm_generation, time_deleted, reason).
type DryRunPageRow = (Uuid, Option<i64>, Option<DateTime<Utc>>, String);

/// One tombstone the dry run examined.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DryRunTombstone {
    /// Its id.
    pub id: Uuid,
    /// The generation FM created it at (`None`: not created by FM).
    pub fm_generation: Option<i64>,
    /// When it was deleted.
    pub time_deleted: Option<DateTime<Utc>>,
    /// What the sweep would do with it.
    pub reason: SweepReason,
}

/// What the next sweep of one resource type driven by one sitrep would do.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SweepDryRun {
    /// The counts the sweep would report (`hard_deleted`: would hard-delete;
    /// `retries` is always 0: the dry run is plain reads).
    pub counts: SweepCounts,
    /// The examined tombstones with their reasons, by id, at most the number
    /// asked for.
    pub tombstones: Vec<DryRunTombstone>,
    /// Whether tombstones were left out of `tombstones` (the counts are
    /// complete regardless).
    pub tombstones_cut: bool,
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

impl DataStore {
    /// The dry run of [`DataStore::fm_tombstones_sweep`]: what a sweep of
    /// `resource` driven by `sitrep_id` would do now, computed page by page
    /// by the sweep's own predicate ([`SweepDryRunPageQuery`]) and deleting
    /// nothing. It walks the pages as the sweep does, including stopping
    /// after the first page when the sitrep is missing, so its counts are
    /// the sweep's (without `retries`) if nothing changes in between.
    /// At most `keep_rows` examined tombstones are returned with their
    /// reasons (0: counts only). Like the other reads here, each page is one
    /// plain statement (no transaction).
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] without read access;
    /// [`Error::InvalidArgument`] for a page size below 1; database errors.
    pub async fn fm_tombstones_sweep_dry_run(
        &self,
        opctx: &OpContext,
        sitrep_id: SitrepUuid,
        resource: ResourceType,
        page_rows: Option<i64>,
        keep_rows: usize,
    ) -> Result<SweepDryRun, Error> {
        let limit = page_rows.unwrap_or(SWEEP_PAGE_ROWS);
        if limit < 1 {
            return Err(Error::InvalidArgument(format!("sweep page size must be >= 1: {limit}")));
        }
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let mut dry = SweepDryRun::default();
        let mut after = None;
        loop {
            let rows: Vec<DryRunPageRow> =
                sweep_dry_run_page_query(resource, sitrep_id.into_untyped(), after, limit)
                    .load(&mut conn)
                    .await
                    .map_err(|e| Error::database("reading the sweep's dry run", e))?;
            dry.counts.pages += 1;
            dry.counts.tombstones_examined += rows.len() as u64;
            let mut missing = false;
            for (id, fm_generation, time_deleted, reason) in &rows {
                let reason = SweepReason::from_sql(reason).ok_or_else(|| Error::BadData {
                    context: "reading the sweep's dry run".to_string(),
                    source: format!("unknown sweep reason {reason:?} for tombstone {id}").into(),
                })?;
                match reason {
                    SweepReason::SitrepMissing => {
                        missing = true;
                        dry.counts.retained_sitrep_missing += 1;
                    }
                    SweepReason::StillRequested => dry.counts.retained_still_requested += 1,
                    SweepReason::TooNew => dry.counts.retained_too_new += 1,
                    SweepReason::Eligible => dry.counts.hard_deleted += 1,
                }
                if dry.tombstones.len() < keep_rows {
                    dry.tombstones.push(DryRunTombstone {
                        id: *id,
                        fm_generation: *fm_generation,
                        time_deleted: *time_deleted,
                        reason,
                    });
                } else {
                    dry.tombstones_cut = true;
                }
            }
            // As the sweep: a missing sitrep stops it after one page; else
            // the cursor advances past every examined row.
            match rows.last() {
                Some((id, ..)) if !missing && rows.len() as i64 == limit => after = Some(*id),
                _ => break,
            }
        }
        Ok(dry)
    }
}
