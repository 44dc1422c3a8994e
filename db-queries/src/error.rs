//! The public error type of the datastore, and the one funnel that turns
//! diesel errors into it.

use std::fmt;

/// An error from a datastore operation.
///
/// `Display` never repeats the source error; log the whole chain (for example
/// with `{:#}` through `anyhow`, or as a structured slog value).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operation context's role may not perform this action.
    #[error("{actor} (role {role}) may not {action}")]
    Forbidden {
        /// Who asked.
        actor: String,
        /// The role they hold.
        role: crate::Role,
        /// What they tried to do.
        action: crate::Action,
    },
    /// The database's schema version is not the one this software runs on.
    #[error(
        "database schema version {} is not supported: this software expects version {expected}{}",
        found.map_or_else(|| "<none>".to_string(), |v| v.to_string()),
        if *found == Some(0) || found.is_none() { " (the schema has not been created; run the migrations)" } else { "" }
    )]
    SchemaVersion {
        /// The version recorded in the database, or `None` if it has no
        /// version row (no schema at all, or a database of something else).
        found: Option<i64>,
        /// The version this software was built for.
        expected: i64,
    },
    /// The schema migrations could not be applied.
    #[error("schema migration failed: {0}")]
    Migration(String),
    /// The database could not be reached.
    #[error("connecting to the database")]
    Connect(#[source] diesel::ConnectionError),
    /// No connection could be taken from the pool.
    #[error(
        "no database connection available{}",
        last_connection_error.as_ref().map_or_else(String::new, |e| format!(" (last connection error: {e})"))
    )]
    Pool {
        /// What the pool reported (usually a timeout).
        #[source]
        source: bb8::RunError<diesel_async::pooled_connection::PoolError>,
        /// The pool's most recent failure to open a connection, if any.
        last_connection_error: Option<String>,
    },
    /// A database operation failed.
    #[error("{context}")]
    Database {
        /// What was being done, e.g. "reading the schema version".
        context: String,
        /// The underlying diesel error.
        #[source]
        source: diesel::result::Error,
    },
    /// A transaction kept failing with serialization conflicts.
    #[error("transaction {name} gave up after {attempts} attempts on serialization failures")]
    RetriesExhausted {
        /// The transaction's name.
        name: &'static str,
        /// How many times it ran.
        attempts: u32,
        /// The last serialization failure.
        #[source]
        source: diesel::result::Error,
    },
}

impl Error {
    /// The funnel from diesel errors: attaches what was being done.
    pub fn database(context: impl fmt::Display, source: diesel::result::Error) -> Error {
        Error::Database { context: context.to_string(), source }
    }
}

/// Extension for `Result<T, diesel::result::Error>` that funnels through
/// [`Error::database`].
pub trait DieselResultExt<T> {
    /// Converts the error, naming what was being done.
    fn context(self, context: impl fmt::Display) -> Result<T, Error>;
}

impl<T> DieselResultExt<T> for Result<T, diesel::result::Error> {
    fn context(self, context: impl fmt::Display) -> Result<T, Error> {
        self.map_err(|e| Error::database(context, e))
    }
}
