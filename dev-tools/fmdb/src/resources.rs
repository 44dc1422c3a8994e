//! `fmdb alert|support-bundle list|show|delete`.
//!
//! Rows are shown as stored: a row that the domain types would refuse
//! (incomplete provenance, an unknown state) is printed with what is wrong
//! with it rather than failing the listing.

use crate::db::{Access, Db, open};
use crate::output::{opt, opt_time, print_json, table, time};
use crate::sitrep::parse_uuid;
use crate::{CliError, Context, Exit};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fm_db_queries::datastore::alert::{
    AlertRow, Deleted, alert_get_including_deleted_query, alert_page_query, provenance_from_columns,
};
use fm_db_queries::datastore::debug::{
    alert_including_deleted_first_page_query, collected_of_query,
    support_bundle_including_deleted_first_page_query,
};
use fm_db_queries::datastore::support_bundle::{
    SupportBundleRow, support_bundle_get_including_deleted_query, support_bundle_page_query,
};
use nexus_fm_types::{AlertUuid, ResourceType, SupportBundleUuid};
use serde::Serialize;
use tabled::Tabled;
use uuid::Uuid;

/// `fmdb alert ...` and `fmdb support-bundle ...`.
#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// List them in id order: live rows, and with --include-deleted also
    /// tombstones (marked DELETED, with their time_deleted). Each row shows
    /// its provenance (case, sitrep, generation) or that fault management
    /// did not make it.
    List {
        /// Also list tombstones (rows an operator deleted).
        #[arg(long)]
        include_deleted: bool,
    },
    /// Show one, with its provenance and payload.
    Show {
        /// Its id.
        #[arg(value_name = "ID")]
        id: String,
        /// Show it even if it is a tombstone.
        #[arg(long)]
        include_deleted: bool,
    },
    /// Delete one as an operator (needs -w/--destructive): a resource made
    /// by fault management becomes a tombstone (soft delete) so that it is
    /// never re-created; any other is removed (hard delete). Exits 0 after
    /// either, 5 if there is nothing to delete.
    Delete {
        /// Its id.
        #[arg(value_name = "ID")]
        id: String,
    },
}

/// Where a resource came from.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Provenance {
    /// Created by fault management.
    FaultManagement {
        /// The case.
        case_id: Uuid,
        /// The sitrep the creating executor executed.
        sitrep_id: Uuid,
        /// That sitrep's generation for the type.
        generation: i64,
    },
    /// Not made by fault management.
    NotFaultManagement,
    /// The provenance columns contradict each other: shown as stored.
    BadData {
        /// What is wrong.
        error: String,
        /// The stored case id.
        fm_case_id: Option<Uuid>,
        /// The stored sitrep id.
        fm_sitrep_id: Option<Uuid>,
        /// The stored generation.
        fm_generation: Option<i64>,
    },
}

fn provenance(case: Option<Uuid>, sitrep: Option<Uuid>, generation: Option<i64>) -> Provenance {
    match provenance_from_columns(case, sitrep, generation) {
        Ok(Some(p)) => Provenance::FaultManagement {
            case_id: p.case_id.into_untyped(),
            sitrep_id: p.sitrep_id.into_untyped(),
            generation: p.generation.as_i64(),
        },
        Ok(None) => Provenance::NotFaultManagement,
        Err(e) => Provenance::BadData {
            error: e.to_string(),
            fm_case_id: case,
            fm_sitrep_id: sitrep,
            fm_generation: generation,
        },
    }
}

/// The columns only one resource type has.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Details {
    /// An alert.
    Alert {
        /// Its class.
        class: String,
        /// When it was dispatched (`None` while queued).
        time_dispatched: Option<DateTime<Utc>>,
    },
    /// A support bundle.
    SupportBundle {
        /// Why it was wanted.
        reason: String,
        /// Its lifecycle state, as stored.
        state: String,
        /// The executor collecting it.
        assigned_executor: Option<Uuid>,
        /// The operator's comment.
        user_comment: Option<String>,
    },
}

/// An alert or a support bundle, as stored.
#[derive(Clone, Debug, Serialize)]
pub struct ResourceView {
    /// Its id.
    pub id: Uuid,
    /// Whether it is a tombstone.
    pub deleted: bool,
    /// When an operator deleted it.
    pub time_deleted: Option<DateTime<Utc>>,
    /// When it was created.
    pub time_created: DateTime<Utc>,
    /// What only its type has.
    pub details: Details,
    /// The payload (alerts) or data selection (bundles).
    pub payload: serde_json::Value,
    /// Where it came from.
    pub provenance: Provenance,
}

impl From<AlertRow> for ResourceView {
    fn from(row: AlertRow) -> Self {
        let AlertRow {
            id,
            class,
            payload,
            time_created,
            time_dispatched,
            fm_case_id,
            fm_sitrep_id,
            fm_generation,
            time_deleted,
        } = row;
        ResourceView {
            id,
            deleted: time_deleted.is_some(),
            time_deleted,
            time_created,
            details: Details::Alert { class, time_dispatched },
            payload,
            provenance: provenance(fm_case_id, fm_sitrep_id, fm_generation),
        }
    }
}

impl From<SupportBundleRow> for ResourceView {
    fn from(row: SupportBundleRow) -> Self {
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
        ResourceView {
            id,
            deleted: time_deleted.is_some(),
            time_deleted,
            time_created,
            details: Details::SupportBundle { reason, state, assigned_executor, user_comment },
            payload: data_selection,
            provenance: provenance(fm_case_id, fm_sitrep_id, fm_generation),
        }
    }
}

/// The name of a type as the messages say it.
fn noun(resource: ResourceType) -> &'static str {
    match resource {
        ResourceType::Alert => "alert",
        ResourceType::SupportBundle => "support bundle",
    }
}

fn diesel_error(context: String, e: &diesel::result::Error) -> CliError {
    CliError::new(Exit::Failure, format!("{context}: {e}"))
}

/// Runs an alert or support-bundle command.
///
/// # Errors
///
/// Usage errors before connecting; then connection and lookup errors.
pub async fn run(
    ctx: &Context,
    resource: ResourceType,
    command: ResourceCommand,
) -> Result<Exit, CliError> {
    match command {
        ResourceCommand::List { include_deleted } => {
            let db = open(ctx, Access::ReadOnly).await?;
            list(ctx, &db, resource, include_deleted).await
        }
        ResourceCommand::Show { id, include_deleted } => {
            let id = parse_uuid(&id, &format!("{} id", noun(resource)))?;
            let db = open(ctx, Access::ReadOnly).await?;
            show(ctx, &db, resource, id, include_deleted).await
        }
        ResourceCommand::Delete { id } => {
            let id = parse_uuid(&id, &format!("{} id", noun(resource)))?;
            if !ctx.global.destructive {
                return Err(CliError::new(
                    Exit::Usage,
                    format!(
                        "deleting {} {id} writes to the database: pass -w/--destructive to do \
                         it (nothing was written)",
                        noun(resource)
                    ),
                ));
            }
            let db = open(ctx, Access::Operator).await?;
            delete(ctx, &db, resource, id).await
        }
    }
}

#[derive(Tabled)]
struct ListRow {
    #[tabled(rename = "ID")]
    id: String,
    #[tabled(rename = "STATE")]
    state: String,
    #[tabled(rename = "TIME DELETED")]
    time_deleted: String,
    #[tabled(rename = "CREATED")]
    created: String,
    #[tabled(rename = "CLASS / REASON")]
    what: String,
    #[tabled(rename = "CASE")]
    case: String,
    #[tabled(rename = "SITREP")]
    sitrep: String,
    #[tabled(rename = "GEN")]
    generation: String,
}

fn list_row(v: &ResourceView) -> ListRow {
    let (state, what) = match &v.details {
        Details::Alert { class, time_dispatched } => (
            if time_dispatched.is_some() { "live (dispatched)" } else { "live (queued)" }
                .to_string(),
            class.clone(),
        ),
        Details::SupportBundle { reason, state, .. } => (format!("live ({state})"), reason.clone()),
    };
    let state = if v.deleted { "DELETED (tombstone)".to_string() } else { state };
    let (case, sitrep, generation) = match &v.provenance {
        Provenance::FaultManagement { case_id, sitrep_id, generation } => {
            (case_id.to_string(), sitrep_id.to_string(), generation.to_string())
        }
        Provenance::NotFaultManagement => {
            ("not made by fault management".to_string(), "-".to_string(), "-".to_string())
        }
        Provenance::BadData { error, .. } => (format!("bad data: {error}"), "?".into(), "?".into()),
    };
    ListRow {
        id: v.id.to_string(),
        state,
        time_deleted: opt_time(v.time_deleted.as_ref()),
        created: time(&v.time_created),
        what,
        case,
        sitrep,
        generation,
    }
}

async fn list(
    ctx: &Context,
    db: &Db,
    resource: ResourceType,
    include_deleted: bool,
) -> Result<Exit, CliError> {
    let limit = i64::from(ctx.global.fetch_limit);
    let mut conn = db.conn().await?;
    let context = || format!("listing {}s", noun(resource));
    let mut views: Vec<ResourceView> = match (resource, include_deleted) {
        (ResourceType::Alert, false) => alert_page_query(None, limit + 1)
            .load::<AlertRow>(&mut *conn)
            .await
            .map(|rows| rows.into_iter().map(ResourceView::from).collect()),
        (ResourceType::Alert, true) => alert_including_deleted_first_page_query(limit + 1)
            .load::<AlertRow>(&mut *conn)
            .await
            .map(|rows| rows.into_iter().map(ResourceView::from).collect()),
        (ResourceType::SupportBundle, false) => support_bundle_page_query(None, limit + 1)
            .load::<SupportBundleRow>(&mut *conn)
            .await
            .map(|rows| rows.into_iter().map(ResourceView::from).collect()),
        (ResourceType::SupportBundle, true) => {
            support_bundle_including_deleted_first_page_query(limit + 1)
                .load::<SupportBundleRow>(&mut *conn)
                .await
                .map(|rows| rows.into_iter().map(ResourceView::from).collect())
        }
    }
    .map_err(|e| diesel_error(context(), &e))?;
    let cut = views.len() > ctx.global.fetch_limit as usize;
    views.truncate(ctx.global.fetch_limit as usize);
    if cut {
        ctx.warn_cut(&format!("{}s", noun(resource)));
    }
    if ctx.global.json {
        print_json(&views);
    } else if views.is_empty() {
        println!(
            "no {}s{}",
            noun(resource),
            if include_deleted { "" } else { " (live; --include-deleted adds tombstones)" }
        );
    } else {
        println!("{}", table(views.iter().map(list_row)));
    }
    Ok(Exit::Ok)
}

async fn show(
    ctx: &Context,
    db: &Db,
    resource: ResourceType,
    id: Uuid,
    include_deleted: bool,
) -> Result<Exit, CliError> {
    let mut conn = db.conn().await?;
    let context = || format!("reading {} {id}", noun(resource));
    let view: Option<ResourceView> = match resource {
        ResourceType::Alert => alert_get_including_deleted_query(id)
            .get_result::<AlertRow>(&mut *conn)
            .await
            .optional()
            .map(|r| r.map(ResourceView::from)),
        ResourceType::SupportBundle => support_bundle_get_including_deleted_query(id)
            .get_result::<SupportBundleRow>(&mut *conn)
            .await
            .optional()
            .map(|r| r.map(ResourceView::from)),
    }
    .map_err(|e| diesel_error(context(), &e))?;
    let Some(view) = view else {
        let swept: Vec<(Uuid, String)> = collected_of_query(vec![id])
            .load(&mut *conn)
            .await
            .map_err(|e| diesel_error("reading the ledger of swept resources".into(), &e))?;
        let message = if swept.is_empty() {
            format!(
                "{} {id} not found: no row, live or deleted, and not in the ledger of swept \
                 resources",
                noun(resource)
            )
        } else {
            format!(
                "{} {id} not found: an operator deleted it and the sweep removed its tombstone \
                 (its id is in fm_collected_resource)",
                noun(resource)
            )
        };
        return Err(CliError::new(Exit::NotFound, message));
    };
    if view.deleted && !include_deleted {
        return Err(CliError::new(
            Exit::NotFound,
            format!(
                "{} {id} is deleted (a tombstone since {}): pass --include-deleted to show it",
                noun(resource),
                opt_time(view.time_deleted.as_ref())
            ),
        ));
    }
    if ctx.global.json {
        print_json(&view);
        return Ok(Exit::Ok);
    }
    println!("{} {}", noun(resource), view.id);
    if view.deleted {
        println!("  DELETED:           a tombstone since {}", opt_time(view.time_deleted.as_ref()));
    } else {
        println!("  state:             live");
    }
    println!("  created:           {}", time(&view.time_created));
    match &view.details {
        Details::Alert { class, time_dispatched } => {
            println!("  class:             {class}");
            println!("  dispatched:        {}", opt_time(time_dispatched.as_ref()));
        }
        Details::SupportBundle { reason, state, assigned_executor, user_comment } => {
            println!("  reason:            {reason}");
            println!("  bundle state:      {state}");
            println!("  assigned executor: {}", opt(assigned_executor.as_ref()));
            println!("  user comment:      {}", opt(user_comment.as_ref()));
        }
    }
    match &view.provenance {
        Provenance::FaultManagement { case_id, sitrep_id, generation } => {
            println!(
                "  provenance:        case {case_id}, sitrep {sitrep_id}, generation {generation}"
            );
        }
        Provenance::NotFaultManagement => {
            println!("  provenance:        none: not made by fault management");
        }
        Provenance::BadData { error, fm_case_id, fm_sitrep_id, fm_generation } => {
            println!(
                "  provenance:        BAD DATA ({error}): case {}, sitrep {}, generation {}",
                opt(fm_case_id.as_ref()),
                opt(fm_sitrep_id.as_ref()),
                opt(fm_generation.as_ref())
            );
        }
    }
    let label = match view.details {
        Details::Alert { .. } => "payload",
        Details::SupportBundle { .. } => "data selection",
    };
    println!(
        "  {label}:{}{}",
        " ".repeat(18 - label.len()),
        serde_json::to_string(&view.payload).unwrap_or_else(|e| format!("(unprintable: {e})"))
    );
    Ok(Exit::Ok)
}

/// What `delete` did, for `--json`.
#[derive(Serialize)]
struct DeleteOutcome {
    id: Uuid,
    resource: ResourceType,
    outcome: &'static str,
}

async fn delete(
    ctx: &Context,
    db: &Db,
    resource: ResourceType,
    id: Uuid,
) -> Result<Exit, CliError> {
    let result = match resource {
        ResourceType::Alert => {
            db.datastore.alert_delete(&db.opctx, AlertUuid::from_untyped(id)).await
        }
        ResourceType::SupportBundle => {
            db.datastore.support_bundle_delete(&db.opctx, SupportBundleUuid::from_untyped(id)).await
        }
    };
    let (outcome, message) = match result {
        Ok(Deleted::Tombstoned) => (
            "soft_deleted",
            format!(
                "{} {id} soft-deleted: made by fault management, it is now a tombstone (never \
                 re-created; the sweep reclaims it)",
                noun(resource)
            ),
        ),
        Ok(Deleted::Removed) => (
            "hard_deleted",
            format!(
                "{} {id} hard-deleted: not made by fault management, its row is gone",
                noun(resource)
            ),
        ),
        Err(fm_db_queries::Error::NotFound { .. }) => {
            return Err(CliError::new(
                Exit::NotFound,
                format!(
                    "{} {id} not found (never existed, already deleted, or swept): nothing was \
                     written",
                    noun(resource)
                ),
            ));
        }
        Err(e) => return Err(CliError::database(&format!("deleting {} {id}", noun(resource)), &e)),
    };
    if ctx.global.json {
        print_json(&DeleteOutcome { id, resource, outcome });
    } else {
        println!("{message}");
    }
    Ok(Exit::Ok)
}
