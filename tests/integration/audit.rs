//! The EXPLAIN audit: every catalogued production query, planned on a
//! database holding a realistic volume, uses an index (and the one it is
//! meant to use), never a sequential scan; and, run under `EXPLAIN
//! (ANALYZE)` against a sitrep of 100,000 alert and 100,000 bundle requests
//! with parameters that point at real rows, no plan node reads more rows
//! than the query's declared bound (`catalogue::EXPECTATIONS`), and nothing
//! is hashed that should be probed.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use fm_db_queries::catalogue::{CatalogueEntry, CatalogueParams, catalogue, catalogue_with};
use fm_db_queries::datastore::sweep::{SWEEP_PAGE_ROWS, sweep_page_query};
use fm_db_queries::explain::{PlanReads, check_no_seq_scan, explain_analyze_shared};
use fm_db_queries::{Action, Role};
use fm_integration_tests::{TestEnv, connect};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm_types::Generation;
use nexus_fm_types::{ExecutorUuid, ResourceType, Sitrep};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// Fills the database: `sitreps` published sitreps with `requests` alert
/// and bundle requests each (executed, so their resources exist), plus
/// `bulk` more alerts and bundles, a tenth of everything tombstoned, then
/// ANALYZE.
async fn populate(env: &TestEnv, sitreps: usize, requests: usize, bulk: usize) {
    let executor = env.opctx(Role::FmExecutor);
    let mut parent: Option<Sitrep> = None;
    for s in 0..sitreps {
        let mut b = SitrepBuilder::new(parent.as_ref(), ExecutorUuid::new_v4(), "audit");
        let case = b.open_case("audit", format!("case {s}"));
        for i in 0..requests {
            b.request_alert(case, "audit.alert", json!({ "i": i })).unwrap();
            b.request_support_bundle(case, "audit", json!({ "i": i })).unwrap();
        }
        let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
        env.datastore.sitrep_insert(&executor, &sitrep).await.unwrap();
        for resource in ResourceType::ALL {
            env.execute_sitrep(&sitrep, resource).await.unwrap();
        }
        parent = Some(sitrep);
    }
    let mut conn = connect(env.db.url()).await;
    // Bulk rows: FM-created (with provenance) and plain ones; some
    // dispatched, some assigned to executors.
    conn.batch_execute(&format!(
        "INSERT INTO alert (id, class, payload, time_created, time_dispatched, \
                            fm_case_id, fm_sitrep_id, fm_generation) \
         SELECT gen_random_uuid(), 'bulk', '{{}}', now() - i * interval '1 second', \
                CASE WHEN i % 3 = 0 THEN now() END, \
                CASE WHEN i % 2 = 0 THEN gen_random_uuid() END, \
                CASE WHEN i % 2 = 0 THEN gen_random_uuid() END, \
                CASE WHEN i % 2 = 0 THEN 1 END \
           FROM generate_series(1, {bulk}) AS i; \
         INSERT INTO support_bundle (id, reason, data_selection, state, time_created, \
                                     assigned_executor, fm_case_id, fm_sitrep_id, fm_generation) \
         SELECT gen_random_uuid(), 'bulk', '{{}}', 'active', now(), \
                CASE WHEN i % 4 = 0 THEN gen_random_uuid() END, \
                CASE WHEN i % 2 = 0 THEN gen_random_uuid() END, \
                CASE WHEN i % 2 = 0 THEN gen_random_uuid() END, \
                CASE WHEN i % 2 = 0 THEN 1 END \
           FROM generate_series(1, {bulk}) AS i; \
         UPDATE alert SET time_deleted = now() WHERE fm_case_id IS NOT NULL AND random() < 0.1; \
         UPDATE support_bundle SET time_deleted = now() \
          WHERE fm_case_id IS NOT NULL AND random() < 0.1; \
         ANALYZE;"
    ))
    .await
    .expect("populating the audit database");
}

/// EXPLAINs every catalogued query; returns one message per failure.
async fn audit(conn: &mut AsyncPgConnection, log: &slog::Logger) -> Vec<String> {
    let entries: Vec<CatalogueEntry> = catalogue();
    let mut failures = Vec::new();
    for entry in &entries {
        let plan = match entry.explain(conn, log).await {
            Ok(plan) => plan,
            Err(e) => {
                failures.push(format!("{}: EXPLAIN failed: {e:#?}", entry.name));
                continue;
            }
        };
        if let Err(e) = check_no_seq_scan(&plan) {
            failures.push(format!("{}: {}\n{e}", entry.name, entry.sql));
        }
        for index in entry.expected_indexes {
            if !plan.contains(index) {
                failures
                    .push(format!("{}: the plan does not use index {index}:\n{plan}", entry.name));
            }
        }
    }
    failures
}

/// The audit on a database with more than 50,000 alerts and bundles, some
/// tombstoned, and several sitreps with thousands of requests.
#[tokio::test]
async fn every_production_query_uses_its_index_at_volume() {
    let env = TestEnv::new().await;
    populate(&env, 3, 3_000, 50_000).await;
    let mut conn = env.conn(Role::Viewer, Action::Read).await;
    let counts: Vec<i64> = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use fm_db_queries::db_schema::{alert, fm_alert_request, support_bundle};
        vec![
            alert::table.count().get_result(&mut conn).await.unwrap(),
            support_bundle::table.count().get_result(&mut conn).await.unwrap(),
            alert::table
                .filter(alert::time_deleted.is_not_null())
                .count()
                .get_result(&mut conn)
                .await
                .unwrap(),
            fm_alert_request::table.count().get_result(&mut conn).await.unwrap(),
        ]
    };
    assert!(counts[0] >= 50_000 && counts[1] >= 50_000, "volume: {counts:?}");
    assert!(counts[2] > 1_000, "some alerts are tombstones: {counts:?}");
    assert!(counts[3] >= 9_000, "sitreps with thousands of requests: {counts:?}");

    let failures = audit(&mut conn, &env.log).await;
    assert!(failures.is_empty(), "the EXPLAIN audit failed:\n\n{}", failures.join("\n\n"));
}

/// Without the tombstone index the audit must fail: it cannot pass silently.
#[tokio::test]
async fn the_audit_fails_without_a_partial_index() {
    let env = TestEnv::new().await;
    populate(&env, 1, 200, 5_000).await;
    let mut conn = env.conn(Role::Viewer, Action::Read).await;
    assert!(audit(&mut conn, &env.log).await.is_empty(), "the audit passes with every index");

    connect(env.db.url())
        .await
        .batch_execute("DROP INDEX alert_tombstones; ANALYZE")
        .await
        .unwrap();
    let failures = audit(&mut conn, &env.log).await;
    assert!(!failures.is_empty(), "the audit passed without alert_tombstones");
    assert!(
        failures.iter().any(|f| f.starts_with("sweep_page_alert:")),
        "the alert sweep must be reported: {failures:#?}"
    );
    assert!(
        failures.iter().all(|f| f.contains("alert")),
        "only alert queries may fail: {failures:#?}"
    );
}

/// Requests of each type in the large sitrep.
const LARGE_REQUESTS: i64 = 100_000;

/// Cases in the large sitrep (every request belongs to the first one, so
/// it is a case with 100,000 resources of each type).
const LARGE_CASES: i64 = 2_000;

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct NumberRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A test-only lookup of one id (the SQL is a constant of this file).
async fn one_id(conn: &mut AsyncPgConnection, sql: &str, sitrep: Uuid) -> Uuid {
    let row: IdRow = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(sitrep)
        .get_result(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    row.id
}

async fn one_number(conn: &mut AsyncPgConnection, sql: &str, sitrep: Uuid) -> i64 {
    let row: NumberRow = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(sitrep)
        .get_result(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    row.n
}

/// Adds the large sitrep L as the current one (a child of the current
/// sitrep, both generations one higher), by raw SQL with `generate_series`:
/// `LARGE_CASES` cases, `LARGE_REQUESTS` alert and bundle requests all in
/// its first case, about 90% of them executed (resources with provenance,
/// undispatched, created at spread-out times, a tenth of the bundles
/// assigned to one executor) and about 3% of those tombstoned while still
/// requested; then ANALYZE. Returns the parameters of the `EXPLAIN
/// (ANALYZE)` audit, every one naming a real row or a real cursor.
async fn add_large_sitrep(conn: &mut AsyncPgConnection) -> CatalogueParams {
    let sitrep = Uuid::new_v4();
    let executor = Uuid::new_v4();
    conn.batch_execute(&format!(
        "INSERT INTO fm_sitrep (id, parent_sitrep_id, creator_id, time_created, comment, \
                                alert_generation, support_bundle_generation) \
         SELECT '{sitrep}', s.id, gen_random_uuid(), now(), 'large', \
                s.alert_generation + 1, s.support_bundle_generation + 1 \
           FROM fm_sitrep_history AS h JOIN fm_sitrep AS s ON s.id = h.sitrep_id \
          ORDER BY h.version DESC LIMIT 1; \
         INSERT INTO fm_sitrep_history (version, sitrep_id, time_made_current) \
         SELECT max(version) + 1, '{sitrep}', now() FROM fm_sitrep_history; \
         INSERT INTO fm_case (sitrep_id, id, diagnosis_engine, opened_sitrep_id, comment) \
         SELECT '{sitrep}', CASE WHEN i = 1 THEN '{sitrep}'::uuid ELSE gen_random_uuid() END, \
                'audit', '{sitrep}', '' \
           FROM generate_series(1, {LARGE_CASES}) AS i; \
         INSERT INTO fm_alert_request (sitrep_id, id, case_id, requested_sitrep_id, class, payload) \
         SELECT '{sitrep}', gen_random_uuid(), '{sitrep}', '{sitrep}', 'audit.large', \
                jsonb_build_object('i', i) \
           FROM generate_series(1, {LARGE_REQUESTS}) AS i; \
         INSERT INTO fm_support_bundle_request \
                (sitrep_id, id, case_id, requested_sitrep_id, reason, data_selection) \
         SELECT '{sitrep}', gen_random_uuid(), '{sitrep}', '{sitrep}', 'audit', \
                jsonb_build_object('i', i) \
           FROM generate_series(1, {LARGE_REQUESTS}) AS i; \
         INSERT INTO alert (id, class, payload, time_created, \
                            fm_case_id, fm_sitrep_id, fm_generation) \
         SELECT r.id, r.class, r.payload, now() - random() * interval '30 days', \
                r.case_id, r.sitrep_id, s.alert_generation \
           FROM fm_alert_request AS r JOIN fm_sitrep AS s ON s.id = r.sitrep_id \
          WHERE r.sitrep_id = '{sitrep}' AND random() < 0.9; \
         INSERT INTO support_bundle (id, reason, data_selection, state, time_created, \
                                     assigned_executor, fm_case_id, fm_sitrep_id, fm_generation) \
         SELECT r.id, r.reason, r.data_selection, 'active', now(), \
                CASE WHEN random() < 0.1 THEN '{executor}'::uuid END, \
                r.case_id, r.sitrep_id, s.support_bundle_generation \
           FROM fm_support_bundle_request AS r JOIN fm_sitrep AS s ON s.id = r.sitrep_id \
          WHERE r.sitrep_id = '{sitrep}' AND random() < 0.9; \
         UPDATE alert SET time_deleted = now() \
          WHERE fm_sitrep_id = '{sitrep}' AND random() < 0.03; \
         UPDATE support_bundle SET time_deleted = now() \
          WHERE fm_sitrep_id = '{sitrep}' AND random() < 0.03; \
         ANALYZE;"
    ))
    .await
    .expect("adding the large sitrep");

    // Real rows and cursors in the middle of what each query walks. These
    // lookups are the test's own, not production queries.
    let middle = |table: &str, filter: &str| {
        format!(
            "SELECT id FROM {table} WHERE {filter} ORDER BY id \
             OFFSET (SELECT count(*) / 2 FROM {table} WHERE {filter}) LIMIT 1"
        )
    };
    let live_alert = one_id(
        conn,
        &middle("alert", "fm_case_id = $1 AND time_deleted IS NULL AND time_dispatched IS NULL"),
        sitrep,
    )
    .await;
    let alert_time: NumberRow = diesel::sql_query(
        "SELECT (extract(epoch FROM time_created) * 1000000)::int8 AS n FROM alert WHERE id = $1",
    )
    .bind::<SqlUuid, _>(live_alert)
    .get_result(conn)
    .await
    .unwrap();
    let generation = |n| Generation::try_new(n).expect("a valid generation");
    CatalogueParams {
        sitrep,
        creation_sitrep: sitrep,
        sweep_sitrep: sitrep,
        alert_generation: generation(
            one_number(conn, "SELECT alert_generation AS n FROM fm_sitrep WHERE id = $1", sitrep)
                .await,
        ),
        support_bundle_generation: generation(
            one_number(
                conn,
                "SELECT support_bundle_generation AS n FROM fm_sitrep WHERE id = $1",
                sitrep,
            )
            .await,
        ),
        case: sitrep,
        case_after: one_id(conn, &middle("fm_case", "sitrep_id = $1"), sitrep).await,
        alert_request_after: one_id(conn, &middle("fm_alert_request", "sitrep_id = $1"), sitrep)
            .await,
        support_bundle_request_after: one_id(
            conn,
            &middle("fm_support_bundle_request", "sitrep_id = $1"),
            sitrep,
        )
        .await,
        alert_tombstone_after: one_id(
            conn,
            &middle("alert", "time_deleted IS NOT NULL AND $1 IS NOT NULL"),
            sitrep,
        )
        .await,
        support_bundle_tombstone_after: one_id(
            conn,
            &middle("support_bundle", "time_deleted IS NOT NULL AND $1 IS NOT NULL"),
            sitrep,
        )
        .await,
        alert: live_alert,
        support_bundle: one_id(
            conn,
            &middle("support_bundle", "fm_case_id = $1 AND time_deleted IS NULL"),
            sitrep,
        )
        .await,
        executor,
        new_sitrep: Uuid::new_v4(),
        new_ids: [Uuid::new_v4(), Uuid::new_v4()],
        lookup_ids: vec![live_alert, Uuid::new_v4()],
        version: one_number(
            conn,
            "SELECT version AS n FROM fm_sitrep_history WHERE sitrep_id = $1",
            sitrep,
        )
        .await,
        free_version: one_number(
            conn,
            "SELECT max(version) + 1 AS n FROM fm_sitrep_history WHERE $1 IS NOT NULL",
            sitrep,
        )
        .await,
        time: chrono::DateTime::from_timestamp_micros(alert_time.n).expect("a valid time"),
    }
}

/// One line of the bound table.
struct Bounded {
    name: &'static str,
    bound: u64,
    max_rows: f64,
    max_node: String,
}

/// Runs every catalogued query built with `params` under `EXPLAIN
/// (ANALYZE)` (writes rolled back) and checks its rows read per node
/// against its declared bound. Returns the table and one message per
/// failure, including queries without a declared bound.
async fn audit_rows_read(
    conn: &mut AsyncPgConnection,
    log: &slog::Logger,
    params: &CatalogueParams,
    sitrep_rows: u64,
) -> (Vec<Bounded>, Vec<String>) {
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for entry in catalogue_with(params) {
        let Some((bound, why)) = entry.row_bound else {
            failures.push(format!("{}: no row bound declared in EXPECTATIONS", entry.name));
            continue;
        };
        let plan = match entry.explain_analyze(conn, log).await {
            Ok(plan) => plan,
            Err(e) => {
                failures.push(format!("{}: EXPLAIN ANALYZE failed: {e:#?}", entry.name));
                continue;
            }
        };
        let reads = PlanReads::from_json(&plan);
        let bound = bound.rows(sitrep_rows);
        if let Err(e) = reads.check(bound) {
            failures.push(format!("{} ({why}): {e}{plan:#}", entry.name));
        }
        let (max_rows, max_node) =
            reads.max().map_or((0.0, String::new()), |n| (n.rows_read, n.node.clone()));
        table.push(Bounded { name: entry.name, bound, max_rows, max_node });
    }
    // The catalogue takes and releases the migration advisory lock in
    // turn; make sure the connection holds none, whatever failed.
    conn.batch_execute("SELECT pg_advisory_unlock_all()").await.unwrap();
    (table, failures)
}

/// The sweep page as it was before the "still requested" check became a
/// per-tombstone primary-key probe (commit 6ab068b,
/// `db-queries/src/datastore/sweep.rs`): `EXISTS (SELECT 1 FROM
/// fm_alert_request r WHERE r.sitrep_id = $S AND r.id = t.id)` in the
/// page's select list. PostgreSQL plans it as a hashed sub-plan that reads
/// all of S's requests on every page. Kept here, as text only, as the
/// negative control of the audit; no production code builds it.
const OLD_ALERT_SWEEP_PAGE: &str = "WITH evidence AS (SELECT s.alert_generation AS generation \
     FROM fm_sitrep AS s WHERE s.id = $1 AND EXISTS (SELECT 1 FROM fm_sitrep_history AS h \
     WHERE h.sitrep_id = $1)), \
     page AS (SELECT t.id, t.fm_generation, EXISTS (SELECT 1 FROM fm_alert_request AS r \
     WHERE r.sitrep_id = $1 AND r.id = t.id) AS requested FROM alert AS t \
     WHERE t.time_deleted IS NOT NULL AND t.id > $2 ORDER BY t.id LIMIT $3), \
     eligible AS (SELECT p.id FROM page AS p, evidence AS e WHERE NOT p.requested \
     AND (p.fm_generation IS NULL OR p.fm_generation < e.generation)), \
     deleted AS (DELETE FROM alert AS d WHERE d.id IN (SELECT id FROM eligible) \
     AND d.time_deleted IS NOT NULL RETURNING d.id) \
     SELECT EXISTS (SELECT 1 FROM evidence) AS sitrep_present, \
     (SELECT count(*) FROM page) AS examined, \
     (SELECT p.id FROM page AS p ORDER BY p.id DESC LIMIT 1) AS last_id, \
     (SELECT count(*) FROM deleted) AS hard_deleted, \
     (SELECT count(*) FROM page AS p WHERE p.requested) AS retained_requested, \
     (SELECT count(*) FROM page AS p, evidence AS e \
       WHERE NOT p.requested AND p.fm_generation >= e.generation) AS retained_too_new";

/// The cost audit: with a sitrep of 100,000 alert and 100,000 bundle
/// requests driving execution and the sweep, more than 100,000 alerts and
/// bundles and thousands of tombstones, every catalogued query reads at
/// most its declared bound from any plan node. Also the negative control:
/// the old sweep page, run through the same checker on the same data,
/// must be rejected.
#[tokio::test]
async fn every_production_query_reads_at_most_its_bound_at_volume() {
    let env = TestEnv::new().await;
    populate(&env, 3, 3_000, 50_000).await;
    let mut raw = connect(env.db.url()).await;
    let started = std::time::Instant::now();
    let params = add_large_sitrep(&mut raw).await;
    eprintln!("large sitrep added in {:?}", started.elapsed());

    let counts: Vec<i64> = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use fm_db_queries::db_schema::{
            alert, fm_alert_request, fm_support_bundle_request, support_bundle,
        };
        let s = params.sitrep;
        vec![
            fm_alert_request::table
                .filter(fm_alert_request::sitrep_id.eq(s))
                .count()
                .get_result(&mut raw)
                .await
                .unwrap(),
            fm_support_bundle_request::table
                .filter(fm_support_bundle_request::sitrep_id.eq(s))
                .count()
                .get_result(&mut raw)
                .await
                .unwrap(),
            alert::table.count().get_result(&mut raw).await.unwrap(),
            support_bundle::table.count().get_result(&mut raw).await.unwrap(),
            alert::table
                .filter(alert::time_deleted.is_not_null())
                .count()
                .get_result(&mut raw)
                .await
                .unwrap(),
            support_bundle::table
                .filter(support_bundle::time_deleted.is_not_null())
                .count()
                .get_result(&mut raw)
                .await
                .unwrap(),
        ]
    };
    eprintln!(
        "volume: {} + {} requests in the large sitrep, {} alerts, {} bundles, \
         {} + {} tombstones",
        counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]
    );
    assert_eq!(&counts[..2], &[LARGE_REQUESTS, LARGE_REQUESTS], "the large sitrep");
    assert!(counts[2] > 100_000 && counts[3] > 100_000, "volume: {counts:?}");
    assert!(counts[4] > 2_000 && counts[5] > 2_000, "thousands of tombstones: {counts:?}");

    let mut conn = env.conn(Role::Viewer, Action::Read).await;
    let sitrep_rows = u64::try_from(LARGE_REQUESTS).unwrap();
    let (table, failures) = audit_rows_read(&mut conn, &env.log, &params, sitrep_rows).await;
    eprintln!("{:<48} {:>9} {:>9}  node that read the most", "query", "max read", "bound");
    for row in &table {
        eprintln!("{:<48} {:>9} {:>9}  {}", row.name, row.max_rows, row.bound, row.max_node);
    }

    // The negative control, the proof that the audit catches the fault it
    // exists for: the old sweep page (a hashed sub-plan over the sitrep's
    // requests, with no Seq Scan anywhere) on the same data, the same
    // sitrep and the same cursor, through the same checker, must be
    // rejected, while today's page passes.
    let old = diesel::sql_query(OLD_ALERT_SWEEP_PAGE)
        .bind::<SqlUuid, _>(params.sweep_sitrep)
        .bind::<SqlUuid, _>(params.alert_tombstone_after)
        .bind::<BigInt, _>(SWEEP_PAGE_ROWS);
    let old_plan = explain_analyze_shared(&mut conn, &env.log, Arc::new(old)).await.unwrap();
    let old_reads = PlanReads::from_json(&old_plan);
    let new = sweep_page_query(
        nexus_fm_types::ResourceType::Alert,
        params.sweep_sitrep,
        Some(params.alert_tombstone_after),
        SWEEP_PAGE_ROWS,
    );
    let new_plan = explain_analyze_shared(&mut conn, &env.log, Arc::new(new)).await.unwrap();
    let new_reads = PlanReads::from_json(&new_plan);
    let bound = fm_db_queries::catalogue::RowBound::Page(SWEEP_PAGE_ROWS).rows(sitrep_rows);
    let old_max = old_reads.max().unwrap();
    let new_max = new_reads.max().unwrap();
    eprintln!(
        "negative control, one alert sweep page of {SWEEP_PAGE_ROWS} at {LARGE_REQUESTS} \
         requests: old query reads at most {} rows in one node ({}), hashed sub-plans {:?}; \
         today's reads at most {} ({})",
        old_max.rows_read, old_max.node, old_reads.hashed_subplans, new_max.rows_read, new_max.node
    );
    let rejected = old_reads.check(bound).expect_err("the checker must reject the old sweep page");
    assert!(
        !rejected.hashed_subplans.is_empty(),
        "the old page's hashed sub-plan must be flagged: {rejected}"
    );
    assert!(
        rejected
            .over
            .iter()
            .any(|n| n.node.contains("fm_alert_request")
                && n.rows_read >= LARGE_REQUESTS as f64 * 0.9),
        "the old page must be seen reading the whole sitrep's requests: {rejected}"
    );
    check_no_seq_scan(&format!("{old_plan}")).expect("the old page has no Seq Scan either");
    new_reads.check(bound).unwrap_or_else(|e| panic!("today's sweep page: {e}{new_plan:#}"));

    assert!(failures.is_empty(), "the rows-read audit failed:\n\n{}", failures.join("\n\n"));
}
