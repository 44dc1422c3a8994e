//! `fm_sitrep_loader`: keeps the current sitrep in memory for the other
//! tasks.
//!
//! Why it exists: the rendezvous task needs to know which sitrep is
//! current, with its generations and request counts, on every activation.
//! The loader reads that once per change and shares it through a
//! [`tokio::sync::watch`] channel; the rendezvous is woken whenever the
//! value changes. It holds a summary (metadata and counts), not the
//! requests: execution reads those from the database, so an executor's
//! memory does not grow with the size of the sitrep.
//!
//! What it guarantees:
//!
//! - Each activation polls the current history entry (one index lookup)
//!   and, when it differs from the sitrep held, reads the sitrep's summary
//!   (page by page, in one transaction) and publishes it. A summary is
//!   published only once it has been read completely; a failed read keeps
//!   the previous one and is retried by the next activation.
//! - On PostgreSQL the loader also LISTENs on
//!   [`SITREP_NOTIFY_CHANNEL`], on which every publish notifies when it
//!   commits, and wakes itself (through
//!   [`FmSitrepLoader::notification_wake_source`]) as soon as a sitrep is
//!   published. The LISTEN is set up before the poll, so a publish between
//!   the two is never missed. If the listener connection dies it is
//!   re-established by the next activation; if the database has no
//!   LISTEN/NOTIFY (CockroachDB) or refuses it, this is logged once and the
//!   loader relies on polling alone.
//! - In pinned mode (`fmd --once --sitrep ID`) it publishes exactly that
//!   committed sitrep, and fails if it has no history entry (it never became
//!   current, or has been pruned).

use crate::driver::{ActivationOutcome, BackgroundTask, TaskReport, WakeSource, error_chain};
use fm_db_queries::datastore::sitrep::insert::SITREP_NOTIFY_CHANNEL;
use fm_db_queries::{DataStore, OpContext};
use futures::future::BoxFuture;
use nexus_fm_types::{
    ActivationReason, FmSitrepLoaderStatus, SitrepRef, SitrepSummary, SitrepUuid, SitrepVersion,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How long setting up the LISTEN connection may take before the
/// activation gives up on it (and polls anyway).
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A sitrep as loaded: its summary (metadata and request counts), with its
/// history version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedSitrep {
    /// Its position in the history.
    pub version: SitrepVersion,
    /// Its metadata and counts.
    pub sitrep: SitrepSummary,
}

impl LoadedSitrep {
    /// Its id and version.
    pub fn sitrep_ref(&self) -> SitrepRef {
        SitrepRef { version: self.version, sitrep_id: self.sitrep.id() }
    }
}

/// The receiving end of the loader's channel: `None` until a sitrep has
/// been loaded.
pub type LoadedSitrepReceiver = watch::Receiver<Option<Arc<LoadedSitrep>>>;

/// Which sitrep the loader loads.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// The current sitrep; LISTEN through `listen_url` if given.
    Current { listen_url: Option<String> },
    /// Exactly this committed sitrep.
    Pinned(SitrepUuid),
}

/// The LISTEN connection.
struct Listener {
    /// Kept alive: dropping the last client closes the connection.
    client: tokio_postgres::Client,
    /// Drives the connection and forwards notifications; ends when the
    /// connection closes.
    connection: JoinHandle<()>,
}

impl Listener {
    fn is_alive(&self) -> bool {
        !self.connection.is_finished()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Where the LISTEN connection stands.
enum ListenerState {
    /// Not wanted: polling only, or pinned.
    NotWanted(&'static str),
    /// Wanted but not (yet, or any more) established; the next activation
    /// tries again. `reported` says whether the failure was already logged
    /// at warn (later ones are logged at debug, so a database that stays
    /// down does not flood the log).
    Down { error: Option<String>, reported: bool },
    /// Listening.
    Listening(Listener),
    /// The database cannot LISTEN; polling only, for good.
    Unsupported(String),
}

impl ListenerState {
    fn describe(&self) -> String {
        match self {
            ListenerState::NotWanted(why) => format!("not listening: {why}"),
            ListenerState::Down { error: None, .. } => {
                "not listening yet: connecting on the next activation".to_string()
            }
            ListenerState::Down { error: Some(error), .. } => {
                format!("not listening: {error}; reconnecting on the next activation")
            }
            ListenerState::Listening(_) => format!("listening on {SITREP_NOTIFY_CHANNEL}"),
            ListenerState::Unsupported(why) => format!("not listening: {why}; polling only"),
        }
    }
}

/// Why the LISTEN connection could not be set up.
#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error("connecting for LISTEN")]
    Connect(#[source] tokio_postgres::Error),
    #[error("the database refused LISTEN")]
    Refused(#[source] tokio_postgres::Error),
    #[error("setting up LISTEN took longer than {LISTEN_TIMEOUT:?}")]
    Timeout,
}

/// The `fm_sitrep_loader` task.
pub struct FmSitrepLoader {
    datastore: DataStore,
    source: Source,
    sender: watch::Sender<Option<Arc<LoadedSitrep>>>,
    notifications: Arc<Notify>,
    listener: ListenerState,
}

impl FmSitrepLoader {
    /// A loader that follows the current sitrep and, when the database
    /// supports it, LISTENs for publishes on a connection of its own to
    /// `database_url`.
    pub fn new(datastore: DataStore, database_url: impl Into<String>) -> FmSitrepLoader {
        let listener = if datastore.notifications_supported() {
            ListenerState::Down { error: None, reported: false }
        } else {
            // Logged here, once; the status repeats it on every activation.
            slog::info!(
                datastore.log(),
                "the database has no LISTEN/NOTIFY; the sitrep loader \
                will poll only"
            );
            ListenerState::Unsupported("the database has no LISTEN/NOTIFY".to_string())
        };
        FmSitrepLoader::with_source(
            datastore,
            Source::Current { listen_url: Some(database_url.into()) },
            listener,
        )
    }

    /// A loader that follows the current sitrep by polling alone.
    pub fn polling(datastore: DataStore) -> FmSitrepLoader {
        FmSitrepLoader::with_source(
            datastore,
            Source::Current { listen_url: None },
            ListenerState::NotWanted("polling only"),
        )
    }

    /// A loader that publishes exactly the committed sitrep `sitrep_id`
    /// (`fmd --once --sitrep ID`) instead of the current one. Its
    /// activations fail, saying why, if that sitrep has no history entry.
    pub fn pinned(datastore: DataStore, sitrep_id: SitrepUuid) -> FmSitrepLoader {
        FmSitrepLoader::with_source(
            datastore,
            Source::Pinned(sitrep_id),
            ListenerState::NotWanted("pinned to one sitrep"),
        )
    }

    fn with_source(datastore: DataStore, source: Source, listener: ListenerState) -> Self {
        FmSitrepLoader {
            datastore,
            source,
            sender: watch::Sender::new(None),
            notifications: Arc::new(Notify::new()),
            listener,
        }
    }

    /// A receiver of the loaded sitrep. Its current value counts as seen,
    /// so `changed()` fires at the next publish.
    pub fn subscribe(&self) -> LoadedSitrepReceiver {
        self.sender.subscribe()
    }

    /// The sitrep held now, if any.
    pub fn loaded(&self) -> Option<Arc<LoadedSitrep>> {
        self.sender.borrow().clone()
    }

    /// The wake source that activates this loader whenever the database
    /// announces a newly published sitrep.
    pub fn notification_wake_source(&self) -> WakeSource {
        WakeSource::notify(ActivationReason::Notification, Arc::clone(&self.notifications))
    }

    /// One activation; see the module documentation.
    async fn load(
        &mut self,
        opctx: &OpContext,
        reasons: &[ActivationReason],
    ) -> FmSitrepLoaderStatus {
        let held = self.loaded().map(|l| l.sitrep_ref());
        let mut status = FmSitrepLoaderStatus {
            woken_by: reasons.to_vec(),
            pinned: None,
            current: None,
            loaded: held,
            changed: false,
            listener: String::new(),
            outcome: String::new(),
            error: None,
        };
        match self.source.clone() {
            Source::Pinned(sitrep_id) => {
                status.pinned = Some(sitrep_id);
                self.load_pinned(opctx, sitrep_id, &mut status).await;
            }
            Source::Current { listen_url } => {
                // LISTEN first, then poll: a publish that commits between
                // the two is seen by the poll, one after both is announced.
                if let Some(url) = listen_url {
                    self.ensure_listener(opctx, &url).await;
                }
                self.load_current(opctx, &mut status).await;
            }
        }
        status.listener = self.listener.describe();
        status
    }

    async fn load_current(&mut self, opctx: &OpContext, status: &mut FmSitrepLoaderStatus) {
        let entry = match self.datastore.sitrep_current_version(opctx).await {
            Ok(entry) => entry,
            Err(error) => {
                status.outcome = "failed: reading the current sitrep version".to_string();
                status.error = Some(error_chain(&error));
                return;
            }
        };
        let Some(entry) = entry else {
            status.outcome = "no sitrep published yet".to_string();
            return;
        };
        let current = SitrepRef { version: entry.version, sitrep_id: entry.sitrep_id };
        status.current = Some(current);
        if status.loaded == Some(current) {
            status.outcome = "unchanged".to_string();
            return;
        }
        self.read_and_publish(opctx, current, status).await;
    }

    async fn load_pinned(
        &mut self,
        opctx: &OpContext,
        sitrep_id: SitrepUuid,
        status: &mut FmSitrepLoaderStatus,
    ) {
        if status.loaded.is_some_and(|held| held.sitrep_id == sitrep_id) {
            status.outcome = "unchanged: pinned to this sitrep".to_string();
            return;
        }
        match self.datastore.sitrep_history_entry(opctx, sitrep_id).await {
            Ok(Some(entry)) => {
                let pinned = SitrepRef { version: entry.version, sitrep_id };
                self.read_and_publish(opctx, pinned, status).await;
            }
            Ok(None) => {
                status.outcome = "failed: the pinned sitrep is not committed".to_string();
                status.error = Some(format!(
                    "sitrep {sitrep_id} has no history entry: it never became current, or it \
                     has been pruned"
                ));
            }
            Err(error) => {
                status.outcome = "failed: reading the pinned sitrep's history entry".to_string();
                status.error = Some(error_chain(&error));
            }
        }
    }

    /// Reads `target`'s summary and publishes it.
    async fn read_and_publish(
        &mut self,
        opctx: &OpContext,
        target: SitrepRef,
        status: &mut FmSitrepLoaderStatus,
    ) {
        match self.datastore.sitrep_summary(opctx, target.sitrep_id).await {
            Ok(sitrep) => {
                let loaded = Arc::new(LoadedSitrep { version: target.version, sitrep });
                slog::info!(opctx.log, "loaded sitrep";
                    "sitrep_id" => %target.sitrep_id,
                    "version" => %target.version,
                    "previous_version" => status.loaded.map(|l| l.version.as_i64()),
                    "alert_generation" => %loaded.sitrep.metadata.alert_generation,
                    "support_bundle_generation" =>
                        %loaded.sitrep.metadata.support_bundle_generation);
                // `send_replace` stores the value even while nobody
                // subscribes.
                self.sender.send_replace(Some(loaded));
                status.loaded = Some(target);
                status.changed = true;
                status.outcome = format!("loaded sitrep version {}", target.version);
            }
            Err(error) => {
                status.outcome = format!("failed: reading sitrep version {}", target.version);
                status.error = Some(error_chain(&error));
            }
        }
    }

    /// Makes sure the LISTEN connection is up when it is wanted: sets it up
    /// the first time and again after it died. Failures are logged once per
    /// outage; the poll that follows does not depend on them.
    async fn ensure_listener(&mut self, opctx: &OpContext, url: &str) {
        match &self.listener {
            ListenerState::Listening(listener) if listener.is_alive() => return,
            ListenerState::Listening(_) => {
                slog::info!(opctx.log, "sitrep listener connection closed; reconnecting");
                self.listener = ListenerState::Down { error: None, reported: false };
            }
            ListenerState::Down { .. } => {}
            ListenerState::NotWanted(_) | ListenerState::Unsupported(_) => return,
        }
        let reported = matches!(self.listener, ListenerState::Down { reported: true, .. });
        let setup = listen(url, Arc::clone(&self.notifications), opctx.log.clone());
        let result = match tokio::time::timeout(LISTEN_TIMEOUT, setup).await {
            Ok(result) => result,
            Err(_) => Err(ListenError::Timeout),
        };
        self.listener = match result {
            Ok(listener) => {
                slog::info!(opctx.log, "listening for published sitreps";
                    "channel" => SITREP_NOTIFY_CHANNEL);
                ListenerState::Listening(listener)
            }
            Err(error @ ListenError::Refused(_)) => {
                let error = error_chain(&error);
                slog::warn!(opctx.log, "cannot LISTEN for published sitreps; polling only";
                    "error" => &error);
                ListenerState::Unsupported(error)
            }
            Err(error) => {
                let error = error_chain(&error);
                if reported {
                    slog::debug!(opctx.log, "sitrep listener still down"; "error" => &error);
                } else {
                    slog::warn!(opctx.log,
                        "cannot LISTEN for published sitreps; polling until it works";
                        "error" => &error);
                }
                ListenerState::Down { error: Some(error), reported: true }
            }
        };
    }
}

/// Opens a connection to `url`, LISTENs on [`SITREP_NOTIFY_CHANNEL`] and
/// spawns the task that drives the connection and calls
/// `notifications.notify_one()` for every notification.
async fn listen(
    url: &str,
    notifications: Arc<Notify>,
    log: slog::Logger,
) -> Result<Listener, ListenError> {
    use tokio_postgres::AsyncMessage;
    let (client, mut connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(ListenError::Connect)?;
    // The connection must be driven for the LISTEN below to complete, so
    // the driving task starts first.
    let driver = tokio::spawn(async move {
        loop {
            match futures::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(notification))) => {
                    slog::debug!(log, "sitrep publish announced";
                        "channel" => notification.channel(),
                        "version" => notification.payload());
                    notifications.notify_one();
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    slog::info!(log, "sitrep listener connection failed";
                        "error" => error_chain(&error));
                    break;
                }
                None => break,
            }
        }
    });
    let listener = Listener { client, connection: driver };
    // The channel name is a constant identifier, quoted; no input reaches
    // this statement.
    let statement = format!("LISTEN \"{SITREP_NOTIFY_CHANNEL}\"");
    listener.client.batch_execute(&statement).await.map_err(|error| {
        // A closed connection is not a refusal: the next activation retries.
        if error.is_closed() { ListenError::Connect(error) } else { ListenError::Refused(error) }
    })?;
    Ok(listener)
}

impl BackgroundTask for FmSitrepLoader {
    fn name(&self) -> &'static str {
        FmSitrepLoaderStatus::TASK_NAME
    }

    fn activate<'a>(
        &'a mut self,
        opctx: &'a OpContext,
        reasons: &'a [ActivationReason],
    ) -> BoxFuture<'a, TaskReport> {
        Box::pin(async move {
            let status = self.load(opctx, reasons).await;
            let outcome = if status.error.is_some() {
                ActivationOutcome::Failed
            } else if status.changed {
                ActivationOutcome::DidWork
            } else {
                ActivationOutcome::NothingToDo
            };
            let summary = status.outcome.clone();
            TaskReport::new(&status, outcome, summary)
        })
    }
}
