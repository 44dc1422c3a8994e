//! How the demo shows its progress while the sitreps are published: an
//! indicatif bar on a terminal, plain periodic lines otherwise, or nothing
//! (tests).
//!
//! Both go to stdout, where the summary follows; logs go to stderr.

use super::executor::DemoExecutor;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nexus_fm_types::SitrepVersion;
use std::io::IsTerminal;
use std::time::Duration;

/// How progress is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar when stdout is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// A bar, on stdout.
    Bar,
    /// A plain line on stdout every tenth of the sitreps.
    Lines,
    /// Nothing.
    Hidden,
}

/// The counts the progress display shows, summed over the executors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct LiveCounts {
    pub alerts_created: u64,
    pub bundles_created: u64,
    pub stale_reports: u64,
    pub errors: u64,
    pub races_lost: u64,
    pub operator_deletions: usize,
    pub tombstones_hard_deleted: u64,
}

impl LiveCounts {
    /// The counts so far.
    pub fn of(
        executors: &[DemoExecutor],
        races_lost: u64,
        operator_deletions: usize,
    ) -> LiveCounts {
        let mut counts = LiveCounts { races_lost, operator_deletions, ..LiveCounts::default() };
        for executor in executors {
            let tally = executor.tally();
            counts.alerts_created += tally.alerts_created;
            counts.bundles_created += tally.bundles_created;
            counts.stale_reports += tally.stale_reports;
            counts.tombstones_hard_deleted += tally.tombstones_hard_deleted;
            counts.errors += tally.errors.len() as u64;
        }
        counts
    }

    fn message(&self) -> String {
        let mut text = format!(
            "created {} alerts, {} bundles; {} stale reports",
            self.alerts_created, self.bundles_created, self.stale_reports
        );
        if self.operator_deletions > 0 || self.tombstones_hard_deleted > 0 {
            text.push_str(&format!(
                "; {} deleted by an operator, {} tombstones hard-deleted",
                self.operator_deletions, self.tombstones_hard_deleted
            ));
        }
        if self.races_lost > 0 {
            text.push_str(&format!("; {} publish races lost", self.races_lost));
        }
        if self.errors > 0 {
            text.push_str(&format!("; {} ERRORS", self.errors));
        }
        text
    }
}

/// The progress display.
pub(super) enum Progress {
    Bar(ProgressBar),
    Lines { total: usize, every: usize },
    Hidden,
}

impl Progress {
    /// A display for `total` sitreps.
    pub fn new(mode: ProgressMode, total: usize) -> Progress {
        let mode = match mode {
            ProgressMode::Auto if std::io::stdout().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Lines,
            other => other,
        };
        match mode {
            ProgressMode::Bar => {
                let bar =
                    ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stdout());
                let style = ProgressStyle::with_template(
                    "{spinner} {elapsed:>3} [{bar:20}] {pos}/{len} sitreps  {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.enable_steady_tick(Duration::from_millis(100));
                Progress::Bar(bar)
            }
            ProgressMode::Lines => Progress::Lines { total, every: total.div_ceil(10).max(1) },
            ProgressMode::Auto | ProgressMode::Hidden => Progress::Hidden,
        }
    }

    /// Shows a line of its own (above the bar).
    pub fn note(&self, line: &str) {
        match self {
            Progress::Bar(bar) => bar.println(line),
            Progress::Lines { .. } => println!("{line}"),
            Progress::Hidden => {}
        }
    }

    /// Sitrep number `done` was published, as `version`.
    pub fn published(&self, done: usize, version: SitrepVersion, counts: &LiveCounts) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(done as u64);
                bar.set_message(counts.message());
            }
            Progress::Lines { total, every } => {
                if done.is_multiple_of(*every) || done == *total {
                    println!(
                        "published {done}/{total} sitreps (version {version}): {}",
                        counts.message()
                    );
                }
            }
            Progress::Hidden => {}
        }
    }

    /// Ends the display (the bar stays on screen, complete or not). Does
    /// nothing the second time.
    pub fn finish(&self) {
        if let Progress::Bar(bar) = self
            && !bar.is_finished()
        {
            bar.abandon();
            // The cursor stays at the end of the bar's line.
            println!();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_deletions_races_and_errors_only_when_there_are_some() {
        let mut counts = LiveCounts {
            alerts_created: 12,
            bundles_created: 3,
            stale_reports: 4,
            errors: 0,
            races_lost: 0,
            operator_deletions: 0,
            tombstones_hard_deleted: 0,
        };
        assert_eq!(counts.message(), "created 12 alerts, 3 bundles; 4 stale reports");
        counts.races_lost = 1;
        counts.errors = 2;
        assert_eq!(
            counts.message(),
            "created 12 alerts, 3 bundles; 4 stale reports; 1 publish races lost; 2 ERRORS"
        );
        counts.operator_deletions = 5;
        assert_eq!(
            counts.message(),
            "created 12 alerts, 3 bundles; 4 stale reports; 5 deleted by an operator, 0 \
             tombstones hard-deleted; 1 publish races lost; 2 ERRORS"
        );
    }
}
