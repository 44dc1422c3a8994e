//! Shared helpers of the integration tests: loggers, connections and
//! datastores on the databases the `fm-dev` harness hands out.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use fm_db_queries::datastore::PoolConfig;
use fm_db_queries::{DataStore, OpContext, Role};

/// A logger whose output libtest captures (shown only for failing tests).
pub fn test_log() -> slog::Logger {
    use slog::Drain;
    let decorator = slog_term::PlainSyncDecorator::new(slog_term::TestStdoutWriter);
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    slog::Logger::root(drain, slog::o!())
}

/// An operation context for `role`, named after it.
pub fn opctx(log: &slog::Logger, role: Role) -> OpContext {
    OpContext::new(log.clone(), format!("test-{role}"), role)
}

/// A plain connection to `url`, for tests that work below the datastore.
pub async fn connect(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e:?}"))
}

/// A datastore on `url` with a small pool.
pub async fn datastore(log: &slog::Logger, url: &str) -> DataStore {
    DataStore::new(log, url, PoolConfig { max_size: 4, ..PoolConfig::default() })
        .await
        .unwrap_or_else(|e| panic!("opening a datastore on {url}: {e:#?}"))
}

/// What most database tests start from: a logger, a fresh database holding
/// the current schema, and a datastore on it.
pub struct TestEnv {
    /// The test's logger (captured by libtest).
    pub log: slog::Logger,
    /// The test's own database; dropped (and removed) with the environment.
    pub db: fm_dev::TestDatabase,
    /// A datastore on `db`.
    pub datastore: DataStore,
}

impl TestEnv {
    /// A fresh database with the current schema and a datastore on it.
    pub async fn new() -> TestEnv {
        let log = test_log();
        let db = fm_dev::TestDatabase::new().expect("creating the test database");
        let datastore = datastore(&log, db.url()).await;
        TestEnv { log, db, datastore }
    }

    /// An operation context for `role`.
    pub fn opctx(&self, role: Role) -> OpContext {
        opctx(&self.log, role)
    }

    /// Executes the resources of one type that `sitrep` requests, as an FM
    /// executor holding it would: the sitrep's own id and generation.
    ///
    /// # Errors
    ///
    /// Whatever [`DataStore::fm_resources_create`] returns.
    pub async fn execute_sitrep(
        &self,
        sitrep: &nexus_fm_types::Sitrep,
        resource: nexus_fm_types::ResourceType,
    ) -> Result<fm_db_queries::datastore::rendezvous::CreateOutcome, fm_db_queries::Error> {
        self.datastore
            .fm_resources_create(
                &self.opctx(Role::FmExecutor),
                sitrep.id(),
                sitrep.metadata.generation(resource),
                resource,
            )
            .await
    }

    /// Publishing `sitrep` must fail, and leave every FM table exactly as
    /// it was. Returns the error for the caller to inspect.
    pub async fn publish_rejected(&self, sitrep: &nexus_fm_types::Sitrep) -> fm_db_queries::Error {
        let before = fm_table_checksums(self.db.url()).await;
        let err = self
            .datastore
            .sitrep_insert(&self.opctx(Role::FmExecutor), sitrep)
            .await
            .err()
            .unwrap_or_else(|| panic!("sitrep {} was published but must be rejected", sitrep.id()));
        let after = fm_table_checksums(self.db.url()).await;
        assert_eq!(before, after, "a rejected publish ({err}) changed the database");
        err
    }

    /// A pooled connection taken as `role` for `action`.
    pub async fn conn(
        &self,
        role: Role,
        action: fm_db_queries::Action,
    ) -> fm_db_queries::datastore::PooledConnection<'_> {
        self.datastore
            .pool_connection_authorized(&self.opctx(role), action)
            .await
            .unwrap_or_else(|e| panic!("a {role} connection for {action:?}: {e:#?}"))
    }
}

/// A checksum of every row of every table the diesel schema describes,
/// keyed by table name: equal maps mean byte-identical table contents.
pub async fn fm_table_checksums(url: &str) -> std::collections::BTreeMap<String, String> {
    use diesel::QueryableByName;
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Sum {
        #[diesel(sql_type = Text)]
        sum: String,
    }
    let mut conn = connect(url).await;
    let mut sums = std::collections::BTreeMap::new();
    for table in fm_db_queries::db_schema::describe_tables() {
        // The table name comes from the diesel schema, not from input.
        let sql = format!(
            "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS sum \
             FROM {} t",
            table.name
        );
        let sum: Sum = diesel::sql_query(sql)
            .get_result(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("checksum of {}: {e:?}", table.name));
        sums.insert(table.name.to_string(), sum.sum);
    }
    sums
}

impl TestEnv {
    /// The ids of every row of `resource`'s table, live or tombstoned (a
    /// test's view of the table, not a production reader).
    pub async fn all_rows(
        &self,
        resource: nexus_fm_types::ResourceType,
    ) -> std::collections::BTreeSet<uuid::Uuid> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use fm_db_queries::db_schema::{alert, support_bundle};
        let mut conn = connect(self.db.url()).await;
        let ids: Vec<uuid::Uuid> = match resource {
            nexus_fm_types::ResourceType::Alert => {
                alert::table.select(alert::id).load(&mut conn).await
            }
            nexus_fm_types::ResourceType::SupportBundle => {
                support_bundle::table.select(support_bundle::id).load(&mut conn).await
            }
        }
        .unwrap_or_else(|e| panic!("listing {resource} rows: {e:?}"));
        ids.into_iter().collect()
    }
}

/// Sitreps for tests, made with the builder like production sitreps.
pub mod sitreps {
    use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
    use nexus_fm_types::{ExecutorUuid, Sitrep};
    use serde_json::json;

    /// A first sitrep: one case with `alerts` alert requests and `bundles`
    /// support-bundle requests.
    pub fn first_sitrep(alerts: usize, bundles: usize) -> Sitrep {
        let mut b = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "first");
        let case = b.open_case("power", "PSU 0 removed");
        for i in 0..alerts {
            b.request_alert(case, "hw.pwr.remove.psu", json!({ "slot": i })).unwrap();
        }
        for i in 0..bundles {
            b.request_support_bundle(case, "PSU removed", json!({ "sp": i })).unwrap();
        }
        b.build(&SatisfiedRequests::default()).unwrap()
    }

    /// A builder for a child of `parent`.
    pub fn child(parent: &Sitrep) -> SitrepBuilder {
        SitrepBuilder::new(Some(parent), ExecutorUuid::new_v4(), "child")
    }

    /// A child of `parent` that changes nothing.
    pub fn unchanged_child(parent: &Sitrep) -> Sitrep {
        child(parent).build(&SatisfiedRequests::default()).unwrap()
    }
}
