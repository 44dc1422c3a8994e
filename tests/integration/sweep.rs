//! The tombstone sweep: what it keeps, what it removes, and that it always
//! makes progress.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fm_db_queries::datastore::rendezvous::{CreateOutcome, NewResource};
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use fm_db_queries::datastore::sweep::SweepCounts;
use fm_db_queries::db_schema::{alert, fm_sitrep, support_bundle};
use fm_db_queries::{Error, Role};
use fm_integration_tests::{TestEnv, connect};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm_types::{
    AlertUuid, ExecutorUuid, ResourceType, Sitrep, SitrepUuid, SupportBundleUuid,
};
use serde_json::json;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Builds and publishes the next sitrep: adds `add` requests of `resource`
/// to the first case and withdraws the listed ones.
async fn next(
    env: &TestEnv,
    parent: Option<&Sitrep>,
    resource: ResourceType,
    add: usize,
    withdraw: &[Uuid],
) -> Sitrep {
    let mut b = SitrepBuilder::new(parent, ExecutorUuid::new_v4(), "sweep test");
    let case = match parent.and_then(|p| <[_]>::first(&p.cases)) {
        Some(c) => c.id,
        None => b.open_case("engine", "case"),
    };
    for i in 0..add {
        match resource {
            ResourceType::Alert => b.request_alert(case, "a", json!({ "i": i })).map(|_| ()),
            ResourceType::SupportBundle => {
                b.request_support_bundle(case, "b", json!({ "i": i })).map(|_| ())
            }
        }
        .unwrap();
    }
    for id in withdraw {
        match resource {
            ResourceType::Alert => b.withdraw_alert_request(AlertUuid::from_untyped(*id)),
            ResourceType::SupportBundle => {
                b.withdraw_support_bundle_request(SupportBundleUuid::from_untyped(*id))
            }
        }
        .unwrap();
    }
    let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
    env.datastore.sitrep_insert(&env.opctx(Role::FmExecutor), &sitrep).await.unwrap();
    sitrep
}

async fn execute(env: &TestEnv, sitrep: &Sitrep, resource: ResourceType) {
    let outcome = env.execute_sitrep(sitrep, resource).await.unwrap();
    assert!(matches!(outcome, CreateOutcome::Executed(_)), "{outcome:?}");
}

async fn sweep(
    env: &TestEnv,
    sitrep: SitrepUuid,
    resource: ResourceType,
    page: Option<i64>,
) -> SweepCounts {
    env.datastore
        .fm_tombstones_sweep(&env.opctx(Role::FmExecutor), sitrep, resource, page)
        .await
        .unwrap()
}

/// Marks rows deleted, as an operator's delete of an FM-created resource
/// does. (The delete API is tested on its own; here only the sweep is.)
async fn tombstone(env: &TestEnv, resource: ResourceType, ids: &[Uuid]) {
    let mut conn = connect(env.db.url()).await;
    let now = Some(chrono::Utc::now());
    let ids = ids.to_vec();
    match resource {
        ResourceType::Alert => diesel::update(alert::table.filter(alert::id.eq_any(ids)))
            .set(alert::time_deleted.eq(now))
            .execute(&mut conn)
            .await
            .unwrap(),
        ResourceType::SupportBundle => {
            diesel::update(support_bundle::table.filter(support_bundle::id.eq_any(ids)))
                .set(support_bundle::time_deleted.eq(now))
                .execute(&mut conn)
                .await
                .unwrap()
        }
    };
}

/// Every row of the type's table (live or not).
async fn rows(env: &TestEnv, resource: ResourceType) -> BTreeSet<Uuid> {
    env.all_rows(resource).await
}

fn ids_of(sitrep: &Sitrep, resource: ResourceType) -> Vec<Uuid> {
    sitrep.request_ids(resource).into_iter().collect()
}

#[tokio::test]
async fn keeps_requested_tombstones_and_removes_them_once_dropped() {
    for resource in ResourceType::ALL {
        let env = TestEnv::new().await;
        let s1 = next(&env, None, resource, 3, &[]).await;
        execute(&env, &s1, resource).await;
        let ids = ids_of(&s1, resource);
        let deleted = ids[0];
        tombstone(&env, resource, &[deleted]).await;

        // S1 still requests it: kept.
        let counts = sweep(&env, s1.id(), resource, None).await;
        assert_eq!(
            counts,
            SweepCounts {
                pages: 1,
                tombstones_examined: 1,
                retained_still_requested: 1,
                ..Default::default()
            },
            "{resource}"
        );
        assert!(rows(&env, resource).await.contains(&deleted));

        // S2 drops the request (generation bumps): a sweep driven by S2
        // removes it; the live rows stay.
        let s2 = next(&env, Some(&s1), resource, 0, &[deleted]).await;
        let counts = sweep(&env, s2.id(), resource, None).await;
        assert_eq!((counts.tombstones_examined, counts.hard_deleted), (1, 1), "{resource}");
        let expected: BTreeSet<Uuid> = ids[1..].iter().copied().collect();
        assert_eq!(rows(&env, resource).await, expected, "{resource}");

        // And a sweep driven by S1 afterwards has nothing to do.
        assert_eq!(sweep(&env, s1.id(), resource, None).await.tombstones_examined, 0);
    }
}

#[tokio::test]
async fn a_lagging_executor_keeps_tombstones_too_new_for_its_sitrep() {
    for resource in ResourceType::ALL {
        let env = TestEnv::new().await;
        // S1 requests nothing of this type; S2 requests X, created at
        // generation 2, then deleted by an operator.
        let s1 = next(&env, None, resource, 0, &[]).await;
        let s2 = next(&env, Some(&s1), resource, 1, &[]).await;
        execute(&env, &s2, resource).await;
        let x = ids_of(&s2, resource)[0];
        tombstone(&env, resource, &[x]).await;

        // An executor still holding S1 (generation 1) must keep X: it
        // cannot tell whether X is still wanted.
        let counts = sweep(&env, s1.id(), resource, None).await;
        assert_eq!(
            (counts.tombstones_examined, counts.retained_too_new, counts.hard_deleted),
            (1, 1, 0),
            "{resource}"
        );

        // A tombstone whose generation equals the executing sitrep's, and
        // that the sitrep does not request, is kept as well. (Publishing
        // never produces one; it is made by hand to show the comparison is
        // strict.)
        let mut conn = connect(env.db.url()).await;
        let equal = Uuid::new_v4();
        let g1 = s1.metadata.generation(resource).as_i64();
        let case = s2.cases[0].id.into_untyped();
        match resource {
            ResourceType::Alert => diesel::insert_into(alert::table)
                .values((
                    alert::id.eq(equal),
                    alert::class.eq("x"),
                    alert::payload.eq(json!({})),
                    alert::time_created.eq(chrono::Utc::now()),
                    alert::fm_case_id.eq(Some(case)),
                    alert::fm_sitrep_id.eq(Some(s1.id().into_untyped())),
                    alert::fm_generation.eq(Some(g1)),
                    alert::time_deleted.eq(Some(chrono::Utc::now())),
                ))
                .execute(&mut conn)
                .await
                .unwrap(),
            ResourceType::SupportBundle => diesel::insert_into(support_bundle::table)
                .values((
                    support_bundle::id.eq(equal),
                    support_bundle::reason.eq("x"),
                    support_bundle::data_selection.eq(json!({})),
                    support_bundle::state.eq("collecting"),
                    support_bundle::time_created.eq(chrono::Utc::now()),
                    support_bundle::fm_case_id.eq(Some(case)),
                    support_bundle::fm_sitrep_id.eq(Some(s1.id().into_untyped())),
                    support_bundle::fm_generation.eq(Some(g1)),
                    support_bundle::time_deleted.eq(Some(chrono::Utc::now())),
                ))
                .execute(&mut conn)
                .await
                .unwrap(),
        };
        let counts = sweep(&env, s1.id(), resource, None).await;
        assert_eq!((counts.retained_too_new, counts.hard_deleted), (2, 0), "{resource}");
        assert!(rows(&env, resource).await.is_superset(&[x, equal].into_iter().collect()));
    }
}

#[tokio::test]
async fn a_pruned_or_never_current_sitrep_deletes_nothing() {
    for resource in ResourceType::ALL {
        let env = TestEnv::new().await;
        let s1 = next(&env, None, resource, 2, &[]).await;
        execute(&env, &s1, resource).await;
        let ids = ids_of(&s1, resource);
        let s2 = next(&env, Some(&s1), resource, 0, &ids).await;
        let s3 = next(&env, Some(&s2), resource, 1, &[]).await;
        tombstone(&env, resource, &ids).await;

        // S1 and S2 are pruned (keep 2 of 4 after one more publish).
        let s4 = next(&env, Some(&s3), resource, 0, &[]).await;
        let report = env
            .datastore
            .sitrep_history_prune(
                &env.opctx(Role::FmExecutor),
                RetentionPolicy { keep: 2, archive_keep: 10 },
            )
            .await
            .unwrap();
        assert_eq!(report.pruned.len(), 2);
        let before = rows(&env, resource).await;
        let counts = sweep(&env, s2.id(), resource, None).await;
        assert_eq!((counts.hard_deleted, counts.retained_sitrep_missing), (0, 2), "{resource}");
        assert_eq!(rows(&env, resource).await, before);

        // A sitrep row that never became current (no history entry).
        let mut conn = connect(env.db.url()).await;
        let ghost = SitrepUuid::new_v4();
        diesel::insert_into(fm_sitrep::table)
            .values((
                fm_sitrep::id.eq(ghost.into_untyped()),
                fm_sitrep::parent_sitrep_id.eq(Some(s4.id().into_untyped())),
                fm_sitrep::creator_id.eq(Uuid::new_v4()),
                fm_sitrep::time_created.eq(chrono::Utc::now()),
                fm_sitrep::comment.eq("never current"),
                fm_sitrep::alert_generation.eq(1_000),
                fm_sitrep::support_bundle_generation.eq(1_000),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
        let counts = sweep(&env, ghost, resource, None).await;
        assert_eq!((counts.hard_deleted, counts.retained_sitrep_missing), (0, 2), "{resource}");
        // An unknown sitrep id, likewise.
        let counts = sweep(&env, SitrepUuid::new_v4(), resource, None).await;
        assert_eq!(counts.hard_deleted, 0);
        assert_eq!(rows(&env, resource).await, before);

        // The current sitrep removes them.
        let counts = sweep(&env, s4.id(), resource, None).await;
        assert_eq!(counts.hard_deleted, 2, "{resource}");
    }
}

#[tokio::test]
async fn pages_of_retained_tombstones_do_not_stop_the_sweep() {
    for resource in ResourceType::ALL {
        let env = TestEnv::new().await;
        // Three FM-created tombstones that S1 still requests...
        let s1 = next(&env, None, resource, 3, &[]).await;
        execute(&env, &s1, resource).await;
        let requested = ids_of(&s1, resource);
        tombstone(&env, resource, &requested).await;
        // ... and three non-FM tombstones with ids after all of them, which
        // any sitrep may remove.
        let eligible: Vec<Uuid> = (0..3).map(|k| Uuid::from_u128(u128::MAX - k)).collect();
        for id in &eligible {
            let new = match resource {
                ResourceType::Alert => NewResource::Alert {
                    id: AlertUuid::from_untyped(*id),
                    class: "manual".into(),
                    payload: json!({}),
                },
                ResourceType::SupportBundle => NewResource::SupportBundle {
                    id: SupportBundleUuid::from_untyped(*id),
                    reason: "manual".into(),
                    data_selection: json!({}),
                },
            };
            env.datastore.resource_create(&env.opctx(Role::Operator), new).await.unwrap();
        }
        tombstone(&env, resource, &eligible).await;
        assert!(requested.iter().all(|r| eligible.iter().all(|e| r < e)));

        // Pages of 2: the first page deletes nothing, yet the sweep goes on.
        // Three full pages, then an empty one that shows the end.
        let counts = sweep(&env, s1.id(), resource, Some(2)).await;
        assert_eq!(
            counts,
            SweepCounts {
                pages: 4,
                tombstones_examined: 6,
                hard_deleted: 3,
                retained_still_requested: 3,
                ..Default::default()
            },
            "{resource}"
        );
        assert_eq!(rows(&env, resource).await, requested.iter().copied().collect());
    }
}

#[tokio::test]
async fn only_the_fm_executor_sweeps() {
    let env = TestEnv::new().await;
    for role in [Role::Viewer, Role::Operator] {
        let err = env
            .datastore
            .fm_tombstones_sweep(&env.opctx(role), SitrepUuid::new_v4(), ResourceType::Alert, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    }
    let err = env
        .datastore
        .fm_tombstones_sweep(
            &env.opctx(Role::FmExecutor),
            SitrepUuid::new_v4(),
            ResourceType::Alert,
            Some(0),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

/// The dry run (`fm_tombstones_sweep_dry_run`, what `fmdb tombstones`
/// shows) against the sweep it predicts: tombstones of every reason, then
/// the real sweep driven by the same sitrep. The predicted counts are the
/// sweep's and the predicted ids are exactly the ids that went.
#[tokio::test]
async fn the_dry_run_predicts_the_sweep() {
    use fm_db_queries::datastore::sweep::SweepReason;
    for resource in ResourceType::ALL {
        let env = TestEnv::new().await;
        // S1 creates 3; S2 withdraws 2 of them (eligible once tombstoned)
        // and adds 2; a lagging executor still holding S1 would see S2's
        // creations as too new.
        let s1 = next(&env, None, resource, 3, &[]).await;
        execute(&env, &s1, resource).await;
        let first = ids_of(&s1, resource);
        let s2 = next(&env, Some(&s1), resource, 2, &first[..2]).await;
        execute(&env, &s2, resource).await;
        let all: Vec<Uuid> = rows(&env, resource).await.into_iter().collect();
        tombstone(&env, resource, &all).await;

        for (driver, page) in [
            (s1.id(), Some(2)),
            (s2.id(), Some(2)),
            (s2.id(), None),
            (SitrepUuid::new_v4(), Some(2)),
        ] {
            let dry = env
                .datastore
                .fm_tombstones_sweep_dry_run(&env.opctx(Role::Viewer), driver, resource, page, 100)
                .await
                .unwrap();
            assert!(!dry.tombstones_cut);
            let predicted: BTreeSet<Uuid> = dry
                .tombstones
                .iter()
                .filter(|t| t.reason == SweepReason::Eligible)
                .map(|t| t.id)
                .collect();
            let before = rows(&env, resource).await;
            let counts = sweep(&env, driver, resource, page).await;
            let after = rows(&env, resource).await;
            let gone: BTreeSet<Uuid> = before.difference(&after).copied().collect();
            assert_eq!(dry.counts, SweepCounts { retries: 0, ..counts }, "{resource}");
            assert_eq!(predicted, gone, "{resource}");
            assert_eq!(dry.counts.hard_deleted, gone.len() as u64, "{resource}");
        }
    }
}

/// Every reason shows up, with the counts the design gives.
#[tokio::test]
async fn the_dry_run_gives_each_tombstone_its_reason() {
    use fm_db_queries::datastore::sweep::SweepReason;
    for resource in ResourceType::ALL {
        let env = TestEnv::new().await;
        let s1 = next(&env, None, resource, 3, &[]).await;
        execute(&env, &s1, resource).await;
        let first = ids_of(&s1, resource);
        // S2 withdraws first[0] and adds one: driven by S2, first[0] is
        // eligible and first[1..] still requested; driven by S1, the new one
        // is too new.
        let s2 = next(&env, Some(&s1), resource, 1, &first[..1]).await;
        execute(&env, &s2, resource).await;
        let all: Vec<Uuid> = rows(&env, resource).await.into_iter().collect();
        tombstone(&env, resource, &all).await;
        let env_ref = &env;
        let dry_run = |driver| async move {
            env_ref
                .datastore
                .fm_tombstones_sweep_dry_run(
                    &env_ref.opctx(Role::Viewer),
                    driver,
                    resource,
                    Some(1),
                    100,
                )
                .await
                .unwrap()
        };
        let by_s1 = dry_run(s1.id()).await;
        assert_eq!(
            (
                by_s1.counts.hard_deleted,
                by_s1.counts.retained_still_requested,
                by_s1.counts.retained_too_new,
                by_s1.counts.retained_sitrep_missing
            ),
            (0, 3, 1, 0),
            "{resource}"
        );
        let by_s2 = dry_run(s2.id()).await;
        assert_eq!(
            (
                by_s2.counts.hard_deleted,
                by_s2.counts.retained_still_requested,
                by_s2.counts.retained_too_new
            ),
            (1, 3, 0),
            "{resource}"
        );
        let eligible: Vec<Uuid> = by_s2
            .tombstones
            .iter()
            .filter(|t| t.reason == SweepReason::Eligible)
            .map(|t| t.id)
            .collect();
        assert_eq!(eligible, vec![first[0]], "{resource}");
        // A sitrep that was never committed: one page examined, all kept.
        let missing = dry_run(SitrepUuid::new_v4()).await;
        assert_eq!(
            (
                missing.counts.pages,
                missing.counts.retained_sitrep_missing,
                missing.counts.hard_deleted
            ),
            (1, 1, 0),
            "{resource}"
        );
        assert!(missing.tombstones.iter().all(|t| t.reason == SweepReason::SitrepMissing));
        // Counts only: no rows kept, but the counts are complete.
        let counts_only = env
            .datastore
            .fm_tombstones_sweep_dry_run(&env.opctx(Role::Viewer), s2.id(), resource, None, 0)
            .await
            .unwrap();
        assert!(counts_only.tombstones.is_empty() && counts_only.tombstones_cut);
        assert_eq!(counts_only.counts.hard_deleted, 1);
        // Nothing was deleted by any of it.
        assert_eq!(rows(&env, resource).await.len(), 4, "{resource}");
    }
}
