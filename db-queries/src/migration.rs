//! The schema: `schema/dbinit.sql`, the migrations under `schema/migrations/`,
//! and the runner that applies pending migrations in order.
//!
//! A migration is a directory `NNNN-name` of files `upN.sql`, each holding one
//! idempotent DDL statement, so a runner interrupted half-way can simply run
//! again. The build script embeds them all; versions run 1, 2, 3, ... and the
//! newest is [`SCHEMA_VERSION`], the only version this software runs against.
//!
//! Runners never interleave: [`apply_migrations`] holds a session-level
//! PostgreSQL advisory lock ([`MIGRATION_LOCK_KEY`]) for its whole run and
//! reads the version only once it holds it, so of several `fmd` processes
//! starting at once on an empty database one migrates and the others, once
//! it is done, find the schema current.

use crate::db_schema::db_metadata;
use crate::error::{DieselResultExt, Error};
use diesel::dsl::{exists, select};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use std::fmt;

/// The whole current schema, as one script of idempotent statements ending
/// with the schema-version row.
pub const DBINIT_SQL: &str = include_str!("../../schema/dbinit.sql");

/// One `upN.sql` file of a migration.
#[derive(Debug)]
pub struct MigrationStep {
    /// File name, e.g. `up01.sql`.
    pub file: &'static str,
    /// Its SQL: exactly one statement.
    pub sql: &'static str,
}

/// One migration directory.
#[derive(Debug)]
pub struct MigrationSource {
    /// The schema version this migration produces.
    pub version: u32,
    /// The name part of the directory (`NNNN-name`).
    pub name: &'static str,
    /// The steps, in the order they are applied.
    pub steps: &'static [MigrationStep],
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[MigrationSource] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The schema version this software is built for: the newest migration's.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const _: () = assert!(SCHEMA_VERSION >= 1, "there must be at least one migration");

/// What [`apply_migrations`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version found before running (0 for an empty database).
    pub from: u32,
    /// The version the database is at now.
    pub to: u32,
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "schema already at version {}", self.to)
        } else if self.from == 0 {
            write!(f, "schema created at version {}", self.to)
        } else {
            write!(f, "schema migrated from version {} to {}", self.from, self.to)
        }
    }
}

/// Reads the schema version recorded in the database.
///
/// Returns `None` when the database has no `db_metadata` table or no row in
/// it (an empty database, or one whose first migration was interrupted).
///
/// # Errors
///
/// A database error, with context.
pub async fn read_schema_version(conn: &mut AsyncPgConnection) -> Result<Option<i64>, Error> {
    // Look the table up in the catalog first, so that a database without it
    // gives a clear answer rather than "relation does not exist".
    let has_table: bool = db_metadata_exists_query()
        .get_result(conn)
        .await
        .context("looking for the db_metadata table")?;
    if !has_table {
        return Ok(None);
    }
    schema_version_query().get_result(conn).await.optional().context("reading the schema version")
}

/// Whether the `db_metadata` table exists in the current schema.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn db_metadata_exists_query() -> _ {
    let current: current_schema = current_schema();
    select(exists(
        information_schema_tables::table
            .filter(information_schema_tables::table_schema.eq(current))
            .filter(information_schema_tables::table_name.eq("db_metadata")),
    ))
}

/// The recorded schema version.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn schema_version_query() -> _ {
    db_metadata::table.filter(db_metadata::singleton.eq(true)).select(db_metadata::version)
}

/// Fails unless the database is at exactly [`SCHEMA_VERSION`].
///
/// # Errors
///
/// [`Error::SchemaVersion`] naming the version found and the one expected.
pub async fn check_schema_version(conn: &mut AsyncPgConnection) -> Result<(), Error> {
    let found = read_schema_version(conn).await?;
    if found == Some(i64::from(SCHEMA_VERSION)) {
        Ok(())
    } else {
        Err(Error::SchemaVersion { found, expected: i64::from(SCHEMA_VERSION) })
    }
}

/// The key of the session-level advisory lock that serializes migration
/// runners on one database (the bytes of `fm_migra`). Advisory locks are
/// per database, so runners on different databases never wait for each
/// other.
pub const MIGRATION_LOCK_KEY: i64 = 0x666d_5f6d_6967_7261;

/// Applies every migration newer than the database's version, in order, and
/// records each new version as it completes.
///
/// The whole run holds the migration advisory lock on `conn`'s session, and
/// the version is read under it: concurrent runners (several `fmd` starting
/// at once) wait for each other instead of interleaving their steps, and
/// each sees the version the previous one left. The lock is released before
/// this returns, whatever the outcome (and by the server if the connection
/// dies).
///
/// Each step runs as its own statement; steps are idempotent, so running this
/// again after an interruption finishes the job.
///
/// # Errors
///
/// [`Error::SchemaVersion`] if the database is newer than this software;
/// [`Error::Migration`] naming the step that failed.
pub async fn apply_migrations(
    conn: &mut AsyncPgConnection,
    log: &slog::Logger,
) -> Result<MigrationReport, Error> {
    migration_lock_query()
        .execute(conn)
        .await
        .context("taking the migration lock (pg_advisory_lock)")?;
    let result = apply_migrations_locked(conn, log).await;
    let unlocked: Result<bool, Error> = migration_unlock_query()
        .get_result(conn)
        .await
        .context("releasing the migration lock (pg_advisory_unlock)");
    match unlocked {
        Ok(true) => {}
        // The lock was taken above on this session, so this cannot happen;
        // if it does, the lock goes with the session anyway.
        Ok(false) => slog::warn!(log, "the migration lock was not held when releasing it"),
        // A failed run's error matters more than a failed release, which
        // the server makes good when the connection closes.
        Err(error) if result.is_err() => slog::warn!(log, "releasing the migration lock failed";
            "error" => crate::error::error_chain(&error)),
        Err(error) => return Err(error),
    }
    result
}

/// [`apply_migrations`] once the lock is held.
async fn apply_migrations_locked(
    conn: &mut AsyncPgConnection,
    log: &slog::Logger,
) -> Result<MigrationReport, Error> {
    let found = read_schema_version(conn).await?.unwrap_or(0);
    let from = u32::try_from(found)
        .ok()
        .filter(|v| *v <= SCHEMA_VERSION)
        .ok_or(Error::SchemaVersion { found: Some(found), expected: i64::from(SCHEMA_VERSION) })?;

    for migration in MIGRATIONS.iter().filter(|m| m.version > from) {
        let version = i64::from(migration.version);
        slog::info!(log, "applying schema migration";
            "version" => migration.version, "name" => migration.name,
            "steps" => migration.steps.len());
        if migration.version > 1 {
            target_version_update_query(version)
                .execute(conn)
                .await
                .context(format_args!("recording target version {version}"))?;
        }
        for step in migration.steps {
            conn.batch_execute(step.sql).await.map_err(|e| {
                Error::Migration(format!(
                    "{:04}-{}/{}: {e}",
                    migration.version, migration.name, step.file
                ))
            })?;
        }
        record_version(conn, version).await?;
    }

    let to = read_schema_version(conn).await?.unwrap_or(0);
    if to != i64::from(SCHEMA_VERSION) {
        return Err(Error::Migration(format!(
            "after migrating, the database reports version {to}, not {SCHEMA_VERSION}"
        )));
    }
    Ok(MigrationReport { from, to: SCHEMA_VERSION })
}

async fn record_version(conn: &mut AsyncPgConnection, version: i64) -> Result<(), Error> {
    let now = nexus_fm_types::time::now();
    if version == 1 {
        first_version_insert_query(now)
            .execute(conn)
            .await
            .context("recording schema version 1")?;
    } else {
        version_update_query(version, now)
            .execute(conn)
            .await
            .context(format_args!("recording schema version {version}"))?;
    }
    Ok(())
}

/// Waits for and takes the session-level migration advisory lock.
///
/// `pg_advisory_lock` returns `void`, which diesel has no type for, so this
/// is a `sql_query` with the key as a bind parameter; it is only executed,
/// never loaded.
pub fn migration_lock_query() -> impl crate::WriteQuery {
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK_KEY)
}

/// Releases the session-level migration advisory lock; `true` if it was held.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn migration_unlock_query() -> _ {
    let key: i64 = MIGRATION_LOCK_KEY;
    select(pg_advisory_unlock(key))
}

/// Records that a migration to `version` is under way.
pub fn target_version_update_query(version: i64) -> impl crate::WriteQuery {
    diesel::update(db_metadata::table)
        .filter(db_metadata::singleton.eq(true))
        .filter(db_metadata::version.eq(version - 1))
        .set(db_metadata::target_version.eq(Some(version)))
}

/// Writes the schema-version row of version 1 (the first migration creates
/// the table).
pub fn first_version_insert_query(now: chrono::DateTime<chrono::Utc>) -> impl crate::WriteQuery {
    diesel::insert_into(db_metadata::table)
        .values((
            db_metadata::singleton.eq(true),
            db_metadata::version.eq(1),
            db_metadata::target_version.eq(None::<i64>),
            db_metadata::time_created.eq(now),
            db_metadata::time_modified.eq(now),
        ))
        .on_conflict(db_metadata::singleton)
        .do_nothing()
}

/// Moves the schema-version row from `version - 1` to `version`.
pub fn version_update_query(
    version: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> impl crate::WriteQuery {
    diesel::update(db_metadata::table)
        .filter(db_metadata::singleton.eq(true))
        .filter(db_metadata::version.eq(version - 1))
        .set((
            db_metadata::version.eq(version),
            db_metadata::target_version.eq(None::<i64>),
            db_metadata::time_modified.eq(now),
        ))
}

diesel::define_sql_function! {
    /// PostgreSQL's `current_schema()`.
    fn current_schema() -> diesel::sql_types::Text;
}

diesel::define_sql_function! {
    /// PostgreSQL's `pg_advisory_unlock(key)`: releases a session-level
    /// advisory lock, `true` if it was held.
    fn pg_advisory_unlock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

diesel::table! {
    /// The part of `information_schema.tables` the runner reads.
    information_schema.tables (table_schema, table_name) {
        /// Schema of the table.
        table_schema -> Text,
        /// Name of the table.
        table_name -> Text,
    }
}
use tables as information_schema_tables;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_contiguous_and_steps_single_statements() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(!m.steps.is_empty());
            for step in m.steps {
                let statements = count_statements(step.sql);
                assert_eq!(
                    statements, 1,
                    "{:04}-{}/{} must hold exactly one statement, has {statements}",
                    m.version, m.name, step.file
                );
            }
        }
    }

    #[test]
    fn dbinit_records_the_latest_version() {
        let last = DBINIT_SQL.trim_end().rsplit(';').nth(1).unwrap();
        assert!(last.contains("INSERT INTO db_metadata"), "the version row must come last");
        assert!(
            last.contains(&format!("VALUES (true, {SCHEMA_VERSION}, NULL")),
            "dbinit.sql must record version {SCHEMA_VERSION}: {last}"
        );
    }

    #[test]
    fn statement_counter_ignores_quoted_semicolons() {
        assert_eq!(count_statements("COMMENT ON TABLE t IS 'a; b';\n"), 1);
        assert_eq!(count_statements("SELECT 1; SELECT 2;"), 2);
        assert_eq!(count_statements("-- x; y\nSELECT 1"), 1);
    }

    /// Counts SQL statements, ignoring semicolons in quotes and comments.
    fn count_statements(sql: &str) -> usize {
        let mut count = 0;
        let mut pending = false;
        let mut chars = sql.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    pending = true;
                    for q in chars.by_ref() {
                        if q == '\'' {
                            break;
                        }
                    }
                }
                '-' if chars.peek() == Some(&'-') => {
                    for q in chars.by_ref() {
                        if q == '\n' {
                            break;
                        }
                    }
                }
                ';' => {
                    if pending {
                        count += 1;
                    }
                    pending = false;
                }
                c if c.is_whitespace() => {}
                _ => pending = true,
            }
        }
        count + usize::from(pending)
    }
}
