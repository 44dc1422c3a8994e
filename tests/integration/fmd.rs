//! The `fmd` daemon's library: two executors on one database, `--once`
//! summaries and error reporting, pinned sitreps.

use fm_db_queries::Role;
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use fm_integration_tests::{TestEnv, connect};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm::fmd::{DatabaseChoice, Fmd, FmdConfig, activation_errors, summarize};
use nexus_fm::tasks::TaskPeriods;
use nexus_fm_types::{ExecutorUuid, ResourceType, Sitrep, SitrepUuid};
use serde_json::json;

fn config(env: &TestEnv, pinned: Option<SitrepUuid>) -> FmdConfig {
    FmdConfig {
        data_dir: std::env::temp_dir().join(format!("fmd-it-{}", uuid::Uuid::new_v4())),
        database: DatabaseChoice::Url(env.db.url().to_string()),
        executor_id: Some(ExecutorUuid::new_v4()),
        periods: TaskPeriods::default(),
        retention: RetentionPolicy::default(),
        pinned_sitrep: pinned,
    }
}

async fn publish(env: &TestEnv, parent: Option<&Sitrep>, alerts: usize, bundles: usize) -> Sitrep {
    let mut b = SitrepBuilder::new(parent, ExecutorUuid::new_v4(), "fmd test");
    let case = b.open_case("engine", "case");
    for i in 0..alerts {
        b.request_alert(case, "a", json!({ "i": i })).unwrap();
    }
    for i in 0..bundles {
        b.request_support_bundle(case, "b", json!({ "i": i })).unwrap();
    }
    let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
    env.datastore.sitrep_insert(&env.opctx(Role::FmExecutor), &sitrep).await.unwrap();
    sitrep
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_executors_on_one_database_run_once_without_errors() {
    let env = TestEnv::new().await;
    let sitrep = publish(&env, None, 300, 40).await;
    let a = Fmd::open(&env.log, config(&env, None)).await.unwrap();
    let b = Fmd::open(&env.log, config(&env, None)).await.unwrap();
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    assert!(activation_errors(&ra).is_empty(), "{}", summarize(&ra));
    assert!(activation_errors(&rb).is_empty(), "{}", summarize(&rb));
    for records in [&ra, &rb] {
        let names: Vec<_> = records.iter().map(|r| r.task_name.as_str()).collect();
        assert_eq!(names, ["fm_sitrep_loader", "fm_rendezvous", "fm_sitrep_pruner"]);
    }
    let summary = summarize(&ra);
    assert!(summary.contains("alerts (sitrep version 1, generation 1)"), "{summary}");
    assert!(summary.contains("requested 300 (300 new)"), "{summary}");

    // Each resource exists exactly once, whoever made it.
    let ds = &env.datastore;
    let viewer = env.opctx(Role::Viewer);
    for resource in ResourceType::ALL {
        let ids: Vec<_> = sitrep.request_ids(resource).into_iter().collect();
        let rows = ds.fm_resource_rows_including_deleted(&viewer, resource, &ids).await.unwrap();
        assert_eq!(rows.len(), ids.len(), "{resource}");
    }
    // Both executors' statuses are persisted.
    let statuses = ds.executor_task_status_list(&viewer, None, 100).await.unwrap();
    let executors: std::collections::BTreeSet<_> = statuses.iter().map(|s| s.executor_id).collect();
    assert_eq!(executors, [a.executor_id(), b.executor_id()].into_iter().collect());
    assert_eq!(statuses.len(), 6);
    a.close().unwrap();
    b.close().unwrap();
}

#[tokio::test]
async fn a_pinned_sitrep_reproduces_a_lagging_executor() {
    let env = TestEnv::new().await;
    let s1 = publish(&env, None, 2, 1).await;
    // S2 adds alerts (bundles unchanged).
    let mut b = SitrepBuilder::new(Some(&s1), ExecutorUuid::new_v4(), "s2");
    b.request_alert(s1.cases[0].id, "a", json!({})).unwrap();
    let s2 = b.build(&SatisfiedRequests::default()).unwrap();
    env.datastore.sitrep_insert(&env.opctx(Role::FmExecutor), &s2).await.unwrap();

    let lagging = Fmd::open(&env.log, config(&env, Some(s1.id()))).await.unwrap();
    let records = lagging.run_once().await;
    let summary = summarize(&records);
    assert!(activation_errors(&records).is_empty(), "{summary}");
    assert!(summary.contains("stale yes"), "alerts are stale: {summary}");
    assert!(summary.contains("skipped: this executor's sitrep is no longer current"), "{summary}");
    // Nothing of the stale type was created; the bundle was.
    let mut conn = connect(env.db.url()).await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let alerts: i64 =
        fm_db_queries::db_schema::alert::table.count().get_result(&mut conn).await.unwrap();
    let bundles: i64 = fm_db_queries::db_schema::support_bundle::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!((alerts, bundles), (0, 1));

    // A sitrep that was never committed is an error, and says so.
    let nowhere = Fmd::open(&env.log, config(&env, Some(SitrepUuid::new_v4()))).await.unwrap();
    let records = nowhere.run_once().await;
    let errors = activation_errors(&records);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("fm_sitrep_loader: sitrep "), "{errors:?}");
    assert!(errors[0].contains("no history entry"), "{errors:?}");
}
