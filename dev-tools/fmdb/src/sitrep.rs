//! `fmdb sitrep history|show|diff`.

use crate::db::{Access, Db, open};
use crate::output::{opt, print_json, table, time};
use crate::{CliError, Context, Exit};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fm_db_queries::datastore::debug::{archive_sitrep_id_by_version_query, collected_of_query};
use fm_db_queries::datastore::sitrep::prune::{
    ArchiveCompleteness, history_entry_by_version_query,
};
use fm_db_queries::datastore::sitrep::read::Direction;
use fm_db_queries::datastore::sitrep::{
    alert_request_counts_query, sitrep_metadata_query, support_bundle_request_counts_query,
};
use fm_db_queries::model::SitrepRow;
use nexus_fm_types::{Case, CaseUuid, ResourceType, SitrepMetadata, SitrepUuid};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tabled::Tabled;
use uuid::Uuid;

/// Ids looked up per statement when finding the resources of requests.
const LOOKUP_CHUNK: usize = 1_000;

/// `fmdb sitrep ...`.
#[derive(Debug, Subcommand)]
pub enum SitrepCommand {
    /// The history of sitreps that became current, newest first: version,
    /// id, parent, creation, creator, generations, request counts, comment.
    History,
    /// One sitrep: where it is (current, in the history, archived), its
    /// metadata, cases and requests, and the state of each request's
    /// resource (live, tombstone, swept, not yet created).
    Show {
        /// A sitrep id, `vN` (history version N), or `current`.
        #[arg(value_name = "ID | vN | current")]
        sitrep: String,
    },
    /// What changed from sitrep A to sitrep B: cases and requests added and
    /// removed, and how each generation moved. Either may be archived.
    Diff {
        /// The older sitrep: an id, `vN` or `current`.
        #[arg(value_name = "A")]
        a: String,
        /// The newer sitrep: an id, `vN` or `current`.
        #[arg(value_name = "B")]
        b: String,
    },
}

/// A sitrep as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    /// By id.
    Id(SitrepUuid),
    /// By history version (`vN`).
    Version(i64),
    /// The current sitrep.
    Current,
}

/// Parses `ID | vN | current`.
///
/// # Errors
///
/// [`Exit::BadUuid`] for something that looks like an id but is not one;
/// [`Exit::UnknownSelector`] for anything else (`v0`, `vx`, `latest`).
pub fn parse_selector(text: &str) -> Result<Selector, CliError> {
    let unknown = || {
        CliError::new(
            Exit::UnknownSelector,
            format!(
                "unknown sitrep selector {text:?}: use a sitrep id, vN for history version N \
                 (N >= 1), or current"
            ),
        )
    };
    if text == "current" {
        return Ok(Selector::Current);
    }
    if let Some(number) = text.strip_prefix('v') {
        return match number.parse::<i64>() {
            Ok(n) if n >= 1 && number.chars().all(|c| c.is_ascii_digit()) => {
                Ok(Selector::Version(n))
            }
            _ => Err(unknown()),
        };
    }
    let looks_like_id = !text.is_empty() && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if looks_like_id {
        return parse_uuid(text, "sitrep id").map(|id| Selector::Id(SitrepUuid::from_untyped(id)));
    }
    Err(unknown())
}

/// Parses a UUID argument.
///
/// # Errors
///
/// [`Exit::BadUuid`], naming `what`.
pub fn parse_uuid(text: &str, what: &str) -> Result<Uuid, CliError> {
    Uuid::parse_str(text).map_err(|e| {
        CliError::new(
            Exit::BadUuid,
            format!("{text:?} is not a valid {what}: {e} (expected e.g. 8d3e6c1a-0c4b-4f6e-9b1a-2f3c4d5e6f70)"),
        )
    })
}

/// Runs a sitrep command.
///
/// # Errors
///
/// Usage errors before connecting; then connection and lookup errors.
pub async fn run(ctx: &Context, command: SitrepCommand) -> Result<Exit, CliError> {
    match command {
        SitrepCommand::History => {
            let db = open(ctx, Access::ReadOnly).await?;
            history(ctx, &db).await
        }
        SitrepCommand::Show { sitrep } => {
            let selector = parse_selector(&sitrep)?;
            let db = open(ctx, Access::ReadOnly).await?;
            let resolved = resolve(&db, selector, &sitrep).await?;
            let view = load(ctx, &db, &resolved, true).await?;
            if ctx.global.json {
                print_json(&view);
            } else {
                print_show(&view);
            }
            Ok(Exit::Ok)
        }
        SitrepCommand::Diff { a, b } => {
            let (sel_a, sel_b) = (parse_selector(&a)?, parse_selector(&b)?);
            let db = open(ctx, Access::ReadOnly).await?;
            let a = resolve(&db, sel_a, &a).await?;
            let b = resolve(&db, sel_b, &b).await?;
            let a = load(ctx, &db, &a, false).await?;
            let b = load(ctx, &db, &b, false).await?;
            let diff = diff(&a, &b);
            if ctx.global.json {
                print_json(&diff);
            } else {
                print_diff(&diff);
            }
            Ok(Exit::Ok)
        }
    }
}

fn db_error(context: &str, e: &fm_db_queries::Error) -> CliError {
    CliError::database(context, e)
}

fn diesel_error(context: &str, e: &diesel::result::Error) -> CliError {
    CliError::new(Exit::Failure, format!("{context}: {e}"))
}

/// One row of `sitrep history`.
#[derive(Debug, Serialize, Tabled)]
struct HistoryRow {
    #[tabled(rename = "VERSION")]
    version: i64,
    #[tabled(rename = "SITREP")]
    id: Uuid,
    #[tabled(rename = "PARENT")]
    #[tabled(display = "display_opt_uuid")]
    parent: Option<Uuid>,
    #[tabled(rename = "MADE CURRENT")]
    #[tabled(display = "display_time")]
    time_made_current: DateTime<Utc>,
    #[tabled(rename = "CREATED")]
    #[tabled(display = "display_opt_time")]
    time_created: Option<DateTime<Utc>>,
    #[tabled(rename = "CREATOR")]
    #[tabled(display = "display_opt_uuid")]
    creator: Option<Uuid>,
    #[tabled(rename = "ALERT GEN")]
    #[tabled(display = "display_opt_i64")]
    alert_generation: Option<i64>,
    #[tabled(rename = "BUNDLE GEN")]
    #[tabled(display = "display_opt_i64")]
    support_bundle_generation: Option<i64>,
    #[tabled(rename = "ALERT REQS")]
    alert_requests: i64,
    #[tabled(rename = "BUNDLE REQS")]
    support_bundle_requests: i64,
    #[tabled(rename = "COMMENT")]
    comment: String,
}

fn display_opt_uuid(v: &Option<Uuid>) -> String {
    opt(v.as_ref())
}

fn display_opt_i64(v: &Option<i64>) -> String {
    opt(v.as_ref())
}

fn display_time(t: &DateTime<Utc>) -> String {
    time(t)
}

fn display_opt_time(t: &Option<DateTime<Utc>>) -> String {
    crate::output::opt_time(t.as_ref())
}

async fn history(ctx: &Context, db: &Db) -> Result<Exit, CliError> {
    let limit = ctx.global.fetch_limit;
    let mut entries = db
        .datastore
        .sitrep_history_list(&db.opctx, None, Direction::Descending, limit + 1)
        .await
        .map_err(|e| db_error("listing the sitrep history", &e))?;
    let cut = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let mut conn = db.conn().await?;
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let id = entry.sitrep_id.into_untyped();
        let metadata: Option<SitrepRow> = sitrep_metadata_query(id)
            .get_result(&mut *conn)
            .await
            .optional()
            .map_err(|e| diesel_error(&format!("reading sitrep {id}"), &e))?;
        // (all requests, those first made by this sitrep): the loader's own
        // count; the history shows the first.
        let (alert_requests, _): (i64, i64) = alert_request_counts_query(id)
            .get_result(&mut *conn)
            .await
            .map_err(|e| diesel_error(&format!("counting the alert requests of {id}"), &e))?;
        let (support_bundle_requests, _): (i64, i64) = support_bundle_request_counts_query(id)
            .get_result(&mut *conn)
            .await
            .map_err(|e| diesel_error(&format!("counting the bundle requests of {id}"), &e))?;
        rows.push(match metadata {
            Some(m) => HistoryRow {
                version: entry.version.as_i64(),
                id,
                parent: m.parent_sitrep_id,
                time_made_current: entry.time_made_current,
                time_created: Some(m.time_created),
                creator: Some(m.creator_id),
                alert_generation: Some(m.alert_generation),
                support_bundle_generation: Some(m.support_bundle_generation),
                alert_requests,
                support_bundle_requests,
                comment: m.comment,
            },
            // Never lie: a history entry whose sitrep row is gone is shown
            // as such.
            None => HistoryRow {
                version: entry.version.as_i64(),
                id,
                parent: None,
                time_made_current: entry.time_made_current,
                time_created: None,
                creator: None,
                alert_generation: None,
                support_bundle_generation: None,
                alert_requests,
                support_bundle_requests,
                comment: "(bad data: the fm_sitrep row of this history entry is missing)".into(),
            },
        });
    }
    if cut {
        ctx.warn_cut("history entries");
    }
    if ctx.global.json {
        print_json(&rows);
    } else if rows.is_empty() {
        println!("the history is empty: no sitrep has been published");
    } else {
        println!("{}", table(rows));
    }
    Ok(Exit::Ok)
}

/// Where a sitrep is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// The newest history entry.
    Current {
        /// Its version.
        version: i64,
    },
    /// An older history entry.
    InHistory {
        /// Its version.
        version: i64,
        /// The current version.
        current_version: i64,
    },
    /// Pruned from the history, kept in `fm_sitrep_archive`.
    Archived {
        /// The version it had (`None` if its archive entry cannot be read).
        version: Option<i64>,
    },
    /// A sitrep row without a history entry: it never became current.
    Unknown,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Current { version } => write!(f, "current (version {version})"),
            Location::InHistory { version, current_version } => {
                write!(
                    f,
                    "in the history at version {version} (current: version {current_version})"
                )
            }
            Location::Archived { version: Some(version) } => {
                write!(f, "archived (was version {version}; pruned from the history)")
            }
            Location::Archived { version: None } => {
                write!(f, "archived (pruned from the history; its archive entry cannot be read)")
            }
            Location::Unknown => {
                write!(
                    f,
                    "unknown: it has a sitrep row but no history entry (never became current)"
                )
            }
        }
    }
}

/// A sitrep found by a selector.
#[derive(Clone, Copy, Debug)]
pub struct Resolved {
    /// Its id.
    pub id: SitrepUuid,
    /// Where it is.
    pub location: Location,
}

async fn resolve(db: &Db, selector: Selector, text: &str) -> Result<Resolved, CliError> {
    let current = db
        .datastore
        .sitrep_current_version(&db.opctx)
        .await
        .map_err(|e| db_error("reading the current sitrep", &e))?;
    let current_version = current.as_ref().map(|c| c.version.as_i64());
    let in_history = |id: SitrepUuid, version: i64| Resolved {
        id,
        location: if Some(version) == current_version {
            Location::Current { version }
        } else {
            Location::InHistory { version, current_version: current_version.unwrap_or(0) }
        },
    };
    match selector {
        Selector::Current => match current {
            Some(entry) => Ok(in_history(entry.sitrep_id, entry.version.as_i64())),
            None => Err(CliError::new(
                Exit::NotFound,
                "there is no current sitrep: the history is empty (nothing has been published)",
            )),
        },
        Selector::Version(version) => {
            let mut conn = db.conn().await?;
            if let Some(row) = history_entry_by_version_query(version)
                .get_result(&mut *conn)
                .await
                .optional()
                .map_err(|e| diesel_error("reading the history", &e))?
            {
                return Ok(in_history(SitrepUuid::from_untyped(row.sitrep_id), row.version));
            }
            if let Some(id) = archive_sitrep_id_by_version_query(version)
                .get_result::<Uuid>(&mut *conn)
                .await
                .optional()
                .map_err(|e| diesel_error("reading the archive", &e))?
            {
                return Ok(Resolved {
                    id: SitrepUuid::from_untyped(id),
                    location: Location::Archived { version: Some(version) },
                });
            }
            Err(CliError::new(
                Exit::NotFound,
                format!(
                    "no sitrep at version {version} ({text}): it is neither in the history \
                     (current version: {}) nor in the archive; `fmdb sitrep history` lists them",
                    opt(current_version)
                ),
            ))
        }
        Selector::Id(id) => {
            if let Some(entry) = db
                .datastore
                .sitrep_history_entry(&db.opctx, id)
                .await
                .map_err(|e| db_error("reading the history", &e))?
            {
                return Ok(in_history(id, entry.version.as_i64()));
            }
            match db.datastore.sitrep_archive_read(&db.opctx, id).await {
                Ok(archived) => {
                    return Ok(Resolved {
                        id,
                        location: Location::Archived { version: Some(archived.version.as_i64()) },
                    });
                }
                Err(fm_db_queries::Error::NotFound { .. }) => (),
                // An entry that does not decode is still an archive entry:
                // `load` shows what is wrong with it.
                Err(fm_db_queries::Error::BadData { .. }) => {
                    return Ok(Resolved { id, location: Location::Archived { version: None } });
                }
                Err(e) => return Err(db_error("reading the archive", &e)),
            }
            let mut conn = db.conn().await?;
            let row: Option<SitrepRow> = sitrep_metadata_query(id.into_untyped())
                .get_result(&mut *conn)
                .await
                .optional()
                .map_err(|e| diesel_error("reading the sitrep", &e))?;
            if row.is_some() {
                return Ok(Resolved { id, location: Location::Unknown });
            }
            Err(CliError::new(
                Exit::NotFound,
                format!(
                    "sitrep {id} exists nowhere: not in the history, the archive or fm_sitrep \
                     (`fmdb sitrep history` lists the retained ones)"
                ),
            ))
        }
    }
}

/// What became of a request's resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceState {
    /// The row exists and is live.
    Live,
    /// Deleted by an operator: a tombstone.
    Tombstone,
    /// Hard-deleted by the sweep: its id is in `fm_collected_resource`.
    Swept,
    /// No row and not in the ledger: not created yet.
    NotYetCreated,
}

impl std::fmt::Display for ResourceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceState::Live => "live",
            ResourceState::Tombstone => "tombstone (deleted by an operator)",
            ResourceState::Swept => "swept (in fm_collected_resource)",
            ResourceState::NotYetCreated => "not yet created",
        })
    }
}

/// One request of a sitrep.
#[derive(Clone, Debug, Serialize)]
pub struct RequestView {
    /// The resource id.
    pub id: Uuid,
    /// The case asking for it.
    pub case_id: Uuid,
    /// The sitrep it first appeared in.
    pub requested_sitrep_id: Uuid,
    /// The alert class or the bundle's reason.
    pub what: String,
    /// The state of its resource (not computed for a diff).
    pub resource: Option<ResourceState>,
}

/// A sitrep as `show` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct SitrepView {
    /// Its id.
    pub id: SitrepUuid,
    /// Where it is.
    pub location: Location,
    /// `database` or `archive`: where its contents were read.
    pub source: &'static str,
    /// When it became current, if known.
    pub time_made_current: Option<DateTime<Utc>>,
    /// When it was archived (archived sitreps only).
    pub time_archived: Option<DateTime<Utc>>,
    /// How complete the archive entry is (archived sitreps only).
    pub archive: Option<ArchiveCompleteness>,
    /// Its metadata (absent only in an archive failure record).
    pub metadata: Option<SitrepMetadata>,
    /// Its cases.
    pub cases: Vec<Case>,
    /// Its alert requests (at most --fetch-limit).
    pub alert_requests: Vec<RequestView>,
    /// Its support-bundle requests (at most --fetch-limit).
    pub support_bundle_requests: Vec<RequestView>,
    /// Anything fmdb could not read or wants to warn about.
    pub notes: Vec<String>,
}

/// A request as `show` lists it, its resource's state not yet known.
fn request(id: Uuid, case_id: CaseUuid, requested: SitrepUuid, what: String) -> RequestView {
    RequestView {
        id,
        case_id: case_id.into_untyped(),
        requested_sitrep_id: requested.into_untyped(),
        what,
        resource: None,
    }
}

async fn load(
    ctx: &Context,
    db: &Db,
    resolved: &Resolved,
    with_states: bool,
) -> Result<SitrepView, CliError> {
    let id = resolved.id;
    let mut view = SitrepView {
        id,
        location: resolved.location,
        source: "database",
        time_made_current: None,
        time_archived: None,
        archive: None,
        metadata: None,
        cases: Vec::new(),
        alert_requests: Vec::new(),
        support_bundle_requests: Vec::new(),
        notes: Vec::new(),
    };
    if let Location::Archived { .. } = resolved.location {
        view.source = "archive";
        match db.datastore.sitrep_archive_read(&db.opctx, id).await {
            Ok(archived) => {
                view.location = Location::Archived { version: Some(archived.version.as_i64()) };
                view.time_made_current = Some(archived.time_made_current);
                view.time_archived = Some(archived.time_archived);
                let a = archived.archive;
                match &a.completeness {
                    ArchiveCompleteness::Complete => (),
                    ArchiveCompleteness::Truncated(t) => view.notes.push(format!(
                        "the archive entry is truncated: {} cases, {} alert requests and {} \
                         support-bundle requests were left out; {} payloads and {} data \
                         selections omitted",
                        t.cases_omitted,
                        t.alert_requests_omitted,
                        t.support_bundle_requests_omitted,
                        t.alert_payloads_omitted,
                        t.support_bundle_data_selections_omitted
                    )),
                    ArchiveCompleteness::Failed { error } => view.notes.push(format!(
                        "archiving this sitrep failed ({error}): the entry holds at most its \
                         metadata"
                    )),
                }
                view.archive = Some(a.completeness.clone());
                view.metadata = a.metadata;
                view.cases = a.cases;
                view.alert_requests = a
                    .alert_requests
                    .into_iter()
                    .map(|r| {
                        request(r.id.into_untyped(), r.case_id, r.requested_sitrep_id, r.class)
                    })
                    .collect();
                view.support_bundle_requests = a
                    .support_bundle_requests
                    .into_iter()
                    .map(|r| {
                        request(r.id.into_untyped(), r.case_id, r.requested_sitrep_id, r.reason)
                    })
                    .collect();
            }
            // Carry on over bad data: say what is wrong with the entry.
            Err(e) => view.notes.push(format!(
                "the archive entry cannot be read: {}",
                fm_db_queries::error::error_chain(&e)
            )),
        }
    } else {
        let sitrep = db
            .datastore
            .sitrep_read(&db.opctx, id)
            .await
            .map_err(|e| db_error(&format!("reading sitrep {id}"), &e))?;
        if let Some(entry) = db
            .datastore
            .sitrep_history_entry(&db.opctx, id)
            .await
            .map_err(|e| db_error("reading the history", &e))?
        {
            view.time_made_current = Some(entry.time_made_current);
        }
        view.metadata = Some(sitrep.metadata);
        view.cases = sitrep.cases;
        view.alert_requests = sitrep
            .alert_requests
            .into_iter()
            .map(|r| request(r.id.into_untyped(), r.case_id, r.requested_sitrep_id, r.class))
            .collect();
        view.support_bundle_requests = sitrep
            .support_bundle_requests
            .into_iter()
            .map(|r| request(r.id.into_untyped(), r.case_id, r.requested_sitrep_id, r.reason))
            .collect();
    }
    if with_states {
        let limit = ctx.global.fetch_limit as usize;
        for (resource, requests) in [
            (ResourceType::Alert, &mut view.alert_requests),
            (ResourceType::SupportBundle, &mut view.support_bundle_requests),
        ] {
            if requests.len() > limit {
                requests.truncate(limit);
                ctx.warn_cut(&format!("{resource} requests"));
            }
            let ids: Vec<Uuid> = requests.iter().map(|r| r.id).collect();
            let states = resource_states(db, resource, &ids).await?;
            for request in requests.iter_mut() {
                request.resource = states.get(&request.id).copied();
            }
        }
    }
    Ok(view)
}

/// The state of the resource of each of `ids`.
async fn resource_states(
    db: &Db,
    resource: ResourceType,
    ids: &[Uuid],
) -> Result<BTreeMap<Uuid, ResourceState>, CliError> {
    let mut states = BTreeMap::new();
    for (id, deleted) in db
        .datastore
        .fm_resource_rows_including_deleted(&db.opctx, resource, ids)
        .await
        .map_err(|e| db_error(&format!("looking up {resource} rows"), &e))?
    {
        states.insert(id, if deleted { ResourceState::Tombstone } else { ResourceState::Live });
    }
    let missing: Vec<Uuid> = ids.iter().filter(|id| !states.contains_key(id)).copied().collect();
    let mut conn = db.conn().await?;
    for chunk in missing.chunks(LOOKUP_CHUNK) {
        let swept: Vec<(Uuid, String)> = collected_of_query(chunk.to_vec())
            .load(&mut *conn)
            .await
            .map_err(|e| diesel_error("reading the ledger of swept resources", &e))?;
        for (id, _) in swept {
            states.insert(id, ResourceState::Swept);
        }
    }
    for id in ids {
        states.entry(*id).or_insert(ResourceState::NotYetCreated);
    }
    Ok(states)
}

#[derive(Tabled)]
struct CaseRow {
    #[tabled(rename = "CASE")]
    id: String,
    #[tabled(rename = "DIAGNOSIS ENGINE")]
    engine: String,
    #[tabled(rename = "OPENED IN")]
    opened: String,
    #[tabled(rename = "CLOSED IN")]
    closed: String,
    #[tabled(rename = "COMMENT")]
    comment: String,
}

#[derive(Tabled)]
struct RequestRow {
    #[tabled(rename = "ID")]
    id: String,
    #[tabled(rename = "CASE")]
    case: String,
    #[tabled(rename = "CLASS / REASON")]
    what: String,
    #[tabled(rename = "FIRST REQUESTED IN")]
    requested: String,
    #[tabled(rename = "RESOURCE")]
    resource: String,
}

fn print_show(view: &SitrepView) {
    println!("sitrep {}", view.id);
    println!("  where:                     {}", view.location);
    if view.source == "archive" {
        println!("  shown from:                the archive (fm_sitrep_archive)");
    }
    println!(
        "  made current:              {}",
        crate::output::opt_time(view.time_made_current.as_ref())
    );
    if let Some(t) = &view.time_archived {
        println!("  archived:                  {}", time(t));
    }
    if let Some(a) = &view.archive {
        let status = match a {
            ArchiveCompleteness::Complete => "complete",
            ArchiveCompleteness::Truncated(_) => "TRUNCATED",
            ArchiveCompleteness::Failed { .. } => "FAILED (failure record)",
        };
        println!("  archive entry:             {status}");
    }
    match &view.metadata {
        Some(m) => {
            println!("  parent:                    {}", opt(m.parent_sitrep_id));
            println!("  creator:                   {}", m.creator_id);
            println!("  created:                   {}", time(&m.time_created));
            println!("  comment:                   {}", m.comment);
            println!("  alert generation:          {}", m.alert_generation);
            println!("  support bundle generation: {}", m.support_bundle_generation);
        }
        None => println!("  metadata:                  (not available)"),
    }
    for note in &view.notes {
        println!("  note: {note}");
    }
    println!();
    println!("cases ({}):", view.cases.len());
    if !view.cases.is_empty() {
        println!(
            "{}",
            table(view.cases.iter().map(|c| CaseRow {
                id: c.id.to_string(),
                engine: c.diagnosis_engine.clone(),
                opened: c.opened_sitrep_id.to_string(),
                closed: opt(c.closed_sitrep_id),
                comment: c.comment.clone(),
            }))
        );
    }
    for (title, requests) in [
        ("alert requests", &view.alert_requests),
        ("support bundle requests", &view.support_bundle_requests),
    ] {
        println!();
        println!("{title} ({}):", requests.len());
        if !requests.is_empty() {
            println!(
                "{}",
                table(requests.iter().map(|r| RequestRow {
                    id: r.id.to_string(),
                    case: r.case_id.to_string(),
                    what: r.what.clone(),
                    requested: r.requested_sitrep_id.to_string(),
                    resource: opt(r.resource),
                }))
            );
        }
    }
}

/// How one generation moved between two sitreps.
#[derive(Clone, Debug, Serialize)]
pub struct GenerationMove {
    /// In A, if its metadata is known.
    pub from: Option<i64>,
    /// In B, if known.
    pub to: Option<i64>,
}

impl std::fmt::Display for GenerationMove {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", opt(self.from), opt(self.to))?;
        match (self.from, self.to) {
            (Some(a), Some(b)) if a == b => write!(f, " (unchanged)"),
            (Some(a), Some(b)) => write!(f, " ({:+})", b - a),
            _ => write!(f, " (unknown: metadata missing)"),
        }
    }
}

/// Ids added and removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SetDiff {
    /// In B, not in A.
    pub added: Vec<Uuid>,
    /// In A, not in B.
    pub removed: Vec<Uuid>,
}

fn set_diff(a: impl Iterator<Item = Uuid>, b: impl Iterator<Item = Uuid>) -> SetDiff {
    let a: BTreeSet<Uuid> = a.collect();
    let b: BTreeSet<Uuid> = b.collect();
    SetDiff {
        added: b.difference(&a).copied().collect(),
        removed: a.difference(&b).copied().collect(),
    }
}

/// `sitrep diff A B`.
#[derive(Clone, Debug, Serialize)]
pub struct SitrepDiff {
    /// A's id and location.
    pub a: (SitrepUuid, Location),
    /// B's id and location.
    pub b: (SitrepUuid, Location),
    /// The alert generation.
    pub alert_generation: GenerationMove,
    /// The support-bundle generation.
    pub support_bundle_generation: GenerationMove,
    /// Cases (`None`: a side's contents are unknown).
    pub cases: Option<SetDiff>,
    /// Alert requests (`None`: a side's contents are unknown).
    pub alert_requests: Option<SetDiff>,
    /// Support-bundle requests (`None`: a side's contents are unknown).
    pub support_bundle_requests: Option<SetDiff>,
    /// Caveats (e.g. a truncated archive).
    pub notes: Vec<String>,
}

fn diff(a: &SitrepView, b: &SitrepView) -> SitrepDiff {
    let generation =
        |v: &SitrepView, r: ResourceType| v.metadata.as_ref().map(|m| m.generation(r).as_i64());
    let mut notes = Vec::new();
    let mut known = true;
    for v in [a, b] {
        if matches!(v.archive, Some(ArchiveCompleteness::Failed { .. })) || v.metadata.is_none() {
            known = false;
            notes.push(format!(
                "the contents of sitrep {} are unknown (its archive entry is a failure record or \
                 cannot be read): cases and requests are not compared",
                v.id
            ));
        } else if matches!(v.archive, Some(ArchiveCompleteness::Truncated(_))) {
            notes.push(format!(
                "sitrep {} is only partly known (its archive entry is truncated): ids it left \
                 out are not compared",
                v.id
            ));
        }
    }
    SitrepDiff {
        a: (a.id, a.location),
        b: (b.id, b.location),
        alert_generation: GenerationMove {
            from: generation(a, ResourceType::Alert),
            to: generation(b, ResourceType::Alert),
        },
        support_bundle_generation: GenerationMove {
            from: generation(a, ResourceType::SupportBundle),
            to: generation(b, ResourceType::SupportBundle),
        },
        cases: known.then(|| {
            set_diff(
                a.cases.iter().map(|c| c.id.into_untyped()),
                b.cases.iter().map(|c| c.id.into_untyped()),
            )
        }),
        alert_requests: known.then(|| {
            set_diff(a.alert_requests.iter().map(|r| r.id), b.alert_requests.iter().map(|r| r.id))
        }),
        support_bundle_requests: known.then(|| {
            set_diff(
                a.support_bundle_requests.iter().map(|r| r.id),
                b.support_bundle_requests.iter().map(|r| r.id),
            )
        }),
        notes,
    }
}

fn print_diff(d: &SitrepDiff) {
    println!("from A: {} ({})", d.a.0, d.a.1);
    println!("to   B: {} ({})", d.b.0, d.b.1);
    println!("alert generation:          {}", d.alert_generation);
    println!("support bundle generation: {}", d.support_bundle_generation);
    for (title, set) in [
        ("cases", &d.cases),
        ("alert requests", &d.alert_requests),
        ("support bundle requests", &d.support_bundle_requests),
    ] {
        let Some(set) = set else {
            println!("{title}: unknown");
            continue;
        };
        println!("{title}: {} added, {} removed", set.added.len(), set.removed.len());
        for id in &set.added {
            println!("  + {id}");
        }
        for id in &set.removed {
            println!("  - {id}");
        }
    }
    for note in &d.notes {
        println!("note: {note}");
    }
}
