//! The fault-management background tasks, one module per task.
//!
//! - [`fm_sitrep_loader`] keeps the current sitrep in memory and publishes it
//!   on a watch channel whenever it changes;
//! - [`fm_rendezvous`] executes the sitrep it holds: per resource type, the
//!   guarded creation of every requested resource, then the tombstone sweep;
//! - [`fm_sitrep_pruner`] keeps the sitrep history bounded.
//!
//! Each implements [`crate::driver::BackgroundTask`]: an activation takes no
//! input beyond the operation context, does idempotent work driven by
//! database state, and reports a typed status from
//! [`nexus_fm_types::task`]. None retries inside an activation: the next
//! activation is the retry.
//!
//! [`register_all`] wires the three together the way the daemon runs them:
//! the rendezvous is woken when the loader publishes a new sitrep, and the
//! loader is woken when the rendezvous finds its sitrep stale.

pub mod fm_rendezvous;
pub mod fm_sitrep_loader;
pub mod fm_sitrep_pruner;

use crate::driver::{Driver, TaskHandle, WakeSource};
use nexus_fm_types::ActivationReason;
use std::time::Duration;

/// The periods of the three tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskPeriods {
    /// Period of `fm_sitrep_loader` (a cheap poll of the current version).
    pub fm_sitrep_loader: Duration,
    /// Period of `fm_rendezvous`.
    pub fm_rendezvous: Duration,
    /// Period of `fm_sitrep_pruner`.
    pub fm_sitrep_pruner: Duration,
}

impl Default for TaskPeriods {
    fn default() -> Self {
        TaskPeriods {
            fm_sitrep_loader: Duration::from_secs(10),
            fm_rendezvous: Duration::from_secs(60),
            fm_sitrep_pruner: Duration::from_secs(600),
        }
    }
}

/// The handles of the three tasks.
#[derive(Clone, Debug)]
pub struct FmTaskHandles {
    /// `fm_sitrep_loader`.
    pub fm_sitrep_loader: TaskHandle,
    /// `fm_rendezvous`.
    pub fm_rendezvous: TaskHandle,
    /// `fm_sitrep_pruner`.
    pub fm_sitrep_pruner: TaskHandle,
}

/// Registers the three tasks on `driver`, in the order `fmd --once` runs
/// them (loader, rendezvous, pruner), wired together: the rendezvous is
/// woken whenever the loader publishes a different sitrep, and the loader
/// whenever the rendezvous finds its sitrep stale (and, through its own
/// wake source, whenever the database announces a new sitrep).
///
/// `rendezvous` must have been built on `loader`'s channel
/// ([`fm_sitrep_loader::FmSitrepLoader::subscribe`]).
pub fn register_all(
    driver: &mut Driver,
    loader: fm_sitrep_loader::FmSitrepLoader,
    rendezvous: fm_rendezvous::FmRendezvous,
    pruner: fm_sitrep_pruner::FmSitrepPruner,
    periods: TaskPeriods,
) -> FmTaskHandles {
    let loaded = WakeSource::watch(ActivationReason::SitrepLoaded, loader.subscribe());
    let loader_sources = vec![loader.notification_wake_source(), rendezvous.stale_wake_source()];
    let fm_sitrep_loader =
        driver.register(Box::new(loader), periods.fm_sitrep_loader, loader_sources);
    let fm_rendezvous = driver.register(Box::new(rendezvous), periods.fm_rendezvous, vec![loaded]);
    let fm_sitrep_pruner = driver.register(Box::new(pruner), periods.fm_sitrep_pruner, vec![]);
    FmTaskHandles { fm_sitrep_loader, fm_rendezvous, fm_sitrep_pruner }
}
