//! The background tasks against a real database: the sitrep loader
//! (polling, LISTEN/NOTIFY, pinned), the rendezvous (both types, fault
//! isolation between them, stale reports waking the loader), the pruner, and
//! the driver's persisted activation records.

use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use fm_db_queries::db_schema::alert;
use fm_db_queries::{OpContext, Role};
use fm_integration_tests::{TestEnv, connect};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm::driver::{
    ActivationOutcome, BackgroundTask, Driver, PanickedActivationStatus, TaskReport,
};
use nexus_fm::tasks::fm_rendezvous::{FmRendezvous, RendezvousFaultInjection};
use nexus_fm::tasks::fm_sitrep_loader::FmSitrepLoader;
use nexus_fm::tasks::fm_sitrep_pruner::FmSitrepPruner;
use nexus_fm::tasks::{TaskPeriods, register_all};
use nexus_fm_types::{
    ActivationReason, Case, ExecutorUuid, FmRendezvousStatus, FmSitrepLoaderStatus,
    FmSitrepPrunerStatus, Generation, ResourceType, Sitrep, SitrepRef, SitrepUuid, SitrepVersion,
    TaskActivationRecord,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Generous bound for things that should happen promptly; tests never
/// assert on how fast they happen, only that they do.
const PATIENCE: Duration = Duration::from_secs(30);

/// A period long enough that no periodic activation happens during a test
/// after the one at start-up.
const NEVER: Duration = Duration::from_secs(3600);

/// A child of `parent` (or a first sitrep) adding `alerts` alert requests
/// and `bundles` support-bundle requests to one case.
fn next_sitrep(parent: Option<&Sitrep>, alerts: usize, bundles: usize) -> Sitrep {
    let mut builder = SitrepBuilder::new(parent, ExecutorUuid::new_v4(), "task test");
    // Called by path: diesel-async's `RunQueryDsl::first` applies to every
    // type and would shadow the slice method.
    let case = match parent.and_then(|p| <[Case]>::first(&p.cases)) {
        Some(case) => case.id,
        None => builder.open_case("engine", "task test case"),
    };
    for i in 0..alerts {
        builder.request_alert(case, "test.alert", json!({ "i": i })).unwrap();
    }
    for i in 0..bundles {
        builder.request_support_bundle(case, "test", json!({ "i": i })).unwrap();
    }
    builder.build(&SatisfiedRequests::default()).unwrap()
}

/// Publishes `sitrep` and returns its place in the history.
async fn publish(env: &TestEnv, sitrep: &Sitrep) -> SitrepRef {
    let published =
        env.datastore.sitrep_insert(&env.opctx(Role::FmExecutor), sitrep).await.unwrap();
    SitrepRef { version: published.version, sitrep_id: published.sitrep_id }
}

/// Activates `task` directly, outside any driver.
async fn activate(task: &mut dyn BackgroundTask, opctx: &OpContext) -> TaskReport {
    task.activate(opctx, &[ActivationReason::Explicit]).await
}

fn loader_status(value: &serde_json::Value) -> FmSitrepLoaderStatus {
    serde_json::from_value(value.clone()).expect("a loader status")
}

fn rendezvous_status(value: &serde_json::Value) -> FmRendezvousStatus {
    serde_json::from_value(value.clone()).expect("a rendezvous status")
}

fn pruner_status(value: &serde_json::Value) -> FmSitrepPrunerStatus {
    serde_json::from_value(value.clone()).expect("a pruner status")
}

async fn alert_ids(env: &TestEnv) -> BTreeSet<Uuid> {
    env.all_rows(ResourceType::Alert).await
}

async fn bundle_ids(env: &TestEnv) -> BTreeSet<Uuid> {
    env.all_rows(ResourceType::SupportBundle).await
}

/// The persisted records of one executor, in task-name order.
async fn persisted(env: &TestEnv, executor: ExecutorUuid) -> Vec<TaskActivationRecord> {
    env.datastore.executor_task_status_of(&env.opctx(Role::Viewer), executor, 100).await.unwrap()
}

#[tokio::test]
async fn loader_follows_the_current_sitrep_by_polling() {
    let env = TestEnv::new().await;
    let opctx = env.opctx(Role::FmExecutor);
    let mut loader = FmSitrepLoader::polling(env.datastore.clone());
    let mut rx = loader.subscribe();

    let report = activate(&mut loader, &opctx).await;
    let status = loader_status(&report.status);
    assert_eq!(report.outcome, ActivationOutcome::NothingToDo);
    assert_eq!(status.outcome, "no sitrep published yet");
    assert_eq!((status.current, status.loaded, status.changed), (None, None, false));
    assert_eq!(status.woken_by, [ActivationReason::Explicit]);
    assert_eq!(status.listener, "not listening: polling only");
    assert!(rx.borrow_and_update().is_none());

    let s1 = next_sitrep(None, 1, 1);
    publish(&env, &s1).await;
    let s2 = next_sitrep(Some(&s1), 1, 0);
    let v2 = publish(&env, &s2).await;

    // One activation goes straight to the newest sitrep.
    let report = activate(&mut loader, &opctx).await;
    let status = loader_status(&report.status);
    assert_eq!(report.outcome, ActivationOutcome::DidWork);
    assert_eq!((status.current, status.loaded, status.changed), (Some(v2), Some(v2), true));
    assert_eq!(status.outcome, "loaded sitrep version 2");
    assert!(rx.has_changed().unwrap(), "subscribers are told");
    let loaded = rx.borrow_and_update().clone().expect("a loaded sitrep");
    assert_eq!(loaded.sitrep_ref(), v2);
    let read = env.datastore.sitrep_read(&env.opctx(Role::Viewer), s2.id()).await.unwrap();
    assert_eq!(loaded.sitrep, nexus_fm_types::SitrepSummary::of(&read));

    // Nothing new: nothing published.
    let report = activate(&mut loader, &opctx).await;
    let status = loader_status(&report.status);
    assert_eq!(report.outcome, ActivationOutcome::NothingToDo);
    assert_eq!((status.outcome.as_str(), status.changed), ("unchanged", false));
    assert_eq!(status.loaded, Some(v2));
    assert!(!rx.has_changed().unwrap());
}

#[tokio::test]
async fn loader_hears_of_a_publish_through_listen_notify() {
    let env = TestEnv::new().await;
    let executor = ExecutorUuid::new_v4();
    let loader = FmSitrepLoader::new(env.datastore.clone(), env.db.url());
    let rx = loader.subscribe();
    let mut driver = Driver::new(&env.log, executor, Arc::new(env.datastore.clone()));
    let notifications = loader.notification_wake_source();
    let handle = driver.register(Box::new(loader), NEVER, vec![notifications]);
    let running = driver.start();

    let first =
        tokio::time::timeout(PATIENCE, handle.wait_for_iteration(1)).await.unwrap().unwrap();
    let status = loader_status(&first.status);
    assert_eq!(status.listener, "listening on fm_sitrep_published");
    assert_eq!(status.outcome, "no sitrep published yet");

    // The period is an hour away: only the notification can wake the
    // loader now.
    let s1 = next_sitrep(None, 2, 1);
    let v1 = publish(&env, &s1).await;
    let second = tokio::time::timeout(PATIENCE, handle.wait_for_iteration(2))
        .await
        .expect("the publish to wake the loader")
        .unwrap();
    let status = loader_status(&second.status);
    assert_eq!(status.woken_by, [ActivationReason::Notification]);
    assert_eq!((status.loaded, status.changed), (Some(v1), true));
    assert_eq!(rx.borrow().as_ref().map(|l| l.sitrep_ref()), Some(v1));
    running.shutdown().await;

    // The driver persisted exactly what it keeps in memory.
    assert_eq!(persisted(&env, executor).await, [second]);
}

/// The server processes of this database's sitrep listeners.
async fn listener_pids(env: &TestEnv) -> Vec<i32> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let mut conn = connect(env.db.url()).await;
    let pids: Vec<Pid> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND query = 'LISTEN \"fm_sitrep_published\"'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    pids.into_iter().map(|p| p.pid).collect()
}

#[tokio::test]
async fn the_listener_is_re_established_after_its_connection_dies() {
    let env = TestEnv::new().await;
    let loader = FmSitrepLoader::new(env.datastore.clone(), env.db.url());
    let mut driver = Driver::new(&env.log, ExecutorUuid::new_v4(), Arc::new(env.datastore.clone()));
    let notifications = loader.notification_wake_source();
    let handle = driver.register(Box::new(loader), NEVER, vec![notifications]);
    let running = driver.start();
    tokio::time::timeout(PATIENCE, handle.wait_for_iteration(1)).await.unwrap().unwrap();
    let before = listener_pids(&env).await;
    assert_eq!(before.len(), 1, "one listener connection");

    // Kill the listener's server process, then activate until the loader
    // has noticed and listens again on a new connection.
    let mut conn = connect(env.db.url()).await;
    diesel::sql_query("SELECT pg_terminate_backend($1)")
        .bind::<diesel::sql_types::Integer, _>(before[0])
        .execute(&mut conn)
        .await
        .unwrap();
    let record = tokio::time::timeout(PATIENCE, async {
        loop {
            let record = handle.activate_and_wait().await.unwrap();
            let pids = listener_pids(&env).await;
            if pids.len() == 1 && pids != before {
                break record;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the listener to be re-established");
    assert_eq!(loader_status(&record.status).listener, "listening on fm_sitrep_published");

    // And the new connection hears the next publish.
    let s1 = next_sitrep(None, 1, 0);
    let v1 = publish(&env, &s1).await;
    let mut next = record.iteration + 1;
    let woken = tokio::time::timeout(PATIENCE, async {
        loop {
            let record = handle.wait_for_iteration(next).await.unwrap();
            let status = loader_status(&record.status);
            if status.loaded == Some(v1) {
                break status;
            }
            next = record.iteration + 1;
        }
    })
    .await
    .expect("the publish to wake the loader");
    assert_eq!(woken.woken_by, [ActivationReason::Notification]);
    running.shutdown().await;
}

#[tokio::test]
async fn a_pinned_loader_publishes_exactly_its_committed_sitrep() {
    let env = TestEnv::new().await;
    let opctx = env.opctx(Role::FmExecutor);
    let s1 = next_sitrep(None, 1, 1);
    let v1 = publish(&env, &s1).await;
    let s2 = next_sitrep(Some(&s1), 1, 1);
    publish(&env, &s2).await;

    // Pinned to the older sitrep, though a newer one is current.
    let mut loader = FmSitrepLoader::pinned(env.datastore.clone(), s1.id());
    let report = activate(&mut loader, &opctx).await;
    let status = loader_status(&report.status);
    assert_eq!(status.pinned, Some(s1.id()));
    assert_eq!((status.loaded, status.changed), (Some(v1), true));
    assert_eq!(loader.loaded().map(|l| l.sitrep.id()), Some(s1.id()));
    let report = activate(&mut loader, &opctx).await;
    let status = loader_status(&report.status);
    assert_eq!(status.outcome, "unchanged: pinned to this sitrep");
    assert!(!status.changed);

    // A sitrep that was never committed is refused, and nothing is
    // published.
    let never_published = next_sitrep(Some(&s2), 1, 0);
    for missing in [never_published.id(), SitrepUuid::new_v4()] {
        let mut loader = FmSitrepLoader::pinned(env.datastore.clone(), missing);
        let report = activate(&mut loader, &opctx).await;
        let status = loader_status(&report.status);
        assert_eq!(report.outcome, ActivationOutcome::Failed);
        assert_eq!(status.outcome, "failed: the pinned sitrep is not committed");
        let error = status.error.expect("an error");
        assert!(
            error.contains(&missing.to_string()) && error.contains("no history entry"),
            "{error}"
        );
        assert!(loader.loaded().is_none());
    }
}

#[tokio::test]
async fn rendezvous_executes_both_types_and_reports_what_happened() {
    let env = TestEnv::new().await;
    let opctx = env.opctx(Role::FmExecutor);
    let mut loader = FmSitrepLoader::polling(env.datastore.clone());
    let mut rendezvous = FmRendezvous::new(env.datastore.clone(), loader.subscribe());

    // Nothing loaded yet: nothing to execute.
    let report = activate(&mut rendezvous, &opctx).await;
    let status = rendezvous_status(&report.status);
    assert_eq!(report.outcome, ActivationOutcome::NothingToDo);
    assert_eq!(status.outcome, "skipped: no sitrep loaded yet");
    assert_eq!((status.sitrep, status.alert, status.support_bundle), (None, None, None));

    let s1 = next_sitrep(None, 3, 2);
    let v1 = publish(&env, &s1).await;
    activate(&mut loader, &opctx).await;
    let report = activate(&mut rendezvous, &opctx).await;
    let status = rendezvous_status(&report.status);
    assert_eq!(report.outcome, ActivationOutcome::DidWork);
    assert_eq!(status.sitrep, Some(v1));
    let alerts = status.alert.clone().unwrap();
    assert_eq!(alerts.resource, ResourceType::Alert);
    assert_eq!((alerts.sitrep, alerts.generation), (v1, Generation::FIRST));
    assert_eq!(
        (alerts.requested, alerts.newly_requested, alerts.created, alerts.already_existed),
        (3, 3, 3, 0)
    );
    assert_eq!((alerts.stale, alerts.statements, alerts.errors.len()), (false, 1, 0));
    assert_eq!(alerts.outcome, "created 3 of 3 requested");
    assert_eq!(alerts.sweep.outcome, "no tombstones");
    assert_eq!((alerts.sweep.pages, alerts.sweep.tombstones_examined), (1, 0));
    let bundles = status.support_bundle.clone().unwrap();
    assert_eq!((bundles.requested, bundles.created), (2, 2));
    assert_eq!(
        status.outcome,
        "alert: created 3 of 3 requested; support bundle: created 2 of 2 requested"
    );
    assert_eq!(alert_ids(&env).await, s1.request_ids(ResourceType::Alert));
    assert_eq!(bundle_ids(&env).await, s1.request_ids(ResourceType::SupportBundle));

    // An operator deletes one alert; the next sitrep adds one alert.
    let deleted = s1.alert_requests[0].id.into_untyped();
    let mut conn = connect(env.db.url()).await;
    diesel::update(alert::table.find(deleted))
        .set(alert::time_deleted.eq(Some(chrono::Utc::now())))
        .execute(&mut conn)
        .await
        .unwrap();
    let s2 = next_sitrep(Some(&s1), 1, 0);
    let v2 = publish(&env, &s2).await;
    activate(&mut loader, &opctx).await;
    let report = activate(&mut rendezvous, &opctx).await;
    let status = rendezvous_status(&report.status);
    let alerts = status.alert.clone().unwrap();
    assert_eq!((alerts.sitrep, alerts.generation.as_i64()), (v2, 2));
    assert_eq!(
        (
            alerts.requested,
            alerts.newly_requested,
            alerts.created,
            alerts.already_existed,
            alerts.deleted_not_recreated
        ),
        (4, 1, 1, 2, 1)
    );
    assert_eq!(
        alerts.outcome,
        "created 1 of 4 requested, 2 already existed, 1 not re-created: deleted by an operator"
    );
    let bundles = status.support_bundle.unwrap();
    assert_eq!((bundles.generation, bundles.newly_requested), (Generation::FIRST, 0));
    assert_eq!((bundles.created, bundles.already_existed), (0, 2));
    assert_eq!(alert_ids(&env).await, s2.request_ids(ResourceType::Alert), "the tombstone stays");
}

#[tokio::test]
async fn a_failing_type_leaves_the_other_type_intact() {
    let env = TestEnv::new().await;
    let opctx = env.opctx(Role::FmExecutor);
    let s1 = next_sitrep(None, 3, 2);
    publish(&env, &s1).await;
    let mut loader = FmSitrepLoader::polling(env.datastore.clone());
    activate(&mut loader, &opctx).await;
    let faults = RendezvousFaultInjection::default();
    let mut rendezvous = FmRendezvous::new(env.datastore.clone(), loader.subscribe())
        .with_fault_injection(faults.clone());

    faults.fail_creation(ResourceType::SupportBundle);
    let report = activate(&mut rendezvous, &opctx).await;
    let status = rendezvous_status(&report.status);
    assert_eq!(report.outcome, ActivationOutcome::Failed);
    let alerts = status.alert.unwrap();
    assert_eq!((alerts.created, alerts.errors.len()), (3, 0), "{alerts:?}");
    assert_eq!(alerts.outcome, "created 3 of 3 requested");
    let bundles = status.support_bundle.unwrap();
    assert_eq!(bundles.errors, ["creating support bundles: failure injected by a test"]);
    assert_eq!(bundles.outcome, "failed: creating support bundles: failure injected by a test");
    assert_eq!((bundles.requested, bundles.created, bundles.statements), (2, 0, 0));
    // The sweep runs regardless of the failed creation.
    assert_eq!(bundles.sweep.outcome, "no tombstones");
    assert_eq!(bundles.sweep.pages, 1, "the sweep runs regardless");
    assert_eq!(alert_ids(&env).await, s1.request_ids(ResourceType::Alert));
    assert!(bundle_ids(&env).await.is_empty());

    // The next activation is the retry.
    faults.heal_creation(ResourceType::SupportBundle);
    let report = activate(&mut rendezvous, &opctx).await;
    let status = rendezvous_status(&report.status);
    assert_eq!(report.outcome, ActivationOutcome::DidWork);
    assert_eq!(status.support_bundle.unwrap().created, 2);
    assert_eq!(status.alert.unwrap().already_existed, 3);
    assert_eq!(bundle_ids(&env).await, s1.request_ids(ResourceType::SupportBundle));
}

#[tokio::test]
async fn a_stale_rendezvous_wakes_the_loader_which_wakes_the_rendezvous() {
    let env = TestEnv::new().await;
    let executor = ExecutorUuid::new_v4();
    let s1 = next_sitrep(None, 2, 1);
    let v1 = publish(&env, &s1).await;

    // Polling only, and no period elapses during the test: the loader
    // learns of the next sitrep only through the rendezvous' stale report.
    let loader = FmSitrepLoader::polling(env.datastore.clone());
    let rendezvous = FmRendezvous::new(env.datastore.clone(), loader.subscribe());
    let pruner = FmSitrepPruner::new(env.datastore.clone(), RetentionPolicy::default());
    let mut driver = Driver::new(&env.log, executor, Arc::new(env.datastore.clone()));
    let periods =
        TaskPeriods { fm_sitrep_loader: NEVER, fm_rendezvous: NEVER, fm_sitrep_pruner: NEVER };
    let handles = register_all(&mut driver, loader, rendezvous, pruner, periods);
    let running = driver.start();

    let loaded = tokio::time::timeout(PATIENCE, handles.fm_sitrep_loader.wait_for_iteration(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loader_status(&loaded.status).loaded, Some(v1));
    let executed = tokio::time::timeout(PATIENCE, handles.fm_rendezvous.activate_and_wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rendezvous_status(&executed.status).sitrep, Some(v1));

    // A new sitrep changes the alert requests only.
    let s2 = next_sitrep(Some(&s1), 1, 0);
    let v2 = publish(&env, &s2).await;
    let stale = tokio::time::timeout(PATIENCE, handles.fm_rendezvous.activate_and_wait())
        .await
        .unwrap()
        .unwrap();
    let status = rendezvous_status(&stale.status);
    assert_eq!(status.sitrep, Some(v1));
    let alerts = status.alert.unwrap();
    assert!(alerts.stale);
    assert_eq!(alerts.latest_generation.map(Generation::as_i64), Some(2));
    assert_eq!(
        alerts.outcome,
        "skipped: this executor's sitrep is no longer current (its generation is 1, the latest \
         sitrep's is 2)"
    );
    assert!(alerts.errors.is_empty(), "stale is not an error");
    // Support bundles are unchanged, so the old sitrep still executes them.
    let bundles = status.support_bundle.unwrap();
    assert!(!bundles.stale);
    assert_eq!(bundles.already_existed, 1);

    // The stale report wakes the loader ...
    let reloaded = tokio::time::timeout(PATIENCE, handles.fm_sitrep_loader.wait_for_iteration(2))
        .await
        .expect("the stale report to wake the loader")
        .unwrap();
    let status = loader_status(&reloaded.status);
    assert!(status.woken_by.contains(&ActivationReason::StaleReport), "{status:?}");
    assert_eq!(status.loaded, Some(v2));

    // ... whose new sitrep wakes the rendezvous, which creates the new
    // alert.
    let mut next = stale.iteration + 1;
    let caught_up = loop {
        let record = tokio::time::timeout(PATIENCE, handles.fm_rendezvous.wait_for_iteration(next))
            .await
            .expect("the new sitrep to wake the rendezvous")
            .unwrap();
        if rendezvous_status(&record.status).sitrep == Some(v2) {
            break record;
        }
        next = record.iteration + 1;
    };
    let alerts = rendezvous_status(&caught_up.status).alert.unwrap();
    assert_eq!((alerts.stale, alerts.created, alerts.already_existed), (false, 1, 2));
    assert_eq!(alert_ids(&env).await, s2.request_ids(ResourceType::Alert));
    running.shutdown().await;

    // Every task's last activation is persisted for this executor.
    let records = persisted(&env, executor).await;
    let names: Vec<&str> = records.iter().map(|r| r.task_name.as_str()).collect();
    assert_eq!(names, ["fm_rendezvous", "fm_sitrep_loader", "fm_sitrep_pruner"]);
    let in_memory = [&handles.fm_rendezvous, &handles.fm_sitrep_loader, &handles.fm_sitrep_pruner]
        .map(|h| h.last_activation().unwrap());
    assert_eq!(records, in_memory);
}

#[tokio::test]
async fn the_driver_persists_loader_and_pruner_statuses() {
    let env = TestEnv::new().await;
    let executor = ExecutorUuid::new_v4();
    let mut chain: Vec<Sitrep> = Vec::new();
    let mut refs = Vec::new();
    for _ in 0..5 {
        let next = next_sitrep(chain.last(), 1, 0);
        refs.push(publish(&env, &next).await);
        chain.push(next);
    }

    let mut driver = Driver::new(&env.log, executor, Arc::new(env.datastore.clone()));
    let loader =
        driver.register(Box::new(FmSitrepLoader::polling(env.datastore.clone())), NEVER, vec![]);
    let policy = RetentionPolicy { keep: 2, archive_keep: 10 };
    let pruner = driver.register(
        Box::new(FmSitrepPruner::new(env.datastore.clone(), policy)),
        NEVER,
        vec![],
    );
    let running = driver.start();

    // The start-up activations: the loader loads version 5, the pruner
    // removes versions 1 to 3.
    let loaded =
        tokio::time::timeout(PATIENCE, loader.wait_for_iteration(1)).await.unwrap().unwrap();
    assert_eq!(loader_status(&loaded.status).loaded, Some(refs[4]));
    let pruned =
        tokio::time::timeout(PATIENCE, pruner.wait_for_iteration(1)).await.unwrap().unwrap();
    let status = pruner_status(&pruned.status);
    assert_eq!(status.pruned, refs[..3]);
    assert_eq!(status.current_version, Some(SitrepVersion::try_new(5).unwrap()));
    assert_eq!(status.outcome, "pruned 3 sitreps (versions 1 to 3)");
    assert_eq!(status.error, None);

    // And one more each, on request.
    let loaded = tokio::time::timeout(PATIENCE, loader.activate_and_wait()).await.unwrap().unwrap();
    let pruned = tokio::time::timeout(PATIENCE, pruner.activate_and_wait()).await.unwrap().unwrap();
    assert_eq!((loaded.iteration, pruned.iteration), (2, 2));
    assert_eq!(
        pruner_status(&pruned.status).outcome,
        "nothing to prune: at most 2 history entries"
    );
    running.shutdown().await;

    let listed =
        env.datastore.executor_task_status_list(&env.opctx(Role::Viewer), None, 100).await.unwrap();
    let mine: Vec<TaskActivationRecord> =
        listed.into_iter().filter(|r| r.executor_id == executor).collect();
    assert_eq!(mine, [loaded, pruned]);
}

#[tokio::test]
async fn a_bad_retention_policy_fails_every_activation_and_says_why() {
    let env = TestEnv::new().await;
    let mut pruner =
        FmSitrepPruner::new(env.datastore.clone(), RetentionPolicy { keep: 1, archive_keep: 10 });
    let report = activate(&mut pruner, &env.opctx(Role::FmExecutor)).await;
    let status = pruner_status(&report.status);
    assert_eq!(report.outcome, ActivationOutcome::Failed);
    assert_eq!(status.outcome, "failed: pruning the sitrep history");
    let error = status.error.unwrap();
    assert!(error.contains("at least 2"), "{error}");
}

#[tokio::test]
async fn run_once_executes_a_pinned_older_sitrep_only_where_it_is_current() {
    let env = TestEnv::new().await;
    let executor = ExecutorUuid::new_v4();
    let s1 = next_sitrep(None, 2, 1);
    let v1 = publish(&env, &s1).await;
    // The next sitrep changes the bundle requests only.
    let s2 = next_sitrep(Some(&s1), 0, 1);
    publish(&env, &s2).await;

    // `fmd --once --sitrep S1`.
    let loader = FmSitrepLoader::pinned(env.datastore.clone(), s1.id());
    let rendezvous = FmRendezvous::new(env.datastore.clone(), loader.subscribe());
    let pruner = FmSitrepPruner::new(env.datastore.clone(), RetentionPolicy::default());
    let mut driver = Driver::new(&env.log, executor, Arc::new(env.datastore.clone()));
    register_all(&mut driver, loader, rendezvous, pruner, TaskPeriods::default());
    let records = driver.run_once().await;

    let names: Vec<&str> = records.iter().map(|r| r.task_name.as_str()).collect();
    assert_eq!(names, ["fm_sitrep_loader", "fm_rendezvous", "fm_sitrep_pruner"]);
    assert!(records.iter().all(|r| r.iteration == 1));
    let loaded = loader_status(&records[0].status);
    assert_eq!((loaded.pinned, loaded.loaded), (Some(s1.id()), Some(v1)));
    assert_eq!(loaded.woken_by, [ActivationReason::RunOnce]);
    let executed = rendezvous_status(&records[1].status);
    assert_eq!(executed.sitrep, Some(v1));
    // Alerts: same generation as the latest sitrep, so created; bundles:
    // the latest sitrep changed them, so nothing is created from S1.
    assert_eq!(executed.alert.unwrap().created, 2);
    assert!(executed.support_bundle.unwrap().stale);
    assert_eq!(alert_ids(&env).await, s1.request_ids(ResourceType::Alert));
    assert!(bundle_ids(&env).await.is_empty());

    let mut sorted = records.clone();
    sorted.sort_by(|a, b| a.task_name.cmp(&b.task_name));
    assert_eq!(persisted(&env, executor).await, sorted);
}

/// A test-only task that panics in the activations whose numbers (counted
/// from 1 within the task) are listed, and reports its activation number
/// otherwise.
struct PanickingTask {
    panic_in: Vec<u64>,
    activations: u64,
}

impl BackgroundTask for PanickingTask {
    fn name(&self) -> &'static str {
        "test_panicking_task"
    }

    fn activate<'a>(
        &'a mut self,
        _opctx: &'a OpContext,
        _reasons: &'a [ActivationReason],
    ) -> futures::future::BoxFuture<'a, TaskReport> {
        Box::pin(async move {
            self.activations += 1;
            // An await point before the panic: the panic happens inside the
            // polled future, as it would in a real task's database work.
            tokio::task::yield_now().await;
            if self.panic_in.contains(&self.activations) {
                panic!("injected panic in activation {}", self.activations);
            }
            TaskReport::new(
                &json!({ "activation": self.activations }),
                ActivationOutcome::DidWork,
                "fine",
            )
        })
    }
}

/// How this test was shown to fail without the guard: with the
/// `catch_unwind` in `TaskContext::activate` removed (the activation awaited
/// directly), the panic unwinds out of the task's tokio task, the loop ends,
/// `wait_for_iteration(1)` returns `None` ("the task's loop stopped") and
/// nothing is persisted: the test fails at its first `expect`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_activation_is_recorded_and_the_task_goes_on() {
    let env = TestEnv::new().await;
    let executor = ExecutorUuid::new_v4();
    let mut driver = Driver::new(&env.log, executor, Arc::new(env.datastore.clone()));
    let task = PanickingTask { panic_in: vec![1], activations: 0 };
    let handle = driver.register(Box::new(task), NEVER, vec![]);
    let running = driver.start();

    // The start-up activation panics: it is recorded as failed, with the
    // panic's message, in memory and in fm_executor_task_status.
    let first = tokio::time::timeout(PATIENCE, handle.wait_for_iteration(1))
        .await
        .expect("activation 1 in time")
        .expect("the task's loop is still running after the panic");
    let panicked = PanickedActivationStatus::from_status(&first.status)
        .unwrap_or_else(|| panic!("a panicked status: {}", first.status));
    assert_eq!(panicked.outcome, "failed: the activation panicked");
    assert_eq!(panicked.panic_message, "injected panic in activation 1");
    assert_eq!(first.status["activation_panicked"], json!(true));
    assert_eq!(persisted(&env, executor).await, std::slice::from_ref(&first));
    assert_eq!(handle.panics(), 1);

    // The task runs again afterwards, and that activation is recorded too.
    let second = tokio::time::timeout(PATIENCE, handle.activate_and_wait())
        .await
        .expect("activation 2 in time")
        .expect("the task is still running");
    assert_eq!(second.iteration, 2);
    assert_eq!(second.status, json!({ "activation": 2 }));
    assert_eq!(persisted(&env, executor).await, std::slice::from_ref(&second));
    assert_eq!(handle.panics(), 1);
    running.shutdown().await;

    // `fmd --once` runs the same activation path: its error list (which
    // decides fmd's exit status) names the panic.
    let executor = ExecutorUuid::new_v4();
    let mut driver = Driver::new(&env.log, executor, Arc::new(env.datastore.clone()));
    driver.register(Box::new(PanickingTask { panic_in: vec![1], activations: 0 }), NEVER, vec![]);
    let records = driver.run_once().await;
    assert_eq!(persisted(&env, executor).await, records);
    let errors = nexus_fm::fmd::activation_errors(&records);
    assert_eq!(
        errors,
        ["test_panicking_task: the activation panicked: injected panic in activation 1"]
    );
    assert!(nexus_fm::fmd::summarize(&records).contains("failed: the activation panicked"));
}
