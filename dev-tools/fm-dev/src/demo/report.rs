//! What a demo run did, and how it is printed: a table per executor, a
//! table of totals, and the verdict.

use super::operator::DeletedResource;
use super::verify::Verification;
use nexus_fm_types::{ExecutorUuid, ResourceType};
use std::fmt;
use std::time::Duration;
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Style};
use tabled::{Table, Tabled};

/// What one executor did, added up over all its activations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorSummary {
    /// Its name in the demo, e.g. "executor 2".
    pub name: String,
    /// Its executor id.
    pub executor_id: ExecutorUuid,
    /// Whether it is the lagging executor.
    pub lagging: bool,
    /// How its loader learns of new sitreps.
    pub loader: String,
    /// What its activations did.
    pub tally: Tally,
}

/// What one executor's activations did, added up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Activations of its `fm_sitrep_loader`.
    pub loader_activations: u64,
    /// Activations of its `fm_rendezvous`.
    pub rendezvous_activations: u64,
    /// Activations of its `fm_sitrep_pruner`.
    pub pruner_activations: u64,
    /// Alerts it created.
    pub alerts_created: u64,
    /// Support bundles it created.
    pub bundles_created: u64,
    /// Requests whose resource already existed when it executed them (both
    /// types, counted once per activation).
    pub already_existed: u64,
    /// Requests not re-created because an operator had deleted their
    /// resource.
    pub deleted_not_recreated: u64,
    /// Rendezvous activations that found their sitrep stale (for at least
    /// one resource type).
    pub stale_reports: u64,
    /// Sitreps its pruner removed.
    pub sitreps_pruned: u64,
    /// Tombstones its sweeps hard-deleted (both types).
    pub tombstones_hard_deleted: u64,
    /// The newest sitrep version a rendezvous activation executed.
    pub last_executed: Option<nexus_fm_types::SitrepVersion>,
    /// Every error an activation reported, or persisting its status hit,
    /// with the task's name first.
    pub errors: Vec<String>,
}

/// Resource rows of the ids the analysis ever requested.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceRows {
    /// Alert ids ever requested.
    pub alerts_requested: usize,
    /// Of those, live alerts.
    pub alerts_live: usize,
    /// Of those, alerts deleted by an operator.
    pub alerts_deleted: usize,
    /// Support-bundle ids ever requested.
    pub support_bundles_requested: usize,
    /// Of those, live support bundles.
    pub support_bundles_live: usize,
    /// Of those, support bundles deleted by an operator.
    pub support_bundles_deleted: usize,
}

/// What a demo run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoReport {
    /// The seed of the analysis.
    pub seed: u64,
    /// The database it ran on.
    pub database: String,
    /// Each executor, the lagging one last.
    pub executors: Vec<ExecutorSummary>,
    /// Sitreps the analysis published.
    pub sitreps_published: u64,
    /// Publishes that lost a race and were rebuilt on the current sitrep.
    pub publish_races_lost: u64,
    /// Sitreps the pruners removed.
    pub sitreps_pruned: u64,
    /// History entries the pruners keep.
    pub keep_sitreps: u32,
    /// Resources an operator deleted during the demo.
    pub operator_deletions: Vec<DeletedResource>,
    /// Most resources the operator deleted after one publish (0: none).
    pub deletions_per_sitrep: usize,
    /// Rows of the resources the analysis ever requested.
    pub rows: ResourceRows,
    /// The checks made on the database at the end.
    pub verification: Verification,
    /// Wall time, from start to the embedded database's stop.
    pub elapsed: Duration,
}

/// One row of the executor table.
#[derive(Tabled)]
struct ExecutorRow {
    #[tabled(rename = "executor")]
    name: String,
    #[tabled(rename = "sitrep loader")]
    loader: String,
    #[tabled(rename = "activations\nload/rdv/prune")]
    activations: String,
    #[tabled(rename = "alerts\ncreated")]
    alerts_created: u64,
    #[tabled(rename = "bundles\ncreated")]
    bundles_created: u64,
    #[tabled(rename = "already\nexisted")]
    already_existed: u64,
    #[tabled(rename = "deleted, not\nre-created")]
    deleted_not_recreated: u64,
    #[tabled(rename = "stale\nreports")]
    stale_reports: u64,
    #[tabled(rename = "tombstones\nhard-deleted")]
    tombstones_hard_deleted: u64,
    errors: usize,
}

impl ExecutorRow {
    fn of(e: &ExecutorSummary) -> ExecutorRow {
        ExecutorRow {
            name: e.name.clone(),
            loader: e.loader.clone(),
            activations: format!(
                "{} / {} / {}",
                e.tally.loader_activations,
                e.tally.rendezvous_activations,
                e.tally.pruner_activations
            ),
            alerts_created: e.tally.alerts_created,
            bundles_created: e.tally.bundles_created,
            already_existed: e.tally.already_existed,
            deleted_not_recreated: e.tally.deleted_not_recreated,
            stale_reports: e.tally.stale_reports,
            tombstones_hard_deleted: e.tally.tombstones_hard_deleted,
            errors: e.tally.errors.len(),
        }
    }

    fn total(executors: &[ExecutorSummary]) -> ExecutorRow {
        let sum = |f: fn(&ExecutorSummary) -> u64| executors.iter().map(f).sum::<u64>();
        ExecutorRow {
            name: "total".to_string(),
            loader: String::new(),
            activations: format!(
                "{} / {} / {}",
                sum(|e| e.tally.loader_activations),
                sum(|e| e.tally.rendezvous_activations),
                sum(|e| e.tally.pruner_activations)
            ),
            alerts_created: sum(|e| e.tally.alerts_created),
            bundles_created: sum(|e| e.tally.bundles_created),
            already_existed: sum(|e| e.tally.already_existed),
            deleted_not_recreated: sum(|e| e.tally.deleted_not_recreated),
            stale_reports: sum(|e| e.tally.stale_reports),
            tombstones_hard_deleted: sum(|e| e.tally.tombstones_hard_deleted),
            errors: executors.iter().map(|e| e.tally.errors.len()).sum(),
        }
    }
}

impl DemoReport {
    /// The executor table.
    pub fn executor_table(&self) -> String {
        let mut rows: Vec<ExecutorRow> = self.executors.iter().map(ExecutorRow::of).collect();
        rows.push(ExecutorRow::total(&self.executors));
        Table::new(rows)
            .with(Style::sharp())
            .modify(Columns::new(2..), Alignment::right())
            .to_string()
    }

    /// The table of totals.
    pub fn totals_table(&self) -> String {
        let v = &self.verification;
        let rows = &self.rows;
        let mut builder = Builder::default();
        builder.push_record(["totals", ""]);
        builder.push_record(["seed", &self.seed.to_string()]);
        builder.push_record(["database", &self.database]);
        builder.push_record(["sitreps published", &self.sitreps_published.to_string()]);
        builder.push_record(["publish races lost", &self.publish_races_lost.to_string()]);
        builder.push_record([
            "sitreps pruned",
            &format!("{} (the history keeps {})", self.sitreps_pruned, self.keep_sitreps),
        ]);
        let current = match v.sitrep {
            Some(sitrep) => format!(
                "version {}: {} open and {} closed cases, {} alert and {} support-bundle \
                 requests",
                sitrep.version,
                v.shape.open_cases,
                v.shape.closed_cases,
                v.shape.alert_requests,
                v.shape.support_bundle_requests
            ),
            None => "none".to_string(),
        };
        builder.push_record(["current sitrep", &current]);
        builder.push_record([
            "alert rows",
            &format!(
                "{} live, {} deleted by an operator (of {} alerts ever requested)",
                rows.alerts_live, rows.alerts_deleted, rows.alerts_requested
            ),
        ]);
        builder.push_record([
            "support-bundle rows",
            &format!(
                "{} live, {} deleted by an operator (of {} bundles ever requested)",
                rows.support_bundles_live,
                rows.support_bundles_deleted,
                rows.support_bundles_requested
            ),
        ]);
        builder.push_record(["operator deletions", &self.deletions_line()]);
        builder.push_record(["wall time", &format!("{:.1} s", self.elapsed.as_secs_f64())]);
        builder.build().with(Style::sharp()).to_string()
    }
}

impl DemoReport {
    /// The "operator deletions" line of the totals.
    fn deletions_line(&self) -> String {
        if self.deletions_per_sitrep == 0 {
            return "none (disabled)".to_string();
        }
        let alerts =
            self.operator_deletions.iter().filter(|d| d.resource == ResourceType::Alert).count();
        let bundles = self.operator_deletions.len() - alerts;
        let v = &self.verification;
        format!(
            "{} ({alerts} alerts, {bundles} support bundles; up to {} after each publish): {} \
             hard-deleted by a sweep, {} still tombstones",
            self.operator_deletions.len(),
            self.deletions_per_sitrep,
            v.operator_deleted_swept,
            v.operator_deleted_retained,
        )
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.executor_table())?;
        writeln!(f, "{}", self.totals_table())?;
        write!(f, "{}", self.verification.verdict())
    }
}
