//! `fm_sitrep_pruner`: keeps the sitrep history bounded.
//!
//! Why it exists: every analysis pass may publish a sitrep, and each carries
//! all of its cases and requests, so the history would grow without bound.
//!
//! What it guarantees: each activation runs one pass of
//! [`DataStore::sitrep_history_prune`] with the configured
//! [`RetentionPolicy`], which keeps the newest `keep` history entries (never
//! fewer than [`MIN_KEEP`](fm_db_queries::datastore::sitrep::prune::MIN_KEEP), so the current sitrep and its parent stay),
//! archives the older sitreps (each entry bounded in size, marked when it is
//! partial), deletes them, and trims the archive.
//! Pruning never makes a tombstone collectable early (docs/design.md, "Retention"),
//! and several pruners may run at once: a sitrep another pruner removed
//! first is counted, not an error.
//!
//! Pruning cannot wedge: a sitrep that cannot be archived is pruned with a
//! failure record (or, if even that fails, kept for the next pass) while
//! the pass goes on, and the status lists it with its version and the
//! error; such an activation reports `Failed` so that it is logged at warn.

use crate::driver::{ActivationOutcome, BackgroundTask, TaskReport, error_chain};
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use fm_db_queries::{DataStore, OpContext};
use futures::future::BoxFuture;
use nexus_fm_types::task::ArchiveFailureOutcome;
use nexus_fm_types::{ActivationReason, FmSitrepPrunerStatus, SitrepRef};

/// The `fm_sitrep_pruner` task.
pub struct FmSitrepPruner {
    datastore: DataStore,
    policy: RetentionPolicy,
}

impl FmSitrepPruner {
    /// A pruner applying `policy`. A policy keeping fewer than [`MIN_KEEP`](fm_db_queries::datastore::sitrep::prune::MIN_KEEP)
    /// history entries makes every activation fail, saying so.
    pub fn new(datastore: DataStore, policy: RetentionPolicy) -> FmSitrepPruner {
        FmSitrepPruner { datastore, policy }
    }

    /// The policy applied.
    pub fn policy(&self) -> RetentionPolicy {
        self.policy
    }

    async fn prune(&self, opctx: &OpContext) -> FmSitrepPrunerStatus {
        let RetentionPolicy { keep, archive_keep } = self.policy;
        let mut status = FmSitrepPrunerStatus {
            keep,
            archive_keep,
            current_version: None,
            pruned: Vec::new(),
            already_gone: 0,
            archive_entries_deleted: 0,
            archives_truncated: 0,
            archive_failures: Vec::new(),
            archive_failures_not_listed: 0,
            retries: 0,
            outcome: String::new(),
            error: None,
        };
        match self.datastore.sitrep_history_prune(opctx, self.policy).await {
            Ok(report) => {
                status.current_version = report.current_version;
                status.pruned = report
                    .pruned
                    .iter()
                    .map(|p| SitrepRef { version: p.version, sitrep_id: p.sitrep_id })
                    .collect();
                status.already_gone = u64::try_from(report.already_gone).unwrap_or(u64::MAX);
                status.archive_entries_deleted =
                    u64::try_from(report.archive_entries_deleted).unwrap_or(u64::MAX);
                status.archives_truncated =
                    u64::try_from(report.archives_truncated).unwrap_or(u64::MAX);
                status.archive_failures = report.archive_failures;
                status.archive_failures_not_listed =
                    u64::try_from(report.archive_failures_not_listed).unwrap_or(u64::MAX);
                status.retries = report.retries;
                status.outcome = describe(&status);
            }
            Err(error) => {
                status.outcome = "failed: pruning the sitrep history".to_string();
                status.error = Some(error_chain(&error));
            }
        }
        status
    }
}

/// The outcome label of a successful pass.
fn describe(status: &FmSitrepPrunerStatus) -> String {
    let mut parts = Vec::new();
    match (status.pruned.first(), status.pruned.last()) {
        (Some(first), Some(last)) if first.version == last.version => {
            parts.push(format!("pruned sitrep version {}", first.version));
        }
        (Some(first), Some(last)) => parts.push(format!(
            "pruned {} sitreps (versions {} to {})",
            status.pruned.len(),
            first.version,
            last.version
        )),
        _ => {}
    }
    if status.archives_truncated > 0 {
        parts.push(format!("{} archived truncated (too large)", status.archives_truncated));
    }
    for failure in &status.archive_failures {
        let what = match &failure.outcome {
            ArchiveFailureOutcome::PrunedWithFailureRecord => {
                "pruned with a failure record".to_string()
            }
            ArchiveFailureOutcome::Retained { failure_record_error } => format!(
                "kept for the next pass: writing a failure record failed too: {failure_record_error}"
            ),
        };
        parts.push(format!(
            "could not archive sitrep version {} ({}): {}; {what}",
            failure.sitrep.version, failure.sitrep.sitrep_id, failure.error
        ));
    }
    if status.archive_failures_not_listed > 0 {
        parts.push(format!(
            "{} more sitreps could not be archived",
            status.archive_failures_not_listed
        ));
    }
    if status.already_gone > 0 {
        parts.push(format!("{} already pruned by another executor", status.already_gone));
    }
    if status.archive_entries_deleted > 0 {
        parts.push(format!("deleted {} archive entries", status.archive_entries_deleted));
    }
    if parts.is_empty() {
        match status.current_version {
            None => "nothing to prune: no sitrep published yet".to_string(),
            Some(_) => format!("nothing to prune: at most {} history entries", status.keep),
        }
    } else {
        parts.join("; ")
    }
}

impl BackgroundTask for FmSitrepPruner {
    fn name(&self) -> &'static str {
        FmSitrepPrunerStatus::TASK_NAME
    }

    fn activate<'a>(
        &'a mut self,
        opctx: &'a OpContext,
        _reasons: &'a [ActivationReason],
    ) -> BoxFuture<'a, TaskReport> {
        Box::pin(async move {
            let status = self.prune(opctx).await;
            let archive_failed =
                !status.archive_failures.is_empty() || status.archive_failures_not_listed > 0;
            let outcome = if status.error.is_some() || archive_failed {
                ActivationOutcome::Failed
            } else if status.pruned.is_empty() && status.archive_entries_deleted == 0 {
                ActivationOutcome::NothingToDo
            } else {
                ActivationOutcome::DidWork
            };
            let summary = status.outcome.clone();
            TaskReport::new(&status, outcome, summary)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_fm_types::task::PrunerArchiveFailure;
    use nexus_fm_types::{SitrepUuid, SitrepVersion};

    fn status(pruned: &[i64], archive_entries_deleted: u64) -> FmSitrepPrunerStatus {
        FmSitrepPrunerStatus {
            keep: 5,
            archive_keep: 10,
            current_version: Some(SitrepVersion::try_new(20).unwrap()),
            pruned: pruned
                .iter()
                .map(|&v| SitrepRef {
                    version: SitrepVersion::try_new(v).unwrap(),
                    sitrep_id: SitrepUuid::new_v4(),
                })
                .collect(),
            already_gone: 0,
            archive_entries_deleted,
            archives_truncated: 0,
            archive_failures: Vec::new(),
            archive_failures_not_listed: 0,
            retries: 0,
            outcome: String::new(),
            error: None,
        }
    }

    #[test]
    fn labels_say_what_happened() {
        assert_eq!(describe(&status(&[], 0)), "nothing to prune: at most 5 history entries");
        assert_eq!(describe(&status(&[3], 0)), "pruned sitrep version 3");
        assert_eq!(
            describe(&status(&[3, 4, 5], 2)),
            "pruned 3 sitreps (versions 3 to 5); deleted 2 archive entries"
        );
        let mut failed = status(&[3, 4], 0);
        failed.archives_truncated = 1;
        let sitrep = failed.pruned[1];
        failed.archive_failures.push(PrunerArchiveFailure {
            sitrep,
            error: "boom".into(),
            outcome: ArchiveFailureOutcome::PrunedWithFailureRecord,
        });
        failed.archive_failures.push(PrunerArchiveFailure {
            sitrep: SitrepRef { version: SitrepVersion::try_new(5).unwrap(), ..sitrep },
            error: "boom".into(),
            outcome: ArchiveFailureOutcome::Retained { failure_record_error: "bang".into() },
        });
        failed.archive_failures_not_listed = 2;
        assert_eq!(
            describe(&failed),
            format!(
                "pruned 2 sitreps (versions 3 to 4); 1 archived truncated (too large); \
                 could not archive sitrep version 4 ({id}): boom; pruned with a failure record; \
                 could not archive sitrep version 5 ({id}): boom; kept for the next pass: \
                 writing a failure record failed too: bang; \
                 2 more sitreps could not be archived",
                id = sitrep.sitrep_id
            )
        );
        let mut empty = status(&[], 0);
        empty.current_version = None;
        assert_eq!(describe(&empty), "nothing to prune: no sitrep published yet");
    }
}
