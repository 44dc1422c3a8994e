//! Rendezvous: creating the alerts and support bundles a sitrep requests.
//!
//! For the sitrep S an executor holds and one resource type T, every request
//! of `Req_T(S)` that has no row yet (live or tombstoned) is inserted with
//! provenance (`fm_case_id`, `fm_sitrep_id`, `fm_generation = g_T(S)`), but
//! only while the latest sitrep's generation for T is still `g_T(S)`
//! (DESIGN.md section 6). The check and the insert are one statement, run
//! SERIALIZABLE through the retry wrapper, over a batch of
//! [`CREATE_BATCH_ROWS`] requests passed as array parameters: the number of
//! statements grows with N / batch size, never with N.
//!
//! A row that already exists is never touched, so a tombstone blocks
//! re-creation. A stale sitrep inserts nothing and is reported as a flag, not
//! as an error: it is a normal outcome for a lagging executor.

use crate::context::{Action, OpContext};
use crate::datastore::DataStore;
use crate::db_schema::{alert, support_bundle};
use crate::error::Error;
use crate::transaction::transaction_retry;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use nexus_fm_types::ids::{AlertUuid, CaseUuid, SupportBundleUuid};
use nexus_fm_types::{Generation, ResourceType, Sitrep};
use std::sync::Arc;
use uuid::Uuid;

/// Requests per guarded-insert statement. Each statement carries a handful
/// of array parameters, so the batch size bounds the work per statement, not
/// the number of bind parameters.
pub const CREATE_BATCH_ROWS: usize = 2_000;

/// What a guarded creation did, summed over its batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CreateCounts {
    /// Requests of this type in the sitrep.
    pub requested: u64,
    /// Rows created now.
    pub created: u64,
    /// Requests whose resource already existed and is live.
    pub already_existed: u64,
    /// Requests whose resource was deleted by an operator (a tombstone):
    /// not re-created.
    pub deleted_not_recreated: u64,
    /// Statements issued (one per batch).
    pub statements: u64,
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

/// One batch of the guarded insert: `INSERT ... SELECT ... WHERE <latest
/// generation matches>` over the requests given as arrays, with the
/// existing rows counted from the same snapshot. Hand-built because diesel's
/// DSL has no multi-array `unnest` or data-modifying CTEs; its text is
/// snapshot-tested and EXPLAINed like every other query.
#[derive(Clone, Debug)]
pub struct GuardedCreateQuery {
    resource: ResourceType,
    sitrep_id: Uuid,
    generation: i64,
    ids: Vec<Uuid>,
    case_ids: Vec<Uuid>,
    /// Alert class, or bundle reason.
    texts: Vec<String>,
    /// Alert payload, or bundle data selection.
    jsons: Vec<serde_json::Value>,
}

/// The guarded insert of one batch of requests of sitrep `sitrep_id`
/// (generation `generation` for `resource`).
pub fn guarded_create_query(
    resource: ResourceType,
    sitrep_id: Uuid,
    generation: Generation,
    ids: Vec<Uuid>,
    case_ids: Vec<Uuid>,
    texts: Vec<String>,
    jsons: Vec<serde_json::Value>,
) -> GuardedCreateQuery {
    GuardedCreateQuery {
        resource,
        sitrep_id,
        generation: generation.as_i64(),
        ids,
        case_ids,
        texts,
        jsons,
    }
}

/// The SQL pieces that differ between the two resource types.
struct Shape {
    generation_column: &'static str,
    table: &'static str,
    text_column: &'static str,
    json_column: &'static str,
    extra_columns: &'static str,
    extra_values: &'static str,
}

const ALERT_SHAPE: Shape = Shape {
    generation_column: "alert_generation",
    table: "alert",
    text_column: "class",
    json_column: "payload",
    extra_columns: "",
    extra_values: "",
};

const SUPPORT_BUNDLE_SHAPE: Shape = Shape {
    generation_column: "support_bundle_generation",
    table: "support_bundle",
    text_column: "reason",
    json_column: "data_selection",
    extra_columns: ", state",
    extra_values: ", 'collecting'",
};

impl QueryId for GuardedCreateQuery {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for GuardedCreateQuery {
    /// (stale, latest generation, created, already existed, deleted)
    type SqlType = (Bool, Nullable<BigInt>, BigInt, BigInt, BigInt);
}

impl QueryFragment<Pg> for GuardedCreateQuery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let shape = match self.resource {
            ResourceType::Alert => &ALERT_SHAPE,
            ResourceType::SupportBundle => &SUPPORT_BUNDLE_SHAPE,
        };
        // The latest sitrep's generation for this type: a backward scan of
        // the history's primary key, then the sitrep by primary key.
        out.push_sql("WITH latest AS (SELECT s.");
        out.push_sql(shape.generation_column);
        out.push_sql(
            " AS generation FROM fm_sitrep_history AS h \
             JOIN fm_sitrep AS s ON s.id = h.sitrep_id \
             ORDER BY h.version DESC LIMIT 1), ",
        );
        out.push_sql("guard AS (SELECT EXISTS (SELECT 1 FROM latest WHERE latest.generation = ");
        out.push_bind_param::<BigInt, _>(&self.generation)?;
        out.push_sql(") AS current), ");
        out.push_sql("requested AS (SELECT * FROM unnest(");
        out.push_bind_param::<Array<SqlUuid>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<SqlUuid>, _>(&self.case_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.texts)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Jsonb>, _>(&self.jsons)?;
        out.push_sql(") AS r (id, case_id, text_value, json_value)), ");
        // Rows that exist already, live or tombstoned, by primary key.
        out.push_sql("existing AS (SELECT t.id, t.time_deleted IS NOT NULL AS deleted FROM ");
        out.push_sql(shape.table);
        out.push_sql(" AS t WHERE t.id = ANY(");
        out.push_bind_param::<Array<SqlUuid>, _>(&self.ids)?;
        out.push_sql(")), ");
        out.push_sql("inserted AS (INSERT INTO ");
        out.push_sql(shape.table);
        out.push_sql(" (id, ");
        out.push_sql(shape.text_column);
        out.push_sql(", ");
        out.push_sql(shape.json_column);
        out.push_sql(shape.extra_columns);
        out.push_sql(", time_created, fm_case_id, fm_sitrep_id, fm_generation) ");
        out.push_sql("SELECT r.id, r.text_value, r.json_value");
        out.push_sql(shape.extra_values);
        out.push_sql(", now(), r.case_id, ");
        out.push_bind_param::<SqlUuid, _>(&self.sitrep_id)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.generation)?;
        out.push_sql(
            " FROM requested AS r \
             WHERE (SELECT current FROM guard) \
             AND NOT EXISTS (SELECT 1 FROM existing AS e WHERE e.id = r.id) \
             ON CONFLICT (id) DO NOTHING RETURNING id) ",
        );
        out.push_sql(
            "SELECT NOT (SELECT current FROM guard) AS stale, \
             (SELECT generation FROM latest) AS latest_generation, \
             (SELECT count(*) FROM inserted) AS created, \
             (SELECT count(*) FROM existing WHERE NOT deleted) AS already_existed, \
             (SELECT count(*) FROM existing WHERE deleted) AS deleted",
        );
        Ok(())
    }
}

/// A request of either type, flattened to the guarded insert's columns.
struct FlatRequest {
    id: Uuid,
    case_id: Uuid,
    text: String,
    json: serde_json::Value,
}

fn flat_requests(sitrep: &Sitrep, resource: ResourceType) -> Vec<FlatRequest> {
    match resource {
        ResourceType::Alert => sitrep
            .alert_requests
            .iter()
            .map(|r| FlatRequest {
                id: r.id.into_untyped(),
                case_id: r.case_id.into_untyped(),
                text: r.class.clone(),
                json: r.payload.clone(),
            })
            .collect(),
        ResourceType::SupportBundle => sitrep
            .support_bundle_requests
            .iter()
            .map(|r| FlatRequest {
                id: r.id.into_untyped(),
                case_id: r.case_id.into_untyped(),
                text: r.reason.clone(),
                json: r.data_selection.clone(),
            })
            .collect(),
    }
}

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
    /// Creates the resources of one type that `sitrep` requests and that
    /// have no row yet, batch by batch, each batch guarded by the latest
    /// sitrep's generation for that type.
    ///
    /// Stops at the first batch that finds the sitrep stale.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] unless the role is the FM executor; database
    /// errors. Staleness is not an error: see [`CreateOutcome::Stale`].
    pub async fn fm_resources_create(
        &self,
        opctx: &OpContext,
        sitrep: &Sitrep,
        resource: ResourceType,
    ) -> Result<CreateOutcome, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::FmWrite).await?;
        let generation = sitrep.metadata.generation(resource);
        let sitrep_id = sitrep.id().into_untyped();
        let requests = flat_requests(sitrep, resource);
        let mut counts = CreateCounts { requested: requests.len() as u64, ..Default::default() };
        for batch in requests.chunks(CREATE_BATCH_ROWS) {
            let query = Arc::new(guarded_create_query(
                resource,
                sitrep_id,
                generation,
                batch.iter().map(|r| r.id).collect(),
                batch.iter().map(|r| r.case_id).collect(),
                batch.iter().map(|r| r.text.clone()).collect(),
                batch.iter().map(|r| r.json.clone()).collect(),
            ));
            let done = transaction_retry(&mut conn, &opctx.log, "fm_resources_create", |conn| {
                let query = GuardedCreateQuery::clone(&query);
                Box::pin(async move {
                    let row: (bool, Option<i64>, i64, i64, i64) = query.get_result(conn).await?;
                    Ok(row)
                })
            })
            .await?;
            let (stale, latest, created, existed, deleted) = done.value;
            counts.statements += 1;
            counts.created += created as u64;
            counts.already_existed += existed as u64;
            counts.deleted_not_recreated += deleted as u64;
            if stale {
                return Ok(CreateOutcome::Stale {
                    sitrep_generation: generation,
                    latest_generation: latest.and_then(|g| Generation::try_new(g).ok()),
                    counts,
                });
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
    /// a database error (e.g. the id exists).
    pub async fn resource_create(
        &self,
        opctx: &OpContext,
        resource: NewResource,
    ) -> Result<(), Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::CreateResource).await?;
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

/// Sample parameters for the catalogue: a batch of two requests.
pub fn guarded_create_sample(resource: ResourceType) -> GuardedCreateQuery {
    let id = |n: u128| Uuid::from_u128(0xc4ea_0000_0000_4000_8000_0000_0000_0000 + n);
    guarded_create_query(
        resource,
        id(1),
        Generation::FIRST,
        vec![id(2), id(3)],
        vec![CaseUuid::from_untyped(id(4)).into_untyped(); 2],
        vec!["text".to_string(); 2],
        vec![serde_json::json!({}); 2],
    )
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
