//! Developer tooling for fault-management execution, and the test harness.
//!
//! The library's main job is PostgreSQL for tests and for local development:
//!
//! * [`TestDatabase`] gives a test its own database holding the current
//!   schema, cloned from a template on one server per test process (or on
//!   the server named by `FM_TEST_DATABASE_URL`).
//! * [`PgCluster`] runs a PostgreSQL server in a temporary or persistent data
//!   directory and guarantees that no server process or temporary directory
//!   outlives this process.
//! * [`find_pg_binaries`] locates `initdb` and `postgres`.
//!
//! The `fm-dev` binary serves the embedded database with `fm-dev db-run`.
//!
//! [`demo`] is `fm-dev demo`: fault-management execution end to end, with
//! several executors in one process, as a library so that a test can run a
//! small one.
//!
//! # Using it from a test
//!
//! ```no_run
//! #[tokio::test]
//! async fn sitreps_start_empty() -> anyhow::Result<()> {
//!     let db = fm_dev::TestDatabase::new()?;
//!     let client = fm_dev::connect(db.url()).await?;
//!     let row = client.query_one("SELECT count(*) FROM fm_sitrep", &[]).await?;
//!     assert_eq!(row.get::<_, i64>(0), 0);
//!     Ok(())
//! }
//! ```

pub mod demo;
pub mod pg;
pub mod sitrep;

pub use pg::binaries::{BINDIR_ENV, PgBinaries, find_pg_binaries};
pub use pg::client::connect;
pub use pg::cluster::{PgCluster, PgClusterOptions};
pub use pg::testdb::{TEST_DATABASE_URL_ENV, TestDatabase, test_server_admin_url};
