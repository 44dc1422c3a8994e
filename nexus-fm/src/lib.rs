//! Fault-management execution on top of the datastore.
//!
//! This crate sits between the datastore (`fm-db-queries`) and the developer
//! tools. It holds the sitrep builder ([`builder`]), the background-task
//! driver ([`driver`]), one module per task ([`tasks`]: `fm_sitrep_loader`,
//! `fm_rendezvous`, `fm_sitrep_pruner`), the embedded default database
//! ([`embedded`]) and the `fmd` daemon. It also re-exports the layers below
//! so that tools depend on one crate.

pub mod builder;
pub mod driver;
pub mod embedded;
pub mod fmd;
pub mod tasks;

pub use fm_db_queries as db;
pub use nexus_fm_types as types;
