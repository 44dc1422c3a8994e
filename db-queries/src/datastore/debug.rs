//! Reads for the debug CLI (`fmdb`) that no other part of the system needs.
//!
//! Each is a bounded statement built by a `*_query` function and listed in
//! the [`crate::catalogue`], like every other production query: the CLI runs
//! against production databases, so it must not scan whole tables either.
//! The CLI runs them on a connection from
//! [`DataStore::pool_connection_authorized`](crate::DataStore::pool_connection_authorized),
//! so the viewer role's authorization comes first.
//!
//! Readers here that return tombstones say so in their name
//! (`*_including_deleted_*`): only debug tooling shows them, and only when
//! asked.

use crate::datastore::alert::AlertRow;
use crate::datastore::support_bundle::SupportBundleRow;
use crate::db_schema::{alert, fm_collected_resource, fm_sitrep_archive, support_bundle};
use diesel::dsl::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::*;
use uuid::Uuid;

/// The first `limit` alerts in id order, **tombstones included**, by the
/// primary key. The CLI lists one page and warns when it is full.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_including_deleted_first_page_query(limit: i64) -> _ {
    let columns: AsSelect<AlertRow, Pg> = AlertRow::as_select();
    alert::table.order(alert::id).limit(limit).select(columns)
}

/// The first `limit` support bundles in id order, **tombstones included**,
/// by the primary key.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_including_deleted_first_page_query(limit: i64) -> _ {
    let columns: AsSelect<SupportBundleRow, Pg> = SupportBundleRow::as_select();
    support_bundle::table.order(support_bundle::id).limit(limit).select(columns)
}

/// Which of `ids` are in the ledger of collected (swept) resources, with
/// their resource type, by primary key.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn collected_of_query(ids: Vec<Uuid>) -> _ {
    fm_collected_resource::table
        .filter(fm_collected_resource::id.eq_any(ids))
        .select((fm_collected_resource::id, fm_collected_resource::resource_type))
}

/// The id of the archived sitrep that was current at `version`, by the
/// archive's unique version key.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn archive_sitrep_id_by_version_query(version: i64) -> _ {
    fm_sitrep_archive::table
        .filter(fm_sitrep_archive::version.eq(version))
        .select(fm_sitrep_archive::sitrep_id)
}

/// How many alert tombstones there are and when the oldest was deleted,
/// by the tombstone-only partial index.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_tombstone_summary_query() -> _ {
    let count: diesel::dsl::count_star = diesel::dsl::count_star();
    let oldest: diesel::helper_types::min<alert::time_deleted> =
        diesel::dsl::min(alert::time_deleted);
    alert::table.filter(alert::time_deleted.is_not_null()).select((count, oldest))
}

/// How many support-bundle tombstones there are and when the oldest was
/// deleted, by the tombstone-only partial index.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_tombstone_summary_query() -> _ {
    let count: diesel::dsl::count_star = diesel::dsl::count_star();
    let oldest: diesel::helper_types::min<support_bundle::time_deleted> =
        diesel::dsl::min(support_bundle::time_deleted);
    support_bundle::table.filter(support_bundle::time_deleted.is_not_null()).select((count, oldest))
}

/// The first `limit` alert tombstones in id order, by the tombstone-only
/// partial index.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_tombstone_first_page_query(limit: i64) -> _ {
    let columns: AsSelect<AlertRow, Pg> = AlertRow::as_select();
    alert::table
        .filter(alert::time_deleted.is_not_null())
        .order(alert::id)
        .limit(limit)
        .select(columns)
}

/// The first `limit` support-bundle tombstones in id order, by the
/// tombstone-only partial index.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_tombstone_first_page_query(limit: i64) -> _ {
    let columns: AsSelect<SupportBundleRow, Pg> = SupportBundleRow::as_select();
    support_bundle::table
        .filter(support_bundle::time_deleted.is_not_null())
        .order(support_bundle::id)
        .limit(limit)
        .select(columns)
}
