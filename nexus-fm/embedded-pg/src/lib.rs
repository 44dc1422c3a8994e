//! An embedded PostgreSQL: a server this process starts from the machine's
//! server binaries, in a temporary or persistent data directory, and that
//! never outlives it.
//!
//! * [`binaries`] finds `initdb` and `postgres`.
//! * [`cluster`] runs one server under a supervisor that cleans up even when
//!   this process is killed.
//! * [`url`] builds and edits connection URLs.
//! * [`client`] has a small `tokio-postgres` connection helper.
//!
//! It knows nothing about fault management: `fmd` uses it for its embedded
//! default, `fm-dev` for `db-run` and the test harness.

pub mod binaries;
pub mod client;
pub mod cluster;
pub mod url;
mod user;

pub use binaries::{BINDIR_ENV, PgBinaries, find_pg_binaries};
pub use client::connect;
pub use cluster::{PgCluster, PgClusterOptions};
