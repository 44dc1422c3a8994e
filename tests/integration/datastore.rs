//! DataStore construction and authorization.

use diesel_async::SimpleAsyncConnection;
use fm_db_queries::datastore::PoolConfig;
use fm_db_queries::migration::SCHEMA_VERSION;
use fm_db_queries::{Action, DataStore, Error, Role};
use fm_dev::TestDatabase;
use fm_integration_tests::{connect, datastore, opctx, test_log};

#[tokio::test]
async fn unknown_schema_version_is_refused() {
    let log = test_log();
    let db = TestDatabase::new().expect("database from dbinit.sql");
    // The right version is accepted ...
    let ds = datastore(&log, db.url()).await;
    let version = ds.schema_version(&opctx(&log, Role::Viewer)).await.unwrap();
    assert_eq!(version, Some(i64::from(SCHEMA_VERSION)));

    // ... a newer one is refused, naming both versions.
    connect(db.url()).await.batch_execute("UPDATE db_metadata SET version = 999").await.unwrap();
    let err = DataStore::new(&log, db.url(), PoolConfig::default()).await.err().unwrap();
    assert!(
        matches!(err, Error::SchemaVersion { found: Some(999), expected } if expected == i64::from(SCHEMA_VERSION)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "database schema version 999 is not supported: this software expects version {SCHEMA_VERSION}"
        )
    );

    // ... and so is a database without any schema.
    let empty = TestDatabase::empty().expect("empty database");
    let err = DataStore::new(&log, empty.url(), PoolConfig::default()).await.err().unwrap();
    assert!(matches!(err, Error::SchemaVersion { found: None, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "database schema version <none> is not supported: this software expects version \
             {SCHEMA_VERSION} (the schema has not been created; run the migrations)"
        )
    );
}

#[tokio::test]
async fn an_unreachable_database_says_why() {
    let log = test_log();
    let db = TestDatabase::new().expect("database");
    let url = db.url().replace(db.name(), "no_such_database_here");
    let config = PoolConfig { max_size: 1, connection_timeout: std::time::Duration::from_secs(5) };
    let err = DataStore::new(&log, &url, config).await.err().unwrap();
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert!(chain.contains("no_such_database_here"), "{chain}");
}

#[tokio::test]
async fn connections_are_only_handed_out_to_permitted_roles() {
    let log = test_log();
    let db = TestDatabase::new().expect("database");
    let ds = datastore(&log, db.url()).await;
    for (role, action, allowed) in [
        (Role::Viewer, Action::Read, true),
        (Role::Viewer, Action::FmWrite, false),
        (Role::Viewer, Action::DeleteResource, false),
        (Role::Operator, Action::DeleteResource, true),
        (Role::Operator, Action::FmWrite, false),
        (Role::FmExecutor, Action::FmWrite, true),
        (Role::FmExecutor, Action::DeleteResource, false),
    ] {
        let result = ds.pool_connection_authorized(&opctx(&log, role), action).await;
        match (allowed, result) {
            (true, Ok(_)) => {}
            (false, Err(Error::Forbidden { role: r, action: a, .. })) => {
                assert_eq!((r, a), (role, action));
            }
            (_, Err(e)) => panic!("{role} {action:?}: unexpected error {e:?}"),
            (false, Ok(_)) => panic!("{role} was given a connection for {action:?}"),
        }
    }
}

/// Every datastore entry point that writes refuses a role that may not
/// perform it, with a typed error and nothing written. Reads are open to
/// every role; the writes and who may make them:
/// - FM executor: publish, prune, create from a sitrep, sweep, record task
///   status, mark alerts dispatched, fail an executor's bundles;
/// - operator: delete;
/// - operator or FM executor: plain creation, bundle state and comment.
#[tokio::test]
async fn every_write_refuses_the_wrong_role_and_writes_nothing() {
    use fm_db_queries::datastore::rendezvous::NewResource;
    use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
    use fm_db_queries::datastore::support_bundle::SupportBundleState;
    use fm_integration_tests::{TestEnv, fm_table_checksums};
    use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
    use nexus_fm_types::{
        AlertUuid, ExecutorUuid, ResourceType, SupportBundleUuid, TaskActivationRecord,
    };
    use serde_json::json;

    let env = TestEnv::new().await;
    let ds = &env.datastore;
    // Some state to write against: a published, executed sitrep.
    let mut b = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "auth");
    let case = b.open_case("engine", "case");
    let alert = b.request_alert(case, "a", json!({})).unwrap();
    let bundle = b.request_support_bundle(case, "b", json!({})).unwrap();
    let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
    let fm = env.opctx(Role::FmExecutor);
    ds.sitrep_insert(&fm, &sitrep).await.unwrap();
    for resource in ResourceType::ALL {
        ds.fm_resources_create(&fm, sitrep.id(), sitrep.metadata.generation(resource), resource)
            .await
            .unwrap();
    }
    let next = SitrepBuilder::new(Some(&sitrep), ExecutorUuid::new_v4(), "next")
        .build(&SatisfiedRequests::default())
        .unwrap();
    let record = TaskActivationRecord {
        executor_id: ExecutorUuid::new_v4(),
        task_name: "fm_rendezvous".into(),
        iteration: 1,
        time_started: chrono::Utc::now(),
        duration_usec: 1,
        status: json!({}),
    };

    let before = fm_table_checksums(env.db.url()).await;
    let mut checked = 0;
    for role in [Role::Viewer, Role::Operator, Role::FmExecutor] {
        let o = env.opctx(role);
        let attempts: Vec<(&str, bool, Result<(), Error>)> = vec![
            (
                "sitrep_insert",
                role == Role::FmExecutor,
                ds.sitrep_insert(&o, &next).await.map(drop),
            ),
            (
                "sitrep_history_prune",
                role == Role::FmExecutor,
                ds.sitrep_history_prune(&o, RetentionPolicy::default()).await.map(drop),
            ),
            (
                "fm_resources_create",
                role == Role::FmExecutor,
                ds.fm_resources_create(
                    &o,
                    sitrep.id(),
                    sitrep.metadata.generation(ResourceType::Alert),
                    ResourceType::Alert,
                )
                .await
                .map(drop),
            ),
            (
                "fm_tombstones_sweep",
                role == Role::FmExecutor,
                ds.fm_tombstones_sweep(&o, sitrep.id(), ResourceType::Alert, None).await.map(drop),
            ),
            (
                "executor_task_status_upsert",
                role == Role::FmExecutor,
                ds.executor_task_status_upsert(&o, &record).await,
            ),
            (
                "alert_mark_dispatched",
                role == Role::FmExecutor,
                ds.alert_mark_dispatched(&o, alert).await.map(drop),
            ),
            (
                "support_bundle_fail_orphaned",
                role == Role::FmExecutor,
                ds.support_bundle_fail_orphaned(&o, ExecutorUuid::new_v4()).await.map(drop),
            ),
            ("alert_delete", role == Role::Operator, ds.alert_delete(&o, alert).await.map(drop)),
            (
                "support_bundle_delete",
                role == Role::Operator,
                ds.support_bundle_delete(&o, bundle).await.map(drop),
            ),
            (
                "resource_create",
                role != Role::Viewer,
                ds.resource_create(
                    &o,
                    NewResource::Alert {
                        id: AlertUuid::new_v4(),
                        class: "x".into(),
                        payload: json!({}),
                    },
                )
                .await,
            ),
            (
                "support_bundle_update_state",
                role != Role::Viewer,
                ds.support_bundle_update_state(&o, bundle, SupportBundleState::Active)
                    .await
                    .map(drop),
            ),
            (
                "support_bundle_update_comment",
                role != Role::Viewer,
                ds.support_bundle_update_comment(&o, SupportBundleUuid::new_v4(), None)
                    .await
                    .map(drop),
            ),
        ];
        for (name, allowed, result) in attempts {
            match result {
                Err(Error::Forbidden { role: r, .. }) => {
                    assert!(!allowed, "{name} refused {role}, which may call it");
                    assert_eq!(r, role);
                    checked += 1;
                }
                // Allowed calls may succeed or fail for other reasons (e.g.
                // NotFound); what matters is that they got past the check.
                other => assert!(allowed, "{name} let {role} through: {other:?}"),
            }
        }
        if role == Role::Viewer {
            // Nothing at all was written by the refused calls.
            assert_eq!(before, fm_table_checksums(env.db.url()).await);
        }
    }
    // Viewer: 12 refusals; operator: 7; FM executor: 2.
    assert_eq!(checked, 21);
}
