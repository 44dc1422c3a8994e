//! Finding and opening the database.
//!
//! The URL comes from `--db-url` or `FM_DB_URL`; without either, fmdb looks
//! for the embedded database of an `fmd` running in `--data-dir` (fmd keeps
//! its PostgreSQL in `DIR/postgres` and the server records its socket in
//! `postmaster.pid`). fmdb never starts or migrates a database, and refuses
//! one whose schema version is not its own.
//!
//! Reads connect with `default_transaction_read_only=on`
//! ([`read_only_url`]): every transaction of the session, including those
//! the datastore opens itself, is read-only at the server, which refuses
//! any write with SQLSTATE 25006 (`read_only_sql_transaction`).

use crate::{CliError, Context, Exit};
use fm_db_queries::datastore::{PoolConfig, PooledConnection};
use fm_db_queries::migration::SCHEMA_VERSION;
use fm_db_queries::{Action, DataStore, OpContext, Role};
use std::path::Path;
use std::time::Duration;

/// Whether a command may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Every transaction read-only at the server; the viewer role.
    ReadOnly,
    /// Writes allowed (only with `-w/--destructive`); the operator role.
    Operator,
}

/// The PostgreSQL startup option that makes every transaction of the
/// session read-only.
pub const READ_ONLY_OPTION: &str = "-c default_transaction_read_only=on";

/// `url` with [`READ_ONLY_OPTION`] added, in either connection-string form
/// (a `postgresql://` URL or `key=value` pairs).
pub fn read_only_url(url: &str) -> String {
    let url = url.trim();
    if url.starts_with("postgresql://") || url.starts_with("postgres://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-c%20default_transaction_read_only%3Don")
    } else {
        format!("{url} options='{READ_ONLY_OPTION}'")
    }
}

/// A database opened for a command.
pub struct Db {
    /// The datastore (its every connection read-only for reads).
    pub datastore: DataStore,
    /// The operation context: viewer for reads, operator for writes.
    pub opctx: OpContext,
}

impl Db {
    /// A connection for reading, with the context's authorization checked.
    ///
    /// # Errors
    ///
    /// When the pool has no connection to give.
    pub async fn conn(&self) -> Result<PooledConnection<'_>, CliError> {
        self.datastore
            .pool_connection_authorized(&self.opctx, Action::Read)
            .await
            .map_err(|e| CliError::database("taking a database connection", &e))
    }
}

/// Where the URL came from, for messages.
fn resolve_url(ctx: &Context) -> Result<(String, String), CliError> {
    if let Some(url) = &ctx.global.db_url {
        return Ok((
            url.clone(),
            "from --db-url / FM_DB_URL; check the URL and that the server is running".to_string(),
        ));
    }
    let cluster = ctx.global.data_dir.join(nexus_fm::fmd::EMBEDDED_CLUSTER_DIR);
    let how = format!(
        "pass --db-url URL (or set FM_DB_URL), or start fmd's embedded database with \
         `fmd --data-dir {}` (fmdb never starts one)",
        ctx.global.data_dir.display()
    );
    let Some(url) = embedded_url(&cluster) else {
        return Err(CliError::new(
            Exit::Unreachable,
            format!(
                "no database given and no embedded database running in {}: {how}",
                cluster.display()
            ),
        ));
    };
    Ok((url, format!("the embedded database in {}; {how}", cluster.display())))
}

/// The URL of the embedded database in `cluster_dir`, from the server's
/// `postmaster.pid` (line 4: port, line 5: socket directory), if the file
/// is there.
pub fn embedded_url(cluster_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(cluster_dir.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let port: u16 = lines.get(3)?.trim().parse().ok()?;
    let socket_dir = lines.get(4)?.trim();
    if socket_dir.is_empty() {
        return None;
    }
    Some(fm_embedded_pg::url::socket_url(Path::new(socket_dir), port, nexus_fm::embedded::DATABASE))
}

/// Opens the database for a command: connects, checks the schema version,
/// and makes the operation context.
///
/// # Errors
///
/// [`Exit::Unreachable`] when no connection can be made (saying what to
/// do), [`Exit::SchemaVersion`] naming both versions.
pub async fn open(ctx: &Context, access: Access) -> Result<Db, CliError> {
    let (url, source) = resolve_url(ctx)?;
    open_url(ctx, &url, &source, access).await
}

/// [`open`] on a given URL; `source` says where it came from.
///
/// # Errors
///
/// As [`open`].
pub async fn open_url(
    ctx: &Context,
    url: &str,
    source: &str,
    access: Access,
) -> Result<Db, CliError> {
    let connect_url = match access {
        Access::ReadOnly => read_only_url(url),
        Access::Operator => url.to_string(),
    };
    let config = PoolConfig { max_size: 2, connection_timeout: Duration::from_secs(10) };
    let datastore = match DataStore::new(&ctx.log, &connect_url, config).await {
        Ok(datastore) => datastore,
        Err(fm_db_queries::Error::SchemaVersion { found, expected }) => {
            return Err(schema_error(found, expected));
        }
        Err(fm_db_queries::Error::Connect(cause)) => {
            return Err(CliError::new(
                Exit::Unreachable,
                format!(
                    "cannot connect to the database: {} ({source})",
                    fm_db_queries::error::error_chain(&cause)
                ),
            ));
        }
        Err(e) => return Err(CliError::database("opening the database", &e)),
    };
    let (actor, role) = match access {
        Access::ReadOnly => ("fmdb", Role::Viewer),
        Access::Operator => ("fmdb-operator", Role::Operator),
    };
    let opctx = OpContext::new(ctx.log.clone(), actor, role);
    Ok(Db { datastore, opctx })
}

fn schema_error(found: Option<i64>, expected: i64) -> CliError {
    debug_assert_eq!(expected, i64::from(SCHEMA_VERSION));
    let message = match found {
        None => format!(
            "the database has no fault-management schema (no schema version; fmdb expects \
             version {expected}): prepare it with `fmd migrate --db-url URL` (fmdb never migrates)"
        ),
        Some(found) if found > expected => format!(
            "the database's schema version {found} is newer than this fmdb's version \
             {expected}: use the fmdb built with the software that migrated it"
        ),
        Some(found) => format!(
            "the database's schema version {found} is older than this fmdb's version \
             {expected}: migrate it with `fmd migrate --db-url URL` (fmdb never migrates)"
        ),
    };
    CliError::new(Exit::SchemaVersion, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_urls() {
        assert_eq!(
            read_only_url("postgresql://postgres@/fm?host=/tmp/x&port=5"),
            "postgresql://postgres@/fm?host=/tmp/x&port=5\
             &options=-c%20default_transaction_read_only%3Don"
        );
        assert_eq!(
            read_only_url("postgres://u@h/fm"),
            "postgres://u@h/fm?options=-c%20default_transaction_read_only%3Don"
        );
    }

    #[test]
    fn the_embedded_url_comes_from_postmaster_pid() {
        let dir = std::env::temp_dir().join(format!("fmdb-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(embedded_url(&dir), None, "no postmaster.pid: no server");
        // The layout PostgreSQL writes: pid, data dir, start time, port,
        // socket directory, listen address, shared memory key, status.
        std::fs::write(
            dir.join("postmaster.pid"),
            "4242\n/x/.fm/postgres\n1700000000\n5432\n/dev/shm/fm-pg-abc\n\n  0  0\nready   \n",
        )
        .unwrap();
        assert_eq!(
            embedded_url(&dir).as_deref(),
            Some("postgresql://postgres@/fm?host=/dev/shm/fm-pg-abc&port=5432")
        );
        std::fs::write(dir.join("postmaster.pid"), "4242\n").unwrap();
        assert_eq!(embedded_url(&dir), None, "a truncated file is no server");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
