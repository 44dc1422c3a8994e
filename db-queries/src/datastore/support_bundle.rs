//! Support bundles: reading, updating and deleting them.
//!
//! What bundles share with alerts (the delete transaction, the live-row
//! conversion, the readers and their statements) is written once in
//! [`super::resource`]; [`SupportBundles`] says what is a bundle's own, and
//! the public methods below wrap the generic ones. A bundle's state, user
//! comment and executor assignment are its alone.
//!
//! Every reader and updater here ignores tombstones (rows with
//! `time_deleted` set), exactly like the alert readers in
//! [`super::alert`]; only the debug reader
//! [`DataStore::support_bundle_get_including_deleted`] shows them, and says
//! so in its name (docs/design.md, "Deleting a resource").
//!
//! Each query states `time_deleted IS NULL` itself. The queries and the
//! indexes they use:
//!
//! | query | index |
//! |---|---|
//! | [`support_bundle_get_query`] | `support_bundle_pkey` |
//! | [`support_bundle_page_query`] | `support_bundle_pkey` |
//! | [`support_bundle_by_executor_page_query`], [`support_bundle_orphaned_page_query`] | `lookup_live_support_bundle_by_executor` |
//! | [`support_bundle_by_case_page_query`] | `lookup_live_support_bundle_by_case` |
//! | [`support_bundle_update_state_query`], [`support_bundle_update_comment_query`], [`support_bundle_fail_query`] | `support_bundle_pkey` |
//! | [`support_bundle_tombstone_query`], [`support_bundle_hard_delete_query`] | `support_bundle_pkey` |

pub use super::resource::{BadResourceRow, Deleted, FmProvenance, IncludingDeleted};

use super::resource::{
    FmResource, ResourceTables, column_name, fm_resource_page_statements, fm_resource_queries,
    fm_resource_statements, live, live_rows, not_found, provenance_from_columns, table_name,
};
use crate::context::{Action, OpContext};
use crate::datastore::{DataStore, page_limit};
use crate::db_schema::support_bundle;
use crate::error::Error;
use crate::keyset::KeysetPage;
use crate::transaction::{TransactionError, transaction_retry};
use chrono::{DateTime, Utc};
use diesel::dsl::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use nexus_fm_types::ResourceType;
use nexus_fm_types::ids::{CaseUuid, ExecutorUuid, SupportBundleUuid};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Bundles examined per statement (and per transaction) when the bundles of
/// an executor that has gone away are failed.
pub const FAIL_ORPHANED_PAGE_ROWS: i64 = 1_000;

/// The longest user comment accepted, in bytes.
pub const MAX_USER_COMMENT_BYTES: usize = 4_096;

/// A support bundle's lifecycle state: the values the schema's
/// `support_bundle_state_known` CHECK allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportBundleState {
    /// Data is being collected.
    Collecting,
    /// Collected and available.
    Active,
    /// Being destroyed.
    Destroying,
    /// Collection is failing; clean-up is in progress.
    Failing,
    /// Collection failed.
    Failed,
}

impl SupportBundleState {
    /// Every state, in lifecycle order.
    pub const ALL: [SupportBundleState; 5] = [
        SupportBundleState::Collecting,
        SupportBundleState::Active,
        SupportBundleState::Destroying,
        SupportBundleState::Failing,
        SupportBundleState::Failed,
    ];

    /// The value stored in `support_bundle.state`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SupportBundleState::Collecting => "collecting",
            SupportBundleState::Active => "active",
            SupportBundleState::Destroying => "destroying",
            SupportBundleState::Failing => "failing",
            SupportBundleState::Failed => "failed",
        }
    }
}

impl fmt::Display for SupportBundleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SupportBundleState {
    type Err = BadResourceRow;
    fn from_str(s: &str) -> Result<Self, BadResourceRow> {
        SupportBundleState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| BadResourceRow::UnknownState(s.to_string()))
    }
}

/// A support bundle, as every reader returns it (tombstones are never
/// returned, except by the debug reader, wrapped in [`IncludingDeleted`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SupportBundle {
    /// Its id; for an FM-created bundle, the id of the request that asked
    /// for it.
    pub id: SupportBundleUuid,
    /// Why it was wanted.
    pub reason: String,
    /// What it collects.
    pub data_selection: serde_json::Value,
    /// Lifecycle state.
    pub state: SupportBundleState,
    /// When the row was created.
    pub time_created: DateTime<Utc>,
    /// The executor collecting it, if one is assigned.
    pub assigned_executor: Option<ExecutorUuid>,
    /// The operator's comment, if any.
    pub user_comment: Option<String>,
    /// Where it came from, if fault management created it.
    pub provenance: Option<FmProvenance>,
}

/// A row of `support_bundle`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = support_bundle, check_for_backend(diesel::pg::Pg))]
pub struct SupportBundleRow {
    /// See the column comments in `schema/dbinit.sql`.
    pub id: Uuid,
    /// Why.
    pub reason: String,
    /// What to collect.
    pub data_selection: serde_json::Value,
    /// Lifecycle state.
    pub state: String,
    /// Creation time.
    pub time_created: DateTime<Utc>,
    /// Assigned executor.
    pub assigned_executor: Option<Uuid>,
    /// Operator comment.
    pub user_comment: Option<String>,
    /// Provenance: case.
    pub fm_case_id: Option<Uuid>,
    /// Provenance: sitrep.
    pub fm_sitrep_id: Option<Uuid>,
    /// Provenance: generation.
    pub fm_generation: Option<i64>,
    /// Tombstone time.
    pub time_deleted: Option<DateTime<Utc>>,
}

impl TryFrom<SupportBundleRow> for IncludingDeleted<SupportBundle> {
    type Error = BadResourceRow;
    fn try_from(row: SupportBundleRow) -> Result<Self, BadResourceRow> {
        let SupportBundleRow {
            id,
            reason,
            data_selection,
            state,
            time_created,
            assigned_executor,
            user_comment,
            fm_case_id,
            fm_sitrep_id,
            fm_generation,
            time_deleted,
        } = row;
        Ok(IncludingDeleted {
            resource: SupportBundle {
                id: SupportBundleUuid::from_untyped(id),
                reason,
                data_selection,
                state: state.parse()?,
                time_created,
                assigned_executor: assigned_executor.map(ExecutorUuid::from_untyped),
                user_comment,
                provenance: provenance_from_columns(fm_case_id, fm_sitrep_id, fm_generation)?,
            },
            time_deleted,
        })
    }
}

/// Support bundles as an [`FmResource`]: a bundle's own names and
/// statements. What differs from an alert is a bundle's state (created as
/// `collecting`), its user comment and its executor assignment, which are
/// not part of the trait.
#[derive(Clone, Copy, Debug)]
pub struct SupportBundles;

impl FmResource for SupportBundles {
    type Row = SupportBundleRow;
    type Id = SupportBundleUuid;
    type Resource = SupportBundle;

    const TYPE: ResourceType = ResourceType::SupportBundle;
    const WHAT: &'static str = "support bundle";
    const WHAT_PLURAL: &'static str = "support bundles";
    const DELETE_TRANSACTION: &'static str = "support_bundle_delete";
    const TABLES: ResourceTables = ResourceTables {
        table: table_name!(support_bundle),
        id: column_name!(support_bundle::id),
        time_created: column_name!(support_bundle::time_created),
        time_deleted: column_name!(support_bundle::time_deleted),
        fm_case_id: column_name!(support_bundle::fm_case_id),
        fm_sitrep_id: column_name!(support_bundle::fm_sitrep_id),
        fm_generation: column_name!(support_bundle::fm_generation),
        text_column: column_name!(support_bundle::reason),
        json_column: column_name!(support_bundle::data_selection),
        creation_constants: &[(
            column_name!(support_bundle::state),
            SupportBundleState::Collecting.as_str(),
        )],
        sitrep_generation: column_name!(fm_sitrep::support_bundle_generation),
        request_table: table_name!(fm_support_bundle_request),
        request_sitrep_id: column_name!(fm_support_bundle_request::sitrep_id),
        request_id: column_name!(fm_support_bundle_request::id),
        request_case_id: column_name!(fm_support_bundle_request::case_id),
        request_text: column_name!(fm_support_bundle_request::reason),
        request_json: column_name!(fm_support_bundle_request::data_selection),
        collected_type: "support_bundle",
    };

    fn untyped(id: SupportBundleUuid) -> Uuid {
        id.into_untyped()
    }

    fn row_id(row: &SupportBundleRow) -> Uuid {
        row.id
    }

    fn row_is_fm_created(row: &SupportBundleRow) -> bool {
        row.fm_case_id.is_some()
    }

    fn from_row(row: SupportBundleRow) -> Result<IncludingDeleted<SupportBundle>, BadResourceRow> {
        IncludingDeleted::try_from(row)
    }

    fm_resource_statements! {
        get: support_bundle_get_query,
        get_including_deleted: support_bundle_get_including_deleted_query,
        page: support_bundle_page_query,
        by_case_page: support_bundle_by_case_page_query,
        tombstone: support_bundle_tombstone_query,
        hard_delete: support_bundle_hard_delete_query,
    }
}

fm_resource_queries! {
    table: support_bundle,
    row: SupportBundleRow,
    what: "support bundle",
    get: support_bundle_get_query,
    get_including_deleted: support_bundle_get_including_deleted_query,
    page: support_bundle_page_query(
        support_bundle_first_page_query,
        support_bundle_after_page_query
    ),
    by_case_page: support_bundle_by_case_page_query(
        support_bundle_by_case_first_page_query,
        support_bundle_by_case_after_page_query
    ),
    tombstone: support_bundle_tombstone_query,
    hard_delete: support_bundle_hard_delete_query,
}

/// One page of the live bundles assigned to `executor`, in id order, after
/// `after` (`None`: the first page).
pub fn support_bundle_by_executor_page_query(
    executor: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> KeysetPage<
    page_statements::support_bundle_by_executor_first_page_query,
    page_statements::support_bundle_by_executor_after_page_query,
> {
    KeysetPage::new(
        after,
        || page_statements::support_bundle_by_executor_first_page_query(executor, limit),
        |after| {
            page_statements::support_bundle_by_executor_after_page_query(executor, after, limit)
        },
    )
}

/// Sets the state of one live bundle, returning the updated row.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_update_state_query(id: Uuid, state: SupportBundleState) -> _ {
    let value: &'static str = state.as_str();
    let columns: AsSelect<SupportBundleRow, Pg> = SupportBundleRow::as_returning();
    diesel::dsl::update(
        support_bundle::table
            .filter(support_bundle::id.eq(id))
            .filter(support_bundle::time_deleted.is_null()),
    )
    .set(support_bundle::state.eq(value))
    .returning(columns)
}

/// Sets (or, with `None`, clears) the user comment of one live bundle,
/// returning the updated row.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_update_comment_query(id: Uuid, comment: Option<String>) -> _ {
    let columns: AsSelect<SupportBundleRow, Pg> = SupportBundleRow::as_returning();
    diesel::dsl::update(
        support_bundle::table
            .filter(support_bundle::id.eq(id))
            .filter(support_bundle::time_deleted.is_null()),
    )
    .set(support_bundle::user_comment.eq(comment))
    .returning(columns)
}

/// One page of the ids of the live bundles assigned to `executor`, after
/// `after` (`None`: the first page), whatever their state: the cursor of
/// [`DataStore::support_bundle_fail_orphaned`] advances past every examined
/// bundle, so a page of bundles that are already failed still makes
/// progress.
pub fn support_bundle_orphaned_page_query(
    executor: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> KeysetPage<
    page_statements::support_bundle_orphaned_first_page_query,
    page_statements::support_bundle_orphaned_after_page_query,
> {
    KeysetPage::new(
        after,
        || page_statements::support_bundle_orphaned_first_page_query(executor, limit),
        |after| page_statements::support_bundle_orphaned_after_page_query(executor, after, limit),
    )
}

/// Fails those of `ids` that are live, still assigned to `executor`, and
/// not failed yet, by primary-key lookups.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_fail_query(executor: Uuid, ids: Vec<Uuid>) -> _ {
    let failed: &'static str = SupportBundleState::Failed.as_str();
    diesel::dsl::update(
        support_bundle::table
            .filter(support_bundle::id.eq_any(ids))
            .filter(support_bundle::assigned_executor.eq(executor))
            .filter(support_bundle::time_deleted.is_null())
            .filter(support_bundle::state.ne(failed)),
    )
    .set(support_bundle::state.eq(failed))
}

impl DataStore {
    /// One live support bundle.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if it does not exist or an operator deleted it.
    pub async fn support_bundle_get(
        &self,
        opctx: &OpContext,
        id: SupportBundleUuid,
    ) -> Result<SupportBundle, Error> {
        self.resource_get::<SupportBundles>(opctx, id).await
    }

    /// One support bundle, **including a tombstone**: for debug tooling,
    /// which must be able to show what an operator deleted. Everything else
    /// uses [`DataStore::support_bundle_get`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no row exists (never created, hard-deleted,
    /// or swept).
    pub async fn support_bundle_get_including_deleted(
        &self,
        opctx: &OpContext,
        id: SupportBundleUuid,
    ) -> Result<IncludingDeleted<SupportBundle>, Error> {
        self.resource_get_including_deleted::<SupportBundles>(opctx, id).await
    }

    /// One page of live support bundles in id order, after `after` (from
    /// the start when `None`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a limit outside 1 to
    /// [`super::MAX_PAGE_LIMIT`]; a database error.
    pub async fn support_bundle_list(
        &self,
        opctx: &OpContext,
        after: Option<SupportBundleUuid>,
        limit: u32,
    ) -> Result<Vec<SupportBundle>, Error> {
        self.resource_list::<SupportBundles>(opctx, after, limit).await
    }

    /// One page of the live support bundles assigned to `executor`, in id
    /// order, after `after`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a limit outside 1 to
    /// [`super::MAX_PAGE_LIMIT`]; a database error.
    pub async fn support_bundle_list_by_executor(
        &self,
        opctx: &OpContext,
        executor: ExecutorUuid,
        after: Option<SupportBundleUuid>,
        limit: u32,
    ) -> Result<Vec<SupportBundle>, Error> {
        let limit = page_limit(limit)?;
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let after = after.map(SupportBundleUuid::into_untyped);
        let rows = support_bundle_by_executor_page_query(executor.into_untyped(), after, limit)
            .load(&mut conn)
            .await
            .map_err(|e| {
                Error::database(
                    format_args!("listing the support bundles of executor {executor}"),
                    e,
                )
            })?;
        live_rows::<SupportBundles>(rows)
    }

    /// One page of the live support bundles that case `case_id` requested,
    /// in id order, after `after`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a limit outside 1 to
    /// [`super::MAX_PAGE_LIMIT`]; a database error.
    pub async fn support_bundle_list_by_case(
        &self,
        opctx: &OpContext,
        case_id: CaseUuid,
        after: Option<SupportBundleUuid>,
        limit: u32,
    ) -> Result<Vec<SupportBundle>, Error> {
        self.resource_list_by_case::<SupportBundles>(opctx, case_id, after, limit).await
    }

    /// Sets the state of a live support bundle (operator or FM executor)
    /// and returns the bundle as updated.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for a viewer; [`Error::NotFound`] if the bundle
    /// does not exist or an operator deleted it.
    pub async fn support_bundle_update_state(
        &self,
        opctx: &OpContext,
        id: SupportBundleUuid,
        state: SupportBundleState,
    ) -> Result<SupportBundle, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::UpdateResource).await?;
        let done =
            transaction_retry(&mut conn, &opctx.log, "support_bundle_update_state", |conn| {
                Box::pin(async move {
                    support_bundle_update_state_query(id.into_untyped(), state)
                        .get_result(conn)
                        .await
                        .optional()?
                        .ok_or_else(|| TransactionError::Abort(not_found::<SupportBundles>(id)))
                })
            })
            .await?;
        live::<SupportBundles>(done.value)
    }

    /// Sets (or, with `None`, clears) the user comment of a live support
    /// bundle (operator or FM executor) and returns the bundle as updated.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a comment longer than
    /// [`MAX_USER_COMMENT_BYTES`]; [`Error::Forbidden`] for a viewer;
    /// [`Error::NotFound`] if the bundle does not exist or an operator
    /// deleted it.
    pub async fn support_bundle_update_comment(
        &self,
        opctx: &OpContext,
        id: SupportBundleUuid,
        comment: Option<String>,
    ) -> Result<SupportBundle, Error> {
        if let Some(text) = &comment
            && text.len() > MAX_USER_COMMENT_BYTES
        {
            return Err(Error::InvalidArgument(format!(
                "a support bundle's user comment may be at most {MAX_USER_COMMENT_BYTES} bytes, \
                 got {}",
                text.len()
            )));
        }
        let mut conn = self.pool_connection_authorized(opctx, Action::UpdateResource).await?;
        let done =
            transaction_retry(&mut conn, &opctx.log, "support_bundle_update_comment", |conn| {
                let comment = comment.clone();
                Box::pin(async move {
                    support_bundle_update_comment_query(id.into_untyped(), comment)
                        .get_result(conn)
                        .await
                        .optional()?
                        .ok_or_else(|| TransactionError::Abort(not_found::<SupportBundles>(id)))
                })
            })
            .await?;
        live::<SupportBundles>(done.value)
    }

    /// Fails the live bundles assigned to `executor`, an executor that has
    /// gone away (FM executor only): every such bundle not already in state
    /// `failed` is set to `failed`. Works in pages of
    /// [`FAIL_ORPHANED_PAGE_ROWS`] bundles, one transaction per page, and
    /// returns how many bundles it failed.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] unless the role is the FM executor; a database
    /// error (bundles failed by earlier pages stay failed).
    pub async fn support_bundle_fail_orphaned(
        &self,
        opctx: &OpContext,
        executor: ExecutorUuid,
    ) -> Result<u64, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::FmWrite).await?;
        let executor_id = executor.into_untyped();
        let mut after: Option<Uuid> = None;
        let mut failed = 0_u64;
        loop {
            let done =
                transaction_retry(&mut conn, &opctx.log, "support_bundle_fail_orphaned", |conn| {
                    Box::pin(async move {
                        let ids: Vec<Uuid> = support_bundle_orphaned_page_query(
                            executor_id,
                            after,
                            FAIL_ORPHANED_PAGE_ROWS,
                        )
                        .load(conn)
                        .await?;
                        // The cursor advances past every examined bundle, in
                        // key order (the page is ordered by id).
                        let (Some(&last), examined) = (ids.last(), ids.len()) else {
                            return Ok((0, None));
                        };
                        let changed =
                            support_bundle_fail_query(executor_id, ids).execute(conn).await?;
                        let more = examined as i64 == FAIL_ORPHANED_PAGE_ROWS;
                        Ok((changed, more.then_some(last)))
                    })
                })
                .await?;
            let (changed, next) = done.value;
            failed += changed as u64;
            match next {
                Some(last) => after = Some(last),
                None => break,
            }
        }
        slog::info!(opctx.log, "failed the support bundles of a departed executor";
            "executor_id" => %executor, "failed" => failed);
        Ok(failed)
    }

    /// Deletes a support bundle (operator only): a bundle that fault
    /// management created is soft-deleted, so that no executor creates it
    /// again; any other bundle is removed. The row is read and then written
    /// exactly once, in one transaction.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] unless the role is operator;
    /// [`Error::NotFound`] (and nothing written) if the bundle does not
    /// exist or is already deleted.
    pub async fn support_bundle_delete(
        &self,
        opctx: &OpContext,
        id: SupportBundleUuid,
    ) -> Result<Deleted, Error> {
        self.resource_delete::<SupportBundles>(opctx, id).await
    }
}

/// The two statements of each keyset page query above: the first page (no
/// lower bound) and a later page. `auto_type` names each statement's type
/// after its function.
pub mod page_statements {
    #![allow(missing_docs)] // the type aliases that auto_type generates

    use super::*;

    fm_resource_page_statements! {
        table: support_bundle,
        row: SupportBundleRow,
        page: (support_bundle_first_page_query, support_bundle_after_page_query),
        by_case_page: (
            support_bundle_by_case_first_page_query,
            support_bundle_by_case_after_page_query
        ),
    }

    /// The first page of [`support_bundle_by_executor_page_query`]: no lower bound.
    #[diesel::dsl::auto_type]
    pub fn support_bundle_by_executor_first_page_query(executor: Uuid, limit: i64) -> _ {
        let columns: AsSelect<SupportBundleRow, Pg> = SupportBundleRow::as_select();
        support_bundle::table
            .filter(support_bundle::assigned_executor.eq(executor))
            .filter(support_bundle::time_deleted.is_null())
            .order(support_bundle::id)
            .limit(limit)
            .select(columns)
    }

    /// A later page of [`support_bundle_by_executor_page_query`]: keys above `after`.
    #[diesel::dsl::auto_type]
    pub fn support_bundle_by_executor_after_page_query(
        executor: Uuid,
        after: Uuid,
        limit: i64,
    ) -> _ {
        let first: support_bundle_by_executor_first_page_query =
            support_bundle_by_executor_first_page_query(executor, limit);
        first.filter(support_bundle::id.gt(after))
    }

    /// The first page of [`support_bundle_orphaned_page_query`]: no lower bound.
    #[diesel::dsl::auto_type]
    pub fn support_bundle_orphaned_first_page_query(executor: Uuid, limit: i64) -> _ {
        support_bundle::table
            .filter(support_bundle::assigned_executor.eq(executor))
            .filter(support_bundle::time_deleted.is_null())
            .order(support_bundle::id)
            .limit(limit)
            .select(support_bundle::id)
    }

    /// A later page of [`support_bundle_orphaned_page_query`]: keys above `after`.
    #[diesel::dsl::auto_type]
    pub fn support_bundle_orphaned_after_page_query(executor: Uuid, after: Uuid, limit: i64) -> _ {
        let first: support_bundle_orphaned_first_page_query =
            support_bundle_orphaned_first_page_query(executor, limit);
        first.filter(support_bundle::id.gt(after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The enum and the schema's CHECK constraint list the same states.
    #[test]
    fn states_match_the_schema_check() {
        let sql = crate::migration::DBINIT_SQL;
        let check = sql
            .lines()
            .find(|line| line.contains("support_bundle_state_known"))
            .expect("dbinit.sql has the state CHECK");
        let list = check.split("IN (").nth(1).and_then(|s| s.split(')').next()).unwrap();
        let in_schema: Vec<&str> =
            list.split(',').map(|s| s.trim().trim_matches('\'')).collect::<Vec<_>>();
        let in_code: Vec<&str> = SupportBundleState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(in_schema, in_code);
        for state in SupportBundleState::ALL {
            assert_eq!(state.as_str().parse::<SupportBundleState>().unwrap(), state);
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert!(matches!(
            "exploded".parse::<SupportBundleState>(),
            Err(BadResourceRow::UnknownState(s)) if s == "exploded"
        ));
    }
}
