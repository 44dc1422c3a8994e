//! The [`DataStore`]: a connection pool plus the entry points of every
//! fault-management database operation.
//!
//! Construction refuses a database whose schema version this software does
//! not know. Every public method takes an [`OpContext`] first and checks its
//! role before it takes a connection, so a denied call never touches the
//! database.

use crate::context::{Action, OpContext};
use crate::error::Error;
use crate::migration;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most rows one page of any datastore listing may ask for.
pub const MAX_PAGE_LIMIT: u32 = 10_000;

/// Checks a caller's page limit: 1 to [`MAX_PAGE_LIMIT`]. Every paginated
/// entry point goes through it, so no caller can ask for an unbounded read.
///
/// # Errors
///
/// [`Error::InvalidArgument`] outside that range.
pub fn page_limit(limit: u32) -> Result<i64, Error> {
    if limit == 0 || limit > MAX_PAGE_LIMIT {
        return Err(Error::InvalidArgument(format!(
            "page limit must be between 1 and {MAX_PAGE_LIMIT}, got {limit}"
        )));
    }
    Ok(i64::from(limit))
}

/// The pool type.
pub type Pool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// A connection checked out of the pool.
pub type PooledConnection<'a> =
    bb8::PooledConnection<'a, AsyncDieselConnectionManager<AsyncPgConnection>>;

/// Pool settings.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Most connections open at once.
    pub max_size: u32,
    /// How long a caller waits for a connection before getting an error.
    pub connection_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { max_size: 8, connection_timeout: Duration::from_secs(10) }
    }
}

/// Access to the fault-management tables.
#[derive(Clone)]
pub struct DataStore {
    pool: Pool,
    log: slog::Logger,
    /// The pool's most recent failure to open a connection, reported with
    /// pool timeouts so that "timed out" comes with its cause.
    last_connection_error: Arc<Mutex<Option<String>>>,
    /// Whether the server has LISTEN/NOTIFY (PostgreSQL does, CockroachDB
    /// does not).
    notifications: bool,
}

impl DataStore {
    /// Connects to `url` and checks that the database is at exactly the
    /// schema version this software knows ([`migration::SCHEMA_VERSION`]).
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] when no connection can be made (the error says
    /// why); [`Error::SchemaVersion`] naming the version found and the one expected.
    pub async fn new(log: &slog::Logger, url: &str, config: PoolConfig) -> Result<Self, Error> {
        let log = log.new(slog::o!("component" => "DataStore"));
        // The pool reports a failing connection only as "timed out", so make
        // the first connection directly: a bad URL or a down server is then
        // reported with its real cause. The same connection checks the
        // schema version.
        let mut conn = establish_connection(url.to_string()).await.map_err(Error::Connect)?;
        migration::check_schema_version(&mut conn).await?;
        let notifications = !is_cockroachdb(&mut conn).await?;
        drop(conn);

        let sink = ConnectionErrorSink { log: log.clone(), last: Arc::default() };
        let mut manager_config = ManagerConfig::default();
        manager_config.custom_setup =
            Box::new(|url| Box::pin(establish_connection(url.to_string())));
        let manager =
            AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, manager_config);
        let pool = bb8::Pool::builder()
            .max_size(config.max_size)
            .connection_timeout(config.connection_timeout)
            .error_sink(Box::new(sink.clone()))
            .build_unchecked(manager);
        slog::debug!(log, "connected"; "schema_version" => migration::SCHEMA_VERSION);
        Ok(DataStore { pool, log, last_connection_error: sink.last, notifications })
    }

    /// Checks `opctx` for `action`, then takes a connection from the pool.
    ///
    /// This is the only way to a connection: every datastore method goes
    /// through it, so authorization always happens first.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (nothing is touched), or [`Error::Pool`].
    pub async fn pool_connection_authorized(
        &self,
        opctx: &OpContext,
        action: Action,
    ) -> Result<PooledConnection<'_>, Error> {
        opctx.authorize(action)?;
        self.pool.get().await.map_err(|source| Error::Pool {
            source,
            last_connection_error: self.last_connection_error.lock().unwrap().clone(),
        })
    }

    /// The schema version recorded in the database.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`], [`Error::Pool`] or a database error.
    pub async fn schema_version(&self, opctx: &OpContext) -> Result<Option<i64>, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        migration::read_schema_version(&mut conn).await
    }

    /// Whether publishing notifies listeners on
    /// [`sitrep::insert::SITREP_NOTIFY_CHANNEL`].
    pub fn notifications_supported(&self) -> bool {
        self.notifications
    }

    /// The datastore's logger.
    pub fn log(&self) -> &slog::Logger {
        &self.log
    }
}

diesel::define_sql_function! {
    /// The server's version string.
    fn version() -> diesel::sql_types::Text;
}

/// The server's version string (`SELECT version()`).
#[diesel::dsl::auto_type(no_type_alias)]
pub fn server_version_query() -> _ {
    let v: version = version();
    diesel::dsl::select(v)
}

/// Whether the server is CockroachDB (which accepts the same SQL as the
/// schema uses but has no LISTEN/NOTIFY).
async fn is_cockroachdb(conn: &mut AsyncPgConnection) -> Result<bool, Error> {
    use diesel_async::RunQueryDsl;
    let text: String = server_version_query()
        .get_result(conn)
        .await
        .map_err(|e| Error::database("reading the server version", e))?;
    Ok(text.contains("CockroachDB"))
}

/// Opens one connection. Unlike diesel-async's own `establish`, a failure
/// keeps the whole cause ("error connecting to server: No such file or
/// directory"), not just its first line.
pub async fn establish_connection(url: String) -> diesel::ConnectionResult<AsyncPgConnection> {
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(crate::error::error_chain(&e)))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits_are_checked() {
        assert!(matches!(page_limit(0), Err(Error::InvalidArgument(_))));
        assert!(matches!(page_limit(MAX_PAGE_LIMIT + 1), Err(Error::InvalidArgument(_))));
        assert_eq!(page_limit(1).unwrap(), 1);
        assert_eq!(page_limit(MAX_PAGE_LIMIT).unwrap(), i64::from(MAX_PAGE_LIMIT));
    }
}

/// Logs the pool's connection failures and remembers the last one.
#[derive(Clone, Debug)]
struct ConnectionErrorSink {
    log: slog::Logger,
    last: Arc<Mutex<Option<String>>>,
}

impl bb8::ErrorSink<PoolError> for ConnectionErrorSink {
    fn sink(&self, error: PoolError) {
        slog::warn!(self.log, "database connection failed"; "error" => %error);
        *self.last.lock().unwrap() = Some(error.to_string());
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(self.clone())
    }
}

pub mod alert;
pub mod debug;
pub mod executor_status;
pub mod rendezvous;
pub mod resource;
pub mod sitrep;
pub mod support_bundle;
pub mod sweep;
