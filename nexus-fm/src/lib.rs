//! Fault-management execution on top of the datastore.
//!
//! This crate sits between the datastore (`fm-db-queries`) and the developer
//! tools. It holds the sitrep builder ([`builder`]); the background-task
//! driver, one module per task (`fm_sitrep_loader`, `fm_rendezvous`,
//! `fm_sitrep_pruner`) and the `fmd` daemon arrive with the issues that
//! specify them. It also re-exports the layers below so that tools depend on
//! one crate.

pub mod builder;

pub use fm_db_queries as db;
pub use nexus_fm_types as types;
