//! The EXPLAIN helper catches sequential scans and accepts index paths.

use diesel::prelude::*;
use diesel::sql_types::{Text, Uuid as SqlUuid};
use fm_db_queries::db_schema::alert;
use fm_db_queries::explain::{assert_no_seq_scan, check_no_seq_scan, explain_plan};
use fm_db_queries::{Action, Role};
use fm_integration_tests::TestEnv;
use uuid::Uuid;

#[tokio::test]
async fn explain_catches_seq_scans_and_passes_index_scans() {
    let env = TestEnv::new().await;
    let log = &env.log;
    let mut conn = env.conn(Role::Viewer, Action::Read).await;

    // `class` has no index: even with enable_seqscan = off, only a Seq Scan
    // can answer this, and the helper must say so.
    let plan = explain_plan(
        &mut conn,
        log,
        alert::table.filter(alert::class.eq("hw.psu".to_string())).select(alert::id),
    )
    .await
    .unwrap();
    let err = check_no_seq_scan(&plan).unwrap_err();
    assert!(err.scans[0].contains("Seq Scan on alert"), "{plan}");
    let panic = std::panic::catch_unwind(|| assert_no_seq_scan("alert by class", &plan))
        .expect_err("the assertion must fail on a Seq Scan");
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("Seq Scan on alert") && message.contains("alert by class"));

    // By primary key: an index scan, and the assertion passes.
    let plan = explain_plan(&mut conn, log, alert::table.find(Uuid::new_v4()).select(alert::id))
        .await
        .unwrap();
    assert_no_seq_scan("alert by id", &plan);
    assert!(plan.contains("alert_pkey"), "{plan}");

    // A keyset page over the tombstones uses the partial index, because the
    // query states its predicate.
    let plan = explain_plan(
        &mut conn,
        log,
        alert::table
            .filter(alert::time_deleted.is_not_null())
            .filter(alert::id.gt(Uuid::nil()))
            .order(alert::id)
            .limit(1000)
            .select(alert::id),
    )
    .await
    .unwrap();
    assert_no_seq_scan("alert tombstone page", &plan);
    assert!(plan.contains("alert_tombstones"), "{plan}");

    // Raw SQL with binds works the same way, both ways.
    let plan = explain_plan(
        &mut conn,
        log,
        diesel::sql_query("SELECT id FROM alert WHERE id = $1").bind::<SqlUuid, _>(Uuid::nil()),
    )
    .await
    .unwrap();
    assert_no_seq_scan("raw alert by id", &plan);
    let plan = explain_plan(
        &mut conn,
        log,
        diesel::sql_query("SELECT id FROM alert WHERE payload->>'k' = $1")
            .bind::<Text, _>("v".to_string()),
    )
    .await
    .unwrap();
    assert!(check_no_seq_scan(&plan).is_err(), "{plan}");
}

#[tokio::test]
async fn explain_does_not_leak_the_setting() {
    let env = TestEnv::new().await;
    let log = &env.log;
    let mut conn = env.conn(Role::Viewer, Action::Read).await;
    explain_plan(&mut conn, log, alert::table.select(alert::id)).await.unwrap();
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        enable_seqscan: String,
    }
    let setting: Setting =
        diesel_async::RunQueryDsl::get_result(diesel::sql_query("SHOW enable_seqscan"), &mut conn)
            .await
            .unwrap();
    assert_eq!(setting.enable_seqscan, "on");
}
