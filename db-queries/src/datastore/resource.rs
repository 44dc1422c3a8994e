//! One abstraction over the resources fault management creates: alerts and
//! support bundles (CONVENTIONS, "Resources"; docs/design.md, "Deleting a
//! resource").
//!
//! Both are the same idea: a row with provenance that an operator's delete
//! turns into a tombstone, that readers never show, that the guarded
//! creation never re-creates and that the sweep eventually removes. What is
//! the same for both is written here once, against [`FmResource`]:
//!
//! - the delete transaction ([`DataStore::resource_delete`]): read the live
//!   row, then exactly one write, a tombstone for an FM-created row or a
//!   hard delete for anything else, in one `transaction_retry`;
//! - the conversion of rows that a tombstone-free query returned
//!   ([`live`]): a tombstone never leaves a live reader;
//! - the readers (get, get including deleted, list, list by case) and their
//!   not-found and bad-row errors;
//! - the readers' statements and their `time_deleted IS NULL` filter
//!   ([`fm_resource_queries!`], [`fm_resource_page_statements!`]), which
//!   each resource's module instantiates over its own diesel table so that
//!   every statement stays a concrete, catalogued `*_query` function;
//! - the names the hand-built SQL of the guarded creation and the sweep
//!   uses ([`ResourceTables`]), every one taken from the diesel `table!`
//!   definitions ([`table_name!`], [`column_name!`]), so a misspelt table or
//!   column fails to build.
//!
//! A resource type is a small struct implementing [`FmResource`] (see
//! [`super::alert::Alerts`] and [`super::support_bundle::SupportBundles`]),
//! one arm in [`resource_tables`], and a migration.

use crate::context::{Action, OpContext};
use crate::datastore::{DataStore, page_limit};
use crate::error::Error;
use crate::transaction::{TransactionError, transaction_retry};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use nexus_fm_types::ResourceType;
use nexus_fm_types::ids::{CaseUuid, SitrepUuid};
use nexus_fm_types::{Generation, GenerationError};
use std::fmt;
use std::future::Future;
use uuid::Uuid;

/// The name of a table of [`crate::db_schema`], checked at compile time:
/// the expansion refers to the table's module, so a misspelt name fails to
/// build.
macro_rules! table_name {
    ($table:ident) => {{
        #[allow(unused_imports)]
        use $crate::db_schema::$table::table as _;
        stringify!($table)
    }};
}
pub(crate) use table_name;

/// The name of a column of [`crate::db_schema`], from its diesel
/// definition (`diesel::Column::NAME`).
macro_rules! column_name {
    ($table:ident :: $column:ident) => {
        <$crate::db_schema::$table::$column as diesel::Column>::NAME
    };
}
pub(crate) use column_name;

/// Where a resource created by fault management came from. Resources
/// created any other way have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FmProvenance {
    /// The case that requested the resource.
    pub case_id: CaseUuid,
    /// The sitrep the creating executor was executing.
    pub sitrep_id: SitrepUuid,
    /// That sitrep's generation for the resource's type.
    pub generation: Generation,
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deleted {
    /// The resource was created by fault management: it was soft-deleted
    /// (`time_deleted` set), and the tombstone keeps any executor from
    /// creating it again until the sweep may remove it.
    Tombstoned,
    /// The resource was not created by fault management: its row was
    /// removed.
    Removed,
}

/// A resource as the debug readers show it: possibly a tombstone.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IncludingDeleted<T> {
    /// The resource.
    pub resource: T,
    /// When an operator deleted it, or `None` while it is live.
    pub time_deleted: Option<DateTime<Utc>>,
}

/// A row of `alert` or `support_bundle` that the domain types refuse.
/// The schema's CHECK constraints make these impossible unless the schema
/// and this code disagree.
#[derive(Debug, thiserror::Error)]
pub enum BadResourceRow {
    /// Some provenance columns are set and others are not.
    #[error("its provenance is incomplete (fm_case_id, fm_sitrep_id, fm_generation)")]
    IncompleteProvenance,
    /// `fm_generation` is below 1.
    #[error(transparent)]
    Generation(#[from] GenerationError),
    /// `support_bundle.state` holds a value this software does not know.
    #[error("unknown support bundle state {0:?}")]
    UnknownState(String),
}

/// The provenance of a row from its three columns.
///
/// # Errors
///
/// [`BadResourceRow`] when only some are set, or the generation is below 1.
pub fn provenance_from_columns(
    case_id: Option<Uuid>,
    sitrep_id: Option<Uuid>,
    generation: Option<i64>,
) -> Result<Option<FmProvenance>, BadResourceRow> {
    match (case_id, sitrep_id, generation) {
        (None, None, None) => Ok(None),
        (Some(case_id), Some(sitrep_id), Some(generation)) => Ok(Some(FmProvenance {
            case_id: CaseUuid::from_untyped(case_id),
            sitrep_id: SitrepUuid::from_untyped(sitrep_id),
            generation: Generation::try_new(generation)?,
        })),
        _ => Err(BadResourceRow::IncompleteProvenance),
    }
}

/// The SQL names of one resource type that the hand-built statements (the
/// guarded creation and the sweep) use. Build it with [`table_name!`] and
/// [`column_name!`] only.
#[derive(Debug)]
pub struct ResourceTables {
    /// The resource table, e.g. `alert`.
    pub table: &'static str,
    /// Its primary key.
    pub id: &'static str,
    /// Its creation time.
    pub time_created: &'static str,
    /// Its tombstone time.
    pub time_deleted: &'static str,
    /// Provenance: the requesting case.
    pub fm_case_id: &'static str,
    /// Provenance: the creating sitrep.
    pub fm_sitrep_id: &'static str,
    /// Provenance: the generation it was created at.
    pub fm_generation: &'static str,
    /// The resource's text column, copied from [`Self::request_text`].
    pub text_column: &'static str,
    /// The resource's JSON column, copied from [`Self::request_json`].
    pub json_column: &'static str,
    /// Columns the guarded creation sets to a constant, with the constant
    /// (a value this code defines, e.g. a bundle's initial state), in
    /// column order.
    pub creation_constants: &'static [(&'static str, &'static str)],
    /// This type's generation column in `fm_sitrep`.
    pub sitrep_generation: &'static str,
    /// The request table, e.g. `fm_alert_request`.
    pub request_table: &'static str,
    /// Its sitrep column (first key column).
    pub request_sitrep_id: &'static str,
    /// Its id column (second key column): the id of the resource to create.
    pub request_id: &'static str,
    /// Its case column.
    pub request_case_id: &'static str,
    /// The request column copied into [`Self::text_column`].
    pub request_text: &'static str,
    /// The request column copied into [`Self::json_column`].
    pub request_json: &'static str,
    /// This type's value of `fm_collected_resource.resource_type` (the
    /// serde name of its [`ResourceType`]; a unit test checks it).
    pub collected_type: &'static str,
}

/// The SQL names of `resource`'s tables: the one place that maps the
/// run-time [`ResourceType`] to an [`FmResource`].
pub fn resource_tables(resource: ResourceType) -> &'static ResourceTables {
    match resource {
        ResourceType::Alert => &<super::alert::Alerts as FmResource>::TABLES,
        ResourceType::SupportBundle => {
            &<super::support_bundle::SupportBundles as FmResource>::TABLES
        }
    }
}

/// A resource that fault management creates from sitrep requests, with
/// provenance and tombstones. Implemented by a small per-type struct; the
/// statements are that type's concrete, catalogued `*_query` functions,
/// and everything done with them (transactions, checks, conversions, error
/// mapping) is written once against this trait.
pub trait FmResource: Send + Sync + 'static {
    /// The diesel row.
    type Row: Send + 'static;
    /// The typed id.
    type Id: Copy + fmt::Display + Send + Sync + 'static;
    /// The domain type every live reader returns.
    type Resource: Send + 'static;

    /// The resource type.
    const TYPE: ResourceType;
    /// Its name in messages, e.g. `alert` (as in "alert … not found").
    const WHAT: &'static str;
    /// The plural, e.g. `alerts`.
    const WHAT_PLURAL: &'static str;
    /// The name of its delete transaction, e.g. `alert_delete`.
    const DELETE_TRANSACTION: &'static str;
    /// Its SQL names, from the diesel schema.
    const TABLES: ResourceTables;

    /// The id at the database edge.
    fn untyped(id: Self::Id) -> Uuid;
    /// A row's id.
    fn row_id(row: &Self::Row) -> Uuid;
    /// Whether fault management created the row (its provenance is set).
    fn row_is_fm_created(row: &Self::Row) -> bool;
    /// Converts a row, tombstone or not.
    ///
    /// # Errors
    ///
    /// [`BadResourceRow`] for a row the domain type refuses.
    fn from_row(row: Self::Row) -> Result<IncludingDeleted<Self::Resource>, BadResourceRow>;

    /// Runs the type's live-row lookup (`time_deleted IS NULL`).
    fn get_live(
        conn: &mut AsyncPgConnection,
        id: Uuid,
    ) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send;
    /// Runs the type's lookup that also sees a tombstone.
    fn get_including_deleted(
        conn: &mut AsyncPgConnection,
        id: Uuid,
    ) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send;
    /// Runs one keyset page of live rows in id order.
    fn page(
        conn: &mut AsyncPgConnection,
        after: Option<Uuid>,
        limit: i64,
    ) -> impl Future<Output = QueryResult<Vec<Self::Row>>> + Send;
    /// Runs one keyset page of one case's live rows in id order.
    fn page_by_case(
        conn: &mut AsyncPgConnection,
        case_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> impl Future<Output = QueryResult<Vec<Self::Row>>> + Send;
    /// Runs the tombstoning of one live FM-created row; the rows changed.
    fn tombstone(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// Runs the hard delete of one live row FM did not create; the rows
    /// changed.
    fn hard_delete(
        conn: &mut AsyncPgConnection,
        id: Uuid,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
}

/// The "no such live resource" error.
pub(crate) fn not_found<R: FmResource>(id: R::Id) -> Error {
    Error::NotFound { what: R::WHAT, id: id.to_string() }
}

/// The "the database holds a row the domain types refuse" error.
fn bad_row<R: FmResource>(id: impl fmt::Display, source: BadResourceRow) -> Error {
    Error::BadData { context: format!("reading {} {id}", R::WHAT), source: Box::new(source) }
}

/// Converts a row that a tombstone-free query returned. A tombstone here
/// means the query did not state `time_deleted IS NULL`, which must never
/// reach a caller: it is an error, not a result.
///
/// # Errors
///
/// [`Error::BadData`] for a tombstone or a row the domain type refuses.
pub(crate) fn live<R: FmResource>(row: R::Row) -> Result<R::Resource, Error> {
    let id = R::row_id(&row);
    let found = R::from_row(row).map_err(|e| bad_row::<R>(id, e))?;
    match found.time_deleted {
        None => Ok(found.resource),
        Some(_) => Err(Error::BadData {
            context: format!("reading {} {id}", R::WHAT),
            source: format!("a reader of live {} returned a tombstone", R::WHAT_PLURAL).into(),
        }),
    }
}

/// A single-row lookup's result, `None` when no row was found.
pub(crate) async fn optional<T>(
    lookup: impl Future<Output = QueryResult<T>> + Send,
) -> QueryResult<Option<T>> {
    diesel::OptionalExtension::optional(lookup.await)
}

/// [`live`] for every row of a page.
pub(crate) fn live_rows<R: FmResource>(rows: Vec<R::Row>) -> Result<Vec<R::Resource>, Error> {
    rows.into_iter().map(live::<R>).collect()
}

/// A transaction's "the row changed under us" abort. Serializable execution
/// makes it impossible; it exists so that a broken assumption fails loudly
/// and rolls back instead of reporting success.
pub(crate) fn unexpected_row_count(what: String, count: usize) -> TransactionError {
    TransactionError::Abort(Error::BadData {
        context: what,
        source: format!("expected to change exactly one row, changed {count}").into(),
    })
}

/// Inside a transaction: the live row of `id`, or an abort with
/// [`Error::NotFound`].
pub(crate) async fn live_row_in_txn<R: FmResource>(
    conn: &mut AsyncPgConnection,
    id: R::Id,
) -> Result<R::Row, TransactionError> {
    R::get_live(conn, R::untyped(id))
        .await?
        .ok_or_else(|| TransactionError::Abort(not_found::<R>(id)))
}

/// The delete transaction's body: read the live row, then exactly one
/// write. A row FM created becomes a tombstone, so that no executor creates
/// it again until the sweep may remove it (docs/design.md, "The sweep");
/// anything else is removed outright. Both writes restate the condition
/// they were chosen by (live, and FM-created or not), and anything but one
/// changed row aborts.
async fn resource_delete_in_txn<R: FmResource>(
    conn: &mut AsyncPgConnection,
    id: R::Id,
) -> Result<Deleted, TransactionError> {
    let row = live_row_in_txn::<R>(conn, id).await?;
    let (outcome, changed) = if R::row_is_fm_created(&row) {
        let at = nexus_fm_types::time::now();
        (Deleted::Tombstoned, R::tombstone(conn, R::untyped(id), at).await?)
    } else {
        (Deleted::Removed, R::hard_delete(conn, R::untyped(id)).await?)
    };
    if changed != 1 {
        return Err(unexpected_row_count(format!("deleting {} {id}", R::WHAT), changed));
    }
    Ok(outcome)
}

impl DataStore {
    /// One live resource. The public `*_get` methods wrap it.
    pub(crate) async fn resource_get<R: FmResource>(
        &self,
        opctx: &OpContext,
        id: R::Id,
    ) -> Result<R::Resource, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let row = R::get_live(&mut conn, R::untyped(id))
            .await
            .map_err(|e| Error::database(format_args!("reading {} {id}", R::WHAT), e))?;
        live::<R>(row.ok_or_else(|| not_found::<R>(id))?)
    }

    /// One resource including a tombstone (debug tooling). The public
    /// `*_get_including_deleted` methods wrap it.
    pub(crate) async fn resource_get_including_deleted<R: FmResource>(
        &self,
        opctx: &OpContext,
        id: R::Id,
    ) -> Result<IncludingDeleted<R::Resource>, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let row = R::get_including_deleted(&mut conn, R::untyped(id))
            .await
            .map_err(|e| Error::database(format_args!("reading {} {id}", R::WHAT), e))?
            .ok_or_else(|| not_found::<R>(id))?;
        R::from_row(row).map_err(|e| bad_row::<R>(id, e))
    }

    /// One page of live resources in id order. The public `*_list` methods
    /// wrap it.
    pub(crate) async fn resource_list<R: FmResource>(
        &self,
        opctx: &OpContext,
        after: Option<R::Id>,
        limit: u32,
    ) -> Result<Vec<R::Resource>, Error> {
        let limit = page_limit(limit)?;
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let rows = R::page(&mut conn, after.map(R::untyped), limit)
            .await
            .map_err(|e| Error::database(format_args!("listing {}", R::WHAT_PLURAL), e))?;
        live_rows::<R>(rows)
    }

    /// One page of one case's live resources in id order. The public
    /// `*_list_by_case` methods wrap it.
    pub(crate) async fn resource_list_by_case<R: FmResource>(
        &self,
        opctx: &OpContext,
        case_id: CaseUuid,
        after: Option<R::Id>,
        limit: u32,
    ) -> Result<Vec<R::Resource>, Error> {
        let limit = page_limit(limit)?;
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let rows = R::page_by_case(&mut conn, case_id.into_untyped(), after.map(R::untyped), limit)
            .await
            .map_err(|e| {
                Error::database(format_args!("listing the {} of case {case_id}", R::WHAT_PLURAL), e)
            })?;
        live_rows::<R>(rows)
    }

    /// Deletes a resource (operator only): the row is read and then written
    /// exactly once, in one serializable transaction (see
    /// [`resource_delete_in_txn`]). The public `*_delete` methods wrap it.
    pub(crate) async fn resource_delete<R: FmResource>(
        &self,
        opctx: &OpContext,
        id: R::Id,
    ) -> Result<Deleted, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::DeleteResource).await?;
        let done = transaction_retry(&mut conn, &opctx.log, R::DELETE_TRANSACTION, |conn| {
            Box::pin(resource_delete_in_txn::<R>(conn, id))
        })
        .await?;
        slog::info!(opctx.log, "{} deleted", R::WHAT;
            "resource" => %R::TYPE, "id" => %id, "outcome" => ?done.value);
        Ok(done.value)
    }
}

/// The statements every resource type has, instantiated over one diesel
/// table of [`crate::db_schema`] and its row type: the live lookup, the
/// lookup including a tombstone, the keyset pages of live rows (all, and
/// one case's), the tombstoning and the hard delete. Written once, so the
/// tombstone filter of every reader is stated in one place. The caller
/// names each function (the catalogue lists them by name) and has
/// `diesel::prelude::*` in scope; the page statements come from
/// [`fm_resource_page_statements!`] in the caller's `page_statements`
/// module.
macro_rules! fm_resource_queries {
    (
        table: $table:ident,
        row: $row:ident,
        what: $what:literal,
        get: $get:ident,
        get_including_deleted: $get_including_deleted:ident,
        page: $page:ident($first_page:ident, $after_page:ident),
        by_case_page: $by_case_page:ident($by_case_first:ident, $by_case_after:ident),
        tombstone: $tombstone:ident,
        hard_delete: $hard_delete:ident $(,)?
    ) => {
        #[doc = concat!("One live ", $what, ", by primary key.")]
        #[diesel::dsl::auto_type(no_type_alias)]
        pub fn $get(id: ::uuid::Uuid) -> _ {
            let columns: diesel::dsl::AsSelect<$row, diesel::pg::Pg> = $row::as_select();
            $table::table
                .filter($table::id.eq(id))
                .filter($table::time_deleted.is_null())
                .select(columns)
        }

        #[doc = concat!("One ", $what, " by primary key, live or a tombstone. Debug tooling only.")]
        #[diesel::dsl::auto_type(no_type_alias)]
        pub fn $get_including_deleted(id: ::uuid::Uuid) -> _ {
            let columns: diesel::dsl::AsSelect<$row, diesel::pg::Pg> = $row::as_select();
            $table::table.filter($table::id.eq(id)).select(columns)
        }

        #[doc = concat!("One page of live ", $what, " rows in id order, after `after` ")]
        /// (`None`: the first page, with no lower bound, so no id is skipped),
        /// by the primary key. The scan passes over tombstones in the page's id
        /// range; the sweep keeps their number bounded.
        pub fn $page(
            after: Option<::uuid::Uuid>,
            limit: i64,
        ) -> $crate::keyset::KeysetPage<page_statements::$first_page, page_statements::$after_page>
        {
            $crate::keyset::KeysetPage::new(
                after,
                || page_statements::$first_page(limit),
                |after| page_statements::$after_page(after, limit),
            )
        }

        #[doc = concat!("One page of the live ", $what, " rows that case `case_id` requested,")]
        /// in id order, after `after` (`None`: the first page).
        pub fn $by_case_page(
            case_id: ::uuid::Uuid,
            after: Option<::uuid::Uuid>,
            limit: i64,
        ) -> $crate::keyset::KeysetPage<
            page_statements::$by_case_first,
            page_statements::$by_case_after,
        > {
            $crate::keyset::KeysetPage::new(
                after,
                || page_statements::$by_case_first(case_id, limit),
                |after| page_statements::$by_case_after(case_id, after, limit),
            )
        }

        #[doc = concat!("Soft-deletes one live FM-created ", $what, " (sets `time_deleted`).")]
        #[diesel::dsl::auto_type(no_type_alias)]
        pub fn $tombstone(id: ::uuid::Uuid, at: chrono::DateTime<chrono::Utc>) -> _ {
            diesel::dsl::update(
                $table::table
                    .filter($table::id.eq(id))
                    .filter($table::time_deleted.is_null())
                    .filter($table::fm_case_id.is_not_null()),
            )
            .set($table::time_deleted.eq(at))
        }

        #[doc = concat!("Removes one live ", $what, " that fault management did not create.")]
        #[diesel::dsl::auto_type(no_type_alias)]
        pub fn $hard_delete(id: ::uuid::Uuid) -> _ {
            diesel::dsl::delete(
                $table::table
                    .filter($table::id.eq(id))
                    .filter($table::time_deleted.is_null())
                    .filter($table::fm_case_id.is_null()),
            )
        }
    };
}
pub(crate) use fm_resource_queries;

/// The statement methods of an [`FmResource`] impl, each running the
/// concrete query function of [`fm_resource_queries!`] that the caller
/// names. Invoked inside the impl block.
macro_rules! fm_resource_statements {
    (
        get: $get:ident,
        get_including_deleted: $get_including_deleted:ident,
        page: $page:ident,
        by_case_page: $by_case_page:ident,
        tombstone: $tombstone:ident,
        hard_delete: $hard_delete:ident $(,)?
    ) => {
        fn get_live(
            conn: &mut diesel_async::AsyncPgConnection,
            id: ::uuid::Uuid,
        ) -> impl std::future::Future<Output = diesel::QueryResult<Option<Self::Row>>> + Send {
            $crate::datastore::resource::optional($get(id).get_result(conn))
        }

        fn get_including_deleted(
            conn: &mut diesel_async::AsyncPgConnection,
            id: ::uuid::Uuid,
        ) -> impl std::future::Future<Output = diesel::QueryResult<Option<Self::Row>>> + Send {
            $crate::datastore::resource::optional($get_including_deleted(id).get_result(conn))
        }

        fn page(
            conn: &mut diesel_async::AsyncPgConnection,
            after: Option<::uuid::Uuid>,
            limit: i64,
        ) -> impl std::future::Future<Output = diesel::QueryResult<Vec<Self::Row>>> + Send {
            $page(after, limit).load(conn)
        }

        fn page_by_case(
            conn: &mut diesel_async::AsyncPgConnection,
            case_id: ::uuid::Uuid,
            after: Option<::uuid::Uuid>,
            limit: i64,
        ) -> impl std::future::Future<Output = diesel::QueryResult<Vec<Self::Row>>> + Send {
            $by_case_page(case_id, after, limit).load(conn)
        }

        fn tombstone(
            conn: &mut diesel_async::AsyncPgConnection,
            id: ::uuid::Uuid,
            at: chrono::DateTime<chrono::Utc>,
        ) -> impl std::future::Future<Output = diesel::QueryResult<usize>> + Send {
            $tombstone(id, at).execute(conn)
        }

        fn hard_delete(
            conn: &mut diesel_async::AsyncPgConnection,
            id: ::uuid::Uuid,
        ) -> impl std::future::Future<Output = diesel::QueryResult<usize>> + Send {
            $hard_delete(id).execute(conn)
        }
    };
}
pub(crate) use fm_resource_statements;

/// The two statements of each keyset page of [`fm_resource_queries!`]: the
/// first page (no lower bound) and a later page (`id > after`). Invoked in
/// the caller's `page_statements` module; `auto_type` names each
/// statement's type after its function.
macro_rules! fm_resource_page_statements {
    (
        table: $table:ident,
        row: $row:ident,
        page: ($first_page:ident, $after_page:ident),
        by_case_page: ($by_case_first:ident, $by_case_after:ident) $(,)?
    ) => {
        /// The first page of live rows: no lower bound.
        #[diesel::dsl::auto_type]
        pub fn $first_page(limit: i64) -> _ {
            let columns: diesel::dsl::AsSelect<$row, diesel::pg::Pg> = $row::as_select();
            $table::table
                .filter($table::time_deleted.is_null())
                .order($table::id)
                .limit(limit)
                .select(columns)
        }

        /// A later page of live rows: keys above `after`.
        #[diesel::dsl::auto_type]
        pub fn $after_page(after: ::uuid::Uuid, limit: i64) -> _ {
            let first: $first_page = $first_page(limit);
            first.filter($table::id.gt(after))
        }

        /// The first page of one case's live rows: no lower bound.
        #[diesel::dsl::auto_type]
        pub fn $by_case_first(case_id: ::uuid::Uuid, limit: i64) -> _ {
            let columns: diesel::dsl::AsSelect<$row, diesel::pg::Pg> = $row::as_select();
            $table::table
                .filter($table::fm_case_id.eq(case_id))
                .filter($table::time_deleted.is_null())
                .order($table::id)
                .limit(limit)
                .select(columns)
        }

        /// A later page of one case's live rows: keys above `after`.
        #[diesel::dsl::auto_type]
        pub fn $by_case_after(case_id: ::uuid::Uuid, after: ::uuid::Uuid, limit: i64) -> _ {
            let first: $by_case_first = $by_case_first(case_id, limit);
            first.filter($table::id.gt(after))
        }
    };
}
pub(crate) use fm_resource_page_statements;

#[cfg(test)]
mod tests {
    use super::*;

    /// Each type's ledger value is the serde name of its resource type,
    /// and each type's names are its own table's.
    #[test]
    fn tables_match_the_resource_types() {
        for resource in ResourceType::ALL {
            let tables = resource_tables(resource);
            assert_eq!(serde_json::to_value(resource).unwrap(), tables.collected_type);
            assert!(tables.request_table.ends_with(&format!("{}_request", tables.table)));
            assert!(tables.sitrep_generation.starts_with(tables.table));
        }
    }

    #[test]
    fn provenance_is_all_or_nothing() {
        let (c, s) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(provenance_from_columns(None, None, None).unwrap(), None);
        let p = provenance_from_columns(Some(c), Some(s), Some(3)).unwrap().unwrap();
        assert_eq!(
            (p.case_id.into_untyped(), p.sitrep_id.into_untyped(), p.generation.as_i64()),
            (c, s, 3)
        );
        assert!(matches!(
            provenance_from_columns(Some(c), None, Some(3)),
            Err(BadResourceRow::IncompleteProvenance)
        ));
        assert!(matches!(
            provenance_from_columns(Some(c), Some(s), Some(0)),
            Err(BadResourceRow::Generation(_))
        ));
    }
}
