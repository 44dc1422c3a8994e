//! The query catalogue: every production query, with sample parameters.
//!
//! Each entry carries the query's SQL text (diesel's `debug_query`, for the
//! snapshot files under `db-queries/tests/output/`) and a way to EXPLAIN it.
//! The EXPLAIN audit walks this list and fails on any sequential scan, so a
//! query that is not listed here is a query nobody has shown to use an
//! index: when you add a `*_query` function, add it here too.
//!
//! The sample parameters are fixed, so the snapshots are stable.

use crate::datastore::alert::{
    alert_by_case_page_query, alert_dispatch_queue_after_query, alert_dispatch_queue_first_query,
    alert_get_including_deleted_query, alert_get_query, alert_hard_delete_query,
    alert_mark_dispatched_query, alert_page_query, alert_tombstone_query,
};
use crate::datastore::debug::{
    alert_including_deleted_first_page_query, alert_request_count_query,
    alert_tombstone_first_page_query, alert_tombstone_summary_query,
    archive_sitrep_id_by_version_query, collected_of_query,
    support_bundle_including_deleted_first_page_query, support_bundle_request_count_query,
    support_bundle_tombstone_first_page_query, support_bundle_tombstone_summary_query,
};
use crate::datastore::executor_status::{
    TaskStatusRow, task_status_of_executor_query, task_status_page_query, task_status_upsert_query,
};
use crate::datastore::rendezvous::{
    alert_rows_of_query, guarded_create_sample, support_bundle_rows_of_query,
};
use crate::datastore::rendezvous::{plain_alert_insert_query, plain_support_bundle_insert_query};
use crate::datastore::server_version_query;
use crate::datastore::sitrep::insert::{
    alert_request_rows_insert_query, case_rows_insert_query, history_insert_query,
    sitrep_row_insert_query, support_bundle_request_rows_insert_query,
};
use crate::datastore::sitrep::prune::archive_insert_query;
use crate::datastore::sitrep::prune::{
    alert_request_delete_query, archive_delete_query, archive_entry_query,
    archive_nth_newest_version_query, archive_page_at_or_below_query, case_delete_query,
    history_delete_query, history_entry_by_version_query, prunable_history_page_query,
    sitrep_delete_query, support_bundle_request_delete_query,
};
use crate::datastore::sitrep::read::{history_page_ascending_query, history_page_descending_query};
use crate::datastore::sitrep::{
    alert_any_of_query, alert_request_any_of_query, alert_request_id_page_query,
    alert_request_page_query, case_page_query, collected_any_of_query, current_history_entry_query,
    history_entry_by_sitrep_query, sitrep_metadata_query, support_bundle_any_of_query,
    support_bundle_request_any_of_query, support_bundle_request_id_page_query,
    support_bundle_request_page_query,
};
use crate::datastore::support_bundle::{
    SupportBundleState, support_bundle_by_case_page_query, support_bundle_by_executor_page_query,
    support_bundle_fail_query, support_bundle_get_including_deleted_query,
    support_bundle_get_query, support_bundle_hard_delete_query, support_bundle_orphaned_page_query,
    support_bundle_page_query, support_bundle_tombstone_query, support_bundle_update_comment_query,
    support_bundle_update_state_query,
};
use crate::datastore::sweep::sweep_page_sample;
use crate::error::Error;
use crate::explain::explain_shared;
use crate::migration::{
    db_metadata_exists_query, first_version_insert_query, migration_lock_query,
    migration_unlock_query, schema_version_query, target_version_update_query,
    version_update_query,
};
use crate::model::{
    AlertRequestRow, CaseRow, SitrepArchiveRow, SitrepHistoryRow, SitrepRow,
    SupportBundleRequestRow,
};
use diesel::pg::Pg;
use diesel_async::AsyncPgConnection;
use nexus_fm_types::ResourceType;
use std::future::Future;
use std::pin::Pin;
use uuid::Uuid;

/// The future an entry's EXPLAIN returns.
pub type ExplainFuture<'c> = Pin<Box<dyn Future<Output = Result<String, Error>> + Send + 'c>>;

type ExplainFn = Box<
    dyn for<'c> Fn(&'c mut AsyncPgConnection, &'c slog::Logger) -> ExplainFuture<'c> + Send + Sync,
>;

/// One production query.
pub struct CatalogueEntry {
    /// A stable name, also the snapshot file's name.
    pub name: &'static str,
    /// The SQL text with its sample binds.
    pub sql: String,
    /// Indexes the plan must use, every one of them (from [`EXPECTED_INDEXES`]).
    pub expected_indexes: &'static [&'static str],
    explain: ExplainFn,
}

impl CatalogueEntry {
    /// EXPLAINs the query with `enable_seqscan = off`.
    ///
    /// # Errors
    ///
    /// A database error, e.g. when the query does not plan.
    pub fn explain<'c>(
        &self,
        conn: &'c mut AsyncPgConnection,
        log: &'c slog::Logger,
    ) -> ExplainFuture<'c> {
        (self.explain)(conn, log)
    }
}

impl std::fmt::Debug for CatalogueEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogueEntry").field("name", &self.name).field("sql", &self.sql).finish()
    }
}

/// Fixed sample ids, so the SQL snapshots are stable.
const SAMPLE_SITREP: Uuid = Uuid::from_u128(0x5175_0000_0000_4000_8000_0000_0000_0001);
const SAMPLE_ID: Uuid = Uuid::from_u128(0x1d00_0000_0000_4000_8000_0000_0000_0002);

macro_rules! entry {
    ($name:literal, $query:expr) => {{
        let query = std::sync::Arc::new($query);
        CatalogueEntry {
            name: $name,
            sql: diesel::debug_query::<Pg, _>(query.as_ref()).to_string(),
            expected_indexes: expected_indexes($name),
            explain: Box::new(move |conn, log| {
                let query = std::sync::Arc::clone(&query);
                Box::pin(async move { explain_shared(conn, log, query).await })
            }),
        }
    }};
}

/// The indexes each catalogued query must use. The audit fails a plan that
/// does not mention every one of them, which catches what "no Seq Scan"
/// alone cannot: a full walk of the primary key instead of the intended
/// partial index. Every catalogued query must be listed (a unit test checks
/// it); an empty list means "no sequential scan" is the whole requirement
/// (e.g. where the planner may legitimately choose between two indexes).
pub const EXPECTED_INDEXES: &[(&str, &[&str])] = &[
    ("db_metadata_exists", &[]),
    ("schema_version", &["db_metadata_pkey"]),
    // Advisory locks touch no table.
    ("schema_migration_lock", &[]),
    ("schema_migration_unlock", &[]),
    ("schema_target_version_update", &["db_metadata_pkey"]),
    ("schema_first_version_insert", &["db_metadata_pkey"]),
    ("schema_version_update", &["db_metadata_pkey"]),
    // Inserts without a conflict target plan as a plain insert: no index.
    ("server_version", &[]),
    ("sitrep_insert_sitrep_row", &[]),
    ("sitrep_insert_cases", &[]),
    ("sitrep_insert_alert_requests", &[]),
    ("sitrep_insert_support_bundle_requests", &[]),
    ("sitrep_insert_history_entry", &["fm_sitrep_history_pkey"]),
    ("sitrep_archive_insert", &[]),
    ("resource_create_alert", &[]),
    ("resource_create_support_bundle", &[]),
    ("sitrep_current_history_entry", &["fm_sitrep_history_pkey"]),
    ("sitrep_history_entry_by_sitrep", &["fm_sitrep_history_sitrep_id_key"]),
    ("sitrep_metadata", &["fm_sitrep_pkey"]),
    ("sitrep_history_page_ascending", &["fm_sitrep_history_pkey"]),
    ("sitrep_history_page_descending", &["fm_sitrep_history_pkey"]),
    ("sitrep_case_page", &["fm_case_pkey"]),
    ("sitrep_case_page_first", &["fm_case_pkey"]),
    ("sitrep_alert_request_page", &["fm_alert_request_pkey"]),
    ("sitrep_alert_request_page_first", &["fm_alert_request_pkey"]),
    ("sitrep_support_bundle_request_page", &["fm_support_bundle_request_pkey"]),
    ("sitrep_support_bundle_request_page_first", &["fm_support_bundle_request_pkey"]),
    ("sitrep_alert_request_id_page", &["fm_alert_request_pkey"]),
    ("sitrep_alert_request_id_page_first", &["fm_alert_request_pkey"]),
    ("sitrep_support_bundle_request_id_page", &["fm_support_bundle_request_pkey"]),
    ("sitrep_support_bundle_request_id_page_first", &["fm_support_bundle_request_pkey"]),
    ("sitrep_insert_alert_any_of", &["alert_pkey"]),
    ("sitrep_insert_collected_any_of", &["fm_collected_resource_pkey"]),
    ("sitrep_insert_support_bundle_any_of", &["support_bundle_pkey"]),
    ("sitrep_insert_alert_request_any_of", &["lookup_fm_alert_request_by_id"]),
    ("sitrep_insert_support_bundle_request_any_of", &["lookup_fm_support_bundle_request_by_id"]),
    ("sitrep_insert_notify", &[]),
    ("sitrep_prune_history_page", &["fm_sitrep_history_pkey"]),
    ("sitrep_prune_history_entry_by_version", &["fm_sitrep_history_pkey"]),
    ("sitrep_prune_delete_sitrep", &["fm_sitrep_pkey"]),
    ("sitrep_prune_delete_cases", &["fm_case_pkey"]),
    ("sitrep_prune_delete_alert_requests", &["fm_alert_request_pkey"]),
    ("sitrep_prune_delete_support_bundle_requests", &["fm_support_bundle_request_pkey"]),
    ("sitrep_prune_delete_history_entry", &["fm_sitrep_history_pkey"]),
    ("sitrep_archive_entry", &["fm_sitrep_archive_pkey"]),
    ("sitrep_archive_nth_newest_version", &["fm_sitrep_archive_version_key"]),
    ("sitrep_archive_page_at_or_below", &["fm_sitrep_archive_version_key"]),
    ("sitrep_archive_delete", &["fm_sitrep_archive_pkey"]),
    (
        "rendezvous_guarded_create_alert",
        &[
            "fm_sitrep_history_pkey",
            "fm_sitrep_history_sitrep_id_key",
            "fm_sitrep_pkey",
            "fm_alert_request_pkey",
            "alert_pkey",
            "fm_collected_resource_pkey",
        ],
    ),
    (
        "rendezvous_guarded_create_alert_first",
        &[
            "fm_sitrep_history_pkey",
            "fm_sitrep_history_sitrep_id_key",
            "fm_sitrep_pkey",
            "fm_alert_request_pkey",
            "alert_pkey",
            "fm_collected_resource_pkey",
        ],
    ),
    (
        "rendezvous_guarded_create_support_bundle",
        &[
            "fm_sitrep_history_pkey",
            "fm_sitrep_history_sitrep_id_key",
            "fm_sitrep_pkey",
            "fm_support_bundle_request_pkey",
            "support_bundle_pkey",
            "fm_collected_resource_pkey",
        ],
    ),
    (
        "rendezvous_guarded_create_support_bundle_first",
        &[
            "fm_sitrep_history_pkey",
            "fm_sitrep_history_sitrep_id_key",
            "fm_sitrep_pkey",
            "fm_support_bundle_request_pkey",
            "support_bundle_pkey",
            "fm_collected_resource_pkey",
        ],
    ),
    // Reads of the debug CLI (datastore/debug.rs).
    ("debug_alert_including_deleted_first_page", &["alert_pkey"]),
    ("debug_support_bundle_including_deleted_first_page", &["support_bundle_pkey"]),
    ("debug_alert_request_count", &["fm_alert_request_pkey"]),
    ("debug_support_bundle_request_count", &["fm_support_bundle_request_pkey"]),
    ("debug_collected_of", &["fm_collected_resource_pkey"]),
    ("debug_archive_sitrep_id_by_version", &["fm_sitrep_archive_version_key"]),
    ("debug_alert_tombstone_summary", &["alert_tombstones"]),
    ("debug_support_bundle_tombstone_summary", &["support_bundle_tombstones"]),
    ("debug_alert_tombstone_first_page", &["alert_tombstones"]),
    ("debug_support_bundle_tombstone_first_page", &["support_bundle_tombstones"]),
    ("rendezvous_alert_rows_of", &["alert_pkey"]),
    ("rendezvous_support_bundle_rows_of", &["support_bundle_pkey"]),
    (
        "sweep_page_alert",
        &[
            "alert_tombstones",
            "fm_sitrep_pkey",
            "fm_sitrep_history_sitrep_id_key",
            "fm_alert_request_pkey",
        ],
    ),
    (
        "sweep_page_alert_first",
        &[
            "alert_tombstones",
            "fm_sitrep_pkey",
            "fm_sitrep_history_sitrep_id_key",
            "fm_alert_request_pkey",
        ],
    ),
    (
        "sweep_page_support_bundle",
        &[
            "support_bundle_tombstones",
            "fm_sitrep_pkey",
            "fm_sitrep_history_sitrep_id_key",
            "fm_support_bundle_request_pkey",
        ],
    ),
    (
        "sweep_page_support_bundle_first",
        &[
            "support_bundle_tombstones",
            "fm_sitrep_pkey",
            "fm_sitrep_history_sitrep_id_key",
            "fm_support_bundle_request_pkey",
        ],
    ),
    ("task_status_upsert", &["fm_executor_task_status_pkey"]),
    ("task_status_page", &["fm_executor_task_status_pkey"]),
    ("task_status_page_first", &["fm_executor_task_status_pkey"]),
    ("task_status_of_executor", &["fm_executor_task_status_pkey"]),
    ("alert_get", &["alert_pkey"]),
    ("alert_get_including_deleted", &["alert_pkey"]),
    ("alert_page", &["alert_pkey"]),
    ("alert_page_first", &["alert_pkey"]),
    ("alert_by_case_page", &["lookup_live_alert_by_case"]),
    ("alert_by_case_page_first", &["lookup_live_alert_by_case"]),
    ("alert_dispatch_queue_first", &["lookup_undispatched_alert"]),
    ("alert_dispatch_queue_after", &["lookup_undispatched_alert"]),
    ("alert_mark_dispatched", &["alert_pkey"]),
    ("alert_tombstone", &["alert_pkey"]),
    ("alert_hard_delete", &["alert_pkey"]),
    ("support_bundle_get", &["support_bundle_pkey"]),
    ("support_bundle_get_including_deleted", &["support_bundle_pkey"]),
    ("support_bundle_page", &["support_bundle_pkey"]),
    ("support_bundle_page_first", &["support_bundle_pkey"]),
    ("support_bundle_by_executor_page", &["lookup_live_support_bundle_by_executor"]),
    ("support_bundle_by_executor_page_first", &["lookup_live_support_bundle_by_executor"]),
    ("support_bundle_by_case_page", &["lookup_live_support_bundle_by_case"]),
    ("support_bundle_by_case_page_first", &["lookup_live_support_bundle_by_case"]),
    ("support_bundle_update_state", &["support_bundle_pkey"]),
    ("support_bundle_update_comment", &["support_bundle_pkey"]),
    ("support_bundle_orphaned_page", &["lookup_live_support_bundle_by_executor"]),
    ("support_bundle_orphaned_page_first", &["lookup_live_support_bundle_by_executor"]),
    // The planner may take the primary key or the executor index here.
    ("support_bundle_fail", &[]),
    ("support_bundle_tombstone", &["support_bundle_pkey"]),
    ("support_bundle_hard_delete", &["support_bundle_pkey"]),
];

/// The expected indexes of one query (empty if it is not listed, which a
/// unit test forbids).
fn expected_indexes(name: &str) -> &'static [&'static str] {
    EXPECTED_INDEXES.iter().find(|(n, _)| *n == name).map_or(&[], |(_, indexes)| *indexes)
}

fn sample_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("valid time")
}

fn sample_sitrep_row() -> SitrepRow {
    SitrepRow {
        id: SAMPLE_SITREP,
        parent_sitrep_id: None,
        creator_id: SAMPLE_ID,
        time_created: sample_time(),
        comment: "sample".into(),
        alert_generation: 1,
        support_bundle_generation: 1,
    }
}

fn sample_case_row() -> CaseRow {
    CaseRow {
        sitrep_id: SAMPLE_SITREP,
        id: SAMPLE_ID,
        diagnosis_engine: "engine".into(),
        opened_sitrep_id: SAMPLE_SITREP,
        closed_sitrep_id: None,
        comment: String::new(),
    }
}

fn sample_alert_request_row() -> AlertRequestRow {
    AlertRequestRow {
        sitrep_id: SAMPLE_SITREP,
        id: SAMPLE_ID,
        case_id: SAMPLE_ID,
        requested_sitrep_id: SAMPLE_SITREP,
        class: "class".into(),
        payload: serde_json::json!({}),
    }
}

fn sample_support_bundle_request_row() -> SupportBundleRequestRow {
    SupportBundleRequestRow {
        sitrep_id: SAMPLE_SITREP,
        id: SAMPLE_ID,
        case_id: SAMPLE_ID,
        requested_sitrep_id: SAMPLE_SITREP,
        reason: "reason".into(),
        data_selection: serde_json::json!({}),
    }
}

fn sample_task_status() -> TaskStatusRow {
    TaskStatusRow {
        executor_id: SAMPLE_ID,
        task_name: "fm_rendezvous".into(),
        iteration: 1,
        time_started: sample_time(),
        duration_usec: 1500,
        status: serde_json::json!({}),
    }
}

/// Every production query, with sample parameters.
pub fn catalogue() -> Vec<CatalogueEntry> {
    let ids = vec![SAMPLE_ID, Uuid::from_u128(SAMPLE_ID.as_u128() + 1)];
    vec![
        // Schema version (migration.rs).
        entry!("db_metadata_exists", db_metadata_exists_query()),
        entry!("schema_version", schema_version_query()),
        entry!("schema_migration_lock", migration_lock_query()),
        entry!("schema_migration_unlock", migration_unlock_query()),
        entry!("schema_target_version_update", target_version_update_query(3)),
        entry!("schema_first_version_insert", first_version_insert_query(sample_time())),
        entry!("schema_version_update", version_update_query(3, sample_time())),
        entry!("server_version", server_version_query()),
        // Sitrep history and metadata (datastore/sitrep).
        entry!("sitrep_current_history_entry", current_history_entry_query()),
        entry!("sitrep_history_entry_by_sitrep", history_entry_by_sitrep_query(SAMPLE_SITREP)),
        entry!("sitrep_metadata", sitrep_metadata_query(SAMPLE_SITREP)),
        entry!("sitrep_history_page_ascending", history_page_ascending_query(7, 100)),
        entry!("sitrep_history_page_descending", history_page_descending_query(i64::MAX, 100)),
        // Reading a sitrep's children page by page.
        entry!("sitrep_case_page_first", case_page_query(SAMPLE_SITREP, None)),
        entry!("sitrep_case_page", case_page_query(SAMPLE_SITREP, Some(SAMPLE_ID))),
        entry!(
            "sitrep_alert_request_page_first",
            alert_request_page_query(SAMPLE_SITREP, None, 1000)
        ),
        entry!(
            "sitrep_alert_request_page",
            alert_request_page_query(SAMPLE_SITREP, Some(SAMPLE_ID), 1000)
        ),
        entry!(
            "sitrep_support_bundle_request_page_first",
            support_bundle_request_page_query(SAMPLE_SITREP, None, 1000)
        ),
        entry!(
            "sitrep_support_bundle_request_page",
            support_bundle_request_page_query(SAMPLE_SITREP, Some(SAMPLE_ID), 1000)
        ),
        entry!(
            "sitrep_alert_request_id_page_first",
            alert_request_id_page_query(SAMPLE_SITREP, None, 1000)
        ),
        entry!(
            "sitrep_alert_request_id_page",
            alert_request_id_page_query(SAMPLE_SITREP, Some(SAMPLE_ID), 1000)
        ),
        entry!(
            "sitrep_support_bundle_request_id_page_first",
            support_bundle_request_id_page_query(SAMPLE_SITREP, None, 1000)
        ),
        entry!(
            "sitrep_support_bundle_request_id_page",
            support_bundle_request_id_page_query(SAMPLE_SITREP, Some(SAMPLE_ID), 1000)
        ),
        // Publishing: the writes.
        entry!("sitrep_insert_sitrep_row", sitrep_row_insert_query(sample_sitrep_row())),
        entry!("sitrep_insert_cases", case_rows_insert_query(vec![sample_case_row(); 2])),
        entry!(
            "sitrep_insert_alert_requests",
            alert_request_rows_insert_query(vec![sample_alert_request_row(); 2])
        ),
        entry!(
            "sitrep_insert_support_bundle_requests",
            support_bundle_request_rows_insert_query(vec![sample_support_bundle_request_row(); 2])
        ),
        entry!(
            "sitrep_insert_history_entry",
            history_insert_query(SitrepHistoryRow {
                version: 7,
                sitrep_id: SAMPLE_SITREP,
                time_made_current: sample_time(),
            })
        ),
        // Publishing: the fresh-id checks.
        entry!("sitrep_insert_alert_any_of", alert_any_of_query(ids.clone())),
        entry!("sitrep_insert_collected_any_of", collected_any_of_query(ids.clone())),
        entry!("sitrep_insert_support_bundle_any_of", support_bundle_any_of_query(ids.clone())),
        entry!("sitrep_insert_alert_request_any_of", alert_request_any_of_query(ids.clone())),
        entry!(
            "sitrep_insert_support_bundle_request_any_of",
            support_bundle_request_any_of_query(ids.clone())
        ),
        // Reads of the debug CLI.
        entry!(
            "debug_alert_including_deleted_first_page",
            alert_including_deleted_first_page_query(100)
        ),
        entry!(
            "debug_support_bundle_including_deleted_first_page",
            support_bundle_including_deleted_first_page_query(100)
        ),
        entry!("debug_alert_request_count", alert_request_count_query(SAMPLE_SITREP)),
        entry!(
            "debug_support_bundle_request_count",
            support_bundle_request_count_query(SAMPLE_SITREP)
        ),
        entry!("debug_collected_of", collected_of_query(ids.clone())),
        entry!("debug_archive_sitrep_id_by_version", archive_sitrep_id_by_version_query(7)),
        entry!("debug_alert_tombstone_summary", alert_tombstone_summary_query()),
        entry!("debug_support_bundle_tombstone_summary", support_bundle_tombstone_summary_query()),
        entry!("debug_alert_tombstone_first_page", alert_tombstone_first_page_query(100)),
        entry!(
            "debug_support_bundle_tombstone_first_page",
            support_bundle_tombstone_first_page_query(100)
        ),
        // History retention.
        entry!("sitrep_prune_history_page", prunable_history_page_query(90, 10)),
        entry!("sitrep_prune_history_entry_by_version", history_entry_by_version_query(11)),
        entry!("sitrep_prune_delete_sitrep", sitrep_delete_query(SAMPLE_SITREP)),
        entry!("sitrep_prune_delete_cases", case_delete_query(SAMPLE_SITREP)),
        entry!("sitrep_prune_delete_alert_requests", alert_request_delete_query(SAMPLE_SITREP)),
        entry!(
            "sitrep_prune_delete_support_bundle_requests",
            support_bundle_request_delete_query(SAMPLE_SITREP)
        ),
        entry!("sitrep_prune_delete_history_entry", history_delete_query(11)),
        entry!(
            "sitrep_archive_insert",
            archive_insert_query(SitrepArchiveRow {
                sitrep_id: SAMPLE_SITREP,
                version: 7,
                time_made_current: sample_time(),
                time_archived: sample_time(),
                sitrep: serde_json::json!({}),
            })
        ),
        entry!("sitrep_archive_entry", archive_entry_query(SAMPLE_SITREP)),
        entry!("sitrep_archive_nth_newest_version", archive_nth_newest_version_query(1000)),
        entry!("sitrep_archive_page_at_or_below", archive_page_at_or_below_query(40)),
        entry!("sitrep_archive_delete", archive_delete_query(ids.clone())),
        entry!(
            "sitrep_insert_notify",
            crate::datastore::sitrep::insert::sitrep_notify_query(
                nexus_fm_types::SitrepVersion::try_new(7).expect("valid version")
            )
        ),
        // Rendezvous: the guarded batched creation (hand-built).
        entry!(
            "rendezvous_guarded_create_alert_first",
            guarded_create_sample(ResourceType::Alert, None)
        ),
        entry!(
            "rendezvous_guarded_create_alert",
            guarded_create_sample(ResourceType::Alert, Some(SAMPLE_ID))
        ),
        entry!(
            "rendezvous_guarded_create_support_bundle",
            guarded_create_sample(ResourceType::SupportBundle, Some(SAMPLE_ID))
        ),
        entry!(
            "rendezvous_guarded_create_support_bundle_first",
            guarded_create_sample(ResourceType::SupportBundle, None)
        ),
        entry!(
            "resource_create_alert",
            plain_alert_insert_query(
                nexus_fm_types::AlertUuid::from_untyped(SAMPLE_ID),
                "class".into(),
                serde_json::json!({}),
                sample_time()
            )
        ),
        entry!(
            "resource_create_support_bundle",
            plain_support_bundle_insert_query(
                nexus_fm_types::SupportBundleUuid::from_untyped(SAMPLE_ID),
                "reason".into(),
                serde_json::json!({}),
                sample_time()
            )
        ),
        entry!("rendezvous_alert_rows_of", alert_rows_of_query(ids.clone())),
        entry!("rendezvous_support_bundle_rows_of", support_bundle_rows_of_query(ids.clone())),
        // The tombstone sweep (hand-built).
        entry!("sweep_page_alert_first", sweep_page_sample(ResourceType::Alert, None)),
        entry!("sweep_page_alert", sweep_page_sample(ResourceType::Alert, Some(SAMPLE_ID))),
        entry!(
            "sweep_page_support_bundle_first",
            sweep_page_sample(ResourceType::SupportBundle, None)
        ),
        entry!(
            "sweep_page_support_bundle",
            sweep_page_sample(ResourceType::SupportBundle, Some(SAMPLE_ID))
        ),
        // Executor task status.
        entry!("task_status_upsert", task_status_upsert_query(sample_task_status())),
        entry!("task_status_page_first", task_status_page_query(None, 100)),
        entry!(
            "task_status_page",
            task_status_page_query(Some((SAMPLE_ID, "fm_rendezvous".into())), 100)
        ),
        entry!("task_status_of_executor", task_status_of_executor_query(SAMPLE_ID, 100)),
        // Alerts: readers (tombstones invisible), dispatch, delete.
        entry!("alert_get", alert_get_query(SAMPLE_ID)),
        entry!("alert_get_including_deleted", alert_get_including_deleted_query(SAMPLE_ID)),
        entry!("alert_page_first", alert_page_query(None, 100)),
        entry!("alert_page", alert_page_query(Some(SAMPLE_ID), 100)),
        entry!("alert_by_case_page_first", alert_by_case_page_query(SAMPLE_ID, None, 100)),
        entry!("alert_by_case_page", alert_by_case_page_query(SAMPLE_ID, Some(SAMPLE_ID), 100)),
        entry!("alert_dispatch_queue_first", alert_dispatch_queue_first_query(100)),
        entry!(
            "alert_dispatch_queue_after",
            alert_dispatch_queue_after_query(sample_time(), SAMPLE_ID, 100)
        ),
        entry!("alert_mark_dispatched", alert_mark_dispatched_query(SAMPLE_ID, sample_time())),
        entry!("alert_tombstone", alert_tombstone_query(SAMPLE_ID, sample_time())),
        entry!("alert_hard_delete", alert_hard_delete_query(SAMPLE_ID)),
        // Support bundles: readers and updaters (tombstones invisible), delete.
        entry!("support_bundle_get", support_bundle_get_query(SAMPLE_ID)),
        entry!(
            "support_bundle_get_including_deleted",
            support_bundle_get_including_deleted_query(SAMPLE_ID)
        ),
        entry!("support_bundle_page_first", support_bundle_page_query(None, 100)),
        entry!("support_bundle_page", support_bundle_page_query(Some(SAMPLE_ID), 100)),
        entry!(
            "support_bundle_by_executor_page_first",
            support_bundle_by_executor_page_query(SAMPLE_ID, None, 100)
        ),
        entry!(
            "support_bundle_by_executor_page",
            support_bundle_by_executor_page_query(SAMPLE_ID, Some(SAMPLE_ID), 100)
        ),
        entry!(
            "support_bundle_by_case_page_first",
            support_bundle_by_case_page_query(SAMPLE_ID, None, 100)
        ),
        entry!(
            "support_bundle_by_case_page",
            support_bundle_by_case_page_query(SAMPLE_ID, Some(SAMPLE_ID), 100)
        ),
        entry!(
            "support_bundle_update_state",
            support_bundle_update_state_query(SAMPLE_ID, SupportBundleState::Active)
        ),
        entry!(
            "support_bundle_update_comment",
            support_bundle_update_comment_query(SAMPLE_ID, Some("comment".into()))
        ),
        entry!(
            "support_bundle_orphaned_page_first",
            support_bundle_orphaned_page_query(SAMPLE_ID, None, 1000)
        ),
        entry!(
            "support_bundle_orphaned_page",
            support_bundle_orphaned_page_query(SAMPLE_ID, Some(SAMPLE_ID), 1000)
        ),
        entry!("support_bundle_fail", support_bundle_fail_query(SAMPLE_ID, ids.clone())),
        entry!(
            "support_bundle_tombstone",
            support_bundle_tombstone_query(SAMPLE_ID, sample_time())
        ),
        entry!("support_bundle_hard_delete", support_bundle_hard_delete_query(SAMPLE_ID)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQL of every catalogued query, as reviewed. Regenerate with
    /// `EXPECTORATE=overwrite cargo test -p fm-db-queries`.
    #[test]
    fn sql_snapshots() {
        let entries = catalogue();
        for entry in &entries {
            expectorate::assert_contents(
                format!("tests/output/{}.sql", entry.name),
                &format!("{}\n", entry.sql),
            );
        }
        // A snapshot without a catalogue entry is a query that was removed
        // or renamed: delete its file.
        let names: std::collections::BTreeSet<String> =
            entries.iter().map(|e| format!("{}.sql", e.name)).collect();
        for file in std::fs::read_dir("tests/output").unwrap() {
            let file = file.unwrap().file_name().into_string().unwrap();
            assert!(names.contains(&file), "tests/output/{file} has no catalogue entry");
        }
    }

    #[test]
    fn every_entry_states_its_indexes() {
        let entries = catalogue();
        let names: std::collections::BTreeSet<&str> = entries.iter().map(|e| e.name).collect();
        let listed: std::collections::BTreeSet<&str> =
            EXPECTED_INDEXES.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, listed, "EXPECTED_INDEXES must list exactly the catalogued queries");
    }

    #[test]
    fn names_are_unique_and_snapshot_friendly() {
        let entries = catalogue();
        let mut names: Vec<_> = entries.iter().map(|e| e.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate catalogue names");
        for name in names {
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
    }
}
