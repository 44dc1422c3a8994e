//! The datastore of fault-management execution.
//!
//! Everything that talks to the database lives here: the diesel schema
//! ([`db_schema`]), the embedded migrations and their runner ([`migration`]),
//! the [`DataStore`] with its connection pool and authorization checks
//! ([`datastore`], [`context`]), the one serializable retry wrapper that every
//! transaction goes through ([`transaction`]), and the EXPLAIN helper that
//! proves queries use indexes ([`explain`]).
//!
//! Invariants kept by this crate:
//! - every transaction runs through [`transaction::transaction_retry`], at
//!   SERIALIZABLE, retrying serialization failures a bounded number of times;
//! - every public [`DataStore`] method takes an [`OpContext`] first and checks
//!   its role before touching the database;
//! - SQL is built only from constants and bind parameters.

pub mod catalogue;
pub mod context;
pub mod datastore;
pub mod db_schema;
pub mod error;
pub mod explain;
pub mod keyset;
pub mod migration;
pub mod model;
pub mod transaction;

pub use context::{Action, OpContext, Role};
pub use datastore::DataStore;
pub use error::Error;

/// What a `*_query` function that builds a write statement returns: a
/// statement that can be executed and, for the EXPLAIN audit, planned.
pub trait WriteQuery:
    diesel::query_builder::QueryFragment<diesel::pg::Pg>
    + diesel::query_builder::QueryId
    + Send
    + Sync
    + 'static
{
}

impl<T> WriteQuery for T where
    T: diesel::query_builder::QueryFragment<diesel::pg::Pg>
        + diesel::query_builder::QueryId
        + Send
        + Sync
        + 'static
{
}
