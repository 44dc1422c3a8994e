//! History retention: keep the newest sitreps, archive and delete the rest.
//!
//! The pruner keeps the newest `keep` history entries (never fewer than
//! [`MIN_KEEP`], so the current sitrep and its parent always stay) and
//! removes older sitreps one at a time, oldest first, a page of history
//! entries at a time. Each sitrep goes in one transaction that archives it
//! as JSON and then deletes its `fm_sitrep` row first and its children after
//! it; a reader therefore sees a whole sitrep or none, and "the sitrep row
//! exists" always implies its requests are visible, which the sweep relies
//! on (docs/design.md, "Retention"). Pruning never makes a tombstone collectable
//! early: the sweep driven by a pruned sitrep simply deletes nothing.
//!
//! # Pruning cannot wedge
//!
//! - **The archive entry is bounded.** A sitrep may hold a million requests
//!   with 64 KiB payloads each, far beyond what one row can hold, so an
//!   entry is at most [`MAX_ARCHIVE_BYTES`] of compact JSON. What is kept,
//!   in order of priority: the metadata, the cases, each request's ids,
//!   case, class or reason, and last the payloads and data selections (each
//!   only if at most [`MAX_ARCHIVE_FIELD_BYTES`]). Lists are cut to a prefix
//!   (in id order) when the bound is reached, and the entry says what it
//!   left out (see [`SitrepArchive`] for the JSON form). The sitrep is read
//!   in pages and left-out rows are only counted, so memory stays bounded
//!   too.
//! - **A failure to archive one sitrep does not stop the pass.** If the
//!   archive transaction fails for a reason that is about this sitrep
//!   (anything but a lost connection or exhausted retries, which end the
//!   pass as before), the sitrep is pruned in a second transaction with a
//!   *failure record*: an archive entry whose status is `failed`, with the
//!   error and the metadata if it can still be read. If even that fails,
//!   the sitrep is kept whole and the pass goes on with later entries: a
//!   retained sitrep is always safe (it only keeps its request ids
//!   reserved and can drive a sweep as any committed sitrep can), and the
//!   next pass tries again. Either way the pass reports the sitrep, its
//!   version and the error ([`PruneReport::archive_failures`]), which the
//!   `fm_sitrep_pruner` status shows.
//! - **Every write is in the retry wrapper**, the archive trim included:
//!   the archive keeps only the newest `archive_keep` entries, trimmed a
//!   page per SERIALIZABLE transaction that finds the retention boundary
//!   and deletes below it.
//!
//! Whatever fails, the current sitrep is never pruned (checked again in
//! every pruning transaction), and a sitrep's row goes with its children in
//! one transaction.

use super::{
    READ_PAGE_ROWS, alert_request_id_page_query, alert_request_page_query, case_page_query,
    current_history_entry_query, load_all_pages, sitrep_metadata_query,
    support_bundle_request_id_page_query, support_bundle_request_page_query,
};
use crate::context::{Action, OpContext};
use crate::datastore::DataStore;
use crate::db_schema::{
    fm_alert_request, fm_case, fm_sitrep, fm_sitrep_archive, fm_sitrep_history,
    fm_support_bundle_request,
};
use crate::error::{Error, error_chain};
use crate::model::{AlertRequestRow, SitrepArchiveRow, SitrepHistoryRow, SupportBundleRequestRow};
use crate::transaction::{TransactionError, transaction_retry};
use chrono::{DateTime, Utc};
use diesel::dsl::{AsSelect, delete};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nexus_fm_types::ids::{AlertUuid, CaseUuid, SitrepUuid, SupportBundleUuid};
use nexus_fm_types::task::{ArchiveFailureOutcome, PrunerArchiveFailure};
use nexus_fm_types::{
    AlertRequest, Case, Sitrep, SitrepMetadata, SitrepRef, SitrepVersion, SupportBundleRequest,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The fewest history entries the pruner keeps: the current sitrep and its
/// parent.
pub const MIN_KEEP: u32 = 2;

/// History entries (or archive entries) handled per page.
pub const PRUNE_PAGE_ROWS: i64 = 100;

/// The largest archive entry, in bytes of compact JSON (the `sitrep`
/// column of `fm_sitrep_archive`): far below PostgreSQL's 1 GB limit on a
/// field, and small enough that `archive_keep` entries stay a modest table.
pub const MAX_ARCHIVE_BYTES: usize = 4 * 1024 * 1024;

/// The largest alert payload or bundle data selection an archive entry
/// keeps, in bytes of compact JSON; a larger one is replaced by its size.
pub const MAX_ARCHIVE_FIELD_BYTES: usize = 16 * 1024;

/// Requests read per statement while archiving: each may carry a 64 KiB
/// payload, so this bounds the memory one page takes (about 16 MiB).
pub const ARCHIVE_PAGE_ROWS: i64 = 256;

/// The most archive failures one pass lists; the rest are counted.
pub const MAX_LISTED_ARCHIVE_FAILURES: usize = 16;

/// The longest error text a failure record keeps.
const MAX_FAILURE_ERROR_BYTES: usize = 4096;

/// How much to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// History entries to keep (at least [`MIN_KEEP`]).
    pub keep: u32,
    /// Archive entries to keep (0 disables archiving's retention of old
    /// entries entirely: every archived sitrep is deleted at the end of the
    /// pass).
    pub archive_keep: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy { keep: 100, archive_keep: 1000 }
    }
}

/// One sitrep the pruner removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PrunedSitrep {
    /// Its history version.
    pub version: SitrepVersion,
    /// Its id.
    pub sitrep_id: SitrepUuid,
}

/// What one pruning pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    /// The current version when the pass started (`None`: empty history).
    pub current_version: Option<SitrepVersion>,
    /// Sitreps deleted, oldest first, including those pruned with a
    /// failure record.
    pub pruned: Vec<PrunedSitrep>,
    /// How many of `pruned` have a partial (truncated) archive entry.
    pub archives_truncated: usize,
    /// Sitreps that could not be archived, oldest first (at most
    /// [`MAX_LISTED_ARCHIVE_FAILURES`]): pruned with a failure record, or
    /// kept for the next pass.
    pub archive_failures: Vec<PrunerArchiveFailure>,
    /// Archive failures beyond those listed.
    pub archive_failures_not_listed: usize,
    /// History entries that another pruner removed first.
    pub already_gone: usize,
    /// Archive entries deleted to respect `archive_keep`.
    pub archive_entries_deleted: usize,
    /// Serialization-failure retries over the pass's transactions.
    pub retries: u64,
}

/// An archive entry as stored in `fm_sitrep_archive`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedSitrep {
    /// The history version it had.
    pub version: SitrepVersion,
    /// When it became current.
    pub time_made_current: DateTime<Utc>,
    /// When it was archived.
    pub time_archived: DateTime<Utc>,
    /// What the archive kept of it.
    pub archive: SitrepArchive,
}

/// The JSON document an archive entry holds: the sitrep's JSON form (see
/// the README), possibly partial, and an `archive` object that says how
/// complete it is:
///
/// ```jsonc
/// {
///   "metadata": { ... } | null,   // null only in a failure record whose metadata could not be read
///   "cases": [ ... ],             // as in the sitrep; a prefix (by id) when truncated
///   "alert_requests": [           // a prefix (by id) when truncated
///     { "id", "case_id", "requested_sitrep_id", "class",
///       "payload": <JSON> | null,
///       "payload_omitted_bytes": 70000 }   // only when the payload was left out: its size
///   ],
///   "support_bundle_requests": [  // likewise, with "data_selection" / "data_selection_omitted_bytes"
///     { "id", "case_id", "requested_sitrep_id", "reason", "data_selection": ..., ... }
///   ],
///   "archive": { "status": "complete" }
///            | { "status": "truncated", "max_bytes": 4194304, "max_field_bytes": 16384,
///                "cases_omitted": 0, "alert_requests_omitted": 0,
///                "support_bundle_requests_omitted": 0, "alert_payloads_omitted": 150,
///                "support_bundle_data_selections_omitted": 3 }
///            | { "status": "failed", "error": "why archiving failed" }
/// }
/// ```
///
/// Entries written before the `archive` object existed lack it and are
/// whole: they read as complete. A complete entry converts back into the
/// [`Sitrep`] ([`SitrepArchive::into_sitrep`]); a truncated or failed one
/// does not, so nothing mistakes a partial archive for the sitrep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SitrepArchive {
    /// The sitrep's metadata (`None` only in a failure record).
    pub metadata: Option<SitrepMetadata>,
    /// Cases, by id.
    #[serde(default)]
    pub cases: Vec<Case>,
    /// Alert requests, by id.
    #[serde(default)]
    pub alert_requests: Vec<ArchivedAlertRequest>,
    /// Support-bundle requests, by id.
    #[serde(default)]
    pub support_bundle_requests: Vec<ArchivedSupportBundleRequest>,
    /// How complete this entry is.
    #[serde(rename = "archive", default)]
    pub completeness: ArchiveCompleteness,
}

/// How complete an archive entry is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ArchiveCompleteness {
    /// The whole sitrep.
    #[default]
    Complete,
    /// Too large to keep whole: what was left out.
    Truncated(ArchiveTruncation),
    /// Archiving failed; the entry holds at most the metadata.
    Failed {
        /// Why, with the whole cause chain.
        error: String,
    },
}

/// What a truncated archive entry left out, and the bounds that made it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveTruncation {
    /// The bound on the whole entry ([`MAX_ARCHIVE_BYTES`] when written).
    pub max_bytes: u64,
    /// The bound on one payload ([`MAX_ARCHIVE_FIELD_BYTES`] when written).
    pub max_field_bytes: u64,
    /// Cases left out (the last ones by id).
    pub cases_omitted: u64,
    /// Alert requests left out entirely (the last ones by id).
    pub alert_requests_omitted: u64,
    /// Support-bundle requests left out entirely (the last ones by id).
    pub support_bundle_requests_omitted: u64,
    /// Alert requests kept without their payload.
    pub alert_payloads_omitted: u64,
    /// Support-bundle requests kept without their data selection.
    pub support_bundle_data_selections_omitted: u64,
}

impl ArchiveTruncation {
    fn is_empty(&self) -> bool {
        let ArchiveTruncation {
            max_bytes: _,
            max_field_bytes: _,
            cases_omitted,
            alert_requests_omitted,
            support_bundle_requests_omitted,
            alert_payloads_omitted,
            support_bundle_data_selections_omitted,
        } = self;
        [
            cases_omitted,
            alert_requests_omitted,
            support_bundle_requests_omitted,
            alert_payloads_omitted,
            support_bundle_data_selections_omitted,
        ]
        .iter()
        .all(|n| **n == 0)
    }
}

/// An alert request as archived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedAlertRequest {
    /// The id of the alert to create.
    pub id: AlertUuid,
    /// The case that asks for it.
    pub case_id: CaseUuid,
    /// The sitrep in which the request first appeared.
    pub requested_sitrep_id: SitrepUuid,
    /// The alert class.
    pub class: String,
    /// The payload, or `null` if it was left out.
    pub payload: serde_json::Value,
    /// Set when the payload was left out: its size in bytes of compact JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_omitted_bytes: Option<u64>,
}

/// A support-bundle request as archived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedSupportBundleRequest {
    /// The id of the bundle to create.
    pub id: SupportBundleUuid,
    /// The case that asks for it.
    pub case_id: CaseUuid,
    /// The sitrep in which the request first appeared.
    pub requested_sitrep_id: SitrepUuid,
    /// Why the bundle is wanted.
    pub reason: String,
    /// The data selection, or `null` if it was left out.
    pub data_selection: serde_json::Value,
    /// Set when the data selection was left out: its size in bytes of
    /// compact JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_selection_omitted_bytes: Option<u64>,
}

impl SitrepArchive {
    /// The archived sitrep, if the entry is complete.
    pub fn into_sitrep(self) -> Option<Sitrep> {
        let SitrepArchive {
            metadata,
            cases,
            alert_requests,
            support_bundle_requests,
            completeness,
        } = self;
        if completeness != ArchiveCompleteness::Complete {
            return None;
        }
        let alert_requests = alert_requests
            .into_iter()
            .map(|r| {
                let ArchivedAlertRequest {
                    id,
                    case_id,
                    requested_sitrep_id,
                    class,
                    payload,
                    payload_omitted_bytes,
                } = r;
                payload_omitted_bytes.is_none().then_some(AlertRequest {
                    id,
                    case_id,
                    requested_sitrep_id,
                    class,
                    payload,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let support_bundle_requests = support_bundle_requests
            .into_iter()
            .map(|r| {
                let ArchivedSupportBundleRequest {
                    id,
                    case_id,
                    requested_sitrep_id,
                    reason,
                    data_selection,
                    data_selection_omitted_bytes,
                } = r;
                data_selection_omitted_bytes.is_none().then_some(SupportBundleRequest {
                    id,
                    case_id,
                    requested_sitrep_id,
                    reason,
                    data_selection,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Sitrep { metadata: metadata?, cases, alert_requests, support_bundle_requests })
    }

    /// A failure record: what is known of a sitrep that could not be
    /// archived.
    fn failed(metadata: Option<SitrepMetadata>, error: &str) -> SitrepArchive {
        SitrepArchive {
            metadata,
            cases: Vec::new(),
            alert_requests: Vec::new(),
            support_bundle_requests: Vec::new(),
            completeness: ArchiveCompleteness::Failed { error: truncate_text(error) },
        }
    }
}

/// `text`, cut at a character boundary to [`MAX_FAILURE_ERROR_BYTES`].
fn truncate_text(text: &str) -> String {
    if text.len() <= MAX_FAILURE_ERROR_BYTES {
        return text.to_string();
    }
    let mut end = MAX_FAILURE_ERROR_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], text.len())
}

/// The size of a value's compact JSON, without building it.
fn json_size<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serializing these types into a writer that never fails cannot fail;
    // if it somehow did, count the value as too large to keep.
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX / 4,
    }
}

/// The bounds an archive entry is built under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// The bound on the whole entry, in bytes of compact JSON.
    pub max_bytes: usize,
    /// The bound on one payload or data selection.
    pub max_field_bytes: usize,
}

impl ArchiveLimits {
    /// The production bounds.
    pub const DEFAULT: ArchiveLimits =
        ArchiveLimits { max_bytes: MAX_ARCHIVE_BYTES, max_field_bytes: MAX_ARCHIVE_FIELD_BYTES };
}

/// Room kept for the document's own braces, keys and the `archive` object.
const ARCHIVE_ENVELOPE_BYTES: usize = 1024;

/// A request as archived: its payload (an alert's payload, a bundle's data
/// selection) can be kept or replaced by its size.
trait ArchivedRequest: Serialize {
    /// Keeps the payload.
    fn keep_payload(&mut self, payload: serde_json::Value);
    /// Leaves the payload out, recording its size.
    fn omit_payload(&mut self, size: usize);
}

impl ArchivedRequest for ArchivedAlertRequest {
    fn keep_payload(&mut self, payload: serde_json::Value) {
        (self.payload, self.payload_omitted_bytes) = (payload, None);
    }
    fn omit_payload(&mut self, size: usize) {
        (self.payload, self.payload_omitted_bytes) = (serde_json::Value::Null, Some(size as u64));
    }
}

impl ArchivedRequest for ArchivedSupportBundleRequest {
    fn keep_payload(&mut self, payload: serde_json::Value) {
        (self.data_selection, self.data_selection_omitted_bytes) = (payload, None);
    }
    fn omit_payload(&mut self, size: usize) {
        (self.data_selection, self.data_selection_omitted_bytes) =
            (serde_json::Value::Null, Some(size as u64));
    }
}

/// The requests of one type kept so far, and what was left out.
#[derive(Debug)]
struct RequestList<R> {
    kept: Vec<R>,
    /// Requests left out entirely.
    omitted: u64,
    /// Requests kept without their payload.
    payloads_omitted: u64,
}

impl<R> Default for RequestList<R> {
    fn default() -> Self {
        RequestList { kept: Vec::new(), omitted: 0, payloads_omitted: 0 }
    }
}

/// Which kept payload a later request may evict: the request's type and
/// its index, with the payload's size.
#[derive(Clone, Copy, Debug)]
enum KeptPayload {
    Alert(usize, usize),
    SupportBundle(usize, usize),
}

/// Builds an archive entry within [`ArchiveLimits`] from a sitrep fed to it
/// in id order: metadata, then cases, then alert requests, then bundle
/// requests. Priority: metadata, cases, request ids (with case, class or
/// reason), then payloads. Sizes are counted as the compact JSON of each
/// item in its payload-less form plus its payload, and a comma, which
/// overestimates the document slightly; a request's ids may evict payloads
/// kept before it, newest first.
#[derive(Debug)]
pub struct ArchiveBuilder {
    limits: ArchiveLimits,
    used: usize,
    metadata: SitrepMetadata,
    cases: Vec<Case>,
    cases_omitted: u64,
    alerts: RequestList<ArchivedAlertRequest>,
    support_bundles: RequestList<ArchivedSupportBundleRequest>,
    kept_payloads: Vec<KeptPayload>,
}

impl ArchiveBuilder {
    /// Starts an entry for a sitrep with these metadata, which are always
    /// kept.
    pub fn new(limits: ArchiveLimits, metadata: SitrepMetadata) -> ArchiveBuilder {
        ArchiveBuilder {
            limits,
            used: ARCHIVE_ENVELOPE_BYTES + json_size(&metadata),
            metadata,
            cases: Vec::new(),
            cases_omitted: 0,
            alerts: RequestList::default(),
            support_bundles: RequestList::default(),
            kept_payloads: Vec::new(),
        }
    }

    /// Whether no more cases fit (later ones are only counted).
    pub fn cases_full(&self) -> bool {
        self.cases_omitted > 0
    }

    /// Whether no more alert requests fit.
    pub fn alert_requests_full(&self) -> bool {
        self.alerts.omitted > 0
    }

    /// Whether no more support-bundle requests fit.
    pub fn support_bundle_requests_full(&self) -> bool {
        self.support_bundles.omitted > 0
    }

    /// Makes room for `bytes` more, evicting kept payloads (newest first).
    fn make_room(&mut self, bytes: usize) -> bool {
        while self.used + bytes > self.limits.max_bytes {
            let size = match self.kept_payloads.pop() {
                None => return false,
                Some(KeptPayload::Alert(i, size)) => {
                    self.alerts.kept[i].omit_payload(size);
                    self.alerts.payloads_omitted += 1;
                    size
                }
                Some(KeptPayload::SupportBundle(i, size)) => {
                    self.support_bundles.kept[i].omit_payload(size);
                    self.support_bundles.payloads_omitted += 1;
                    size
                }
            };
            self.used -= size;
        }
        true
    }

    /// Adds the next case.
    pub fn add_case(&mut self, case: Case) {
        let size = json_size(&case) + 1;
        if self.cases_full() || !self.make_room(size) {
            self.cases_omitted += 1;
            return;
        }
        self.used += size;
        self.cases.push(case);
    }

    /// Counts `n` cases left out without reading them.
    pub fn omit_cases(&mut self, n: usize) {
        self.cases_omitted += n as u64;
    }

    /// Adds the next request of one type: its ids if they fit (evicting
    /// payloads if need be), then its payload if it fits without evicting.
    fn add_request<R: ArchivedRequest>(
        &mut self,
        mut request: R,
        payload: serde_json::Value,
        list: fn(&mut ArchiveBuilder) -> &mut RequestList<R>,
        kept: fn(usize, usize) -> KeptPayload,
    ) {
        let payload_size = json_size(&payload);
        request.omit_payload(payload_size);
        let size = json_size(&request) + 1;
        if list(self).omitted > 0 || !self.make_room(size) {
            list(self).omitted += 1;
            return;
        }
        self.used += size;
        let fits = payload_size <= self.limits.max_field_bytes
            && self.used + payload_size <= self.limits.max_bytes;
        let list = list(self);
        let index = list.kept.len();
        if fits {
            request.keep_payload(payload);
            list.kept.push(request);
            self.used += payload_size;
            self.kept_payloads.push(kept(index, payload_size));
        } else {
            list.payloads_omitted += 1;
            list.kept.push(request);
        }
    }

    /// Adds the next alert request.
    pub fn add_alert_request(&mut self, request: AlertRequest) {
        let AlertRequest { id, case_id, requested_sitrep_id, class, payload } = request;
        let archived = ArchivedAlertRequest {
            id,
            case_id,
            requested_sitrep_id,
            class,
            payload: serde_json::Value::Null,
            payload_omitted_bytes: None,
        };
        self.add_request(archived, payload, |b| &mut b.alerts, KeptPayload::Alert);
    }

    /// Counts `n` alert requests left out without reading them.
    pub fn omit_alert_requests(&mut self, n: usize) {
        self.alerts.omitted += n as u64;
    }

    /// Adds the next support-bundle request.
    pub fn add_support_bundle_request(&mut self, request: SupportBundleRequest) {
        let SupportBundleRequest { id, case_id, requested_sitrep_id, reason, data_selection } =
            request;
        let archived = ArchivedSupportBundleRequest {
            id,
            case_id,
            requested_sitrep_id,
            reason,
            data_selection: serde_json::Value::Null,
            data_selection_omitted_bytes: None,
        };
        self.add_request(
            archived,
            data_selection,
            |b| &mut b.support_bundles,
            KeptPayload::SupportBundle,
        );
    }

    /// Counts `n` support-bundle requests left out without reading them.
    pub fn omit_support_bundle_requests(&mut self, n: usize) {
        self.support_bundles.omitted += n as u64;
    }

    /// The finished entry as JSON, and whether it is truncated.
    ///
    /// # Errors
    ///
    /// If the entry came out larger than the bound after all (which the
    /// accounting above rules out), rather than store it.
    pub fn finish(self) -> Result<(serde_json::Value, bool), String> {
        let ArchiveBuilder {
            limits,
            used: _,
            metadata,
            cases,
            cases_omitted,
            alerts,
            support_bundles,
            kept_payloads: _,
        } = self;
        let truncation = ArchiveTruncation {
            max_bytes: limits.max_bytes as u64,
            max_field_bytes: limits.max_field_bytes as u64,
            cases_omitted,
            alert_requests_omitted: alerts.omitted,
            support_bundle_requests_omitted: support_bundles.omitted,
            alert_payloads_omitted: alerts.payloads_omitted,
            support_bundle_data_selections_omitted: support_bundles.payloads_omitted,
        };
        let truncated = !truncation.is_empty();
        let archive = SitrepArchive {
            metadata: Some(metadata),
            cases,
            alert_requests: alerts.kept,
            support_bundle_requests: support_bundles.kept,
            completeness: if truncated {
                ArchiveCompleteness::Truncated(truncation)
            } else {
                ArchiveCompleteness::Complete
            },
        };
        let size = json_size(&archive);
        if size > limits.max_bytes {
            return Err(format!(
                "the archive entry came out at {size} bytes, above its bound of {} bytes",
                limits.max_bytes
            ));
        }
        Ok((serde_json::to_value(&archive).map_err(|e| e.to_string())?, truncated))
    }
}

/// History entries at or below `cutoff`, oldest first, after `after`.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn prunable_history_page_query(cutoff: i64, after: i64) -> _ {
    let columns: AsSelect<SitrepHistoryRow, Pg> = SitrepHistoryRow::as_select();
    let page: i64 = PRUNE_PAGE_ROWS;
    fm_sitrep_history::table
        .filter(fm_sitrep_history::version.le(cutoff))
        .filter(fm_sitrep_history::version.gt(after))
        .order(fm_sitrep_history::version.asc())
        .limit(page)
        .select(columns)
}

/// The history entry at one version.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn history_entry_by_version_query(version: i64) -> _ {
    let columns: AsSelect<SitrepHistoryRow, Pg> = SitrepHistoryRow::as_select();
    fm_sitrep_history::table.filter(fm_sitrep_history::version.eq(version)).select(columns)
}

/// Archives a sitrep. No conflict target: a concurrent pruner archiving the
/// same sitrep clashes on the primary key or on the version key; either way
/// (at SERIALIZABLE, as a serialization failure that is retried) the pass
/// then finds the history entry gone.
pub fn archive_insert_query(row: SitrepArchiveRow) -> impl crate::WriteQuery {
    diesel::insert_into(fm_sitrep_archive::table).values(row).on_conflict_do_nothing()
}

/// Deletes a sitrep's row. Runs before its children are deleted.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn sitrep_delete_query(sitrep_id: Uuid) -> _ {
    delete(fm_sitrep::table.filter(fm_sitrep::id.eq(sitrep_id)))
}

/// Deletes a sitrep's cases.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn case_delete_query(sitrep_id: Uuid) -> _ {
    delete(fm_case::table.filter(fm_case::sitrep_id.eq(sitrep_id)))
}

/// Deletes a sitrep's alert requests.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn alert_request_delete_query(sitrep_id: Uuid) -> _ {
    delete(fm_alert_request::table.filter(fm_alert_request::sitrep_id.eq(sitrep_id)))
}

/// Deletes a sitrep's support-bundle requests.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn support_bundle_request_delete_query(sitrep_id: Uuid) -> _ {
    delete(
        fm_support_bundle_request::table.filter(fm_support_bundle_request::sitrep_id.eq(sitrep_id)),
    )
}

/// Deletes a history entry.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn history_delete_query(version: i64) -> _ {
    delete(fm_sitrep_history::table.filter(fm_sitrep_history::version.eq(version)))
}

/// The archive entry of one sitrep.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn archive_entry_query(sitrep_id: Uuid) -> _ {
    let columns: AsSelect<SitrepArchiveRow, Pg> = SitrepArchiveRow::as_select();
    fm_sitrep_archive::table.filter(fm_sitrep_archive::sitrep_id.eq(sitrep_id)).select(columns)
}

/// The version of the archive entry that is the `skip`-th newest (0 = the
/// newest): everything older than the `archive_keep`-th newest goes.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn archive_nth_newest_version_query(skip: i64) -> _ {
    let one: i64 = 1;
    fm_sitrep_archive::table
        .order(fm_sitrep_archive::version.desc())
        .offset(skip)
        .limit(one)
        .select(fm_sitrep_archive::version)
}

/// A page of archive entries at or below a version, oldest first.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn archive_page_at_or_below_query(version: i64) -> _ {
    let page: i64 = PRUNE_PAGE_ROWS;
    fm_sitrep_archive::table
        .filter(fm_sitrep_archive::version.le(version))
        .order(fm_sitrep_archive::version.asc())
        .limit(page)
        .select(fm_sitrep_archive::sitrep_id)
}

/// Deletes archive entries by id.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn archive_delete_query(ids: Vec<Uuid>) -> _ {
    delete(fm_sitrep_archive::table.filter(fm_sitrep_archive::sitrep_id.eq_any(ids)))
}

/// What happened to one prunable history entry.
enum PruneOne {
    /// Archived (whole, or truncated when `truncated`) and deleted.
    Pruned { pruned: PrunedSitrep, truncated: bool },
    /// Another pruner removed it first.
    AlreadyGone,
    /// It could not be archived: pruned with a failure record, or kept.
    ArchiveFailed { pruned: Option<PrunedSitrep>, failure: PrunerArchiveFailure },
}

/// How a pruning transaction archives the sitrep.
#[derive(Clone, Debug)]
enum ArchiveMode {
    /// The bounded archive of the whole sitrep.
    Full,
    /// A failure record carrying this error.
    FailureRecord(String),
}

/// Whether an error is about the database or the connection rather than
/// the sitrep being archived: such an error ends the pass (the next
/// activation is the retry) instead of leading to a failure record that
/// would throw away a sitrep that could have been archived.
fn ends_the_pass(error: &Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    match error {
        Error::Connect(_) | Error::Pool { .. } | Error::RetriesExhausted { .. } => true,
        Error::Database { source, .. } => matches!(
            source,
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
                | DieselError::BrokenTransactionManager
                | DieselError::AlreadyInTransaction
        ),
        _ => false,
    }
}

impl DataStore {
    /// One pruning pass: archives and deletes every sitrep older than the
    /// newest `policy.keep` history entries, then trims the archive to
    /// `policy.archive_keep` entries.
    ///
    /// A sitrep that cannot be archived does not end the pass: it is pruned
    /// with a failure record, or kept if even that fails, and listed in
    /// [`PruneReport::archive_failures`] (see the module documentation).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `policy.keep` is below [`MIN_KEEP`];
    /// [`Error::Forbidden`] unless the role is the FM executor; database
    /// errors that are not about one sitrep (a lost connection, exhausted
    /// retries).
    pub async fn sitrep_history_prune(
        &self,
        opctx: &OpContext,
        policy: RetentionPolicy,
    ) -> Result<PruneReport, Error> {
        if policy.keep < MIN_KEEP {
            return Err(Error::InvalidArgument(format!(
                "the pruner must keep at least {MIN_KEEP} history entries, asked to keep {}",
                policy.keep
            )));
        }
        let mut conn = self.pool_connection_authorized(opctx, Action::FmWrite).await?;
        let mut report = PruneReport::default();

        let Some(current) = current_history_entry_query()
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| Error::database("reading the current sitrep version", e))?
        else {
            return Ok(report);
        };
        report.current_version = SitrepVersion::try_new(current.version).ok();
        let cutoff = current.version - i64::from(policy.keep);

        let mut after = 0;
        loop {
            let page: Vec<SitrepHistoryRow> = prunable_history_page_query(cutoff, after)
                .load(&mut conn)
                .await
                .map_err(|e| Error::database("listing prunable sitreps", e))?;
            let Some(last) = page.last() else { break };
            after = last.version;
            let full = page.len() as i64 == PRUNE_PAGE_ROWS;
            for entry in page {
                match self
                    .sitrep_prune_one(opctx, &mut conn, &entry, cutoff, &mut report.retries)
                    .await?
                {
                    PruneOne::Pruned { pruned, truncated } => {
                        report.pruned.push(pruned);
                        report.archives_truncated += usize::from(truncated);
                    }
                    PruneOne::AlreadyGone => report.already_gone += 1,
                    PruneOne::ArchiveFailed { pruned, failure } => {
                        report.pruned.extend(pruned);
                        if report.archive_failures.len() < MAX_LISTED_ARCHIVE_FAILURES {
                            report.archive_failures.push(failure);
                        } else {
                            report.archive_failures_not_listed += 1;
                        }
                    }
                }
            }
            if !full {
                break;
            }
        }

        let (trimmed, trim_retries) =
            archive_trim(&mut conn, &opctx.log, i64::from(policy.archive_keep)).await?;
        report.archive_entries_deleted = trimmed;
        report.retries += trim_retries;
        if !report.pruned.is_empty() || report.archive_entries_deleted > 0 {
            slog::info!(opctx.log, "sitrep history pruned";
                "pruned" => report.pruned.len(),
                "archives_truncated" => report.archives_truncated,
                "archive_failures" =>
                    report.archive_failures.len() + report.archive_failures_not_listed,
                "oldest_kept_version" => cutoff + 1,
                "archive_entries_deleted" => report.archive_entries_deleted);
        }
        Ok(report)
    }

    /// Archives and deletes one sitrep in one transaction; if archiving
    /// fails, prunes it with a failure record in another, or keeps it.
    async fn sitrep_prune_one(
        &self,
        opctx: &OpContext,
        conn: &mut AsyncPgConnection,
        entry: &SitrepHistoryRow,
        cutoff: i64,
        retries: &mut u64,
    ) -> Result<PruneOne, Error> {
        let version = entry.version;
        let first = transaction_retry(conn, &opctx.log, "sitrep_prune_one", move |conn| {
            Box::pin(async move {
                sitrep_prune_one_in_txn(conn, version, cutoff, ArchiveMode::Full).await
            })
        })
        .await;
        let error = match first {
            Ok(done) => {
                *retries += u64::from(done.retries);
                return Ok(match done.value {
                    Some((pruned, truncated)) => PruneOne::Pruned { pruned, truncated },
                    None => PruneOne::AlreadyGone,
                });
            }
            Err(e) if ends_the_pass(&e) => return Err(e),
            Err(e) => error_chain(&e),
        };
        let sitrep = SitrepRef {
            version: SitrepVersion::try_new(version).map_err(|e| Error::BadData {
                context: "reading the sitrep history".into(),
                source: Box::new(e),
            })?,
            sitrep_id: SitrepUuid::from_untyped(entry.sitrep_id),
        };
        slog::warn!(opctx.log, "could not archive a sitrep; pruning it with a failure record";
            "sitrep_id" => %sitrep.sitrep_id, "version" => version, "error" => &error);

        let mode = ArchiveMode::FailureRecord(error.clone());
        let second =
            transaction_retry(conn, &opctx.log, "sitrep_prune_one_failure_record", move |conn| {
                let mode = mode.clone();
                Box::pin(async move { sitrep_prune_one_in_txn(conn, version, cutoff, mode).await })
            })
            .await;
        if let Ok(done) = &second {
            *retries += u64::from(done.retries);
        }
        match second {
            Ok(done) => Ok(match done.value {
                Some((pruned, _)) => PruneOne::ArchiveFailed {
                    pruned: Some(pruned),
                    failure: PrunerArchiveFailure {
                        sitrep,
                        error,
                        outcome: ArchiveFailureOutcome::PrunedWithFailureRecord,
                    },
                },
                None => PruneOne::AlreadyGone,
            }),
            Err(e) if ends_the_pass(&e) => Err(e),
            Err(e) => {
                let failure_record_error = error_chain(&e);
                slog::warn!(opctx.log, "could not write a failure record either; keeping the sitrep";
                    "sitrep_id" => %sitrep.sitrep_id, "version" => version,
                    "error" => &failure_record_error);
                Ok(PruneOne::ArchiveFailed {
                    pruned: None,
                    failure: PrunerArchiveFailure {
                        sitrep,
                        error,
                        outcome: ArchiveFailureOutcome::Retained { failure_record_error },
                    },
                })
            }
        }
    }

    /// Reads an archive entry.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the archive has no entry for it;
    /// [`Error::BadData`] if the entry is not in the archive's JSON form.
    pub async fn sitrep_archive_read(
        &self,
        opctx: &OpContext,
        id: SitrepUuid,
    ) -> Result<ArchivedSitrep, Error> {
        let mut conn = self.pool_connection_authorized(opctx, Action::Read).await?;
        let row = archive_entry_query(id.into_untyped())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| Error::database(format_args!("reading archived sitrep {id}"), e))?
            .ok_or(Error::NotFound { what: "archived sitrep", id: id.to_string() })?;
        let SitrepArchiveRow { sitrep_id: _, version, time_made_current, time_archived, sitrep } =
            row;
        let bad = |source: Box<dyn std::error::Error + Send + Sync>| Error::BadData {
            context: format!("decoding archived sitrep {id}"),
            source,
        };
        Ok(ArchivedSitrep {
            version: SitrepVersion::try_new(version).map_err(|e| bad(Box::new(e)))?,
            time_made_current,
            time_archived,
            archive: serde_json::from_value(sitrep).map_err(|e| bad(Box::new(e)))?,
        })
    }
}

/// Prunes the history entry at `version` if it is still there, at or below
/// `cutoff` and not current: archives it as `mode` says, then deletes it.
/// Returns the sitrep and whether its archive is truncated, or `None` if
/// there was nothing to do.
async fn sitrep_prune_one_in_txn(
    conn: &mut AsyncPgConnection,
    version: i64,
    cutoff: i64,
    mode: ArchiveMode,
) -> Result<Option<(PrunedSitrep, bool)>, TransactionError> {
    // Check again inside the transaction: the entry may be gone (another
    // pruner), and the current sitrep must never be pruned.
    let Some(entry) = history_entry_by_version_query(version).get_result(conn).await.optional()?
    else {
        return Ok(None);
    };
    let current = current_history_entry_query().get_result(conn).await?;
    if entry.version > cutoff || entry.version >= current.version {
        return Ok(None);
    }
    let id = SitrepUuid::from_untyped(entry.sitrep_id);
    let pruned = PrunedSitrep {
        version: SitrepVersion::try_new(entry.version).map_err(|e| {
            TransactionError::Abort(Error::BadData {
                context: "reading the sitrep history".into(),
                source: Box::new(e),
            })
        })?,
        sitrep_id: id,
    };

    // Archive first, while the sitrep can still be read.
    let archive = match mode {
        ArchiveMode::Full => archive_build_in_txn(conn, id).await?,
        ArchiveMode::FailureRecord(error) => {
            // The metadata if they can be read and decoded; a decoding
            // failure (not a database error) leaves them out.
            let metadata = sitrep_metadata_query(entry.sitrep_id)
                .get_result(conn)
                .await
                .optional()?
                .and_then(|row| SitrepMetadata::try_from(row).ok());
            let record = SitrepArchive::failed(metadata, &error);
            Some((serde_json::to_value(&record).map_err(|e| encoding_error(id, e))?, false))
        }
    };
    let mut truncated = false;
    if let Some((json, is_truncated)) = archive {
        truncated = is_truncated;
        archive_insert_query(SitrepArchiveRow {
            sitrep_id: entry.sitrep_id,
            version: entry.version,
            time_made_current: entry.time_made_current,
            time_archived: nexus_fm_types::time::now(),
            sitrep: json,
        })
        .execute(conn)
        .await?;
    }

    // Write ordering: the sitrep row goes first, then its children, all in
    // this transaction. "The fm_sitrep row exists" must imply that all of
    // its requests are still visible, because the sweep treats a missing
    // row as "delete nothing" and an existing one as evidence of its
    // complete request set.
    sitrep_delete_query(entry.sitrep_id).execute(conn).await?;
    case_delete_query(entry.sitrep_id).execute(conn).await?;
    alert_request_delete_query(entry.sitrep_id).execute(conn).await?;
    support_bundle_request_delete_query(entry.sitrep_id).execute(conn).await?;
    history_delete_query(entry.version).execute(conn).await?;
    Ok(Some((pruned, truncated)))
}

fn encoding_error(
    id: SitrepUuid,
    e: impl std::error::Error + Send + Sync + 'static,
) -> TransactionError {
    TransactionError::Abort(Error::BadData {
        context: format!("encoding sitrep {id} for the archive"),
        source: Box::new(e),
    })
}

/// Builds the bounded archive entry of a sitrep inside the pruning
/// transaction, reading it page by page: full rows while they may still be
/// kept, then only ids, to count what is left out. Returns the JSON and
/// whether it is truncated, or `None` if the sitrep row is missing.
async fn archive_build_in_txn(
    conn: &mut AsyncPgConnection,
    id: SitrepUuid,
) -> Result<Option<(serde_json::Value, bool)>, TransactionError> {
    let sitrep_id = id.into_untyped();
    let Some(row) = sitrep_metadata_query(sitrep_id).get_result(conn).await.optional()? else {
        return Ok(None);
    };
    let metadata = SitrepMetadata::try_from(row).map_err(|e| {
        TransactionError::Abort(Error::BadData {
            context: format!("reading sitrep {id} for the archive"),
            source: Box::new(e),
        })
    })?;
    let mut builder = ArchiveBuilder::new(ArchiveLimits::DEFAULT, metadata);

    // Cases are small (a few KiB at most): read them with the reader's
    // own keyset walk, then keep what the bound allows.
    let cases =
        load_all_pages(conn, READ_PAGE_ROWS, |after| case_page_query(sitrep_id, after), |r| r.id)
            .await?;
    for row in cases {
        if builder.cases_full() {
            builder.omit_cases(1);
        } else {
            builder.add_case(Case::from(row));
        }
    }

    archive_requests_in_txn(
        conn,
        &mut builder,
        ArchiveBuilder::alert_requests_full,
        |after| alert_request_id_page_query(sitrep_id, after, READ_PAGE_ROWS),
        |after| alert_request_page_query(sitrep_id, after, ARCHIVE_PAGE_ROWS),
        |row: &AlertRequestRow| row.id,
        |b, row| b.add_alert_request(AlertRequest::from(row)),
        ArchiveBuilder::omit_alert_requests,
    )
    .await?;
    archive_requests_in_txn(
        conn,
        &mut builder,
        ArchiveBuilder::support_bundle_requests_full,
        |after| support_bundle_request_id_page_query(sitrep_id, after, READ_PAGE_ROWS),
        |after| support_bundle_request_page_query(sitrep_id, after, ARCHIVE_PAGE_ROWS),
        |row: &SupportBundleRequestRow| row.id,
        |b, row| b.add_support_bundle_request(SupportBundleRequest::from(row)),
        ArchiveBuilder::omit_support_bundle_requests,
    )
    .await?;

    let (json, truncated) = builder.finish().map_err(|message| {
        TransactionError::Abort(Error::BadData {
            context: format!("archiving sitrep {id}"),
            source: message.into(),
        })
    })?;
    Ok(Some((json, truncated)))
}

/// Feeds one type of a sitrep's requests to the archive builder: pages of
/// [`ARCHIVE_PAGE_ROWS`] full rows while the builder takes them, then, once
/// that type is full, pages of [`READ_PAGE_ROWS`] ids that are only counted.
#[expect(clippy::too_many_arguments)]
async fn archive_requests_in_txn<Row, Q, IdQ>(
    conn: &mut AsyncPgConnection,
    builder: &mut ArchiveBuilder,
    full: fn(&ArchiveBuilder) -> bool,
    id_page: impl Fn(Option<Uuid>) -> IdQ,
    page: impl Fn(Option<Uuid>) -> Q,
    key: fn(&Row) -> Uuid,
    add: fn(&mut ArchiveBuilder, Row),
    omit: fn(&mut ArchiveBuilder, usize),
) -> Result<(), TransactionError>
where
    Row: Send,
    Q: diesel_async::methods::LoadQuery<'static, AsyncPgConnection, Row> + 'static,
    IdQ: diesel_async::methods::LoadQuery<'static, AsyncPgConnection, Uuid> + 'static,
{
    let mut after = None;
    loop {
        if full(builder) {
            let ids: Vec<Uuid> = id_page(after).load(conn).await?;
            let Some(last) = ids.last() else { break };
            after = Some(*last);
            omit(builder, ids.len());
            if (ids.len() as i64) < READ_PAGE_ROWS {
                break;
            }
            continue;
        }
        let rows: Vec<Row> = page(after).load(conn).await?;
        let Some(last) = rows.last() else { break };
        after = Some(key(last));
        let more = rows.len() as i64 == ARCHIVE_PAGE_ROWS;
        for row in rows {
            add(builder, row);
        }
        if !more {
            break;
        }
    }
    Ok(())
}

/// Deletes archive entries older than the newest `keep`, a page per
/// transaction. Each transaction (SERIALIZABLE, in the retry wrapper, like
/// every FM write) finds the retention boundary and deletes one page at or
/// below it, so a concurrent pruner's archive inserts and trims are ordered
/// against it; it stops when a page deletes nothing.
async fn archive_trim(
    conn: &mut AsyncPgConnection,
    log: &slog::Logger,
    keep: i64,
) -> Result<(usize, u64), Error> {
    let (mut deleted, mut retries) = (0, 0);
    loop {
        let done = transaction_retry(conn, log, "sitrep_archive_trim", move |conn| {
            Box::pin(async move {
                let Some(boundary) = archive_nth_newest_version_query(keep)
                    .get_result::<i64>(conn)
                    .await
                    .optional()?
                else {
                    return Ok(0);
                };
                let ids: Vec<Uuid> = archive_page_at_or_below_query(boundary).load(conn).await?;
                if ids.is_empty() {
                    return Ok(0);
                }
                Ok(archive_delete_query(ids).execute(conn).await?)
            })
        })
        .await?;
        retries += u64::from(done.retries);
        if done.value == 0 {
            break;
        }
        deleted += done.value;
    }
    Ok((deleted, retries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_fm_types::{ExecutorUuid, Generation};
    use serde_json::json;

    /// A sitrep with `cases` cases and `requests` requests of each type,
    /// whose payloads and data selections are `payload_bytes` long.
    fn sitrep(cases: usize, requests: usize, payload_bytes: usize) -> Sitrep {
        let id = SitrepUuid::new_v4();
        let case_ids: Vec<CaseUuid> = (0..cases.max(1)).map(|_| CaseUuid::new_v4()).collect();
        let blob = "p".repeat(payload_bytes);
        let mut s = Sitrep {
            metadata: SitrepMetadata {
                id,
                parent_sitrep_id: None,
                creator_id: ExecutorUuid::new_v4(),
                time_created: nexus_fm_types::time::now(),
                comment: "c".repeat(100),
                alert_generation: Generation::FIRST,
                support_bundle_generation: Generation::FIRST,
            },
            cases: case_ids[..cases]
                .iter()
                .map(|&cid| Case {
                    id: cid,
                    diagnosis_engine: "engine".into(),
                    opened_sitrep_id: id,
                    closed_sitrep_id: None,
                    comment: "case comment".into(),
                })
                .collect(),
            alert_requests: (0..requests)
                .map(|i| AlertRequest {
                    id: AlertUuid::new_v4(),
                    case_id: case_ids[i % case_ids.len()],
                    requested_sitrep_id: id,
                    class: "hw.test".into(),
                    payload: json!({ "blob": blob }),
                })
                .collect(),
            support_bundle_requests: (0..requests)
                .map(|i| SupportBundleRequest {
                    id: SupportBundleUuid::new_v4(),
                    case_id: case_ids[i % case_ids.len()],
                    requested_sitrep_id: id,
                    reason: "why".into(),
                    data_selection: json!({ "blob": blob }),
                })
                .collect(),
        };
        s.normalize();
        s
    }

    fn build(sitrep: &Sitrep, limits: ArchiveLimits) -> (serde_json::Value, bool) {
        let mut b = ArchiveBuilder::new(limits, sitrep.metadata.clone());
        sitrep.cases.iter().cloned().for_each(|c| b.add_case(c));
        sitrep.alert_requests.iter().cloned().for_each(|r| b.add_alert_request(r));
        sitrep
            .support_bundle_requests
            .iter()
            .cloned()
            .for_each(|r| b.add_support_bundle_request(r));
        b.finish().unwrap()
    }

    #[test]
    fn a_small_sitrep_is_archived_whole_and_reads_back() {
        let s = sitrep(3, 5, 100);
        let (json, truncated) = build(&s, ArchiveLimits::DEFAULT);
        assert!(!truncated);
        assert_eq!(json["archive"], json!({ "status": "complete" }));
        let archive: SitrepArchive = serde_json::from_value(json).unwrap();
        assert_eq!(archive.into_sitrep(), Some(s));
    }

    #[test]
    fn entries_written_before_the_archive_object_read_as_complete() {
        let s = sitrep(2, 2, 10);
        let archive: SitrepArchive =
            serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(archive.completeness, ArchiveCompleteness::Complete);
        assert_eq!(archive.into_sitrep(), Some(s));
    }

    #[test]
    fn large_payloads_are_replaced_by_their_size() {
        let s = sitrep(1, 3, 20_000);
        let (json, truncated) = build(&s, ArchiveLimits::DEFAULT);
        assert!(truncated);
        let archive: SitrepArchive = serde_json::from_value(json).unwrap();
        let ArchiveCompleteness::Truncated(t) = &archive.completeness else { panic!() };
        assert_eq!((t.alert_payloads_omitted, t.support_bundle_data_selections_omitted), (3, 3));
        assert_eq!((t.alert_requests_omitted, t.support_bundle_requests_omitted), (0, 0));
        let size = json_size(&s.alert_requests[0].payload) as u64;
        assert!(
            archive
                .alert_requests
                .iter()
                .all(|r| r.payload.is_null() && r.payload_omitted_bytes == Some(size))
        );
        assert!(archive.clone().into_sitrep().is_none());
    }

    /// Whatever the bound, the entry stays within it, keeps prefixes in the
    /// priority order, and its counts add up to the sitrep.
    #[test]
    fn every_bound_holds_and_the_counts_add_up() {
        let s = sitrep(40, 60, 300);
        let whole = json_size(&s);
        for max_bytes in (2_000..whole + 4_000).step_by(997) {
            let limits = ArchiveLimits { max_bytes, max_field_bytes: 1_000 };
            let (json, truncated) = build(&s, limits);
            let size = json_size(&json);
            assert!(size <= max_bytes, "{size} > {max_bytes}");
            let archive: SitrepArchive = serde_json::from_value(json).unwrap();
            assert_eq!(archive.metadata.as_ref(), Some(&s.metadata));
            let t = match &archive.completeness {
                ArchiveCompleteness::Complete => {
                    assert!(!truncated);
                    assert_eq!(archive.clone().into_sitrep().as_ref(), Some(&s));
                    ArchiveTruncation::default()
                }
                ArchiveCompleteness::Truncated(t) => {
                    assert!(truncated);
                    assert_eq!(t.max_bytes, max_bytes as u64);
                    t.clone()
                }
                other => panic!("{other:?}"),
            };
            // Prefixes, in id order.
            assert_eq!(archive.cases[..], s.cases[..archive.cases.len()]);
            assert_eq!(archive.cases.len() as u64 + t.cases_omitted, 40);
            let ids: Vec<_> = archive.alert_requests.iter().map(|r| r.id).collect();
            let expected: Vec<_> = s.alert_requests.iter().map(|r| r.id).take(ids.len()).collect();
            assert_eq!(ids, expected);
            assert_eq!(ids.len() as u64 + t.alert_requests_omitted, 60);
            let n = archive.support_bundle_requests.len() as u64;
            assert_eq!(n + t.support_bundle_requests_omitted, 60);
            // Priority: nothing of a lower kind is kept while a higher one
            // was cut.
            if t.cases_omitted > 0 {
                assert!(archive.alert_requests.is_empty(), "at {max_bytes}");
            }
            if t.alert_requests_omitted > 0 {
                assert!(archive.support_bundle_requests.is_empty(), "at {max_bytes}");
            }
            if t.alert_requests_omitted + t.support_bundle_requests_omitted > 0 {
                let kept_payloads = archive.alert_requests.iter().any(|r| !r.payload.is_null())
                    || archive.support_bundle_requests.iter().any(|r| !r.data_selection.is_null());
                assert!(!kept_payloads, "payloads kept while request ids were cut at {max_bytes}");
            }
            let omitted_payloads =
                archive.alert_requests.iter().filter(|r| r.payload_omitted_bytes.is_some()).count();
            assert_eq!(omitted_payloads as u64, t.alert_payloads_omitted);
            let omitted_selections = archive
                .support_bundle_requests
                .iter()
                .filter(|r| r.data_selection_omitted_bytes.is_some())
                .count();
            assert_eq!(omitted_selections as u64, t.support_bundle_data_selections_omitted);
        }
    }

    #[test]
    fn a_failure_record_says_so_and_is_not_a_sitrep() {
        let s = sitrep(1, 1, 10);
        let record = SitrepArchive::failed(Some(s.metadata.clone()), &"x".repeat(10_000));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["archive"]["status"], "failed");
        let ArchiveCompleteness::Failed { error } = &record.completeness else { panic!() };
        assert!(
            error.len() < MAX_FAILURE_ERROR_BYTES + 100 && error.ends_with("(10000 bytes in all)")
        );
        assert!(record.into_sitrep().is_none());
    }
}
