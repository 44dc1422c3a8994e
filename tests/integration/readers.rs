//! Every reader of alerts and support bundles ignores tombstones
//! (docs/design.md, "Deleting a resource"), and the readers page, update and dispatch as
//! documented.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use fm_db_queries::catalogue::catalogue;
use fm_db_queries::datastore::alert::{Deleted, DispatchQueueMarker, MarkDispatched};
use fm_db_queries::datastore::support_bundle::{
    FAIL_ORPHANED_PAGE_ROWS, MAX_USER_COMMENT_BYTES, SupportBundleState,
};
use fm_db_queries::db_schema::{alert, support_bundle};
use fm_db_queries::explain::{assert_no_seq_scan, explain_plan};
use fm_db_queries::{Action, Error, Role};
use fm_integration_tests::{TestEnv, connect, fm_table_checksums};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm_types::{AlertUuid, CaseUuid, ExecutorUuid, ResourceType, SupportBundleUuid};
use serde_json::json;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use uuid::Uuid;

/// The largest page the datastore accepts.
const ALL: u32 = 10_000;

/// One FM-created alert and bundle of one case, the bundle assigned to
/// `executor`.
struct Target {
    case: CaseUuid,
    alert: AlertUuid,
    bundle: SupportBundleUuid,
    executor: ExecutorUuid,
}

async fn target(env: &TestEnv) -> Target {
    let mut b = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "readers test");
    let case = b.open_case("engine", "case");
    let alert = b.request_alert(case, "test.alert", json!({})).unwrap();
    let bundle = b.request_support_bundle(case, "test", json!({})).unwrap();
    let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
    let fm = env.opctx(Role::FmExecutor);
    env.datastore.sitrep_insert(&fm, &sitrep).await.unwrap();
    for resource in ResourceType::ALL {
        env.execute_sitrep(&sitrep, resource).await.unwrap();
    }
    // Nothing assigns bundles yet; the collector will. Assign it below the
    // datastore.
    let executor = ExecutorUuid::new_v4();
    let mut conn = connect(env.db.url()).await;
    diesel::update(support_bundle::table.find(bundle.into_untyped()))
        .set(support_bundle::assigned_executor.eq(executor.into_untyped()))
        .execute(&mut conn)
        .await
        .unwrap();
    Target { case, alert, bundle, executor }
}

/// Undoes what a reader that writes did, so that the same call after the
/// delete would succeed again if it saw the tombstone.
async fn reset(env: &TestEnv, t: &Target) {
    let mut conn = connect(env.db.url()).await;
    diesel::update(alert::table.find(t.alert.into_untyped()))
        .set(alert::time_dispatched.eq(None::<DateTime<Utc>>))
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::update(support_bundle::table.find(t.bundle.into_untyped()))
        .set((
            support_bundle::state.eq("collecting"),
            support_bundle::user_comment.eq(None::<String>),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
}

type Seen<'a> = Pin<Box<dyn Future<Output = bool> + 'a>>;
type ReaderFn = for<'a> fn(&'a TestEnv, &'a Target) -> Seen<'a>;

/// A public reader (or updater) of alerts or bundles, and whether it saw the
/// target: returned it, or acted on it.
struct Reader {
    name: &'static str,
    saw: ReaderFn,
}

fn reader(name: &'static str, saw: ReaderFn) -> Reader {
    Reader { name, saw }
}

/// Found (`true`), NotFound (`false`), anything else fails the test.
#[track_caller]
fn found<T: std::fmt::Debug>(result: Result<T, Error>) -> bool {
    match result {
        Ok(_) => true,
        Err(Error::NotFound { .. }) => false,
        Err(e) => panic!("expected a value or NotFound, got {e:#?}"),
    }
}

/// How many public readers of alerts and bundles there are. When you add
/// one, add it to [`readers`] and raise this.
const READER_COUNT: usize = 12;

/// Every public reader of alerts and support bundles, each as a check of
/// whether it sees the target.
fn readers() -> Vec<Reader> {
    vec![
        reader("alert_get", |env, t| {
            Box::pin(async move {
                found(env.datastore.alert_get(&env.opctx(Role::Viewer), t.alert).await)
            })
        }),
        reader("alert_list", |env, t| {
            Box::pin(async move {
                let page = env.datastore.alert_list(&env.opctx(Role::Viewer), None, ALL).await;
                page.unwrap().iter().any(|a| a.id == t.alert)
            })
        }),
        reader("alert_list_by_case", |env, t| {
            Box::pin(async move {
                let opctx = env.opctx(Role::Viewer);
                let page = env.datastore.alert_list_by_case(&opctx, t.case, None, ALL).await;
                page.unwrap().iter().any(|a| a.id == t.alert)
            })
        }),
        reader("alert_dispatch_queue", |env, t| {
            Box::pin(async move {
                let opctx = env.opctx(Role::FmExecutor);
                let page = env.datastore.alert_dispatch_queue(&opctx, None, ALL).await;
                page.unwrap().iter().any(|a| a.id == t.alert)
            })
        }),
        reader("alert_mark_dispatched", |env, t| {
            Box::pin(async move {
                let opctx = env.opctx(Role::FmExecutor);
                found(env.datastore.alert_mark_dispatched(&opctx, t.alert).await)
            })
        }),
        reader("support_bundle_get", |env, t| {
            Box::pin(async move {
                found(env.datastore.support_bundle_get(&env.opctx(Role::Viewer), t.bundle).await)
            })
        }),
        reader("support_bundle_list", |env, t| {
            Box::pin(async move {
                let opctx = env.opctx(Role::Viewer);
                let page = env.datastore.support_bundle_list(&opctx, None, ALL).await;
                page.unwrap().iter().any(|b| b.id == t.bundle)
            })
        }),
        reader("support_bundle_list_by_executor", |env, t| {
            Box::pin(async move {
                let opctx = env.opctx(Role::Viewer);
                let page =
                    env.datastore.support_bundle_list_by_executor(&opctx, t.executor, None, ALL);
                page.await.unwrap().iter().any(|b| b.id == t.bundle)
            })
        }),
        reader("support_bundle_list_by_case", |env, t| {
            Box::pin(async move {
                let opctx = env.opctx(Role::Viewer);
                let page = env.datastore.support_bundle_list_by_case(&opctx, t.case, None, ALL);
                page.await.unwrap().iter().any(|b| b.id == t.bundle)
            })
        }),
        reader("support_bundle_update_state", |env, t| {
            Box::pin(async move {
                let opctx = env.opctx(Role::Operator);
                let updated = env
                    .datastore
                    .support_bundle_update_state(&opctx, t.bundle, SupportBundleState::Active)
                    .await;
                found(updated)
            })
        }),
        reader("support_bundle_update_comment", |env, t| {
            Box::pin(async move {
                let opctx = env.opctx(Role::Operator);
                let comment = Some("looked at it".to_string());
                found(env.datastore.support_bundle_update_comment(&opctx, t.bundle, comment).await)
            })
        }),
        reader("support_bundle_fail_orphaned", |env, t| {
            Box::pin(async move {
                let opctx = env.opctx(Role::FmExecutor);
                match env.datastore.support_bundle_fail_orphaned(&opctx, t.executor).await {
                    Ok(1) => true,
                    Ok(0) => false,
                    other => panic!("one bundle is assigned, got {other:?}"),
                }
            })
        }),
    ]
}

/// Public datastore methods of the files that read alerts and bundles
/// (the two resource files, the creation and the sweep) that are not in
/// [`readers`], with the reason. Every other `pub async fn` there must be.
const NOT_TOMBSTONE_BLIND: [(&str, &str); 10] = [
    ("alert_delete", "a deleter: deleting a tombstone is NotFound (tests in delete.rs)"),
    ("support_bundle_delete", "a deleter: deleting a tombstone is NotFound (tests in delete.rs)"),
    ("alert_get_including_deleted", "debug reader, shows tombstones by name (checked below)"),
    ("support_bundle_get_including_deleted", "debug reader, shows tombstones by name"),
    ("fm_resources_create", "the guarded insert must see tombstones to not re-create them"),
    ("fm_resources_create_paged", "the guarded insert, with a page size (as above)"),
    ("fm_tombstones_sweep", "the sweep: walks the tombstones to remove them (sweep.rs)"),
    ("fm_tombstones_sweep_dry_run", "the sweep's dry run: shows the tombstones it would walk"),
    ("resource_create", "a writer of new rows"),
    ("fm_resource_rows_including_deleted", "FM-internal: satisfied requests include tombstones"),
];

/// The `pub async fn` names of a source file.
fn public_async_fns(source: &str) -> Vec<&str> {
    source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("pub async fn "))
        .map(|rest| rest.split(['(', '<']).next().unwrap())
        .collect()
}

/// Every public reader of alerts and bundles: each sees the live row, and
/// none sees the same row once an operator has deleted it (nor writes
/// anything when called on it).
#[tokio::test]
async fn no_reader_sees_a_tombstone() {
    let readers = readers();
    assert_eq!(readers.len(), READER_COUNT, "update READER_COUNT with the list");

    // The list is complete: every public method of the files that read
    // alerts and bundles is either in it or exempt, with a reason.
    let sources = [
        include_str!("../../db-queries/src/datastore/alert.rs"),
        include_str!("../../db-queries/src/datastore/support_bundle.rs"),
        include_str!("../../db-queries/src/datastore/rendezvous.rs"),
        include_str!("../../db-queries/src/datastore/sweep.rs"),
    ];
    let public: BTreeSet<&str> = sources.iter().flat_map(|s| public_async_fns(s)).collect();
    let listed: BTreeSet<&str> = readers
        .iter()
        .map(|r| r.name)
        .chain(NOT_TOMBSTONE_BLIND.iter().map(|(name, _)| *name))
        .collect();
    assert_eq!(public, listed, "a public method is neither a checked reader nor exempt");
    assert_eq!(listed.len(), READER_COUNT + NOT_TOMBSTONE_BLIND.len(), "a name is listed twice");

    for reader in &readers {
        let env = TestEnv::new().await;
        let t = target(&env).await;
        assert!((reader.saw)(&env, &t).await, "{} does not see a live row", reader.name);

        reset(&env, &t).await;
        let operator = env.opctx(Role::Operator);
        assert_eq!(
            env.datastore.alert_delete(&operator, t.alert).await.unwrap(),
            Deleted::Tombstoned
        );
        let deleted = env.datastore.support_bundle_delete(&operator, t.bundle).await.unwrap();
        assert_eq!(deleted, Deleted::Tombstoned);

        let before = fm_table_checksums(env.db.url()).await;
        assert!(!(reader.saw)(&env, &t).await, "{} sees a tombstone", reader.name);
        assert_eq!(before, fm_table_checksums(env.db.url()).await, "{} wrote", reader.name);

        // The rows are tombstones, not gone: the debug readers still show
        // them, so what the reader missed was there to see.
        let viewer = env.opctx(Role::Viewer);
        let a = env.datastore.alert_get_including_deleted(&viewer, t.alert).await.unwrap();
        let b =
            env.datastore.support_bundle_get_including_deleted(&viewer, t.bundle).await.unwrap();
        assert!(a.time_deleted.is_some() && b.time_deleted.is_some());
    }
}

/// Raw alert rows with chosen creation times, below the datastore.
async fn insert_alerts(env: &TestEnv, rows: &[(Uuid, DateTime<Utc>, bool)]) {
    let mut conn = connect(env.db.url()).await;
    for &(id, time_created, dispatched) in rows {
        diesel::insert_into(alert::table)
            .values((
                alert::id.eq(id),
                alert::class.eq("queued"),
                alert::payload.eq(json!({})),
                alert::time_created.eq(time_created),
                alert::time_dispatched.eq(dispatched.then_some(time_created)),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// The dispatch queue runs oldest first, breaks ties by id, pages without
/// skipping or repeating across equal creation times, and leaves out
/// dispatched and deleted alerts.
#[tokio::test]
async fn the_dispatch_queue_pages_oldest_first() {
    let env = TestEnv::new().await;
    let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let mut rows = Vec::new();
    for s in [3, 1, 2, 2, 2, 1, 5] {
        rows.push((Uuid::new_v4(), at(s), false));
    }
    rows.push((Uuid::new_v4(), at(0), true)); // Dispatched already.
    insert_alerts(&env, &rows).await;
    // An FM-created alert, deleted: a tombstone in the middle of the queue.
    let gone = target(&env).await;
    env.datastore.alert_delete(&env.opctx(Role::Operator), gone.alert).await.unwrap();

    let mut expected: Vec<(DateTime<Utc>, Uuid)> =
        rows.iter().filter(|r| !r.2).map(|&(id, t, _)| (t, id)).collect();
    expected.sort();

    let fm = env.opctx(Role::FmExecutor);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = env.datastore.alert_dispatch_queue(&fm, after, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(DispatchQueueMarker::from(last));
        seen.extend(page.iter().map(|a| (a.time_created, a.id.into_untyped())));
    }
    assert_eq!(seen, expected);

    // Dispatching takes an alert off the queue, once.
    let first = AlertUuid::from_untyped(expected[0].1);
    let MarkDispatched::Dispatched(when) =
        env.datastore.alert_mark_dispatched(&fm, first).await.unwrap()
    else {
        panic!("the alert was queued");
    };
    assert_eq!(env.datastore.alert_get(&fm, first).await.unwrap().time_dispatched, Some(when));
    assert_eq!(
        env.datastore.alert_mark_dispatched(&fm, first).await.unwrap(),
        MarkDispatched::AlreadyDispatched(when)
    );
    let head = env.datastore.alert_dispatch_queue(&fm, None, 1).await.unwrap();
    assert_eq!(head[0].id.into_untyped(), expected[1].1);

    // Page limits are checked before anything else.
    for limit in [0, ALL + 1] {
        let err = env.datastore.alert_dispatch_queue(&fm, None, limit).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        let err = env.datastore.support_bundle_list(&fm, None, limit).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
}

/// Lists page by id without skipping or repeating, and list-by-case and
/// list-by-executor return exactly their own live rows.
#[tokio::test]
async fn lists_page_by_id_and_filter_by_owner() {
    let env = TestEnv::new().await;
    let one = target(&env).await;
    // Alerts of no case, around the FM-created one.
    let mut plain_alerts = BTreeSet::new();
    for _ in 0..5 {
        let id = AlertUuid::new_v4();
        env.datastore
            .resource_create(
                &env.opctx(Role::Operator),
                fm_db_queries::datastore::rendezvous::NewResource::Alert {
                    id,
                    class: "manual".into(),
                    payload: json!({}),
                },
            )
            .await
            .unwrap();
        plain_alerts.insert(id);
    }
    let viewer = env.opctx(Role::Viewer);
    let mut all = BTreeSet::from([one.alert]);
    all.extend(&plain_alerts);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = env.datastore.alert_list(&viewer, after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|a| a.id));
    }
    assert_eq!(seen, all.iter().copied().collect::<Vec<_>>(), "in id order, each once");

    let by_case = env.datastore.alert_list_by_case(&viewer, one.case, None, ALL).await.unwrap();
    assert_eq!(by_case.iter().map(|a| a.id).collect::<Vec<_>>(), vec![one.alert]);
    let provenance = by_case[0].provenance.expect("FM-created");
    assert_eq!(provenance.case_id, one.case);

    let mine = env
        .datastore
        .support_bundle_list_by_executor(&viewer, one.executor, None, ALL)
        .await
        .unwrap();
    assert_eq!(mine.iter().map(|b| b.id).collect::<Vec<_>>(), vec![one.bundle]);
    assert_eq!(mine[0].assigned_executor, Some(one.executor));
    let other = ExecutorUuid::new_v4();
    assert!(
        env.datastore
            .support_bundle_list_by_executor(&viewer, other, None, ALL)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Failing an executor's bundles: every live bundle of that executor that
/// is not failed yet, across several pages; nobody else's, no tombstone.
#[tokio::test]
async fn failing_a_departed_executors_bundles() {
    let env = TestEnv::new().await;
    let gone = ExecutorUuid::new_v4();
    let alive = ExecutorUuid::new_v4();
    let n = usize::try_from(FAIL_ORPHANED_PAGE_ROWS).unwrap() * 2 + 7;
    let mut conn = connect(env.db.url()).await;
    let mut rows = Vec::new();
    for i in 0..n + 20 {
        let (executor, state) = match i {
            i if i < n && i % 10 == 0 => (gone, "failed"),
            i if i < n && i % 10 == 1 => (gone, "active"),
            i if i < n => (gone, "collecting"),
            _ => (alive, "collecting"),
        };
        rows.push((
            support_bundle::id.eq(Uuid::new_v4()),
            support_bundle::reason.eq("bulk"),
            support_bundle::data_selection.eq(json!({})),
            support_bundle::state.eq(state),
            support_bundle::time_created.eq(Utc::now()),
            support_bundle::assigned_executor.eq(executor.into_untyped()),
        ));
    }
    diesel::insert_into(support_bundle::table).values(&rows).execute(&mut conn).await.unwrap();
    // And one of the departed executor's bundles is a tombstone.
    let tombstone = target(&env).await;
    diesel::update(support_bundle::table.find(tombstone.bundle.into_untyped()))
        .set(support_bundle::assigned_executor.eq(gone.into_untyped()))
        .execute(&mut conn)
        .await
        .unwrap();
    env.datastore
        .support_bundle_delete(&env.opctx(Role::Operator), tombstone.bundle)
        .await
        .unwrap();

    let fm = env.opctx(Role::FmExecutor);
    let already_failed = n.div_ceil(10);
    let failed = env.datastore.support_bundle_fail_orphaned(&fm, gone).await.unwrap();
    assert_eq!(failed, (n - already_failed) as u64);

    let states = |executor: ExecutorUuid| {
        support_bundle::table
            .filter(support_bundle::assigned_executor.eq(executor.into_untyped()))
            .filter(support_bundle::time_deleted.is_null())
            .select(support_bundle::state)
    };
    let gone_states: Vec<String> = states(gone).load(&mut conn).await.unwrap();
    assert_eq!(gone_states.len(), n);
    assert!(gone_states.iter().all(|s| s == "failed"));
    let alive_states: Vec<String> = states(alive).load(&mut conn).await.unwrap();
    assert_eq!(alive_states, vec!["collecting".to_string(); 20]);
    let tomb: String = support_bundle::table
        .find(tombstone.bundle.into_untyped())
        .select(support_bundle::state)
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(tomb, "collecting", "the tombstone is not touched");

    // Again: nothing left to fail, nothing written.
    let before = fm_table_checksums(env.db.url()).await;
    assert_eq!(env.datastore.support_bundle_fail_orphaned(&fm, gone).await.unwrap(), 0);
    assert_eq!(before, fm_table_checksums(env.db.url()).await);
}

/// Who may update: state and comment take an operator or the FM executor;
/// dispatching and failing orphans take the FM executor; a viewer may do
/// none of it, and a denied call writes nothing.
#[tokio::test]
async fn updates_check_roles_and_arguments() {
    let env = TestEnv::new().await;
    let t = target(&env).await;
    let before = fm_table_checksums(env.db.url()).await;
    let ds = &env.datastore;
    let forbidden = |r: Result<_, Error>, action: Action| match r {
        Err(Error::Forbidden { action: a, .. }) => assert_eq!(a, action),
        Ok(()) => panic!("expected Forbidden for {action:?}, got success"),
        Err(e) => panic!("expected Forbidden for {action:?}, got {e:?}"),
    };
    let viewer = env.opctx(Role::Viewer);
    let operator = env.opctx(Role::Operator);
    let state = SupportBundleState::Active;
    forbidden(
        ds.support_bundle_update_state(&viewer, t.bundle, state).await.map(drop),
        Action::UpdateResource,
    );
    forbidden(
        ds.support_bundle_update_comment(&viewer, t.bundle, None).await.map(drop),
        Action::UpdateResource,
    );
    for opctx in [&viewer, &operator] {
        forbidden(ds.alert_mark_dispatched(opctx, t.alert).await.map(drop), Action::FmWrite);
        forbidden(
            ds.support_bundle_fail_orphaned(opctx, t.executor).await.map(drop),
            Action::FmWrite,
        );
    }
    let long = "x".repeat(MAX_USER_COMMENT_BYTES + 1);
    let err = ds.support_bundle_update_comment(&operator, t.bundle, Some(long)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(before, fm_table_checksums(env.db.url()).await, "denied calls write nothing");

    // Allowed: the operator and the FM executor both update, and the
    // returned bundle is what the table now holds.
    let fm = env.opctx(Role::FmExecutor);
    let updated = ds.support_bundle_update_state(&fm, t.bundle, SupportBundleState::Failing).await;
    assert_eq!(updated.unwrap().state, SupportBundleState::Failing);
    let comment = Some("see ticket 42".to_string());
    let updated = ds.support_bundle_update_comment(&operator, t.bundle, comment.clone()).await;
    assert_eq!(updated.unwrap().user_comment, comment);
    let read = ds.support_bundle_get(&viewer, t.bundle).await.unwrap();
    assert_eq!((read.state, read.user_comment), (SupportBundleState::Failing, comment));
    let cleared = ds.support_bundle_update_comment(&operator, t.bundle, None).await.unwrap();
    assert_eq!(cleared.user_comment, None);
    let unknown = SupportBundleUuid::new_v4();
    let err = ds.support_bundle_update_state(&fm, unknown, state).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

/// The alert and bundle queries use the index they were written for (the
/// EXPLAIN audit only proves that some index is used).
#[tokio::test]
async fn readers_use_their_indexes() {
    let env = TestEnv::new().await;
    // On empty tables the planner may pick any index that can answer; plan
    // on a populated, analyzed database instead: 5,000 alerts and bundles,
    // half FM-created, a tenth of those tombstones, some alerts dispatched,
    // some bundles assigned.
    connect(env.db.url())
        .await
        .batch_execute(
            "INSERT INTO alert (id, class, payload, time_created, time_dispatched, \
                                fm_case_id, fm_sitrep_id, fm_generation, time_deleted) \
             SELECT gen_random_uuid(), 'bulk', '{}', now() - i * interval '1 second', \
                    CASE WHEN i % 3 = 0 THEN now() END, \
                    CASE WHEN i % 2 = 0 THEN gen_random_uuid() END, \
                    CASE WHEN i % 2 = 0 THEN gen_random_uuid() END, \
                    CASE WHEN i % 2 = 0 THEN 1 END, \
                    CASE WHEN i % 20 = 0 THEN now() END \
               FROM generate_series(1, 5000) AS i; \
             INSERT INTO support_bundle (id, reason, data_selection, state, time_created, \
                                         assigned_executor, fm_case_id, fm_sitrep_id, \
                                         fm_generation, time_deleted) \
             SELECT gen_random_uuid(), 'bulk', '{}', 'active', now(), \
                    CASE WHEN i % 4 = 0 THEN gen_random_uuid() END, \
                    CASE WHEN i % 2 = 0 THEN gen_random_uuid() END, \
                    CASE WHEN i % 2 = 0 THEN gen_random_uuid() END, \
                    CASE WHEN i % 2 = 0 THEN 1 END, \
                    CASE WHEN i % 20 = 0 THEN now() END \
               FROM generate_series(1, 5000) AS i; \
             ANALYZE;",
        )
        .await
        .unwrap();
    let mut conn = env.conn(Role::Viewer, Action::Read).await;
    // The alert and bundle queries, with the indexes the catalogue says
    // they use (the volume audit checks those too; here the reader-specific
    // property is that each states `time_deleted IS NULL` itself).
    let entries = catalogue();
    let expected: Vec<(&str, &[&str])> = entries
        .iter()
        .filter(|e| e.name.starts_with("alert_") || e.name.starts_with("support_bundle_"))
        .map(|e| (e.name, e.expected_indexes))
        .collect();
    // 20 queries, 6 of them keyset pages listed in both forms (first page
    // and later page).
    assert_eq!(expected.len(), 26, "alert and bundle queries in the catalogue");
    for (name, indexes) in expected {
        let entry = entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} is not catalogued"));
        let plan = entry.explain(&mut conn, &env.log).await.unwrap();
        assert_no_seq_scan(name, &plan);
        assert!(indexes.iter().all(|i| plan.contains(i)), "{name} should use {indexes:?}:\n{plan}");
        if name != "alert_get_including_deleted" && name != "support_bundle_get_including_deleted" {
            assert!(entry.sql.contains("\"time_deleted\" IS NULL"), "{name}: {}", entry.sql);
        }
    }
    // The dispatch-queue page is bounded from below by the index condition,
    // not walked from the head of the queue.
    let entry = entries.iter().find(|e| e.name == "alert_dispatch_queue_after").unwrap();
    let plan = entry.explain(&mut conn, &env.log).await.unwrap();
    assert!(plan.contains("Index Cond: (time_created >="), "{plan}");
    // A page of all live alerts comes in primary-key order, without a sort.
    let plan = explain_plan(
        &mut conn,
        &env.log,
        fm_db_queries::datastore::alert::alert_page_query(None, 100),
    )
    .await
    .unwrap();
    assert!(!plan.contains("Sort"), "{plan}");
}
