//! Persisted status of background-task activations, one row per executor
//! and task, so that the debug CLI can show what every executor last did.

use crate::context::{Action, OpContext};
use crate::datastore::{DataStore, page_limit};
use crate::db_schema::fm_executor_task_status as status;
use crate::error::Error;
use crate::keyset::KeysetPage;
use crate::transaction::transaction_retry;
use chrono::{DateTime, Utc};
use diesel::dsl::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use nexus_fm_types::{ExecutorUuid, TaskActivationRecord};
use uuid::Uuid;

/// A row of `fm_executor_task_status`.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = status, check_for_backend(diesel::pg::Pg))]
pub struct TaskStatusRow {
    /// Executor.
    pub executor_id: Uuid,
    /// Task name.
    pub task_name: String,
    /// Activation number.
    pub iteration: i64,
    /// Start.
    pub time_started: DateTime<Utc>,
    /// Duration.
    pub duration_usec: i64,
    /// Status JSON.
    pub status: serde_json::Value,
}

impl TaskStatusRow {
    fn new(record: &TaskActivationRecord) -> Self {
        let TaskActivationRecord {
            executor_id,
            task_name,
            iteration,
            time_started,
            duration_usec,
            status,
        } = record;
        TaskStatusRow {
            executor_id: executor_id.into_untyped(),
            task_name: task_name.clone(),
            iteration: i64::try_from(*iteration).unwrap_or(i64::MAX),
            time_started: *time_started,
            duration_usec: i64::try_from(*duration_usec).unwrap_or(i64::MAX),
            status: status.clone(),
        }
    }
}

impl From<TaskStatusRow> for TaskActivationRecord {
    fn from(row: TaskStatusRow) -> Self {
        let TaskStatusRow {
            executor_id,
            task_name,
            iteration,
            time_started,
            duration_usec,
            status,
        } = row;
        TaskActivationRecord {
            executor_id: ExecutorUuid::from_untyped(executor_id),
            task_name,
            iteration: u64::try_from(iteration).unwrap_or(0),
            time_started,
            duration_usec: u64::try_from(duration_usec).unwrap_or(0),
            status,
        }
    }
}

/// Records (inserts or replaces) one task's last activation.
pub fn task_status_upsert_query(
    row: TaskStatusRow,
) -> impl diesel::query_builder::QueryFragment<Pg>
+ diesel::query_builder::QueryId
+ Clone
+ Send
+ Sync
+ 'static {
    let update = row.clone();
    diesel::insert_into(status::table)
        .values(row)
        .on_conflict((status::executor_id, status::task_name))
        .do_update()
        .set(update)
}

/// A page of task statuses in (executor, task) order, after the given key
/// (`None`: the first page, with no lower bound, so no key is skipped).
pub fn task_status_page_query(
    after: Option<(Uuid, String)>,
    limit: i64,
) -> KeysetPage<
    page_statements::task_status_first_page_query,
    page_statements::task_status_after_page_query,
> {
    KeysetPage::new(
        after,
        || page_statements::task_status_first_page_query(limit),
        |(executor, task)| page_statements::task_status_after_page_query(executor, task, limit),
    )
}

/// The statuses of one executor's tasks.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn task_status_of_executor_query(executor: Uuid, limit: i64) -> _ {
    let columns: AsSelect<TaskStatusRow, Pg> = TaskStatusRow::as_select();
    status::table
        .filter(status::executor_id.eq(executor))
        .order(status::task_name)
        .limit(limit)
        .select(columns)
}

impl DataStore {
    /// Records a task's last activation for its executor (FM executor only).
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] or a database error.
    pub async fn executor_task_status_upsert(
        &self,
        opctx: &OpContext,
        record: &TaskActivationRecord,
    ) -> Result<(), Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::FmWrite).await?;
        let row = TaskStatusRow::new(record);
        transaction_retry(&mut conn, &opctx.log, "executor_task_status_upsert", |conn| {
            let row = row.clone();
            Box::pin(async move {
                task_status_upsert_query(row).execute(conn).await?;
                Ok(())
            })
        })
        .await?;
        Ok(())
    }

    /// One page of every executor's task statuses, in (executor, task)
    /// order, after `after`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a limit outside 1 to
    /// [`crate::datastore::MAX_PAGE_LIMIT`], or a database error.
    pub async fn executor_task_status_list(
        &self,
        opctx: &OpContext,
        after: Option<(ExecutorUuid, String)>,
        limit: u32,
    ) -> Result<Vec<TaskActivationRecord>, Error> {
        let limit = page_limit(limit)?;
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let after = after.map(|(e, t)| (e.into_untyped(), t));
        let rows = task_status_page_query(after, limit)
            .load(&mut conn)
            .await
            .map_err(|e| Error::database("listing task statuses", e))?;
        Ok(rows.into_iter().map(TaskActivationRecord::from).collect())
    }

    /// The task statuses of one executor (at most `limit`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a limit outside 1 to
    /// [`crate::datastore::MAX_PAGE_LIMIT`], or a database error.
    pub async fn executor_task_status_of(
        &self,
        opctx: &OpContext,
        executor: ExecutorUuid,
        limit: u32,
    ) -> Result<Vec<TaskActivationRecord>, Error> {
        let limit = page_limit(limit)?;
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let rows = task_status_of_executor_query(executor.into_untyped(), limit)
            .load(&mut conn)
            .await
            .map_err(|e| Error::database(format_args!("listing task statuses of {executor}"), e))?;
        Ok(rows.into_iter().map(TaskActivationRecord::from).collect())
    }
}

/// The two statements of each keyset page query above: the first page (no
/// lower bound) and a later page. `auto_type` names each statement's type
/// after its function.
pub mod page_statements {
    #![allow(missing_docs)] // the type aliases that auto_type generates

    use super::*;

    /// The first page of [`task_status_page_query`]: no lower bound.
    #[diesel::dsl::auto_type]
    pub fn task_status_first_page_query(limit: i64) -> _ {
        let columns: AsSelect<TaskStatusRow, Pg> = TaskStatusRow::as_select();
        status::table.order((status::executor_id, status::task_name)).limit(limit).select(columns)
    }

    /// A later page of [`task_status_page_query`]: keys above
    /// (`after_executor`, `after_task`).
    #[diesel::dsl::auto_type]
    pub fn task_status_after_page_query(after_executor: Uuid, after_task: String, limit: i64) -> _ {
        let first: task_status_first_page_query = task_status_first_page_query(limit);
        first.filter(
            status::executor_id
                .gt(after_executor)
                .or(status::executor_id.eq(after_executor).and(status::task_name.gt(after_task))),
        )
    }
}
