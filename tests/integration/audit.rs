//! The EXPLAIN audit: every catalogued production query, planned on a
//! database holding a realistic volume, uses an index (and the one it is
//! meant to use), never a sequential scan.

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use fm_db_queries::catalogue::{CatalogueEntry, catalogue};
use fm_db_queries::explain::check_no_seq_scan;
use fm_db_queries::{Action, Role};
use fm_integration_tests::{TestEnv, connect};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm_types::{ExecutorUuid, ResourceType, Sitrep};
use serde_json::json;

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
            env.datastore
                .fm_resources_create(
                    &executor,
                    sitrep.id(),
                    sitrep.metadata.generation(resource),
                    resource,
                )
                .await
                .unwrap();
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
