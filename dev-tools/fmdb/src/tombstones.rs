//! `fmdb tombstones`: per resource type, the tombstones (rows an operator
//! deleted that the sweep has not reclaimed yet), the oldest one's age, and
//! a dry run of the next sweep driven by the current sitrep: how many it
//! would hard-delete and why it keeps the others; `--list` shows each
//! tombstone with what that sweep would do with it.
//!
//! The dry run is `DataStore::fm_tombstones_sweep_dry_run`, which computes
//! each tombstone's reason with the sweep's own SQL (db-queries' sweep.rs),
//! not a copy of its predicate.

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
use fm_db_queries::datastore::sweep::{SweepDryRun, SweepReason};
use nexus_fm_types::ResourceType;
use nexus_fm_types::ids::SitrepUuid;
use serde::Serialize;
use std::collections::BTreeMap;
use tabled::Tabled;
use uuid::Uuid;

/// What `tombstones` says when there is no current sitrep.
pub const NO_CURRENT_SITREP: &str = "no current sitrep (nothing has been published): no sweep runs";

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
    /// The dry run of the next sweep driven by the current sitrep (`None`:
    /// there is no current sitrep).
    pub next_sweep: Option<NextSweep>,
    /// Each tombstone, with `--list`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<Vec<ListedTombstone>>,
}

/// What the next sweep of one type would do (its dry run).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct NextSweep {
    /// Tombstones it would examine.
    pub examined: u64,
    /// Tombstones it would hard-delete.
    pub would_hard_delete: u64,
    /// Kept: the current sitrep still requests them.
    pub kept_still_requested: u64,
    /// Kept: created at the current sitrep's generation or later.
    pub kept_too_new: u64,
    /// Kept: the driving sitrep is missing (no row or no history entry).
    pub kept_sitrep_missing: u64,
}

impl From<&SweepDryRun> for NextSweep {
    fn from(dry: &SweepDryRun) -> Self {
        let c = &dry.counts;
        NextSweep {
            examined: c.tombstones_examined,
            would_hard_delete: c.hard_deleted,
            kept_still_requested: c.retained_still_requested,
            kept_too_new: c.retained_too_new,
            kept_sitrep_missing: c.retained_sitrep_missing,
        }
    }
}

/// One tombstone of `--list`, with what the next sweep would do with it.
#[derive(Clone, Debug, Serialize)]
pub struct ListedTombstone {
    /// The row.
    #[serde(flatten)]
    pub resource: ResourceView,
    /// The next sweep's reason (`None`: no current sitrep, or not examined
    /// by the dry run, e.g. deleted since).
    pub next_sweep: Option<SweepReason>,
}

/// `tombstones --json`.
#[derive(Clone, Debug, Serialize)]
pub struct TombstonesView {
    /// The time ages are measured against.
    pub now: DateTime<Utc>,
    /// The sitrep that drives the next sweep: the current one (`None`:
    /// nothing has been published, no sweep runs).
    pub sweep_sitrep: Option<SitrepUuid>,
    /// Per type.
    pub types: Vec<TypeSummary>,
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
    #[tabled(rename = "WOULD DELETE")]
    delete: String,
    #[tabled(rename = "KEPT: REQUESTED")]
    requested: String,
    #[tabled(rename = "KEPT: TOO NEW")]
    too_new: String,
    #[tabled(rename = "KEPT: SITREP MISSING")]
    missing: String,
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
    #[tabled(rename = "NEXT SWEEP")]
    next_sweep: String,
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
    let sweep_sitrep = db
        .datastore
        .sitrep_current_version(&db.opctx)
        .await
        .map_err(|e| CliError::database("reading the current sitrep", &e))?
        .map(|entry| entry.sitrep_id);
    let mut types = Vec::new();
    for resource in [ResourceType::Alert, ResourceType::SupportBundle] {
        let (tombstones, oldest_time_deleted): (i64, Option<DateTime<Utc>>) = match resource {
            ResourceType::Alert => alert_tombstone_summary_query().get_result(&mut *conn).await,
            ResourceType::SupportBundle => {
                support_bundle_tombstone_summary_query().get_result(&mut *conn).await
            }
        }
        .map_err(|e| failed(&resource.to_string(), e))?;
        let dry_run = match sweep_sitrep {
            Some(sitrep) => Some(
                db.datastore
                    .fm_tombstones_sweep_dry_run(
                        &db.opctx,
                        sitrep,
                        resource,
                        None,
                        if args.list { ctx.global.fetch_limit as usize + 1 } else { 0 },
                    )
                    .await
                    .map_err(|e| {
                        CliError::database(&format!("the dry run of the {resource} sweep"), &e)
                    })?,
            ),
            None => None,
        };
        let reasons: BTreeMap<Uuid, SweepReason> =
            dry_run.iter().flat_map(|d| d.tombstones.iter().map(|t| (t.id, t.reason))).collect();
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
            Some(
                rows.into_iter()
                    .map(|v| ListedTombstone {
                        next_sweep: reasons.get(&v.id).copied(),
                        resource: v,
                    })
                    .collect(),
            )
        } else {
            None
        };
        types.push(TypeSummary {
            resource,
            tombstones,
            oldest_time_deleted,
            next_sweep: dry_run.as_ref().map(NextSweep::from),
            list,
        });
    }
    let view = TombstonesView { now: ctx.now, sweep_sitrep, types };
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
            delete: count(t.next_sweep.map(|n| n.would_hard_delete)),
            requested: count(t.next_sweep.map(|n| n.kept_still_requested)),
            too_new: count(t.next_sweep.map(|n| n.kept_too_new)),
            missing: count(t.next_sweep.map(|n| n.kept_sitrep_missing)),
        }))
    );
    match view.sweep_sitrep {
        Some(sitrep) => println!(
            "dry run of the next sweep, driven by the current sitrep {sitrep} (the sweep's own \
             predicate; nothing is deleted)"
        ),
        None => println!("dry run of the next sweep: {NO_CURRENT_SITREP}"),
    }
    if args.list {
        let rows: Vec<ListRow> = view
            .types
            .iter()
            .flat_map(|t| t.list.iter().flatten().map(move |v| (t.resource, v)))
            .map(|(resource, listed)| {
                let v = &listed.resource;
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
                    next_sweep: listed
                        .next_sweep
                        .map_or_else(|| "-".to_string(), |r| r.to_string()),
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

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}
