//! Sitreps in the database: publishing ([`insert`]), reading ([`read`]) and
//! history retention ([`prune`]).
//!
//! Every statement is built by a `*_query` function here or in a submodule,
//! so that production code and the EXPLAIN catalogue use the very same query.

pub mod insert;
pub mod prune;
pub mod read;

use crate::db_schema::{
    alert, fm_alert_request, fm_case, fm_collected_resource, fm_sitrep, fm_sitrep_history,
    fm_support_bundle_request, support_bundle,
};
use crate::keyset::KeysetPage;
use crate::model::{
    AlertRequestRow, CaseRow, SitrepHistoryRow, SitrepRow, SupportBundleRequestRow,
};
use diesel::dsl::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::*;
use uuid::Uuid;

/// Rows read per statement when a sitrep's children (or its request ids)
/// are read page by page with a keyset cursor. One constant for every such
/// walk, so that no statement returns an unbounded number of rows.
pub const READ_PAGE_ROWS: i64 = 10_000;

/// Loads every row of a keyset-paginated query, page by page: `page(after)`
/// builds the query for the rows after key `after` (`None` for the first
/// page, which has no lower bound, so no key is skipped, not even the nil
/// UUID) returning at most `page_rows` rows in key order, and `key` reads a
/// row's key. Each statement returns a bounded number of rows.
pub(crate) async fn load_all_pages<R, Q>(
    conn: &mut diesel_async::AsyncPgConnection,
    page_rows: i64,
    page: impl Fn(Option<Uuid>) -> Q,
    key: impl Fn(&R) -> Uuid,
) -> QueryResult<Vec<R>>
where
    Q: diesel_async::methods::LoadQuery<'static, diesel_async::AsyncPgConnection, R> + 'static,
    R: Send,
{
    use diesel_async::RunQueryDsl;
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let batch: Vec<R> = page(after).load(conn).await?;
        let full = batch.len() as i64 == page_rows;
        let Some(last) = batch.last() else { break };
        after = Some(key(last));
        rows.extend(batch);
        if !full {
            break;
        }
    }
    Ok(rows)
}

/// The newest history entry (the current sitrep), by a backward scan of the
/// history's primary key.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn current_history_entry_query() -> _ {
    let columns: AsSelect<SitrepHistoryRow, Pg> = SitrepHistoryRow::as_select();
    fm_sitrep_history::table.order(fm_sitrep_history::version.desc()).limit(1_i64).select(columns)
}

/// The history entry of one sitrep.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn history_entry_by_sitrep_query(sitrep_id: Uuid) -> _ {
    let columns: AsSelect<SitrepHistoryRow, Pg> = SitrepHistoryRow::as_select();
    fm_sitrep_history::table.filter(fm_sitrep_history::sitrep_id.eq(sitrep_id)).select(columns)
}

/// One sitrep's metadata row.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn sitrep_metadata_query(sitrep_id: Uuid) -> _ {
    let columns: AsSelect<SitrepRow, Pg> = SitrepRow::as_select();
    fm_sitrep::table.filter(fm_sitrep::id.eq(sitrep_id)).select(columns)
}

/// One page of a sitrep's cases in id order, after the case id `after`
/// (`None`: the first page).
pub fn case_page_query(
    sitrep_id: Uuid,
    after: Option<Uuid>,
) -> KeysetPage<page_statements::case_first_page_query, page_statements::case_after_page_query> {
    KeysetPage::new(
        after,
        || page_statements::case_first_page_query(sitrep_id),
        |after| page_statements::case_after_page_query(sitrep_id, after),
    )
}

/// One page of a sitrep's alert requests in id order, after `after`
/// (`None`: the first page).
pub fn alert_request_page_query(
    sitrep_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> KeysetPage<
    page_statements::alert_request_first_page_query,
    page_statements::alert_request_after_page_query,
> {
    KeysetPage::new(
        after,
        || page_statements::alert_request_first_page_query(sitrep_id, limit),
        |after| page_statements::alert_request_after_page_query(sitrep_id, after, limit),
    )
}

/// One page of a sitrep's support-bundle requests in id order, after
/// `after` (`None`: the first page).
pub fn support_bundle_request_page_query(
    sitrep_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> KeysetPage<
    page_statements::support_bundle_request_first_page_query,
    page_statements::support_bundle_request_after_page_query,
> {
    KeysetPage::new(
        after,
        || page_statements::support_bundle_request_first_page_query(sitrep_id, limit),
        |after| page_statements::support_bundle_request_after_page_query(sitrep_id, after, limit),
    )
}

/// One page of the ids of a sitrep's alert requests, after `after`
/// (`None`: the first page).
pub fn alert_request_id_page_query(
    sitrep_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> KeysetPage<
    page_statements::alert_request_id_first_page_query,
    page_statements::alert_request_id_after_page_query,
> {
    KeysetPage::new(
        after,
        || page_statements::alert_request_id_first_page_query(sitrep_id, limit),
        |after| page_statements::alert_request_id_after_page_query(sitrep_id, after, limit),
    )
}

/// One page of the ids of a sitrep's support-bundle requests, after
/// `after` (`None`: the first page).
pub fn support_bundle_request_id_page_query(
    sitrep_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> KeysetPage<
    page_statements::support_bundle_request_id_first_page_query,
    page_statements::support_bundle_request_id_after_page_query,
> {
    KeysetPage::new(
        after,
        || page_statements::support_bundle_request_id_first_page_query(sitrep_id, limit),
        |after| {
            page_statements::support_bundle_request_id_after_page_query(sitrep_id, after, limit)
        },
    )
}

/// The first of `ids` that exists as an alert row, live or tombstoned.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_any_of_query(ids: Vec<Uuid>) -> _ {
    alert::table.filter(alert::id.eq_any(ids)).order(alert::id).limit(1_i64).select(alert::id)
}

/// The first of `ids` that exists as a support-bundle row, live or
/// tombstoned.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_any_of_query(ids: Vec<Uuid>) -> _ {
    support_bundle::table
        .filter(support_bundle::id.eq_any(ids))
        .order(support_bundle::id)
        .limit(1_i64)
        .select(support_bundle::id)
}

/// How many cases a sitrep carries.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn case_count_query(sitrep_id: Uuid) -> _ {
    fm_case::table.filter(fm_case::sitrep_id.eq(sitrep_id)).count()
}

/// How many alert requests a sitrep carries, and how many of them it made
/// itself (first requested by it), in one pass over its rows.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_request_counts_query(sitrep_id: Uuid) -> _ {
    let new: diesel::dsl::case_when<
        diesel::dsl::Eq<fm_alert_request::requested_sitrep_id, Uuid>,
        fm_alert_request::id,
    > = diesel::dsl::case_when(
        fm_alert_request::requested_sitrep_id.eq(sitrep_id),
        fm_alert_request::id,
    );
    fm_alert_request::table
        .filter(fm_alert_request::sitrep_id.eq(sitrep_id))
        .select((diesel::dsl::count_star(), diesel::dsl::count(new)))
}

/// How many support-bundle requests a sitrep carries, and how many of them
/// it made itself, in one pass over its rows.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_request_counts_query(sitrep_id: Uuid) -> _ {
    let new: diesel::dsl::case_when<
        diesel::dsl::Eq<fm_support_bundle_request::requested_sitrep_id, Uuid>,
        fm_support_bundle_request::id,
    > = diesel::dsl::case_when(
        fm_support_bundle_request::requested_sitrep_id.eq(sitrep_id),
        fm_support_bundle_request::id,
    );
    fm_support_bundle_request::table
        .filter(fm_support_bundle_request::sitrep_id.eq(sitrep_id))
        .select((diesel::dsl::count_star(), diesel::dsl::count(new)))
}

/// The opening sitrep of those of `ids` that are cases of sitrep
/// `sitrep_id`, by primary key: what publishing compares a child's cases
/// with.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn case_opened_of_query(sitrep_id: Uuid, ids: Vec<Uuid>) -> _ {
    fm_case::table
        .filter(fm_case::sitrep_id.eq(sitrep_id))
        .filter(fm_case::id.eq_any(ids))
        .select((fm_case::id, fm_case::opened_sitrep_id))
}

/// The first of `ids` in the ledger of collected resources, with its
/// resource type.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn collected_any_of_query(ids: Vec<Uuid>) -> _ {
    fm_collected_resource::table
        .filter(fm_collected_resource::id.eq_any(ids))
        .order(fm_collected_resource::id)
        .limit(1_i64)
        .select((fm_collected_resource::id, fm_collected_resource::resource_type))
}

/// The first alert request (in any retained sitrep) whose id is one of
/// `ids`, by the request-id index.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_request_any_of_query(ids: Vec<Uuid>) -> _ {
    fm_alert_request::table
        .filter(fm_alert_request::id.eq_any(ids))
        .limit(1_i64)
        .select((fm_alert_request::sitrep_id, fm_alert_request::id))
}

/// The first support-bundle request (in any retained sitrep) whose id is one
/// of `ids`, by the request-id index.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_request_any_of_query(ids: Vec<Uuid>) -> _ {
    fm_support_bundle_request::table
        .filter(fm_support_bundle_request::id.eq_any(ids))
        .limit(1_i64)
        .select((fm_support_bundle_request::sitrep_id, fm_support_bundle_request::id))
}

/// The two statements of each keyset page query above: the first page (no
/// lower bound) and a later page. `auto_type` names each statement's type
/// after its function.
pub mod page_statements {
    #![allow(missing_docs)] // the type aliases that auto_type generates

    use super::*;

    /// The first page of [`case_page_query`]: no lower bound.
    #[diesel::dsl::auto_type]
    pub fn case_first_page_query(sitrep_id: Uuid) -> _ {
        let columns: AsSelect<CaseRow, Pg> = CaseRow::as_select();
        let page: i64 = READ_PAGE_ROWS;
        fm_case::table
            .filter(fm_case::sitrep_id.eq(sitrep_id))
            .order(fm_case::id)
            .limit(page)
            .select(columns)
    }

    /// A later page of [`case_page_query`]: keys above `after`.
    #[diesel::dsl::auto_type]
    pub fn case_after_page_query(sitrep_id: Uuid, after: Uuid) -> _ {
        let first: case_first_page_query = case_first_page_query(sitrep_id);
        first.filter(fm_case::id.gt(after))
    }

    /// The first page of [`alert_request_page_query`]: no lower bound.
    #[diesel::dsl::auto_type]
    pub fn alert_request_first_page_query(sitrep_id: Uuid, limit: i64) -> _ {
        let columns: AsSelect<AlertRequestRow, Pg> = AlertRequestRow::as_select();
        fm_alert_request::table
            .filter(fm_alert_request::sitrep_id.eq(sitrep_id))
            .order(fm_alert_request::id)
            .limit(limit)
            .select(columns)
    }

    /// A later page of [`alert_request_page_query`]: keys above `after`.
    #[diesel::dsl::auto_type]
    pub fn alert_request_after_page_query(sitrep_id: Uuid, after: Uuid, limit: i64) -> _ {
        let first: alert_request_first_page_query =
            alert_request_first_page_query(sitrep_id, limit);
        first.filter(fm_alert_request::id.gt(after))
    }

    /// The first page of [`support_bundle_request_page_query`]: no lower bound.
    #[diesel::dsl::auto_type]
    pub fn support_bundle_request_first_page_query(sitrep_id: Uuid, limit: i64) -> _ {
        let columns: AsSelect<SupportBundleRequestRow, Pg> = SupportBundleRequestRow::as_select();
        fm_support_bundle_request::table
            .filter(fm_support_bundle_request::sitrep_id.eq(sitrep_id))
            .order(fm_support_bundle_request::id)
            .limit(limit)
            .select(columns)
    }

    /// A later page of [`support_bundle_request_page_query`]: keys above `after`.
    #[diesel::dsl::auto_type]
    pub fn support_bundle_request_after_page_query(sitrep_id: Uuid, after: Uuid, limit: i64) -> _ {
        let first: support_bundle_request_first_page_query =
            support_bundle_request_first_page_query(sitrep_id, limit);
        first.filter(fm_support_bundle_request::id.gt(after))
    }

    /// The first page of [`alert_request_id_page_query`]: no lower bound.
    #[diesel::dsl::auto_type]
    pub fn alert_request_id_first_page_query(sitrep_id: Uuid, limit: i64) -> _ {
        fm_alert_request::table
            .filter(fm_alert_request::sitrep_id.eq(sitrep_id))
            .order(fm_alert_request::id)
            .limit(limit)
            .select(fm_alert_request::id)
    }

    /// A later page of [`alert_request_id_page_query`]: keys above `after`.
    #[diesel::dsl::auto_type]
    pub fn alert_request_id_after_page_query(sitrep_id: Uuid, after: Uuid, limit: i64) -> _ {
        let first: alert_request_id_first_page_query =
            alert_request_id_first_page_query(sitrep_id, limit);
        first.filter(fm_alert_request::id.gt(after))
    }

    /// The first page of [`support_bundle_request_id_page_query`]: no lower bound.
    #[diesel::dsl::auto_type]
    pub fn support_bundle_request_id_first_page_query(sitrep_id: Uuid, limit: i64) -> _ {
        fm_support_bundle_request::table
            .filter(fm_support_bundle_request::sitrep_id.eq(sitrep_id))
            .order(fm_support_bundle_request::id)
            .limit(limit)
            .select(fm_support_bundle_request::id)
    }

    /// A later page of [`support_bundle_request_id_page_query`]: keys above `after`.
    #[diesel::dsl::auto_type]
    pub fn support_bundle_request_id_after_page_query(
        sitrep_id: Uuid,
        after: Uuid,
        limit: i64,
    ) -> _ {
        let first: support_bundle_request_id_first_page_query =
            support_bundle_request_id_first_page_query(sitrep_id, limit);
        first.filter(fm_support_bundle_request::id.gt(after))
    }
}
