//! Background-task status: what one activation of a task did, as persisted
//! per executor for the debug CLI.

use crate::ids::ExecutorUuid;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The last completed activation of one task on one executor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskActivationRecord {
    /// The executor (control-plane instance) that ran it.
    pub executor_id: ExecutorUuid,
    /// The task's registered name, e.g. `fm_rendezvous`.
    pub task_name: String,
    /// Activation number within the executor process, starting at 1.
    pub iteration: u64,
    /// When the activation started.
    pub time_started: DateTime<Utc>,
    /// How long it took, in microseconds.
    pub duration_usec: u64,
    /// The task's typed status, serialized.
    pub status: serde_json::Value,
}
