//! `fmdb tombstones`: per resource type, the tombstones (rows an operator
//! deleted that the sweep has not reclaimed yet) and the oldest one's age;
//! `--list` shows each.
//!
//! The dry run of the next sweep (how many it would hard-delete, and why it
//! keeps the others) is not computed: it must use the sweep's own
//! predicate, which db-queries does not expose yet, and a copy would be a
//! second definition of when a tombstone may go. The command says so
//! rather than guess.

use crate::db::{Access, open};
use crate::output::{age, opt_time, print_json, table};
use crate::resources::{Provenance, ResourceView};
use crate::{CliError, Context, Exit};
use chrono::{DateTime, Utc};
use clap::Args;
use diesel_async::RunQueryDsl;
use fm_db_queries::datastore::alert::AlertRow;
use fm_db_queries::datastore::debug::{
    alert_tombstone_first_page_query, alert_tombstone_summary_query,
    support_bundle_tombstone_first_page_query, support_bundle_tombstone_summary_query,
};
use fm_db_queries::datastore::support_bundle::SupportBundleRow;
use nexus_fm_types::ResourceType;
use serde::Serialize;
use tabled::Tabled;

/// What `tombstones` says instead of a dry run.
pub const DRY_RUN_UNAVAILABLE: &str = "not computed: fmdb would need the sweep's own predicate \
     (db-queries' sweep.rs does not expose it yet), and it does not copy it";

/// `fmdb tombstones`.
#[derive(Debug, Args)]
pub struct TombstonesArgs {
    /// Also list each tombstone (at most --fetch-limit per type).
    #[arg(long)]
    pub list: bool,
}

/// One type's tombstones.
#[derive(Clone, Debug, Serialize)]
pub struct TypeSummary {
    /// The resource type.
    pub resource: ResourceType,
    /// How many tombstones it has.
    pub tombstones: i64,
    /// When the oldest was deleted.
    pub oldest_time_deleted: Option<DateTime<Utc>>,
    /// Each tombstone, with `--list`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<Vec<ResourceView>>,
}

/// `tombstones --json`.
#[derive(Clone, Debug, Serialize)]
pub struct TombstonesView {
    /// The time ages are measured against.
    pub now: DateTime<Utc>,
    /// Per type.
    pub types: Vec<TypeSummary>,
    /// Why there is no dry run of the next sweep.
    pub dry_run: &'static str,
}

#[derive(Tabled)]
struct SummaryRow {
    #[tabled(rename = "TYPE")]
    resource: String,
    #[tabled(rename = "TOMBSTONES")]
    tombstones: i64,
    #[tabled(rename = "OLDEST DELETED")]
    oldest: String,
    #[tabled(rename = "OLDEST AGE")]
    age: String,
}

#[derive(Tabled)]
struct ListRow {
    #[tabled(rename = "TYPE")]
    resource: String,
    #[tabled(rename = "ID")]
    id: String,
    #[tabled(rename = "TIME DELETED")]
    time_deleted: String,
    #[tabled(rename = "AGE")]
    age: String,
    #[tabled(rename = "MADE IN SITREP")]
    sitrep: String,
    #[tabled(rename = "GEN")]
    generation: String,
}

/// Runs `tombstones`.
///
/// # Errors
///
/// Connection and database errors.
pub async fn run(ctx: &Context, args: TombstonesArgs) -> Result<Exit, CliError> {
    let db = open(ctx, Access::ReadOnly).await?;
    let mut conn = db.conn().await?;
    let failed = |what: &str, e: diesel::result::Error| {
        CliError::new(Exit::Failure, format!("reading {what} tombstones: {e}"))
    };
    let limit = i64::from(ctx.global.fetch_limit);
    let mut types = Vec::new();
    for resource in [ResourceType::Alert, ResourceType::SupportBundle] {
        let (tombstones, oldest_time_deleted): (i64, Option<DateTime<Utc>>) = match resource {
            ResourceType::Alert => alert_tombstone_summary_query().get_result(&mut *conn).await,
            ResourceType::SupportBundle => {
                support_bundle_tombstone_summary_query().get_result(&mut *conn).await
            }
        }
        .map_err(|e| failed(&resource.to_string(), e))?;
        let list = if args.list {
            let mut rows: Vec<ResourceView> = match resource {
                ResourceType::Alert => alert_tombstone_first_page_query(limit + 1)
                    .load::<AlertRow>(&mut *conn)
                    .await
                    .map(|rows| rows.into_iter().map(ResourceView::from).collect()),
                ResourceType::SupportBundle => support_bundle_tombstone_first_page_query(limit + 1)
                    .load::<SupportBundleRow>(&mut *conn)
                    .await
                    .map(|rows| rows.into_iter().map(ResourceView::from).collect()),
            }
            .map_err(|e| failed(&resource.to_string(), e))?;
            if rows.len() > ctx.global.fetch_limit as usize {
                rows.truncate(ctx.global.fetch_limit as usize);
                ctx.warn_cut(&format!("{resource} tombstones"));
            }
            Some(rows)
        } else {
            None
        };
        types.push(TypeSummary { resource, tombstones, oldest_time_deleted, list });
    }
    let view = TombstonesView { now: ctx.now, types, dry_run: DRY_RUN_UNAVAILABLE };
    if ctx.global.json {
        print_json(&view);
        return Ok(Exit::Ok);
    }
    println!(
        "{}",
        table(view.types.iter().map(|t| SummaryRow {
            resource: t.resource.to_string(),
            tombstones: t.tombstones,
            oldest: opt_time(t.oldest_time_deleted.as_ref()),
            age: t.oldest_time_deleted.map_or_else(|| "-".to_string(), |d| age(view.now, d)),
        }))
    );
    println!("dry run of the next sweep: {DRY_RUN_UNAVAILABLE}");
    if args.list {
        let rows: Vec<ListRow> = view
            .types
            .iter()
            .flat_map(|t| t.list.iter().flatten().map(move |v| (t.resource, v)))
            .map(|(resource, v)| {
                let (sitrep, generation) = match &v.provenance {
                    Provenance::FaultManagement { sitrep_id, generation, .. } => {
                        (sitrep_id.to_string(), generation.to_string())
                    }
                    Provenance::NotFaultManagement => {
                        ("not made by fault management".to_string(), "-".to_string())
                    }
                    Provenance::BadData { error, .. } => (format!("bad data: {error}"), "?".into()),
                };
                ListRow {
                    resource: resource.to_string(),
                    id: v.id.to_string(),
                    time_deleted: opt_time(v.time_deleted.as_ref()),
                    age: v.time_deleted.map_or_else(|| "-".to_string(), |d| age(view.now, d)),
                    sitrep,
                    generation,
                }
            })
            .collect();
        println!();
        if rows.is_empty() {
            println!("no tombstones");
        } else {
            println!("{}", table(rows));
        }
    }
    Ok(Exit::Ok)
}
