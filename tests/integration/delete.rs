//! Operator deletes: an FM-created alert or bundle becomes a tombstone that
//! blocks re-creation, anything else is removed, a second delete (or one of
//! an unknown id) is NotFound and writes nothing, and only an operator may
//! delete (docs/design.md, "Deleting a resource").

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fm_db_queries::datastore::alert::Deleted;
use fm_db_queries::datastore::rendezvous::{CreateCounts, CreateOutcome, NewResource};
use fm_db_queries::db_schema::{alert, support_bundle};
use fm_db_queries::{Action, Error, Role};
use fm_integration_tests::{TestEnv, connect, fm_table_checksums};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm_types::{AlertUuid, ExecutorUuid, ResourceType, Sitrep, SupportBundleUuid};
use serde_json::json;
use uuid::Uuid;

/// A published sitrep with one alert and one bundle request, both executed.
async fn fm_created(env: &TestEnv) -> Sitrep {
    let mut b = SitrepBuilder::new(None, ExecutorUuid::new_v4(), "delete test");
    let case = b.open_case("engine", "case");
    b.request_alert(case, "test.alert", json!({ "n": 1 })).unwrap();
    b.request_support_bundle(case, "test", json!({ "n": 1 })).unwrap();
    let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
    let fm = env.opctx(Role::FmExecutor);
    env.datastore.sitrep_insert(&fm, &sitrep).await.unwrap();
    for resource in ResourceType::ALL {
        let counts = executed(env.execute_sitrep(&sitrep, resource).await);
        assert_eq!(counts.created, 1, "{resource}: {counts:?}");
    }
    sitrep
}

fn executed(outcome: Result<CreateOutcome, Error>) -> CreateCounts {
    match outcome {
        Ok(CreateOutcome::Executed(counts)) => counts,
        other => panic!("expected the sitrep to execute, got {other:?}"),
    }
}

/// The id of `sitrep`'s only request of `resource`.
fn requested(sitrep: &Sitrep, resource: ResourceType) -> Uuid {
    let ids = sitrep.request_ids(resource);
    assert_eq!(ids.len(), 1);
    ids.into_iter().next().unwrap()
}

/// A resource made outside fault management (no provenance).
async fn plain_created(env: &TestEnv, resource: ResourceType) -> Uuid {
    let id = Uuid::new_v4();
    let new = match resource {
        ResourceType::Alert => NewResource::Alert {
            id: AlertUuid::from_untyped(id),
            class: "manual".into(),
            payload: json!({}),
        },
        ResourceType::SupportBundle => NewResource::SupportBundle {
            id: SupportBundleUuid::from_untyped(id),
            reason: "asked".into(),
            data_selection: json!({}),
        },
    };
    env.datastore.resource_create(&env.opctx(Role::Operator), new).await.unwrap();
    id
}

async fn delete(
    env: &TestEnv,
    role: Role,
    resource: ResourceType,
    id: Uuid,
) -> Result<Deleted, Error> {
    let opctx = env.opctx(role);
    match resource {
        ResourceType::Alert => {
            env.datastore.alert_delete(&opctx, AlertUuid::from_untyped(id)).await
        }
        ResourceType::SupportBundle => {
            env.datastore.support_bundle_delete(&opctx, SupportBundleUuid::from_untyped(id)).await
        }
    }
}

/// The row as the table holds it: `None` if there is no row, else its
/// `time_deleted` and `fm_case_id`.
async fn raw_row(
    env: &TestEnv,
    resource: ResourceType,
    id: Uuid,
) -> Option<(Option<DateTime<Utc>>, Option<Uuid>)> {
    let mut conn = connect(env.db.url()).await;
    match resource {
        ResourceType::Alert => {
            alert::table
                .find(id)
                .select((alert::time_deleted, alert::fm_case_id))
                .get_result(&mut conn)
                .await
        }
        ResourceType::SupportBundle => {
            support_bundle::table
                .find(id)
                .select((support_bundle::time_deleted, support_bundle::fm_case_id))
                .get_result(&mut conn)
                .await
        }
    }
    .optional()
    .unwrap()
}

#[track_caller]
fn assert_not_found(result: Result<Deleted, Error>, id: Uuid) {
    match result {
        Err(Error::NotFound { id: found, .. }) => assert_eq!(found, id.to_string()),
        other => panic!("expected NotFound for {id}, got {other:?}"),
    }
}

#[tokio::test]
async fn an_fm_created_resource_is_tombstoned_and_never_re_created() {
    let env = TestEnv::new().await;
    let sitrep = fm_created(&env).await;
    for resource in ResourceType::ALL {
        let id = requested(&sitrep, resource);
        let before_delete = chrono::Utc::now();
        assert_eq!(delete(&env, Role::Operator, resource, id).await.unwrap(), Deleted::Tombstoned);

        // The row is still there, with its provenance, marked deleted.
        let (time_deleted, case) = raw_row(&env, resource, id).await.expect("the row stays");
        let time_deleted = time_deleted.expect("time_deleted is set");
        assert!(time_deleted >= before_delete - chrono::Duration::milliseconds(1));
        assert_eq!(case, Some(sitrep.cases[0].id.into_untyped()));

        // Executing the same sitrep again does not bring it back.
        let before = fm_table_checksums(env.db.url()).await;
        let counts = executed(env.execute_sitrep(&sitrep, resource).await);
        assert_eq!(
            (counts.created, counts.already_existed, counts.deleted_not_recreated),
            (0, 0, 1),
            "{resource}"
        );
        assert_eq!(before, fm_table_checksums(env.db.url()).await, "{resource}: re-execution");

        // Deleting it again is NotFound and writes nothing.
        assert_not_found(delete(&env, Role::Operator, resource, id).await, id);
        assert_eq!(before, fm_table_checksums(env.db.url()).await, "{resource}: second delete");
    }

    // The debug readers show the tombstones, and say when they were made.
    let viewer = env.opctx(Role::Viewer);
    let a = AlertUuid::from_untyped(requested(&sitrep, ResourceType::Alert));
    let shown = env.datastore.alert_get_including_deleted(&viewer, a).await.unwrap();
    assert_eq!(shown.resource.id, a);
    assert!(shown.time_deleted.is_some());
    assert_eq!(shown.resource.provenance.unwrap().sitrep_id, sitrep.id());
    let b = SupportBundleUuid::from_untyped(requested(&sitrep, ResourceType::SupportBundle));
    let shown = env.datastore.support_bundle_get_including_deleted(&viewer, b).await.unwrap();
    assert_eq!(shown.resource.id, b);
    assert!(shown.time_deleted.is_some());
}

#[tokio::test]
async fn a_resource_fm_did_not_create_is_removed() {
    let env = TestEnv::new().await;
    // An FM-created neighbour, which must stay untouched.
    let sitrep = fm_created(&env).await;
    for resource in ResourceType::ALL {
        let id = plain_created(&env, resource).await;
        assert_eq!(delete(&env, Role::Operator, resource, id).await.unwrap(), Deleted::Removed);
        assert_eq!(raw_row(&env, resource, id).await, None, "{resource}: the row is gone");
        let neighbour = raw_row(&env, resource, requested(&sitrep, resource)).await;
        assert!(matches!(neighbour, Some((None, Some(_)))), "{resource}: {neighbour:?}");

        let before = fm_table_checksums(env.db.url()).await;
        assert_not_found(delete(&env, Role::Operator, resource, id).await, id);
        assert_eq!(before, fm_table_checksums(env.db.url()).await, "{resource}: second delete");
    }
}

#[tokio::test]
async fn deleting_an_unknown_resource_is_not_found_and_writes_nothing() {
    let env = TestEnv::new().await;
    fm_created(&env).await;
    for resource in ResourceType::ALL {
        plain_created(&env, resource).await;
    }
    let before = fm_table_checksums(env.db.url()).await;
    for resource in ResourceType::ALL {
        let id = Uuid::new_v4();
        let err = delete(&env, Role::Operator, resource, id).await.unwrap_err();
        let expected = match resource {
            ResourceType::Alert => "alert",
            ResourceType::SupportBundle => "support bundle",
        };
        assert!(matches!(&err, Error::NotFound { what, .. } if *what == expected), "{err:?}");
        assert_eq!(err.to_string(), format!("{expected} {id} not found"));
    }
    assert_eq!(before, fm_table_checksums(env.db.url()).await);
}

#[tokio::test]
async fn only_an_operator_may_delete() {
    let env = TestEnv::new().await;
    let sitrep = fm_created(&env).await;
    let mut targets = Vec::new();
    for resource in ResourceType::ALL {
        targets.push((resource, requested(&sitrep, resource)));
        targets.push((resource, plain_created(&env, resource).await));
    }
    let before = fm_table_checksums(env.db.url()).await;
    for role in [Role::Viewer, Role::FmExecutor] {
        for &(resource, id) in &targets {
            let err = delete(&env, role, resource, id).await.unwrap_err();
            assert!(
                matches!(err, Error::Forbidden { role: r, action: Action::DeleteResource, .. } if r == role),
                "{role} deleting {resource} {id}: {err:?}"
            );
        }
    }
    assert_eq!(before, fm_table_checksums(env.db.url()).await, "a denied delete writes nothing");
    for &(resource, id) in &targets {
        assert!(matches!(raw_row(&env, resource, id).await, Some((None, _))), "{resource} {id}");
    }
}
