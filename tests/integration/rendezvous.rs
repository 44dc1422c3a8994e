//! Guarded batched creation: generation guard, exactly-once creation,
//! tombstones block re-creation, statements grow with N / batch size.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fm_db_queries::datastore::rendezvous::{
    CREATE_BATCH_ROWS, CreateCounts, CreateOutcome, NewResource,
};
use fm_db_queries::db_schema::{alert, support_bundle};
use fm_db_queries::{Action, Error, Role};
use fm_integration_tests::{TestEnv, connect, fm_table_checksums};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm_types::{AlertUuid, ExecutorUuid, ResourceType, Sitrep, SupportBundleUuid};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

fn sitrep_with(parent: Option<&Sitrep>, alerts: usize, bundles: usize) -> Sitrep {
    let mut b = SitrepBuilder::new(parent, ExecutorUuid::new_v4(), "rendezvous test");
    let case = match parent.and_then(|p| <[_]>::first(&p.cases)) {
        Some(c) => c.id,
        None => b.open_case("engine", "case"),
    };
    for i in 0..alerts {
        b.request_alert(case, "test.alert", json!({ "i": i })).unwrap();
    }
    for i in 0..bundles {
        b.request_support_bundle(case, "test", json!({ "i": i })).unwrap();
    }
    b.build(&SatisfiedRequests::default()).unwrap()
}

async fn publish(env: &TestEnv, sitrep: &Sitrep) {
    env.datastore.sitrep_insert(&env.opctx(Role::FmExecutor), sitrep).await.unwrap();
}

async fn create(env: &TestEnv, sitrep: &Sitrep, resource: ResourceType) -> CreateOutcome {
    env.execute_sitrep(sitrep, resource)
        .await
        .unwrap_or_else(|e| panic!("creating {resource}s of {}: {e:#?}", sitrep.id()))
}

fn executed(outcome: CreateOutcome) -> CreateCounts {
    match outcome {
        CreateOutcome::Executed(counts) => counts,
        stale => panic!("expected the sitrep to be current, got {stale:?}"),
    }
}

async fn alert_ids(env: &TestEnv) -> BTreeSet<Uuid> {
    env.all_rows(ResourceType::Alert).await
}

async fn bundle_ids(env: &TestEnv) -> BTreeSet<Uuid> {
    env.all_rows(ResourceType::SupportBundle).await
}

#[tokio::test]
async fn creates_every_request_once_with_provenance() {
    let env = TestEnv::new().await;
    let s1 = sitrep_with(None, 3, 2);
    publish(&env, &s1).await;

    let alerts = executed(create(&env, &s1, ResourceType::Alert).await);
    assert_eq!(
        alerts,
        CreateCounts {
            requested: 3,
            created: 3,
            already_existed: 0,
            deleted_not_recreated: 0,
            refused_nil_id: 0,
            statements: 1,
            retries: 0,
        }
    );
    let bundles = executed(create(&env, &s1, ResourceType::SupportBundle).await);
    assert_eq!((bundles.requested, bundles.created), (2, 2));
    assert_eq!(alert_ids(&env).await, s1.request_ids(ResourceType::Alert));
    assert_eq!(bundle_ids(&env).await, s1.request_ids(ResourceType::SupportBundle));

    // Provenance and copied contents.
    let mut conn = connect(env.db.url()).await;
    let request = &s1.alert_requests[0];
    type AlertProvenance = (
        String,
        serde_json::Value,
        Option<Uuid>,
        Option<Uuid>,
        Option<i64>,
        Option<chrono::DateTime<chrono::Utc>>,
    );
    let (class, payload, case, sitrep, generation, deleted): AlertProvenance = alert::table
        .find(request.id.into_untyped())
        .select((
            alert::class,
            alert::payload,
            alert::fm_case_id,
            alert::fm_sitrep_id,
            alert::fm_generation,
            alert::time_deleted,
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(class, request.class);
    assert_eq!(payload, request.payload);
    assert_eq!(case, Some(request.case_id.into_untyped()));
    assert_eq!(sitrep, Some(s1.id().into_untyped()));
    assert_eq!(generation, Some(s1.metadata.alert_generation.as_i64()));
    assert_eq!(deleted, None);

    // Re-execution: everything already exists, nothing is written.
    let before = fm_table_checksums(env.db.url()).await;
    let again = executed(create(&env, &s1, ResourceType::Alert).await);
    assert_eq!((again.created, again.already_existed), (0, 3));
    let again = executed(create(&env, &s1, ResourceType::SupportBundle).await);
    assert_eq!((again.created, again.already_existed), (0, 2));
    assert_eq!(before, fm_table_checksums(env.db.url()).await);
}

#[tokio::test]
async fn a_lagging_executor_creates_nothing_of_a_changed_type() {
    let env = TestEnv::new().await;
    let s1 = sitrep_with(None, 2, 2);
    publish(&env, &s1).await;
    // S2 adds an alert request; its bundle set is unchanged.
    let s2 = sitrep_with(Some(&s1), 1, 0);
    assert!(s2.metadata.alert_generation > s1.metadata.alert_generation);
    assert_eq!(s2.metadata.support_bundle_generation, s1.metadata.support_bundle_generation);
    publish(&env, &s2).await;

    // The executor still holding S1: alerts are stale and nothing is made...
    match create(&env, &s1, ResourceType::Alert).await {
        CreateOutcome::Stale { sitrep_generation, latest_generation, counts } => {
            assert_eq!(sitrep_generation, s1.metadata.alert_generation);
            assert_eq!(latest_generation, Some(s2.metadata.alert_generation));
            assert_eq!((counts.created, counts.statements), (0, 1));
        }
        other => panic!("expected stale, got {other:?}"),
    }
    assert!(alert_ids(&env).await.is_empty());
    // ... while its bundles, whose generation did not change, execute.
    let bundles = executed(create(&env, &s1, ResourceType::SupportBundle).await);
    assert_eq!(bundles.created, 2);
    assert_eq!(bundle_ids(&env).await, s1.request_ids(ResourceType::SupportBundle));

    // The executor holding S2 creates all three alerts.
    let alerts = executed(create(&env, &s2, ResourceType::Alert).await);
    assert_eq!(alerts.created, 3);
    assert_eq!(alert_ids(&env).await, s2.request_ids(ResourceType::Alert));
}

#[tokio::test]
async fn a_tombstone_blocks_re_creation() {
    let env = TestEnv::new().await;
    let s1 = sitrep_with(None, 3, 1);
    publish(&env, &s1).await;
    executed(create(&env, &s1, ResourceType::Alert).await);
    executed(create(&env, &s1, ResourceType::SupportBundle).await);

    // An operator deleted one alert and the bundle (tombstones).
    let gone_alert = s1.alert_requests[1].id.into_untyped();
    let gone_bundle = s1.support_bundle_requests[0].id.into_untyped();
    let mut conn = connect(env.db.url()).await;
    diesel::update(alert::table.find(gone_alert))
        .set(alert::time_deleted.eq(Some(chrono::Utc::now())))
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::update(support_bundle::table.find(gone_bundle))
        .set(support_bundle::time_deleted.eq(Some(chrono::Utc::now())))
        .execute(&mut conn)
        .await
        .unwrap();

    let before = fm_table_checksums(env.db.url()).await;
    let alerts = executed(create(&env, &s1, ResourceType::Alert).await);
    assert_eq!((alerts.created, alerts.already_existed, alerts.deleted_not_recreated), (0, 2, 1));
    let bundles = executed(create(&env, &s1, ResourceType::SupportBundle).await);
    assert_eq!((bundles.created, bundles.deleted_not_recreated), (0, 1));
    assert_eq!(before, fm_table_checksums(env.db.url()).await, "the tombstones are untouched");
    let still_deleted: Option<chrono::DateTime<chrono::Utc>> = alert::table
        .find(gone_alert)
        .select(alert::time_deleted)
        .get_result(&mut conn)
        .await
        .unwrap();
    assert!(still_deleted.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_executors_create_each_resource_exactly_once() {
    let env = Arc::new(TestEnv::new().await);
    let s1 = sitrep_with(None, 3 * CREATE_BATCH_ROWS / 2, 500);
    publish(&env, &s1).await;
    let s1 = Arc::new(s1);

    let mut tasks = Vec::new();
    for _ in 0..3 {
        for resource in ResourceType::ALL {
            let env = Arc::clone(&env);
            let s1 = Arc::clone(&s1);
            tasks.push(tokio::spawn(async move {
                (resource, executed(create(&env, &s1, resource).await))
            }));
        }
    }
    let mut created = [0, 0];
    for task in tasks {
        let (resource, counts) = task.await.unwrap();
        assert_eq!(counts.created + counts.already_existed, counts.requested, "{counts:?}");
        created[resource as usize] += counts.created;
    }
    assert_eq!(created, [s1.alert_requests.len() as u64, 500], "each created exactly once");
    assert_eq!(alert_ids(&env).await, s1.request_ids(ResourceType::Alert));
    assert_eq!(bundle_ids(&env).await, s1.request_ids(ResourceType::SupportBundle));
}

/// One statement per page: the statement count follows N / page size (a
/// last page that comes back full takes one more statement to find that
/// nothing follows it).
#[tokio::test]
async fn statements_grow_with_batches_not_requests() {
    let env = TestEnv::new().await;
    let mut parent: Option<Sitrep> = None;
    for n in [1, CREATE_BATCH_ROWS, CREATE_BATCH_ROWS + 1, 5 * CREATE_BATCH_ROWS / 2] {
        // Each sitrep withdraws nothing and adds requests up to n in total.
        let have = parent.as_ref().map_or(0, |p| p.alert_requests.len());
        let sitrep = sitrep_with(parent.as_ref(), n - have, 0);
        publish(&env, &sitrep).await;
        let counts = executed(create(&env, &sitrep, ResourceType::Alert).await);
        assert_eq!(counts.requested, n as u64);
        assert_eq!(counts.statements, (n / CREATE_BATCH_ROWS + 1) as u64, "n = {n}");
        assert_eq!(counts.created, (n - have) as u64);
        parent = Some(sitrep);
    }
}

#[tokio::test]
async fn plain_creation_has_no_provenance_and_needs_a_role() {
    let env = TestEnv::new().await;
    let id = AlertUuid::new_v4();
    let bundle = SupportBundleUuid::new_v4();
    env.datastore
        .resource_create(
            &env.opctx(Role::Operator),
            NewResource::Alert { id, class: "manual".into(), payload: json!({ "by": "ops" }) },
        )
        .await
        .unwrap();
    env.datastore
        .resource_create(
            &env.opctx(Role::Operator),
            NewResource::SupportBundle {
                id: bundle,
                reason: "asked".into(),
                data_selection: json!({}),
            },
        )
        .await
        .unwrap();
    let mut conn = connect(env.db.url()).await;
    let provenance: (Option<Uuid>, Option<Uuid>, Option<i64>) = alert::table
        .find(id.into_untyped())
        .select((alert::fm_case_id, alert::fm_sitrep_id, alert::fm_generation))
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(provenance, (None, None, None));
    assert_eq!(bundle_ids(&env).await, BTreeSet::from([bundle.into_untyped()]));

    let err = env
        .datastore
        .resource_create(
            &env.opctx(Role::Viewer),
            NewResource::Alert { id: AlertUuid::new_v4(), class: "x".into(), payload: json!({}) },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { action: Action::CreateResource, .. }), "{err:?}");
    // And a viewer cannot execute a sitrep.
    let s1 = sitrep_with(None, 1, 0);
    publish(&env, &s1).await;
    let err = env
        .datastore
        .fm_resources_create(
            &env.opctx(Role::Viewer),
            s1.id(),
            s1.metadata.generation(ResourceType::Alert),
            ResourceType::Alert,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { action: Action::FmWrite, .. }), "{err:?}");
}

/// A publish notifies LISTENers on PostgreSQL when it commits, with the new
/// version as payload.
#[tokio::test]
async fn publishing_notifies_listeners() {
    use futures::StreamExt;
    let env = TestEnv::new().await;
    assert!(env.datastore.notifications_supported());
    let (client, mut connection) =
        tokio_postgres::connect(env.db.url(), tokio_postgres::NoTls).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
            }
        }
    });
    client
        .batch_execute(&format!(
            "LISTEN {}",
            fm_db_queries::datastore::sitrep::insert::SITREP_NOTIFY_CHANNEL
        ))
        .await
        .unwrap();
    let s1 = sitrep_with(None, 1, 0);
    publish(&env, &s1).await;
    let (channel, payload) =
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
    assert_eq!((channel.as_str(), payload.as_str()), ("fm_sitrep_published", "1"));

    // A rejected publish notifies nobody: the notification is part of the
    // transaction.
    let again = sitrep_with(None, 1, 0);
    assert!(env.datastore.sitrep_insert(&env.opctx(Role::FmExecutor), &again).await.is_err());
    let s2 = sitrep_with(Some(&s1), 0, 1);
    publish(&env, &s2).await;
    let (_, payload) =
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
    assert_eq!(payload, "2", "the next notification is the next successful publish");
}
