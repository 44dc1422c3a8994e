//! Rendezvous: creating the alerts and support bundles a sitrep requests.
//!
//! For the sitrep S an executor holds and one resource type T, every request
//! of `Req_T(S)` that has no row yet (live or tombstoned) and whose id is not
//! in the ledger of collected ids is inserted with provenance (`fm_case_id`,
//! `fm_sitrep_id`, `fm_generation = g_T(S)`), but only while the latest
//! sitrep's generation for T is still `g_T(S)` (docs/design.md, "Executing a sitrep").
//!
//! The database is the authority. The executor passes only S's id, the
//! generation it expects and a cursor; each statement is an
//! `INSERT ... SELECT` from the next [`CREATE_BATCH_ROWS`] committed request
//! rows of S, with `g_T(S)` read from S's own row, S required to have a
//! history entry, and the latest-generation guard, all in one statement run
//! SERIALIZABLE through the retry wrapper. A sitrep that was never
//! committed (or was pruned) or a generation that is not S's creates
//! nothing and is a typed error. The number of statements grows with
//! N / page size, and no payload travels from the executor to the server.
//!
//! A row that already exists is never touched, so a tombstone blocks
//! re-creation. A stale sitrep inserts nothing and is reported as a flag, not
//! as an error: it is a normal outcome for a lagging executor.

use crate::context::{Action, OpContext};
use crate::datastore::DataStore;
use crate::datastore::resource::{ResourceTables, resource_tables};
use crate::db_schema::{alert, support_bundle};
use crate::error::Error;
use crate::transaction::transaction_retry;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Nullable, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use nexus_fm_types::ids::{AlertUuid, SitrepUuid, SupportBundleUuid};
use nexus_fm_types::{Generation, ResourceType};
use uuid::Uuid;

/// Requests per guarded-creation statement: the page size of its keyset
/// walk over the sitrep's request rows.
pub const CREATE_BATCH_ROWS: usize = 2_000;

/// What a guarded creation did, summed over its batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CreateCounts {
    /// Requests of this type in the sitrep, as read from its committed
    /// request rows.
    pub requested: u64,
    /// Rows created now.
    pub created: u64,
    /// Requests whose resource already existed and is live.
    pub already_existed: u64,
    /// Requests whose resource was deleted by an operator (a tombstone):
    /// not re-created.
    pub deleted_not_recreated: u64,
    /// Requests whose id is the nil UUID (possible only in rows that
    /// predate schema version 3): never created, counted here.
    #[serde(default)]
    pub refused_nil_id: u64,
    /// Statements issued (one per page).
    pub statements: u64,
    /// Serialization-failure retries over all statements.
    #[serde(default)]
    pub retries: u64,
}

/// The outcome of executing one resource type of a sitrep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The sitrep's generation was current for every batch.
    Executed(CreateCounts),
    /// The latest sitrep's generation for this type differs from the
    /// executed sitrep's: nothing more was inserted. `counts` holds what
    /// earlier batches did before the change was seen.
    Stale {
        /// The executed sitrep's generation.
        sitrep_generation: Generation,
        /// The latest sitrep's generation (`None`: no history at all).
        latest_generation: Option<Generation>,
        /// Work done before the staleness was seen.
        counts: CreateCounts,
    },
}

/// One page of the guarded creation, in one statement: read the next
/// [`CREATE_BATCH_ROWS`] committed requests of sitrep S (a keyset page over
/// the request table's primary key `(sitrep_id, id)`), and insert those
/// that have no row yet, stamped with the generation read from S's own row,
/// only if S is committed (see [`push_committed_sitrep_cte`]), S's
/// generation is the one the executor expects, and the latest history
/// entry's sitrep has that generation too. Nothing the executor holds in
/// memory decides what is created: it passes S's id, the generation it
/// expects, and the cursor.
///
/// Each page row is looked up by primary key in the resource table and in
/// the ledger of collected ids (a `LATERAL ... LIMIT 1` probe per row, so
/// the cost is per request, never per table). Hand-built for the
/// data-modifying CTE; its text is snapshot-tested and EXPLAINed like every
/// other query.
#[derive(Clone, Debug)]
pub struct GuardedCreateQuery {
    resource: ResourceType,
    sitrep_id: Uuid,
    generation: i64,
    after: Option<Uuid>,
    limit: i64,
}

/// The guarded creation of the page of sitrep `sitrep_id`'s requests of
/// `resource` after `after` (`None`: the first page), expecting the
/// sitrep's generation for `resource` to be `generation`.
pub fn guarded_create_query(
    resource: ResourceType,
    sitrep_id: Uuid,
    generation: Generation,
    after: Option<Uuid>,
    limit: i64,
) -> GuardedCreateQuery {
    GuardedCreateQuery { resource, sitrep_id, generation: generation.as_i64(), after, limit }
}

/// The names of the tables every resource type shares, from the diesel
/// schema (the per-type names are [`ResourceTables`]).
pub(crate) mod shared {
    use crate::datastore::resource::{column_name, table_name};

    /// `fm_sitrep`.
    pub const SITREP: &str = table_name!(fm_sitrep);
    /// `fm_sitrep.id`.
    pub const SITREP_ID: &str = column_name!(fm_sitrep::id);
    /// `fm_sitrep_history`.
    pub const HISTORY: &str = table_name!(fm_sitrep_history);
    /// `fm_sitrep_history.sitrep_id`.
    pub const HISTORY_SITREP_ID: &str = column_name!(fm_sitrep_history::sitrep_id);
    /// `fm_sitrep_history.version`.
    pub const HISTORY_VERSION: &str = column_name!(fm_sitrep_history::version);
    /// `fm_collected_resource`, the ledger of collected ids.
    pub const COLLECTED: &str = table_name!(fm_collected_resource);
    /// `fm_collected_resource.id`.
    pub const COLLECTED_ID: &str = column_name!(fm_collected_resource::id);
    /// `fm_collected_resource.resource_type`.
    pub const COLLECTED_TYPE: &str = column_name!(fm_collected_resource::resource_type);
    /// `fm_collected_resource.time_deleted`.
    pub const COLLECTED_TIME_DELETED: &str = column_name!(fm_collected_resource::time_deleted);
    /// `fm_collected_resource.time_collected`.
    pub const COLLECTED_TIME_COLLECTED: &str = column_name!(fm_collected_resource::time_collected);
}

/// The nil UUID as an SQL literal. Publishing and the schema refuse it; a
/// request row with it can only predate schema version 3, and creation
/// skips it (counted, never silently) instead of failing the whole page on
/// the resource table's nil check.
const NIL_UUID_SQL: &str = "'00000000-0000-0000-0000-000000000000'::uuid";

/// The one definition of "sitrep S is committed and still exists", shared
/// by the guarded creation and the sweep: a CTE named `evidence` with one
/// row (S's generation for `resource`, column `generation`) when S has a
/// history entry and its `fm_sitrep` row exists, and no row otherwise
/// (never published, or pruned). Missing evidence means: act on nothing.
/// Both lookups are by unique index.
pub(crate) fn push_committed_sitrep_cte<'b>(
    out: &mut AstPass<'_, 'b, Pg>,
    resource: ResourceType,
    sitrep_id: &'b Uuid,
) -> QueryResult<()> {
    use shared::{HISTORY, HISTORY_SITREP_ID, SITREP, SITREP_ID};
    let generation = resource_tables(resource).sitrep_generation;
    out.push_sql(&format!(
        "evidence AS (SELECT s.{generation} AS generation FROM {SITREP} AS s WHERE s.{SITREP_ID} = "
    ));
    out.push_bind_param::<SqlUuid, _>(sitrep_id)?;
    out.push_sql(&format!(
        " AND EXISTS (SELECT 1 FROM {HISTORY} AS h WHERE h.{HISTORY_SITREP_ID} = "
    ));
    out.push_bind_param::<SqlUuid, _>(sitrep_id)?;
    out.push_sql("))");
    Ok(())
}

impl QueryId for GuardedCreateQuery {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for GuardedCreateQuery {
    /// (sitrep present, its generation, latest generation, current,
    /// examined, last examined id, created, already existed, deleted, nil
    /// ids refused)
    type SqlType = (
        Bool,
        Nullable<BigInt>,
        Nullable<BigInt>,
        Bool,
        BigInt,
        Nullable<SqlUuid>,
        BigInt,
        BigInt,
        BigInt,
        BigInt,
    );
}

impl QueryFragment<Pg> for GuardedCreateQuery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use shared::{COLLECTED, COLLECTED_ID, HISTORY, HISTORY_SITREP_ID, HISTORY_VERSION};
        use shared::{SITREP, SITREP_ID};
        let ResourceTables {
            table,
            id,
            time_created,
            time_deleted,
            fm_case_id,
            fm_sitrep_id,
            fm_generation,
            text_column,
            json_column,
            creation_constants,
            sitrep_generation,
            request_table,
            request_sitrep_id,
            request_id,
            request_case_id,
            request_text,
            request_json,
            collected_type: _,
        } = resource_tables(self.resource);
        out.push_sql("WITH ");
        push_committed_sitrep_cte(&mut out, self.resource, &self.sitrep_id)?;
        // The latest sitrep's generation: the newest history entry, then
        // its sitrep row by primary key. If that row is missing the
        // generation is NULL and the guard fails: there is no fallback to
        // an older entry.
        out.push_sql(&format!(
            ", latest AS (SELECT (SELECT s.{sitrep_generation} FROM {SITREP} AS s \
             WHERE s.{SITREP_ID} = h.{HISTORY_SITREP_ID}) AS generation \
             FROM {HISTORY} AS h ORDER BY h.{HISTORY_VERSION} DESC LIMIT 1), "
        ));
        out.push_sql(
            "guard AS (SELECT EXISTS (SELECT 1 FROM evidence AS e, latest AS l \
             WHERE l.generation = e.generation AND e.generation = ",
        );
        out.push_bind_param::<BigInt, _>(&self.generation)?;
        out.push_sql(") AS current), ");
        // The next page of S's committed requests, read only when the
        // guard holds.
        out.push_sql(&format!(
            "page AS (SELECT r.{request_id} AS id, r.{request_case_id} AS case_id, \
             r.{request_text} AS text_value, r.{request_json} AS json_value \
             FROM {request_table} AS r WHERE r.{request_sitrep_id} = "
        ));
        out.push_bind_param::<SqlUuid, _>(&self.sitrep_id)?;
        if let Some(after) = &self.after {
            out.push_sql(&format!(" AND r.{request_id} > "));
            out.push_bind_param::<SqlUuid, _>(after)?;
        }
        out.push_sql(&format!(" AND (SELECT current FROM guard) ORDER BY r.{request_id} LIMIT "));
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql("), ");
        // Per request: its row (live or tombstone) and its ledger entry,
        // each a primary-key probe.
        out.push_sql(&format!(
            "probed AS (SELECT p.id, p.case_id, p.text_value, p.json_value, \
             x.deleted, k.collected FROM page AS p \
             LEFT JOIN LATERAL (SELECT t.{time_deleted} IS NOT NULL AS deleted FROM {table} \
             AS t WHERE t.{id} = p.id LIMIT 1) AS x ON true \
             LEFT JOIN LATERAL (SELECT true AS collected FROM {COLLECTED} AS c \
             WHERE c.{COLLECTED_ID} = p.id LIMIT 1) AS k ON true), "
        ));
        // The constant columns (a bundle's initial state) are values this
        // code defines, never input.
        let (mut constant_columns, mut constant_values) = (String::new(), String::new());
        for (column, value) in creation_constants.iter() {
            debug_assert!(!value.contains('\''), "a creation constant needs no quoting");
            constant_columns.push_str(&format!(", {column}"));
            constant_values.push_str(&format!(", '{value}'"));
        }
        out.push_sql(&format!(
            "inserted AS (INSERT INTO {table} ({id}, {text_column}, {json_column}\
             {constant_columns}, {time_created}, {fm_case_id}, {fm_sitrep_id}, {fm_generation}) \
             SELECT p.id, p.text_value, p.json_value{constant_values}, now(), p.case_id, "
        ));
        out.push_bind_param::<SqlUuid, _>(&self.sitrep_id)?;
        out.push_sql(
            ", e.generation FROM probed AS p, evidence AS e \
             WHERE p.deleted IS NULL AND p.collected IS NULL AND p.id <> ",
        );
        out.push_sql(NIL_UUID_SQL);
        out.push_sql(&format!(" ON CONFLICT ({id}) DO NOTHING RETURNING {id}) "));
        out.push_sql(
            "SELECT EXISTS (SELECT 1 FROM evidence) AS sitrep_present, \
             (SELECT generation FROM evidence) AS sitrep_generation, \
             (SELECT generation FROM latest) AS latest_generation, \
             (SELECT current FROM guard) AS current, \
             (SELECT count(*) FROM page) AS examined, \
             (SELECT p.id FROM page AS p ORDER BY p.id DESC LIMIT 1) AS last_id, \
             (SELECT count(*) FROM inserted) AS created, \
             (SELECT count(*) FROM probed WHERE NOT deleted) AS already_existed, \
             (SELECT count(*) FROM probed WHERE deleted OR (deleted IS NULL AND collected)) \
             AS deleted, \
             (SELECT count(*) FROM probed WHERE deleted IS NULL AND collected IS NULL AND id = ",
        );
        out.push_sql(NIL_UUID_SQL);
        out.push_sql(") AS nil_refused");
        Ok(())
    }
}

/// What one page of the guarded creation reports (see
/// [`GuardedCreateQuery`]'s SQL type).
type GuardedCreateRow =
    (bool, Option<i64>, Option<i64>, bool, i64, Option<Uuid>, i64, i64, i64, i64);

/// A resource created outside fault management (no provenance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewResource {
    /// An alert.
    Alert {
        /// Its id.
        id: AlertUuid,
        /// Alert class.
        class: String,
        /// Payload.
        payload: serde_json::Value,
    },
    /// A support bundle (state `collecting`).
    SupportBundle {
        /// Its id.
        id: SupportBundleUuid,
        /// Why it is wanted.
        reason: String,
        /// What it collects.
        data_selection: serde_json::Value,
    },
}

/// Inserts an alert made outside fault management (no provenance).
pub fn plain_alert_insert_query(
    id: AlertUuid,
    class: String,
    payload: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> impl crate::WriteQuery {
    diesel::insert_into(alert::table).values((
        alert::id.eq(id.into_untyped()),
        alert::class.eq(class),
        alert::payload.eq(payload),
        alert::time_created.eq(now),
    ))
}

/// Inserts a support bundle made outside fault management (no provenance),
/// in state `collecting`.
pub fn plain_support_bundle_insert_query(
    id: SupportBundleUuid,
    reason: String,
    data_selection: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> impl crate::WriteQuery {
    diesel::insert_into(support_bundle::table).values((
        support_bundle::id.eq(id.into_untyped()),
        support_bundle::reason.eq(reason),
        support_bundle::data_selection.eq(data_selection),
        support_bundle::state.eq("collecting"),
        support_bundle::time_created.eq(now),
    ))
}

impl DataStore {
    /// Creates the resources of one type that committed sitrep `sitrep_id`
    /// requests and that have no row yet, page by page, each page guarded
    /// by the latest sitrep's generation for that type. The requests are
    /// read from the database in the inserting statement; `generation` is
    /// the generation the executor expects S to have, checked against S's
    /// own row.
    ///
    /// Stops at the first page that finds the sitrep stale.
    ///
    /// # Errors
    ///
    /// - [`Error::Forbidden`] unless the role is the FM executor;
    /// - [`Error::SitrepNotCommitted`] when S has no history entry or no
    ///   row (never published, or pruned): nothing was created by that
    ///   page;
    /// - [`Error::SitrepGenerationMismatch`] when S's generation is not
    ///   `generation`: nothing was created by that page;
    /// - database errors.
    ///
    /// Staleness is not an error: see [`CreateOutcome::Stale`].
    pub async fn fm_resources_create(
        &self,
        opctx: &OpContext,
        sitrep_id: SitrepUuid,
        generation: Generation,
        resource: ResourceType,
    ) -> Result<CreateOutcome, Error> {
        self.fm_resources_create_paged(opctx, sitrep_id, generation, resource, None).await
    }

    /// [`DataStore::fm_resources_create`] with `page_rows` requests per
    /// statement instead of [`CREATE_BATCH_ROWS`] (tests use tiny pages).
    ///
    /// # Errors
    ///
    /// As [`DataStore::fm_resources_create`]; [`Error::InvalidArgument`]
    /// for a page size below 1.
    pub async fn fm_resources_create_paged(
        &self,
        opctx: &OpContext,
        sitrep_id: SitrepUuid,
        generation: Generation,
        resource: ResourceType,
        page_rows: Option<i64>,
    ) -> Result<CreateOutcome, Error> {
        let limit = page_rows.unwrap_or(CREATE_BATCH_ROWS as i64);
        if limit < 1 {
            return Err(Error::InvalidArgument(format!(
                "creation page size must be >= 1: {limit}"
            )));
        }
        let mut conn = self.pool_connection_authorized(opctx, Action::FmWrite).await?;
        let mut counts = CreateCounts::default();
        let mut after = None;
        loop {
            let query =
                guarded_create_query(resource, sitrep_id.into_untyped(), generation, after, limit);
            let done = transaction_retry(&mut conn, &opctx.log, "fm_resources_create", |conn| {
                let query = query.clone();
                Box::pin(async move {
                    let row: GuardedCreateRow = query.get_result(conn).await?;
                    Ok(row)
                })
            })
            .await?;
            let (present, own, latest, current, examined, last, created, existed, deleted, nil) =
                done.value;
            counts.statements += 1;
            counts.retries += u64::from(done.retries);
            if !present {
                return Err(Error::SitrepNotCommitted { sitrep_id });
            }
            let own = own.and_then(|g| Generation::try_new(g).ok());
            if own != Some(generation) {
                return Err(Error::SitrepGenerationMismatch {
                    sitrep_id,
                    resource,
                    expected: generation,
                    found: own,
                });
            }
            if !current {
                return Ok(CreateOutcome::Stale {
                    sitrep_generation: generation,
                    latest_generation: latest.and_then(|g| Generation::try_new(g).ok()),
                    counts,
                });
            }
            counts.requested += examined as u64;
            counts.created += created as u64;
            counts.already_existed += existed as u64;
            counts.deleted_not_recreated += deleted as u64;
            counts.refused_nil_id += nil as u64;
            match last {
                Some(id) if examined == limit => after = Some(id),
                _ => break,
            }
        }
        Ok(CreateOutcome::Executed(counts))
    }

    /// Creates one resource outside fault management: no provenance, so an
    /// operator's delete of it is a hard delete.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] unless the role is operator or FM executor;
    /// [`Error::InvalidArgument`] for the nil id (nothing is written);
    /// a database error (e.g. the id exists).
    pub async fn resource_create(
        &self,
        opctx: &OpContext,
        resource: NewResource,
    ) -> Result<(), Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::CreateResource).await?;
        let id = match &resource {
            NewResource::Alert { id, .. } => id.into_untyped(),
            NewResource::SupportBundle { id, .. } => id.into_untyped(),
        };
        if id.is_nil() {
            return Err(Error::InvalidArgument(
                "a resource id may not be the nil UUID".to_string(),
            ));
        }
        transaction_retry(&mut conn, &opctx.log, "resource_create", |conn| {
            let resource = resource.clone();
            Box::pin(async move {
                let now = nexus_fm_types::time::now();
                match resource {
                    NewResource::Alert { id, class, payload } => {
                        plain_alert_insert_query(id, class, payload, now).execute(conn).await?
                    }
                    NewResource::SupportBundle { id, reason, data_selection } => {
                        plain_support_bundle_insert_query(id, reason, data_selection, now)
                            .execute(conn)
                            .await?
                    }
                };
                Ok(())
            })
        })
        .await?;
        Ok(())
    }
}

/// Which of `ids` have a row of `resource`'s table, and whether that row is
/// a tombstone. FM-internal: unlike every reader of alerts and bundles it
/// sees tombstones, because "a request is satisfied" means "a row exists,
/// live or deleted by an operator".
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_rows_of_query(ids: Vec<Uuid>) -> _ {
    let deleted: diesel::dsl::IsNotNull<alert::time_deleted> = alert::time_deleted.is_not_null();
    alert::table.filter(alert::id.eq_any(ids)).select((alert::id, deleted))
}

/// Like [`alert_rows_of_query`], for support bundles.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_rows_of_query(ids: Vec<Uuid>) -> _ {
    let deleted: diesel::dsl::IsNotNull<support_bundle::time_deleted> =
        support_bundle::time_deleted.is_not_null();
    support_bundle::table
        .filter(support_bundle::id.eq_any(ids))
        .select((support_bundle::id, deleted))
}

/// Ids per lookup in [`DataStore::fm_resource_rows_including_deleted`].
pub const ROW_LOOKUP_CHUNK_IDS: usize = 10_000;

impl DataStore {
    /// For each of `ids` that has a row of `resource`'s table (live or a
    /// tombstone), the id and whether it was deleted by an operator.
    ///
    /// FM-internal and named for it: this is how an analysis learns which
    /// requests are satisfied, so it must see tombstones. Looks ids up by
    /// primary key, [`ROW_LOOKUP_CHUNK_IDS`] per statement.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn fm_resource_rows_including_deleted(
        &self,
        opctx: &OpContext,
        resource: ResourceType,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, bool)>, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROW_LOOKUP_CHUNK_IDS) {
            let chunk = chunk.to_vec();
            let found: Vec<(Uuid, bool)> = match resource {
                ResourceType::Alert => alert_rows_of_query(chunk).load(&mut conn).await,
                ResourceType::SupportBundle => {
                    support_bundle_rows_of_query(chunk).load(&mut conn).await
                }
            }
            .map_err(|e| Error::database(format_args!("looking up {resource} rows"), e))?;
            rows.extend(found);
        }
        Ok(rows)
    }
}
