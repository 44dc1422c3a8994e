//! The simulated fault-management analysis: a stream of sitreps in which
//! cases open and close and alert and support-bundle requests come and go.
//!
//! Each analysis pass starts a [`SitrepBuilder`] from the sitrep the analysis
//! last published (its parent), takes one or two random steps (open a case
//! with a first request or two, add a request to an open case, withdraw a
//! request, close a case), and builds the sitrep with the
//! [`SatisfiedRequests`] found in the database for the parent's requests, so
//! that closed cases whose resources all exist are dropped. Every pass
//! changes at least one request set, so every sitrep after the first moves
//! at least one generation: executors holding an older sitrep find it stale.
//!
//! The analysis publishes as the FM executor role. When a publish loses a
//! race (`ParentNotCurrent`: someone else published first), it reloads the
//! current sitrep and plans the pass again on top of it.
//!
//! Its decisions depend only on the seed and on its own model of the open
//! cases (kept in opening order), never on the order of random ids or on
//! what the executors did, so a seed replays the same decisions on the same
//! starting database.

use anyhow::{Context, bail};
use fm_db_queries::{DataStore, Error as DbError, OpContext, Role};
use nexus_fm::builder::{BuilderError, SatisfiedRequests, SitrepBuilder};
use nexus_fm_types::{
    AlertUuid, CaseUuid, ExecutorUuid, ResourceType, Sitrep, SitrepUuid, SitrepVersion,
    SupportBundleUuid,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use std::collections::BTreeSet;
use uuid::Uuid;

/// The actor name the analysis publishes as.
pub(super) const ACTOR: &str = "fm-dev demo analysis";

/// Publishes lost in a row after which the analysis gives up: someone else
/// keeps publishing, so this is no longer a demo of this analysis.
const MAX_RACES_IN_A_ROW: u32 = 20;

/// The diagnosis engines the simulation knows: (engine, alert class, what
/// the case is about, support-bundle reason).
const ENGINES: [(&str, &str, &str, &str); 5] = [
    ("power", "hw.pwr.psu.fault", "power supply fault", "collect PSU and power-shelf logs"),
    ("thermal", "hw.thermal.overtemp", "over-temperature", "collect fan and sensor history"),
    ("disk", "hw.storage.disk.fault", "disk errors", "collect SMART data and kernel logs"),
    ("nic", "hw.net.link.flap", "link flapping", "collect NIC counters and switch logs"),
    ("memory", "hw.mem.ecc.ue", "uncorrectable memory errors", "collect memory-controller logs"),
];

/// The alert class of requests made for cases of an engine the simulation
/// does not know (cases found in an existing database).
const OTHER_ALERT_CLASS: &str = "fm.demo.alert";

/// The support-bundle reason for cases of an unknown engine.
const OTHER_BUNDLE_REASON: &str = "collect diagnostic data";

/// One request in four is a support bundle: bundles are heavier and rarer.
const BUNDLE_ONE_IN: u32 = 4;

/// Bounds on the simulated state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct AnalysisLimits {
    /// Most cases open at once.
    pub max_open_cases: usize,
    /// Most requests (both types) one open case holds at once.
    pub max_requests_per_case: usize,
}

/// An open case as the analysis sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OpenCase {
    id: CaseUuid,
    engine: String,
    /// Its alert requests, oldest first.
    alerts: Vec<AlertUuid>,
    /// Its support-bundle requests, oldest first.
    bundles: Vec<SupportBundleUuid>,
}

impl OpenCase {
    fn requests(&self) -> usize {
        self.alerts.len() + self.bundles.len()
    }
}

/// The analysis's model of its open cases, in opening order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Model {
    open: Vec<OpenCase>,
}

impl Model {
    /// The open cases of `sitrep` (in id order: the order of a sitrep found
    /// in the database) with their requests.
    fn of_sitrep(sitrep: &Sitrep) -> Model {
        let open = sitrep
            .cases
            .iter()
            .filter(|case| case.closed_sitrep_id.is_none())
            .map(|case| OpenCase {
                id: case.id,
                engine: case.diagnosis_engine.clone(),
                alerts: sitrep
                    .alert_requests
                    .iter()
                    .filter(|r| r.case_id == case.id)
                    .map(|r| r.id)
                    .collect(),
                bundles: sitrep
                    .support_bundle_requests
                    .iter()
                    .filter(|r| r.case_id == case.id)
                    .map(|r| r.id)
                    .collect(),
            })
            .collect();
        Model { open }
    }
}

/// One step of an analysis pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    OpenCase,
    Request,
    Withdraw,
    CloseCase,
}

/// What one analysis pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PassSummary {
    pub cases_opened: u32,
    pub cases_closed: u32,
    pub alerts_requested: u32,
    pub bundles_requested: u32,
    pub requests_withdrawn: u32,
}

impl PassSummary {
    fn requests_changed(&self) -> bool {
        self.alerts_requested + self.bundles_requested + self.requests_withdrawn > 0
    }
}

/// Takes one analysis pass: applies one or two random steps to `builder`
/// and `model`, then, if no request set changed yet, one more step that
/// changes one. Pure: no database, so it is unit-tested.
fn analysis_pass(
    rng: &mut StdRng,
    limits: AnalysisLimits,
    model: &mut Model,
    builder: &mut SitrepBuilder,
    pass: u64,
) -> Result<PassSummary, BuilderError> {
    let mut pass = Pass { number: pass, summary: PassSummary::default(), fresh: BTreeSet::new() };
    let steps = rng.random_range(1..=2);
    for _ in 0..steps {
        if let Some(step) = pick_step(rng, limits, model, &pass) {
            apply_step(rng, limits, model, builder, &mut pass, step)?;
        }
    }
    if !pass.summary.requests_changed() {
        let step = if can_request(limits, model) {
            Step::Request
        } else if model.open.len() < limits.max_open_cases {
            Step::OpenCase
        } else {
            // Every open case is full, and nothing was requested in this
            // pass, so there is an older request to withdraw.
            Step::Withdraw
        };
        apply_step(rng, limits, model, builder, &mut pass, step)?;
    }
    Ok(pass.summary)
}

/// The pass being taken.
struct Pass {
    number: u64,
    summary: PassSummary,
    /// Requests made in this pass: never withdrawn in the same pass, which
    /// would leave the request set as it was.
    fresh: BTreeSet<Uuid>,
}

/// Whether some open case has room for another request.
fn can_request(limits: AnalysisLimits, model: &Model) -> bool {
    model.open.iter().any(|c| c.requests() < limits.max_requests_per_case)
}

/// The requests of open cases that may be withdrawn in `pass`, as (case
/// index, type, index in the case's list), in the model's order.
fn withdrawable(model: &Model, pass: &Pass) -> Vec<(usize, ResourceType, usize)> {
    let mut requests = Vec::new();
    for (i, case) in model.open.iter().enumerate() {
        for (j, id) in case.alerts.iter().enumerate() {
            if !pass.fresh.contains(&id.into_untyped()) {
                requests.push((i, ResourceType::Alert, j));
            }
        }
        for (j, id) in case.bundles.iter().enumerate() {
            if !pass.fresh.contains(&id.into_untyped()) {
                requests.push((i, ResourceType::SupportBundle, j));
            }
        }
    }
    requests
}

/// Draws a step among those possible now, weighted; `None` if none is.
fn pick_step(rng: &mut StdRng, limits: AnalysisLimits, model: &Model, pass: &Pass) -> Option<Step> {
    let open = model.open.len();
    let weights = [
        (Step::OpenCase, if open < limits.max_open_cases { 3 } else { 0 }),
        (Step::Request, if can_request(limits, model) { 4 } else { 0 }),
        (Step::Withdraw, if withdrawable(model, pass).is_empty() { 0 } else { 2 }),
        // Close more eagerly when every slot is taken.
        (
            Step::CloseCase,
            match open {
                0 => 0,
                n if n >= limits.max_open_cases => 4,
                _ => 2,
            },
        ),
    ];
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let mut draw = rng.random_range(0..total);
    for (step, weight) in weights {
        if draw < weight {
            return Some(step);
        }
        draw -= weight;
    }
    None
}

/// Applies `step`, which must be possible.
fn apply_step(
    rng: &mut StdRng,
    limits: AnalysisLimits,
    model: &mut Model,
    builder: &mut SitrepBuilder,
    pass: &mut Pass,
    step: Step,
) -> Result<(), BuilderError> {
    match step {
        Step::OpenCase => {
            let (engine, _, about, _) = ENGINES[rng.random_range(0..ENGINES.len())];
            let comment = format!("{about} (analysis pass {})", pass.number);
            let id = builder.open_case(engine, comment);
            model.open.push(OpenCase {
                id,
                engine: engine.to_string(),
                alerts: Vec::new(),
                bundles: Vec::new(),
            });
            pass.summary.cases_opened += 1;
            let index = model.open.len() - 1;
            let first_requests = rng.random_range(1..=limits.max_requests_per_case.min(2));
            for _ in 0..first_requests {
                request(rng, model, index, builder, pass)?;
            }
        }
        Step::Request => {
            let candidates: Vec<usize> = (0..model.open.len())
                .filter(|&i| model.open[i].requests() < limits.max_requests_per_case)
                .collect();
            let index = candidates[rng.random_range(0..candidates.len())];
            request(rng, model, index, builder, pass)?;
        }
        Step::Withdraw => {
            let requests = withdrawable(model, pass);
            let (i, resource, j) = requests[rng.random_range(0..requests.len())];
            let case = &mut model.open[i];
            match resource {
                ResourceType::Alert => builder.withdraw_alert_request(case.alerts.remove(j))?,
                ResourceType::SupportBundle => {
                    builder.withdraw_support_bundle_request(case.bundles.remove(j))?;
                }
            }
            pass.summary.requests_withdrawn += 1;
        }
        Step::CloseCase => {
            let case = model.open.remove(rng.random_range(0..model.open.len()));
            builder.close_case(case.id)?;
            pass.summary.cases_closed += 1;
        }
    }
    Ok(())
}

/// Adds one request (an alert, or now and then a support bundle) to open
/// case number `index`.
fn request(
    rng: &mut StdRng,
    model: &mut Model,
    index: usize,
    builder: &mut SitrepBuilder,
    pass: &mut Pass,
) -> Result<(), BuilderError> {
    let case = &mut model.open[index];
    let known = ENGINES.iter().find(|(engine, ..)| *engine == case.engine);
    let component = rng.random_range(0..16u32);
    if rng.random_range(0..BUNDLE_ONE_IN) == 0 {
        let reason = known.map_or(OTHER_BUNDLE_REASON, |(_, _, _, reason)| *reason);
        let selection = json!({ "logs": true, "since_minutes": 30, "component": component });
        let id = builder.request_support_bundle(case.id, reason, selection)?;
        case.bundles.push(id);
        pass.fresh.insert(id.into_untyped());
        pass.summary.bundles_requested += 1;
    } else {
        let class = known.map_or(OTHER_ALERT_CLASS, |(_, class, _, _)| *class);
        let payload = json!({ "component": component, "analysis_pass": pass.number });
        let id = builder.request_alert(case.id, class, payload)?;
        case.alerts.push(id);
        pass.fresh.insert(id.into_untyped());
        pass.summary.alerts_requested += 1;
    }
    Ok(())
}

/// A sitrep the analysis published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Published {
    /// Its id.
    pub sitrep_id: SitrepUuid,
    /// Its history version.
    pub version: SitrepVersion,
}

/// Every request id the analysis's sitreps ever held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct RequestedEver {
    pub alerts: BTreeSet<Uuid>,
    pub support_bundles: BTreeSet<Uuid>,
}

impl RequestedEver {
    fn add(&mut self, sitrep: &Sitrep) {
        self.alerts.extend(sitrep.request_ids(ResourceType::Alert));
        self.support_bundles.extend(sitrep.request_ids(ResourceType::SupportBundle));
    }

    /// The ids of one type.
    pub fn of(&self, resource: ResourceType) -> &BTreeSet<Uuid> {
        match resource {
            ResourceType::Alert => &self.alerts,
            ResourceType::SupportBundle => &self.support_bundles,
        }
    }
}

/// The analysis: publishes the stream of sitreps.
pub(super) struct Analysis {
    log: slog::Logger,
    datastore: DataStore,
    opctx: OpContext,
    /// Recorded as the creator of every sitrep.
    creator_id: ExecutorUuid,
    rng: StdRng,
    limits: AnalysisLimits,
    /// The sitrep the next pass builds on: the last one published (or
    /// found current).
    parent: Option<Sitrep>,
    model: Model,
    passes: u64,
    published: u64,
    races_lost: u64,
    requested_ever: RequestedEver,
}

impl Analysis {
    /// Starts from the database's current sitrep (its open cases become the
    /// analysis's own), or from nothing on an empty history.
    pub async fn start(
        log: &slog::Logger,
        datastore: DataStore,
        seed: u64,
        limits: AnalysisLimits,
    ) -> anyhow::Result<Analysis> {
        let log = log.new(slog::o!("demo" => "analysis"));
        let opctx = OpContext::new(log.clone(), ACTOR, Role::FmExecutor);
        let mut analysis = Analysis {
            log,
            datastore,
            opctx,
            creator_id: ExecutorUuid::new_v4(),
            rng: StdRng::seed_from_u64(seed),
            limits,
            parent: None,
            model: Model::default(),
            passes: 0,
            published: 0,
            races_lost: 0,
            requested_ever: RequestedEver::default(),
        };
        analysis.reload().await?;
        if let Some(parent) = &analysis.parent {
            slog::info!(analysis.log, "continuing from the current sitrep";
                "sitrep_id" => %parent.id(), "open_cases" => analysis.model.open.len());
        }
        Ok(analysis)
    }

    /// Builds the next sitrep and publishes it, replanning on top of the
    /// current sitrep whenever a publish loses a race.
    pub async fn publish_next(&mut self) -> anyhow::Result<Published> {
        let mut races_in_a_row = 0;
        loop {
            self.passes += 1;
            let pass = self.passes;
            let mut builder = SitrepBuilder::new(
                self.parent.as_ref(),
                self.creator_id,
                format!("fm-dev demo: analysis pass {pass}"),
            );
            let mut model = self.model.clone();
            let summary = analysis_pass(&mut self.rng, self.limits, &mut model, &mut builder, pass)
                .with_context(|| format!("planning analysis pass {pass}"))?;
            let satisfied = self.satisfied().await?;
            let sitrep = builder
                .build(&satisfied)
                .with_context(|| format!("building the sitrep of analysis pass {pass}"))?;
            match self.datastore.sitrep_insert(&self.opctx, &sitrep).await {
                Ok(published) => {
                    slog::info!(self.log, "analysis pass published";
                        "pass" => pass,
                        "version" => %published.version,
                        "sitrep_id" => %published.sitrep_id,
                        "cases_opened" => summary.cases_opened,
                        "cases_closed" => summary.cases_closed,
                        "alerts_requested" => summary.alerts_requested,
                        "bundles_requested" => summary.bundles_requested,
                        "requests_withdrawn" => summary.requests_withdrawn);
                    self.requested_ever.add(&sitrep);
                    self.parent = Some(sitrep);
                    self.model = model;
                    self.published += 1;
                    return Ok(Published {
                        sitrep_id: published.sitrep_id,
                        version: published.version,
                    });
                }
                Err(error @ DbError::ParentNotCurrent { .. }) => {
                    self.races_lost += 1;
                    races_in_a_row += 1;
                    slog::info!(self.log, "publish lost a race; rebuilding on the current sitrep";
                        "pass" => pass, "error" => %error);
                    if races_in_a_row >= MAX_RACES_IN_A_ROW {
                        bail!(
                            "{races_in_a_row} publishes in a row lost a race: another publisher \
                             is active on this database"
                        );
                    }
                    self.reload().await?;
                }
                Err(error) => {
                    return Err(anyhow::Error::new(error).context(format!(
                        "publishing sitrep {} (analysis pass {pass})",
                        sitrep.id()
                    )));
                }
            }
        }
    }

    /// The sitrep last published (or found current at start).
    pub fn current(&self) -> Option<&Sitrep> {
        self.parent.as_ref()
    }

    /// Sitreps published.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Publishes that lost a race.
    pub fn races_lost(&self) -> u64 {
        self.races_lost
    }

    /// Every request id of every sitrep the analysis published or started
    /// from.
    pub fn requested_ever(&self) -> &RequestedEver {
        &self.requested_ever
    }

    /// Makes the database's current sitrep the parent of the next pass.
    async fn reload(&mut self) -> anyhow::Result<()> {
        let current = self
            .datastore
            .sitrep_read_current(&self.opctx)
            .await
            .context("reading the current sitrep")?;
        self.parent = current.map(|(_, sitrep)| sitrep);
        self.model = self.parent.as_ref().map(Model::of_sitrep).unwrap_or_default();
        if let Some(parent) = &self.parent {
            self.requested_ever.add(parent);
        }
        Ok(())
    }

    /// The parent's requests whose resource row exists, live or deleted by
    /// an operator: closed cases whose requests are all satisfied are
    /// dropped from the next sitrep.
    async fn satisfied(&self) -> anyhow::Result<SatisfiedRequests> {
        let Some(parent) = &self.parent else {
            return Ok(SatisfiedRequests::default());
        };
        let mut satisfied = SatisfiedRequests::default();
        for resource in ResourceType::ALL {
            let ids: Vec<Uuid> = parent.request_ids(resource).into_iter().collect();
            let rows = self
                .datastore
                .fm_resource_rows_including_deleted(&self.opctx, resource, &ids)
                .await
                .with_context(|| format!("looking up which {resource} requests are satisfied"))?;
            for (id, _deleted) in rows {
                match resource {
                    ResourceType::Alert => {
                        satisfied.alerts.insert(AlertUuid::from_untyped(id));
                    }
                    ResourceType::SupportBundle => {
                        satisfied.support_bundles.insert(SupportBundleUuid::from_untyped(id));
                    }
                }
            }
        }
        Ok(satisfied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: AnalysisLimits = AnalysisLimits { max_open_cases: 3, max_requests_per_case: 3 };

    /// What a pass decided, without the random ids.
    #[derive(Debug, PartialEq, Eq)]
    struct Decisions {
        summary: PassSummary,
        /// Per open case in model order: engine and request counts.
        open: Vec<(String, usize, usize)>,
    }

    /// Runs `passes` passes from nothing, as if every request were
    /// satisfied at once, checking every sitrep on the way.
    fn simulate(seed: u64, passes: u64) -> Vec<Decisions> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut model = Model::default();
        let mut parent: Option<Sitrep> = None;
        let mut decisions = Vec::new();
        for pass in 1..=passes {
            let mut builder = SitrepBuilder::new(parent.as_ref(), ExecutorUuid::new_v4(), "test");
            let summary = analysis_pass(&mut rng, LIMITS, &mut model, &mut builder, pass).unwrap();
            let all = parent
                .as_ref()
                .map(|p| SatisfiedRequests {
                    alerts: p.alert_requests.iter().map(|r| r.id).collect(),
                    support_bundles: p.support_bundle_requests.iter().map(|r| r.id).collect(),
                })
                .unwrap_or_default();
            let sitrep = builder.build(&all).unwrap();

            // The model matches the sitrep's open cases, within limits.
            assert_eq!(model.open.len(), Model::of_sitrep(&sitrep).open.len());
            assert!(model.open.len() <= LIMITS.max_open_cases);
            for case in &model.open {
                assert!(case.requests() <= LIMITS.max_requests_per_case);
                let in_sitrep = sitrep.cases.iter().find(|c| c.id == case.id).unwrap();
                assert_eq!(in_sitrep.closed_sitrep_id, None);
                let alerts: BTreeSet<_> = case.alerts.iter().map(|a| a.into_untyped()).collect();
                let of_case: BTreeSet<_> = sitrep
                    .alert_requests
                    .iter()
                    .filter(|r| r.case_id == case.id)
                    .map(|r| r.id.into_untyped())
                    .collect();
                assert_eq!(alerts, of_case);
            }
            // Every pass after the first moves a generation.
            if let Some(parent) = &parent {
                let moved = ResourceType::ALL
                    .iter()
                    .any(|&r| sitrep.metadata.generation(r) != parent.metadata.generation(r));
                assert!(moved, "pass {pass} changed no request set: {summary:?}");
            }
            decisions.push(Decisions {
                summary,
                open: model
                    .open
                    .iter()
                    .map(|c| (c.engine.clone(), c.alerts.len(), c.bundles.len()))
                    .collect(),
            });
            parent = Some(sitrep);
        }
        decisions
    }

    #[test]
    fn passes_stay_within_limits_and_always_change_a_request_set() {
        for seed in 0..20 {
            simulate(seed, 60);
        }
    }

    #[test]
    fn a_seed_replays_the_same_decisions() {
        assert_eq!(simulate(42, 40), simulate(42, 40));
        assert_ne!(simulate(42, 40), simulate(43, 40));
    }

    #[test]
    fn cases_open_and_close_and_requests_come_and_go() {
        let decisions = simulate(7, 60);
        let total =
            |f: fn(&PassSummary) -> u32| -> u32 { decisions.iter().map(|d| f(&d.summary)).sum() };
        assert!(total(|s| s.cases_opened) > 3);
        assert!(total(|s| s.cases_closed) > 0);
        assert!(total(|s| s.alerts_requested) > 0);
        assert!(total(|s| s.bundles_requested) > 0);
        assert!(total(|s| s.requests_withdrawn) > 0);
    }

    #[test]
    fn closed_cases_of_a_found_sitrep_are_not_the_analysis_s() {
        let mut builder = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "found");
        let open = builder.open_case("someone-else", "still open");
        let alert = builder.request_alert(open, "x.y", json!({})).unwrap();
        let closed = builder.open_case("power", "done");
        builder.request_alert(closed, "x.y", json!({})).unwrap();
        builder.close_case(closed).unwrap();
        let sitrep = builder.build(&SatisfiedRequests::default()).unwrap();
        let model = Model::of_sitrep(&sitrep);
        assert_eq!(
            model.open,
            [OpenCase {
                id: open,
                engine: "someone-else".into(),
                alerts: vec![alert],
                bundles: vec![],
            }]
        );
    }
}
