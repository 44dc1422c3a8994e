//! `fmdb executors`: the current sitrep, and what every executor's tasks
//! last did (from `fm_executor_task_status`).
//!
//! A persisted status is decoded into its task's type; a panicked
//! activation ([`PanickedActivationStatus`]) and a status fmdb cannot
//! decode are shown as what they are, never a failure of the command.

use crate::db::{Access, open};
use crate::output::{age, duration, opt, print_json, table, time};
use crate::{CliError, Context, Exit};
use chrono::{DateTime, Utc};
use clap::Args;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fm_db_queries::datastore::sitrep::sitrep_metadata_query;
use fm_db_queries::model::SitrepRow;
use nexus_fm::driver::PanickedActivationStatus;
use nexus_fm_types::task::{
    FmRendezvousStatus, FmSitrepLoaderStatus, FmSitrepPrunerStatus, RendezvousTypeStatus, SitrepRef,
};
use nexus_fm_types::{ExecutorUuid, TaskActivationRecord};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tabled::Tabled;
use uuid::Uuid;

/// `fmdb executors`.
#[derive(Debug, Args)]
pub struct ExecutorsArgs {
    /// The rendezvous period the executors run with (fmd's default is 1m).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = crate::parse_period)]
    pub period: Duration,
    /// An executor whose last activation is older than this many periods is
    /// flagged as lagging or gone.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub lag_periods: u32,
}

/// The current sitrep, as `executors` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CurrentView {
    /// Its id.
    pub sitrep_id: Uuid,
    /// Its history version.
    pub version: i64,
    /// Its alert generation (`None` if its row is missing).
    pub alert_generation: Option<i64>,
    /// Its support-bundle generation.
    pub support_bundle_generation: Option<i64>,
}

/// One task's last activation.
#[derive(Clone, Debug, Serialize)]
pub struct TaskView {
    /// The task name.
    pub task: String,
    /// Its activation number.
    pub iteration: u64,
    /// When it started.
    pub time_started: DateTime<Utc>,
    /// How long it took, in microseconds.
    pub duration_usec: u64,
    /// The status, decoded.
    pub status: StatusView,
}

/// A persisted status, decoded as far as possible.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatusView {
    /// `fm_rendezvous`.
    Rendezvous(Box<FmRendezvousStatus>),
    /// `fm_sitrep_loader`.
    Loader(FmSitrepLoaderStatus),
    /// `fm_sitrep_pruner`.
    Pruner(FmSitrepPrunerStatus),
    /// The activation panicked.
    Panicked(PanickedActivationStatus),
    /// fmdb cannot decode it: the raw JSON and why.
    Undecodable {
        /// Why.
        error: String,
        /// As stored.
        raw: serde_json::Value,
    },
}

fn decode(record: &TaskActivationRecord) -> StatusView {
    if let Some(panicked) = PanickedActivationStatus::from_status(&record.status) {
        return StatusView::Panicked(panicked);
    }
    let undecodable = |error: String| StatusView::Undecodable { error, raw: record.status.clone() };
    let value = record.status.clone();
    match record.task_name.as_str() {
        FmRendezvousStatus::TASK_NAME => serde_json::from_value(value)
            .map(|s| StatusView::Rendezvous(Box::new(s)))
            .unwrap_or_else(|e| undecodable(e.to_string())),
        FmSitrepLoaderStatus::TASK_NAME => serde_json::from_value(value)
            .map(StatusView::Loader)
            .unwrap_or_else(|e| undecodable(e.to_string())),
        FmSitrepPrunerStatus::TASK_NAME => serde_json::from_value(value)
            .map(StatusView::Pruner)
            .unwrap_or_else(|e| undecodable(e.to_string())),
        other => undecodable(format!("unknown task {other:?}")),
    }
}

/// One executor.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutorView {
    /// Its id.
    pub executor_id: ExecutorUuid,
    /// When its most recent activation (of any task) ended.
    pub last_activity: DateTime<Utc>,
    /// Whether that is older than the threshold.
    pub lagging_or_gone: bool,
    /// Its tasks' last activations.
    pub tasks: Vec<TaskView>,
}

/// `executors --json`.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutorsView {
    /// The time ages are measured against.
    pub now: DateTime<Utc>,
    /// The threshold, in seconds.
    pub lag_threshold_secs: u64,
    /// The current sitrep, if any.
    pub current: Option<CurrentView>,
    /// Every executor with a recorded activation.
    pub executors: Vec<ExecutorView>,
}

/// Runs `executors`.
///
/// # Errors
///
/// Connection and database errors.
pub async fn run(ctx: &Context, args: ExecutorsArgs) -> Result<Exit, CliError> {
    let db = open(ctx, Access::ReadOnly).await?;
    let threshold = args.period.saturating_mul(args.lag_periods);
    let entry = db
        .datastore
        .sitrep_current_version(&db.opctx)
        .await
        .map_err(|e| CliError::database("reading the current sitrep", &e))?;
    let current = match entry {
        None => None,
        Some(entry) => {
            let mut conn = db.conn().await?;
            let row: Option<SitrepRow> = sitrep_metadata_query(entry.sitrep_id.into_untyped())
                .get_result(&mut *conn)
                .await
                .optional()
                .map_err(|e| CliError::new(Exit::Failure, format!("reading the sitrep: {e}")))?;
            Some(CurrentView {
                sitrep_id: entry.sitrep_id.into_untyped(),
                version: entry.version.as_i64(),
                alert_generation: row.as_ref().map(|r| r.alert_generation),
                support_bundle_generation: row.as_ref().map(|r| r.support_bundle_generation),
            })
        }
    };
    let limit = ctx.global.fetch_limit;
    let mut records = db
        .datastore
        .executor_task_status_list(&db.opctx, None, limit + 1)
        .await
        .map_err(|e| CliError::database("listing task statuses", &e))?;
    if records.len() > limit as usize {
        records.truncate(limit as usize);
        ctx.warn_cut("task statuses");
    }
    let mut by_executor: BTreeMap<ExecutorUuid, Vec<TaskActivationRecord>> = BTreeMap::new();
    for record in records {
        by_executor.entry(record.executor_id).or_default().push(record);
    }
    let threshold_chrono = chrono::Duration::from_std(threshold).unwrap_or(chrono::Duration::MAX);
    let executors: Vec<ExecutorView> = by_executor
        .into_iter()
        .map(|(executor_id, records)| {
            let last_activity = records
                .iter()
                .map(|r| {
                    r.time_started
                        + chrono::Duration::microseconds(
                            i64::try_from(r.duration_usec).unwrap_or(i64::MAX),
                        )
                })
                .max()
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            ExecutorView {
                executor_id,
                last_activity,
                lagging_or_gone: ctx.now - last_activity > threshold_chrono,
                tasks: records
                    .iter()
                    .map(|r| TaskView {
                        task: r.task_name.clone(),
                        iteration: r.iteration,
                        time_started: r.time_started,
                        duration_usec: r.duration_usec,
                        status: decode(r),
                    })
                    .collect(),
            }
        })
        .collect();
    let view =
        ExecutorsView { now: ctx.now, lag_threshold_secs: threshold.as_secs(), current, executors };
    if ctx.global.json {
        print_json(&view);
    } else {
        print_human(&view, threshold);
    }
    Ok(Exit::Ok)
}

#[derive(Tabled)]
struct ExecutorRow {
    #[tabled(rename = "EXECUTOR")]
    id: String,
    #[tabled(rename = "LAST ACTIVITY")]
    last: String,
    #[tabled(rename = "AGE")]
    age: String,
    #[tabled(rename = "VERDICT")]
    verdict: String,
}

fn sitrep_label(s: &SitrepRef, current: Option<&CurrentView>) -> String {
    let is_current = match current {
        Some(c) if c.sitrep_id == s.sitrep_id.into_untyped() => "current".to_string(),
        Some(c) => format!("NOT current: {} version(s) behind", c.version - s.version.as_i64()),
        None => "no current sitrep".to_string(),
    };
    format!("{} (version {}, {is_current})", s.sitrep_id, s.version)
}

fn print_type(t: &RendezvousTypeStatus, current: Option<&CurrentView>) {
    println!("      {}:", t.resource);
    println!(
        "        sitrep:                                    {}",
        sitrep_label(&t.sitrep, current)
    );
    println!(
        "        generation:                                {} (latest: {})",
        t.generation,
        opt(t.latest_generation)
    );
    println!("        outcome:                                   {}", t.outcome);
    println!("        requested:                                 {}", t.requested);
    println!("        newly requested:                           {}", t.newly_requested);
    println!("        created now:                               {}", t.created);
    println!("        already existed:                           {}", t.already_existed);
    println!("        not re-created: deleted by an operator:    {}", t.deleted_not_recreated);
    println!("        refused: nil id:                           {}", t.refused_nil_id);
    println!(
        "        skipped: this executor's sitrep is no longer current: {}",
        if t.stale { "yes" } else { "no" }
    );
    println!("        statements / retries:                      {} / {}", t.statements, t.retries);
    for e in &t.errors {
        println!("        error: {e}");
    }
    let s = &t.sweep;
    println!("        sweep:                                     {}", s.outcome);
    println!("          pages:                                   {}", s.pages);
    println!("          tombstones examined:                     {}", s.tombstones_examined);
    println!("          hard-deleted:                            {}", s.hard_deleted);
    println!("          kept: still requested:                   {}", s.retained_still_requested);
    println!("          kept: created at the current generation: {}", s.retained_too_new);
    println!("          kept: driving sitrep missing:            {}", s.retained_sitrep_missing);
    println!("          retries:                                 {}", s.retries);
    for e in &s.errors {
        println!("          error: {e}");
    }
}

fn print_human(view: &ExecutorsView, threshold: Duration) {
    match &view.current {
        Some(c) => println!(
            "current sitrep: {} (version {}), alert generation {}, support bundle generation {}",
            c.sitrep_id,
            c.version,
            opt(c.alert_generation),
            opt(c.support_bundle_generation)
        ),
        None => println!("current sitrep: none (the history is empty)"),
    }
    println!("lagging threshold: {} (measured at {})", duration(threshold), time(&view.now));
    if view.executors.is_empty() {
        println!("no executor has recorded an activation");
        return;
    }
    println!();
    println!(
        "{}",
        table(view.executors.iter().map(|e| ExecutorRow {
            id: e.executor_id.to_string(),
            last: time(&e.last_activity),
            age: age(view.now, e.last_activity),
            verdict: if e.lagging_or_gone {
                format!("LAGGING OR GONE (no activity for over {})", duration(threshold))
            } else {
                "active".to_string()
            },
        }))
    );
    let current = view.current.as_ref();
    for e in &view.executors {
        println!();
        println!("executor {}", e.executor_id);
        for t in &e.tasks {
            println!(
                "  {} (activation {}): started {} ({} ago), took {}",
                t.task,
                t.iteration,
                time(&t.time_started),
                age(view.now, t.time_started),
                duration(Duration::from_micros(t.duration_usec))
            );
            match &t.status {
                StatusView::Panicked(p) => {
                    println!("    outcome: {} ({})", p.outcome, p.panic_message);
                }
                StatusView::Undecodable { error, raw } => {
                    println!("    status not understood ({error}): {raw}");
                }
                StatusView::Loader(s) => {
                    println!("    outcome: {}", s.outcome);
                    if let Some(l) = &s.loaded {
                        println!("    loaded: {}", sitrep_label(l, current));
                    }
                    if let Some(e) = &s.error {
                        println!("    error: {e}");
                    }
                }
                StatusView::Pruner(s) => {
                    println!(
                        "    outcome: {} (pruned {}, archive entries deleted {}, truncated {}, \
                         archive failures {})",
                        s.outcome,
                        s.pruned.len(),
                        s.archive_entries_deleted,
                        s.archives_truncated,
                        s.archive_failures.len()
                    );
                    if let Some(e) = &s.error {
                        println!("    error: {e}");
                    }
                }
                StatusView::Rendezvous(s) => {
                    println!("    outcome: {}", s.outcome);
                    match &s.sitrep {
                        Some(r) => println!("    executed: {}", sitrep_label(r, current)),
                        None => println!("    executed: no sitrep"),
                    }
                    for t in [&s.alert, &s.support_bundle].into_iter().flatten() {
                        print_type(t, current);
                    }
                }
            }
        }
    }
}
