//! The background-task driver: runs each fault-management task periodically,
//! on request, and when something it watches changes.
//!
//! Why it exists: every task (`fm_sitrep_loader`, `fm_rendezvous`,
//! `fm_sitrep_pruner`) is a piece of idempotent work driven by database
//! state, and each needs the same machinery around it: a period, wake-ups,
//! one log line and one persisted status per activation, and an orderly
//! shutdown. The tasks themselves stay small and testable.
//!
//! What it guarantees:
//!
//! - **No overlap.** Each registered task runs in its own tokio task that
//!   activates it sequentially, so two activations of one task never overlap
//!   within a process. (Several processes may run the same tasks at once;
//!   the database work is what makes that safe.)
//! - **No lost wake-ups.** A wake-up that arrives while the task is busy is
//!   remembered and causes one more activation afterwards; several such
//!   wake-ups are merged into that one activation, whose reasons list them
//!   all.
//! - **Every activation is recorded.** After each activation the driver
//!   logs one line (debug when nothing happened, info when something did,
//!   warn when it failed), persists a [`TaskActivationRecord`] through its
//!   [`StatusRecorder`] (a failure to persist is logged at warn and never
//!   stops the task), and keeps the record in memory for callers.
//! - **A panic never stops a task.** An activation that panics is caught
//!   at the activation boundary: the panic is logged at error with its
//!   message, recorded as a failed activation whose persisted status says
//!   the activation panicked and carries the message
//!   ([`PanickedActivationStatus`]), counted ([`TaskHandle::panics`]), and
//!   the task goes on with its next activation. This is safe because
//!   activations are idempotent and driven by database state: whatever the
//!   panicking activation left half done, the next activation redoes from
//!   the database, so the next activation is the retry. (A task's in-memory
//!   state is at worst a stale cache; the task is used again as it is, hence
//!   `AssertUnwindSafe`.) `fmd --once` reports a panicked activation as a
//!   failure.
//! - **Clean shutdown.** [`RunningDriver::shutdown`] stops every loop but
//!   never drops an activation midway: one in flight finishes, and its
//!   status is persisted, before shutdown returns.
//!
//! Lifecycle: build a [`Driver`], [`Driver::register`] each task (which
//! returns its [`TaskHandle`] at once, so handles can be wired before
//! anything runs), then either [`Driver::start`] it or run every task
//! exactly once with [`Driver::run_once`] (`fmd --once`).

use fm_db_queries::{DataStore, OpContext, Role};
use futures::FutureExt;
use futures::future::BoxFuture;
use nexus_fm_types::{ActivationReason, ExecutorUuid, TaskActivationRecord};
use serde::Serialize;
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// One background task: idempotent work driven by database state.
///
/// The driver never runs two activations of one task at the same time, so
/// `activate` may keep state in `self` between activations.
pub trait BackgroundTask: Send {
    /// The task's name: the same string as its file, its status type's
    /// `TASK_NAME` and the CLI's (e.g. `fm_rendezvous`).
    fn name(&self) -> &'static str;

    /// Runs one activation and reports what it did.
    ///
    /// `reasons` says what woke the task (never empty). It is only
    /// reported: an activation does the same work whatever woke it. There
    /// are no retry loops inside an activation: the next activation is the
    /// retry.
    fn activate<'a>(
        &'a mut self,
        opctx: &'a OpContext,
        reasons: &'a [ActivationReason],
    ) -> BoxFuture<'a, TaskReport>;
}

/// How an activation went, which decides the level of its log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationOutcome {
    /// Nothing needed doing (logged at debug).
    NothingToDo,
    /// Something changed (logged at info).
    DidWork,
    /// Part or all of the work failed; the status says why (logged at warn).
    Failed,
}

/// What one activation reports to the driver.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskReport {
    /// The task's typed status, serialized: what is persisted and shown.
    pub status: serde_json::Value,
    /// How it went.
    pub outcome: ActivationOutcome,
    /// A one-line summary for the driver's log line.
    pub summary: String,
}

impl TaskReport {
    /// Builds a report from a typed status.
    pub fn new(
        status: &impl Serialize,
        outcome: ActivationOutcome,
        summary: impl Into<String>,
    ) -> Self {
        // Status types are plain structs with string keys, so serializing
        // them cannot fail; if one ever does, say so in the status itself.
        let status = serde_json::to_value(status).unwrap_or_else(
            |e| serde_json::json!({ "error": format!("status could not be serialized: {e}") }),
        );
        TaskReport { status, outcome, summary: summary.into() }
    }
}

/// The status the driver records, in place of the task's own, for an
/// activation that panicked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PanickedActivationStatus {
    /// Always `failed: the activation panicked`.
    pub outcome: String,
    /// Always `true`: how readers tell this status from a task's own.
    pub activation_panicked: bool,
    /// The panic's message (or a note that it carried none).
    pub panic_message: String,
}

impl PanickedActivationStatus {
    /// The outcome label of a panicked activation.
    pub const OUTCOME: &'static str = "failed: the activation panicked";

    /// The status of an activation that panicked with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        PanickedActivationStatus {
            outcome: Self::OUTCOME.to_string(),
            activation_panicked: true,
            panic_message: message.into(),
        }
    }

    /// Reads a persisted status back: `Some` only if it is the status of
    /// a panicked activation.
    pub fn from_status(status: &serde_json::Value) -> Option<Self> {
        if status.get("activation_panicked") != Some(&serde_json::Value::Bool(true)) {
            return None;
        }
        serde_json::from_value(status.clone()).ok()
    }
}

/// The message a panic carried: its `&str` or `String` payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(the panic carried no message)".to_string()
    }
}

/// Where the driver persists activation records.
///
/// The [`DataStore`] is the production recorder; tests of the driver itself
/// use an in-memory one.
pub trait StatusRecorder: Send + Sync {
    /// Persists `record` as the executor's last activation of its task.
    fn record<'a>(
        &'a self,
        opctx: &'a OpContext,
        record: &'a TaskActivationRecord,
    ) -> BoxFuture<'a, Result<(), fm_db_queries::Error>>;
}

impl StatusRecorder for DataStore {
    fn record<'a>(
        &'a self,
        opctx: &'a OpContext,
        record: &'a TaskActivationRecord,
    ) -> BoxFuture<'a, Result<(), fm_db_queries::Error>> {
        Box::pin(self.executor_task_status_upsert(opctx, record))
    }
}

/// A callback that records one wake-up of a task.
type WakeFn = Arc<dyn Fn() + Send + Sync>;

/// Builds the future that forwards a source's events to a [`WakeFn`].
type Forwarder = Box<dyn FnOnce(WakeFn) -> BoxFuture<'static, ()> + Send>;

/// Something besides the period and explicit requests that wakes a task.
pub struct WakeSource {
    reason: ActivationReason,
    /// Builds the forwarder: a future that calls its argument on every
    /// wake-up, until its source is gone.
    forwarder: Forwarder,
}

impl WakeSource {
    /// Wakes the task, for `reason`, every time `notify` is notified
    /// (through [`Notify::notify_one`], which is remembered if the driver is
    /// not waiting at that moment).
    pub fn notify(reason: ActivationReason, notify: Arc<Notify>) -> WakeSource {
        WakeSource {
            reason,
            forwarder: Box::new(move |wake| {
                Box::pin(async move {
                    loop {
                        notify.notified().await;
                        wake();
                    }
                })
            }),
        }
    }

    /// Wakes the task, for `reason`, every time the value behind `receiver`
    /// changes.
    pub fn watch<T: Send + Sync + 'static>(
        reason: ActivationReason,
        mut receiver: watch::Receiver<T>,
    ) -> WakeSource {
        WakeSource {
            reason,
            forwarder: Box::new(move |wake| {
                Box::pin(async move {
                    // The loop ends when the sender is dropped: nothing can
                    // change any more.
                    while receiver.changed().await.is_ok() {
                        wake();
                    }
                })
            }),
        }
    }

    /// The reason this source reports.
    pub fn reason(&self) -> ActivationReason {
        self.reason
    }
}

impl std::fmt::Debug for WakeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeSource").field("reason", &self.reason).finish_non_exhaustive()
    }
}

/// Wake-ups not yet consumed by an activation, and the number of the last
/// activation that started. They share one lock so that a caller can tell
/// exactly which activation will see its wake-up.
#[derive(Debug, Default)]
struct WakeState {
    reasons: BTreeSet<ActivationReason>,
    started: u64,
}

/// What the task's loop reports to handles.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// The number of the last completed activation (0: none yet).
    completed: u64,
    /// Its record.
    last: Option<TaskActivationRecord>,
    /// Whether the task's loop has ended (or was never going to run).
    stopped: bool,
}

/// State shared between a task's loop and its handles.
#[derive(Debug)]
struct TaskShared {
    name: &'static str,
    wake: Mutex<WakeState>,
    notify: Notify,
    progress: watch::Sender<Progress>,
    /// Activations that panicked (and were recorded as failed).
    panics: AtomicU64,
}

impl TaskShared {
    /// Records a wake-up for `reason` and returns the number of the
    /// activation that will see it.
    fn wake(&self, reason: ActivationReason) -> u64 {
        let next = {
            let mut state = self.wake.lock().unwrap();
            state.reasons.insert(reason);
            state.started + 1
        };
        self.notify.notify_one();
        next
    }

    /// Consumes the pending wake-ups (plus `Periodic` when the period
    /// elapsed) and numbers the activation they start; `None` if there is
    /// nothing to do, which happens when a period tick already consumed the
    /// wake-ups behind a notification.
    fn begin(&self, periodic: bool) -> Option<(u64, Vec<ActivationReason>)> {
        let mut state = self.wake.lock().unwrap();
        if periodic {
            state.reasons.insert(ActivationReason::Periodic);
        }
        if state.reasons.is_empty() {
            return None;
        }
        state.started += 1;
        let reasons = std::mem::take(&mut state.reasons).into_iter().collect();
        Some((state.started, reasons))
    }

    /// Numbers a `fmd --once` activation; wake-ups recorded before it are
    /// dropped, since no other activation follows.
    fn begin_run_once(&self) -> u64 {
        let mut state = self.wake.lock().unwrap();
        state.reasons.clear();
        state.started += 1;
        state.started
    }

    fn finish(&self, record: TaskActivationRecord) {
        self.progress.send_modify(|p| {
            p.completed = record.iteration;
            p.last = Some(record);
        });
    }

    fn mark_stopped(&self) {
        self.progress.send_modify(|p| p.stopped = true);
    }
}

/// Marks a task stopped when its loop ends, even by a panic, so that
/// callers waiting on its handle do not wait forever.
struct StoppedOnDrop(Arc<TaskShared>);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.mark_stopped();
    }
}

/// A handle on one registered task: activates it on request and shows its
/// last activation. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TaskHandle {
    shared: Arc<TaskShared>,
}

impl TaskHandle {
    /// The task's name.
    pub fn name(&self) -> &'static str {
        self.shared.name
    }

    /// Asks for an activation as soon as possible and returns at once.
    ///
    /// If the task is busy, it runs once more right after the activation in
    /// flight; several requests made meanwhile are merged into that one
    /// activation.
    pub fn activate(&self) {
        self.shared.wake(ActivationReason::Explicit);
    }

    /// Asks for an activation (at once, when called) and returns a future
    /// that waits until an activation that started after the request has
    /// completed. The future yields that activation's record, or `None` if
    /// the task's loop stops first (or the driver is never started).
    pub fn activate_and_wait(
        &self,
    ) -> impl Future<Output = Option<TaskActivationRecord>> + Send + 'static {
        let mut progress = self.shared.progress.subscribe();
        let target = self.shared.wake(ActivationReason::Explicit);
        async move {
            let progress =
                progress.wait_for(|p| p.completed >= target || p.stopped).await.ok()?.clone();
            if progress.completed >= target { progress.last } else { None }
        }
    }

    /// Waits until activation number `iteration` (counted from 1) or a
    /// later one has completed and returns the last record, or `None` if the
    /// task's loop stops first.
    pub async fn wait_for_iteration(&self, iteration: u64) -> Option<TaskActivationRecord> {
        let mut progress = self.shared.progress.subscribe();
        let progress =
            progress.wait_for(|p| p.completed >= iteration || p.stopped).await.ok()?.clone();
        if progress.completed >= iteration { progress.last } else { None }
    }

    /// The record of the last completed activation, if any.
    pub fn last_activation(&self) -> Option<TaskActivationRecord> {
        self.shared.progress.borrow().last.clone()
    }

    /// How many activations of this task panicked (each recorded as a
    /// failed activation; the task went on).
    pub fn panics(&self) -> u64 {
        self.shared.panics.load(Ordering::Relaxed)
    }
}

/// A task waiting to be started.
struct Registration {
    task: Box<dyn BackgroundTask>,
    period: Duration,
    wake_sources: Vec<WakeSource>,
    shared: Arc<TaskShared>,
}

/// What the loop of one task needs besides the task itself.
#[derive(Clone)]
struct TaskContext {
    opctx: OpContext,
    executor_id: ExecutorUuid,
    recorder: Arc<dyn StatusRecorder>,
    shared: Arc<TaskShared>,
}

impl TaskContext {
    /// Runs one activation, then logs, persists and publishes its record.
    async fn activate(
        &self,
        task: &mut dyn BackgroundTask,
        iteration: u64,
        reasons: &[ActivationReason],
    ) -> TaskActivationRecord {
        // The database keeps microseconds; truncating here makes the
        // in-memory record equal to the persisted one.
        let time_started = nexus_fm_types::time::now();
        let clock = Instant::now();
        // A panic ends this activation, never the task (see the module
        // docs for why carrying on is safe).
        let result = AssertUnwindSafe(task.activate(&self.opctx, reasons)).catch_unwind().await;
        let duration_usec = u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX);

        let log = &self.opctx.log;
        let report = match result {
            Ok(report) => report,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                let panics = self.shared.panics.fetch_add(1, Ordering::Relaxed) + 1;
                slog::error!(log, "background task activation panicked; the task goes on";
                    "iteration" => iteration, "panic_message" => &message,
                    "panics_so_far" => panics);
                TaskReport::new(
                    &PanickedActivationStatus::new(&message),
                    ActivationOutcome::Failed,
                    format!("the activation panicked: {message}"),
                )
            }
        };
        let reasons_text = reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let message = "background task activated";
        match report.outcome {
            ActivationOutcome::NothingToDo => slog::debug!(log, "{message}";
                "iteration" => iteration, "woken_by" => &reasons_text,
                "duration_usec" => duration_usec, "summary" => &report.summary),
            ActivationOutcome::DidWork => slog::info!(log, "{message}";
                "iteration" => iteration, "woken_by" => &reasons_text,
                "duration_usec" => duration_usec, "summary" => &report.summary),
            ActivationOutcome::Failed => slog::warn!(log, "{message}";
                "iteration" => iteration, "woken_by" => &reasons_text,
                "duration_usec" => duration_usec, "summary" => &report.summary),
        }

        let record = TaskActivationRecord {
            executor_id: self.executor_id,
            task_name: self.shared.name.to_string(),
            iteration,
            time_started,
            duration_usec,
            status: report.status,
        };
        if let Err(error) = self.recorder.record(&self.opctx, &record).await {
            slog::warn!(log, "failed to persist background task status";
                "iteration" => iteration, "error" => error_chain(&error));
        }
        self.shared.finish(record.clone());
        record
    }

    /// The loop of one task: wait for the period or a wake-up, activate,
    /// repeat, until shutdown. The activation itself is never raced against
    /// shutdown, so it always runs to completion.
    async fn run(
        self,
        mut task: Box<dyn BackgroundTask>,
        period: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let _stopped = StoppedOnDrop(Arc::clone(&self.shared));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let periodic = tokio::select! {
                biased;
                // A dropped sender means the driver is gone: stop as well.
                _ = shutdown.wait_for(|stop| *stop) => break,
                // Report the period too if it elapsed at the same time.
                () = self.shared.notify.notified() => interval.tick().now_or_never().is_some(),
                _ = interval.tick() => true,
            };
            let Some((iteration, reasons)) = self.shared.begin(periodic) else { continue };
            self.activate(task.as_mut(), iteration, &reasons).await;
            // The period counts from the end of the last activation, so an
            // explicit or watched wake-up does not bring the next periodic
            // activation closer.
            interval.reset();
        }
    }
}

/// Registers background tasks, then starts them or runs each once.
pub struct Driver {
    log: slog::Logger,
    executor_id: ExecutorUuid,
    recorder: Arc<dyn StatusRecorder>,
    tasks: Vec<Registration>,
}

impl Driver {
    /// A driver for executor `executor_id` that persists activation records
    /// through `recorder` (normally the [`DataStore`]). Tasks run as the FM
    /// executor role.
    pub fn new(
        log: &slog::Logger,
        executor_id: ExecutorUuid,
        recorder: Arc<dyn StatusRecorder>,
    ) -> Driver {
        let log =
            log.new(slog::o!("component" => "fm_driver", "executor_id" => executor_id.to_string()));
        Driver { log, executor_id, recorder, tasks: Vec::new() }
    }

    /// Registers `task`, activated every `period`, at start-up, on explicit
    /// requests through the returned handle, and whenever one of
    /// `wake_sources` fires.
    ///
    /// # Panics
    ///
    /// If `period` is zero or a task of the same name is already registered:
    /// both are programming errors.
    pub fn register(
        &mut self,
        task: Box<dyn BackgroundTask>,
        period: Duration,
        wake_sources: Vec<WakeSource>,
    ) -> TaskHandle {
        let name = task.name();
        assert!(!period.is_zero(), "background task {name}: the period must not be zero");
        assert!(
            self.tasks.iter().all(|r| r.shared.name != name),
            "background task {name} is registered twice"
        );
        let shared = Arc::new(TaskShared {
            name,
            wake: Mutex::new(WakeState::default()),
            notify: Notify::new(),
            progress: watch::Sender::new(Progress::default()),
            panics: AtomicU64::new(0),
        });
        self.tasks.push(Registration { task, period, wake_sources, shared: Arc::clone(&shared) });
        TaskHandle { shared }
    }

    /// Starts every registered task in its own tokio task, each activated
    /// at once and then as registered. Must be called within a tokio
    /// runtime.
    pub fn start(mut self) -> RunningDriver {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut loops = Vec::new();
        let mut forwarders = Vec::new();
        let mut handles = Vec::new();
        for registration in &self.tasks {
            handles.push(TaskHandle { shared: Arc::clone(&registration.shared) });
        }
        for Registration { task, period, wake_sources, shared } in std::mem::take(&mut self.tasks) {
            let context = Driver::context_of(&self.log, self.executor_id, &self.recorder, &shared);
            for source in wake_sources {
                let reason = source.reason;
                let target = Arc::clone(&shared);
                let wake: WakeFn = Arc::new(move || {
                    target.wake(reason);
                });
                forwarders.push(tokio::spawn((source.forwarder)(wake)));
            }
            slog::debug!(context.opctx.log, "starting background task";
                "period_ms" => u64::try_from(period.as_millis()).unwrap_or(u64::MAX));
            loops.push((shared.name, tokio::spawn(context.run(task, period, shutdown_rx.clone()))));
        }
        RunningDriver { log: self.log.clone(), shutdown_tx, loops, forwarders, handles }
    }

    /// The context a task's activations run with: the FM executor role, and
    /// a logger naming the task.
    fn context_of(
        log: &slog::Logger,
        executor_id: ExecutorUuid,
        recorder: &Arc<dyn StatusRecorder>,
        shared: &Arc<TaskShared>,
    ) -> TaskContext {
        let log = log.new(slog::o!("background_task" => shared.name));
        TaskContext {
            opctx: OpContext::new(log, format!("fm-executor-{executor_id}"), Role::FmExecutor),
            executor_id,
            recorder: Arc::clone(recorder),
            shared: Arc::clone(shared),
        }
    }

    /// Activates every registered task exactly once, in registration
    /// order, each after the previous one finished, and returns their
    /// records (which are also persisted). Wake sources are ignored. This
    /// is `fmd --once`.
    pub async fn run_once(mut self) -> Vec<TaskActivationRecord> {
        let mut records = Vec::with_capacity(self.tasks.len());
        for Registration { mut task, shared, .. } in std::mem::take(&mut self.tasks) {
            let context = Driver::context_of(&self.log, self.executor_id, &self.recorder, &shared);
            let iteration = shared.begin_run_once();
            let reasons = [ActivationReason::RunOnce];
            records.push(context.activate(task.as_mut(), iteration, &reasons).await);
            shared.mark_stopped();
        }
        records
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Tasks still here were never started: callers waiting on their
        // handles must not wait forever.
        for registration in &self.tasks {
            registration.shared.mark_stopped();
        }
    }
}

/// Registered tasks, running. Dropping it stops the loops as
/// [`RunningDriver::shutdown`] does, without waiting for them.
pub struct RunningDriver {
    log: slog::Logger,
    shutdown_tx: watch::Sender<bool>,
    loops: Vec<(&'static str, JoinHandle<()>)>,
    forwarders: Vec<JoinHandle<()>>,
    handles: Vec<TaskHandle>,
}

impl RunningDriver {
    /// The handles of every task, in registration order.
    pub fn tasks(&self) -> &[TaskHandle] {
        &self.handles
    }

    /// The handle of the task named `name`.
    pub fn task(&self, name: &str) -> Option<&TaskHandle> {
        self.handles.iter().find(|h| h.name() == name)
    }

    /// The last completed activation of every task that has completed one,
    /// in registration order.
    pub fn last_activations(&self) -> Vec<TaskActivationRecord> {
        self.handles.iter().filter_map(TaskHandle::last_activation).collect()
    }

    /// Stops every task: no new activation starts, an activation in flight
    /// finishes (and its status is persisted), then this returns.
    pub async fn shutdown(mut self) {
        self.shutdown_tx.send_replace(true);
        for forwarder in self.forwarders.drain(..) {
            forwarder.abort();
        }
        for (name, handle) in self.loops.drain(..) {
            if let Err(error) = handle.await {
                slog::error!(self.log, "background task ended abnormally";
                    "background_task" => name, "error" => error_chain(&error));
            }
        }
        slog::debug!(self.log, "background tasks stopped");
    }
}

impl Drop for RunningDriver {
    fn drop(&mut self) {
        // After `shutdown` these are already done (and the lists empty).
        self.shutdown_tx.send_replace(true);
        for forwarder in &self.forwarders {
            forwarder.abort();
        }
    }
}

pub(crate) use fm_db_queries::error::error_chain;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Generous bound for things that should happen "at once"; tests never
    /// assert on how fast they happen, only that they do.
    const PATIENCE: Duration = Duration::from_secs(30);

    fn log() -> slog::Logger {
        slog::Logger::root(slog::Discard, slog::o!())
    }

    /// What a fake task saw.
    #[derive(Debug, Default)]
    struct Probe {
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        finished: AtomicUsize,
        reasons: Mutex<Vec<Vec<ActivationReason>>>,
    }

    /// Holds an activation until the test releases it.
    #[derive(Debug, Default)]
    struct Gate {
        entered: Notify,
        release: Notify,
    }

    struct FakeTask {
        name: &'static str,
        probe: Arc<Probe>,
        work: Duration,
        gate: Option<Arc<Gate>>,
    }

    impl FakeTask {
        fn new(name: &'static str, probe: &Arc<Probe>) -> Self {
            FakeTask { name, probe: Arc::clone(probe), work: Duration::ZERO, gate: None }
        }
    }

    impl BackgroundTask for FakeTask {
        fn name(&self) -> &'static str {
            self.name
        }

        fn activate<'a>(
            &'a mut self,
            _opctx: &'a OpContext,
            reasons: &'a [ActivationReason],
        ) -> BoxFuture<'a, TaskReport> {
            Box::pin(async move {
                let now = self.probe.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.probe.max_in_flight.fetch_max(now, Ordering::SeqCst);
                self.probe.reasons.lock().unwrap().push(reasons.to_vec());
                if let Some(gate) = &self.gate {
                    gate.entered.notify_one();
                    gate.release.notified().await;
                }
                if !self.work.is_zero() {
                    tokio::time::sleep(self.work).await;
                }
                self.probe.in_flight.fetch_sub(1, Ordering::SeqCst);
                self.probe.finished.fetch_add(1, Ordering::SeqCst);
                TaskReport::new(&json!({ "reasons": reasons }), ActivationOutcome::DidWork, "fake")
            })
        }
    }

    /// Keeps records in memory, or fails every time.
    #[derive(Debug, Default)]
    struct MemoryRecorder {
        fail: bool,
        records: Mutex<Vec<TaskActivationRecord>>,
        attempts: AtomicUsize,
    }

    impl StatusRecorder for MemoryRecorder {
        fn record<'a>(
            &'a self,
            _opctx: &'a OpContext,
            record: &'a TaskActivationRecord,
        ) -> BoxFuture<'a, Result<(), fm_db_queries::Error>> {
            Box::pin(async move {
                self.attempts.fetch_add(1, Ordering::SeqCst);
                if self.fail {
                    return Err(fm_db_queries::Error::InvalidArgument("injected".into()));
                }
                self.records.lock().unwrap().push(record.clone());
                Ok(())
            })
        }
    }

    fn driver(recorder: &Arc<MemoryRecorder>) -> (Driver, ExecutorUuid) {
        let executor = ExecutorUuid::new_v4();
        let recorder: Arc<dyn StatusRecorder> = Arc::clone(recorder) as _;
        (Driver::new(&log(), executor, recorder), executor)
    }

    fn reasons_of(record: &TaskActivationRecord) -> Vec<ActivationReason> {
        serde_json::from_value(record.status["reasons"].clone()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn activations_never_overlap_whatever_triggers_them() {
        let recorder = Arc::new(MemoryRecorder::default());
        let (mut driver, executor) = driver(&recorder);
        let probe = Arc::new(Probe::default());
        let task = FakeTask { work: Duration::from_millis(1), ..FakeTask::new("busy", &probe) };
        let notify = Arc::new(Notify::new());
        let (watch_tx, watch_rx) = watch::channel(0_u32);
        let handle = driver.register(
            Box::new(task),
            Duration::from_millis(1),
            vec![
                WakeSource::notify(ActivationReason::Notification, Arc::clone(&notify)),
                WakeSource::watch(ActivationReason::SitrepLoaded, watch_rx),
            ],
        );
        let running = driver.start();

        // Hammer the task from three directions at once, on top of its
        // 1 ms period, until every kind of trigger has been seen.
        let hammer = |f: Box<dyn Fn(u32) + Send>| {
            tokio::spawn(async move {
                for i in 0..300 {
                    f(i);
                    tokio::task::yield_now().await;
                }
            })
        };
        let explicit = handle.clone();
        let hammers = [
            hammer(Box::new(move |_| explicit.activate())),
            hammer(Box::new(move |_| notify.notify_one())),
            hammer(Box::new(move |i| {
                watch_tx.send_replace(i + 1);
            })),
        ];
        for h in hammers {
            h.await.unwrap();
        }
        // Triggers that keep coming keep the task busy, and the period
        // counts from the end of the last activation, so periodic
        // activations resume once the hammering stops.
        let periodic_seen = || {
            probe.reasons.lock().unwrap().iter().flatten().any(|r| *r == ActivationReason::Periodic)
        };
        tokio::time::timeout(PATIENCE, async {
            while !periodic_seen() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("a periodic activation");
        let last = tokio::time::timeout(PATIENCE, handle.activate_and_wait())
            .await
            .expect("a final explicit activation")
            .expect("the task is running");
        running.shutdown().await;

        assert_eq!(probe.max_in_flight.load(Ordering::SeqCst), 1, "activations overlapped");
        let seen: BTreeSet<ActivationReason> =
            probe.reasons.lock().unwrap().iter().flatten().copied().collect();
        for reason in [
            ActivationReason::Periodic,
            ActivationReason::Explicit,
            ActivationReason::Notification,
            ActivationReason::SitrepLoaded,
        ] {
            assert!(seen.contains(&reason), "{reason} never triggered an activation: {seen:?}");
        }
        // Every activation was persisted, numbered 1, 2, 3, ... in order.
        let records = recorder.records.lock().unwrap();
        let iterations: Vec<u64> = records.iter().map(|r| r.iteration).collect();
        assert_eq!(iterations, (1..=iterations.len() as u64).collect::<Vec<_>>());
        assert!(last.iteration <= iterations.len() as u64);
        assert!(records.iter().all(|r| r.executor_id == executor && r.task_name == "busy"));
        assert_eq!(probe.finished.load(Ordering::SeqCst), records.len());
    }

    #[tokio::test]
    async fn explicit_activation_runs_without_waiting_for_the_period() {
        let recorder = Arc::new(MemoryRecorder::default());
        let (mut driver, _) = driver(&recorder);
        let probe = Arc::new(Probe::default());
        let hour = Duration::from_secs(3600);
        let handle = driver.register(Box::new(FakeTask::new("slow", &probe)), hour, vec![]);
        let running = driver.start();

        // The first activation happens at start-up ...
        let first = tokio::time::timeout(PATIENCE, handle.wait_for_iteration(1))
            .await
            .expect("an activation at start-up")
            .unwrap();
        assert_eq!(reasons_of(&first), [ActivationReason::Periodic]);
        // ... and the next one, an hour away by the period, on request.
        let second = tokio::time::timeout(PATIENCE, handle.activate_and_wait())
            .await
            .expect("the explicit activation")
            .unwrap();
        assert_eq!(second.iteration, 2);
        assert_eq!(reasons_of(&second), [ActivationReason::Explicit]);
        assert_eq!(handle.last_activation(), Some(second.clone()));
        assert_eq!(running.last_activations(), std::slice::from_ref(&second));
        assert_eq!(running.task("slow").map(TaskHandle::name), Some("slow"));
        running.shutdown().await;
        assert_eq!(recorder.records.lock().unwrap().as_slice(), [first, second]);
    }

    #[tokio::test]
    async fn wake_ups_during_an_activation_are_merged_into_one() {
        let recorder = Arc::new(MemoryRecorder::default());
        let (mut driver, _) = driver(&recorder);
        let probe = Arc::new(Probe::default());
        let gate = Arc::new(Gate::default());
        let task = FakeTask { gate: Some(Arc::clone(&gate)), ..FakeTask::new("gated", &probe) };
        let handle = driver.register(Box::new(task), Duration::from_secs(3600), vec![]);
        let running = driver.start();

        // Hold the start-up activation, ask three times meanwhile ...
        tokio::time::timeout(PATIENCE, gate.entered.notified()).await.unwrap();
        for _ in 0..3 {
            handle.activate();
        }
        let waiter = tokio::spawn(handle.activate_and_wait());
        gate.release.notify_one();
        // ... and let the next one through: all four requests are served by
        // activation 2.
        tokio::time::timeout(PATIENCE, gate.entered.notified()).await.unwrap();
        gate.release.notify_one();
        let served = tokio::time::timeout(PATIENCE, waiter).await.unwrap().unwrap().unwrap();
        assert_eq!(served.iteration, 2);
        assert_eq!(reasons_of(&served), [ActivationReason::Explicit]);
        running.shutdown().await;
        assert_eq!(probe.finished.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn shutdown_lets_an_in_flight_activation_finish() {
        let recorder = Arc::new(MemoryRecorder::default());
        let (mut driver, _) = driver(&recorder);
        let probe = Arc::new(Probe::default());
        let gate = Arc::new(Gate::default());
        let task = FakeTask { gate: Some(Arc::clone(&gate)), ..FakeTask::new("gated", &probe) };
        let handle = driver.register(Box::new(task), Duration::from_secs(3600), vec![]);
        let running = driver.start();
        tokio::time::timeout(PATIENCE, gate.entered.notified()).await.unwrap();

        let shutdown = tokio::spawn(running.shutdown());
        // The activation is held at the gate, so shutdown cannot complete,
        // however long it is given.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!shutdown.is_finished(), "shutdown did not wait for the activation");
        assert_eq!(probe.finished.load(Ordering::SeqCst), 0);

        gate.release.notify_one();
        tokio::time::timeout(PATIENCE, shutdown).await.unwrap().unwrap();
        assert_eq!(probe.finished.load(Ordering::SeqCst), 1, "the activation ran to its end");
        let records = recorder.records.lock().unwrap().clone();
        assert_eq!(records.len(), 1, "and its status was persisted");
        assert_eq!(handle.last_activation(), Some(records[0].clone()));
        // A stopped task serves no more requests, and says so.
        assert_eq!(handle.activate_and_wait().await, None);
    }

    #[tokio::test]
    async fn a_failure_to_persist_does_not_stop_the_task() {
        let recorder = Arc::new(MemoryRecorder { fail: true, ..MemoryRecorder::default() });
        let (mut driver, _) = driver(&recorder);
        let probe = Arc::new(Probe::default());
        let handle = driver.register(
            Box::new(FakeTask::new("unrecorded", &probe)),
            Duration::from_secs(3600),
            vec![],
        );
        let running = driver.start();
        tokio::time::timeout(PATIENCE, handle.wait_for_iteration(1)).await.unwrap().unwrap();
        let second =
            tokio::time::timeout(PATIENCE, handle.activate_and_wait()).await.unwrap().unwrap();
        assert_eq!(second.iteration, 2, "the in-memory record is kept");
        running.shutdown().await;
        assert_eq!(recorder.attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn run_once_runs_each_task_once_in_registration_order() {
        let recorder = Arc::new(MemoryRecorder::default());
        let (mut driver, executor) = driver(&recorder);
        let probe = Arc::new(Probe::default());
        let names = ["first", "second", "third"];
        let handles: Vec<TaskHandle> = names
            .iter()
            .map(|&name| {
                driver.register(
                    Box::new(FakeTask::new(name, &probe)),
                    Duration::from_secs(1),
                    vec![],
                )
            })
            .collect();
        // A wake-up recorded before the run does not add an activation.
        handles[1].activate();
        let records = driver.run_once().await;

        assert_eq!(records.iter().map(|r| r.task_name.as_str()).collect::<Vec<_>>(), names);
        for (record, handle) in records.iter().zip(&handles) {
            assert_eq!(record.iteration, 1);
            assert_eq!(record.executor_id, executor);
            assert_eq!(reasons_of(record), [ActivationReason::RunOnce]);
            assert_eq!(handle.last_activation().as_ref(), Some(record));
        }
        assert_eq!(recorder.records.lock().unwrap().as_slice(), records.as_slice());
        assert_eq!(probe.finished.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn waiting_on_a_task_that_never_starts_ends() {
        let recorder = Arc::new(MemoryRecorder::default());
        let (mut driver, _) = driver(&recorder);
        let probe = Arc::new(Probe::default());
        let handle = driver.register(
            Box::new(FakeTask::new("idle", &probe)),
            Duration::from_secs(1),
            vec![],
        );
        let waiter = handle.activate_and_wait();
        drop(driver);
        assert_eq!(waiter.await, None);
        assert_eq!(probe.finished.load(Ordering::SeqCst), 0);
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn a_name_can_be_registered_only_once() {
        let recorder = Arc::new(MemoryRecorder::default());
        let (mut driver, _) = driver(&recorder);
        let probe = Arc::new(Probe::default());
        let second = Duration::from_secs(1);
        driver.register(Box::new(FakeTask::new("twin", &probe)), second, vec![]);
        driver.register(Box::new(FakeTask::new("twin", &probe)), second, vec![]);
    }

    #[test]
    fn error_chains_name_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&error), "outer: inner");
    }
}
