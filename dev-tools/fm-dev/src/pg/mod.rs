//! PostgreSQL for development and tests.
//!
//! The server itself comes from `fm-embedded-pg` (re-exported here);
//! [`testdb`] hands each test its own database cloned from a schema
//! template, on one server per test process.

pub use fm_embedded_pg::{binaries, client, cluster, url};

pub mod testdb;
