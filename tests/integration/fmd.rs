//! The `fmd` daemon's library: two executors on one database, `--once`
//! summaries and error reporting, pinned sitreps.

use diesel_async::SimpleAsyncConnection;
use fm_db_queries::Role;
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use fm_db_queries::migration::{self, MIGRATIONS, SCHEMA_VERSION};
use fm_dev::TestDatabase;
use fm_integration_tests::{TestEnv, connect};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm::embedded::{DataDirLock, DataDirLockError};
use nexus_fm::fmd::{
    DatabaseChoice, Fmd, FmdConfig, FmdError, activation_errors, migrate, migrate_summary,
    summarize,
};
use nexus_fm::tasks::TaskPeriods;
use nexus_fm_types::{ExecutorUuid, ResourceType, Sitrep, SitrepUuid};
use serde_json::json;

fn config(env: &TestEnv, pinned: Option<SitrepUuid>) -> FmdConfig {
    FmdConfig { pinned_sitrep: pinned, ..config_on(env.db.url()) }
}

/// A configuration on the database at `url`, with its own executor id.
fn config_on(url: &str) -> FmdConfig {
    FmdConfig {
        data_dir: std::env::temp_dir().join(format!("fmd-it-{}", uuid::Uuid::new_v4())),
        database: DatabaseChoice::Url(url.to_string()),
        executor_id: Some(ExecutorUuid::new_v4()),
        periods: TaskPeriods::default(),
        retention: RetentionPolicy::default(),
        pinned_sitrep: None,
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

/// The schema version recorded in the database at `url`.
async fn version_of(url: &str) -> Option<i64> {
    migration::read_schema_version(&mut connect(url).await).await.unwrap()
}

#[tokio::test]
async fn an_unmigrated_database_is_refused_until_fmd_migrate() {
    let log = fm_integration_tests::test_log();
    let empty = TestDatabase::empty().expect("empty database");
    let url = empty.url().to_string();
    let config = || config_on(&url);

    // `fmd --db-url URL` on an empty database: refused, says what to run,
    // and writes nothing.
    let err = Fmd::open(&log, config()).await.err().expect("an empty database is refused");
    let message = format!("{err:#}");
    assert!(
        matches!(
            err.downcast_ref::<FmdError>(),
            Some(FmdError::SchemaNotReady { found: None, expected }) if *expected == i64::from(SCHEMA_VERSION)
        ),
        "{message}"
    );
    assert!(message.contains("prepare it with `fmd migrate --db-url URL`"), "{message}");
    assert_eq!(version_of(&url).await, None, "nothing was written");

    // `fmd migrate` prepares it and says from which version to which.
    let report = migrate(&log, &url).await.unwrap();
    assert_eq!((report.from, report.to), (0, SCHEMA_VERSION));
    assert_eq!(
        migrate_summary(&report),
        format!("schema at version 0, migrated to {SCHEMA_VERSION}")
    );
    let again = migrate(&log, &url).await.unwrap();
    assert_eq!(migrate_summary(&again), format!("schema already at version {SCHEMA_VERSION}"));
    assert_eq!(version_of(&url).await, Some(i64::from(SCHEMA_VERSION)));

    // Now fmd runs on it.
    let fmd = Fmd::open(&log, config()).await.expect("a migrated database is accepted");
    let records = fmd.run_once().await;
    assert!(activation_errors(&records).is_empty(), "{}", summarize(&records));
    fmd.close().unwrap();
}

#[tokio::test]
async fn fmd_migrate_moves_an_older_schema_and_refuses_a_newer_one() {
    use diesel_async::RunQueryDsl;
    let log = fm_integration_tests::test_log();
    // A database at version 1: the first migration's steps and its version
    // row, as an older fmd left it.
    let old = TestDatabase::empty().expect("empty database");
    let mut conn = connect(old.url()).await;
    for step in MIGRATIONS[0].steps {
        conn.batch_execute(step.sql).await.unwrap();
    }
    migration::first_version_insert_query(chrono::Utc::now()).execute(&mut conn).await.unwrap();
    assert_eq!(version_of(old.url()).await, Some(1));

    let err = Fmd::open(&log, config_on(old.url())).await.err().expect("version 1 is refused");
    assert!(
        matches!(
            err.downcast_ref::<FmdError>(),
            Some(FmdError::SchemaNotReady { found: Some(1), .. })
        ),
        "{err:#}"
    );
    assert!(format!("{err:#}").contains("its schema is at version 1"), "{err:#}");
    let report = migrate(&log, old.url()).await.unwrap();
    assert_eq!(
        migrate_summary(&report),
        format!("schema at version 1, migrated to {SCHEMA_VERSION}")
    );

    // A database newer than this build: refused, nothing written.
    let newer = TestDatabase::new().expect("database from dbinit.sql");
    let mut conn = connect(newer.url()).await;
    conn.batch_execute("UPDATE db_metadata SET version = 99").await.unwrap();
    let before = fm_integration_tests::fm_table_checksums(newer.url()).await;
    let err = migrate(&log, newer.url()).await.expect_err("a newer schema is refused");
    assert!(
        matches!(
            err.downcast_ref::<fm_db_queries::Error>(),
            Some(fm_db_queries::Error::SchemaVersion { found: Some(99), .. })
        ),
        "{err:#}"
    );
    assert_eq!(fm_integration_tests::fm_table_checksums(newer.url()).await, before);
    // And `fmd` itself refuses it with the datastore's error, not "migrate".
    let err = Fmd::open(&log, config_on(newer.url())).await.err().expect("refused");
    assert!(err.downcast_ref::<FmdError>().is_none(), "{err:#}");
    assert!(format!("{err:#}").contains("database schema version 99 is not supported"), "{err:#}");
}

/// A second `fmd` on a data directory in use is refused, naming the
/// holder, before it writes anything (no executor id, no cluster).
#[tokio::test]
async fn a_data_directory_in_use_is_refused_with_nothing_written() {
    let log = fm_integration_tests::test_log();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("state");
    let held = DataDirLock::acquire(&data_dir).unwrap();
    let config = FmdConfig {
        data_dir: data_dir.clone(),
        database: DatabaseChoice::Embedded,
        executor_id: None,
        ..config_on("unused")
    };
    let err = Fmd::open(&log, config).await.err().expect("the directory is in use");
    assert!(
        matches!(
            err.downcast_ref::<DataDirLockError>(),
            Some(DataDirLockError::InUse { pid: Some(pid), .. }) if *pid == std::process::id()
        ),
        "{err:#}"
    );
    assert_eq!(
        format!("{err:#}"),
        format!("data directory {} in use by process {}", data_dir.display(), std::process::id())
    );
    let entries: Vec<_> = std::fs::read_dir(&data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries, ["lock"], "only the holder's lock file");
    drop(held);
}

/// Two first starts on one fresh data directory: one starts (initdb, the
/// schema), the other is refused with "in use"; neither fails inside
/// `initdb`. Without the lock, as reported in the issue, both reached
/// `initdb` and both failed with "File exists" (not re-run here: the race
/// is timing-dependent, the refusal is not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_starts_on_one_data_directory() {
    let log = fm_integration_tests::test_log();
    let dir = tempfile::tempdir().unwrap();
    // The server may run as another user (as root, `postgres`).
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let data_dir = dir.path().join("state");
    let config = || FmdConfig {
        data_dir: data_dir.clone(),
        database: DatabaseChoice::Embedded,
        executor_id: None,
        ..config_on("unused")
    };
    let (a, b) = tokio::join!(Fmd::open(&log, config()), Fmd::open(&log, config()));
    let (started, refused) = match (a, b) {
        (Ok(fmd), Err(err)) | (Err(err), Ok(fmd)) => (fmd, err),
        (Ok(_), Ok(_)) => panic!("both started on one data directory"),
        (Err(a), Err(b)) => panic!("both failed: {a:#}\n{b:#}"),
    };
    assert!(
        matches!(refused.downcast_ref::<DataDirLockError>(), Some(DataDirLockError::InUse { .. })),
        "{refused:#}"
    );
    let records = started.run_once().await;
    assert!(activation_errors(&records).is_empty(), "{}", summarize(&records));
    started.close().unwrap();
    // Once the first is gone, the directory can be used again.
    let again = Fmd::open(&log, config()).await.expect("a restart on the same directory");
    again.close().unwrap();
}
