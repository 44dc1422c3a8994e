//! The one transaction wrapper.
//!
//! Every datastore transaction goes through [`transaction_retry`]: it runs
//! the closure in a `SERIALIZABLE` transaction and, when PostgreSQL reports a
//! serialization failure (SQLSTATE 40001, sometimes only at COMMIT), rolls
//! back and runs the whole closure again, a bounded number of times, with
//! jittered exponential backoff. The safety argument of the tombstone sweep
//! (docs/design.md, "The sweep") depends on this: the guarded insert and a concurrent
//! sweep must not interleave in a way no serial order explains.
//!
//! The raw diesel-async transaction API is banned in `clippy.toml` so that
//! nothing bypasses this wrapper.

use crate::error::Error;
use diesel::result::DatabaseErrorKind;
use diesel_async::AsyncPgConnection;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How many times a transaction runs before giving up on serialization
/// failures.
pub const MAX_ATTEMPTS: u32 = 10;

/// Backoff before the first retry; it doubles with each retry, up to
/// [`MAX_BACKOFF`], and is jittered down to half of that at random so that
/// conflicting transactions do not retry in lockstep.
pub const BASE_BACKOFF: Duration = Duration::from_millis(4);

/// The largest backoff between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// The future a transaction closure returns: boxed, `Send`, borrowing the
/// connection for one attempt.
pub type TxnFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, TransactionError>> + Send + 'c>>;

/// Why a transaction closure stopped.
#[derive(Debug)]
pub enum TransactionError {
    /// A database error. Serialization failures are retried; anything else
    /// ends the transaction and is reported with the transaction's name.
    ///
    /// Always propagate database errors out of the closure (with `?`): a
    /// statement that failed has aborted the transaction, and turning its
    /// error into `Ok` would make COMMIT silently roll back.
    Database(diesel::result::Error),
    /// The closure chose to abort with a typed error (for example "parent is
    /// not current"). The transaction is rolled back and never retried.
    Abort(Error),
}

impl From<diesel::result::Error> for TransactionError {
    fn from(e: diesel::result::Error) -> Self {
        TransactionError::Database(e)
    }
}

/// A transaction's result and how many retries it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retried<T> {
    /// What the closure returned on the attempt that committed.
    pub value: T,
    /// How many times the transaction was run again after a serialization
    /// failure (0 when the first attempt committed).
    pub retries: u32,
}

/// Whether a diesel error is a serialization failure worth retrying.
pub fn is_serialization_failure(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _))
}

/// Runs `f` in a `SERIALIZABLE` transaction, retrying serialization
/// failures.
///
/// `name` identifies the transaction in logs and errors. `f` may be called
/// more than once, so it must not consume its captures; clone what the
/// returned future needs to own.
///
/// # Errors
///
/// - the closure's [`TransactionError::Abort`] error, unchanged;
/// - [`Error::RetriesExhausted`] after [`MAX_ATTEMPTS`] serialization
///   failures in a row;
/// - [`Error::Database`] naming the transaction, for any other database
///   error (including a failure to begin, commit or roll back).
pub async fn transaction_retry<T, F>(
    conn: &mut AsyncPgConnection,
    log: &slog::Logger,
    name: &'static str,
    mut f: F,
) -> Result<Retried<T>, Error>
where
    T: Send,
    F: for<'c> FnMut(&'c mut AsyncPgConnection) -> TxnFuture<'c, T> + Send,
{
    let mut retries = 0;
    loop {
        #[allow(clippy::disallowed_methods)] // This is the one sanctioned caller.
        let result = conn
            .build_transaction()
            .serializable()
            .run(async |c: &mut AsyncPgConnection| f(c).await)
            .await;
        match result {
            Ok(value) => {
                if retries > 0 {
                    slog::debug!(log, "transaction committed after retries";
                        "transaction" => name, "retries" => retries);
                }
                return Ok(Retried { value, retries });
            }
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Database(e)) if is_serialization_failure(&e) => {
                let attempts = retries + 1;
                if attempts >= MAX_ATTEMPTS {
                    slog::warn!(log, "transaction gave up on serialization failures";
                        "transaction" => name, "attempts" => attempts, "error" => %e);
                    return Err(Error::RetriesExhausted { name, attempts, source: e });
                }
                let delay = backoff(retries);
                slog::debug!(log, "serialization failure, retrying";
                    "transaction" => name, "attempt" => attempts,
                    "delay_ms" => delay.as_millis(), "error" => %e);
                tokio::time::sleep(delay).await;
                retries += 1;
            }
            Err(TransactionError::Database(e)) => {
                return Err(Error::database(format_args!("transaction {name}"), e));
            }
        }
    }
}

/// The jittered delay before retry number `retries + 1`.
fn backoff(retries: u32) -> Duration {
    let ceiling = BASE_BACKOFF.saturating_mul(1 << retries.min(16)).min(MAX_BACKOFF);
    let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::random_range(ceiling_us / 2..=ceiling_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        for retries in 0..20 {
            let ceiling = BASE_BACKOFF.saturating_mul(1 << retries.min(16)).min(MAX_BACKOFF);
            for _ in 0..50 {
                let d = backoff(retries);
                assert!(d <= ceiling && d >= ceiling / 2, "retry {retries}: {d:?} vs {ceiling:?}");
            }
        }
        assert_eq!(BASE_BACKOFF.saturating_mul(1 << 16).min(MAX_BACKOFF), MAX_BACKOFF);
    }

    #[test]
    fn only_serialization_failures_are_retryable() {
        use diesel::result::Error as E;
        let info = Box::new(String::from("could not serialize access"));
        assert!(is_serialization_failure(&E::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            info
        )));
        let info = Box::new(String::from("duplicate key"));
        assert!(!is_serialization_failure(&E::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            info
        )));
        assert!(!is_serialization_failure(&E::NotFound));
    }
}
