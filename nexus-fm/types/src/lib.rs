//! Domain types of the fault-management execution subsystem.
//!
//! This crate is the bottom of the dependency graph: it knows nothing about
//! diesel, tokio or the database, so every other crate (and every future
//! consumer of sitreps) can use it.

pub mod generation;
pub mod ids;
pub mod sitrep;
pub mod task;
pub mod time;

pub use generation::{Generation, GenerationError};
pub use ids::{AlertUuid, CaseUuid, ExecutorUuid, SitrepUuid, SupportBundleUuid};
pub use sitrep::{
    AlertRequest, Case, RequestCounts, ResourceType, Sitrep, SitrepHistoryEntry, SitrepMetadata,
    SitrepSummary, SitrepValidationError, SitrepVersion, SupportBundleRequest,
};
pub use task::{
    ALL_TASK_NAMES, ActivationReason, FmRendezvousStatus, FmSitrepLoaderStatus,
    FmSitrepPrunerStatus, RendezvousTypeStatus, SitrepRef, SweepStatus, TaskActivationRecord,
};
