//! Throwaway and persistent PostgreSQL servers for development and tests.
//!
//! * [`binaries`] finds `initdb` and `postgres`.
//! * [`cluster`] runs one server under a supervisor that cleans up even when
//!   this process is killed.
//! * [`testdb`] hands each test its own database cloned from a schema
//!   template, on one server per test process.
//! * [`url`] builds and edits connection URLs.
//! * [`client`] has a small `tokio-postgres` connection helper.

pub mod binaries;
pub mod client;
pub mod cluster;
pub mod testdb;
pub mod url;
mod user;
