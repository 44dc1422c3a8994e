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
