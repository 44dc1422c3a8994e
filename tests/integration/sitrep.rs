//! Publishing and reading sitreps: the parent compare-and-swap, the
//! generation rule, fresh ids, all-or-nothing writes, large sitreps.

use fm_db_queries::datastore::sitrep::read::Direction;
use fm_db_queries::{Action, Error, Role};
use fm_integration_tests::sitreps::{child, first_sitrep, unchanged_child};
use fm_integration_tests::{TestEnv, fm_table_checksums};
use nexus_fm::builder::SatisfiedRequests;
use nexus_fm_types::{
    AlertRequest, AlertUuid, Generation, ResourceType, Sitrep, SitrepUuid, SitrepValidationError,
    SitrepVersion, SupportBundleUuid,
};
use serde_json::json;
use std::sync::Arc;

/// Publishes and asserts the version.
async fn publish(env: &TestEnv, sitrep: &Sitrep, version: i64) {
    let published = env
        .datastore
        .sitrep_insert(&env.opctx(Role::FmExecutor), sitrep)
        .await
        .unwrap_or_else(|e| panic!("publishing {}: {e:#?}", sitrep.id()));
    assert_eq!(published.sitrep_id, sitrep.id());
    assert_eq!(published.version, SitrepVersion::try_new(version).unwrap());
}

#[tokio::test]
async fn first_is_v1_and_its_child_v2_and_both_read_back_equal() {
    let env = TestEnv::new().await;
    let viewer = env.opctx(Role::Viewer);
    assert_eq!(env.datastore.sitrep_current_version(&viewer).await.unwrap(), None);
    assert_eq!(env.datastore.sitrep_read_current(&viewer).await.unwrap(), None);

    let s1 = first_sitrep(3, 2);
    publish(&env, &s1, 1).await;
    let mut b = child(&s1);
    let case = b.open_case("disk", "disk 3 failing");
    b.request_alert(case, "hw.disk.fail", json!({ "disk": 3 })).unwrap();
    let s2 = b.build(&SatisfiedRequests::default()).unwrap();
    publish(&env, &s2, 2).await;

    assert_eq!(env.datastore.sitrep_read(&viewer, s1.id()).await.unwrap(), s1);
    assert_eq!(env.datastore.sitrep_read(&viewer, s2.id()).await.unwrap(), s2);
    let (version, current) = env.datastore.sitrep_read_current(&viewer).await.unwrap().unwrap();
    assert_eq!((version.as_i64(), &current), (2, &s2));
    let entry = env.datastore.sitrep_current_version(&viewer).await.unwrap().unwrap();
    assert_eq!((entry.version.as_i64(), entry.sitrep_id), (2, s2.id()));

    let missing = SitrepUuid::new_v4();
    let err = env.datastore.sitrep_read(&viewer, missing).await.unwrap_err();
    assert!(
        matches!(err, Error::NotFound { what: "sitrep", ref id } if *id == missing.to_string())
    );
}

#[tokio::test]
async fn stale_unknown_and_missing_parents_are_not_current() {
    let env = TestEnv::new().await;
    let s1 = first_sitrep(1, 1);
    publish(&env, &s1, 1).await;
    let s2 = unchanged_child(&s1);
    publish(&env, &s2, 2).await;

    // A second child of s1: its parent is no longer current.
    let stale = unchanged_child(&s1);
    let err = env.publish_rejected(&stale).await;
    assert!(
        matches!(err, Error::ParentNotCurrent { parent: Some(p), current: Some(c), .. }
            if p == s1.id() && c == s2.id()),
        "{err:?}"
    );

    // A parent that never existed.
    let mut unknown = unchanged_child(&s2);
    unknown.metadata.parent_sitrep_id = Some(SitrepUuid::new_v4());
    let err = env.publish_rejected(&unknown).await;
    assert!(matches!(err, Error::ParentNotCurrent { current: Some(c), .. } if c == s2.id()));

    // No parent although the history is not empty.
    let orphan = first_sitrep(1, 0);
    let err = env.publish_rejected(&orphan).await;
    assert!(matches!(err, Error::ParentNotCurrent { parent: None, .. }), "{err:?}");
    assert!(err.to_string().contains("was built on no parent"), "{err}");

    // Re-publishing the current sitrep itself: its parent is not current.
    let err = env.publish_rejected(&s2).await;
    assert!(matches!(err, Error::ParentNotCurrent { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_publishers_from_one_parent_give_one_winner() {
    let env = Arc::new(TestEnv::new().await);
    let mut parent = first_sitrep(2, 2);
    publish(&env, &parent, 1).await;
    for round in 0..8 {
        let mut a = child(&parent);
        let case = a.open_case("race", "a");
        a.request_alert(case, "race.a", json!({ "round": round })).unwrap();
        let a = a.build(&SatisfiedRequests::default()).unwrap();
        let b = unchanged_child(&parent);

        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let spawn = |sitrep: Sitrep| {
            let env = Arc::clone(&env);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let opctx = env.opctx(Role::FmExecutor);
                barrier.wait().await;
                env.datastore.sitrep_insert(&opctx, &sitrep).await
            })
        };
        let (ra, rb) = tokio::join!(spawn(a.clone()), spawn(b.clone()));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let (winner, loser_err) = match (ra, rb) {
            (Ok(p), Err(e)) => {
                assert_eq!(p.sitrep_id, a.id());
                (a, e)
            }
            (Err(e), Ok(p)) => {
                assert_eq!(p.sitrep_id, b.id());
                (b, e)
            }
            other => panic!("round {round}: expected one winner, got {other:?}"),
        };
        assert!(
            matches!(loser_err, Error::ParentNotCurrent { parent: Some(p), .. } if p == parent.id()),
            "round {round}: {loser_err:?}"
        );
        let viewer = env.opctx(Role::Viewer);
        let entry = env.datastore.sitrep_current_version(&viewer).await.unwrap().unwrap();
        assert_eq!((entry.version.as_i64(), entry.sitrep_id), (round + 2, winner.id()));
        parent = winner;
    }
}

#[tokio::test]
async fn generations_follow_the_request_sets_per_type() {
    let env = TestEnv::new().await;
    let s1 = first_sitrep(2, 2);
    assert_eq!(
        (s1.metadata.alert_generation.as_i64(), s1.metadata.support_bundle_generation.as_i64()),
        (1, 1)
    );
    publish(&env, &s1, 1).await;

    // Unchanged request sets keep both generations.
    let s2 = unchanged_child(&s1);
    assert_eq!(s2.metadata.alert_generation, s1.metadata.alert_generation);
    assert_eq!(s2.metadata.support_bundle_generation, s1.metadata.support_bundle_generation);
    publish(&env, &s2, 2).await;

    // One more alert request: only the alert generation moves.
    let mut b = child(&s2);
    b.request_alert(s2.cases[0].id, "hw.fan", json!({})).unwrap();
    let s3 = b.build(&SatisfiedRequests::default()).unwrap();
    assert_eq!(s3.metadata.alert_generation.as_i64(), 2);
    assert_eq!(s3.metadata.support_bundle_generation.as_i64(), 1);
    publish(&env, &s3, 3).await;

    // One bundle request fewer: only the bundle generation moves.
    let mut b = child(&s3);
    b.withdraw_support_bundle_request(s3.support_bundle_requests[0].id).unwrap();
    let s4 = b.build(&SatisfiedRequests::default()).unwrap();
    assert_eq!(s4.metadata.alert_generation.as_i64(), 2);
    assert_eq!(s4.metadata.support_bundle_generation.as_i64(), 2);
    publish(&env, &s4, 4).await;

    // One alert request fewer: only the alert generation moves.
    let mut b = child(&s4);
    b.withdraw_alert_request(s4.alert_requests[0].id).unwrap();
    let s5 = b.build(&SatisfiedRequests::default()).unwrap();
    assert_eq!(s5.metadata.alert_generation.as_i64(), 3);
    assert_eq!(s5.metadata.support_bundle_generation.as_i64(), 2);
    publish(&env, &s5, 5).await;

    // One more bundle request: only the bundle generation moves.
    let mut b = child(&s5);
    b.request_support_bundle(s5.cases[0].id, "more", json!({})).unwrap();
    let s6 = b.build(&SatisfiedRequests::default()).unwrap();
    assert_eq!(s6.metadata.alert_generation.as_i64(), 3);
    assert_eq!(s6.metadata.support_bundle_generation.as_i64(), 3);
    publish(&env, &s6, 6).await;

    // One alert request swapped for another (same size, different set), one
    // bundle fewer: both move, by exactly one.
    let mut b = child(&s6);
    b.withdraw_alert_request(s6.alert_requests[0].id).unwrap();
    b.request_alert(s6.cases[0].id, "hw.swap", json!({})).unwrap();
    b.withdraw_support_bundle_request(s6.support_bundle_requests[0].id).unwrap();
    let s7 = b.build(&SatisfiedRequests::default()).unwrap();
    assert_eq!(s7.alert_requests.len(), s6.alert_requests.len());
    assert_eq!(s7.metadata.alert_generation.as_i64(), 4);
    assert_eq!(s7.metadata.support_bundle_generation.as_i64(), 4);
    publish(&env, &s7, 7).await;

    let viewer = env.opctx(Role::Viewer);
    assert_eq!(env.datastore.sitrep_read(&viewer, s7.id()).await.unwrap(), s7);
}

#[tokio::test]
async fn a_generation_that_breaks_the_rule_is_rejected() {
    let env = TestEnv::new().await;
    let s1 = first_sitrep(1, 1);

    // The first sitrep must have generation 1.
    let mut bad = s1.clone();
    bad.metadata.alert_generation = Generation::try_new(2).unwrap();
    let err = env.publish_rejected(&bad).await;
    assert!(
        matches!(err, Error::GenerationMismatch { resource: ResourceType::Alert, expected, found, .. }
            if expected.as_i64() == 1 && found.as_i64() == 2),
        "{err:?}"
    );
    publish(&env, &s1, 1).await;

    // Unchanged set but a bumped generation.
    let mut bad = unchanged_child(&s1);
    bad.metadata.support_bundle_generation = Generation::try_new(2).unwrap();
    let err = env.publish_rejected(&bad).await;
    assert!(
        matches!(
            err,
            Error::GenerationMismatch {
                resource: ResourceType::SupportBundle,
                unchanged: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("requests equal its parent's"), "{err}");

    // Changed set but the parent's generation.
    let mut b = child(&s1);
    b.request_alert(s1.cases[0].id, "x", json!({})).unwrap();
    let mut bad = b.build(&SatisfiedRequests::default()).unwrap();
    bad.metadata.alert_generation = s1.metadata.alert_generation;
    let err = env.publish_rejected(&bad).await;
    assert!(
        matches!(err, Error::GenerationMismatch { resource: ResourceType::Alert, unchanged: false, expected, .. }
            if expected.as_i64() == 2),
        "{err:?}"
    );

    // Changed set, bumped by two.
    bad.metadata.alert_generation = Generation::try_new(3).unwrap();
    let err = env.publish_rejected(&bad).await;
    assert!(matches!(err, Error::GenerationMismatch { .. }), "{err:?}");
}

#[tokio::test]
async fn reused_and_duplicated_ids_are_rejected() {
    let env = TestEnv::new().await;
    let s1 = first_sitrep(2, 1);
    publish(&env, &s1, 1).await;
    let dropped: AlertRequest = s1.alert_requests[0].clone();

    // s2 drops one alert request.
    let mut b = child(&s1);
    b.withdraw_alert_request(dropped.id).unwrap();
    let s2 = b.build(&SatisfiedRequests::default()).unwrap();
    publish(&env, &s2, 2).await;

    // s3 brings the dropped id back: it is requested by a retained sitrep.
    let mut bad = unchanged_child(&s2);
    bad.alert_requests.push(dropped.clone());
    bad.normalize();
    bad.metadata.alert_generation = s2.metadata.alert_generation.next().unwrap();
    let err = env.publish_rejected(&bad).await;
    assert!(
        matches!(err, Error::RequestIdReused { resource: ResourceType::Alert, id, ref used_by }
            if id == dropped.id.into_untyped() && used_by.contains(&s1.id().to_string())),
        "{err:?}"
    );

    // A new request whose id is an existing alert row (say, operator-made).
    let taken = AlertUuid::new_v4();
    insert_plain_alert(&env, taken).await;
    let mut bad = unchanged_child(&s2);
    bad.alert_requests.push(AlertRequest { id: taken, ..s2.alert_requests[0].clone() });
    bad.normalize();
    bad.metadata.alert_generation = s2.metadata.alert_generation.next().unwrap();
    let err = env.publish_rejected(&bad).await;
    assert!(
        matches!(err, Error::RequestIdReused { id, ref used_by, .. }
            if id == taken.into_untyped() && used_by.contains("an alert with this id exists")),
        "{err:?}"
    );

    // The same id twice inside one sitrep.
    let mut bad = unchanged_child(&s2);
    let twice = bad.support_bundle_requests[0].clone();
    bad.support_bundle_requests.push(twice.clone());
    let err = env.publish_rejected(&bad).await;
    assert!(
        matches!(err, Error::InvalidSitrep(SitrepValidationError::DuplicateId { id, .. })
            if id == twice.id.into_untyped()),
        "{err:?}"
    );

    // A request naming a case the sitrep does not hold, and an empty class.
    let mut bad = unchanged_child(&s2);
    bad.cases.clear();
    let err = env.publish_rejected(&bad).await;
    assert!(matches!(err, Error::InvalidSitrep(SitrepValidationError::UnknownCase { .. })));
    let mut bad = unchanged_child(&s2);
    bad.alert_requests[0].class = String::new();
    let err = env.publish_rejected(&bad).await;
    assert!(matches!(err, Error::InvalidSitrep(SitrepValidationError::EmptyField { .. })));

    // A sitrep id that is already taken.
    let mut bad = unchanged_child(&s2);
    bad.metadata.id = s1.id();
    let err = env.publish_rejected(&bad).await;
    assert!(matches!(err, Error::SitrepExists(id) if id == s1.id()), "{err:?}");

    // A bundle id that is already a support-bundle row is caught the same way.
    let taken = SupportBundleUuid::new_v4();
    insert_plain_support_bundle(&env, taken).await;
    let mut bad = unchanged_child(&s2);
    let mut request = s2.support_bundle_requests[0].clone();
    request.id = taken;
    bad.support_bundle_requests.push(request);
    bad.normalize();
    bad.metadata.support_bundle_generation = s2.metadata.support_bundle_generation.next().unwrap();
    let err = env.publish_rejected(&bad).await;
    assert!(
        matches!(err, Error::RequestIdReused { resource: ResourceType::SupportBundle, id, .. }
            if id == taken.into_untyped()),
        "{err:?}"
    );
}

#[tokio::test]
async fn only_the_fm_executor_may_publish() {
    let env = TestEnv::new().await;
    let s1 = first_sitrep(1, 1);
    for role in [Role::Viewer, Role::Operator] {
        let before = fm_table_checksums(env.db.url()).await;
        let err = env.datastore.sitrep_insert(&env.opctx(role), &s1).await.unwrap_err();
        assert!(
            matches!(err, Error::Forbidden { role: r, action: Action::FmWrite, .. } if r == role)
        );
        assert_eq!(before, fm_table_checksums(env.db.url()).await);
    }
}

#[tokio::test]
async fn a_sitrep_with_100k_requests_publishes_and_reads_back_equal() {
    let env = TestEnv::new().await;
    let big = first_sitrep(80_000, 20_000);
    assert_eq!(big.alert_requests.len() + big.support_bundle_requests.len(), 100_000);
    publish(&env, &big, 1).await;
    let viewer = env.opctx(Role::Viewer);
    let back = env.datastore.sitrep_read(&viewer, big.id()).await.unwrap();
    assert!(back == big, "the 100,000-request sitrep did not read back equal");
    // Its summary, counted page by page, matches the sitrep itself.
    let summary = env.datastore.sitrep_summary(&viewer, big.id()).await.unwrap();
    assert_eq!(summary, nexus_fm_types::SitrepSummary::of(&big));
    assert_eq!(summary.alert_requests.newly_requested, 80_000);

    // Its child (unchanged) checks 100,000 ids against the parent and keeps
    // both generations.
    let next = unchanged_child(&big);
    publish(&env, &next, 2).await;
    let ids = env
        .datastore
        .sitrep_request_ids(&viewer, next.id(), ResourceType::Alert, None, 10_000)
        .await
        .unwrap();
    assert_eq!(ids.len(), 10_000);
    let expected: Vec<_> =
        big.alert_requests.iter().take(10_000).map(|r| r.id.into_untyped()).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn history_and_request_ids_page_by_keyset() {
    let env = TestEnv::new().await;
    let mut sitreps = vec![first_sitrep(5, 3)];
    publish(&env, &sitreps[0], 1).await;
    for v in 2..=6 {
        let next = unchanged_child(sitreps.last().unwrap());
        publish(&env, &next, v).await;
        sitreps.push(next);
    }
    let viewer = env.opctx(Role::Viewer);
    let ds = &env.datastore;

    let page = ds.sitrep_history_list(&viewer, None, Direction::Ascending, 4).await.unwrap();
    let ids: Vec<_> = page.iter().map(|e| e.sitrep_id).collect();
    assert_eq!(ids, sitreps[..4].iter().map(Sitrep::id).collect::<Vec<_>>());
    let page = ds
        .sitrep_history_list(&viewer, Some(page[3].version), Direction::Ascending, 4)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.version.as_i64()).collect::<Vec<_>>(), vec![5, 6]);
    let page = ds.sitrep_history_list(&viewer, None, Direction::Descending, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.version.as_i64()).collect::<Vec<_>>(), vec![6, 5]);
    let page = ds
        .sitrep_history_list(&viewer, Some(page[1].version), Direction::Descending, 10)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.version.as_i64()).collect::<Vec<_>>(), vec![4, 3, 2, 1]);
    let err = ds.sitrep_history_list(&viewer, None, Direction::Ascending, 0).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

    // Request ids, two at a time, in id order.
    let last = sitreps.last().unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = ds
            .sitrep_request_ids(&viewer, last.id(), ResourceType::SupportBundle, after, 2)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().copied();
        seen.extend(page);
    }
    let expected: Vec<_> =
        last.support_bundle_requests.iter().map(|r| r.id.into_untyped()).collect();
    assert_eq!(seen, expected);
    let entry = ds.sitrep_history_entry(&viewer, sitreps[2].id()).await.unwrap().unwrap();
    assert_eq!(entry.version.as_i64(), 3);
    assert_eq!(ds.sitrep_history_entry(&viewer, SitrepUuid::new_v4()).await.unwrap(), None);
}

async fn insert_plain_alert(env: &TestEnv, id: AlertUuid) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use fm_db_queries::db_schema::alert;
    let mut conn = fm_integration_tests::connect(env.db.url()).await;
    diesel::insert_into(alert::table)
        .values((
            alert::id.eq(id.into_untyped()),
            alert::class.eq("operator.made"),
            alert::payload.eq(json!({})),
            alert::time_created.eq(chrono::Utc::now()),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
}

async fn insert_plain_support_bundle(env: &TestEnv, id: SupportBundleUuid) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use fm_db_queries::db_schema::support_bundle;
    let mut conn = fm_integration_tests::connect(env.db.url()).await;
    diesel::insert_into(support_bundle::table)
        .values((
            support_bundle::id.eq(id.into_untyped()),
            support_bundle::reason.eq("operator asked"),
            support_bundle::data_selection.eq(json!({})),
            support_bundle::state.eq("collecting"),
            support_bundle::time_created.eq(chrono::Utc::now()),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// `fm-dev sitrep publish FILE`: a JSON sitrep is published; malformed JSON
/// and rule violations are reported and write nothing.
#[tokio::test]
async fn fm_dev_publishes_a_json_sitrep_file() {
    let env = TestEnv::new().await;
    let dir = tempfile::tempdir().unwrap();
    let s1 = first_sitrep(2, 1);
    let good = dir.path().join("s1.json");
    std::fs::write(&good, serde_json::to_string_pretty(&s1).unwrap()).unwrap();

    let published = fm_dev::sitrep::publish_file(&env.log, env.db.url(), &good).await.unwrap();
    assert_eq!((published.sitrep_id, published.version.as_i64()), (s1.id(), 1));
    let back = env.datastore.sitrep_read(&env.opctx(Role::Viewer), s1.id()).await.unwrap();
    assert_eq!(back, s1);

    // The same file again: its parent (none) is not current.
    let before = fm_table_checksums(env.db.url()).await;
    let err = fm_dev::sitrep::publish_file(&env.log, env.db.url(), &good).await.unwrap_err();
    let chain = format!("{err:#}");
    assert!(chain.contains(&format!("publishing sitrep {}", s1.id())), "{chain}");
    assert!(chain.contains("was built on no parent"), "{chain}");
    assert_eq!(before, fm_table_checksums(env.db.url()).await);

    // Malformed JSON: the error says where.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"metadata\": {\n    \"id\": \"nope\"\n  }\n}\n").unwrap();
    let err = fm_dev::sitrep::publish_file(&env.log, env.db.url(), &bad).await.unwrap_err();
    let chain = format!("{err:#}");
    assert!(chain.contains("bad.json is not a sitrep in JSON form"), "{chain}");
    assert!(chain.contains("line 3"), "{chain}");
    assert_eq!(before, fm_table_checksums(env.db.url()).await);

    // A missing file.
    let err = fm_dev::sitrep::publish_file(&env.log, env.db.url(), &dir.path().join("none.json"))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("reading"), "{err:#}");
}
