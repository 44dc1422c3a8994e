//! The one integration-test binary. Every test here runs against a real
//! PostgreSQL that the `fm-dev` harness starts (or the server named by
//! `FM_TEST_DATABASE_URL`), each in its own database.

mod audit;
mod datastore;
mod delete;
mod demo;
mod explain;
mod fmd;
mod prune;
mod readers;
mod rendezvous;
mod schema;
mod sitrep;
mod sweep;
mod tasks;
mod transaction;
mod trust;
