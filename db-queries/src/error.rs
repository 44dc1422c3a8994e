//! The public error type of the datastore, and the one funnel that turns
//! diesel errors into it.

use nexus_fm_types::ids::SitrepUuid;
use nexus_fm_types::{Generation, ResourceType, SitrepValidationError};
use std::fmt;
use uuid::Uuid;

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
    /// The object does not exist (or no longer exists).
    #[error("{what} {id} not found")]
    NotFound {
        /// What kind of object, e.g. "sitrep".
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A sitrep was built from a parent that is not the current sitrep
    /// (someone else published first, or the parent is unknown).
    #[error(
        "sitrep {sitrep_id} was built on {}, but the current sitrep is {}",
        parent.map_or_else(|| "no parent".to_string(), |p| format!("parent {p}")),
        current.map_or_else(|| "none (the history is empty)".to_string(), |c| c.to_string())
    )]
    ParentNotCurrent {
        /// The sitrep being published.
        sitrep_id: SitrepUuid,
        /// The parent it names.
        parent: Option<SitrepUuid>,
        /// The current sitrep at the time of the check.
        current: Option<SitrepUuid>,
    },
    /// A sitrep's generation for one resource type breaks the generation
    /// rule (docs/design.md, "Publishing a sitrep").
    #[error(
        "sitrep {sitrep_id} has {resource} generation {found}, but its {resource} requests {} \
         its parent's, so the generation must be {expected}",
        if *unchanged { "equal" } else { "differ from" }
    )]
    GenerationMismatch {
        /// The sitrep being published.
        sitrep_id: SitrepUuid,
        /// Which resource type.
        resource: ResourceType,
        /// What the rule requires.
        expected: Generation,
        /// What the sitrep says.
        found: Generation,
        /// Whether the request set equals the parent's.
        unchanged: bool,
    },
    /// A request that is new relative to the parent uses an id that has
    /// been used before (fresh-id rule, docs/design.md, "Publishing a sitrep").
    #[error("{resource} request id {id} is new in this sitrep but already used: {used_by}")]
    RequestIdReused {
        /// Which resource type.
        resource: ResourceType,
        /// The reused id.
        id: Uuid,
        /// Where it was found.
        used_by: String,
    },
    /// An executor asked to execute a sitrep that has no history entry or
    /// no `fm_sitrep` row: it was never published, or it has been pruned.
    /// Nothing was created.
    #[error(
        "sitrep {sitrep_id} cannot be executed: it has no history entry or no row \
         (never published, or pruned)"
    )]
    SitrepNotCommitted {
        /// The sitrep.
        sitrep_id: SitrepUuid,
    },
    /// An executor's expected generation for a sitrep is not the one the
    /// sitrep's own row holds. Nothing was created.
    #[error(
        "the executor expects sitrep {sitrep_id} to have {resource} generation {expected}, \
         but its row says {}",
        found.map_or_else(|| "nothing readable".to_string(), |g| g.to_string())
    )]
    SitrepGenerationMismatch {
        /// The sitrep.
        sitrep_id: SitrepUuid,
        /// Which resource type.
        resource: ResourceType,
        /// What the executor passed.
        expected: Generation,
        /// What the sitrep's row holds.
        found: Option<Generation>,
    },
    /// A sitrep contradicts the history it would join: a new request or
    /// case names a sitrep that is neither itself nor one in the history,
    /// or a case's opening sitrep differs from the parent's.
    #[error("sitrep {sitrep_id} is inconsistent with the history: {detail}")]
    InconsistentSitrep {
        /// The sitrep being published.
        sitrep_id: SitrepUuid,
        /// What is wrong.
        detail: String,
    },
    /// A sitrep with this id already exists.
    #[error("a sitrep with id {0} already exists")]
    SitrepExists(SitrepUuid),
    /// The sitrep is malformed on its own.
    /// (Not a `#[source]`: the message already says what is wrong, and a
    /// source would repeat it in every printed chain.)
    #[error("invalid sitrep: {0}")]
    InvalidSitrep(SitrepValidationError),
    /// A caller passed an argument outside its allowed range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The database holds a value the domain types refuse.
    #[error("{context}")]
    BadData {
        /// What was being read.
        context: String,
        /// What is wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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

impl From<SitrepValidationError> for Error {
    fn from(e: SitrepValidationError) -> Self {
        Error::InvalidSitrep(e)
    }
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

/// An error with its whole cause chain, "outer: inner: innermost", for
/// statuses, structured log values and messages that must keep the cause.
///
/// This is the text of `anyhow`'s alternate Display (`{:#}`), which a test
/// checks; it is kept as a function because its callers hold a borrowed
/// `dyn Error` (anyhow formats only an owned `anyhow::Error`), and because
/// this library's errors are typed (`thiserror`), with `anyhow` only in
/// binaries and tests.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain reads like `anyhow`'s `{:#}` of the same error.
    #[test]
    fn error_chain_matches_anyhow_alternate_display() {
        let innermost = std::io::Error::other("innermost");
        let inner = Error::BadData { context: "inner".to_string(), source: Box::new(innermost) };
        let outer = Error::BadData { context: "outer".to_string(), source: Box::new(inner) };
        let text = error_chain(&outer);
        assert_eq!(text, "outer: inner: innermost");
        assert_eq!(text, format!("{:#}", anyhow::Error::new(outer)));
    }
}
