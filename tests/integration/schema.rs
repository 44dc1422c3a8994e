//! The schema: dbinit.sql and the migrations agree, migrations are
//! idempotent, the diesel definitions match the live tables, every table and
//! column is documented.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use fm_db_queries::db_schema::describe_tables;
use fm_db_queries::migration::{self, MIGRATIONS, SCHEMA_VERSION};
use fm_dev::TestDatabase;
use fm_integration_tests::{connect, test_log};
use std::collections::BTreeSet;

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

async fn lines(conn: &mut AsyncPgConnection, sql: &str) -> Vec<String> {
    let rows: Vec<Line> = diesel::sql_query(sql)
        .load(conn)
        .await
        .unwrap_or_else(|e| panic!("catalog query failed: {e:?}\n{sql}"));
    rows.into_iter().map(|l| l.line).collect()
}

/// Everything about the public schema that the catalog records and a
/// migration could get wrong, one sorted line per fact.
async fn catalog(conn: &mut AsyncPgConnection) -> BTreeSet<String> {
    const QUERIES: &[&str] = &[
        // Relations of every kind (tables, indexes, sequences, views).
        "SELECT format('relation %s kind=%s', relname, relkind) AS line
           FROM pg_class WHERE relnamespace = 'public'::regnamespace",
        // Columns: type, nullability, default.
        "SELECT format('column %s.%s type=%s nullable=%s default=%s',
                       table_name, column_name, udt_name, is_nullable,
                       coalesce(column_default, '<none>')) AS line
           FROM information_schema.columns WHERE table_schema = 'public'",
        // Constraints with their full definitions.
        "SELECT format('constraint %s.%s %s', conrelid::regclass::text, conname,
                       pg_get_constraintdef(oid)) AS line
           FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
        // Indexes, including their predicates.
        "SELECT format('index %s.%s %s', tablename, indexname, indexdef) AS line
           FROM pg_indexes WHERE schemaname = 'public'",
        // Comments on tables and columns.
        "SELECT format('comment %s.%s %s', c.relname, coalesce(a.attname, '<table>'),
                       d.description) AS line
           FROM pg_description d
           JOIN pg_class c ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass
           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
          WHERE c.relnamespace = 'public'::regnamespace",
        // User-defined types (enums and the like).
        "SELECT format('type %s kind=%s', typname, typtype) AS line
           FROM pg_type
          WHERE typnamespace = 'public'::regnamespace AND typtype <> 'c' AND typelem = 0",
    ];
    let mut facts = BTreeSet::new();
    for sql in QUERIES {
        facts.extend(lines(conn, sql).await);
    }
    facts
}

fn diff(a: &BTreeSet<String>, b: &BTreeSet<String>) -> String {
    let only_a: Vec<_> = a.difference(b).collect();
    let only_b: Vec<_> = b.difference(a).collect();
    format!("only in the first: {only_a:#?}\nonly in the second: {only_b:#?}")
}

async fn schema_version(conn: &mut AsyncPgConnection) -> Option<i64> {
    migration::read_schema_version(conn).await.expect("reading the schema version")
}

#[tokio::test]
async fn migrations_from_empty_equal_dbinit() {
    let log = test_log();
    let from_dbinit = TestDatabase::new().expect("database from dbinit.sql");
    let empty = TestDatabase::empty().expect("empty database");

    let mut conn_init = connect(from_dbinit.url()).await;
    let mut conn_migrated = connect(empty.url()).await;
    assert_eq!(schema_version(&mut conn_migrated).await, None, "the empty database is empty");

    let report = migration::apply_migrations(&mut conn_migrated, &log).await.unwrap();
    assert_eq!((report.from, report.to), (0, SCHEMA_VERSION));
    assert_eq!(report.to_string(), format!("schema created at version {SCHEMA_VERSION}"));

    let expected = catalog(&mut conn_init).await;
    let actual = catalog(&mut conn_migrated).await;
    // Make sure the comparison compares something: the catalog must know the
    // tables and the tombstone partial index with its predicate.
    assert!(expected.contains("relation fm_sitrep kind=r"), "{expected:#?}");
    assert!(
        expected.iter().any(|f| f.starts_with("index alert.alert_tombstones")
            && f.ends_with("WHERE (time_deleted IS NOT NULL)")),
        "{expected:#?}"
    );
    assert!(expected == actual, "{}", diff(&expected, &actual));

    let want = Some(i64::from(SCHEMA_VERSION));
    assert_eq!(schema_version(&mut conn_init).await, want);
    assert_eq!(schema_version(&mut conn_migrated).await, want);
}

/// Several runners started at once on one empty database (several `fmd`
/// first starts) all succeed, exactly one of them creates the schema, and
/// the result is exactly dbinit.sql's catalog with a correct version row.
///
/// Shown to fail without the lock: with the `pg_advisory_lock` taken out of
/// `apply_migrations`, runners interleave their `CREATE ... IF NOT EXISTS`
/// steps and some fail with `duplicate key value violates unique constraint
/// "pg_type_typname_nsp_index"` (and more than one reports `from == 0`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runners_on_an_empty_database_do_not_interleave() {
    const RUNNERS: usize = 6;
    let log = test_log();
    let empty = TestDatabase::empty().expect("empty database");
    let mut conns = Vec::new();
    for _ in 0..RUNNERS {
        conns.push(connect(empty.url()).await);
    }
    let reports = futures::future::join_all(
        conns.iter_mut().map(|conn| migration::apply_migrations(conn, &log)),
    )
    .await;
    let reports: Vec<_> = reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("runner {i}: {e:#?}")))
        .collect();
    let creators = reports.iter().filter(|r| r.from == 0).count();
    assert_eq!(creators, 1, "exactly one runner creates the schema: {reports:?}");
    assert!(reports.iter().all(|r| r.to == SCHEMA_VERSION), "{reports:?}");
    assert!(
        reports.iter().all(|r| r.from == 0 || r.from == SCHEMA_VERSION),
        "the others find it complete: {reports:?}"
    );

    let mut conn = connect(empty.url()).await;
    let reference = TestDatabase::new().expect("database from dbinit.sql");
    let expected = catalog(&mut connect(reference.url()).await).await;
    let actual = catalog(&mut conn).await;
    assert!(expected == actual, "{}", diff(&expected, &actual));
    // The version row: one row, the current version, no migration under way.
    let rows = lines(
        &mut conn,
        "SELECT format('%s %s %s', singleton, version, coalesce(target_version::text, 'none'))
            AS line FROM db_metadata",
    )
    .await;
    assert_eq!(rows, [format!("t {SCHEMA_VERSION} none")]);
    // Every runner released the lock: it can be taken at once.
    let free = lines(
        &mut conn,
        &format!("SELECT pg_try_advisory_lock({})::text AS line", migration::MIGRATION_LOCK_KEY),
    )
    .await;
    assert_eq!(free, ["true"]);
}

#[tokio::test]
async fn every_migration_step_can_run_twice() {
    let log = test_log();
    let empty = TestDatabase::empty().expect("empty database");
    let mut conn = connect(empty.url()).await;

    // Apply each step twice in a row, as a runner interrupted right after a
    // step and started again would.
    for m in MIGRATIONS {
        for step in m.steps {
            for round in 1..=2 {
                conn.batch_execute(step.sql).await.unwrap_or_else(|e| {
                    panic!("{:04}-{}/{} (round {round}): {e}", m.version, m.name, step.file)
                });
            }
        }
    }
    // The runner, seeing no version row, applies everything a third time and
    // records the version.
    let report = migration::apply_migrations(&mut conn, &log).await.unwrap();
    assert_eq!((report.from, report.to), (0, SCHEMA_VERSION));
    let after_three = catalog(&mut conn).await;

    // Running the runner again is a no-op.
    let report = migration::apply_migrations(&mut conn, &log).await.unwrap();
    assert_eq!((report.from, report.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    assert_eq!(report.to_string(), format!("schema already at version {SCHEMA_VERSION}"));

    let reference = TestDatabase::new().expect("database from dbinit.sql");
    let expected = catalog(&mut connect(reference.url()).await).await;
    assert!(expected == after_three, "{}", diff(&expected, &after_three));
    let again = catalog(&mut conn).await;
    assert!(again == after_three, "{}", diff(&after_three, &again));
}

#[tokio::test]
async fn dbinit_can_run_twice() {
    let db = TestDatabase::new().expect("database from dbinit.sql");
    let mut conn = connect(db.url()).await;
    let before = catalog(&mut conn).await;
    conn.batch_execute(migration::DBINIT_SQL).await.expect("dbinit.sql a second time");
    let after = catalog(&mut conn).await;
    assert!(before == after, "{}", diff(&before, &after));
}

#[derive(QueryableByName, Debug)]
struct LiveColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    udt_name: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[tokio::test]
async fn diesel_schema_matches_live_schema() {
    let db = TestDatabase::new().expect("database from dbinit.sql");
    let mut conn = connect(db.url()).await;
    let live: Vec<LiveColumn> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, udt_name::text, is_nullable::text
           FROM information_schema.columns
          WHERE table_schema = 'public'
          ORDER BY table_name, ordinal_position",
    )
    .load(&mut conn)
    .await
    .unwrap();

    let described = describe_tables();
    let live_tables: BTreeSet<&str> = live.iter().map(|c| c.table_name.as_str()).collect();
    let diesel_tables: BTreeSet<&str> = described.iter().map(|t| t.name).collect();
    assert_eq!(live_tables, diesel_tables, "tables in the database vs. diesel table! definitions");

    for table in &described {
        let live_columns: Vec<(String, String, bool)> = live
            .iter()
            .filter(|c| c.table_name == table.name)
            .map(|c| (c.column_name.clone(), c.udt_name.clone(), c.is_nullable == "YES"))
            .collect();
        let diesel_columns: Vec<(String, String, bool)> = table
            .columns
            .iter()
            .map(|c| (c.name.to_string(), c.pg_type.to_string(), c.nullable))
            .collect();
        assert_eq!(
            live_columns, diesel_columns,
            "table {}: live columns (name, type, nullable) vs. diesel",
            table.name
        );
    }
}

/// Tables and columns of the public schema without a COMMENT.
const UNDOCUMENTED: &str = "
    SELECT c.relname || '.' || a.attname AS line
      FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
       AND col_description(c.oid, a.attnum) IS NULL
    UNION ALL
    SELECT c.relname AS line
      FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
       AND obj_description(c.oid, 'pg_class') IS NULL";

#[tokio::test]
async fn every_table_and_column_has_a_comment() {
    let db = TestDatabase::new().expect("database from dbinit.sql");
    let mut conn = connect(db.url()).await;
    let undocumented = lines(&mut conn, UNDOCUMENTED).await;
    assert!(undocumented.is_empty(), "tables or columns without a COMMENT: {undocumented:#?}");

    // The check itself can fail: remove two comments and both are reported.
    conn.batch_execute("COMMENT ON COLUMN alert.class IS NULL; COMMENT ON TABLE fm_case IS NULL")
        .await
        .unwrap();
    let mut undocumented = lines(&mut conn, UNDOCUMENTED).await;
    undocumented.sort();
    assert_eq!(undocumented, vec!["alert.class".to_string(), "fm_case".to_string()]);
}
