//! History retention: the pruner keeps the newest K sitreps, archives and
//! removes the rest with all their children, never the current one.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fm_db_queries::datastore::sitrep::prune::{MIN_KEEP, RetentionPolicy};
use fm_db_queries::db_schema::{
    fm_alert_request, fm_case, fm_sitrep, fm_sitrep_archive, fm_sitrep_history,
    fm_support_bundle_request,
};
use fm_db_queries::{Error, Role};
use fm_integration_tests::{TestEnv, connect};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm_types::{ExecutorUuid, Sitrep, SitrepUuid};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Publishes `n` sitreps, each adding one alert and one bundle request to
/// a new case, and returns them as read back from the database.
async fn publish_chain(env: &TestEnv, n: usize) -> Vec<Sitrep> {
    let executor = env.opctx(Role::FmExecutor);
    let viewer = env.opctx(Role::Viewer);
    let mut chain: Vec<Sitrep> = Vec::new();
    for i in 0..n {
        let mut b = SitrepBuilder::new(chain.last(), ExecutorUuid::new_v4(), format!("s{i}"));
        let case = b.open_case("engine", format!("case {i}"));
        b.request_alert(case, "test.alert", json!({ "i": i })).unwrap();
        b.request_support_bundle(case, "test", json!({ "i": i })).unwrap();
        let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
        env.datastore.sitrep_insert(&executor, &sitrep).await.unwrap();
        chain.push(env.datastore.sitrep_read(&viewer, sitrep.id()).await.unwrap());
    }
    chain
}

/// How many rows each FM table holds for one sitrep.
async fn rows_of(env: &TestEnv, id: SitrepUuid) -> [i64; 5] {
    let mut conn = connect(env.db.url()).await;
    let id = id.into_untyped();
    [
        fm_sitrep::table.filter(fm_sitrep::id.eq(id)).count().get_result(&mut conn).await.unwrap(),
        fm_sitrep_history::table
            .filter(fm_sitrep_history::sitrep_id.eq(id))
            .count()
            .get_result(&mut conn)
            .await
            .unwrap(),
        fm_case::table
            .filter(fm_case::sitrep_id.eq(id))
            .count()
            .get_result(&mut conn)
            .await
            .unwrap(),
        fm_alert_request::table
            .filter(fm_alert_request::sitrep_id.eq(id))
            .count()
            .get_result(&mut conn)
            .await
            .unwrap(),
        fm_support_bundle_request::table
            .filter(fm_support_bundle_request::sitrep_id.eq(id))
            .count()
            .get_result(&mut conn)
            .await
            .unwrap(),
    ]
}

#[tokio::test]
async fn keeps_the_newest_k_and_archives_the_rest() {
    let env = TestEnv::new().await;
    let chain = publish_chain(&env, 12).await;
    let executor = env.opctx(Role::FmExecutor);
    let viewer = env.opctx(Role::Viewer);

    let report = env
        .datastore
        .sitrep_history_prune(&executor, RetentionPolicy { keep: 5, archive_keep: 100 })
        .await
        .unwrap();
    let pruned: Vec<SitrepUuid> = report.pruned.iter().map(|p| p.sitrep_id).collect();
    let oldest_seven: Vec<SitrepUuid> = chain[..7].iter().map(Sitrep::id).collect();
    assert_eq!(pruned, oldest_seven, "exactly the 7 oldest, oldest first");
    assert_eq!(
        report.pruned.iter().map(|p| p.version.as_i64()).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    assert_eq!(report.current_version.map(|v| v.as_i64()), Some(12));

    for (i, sitrep) in chain.iter().enumerate() {
        let rows = rows_of(&env, sitrep.id()).await;
        if i < 7 {
            // Sitrep i has i + 1 cases and as many requests of each type.
            assert_eq!(rows, [0; 5], "sitrep {i} must be gone with all its children");
            let archived = env.datastore.sitrep_archive_read(&viewer, sitrep.id()).await.unwrap();
            assert_eq!(archived.version.as_i64(), i as i64 + 1);
            assert_eq!(&archived.sitrep, sitrep, "archived sitrep {i} reads back equal");
            let err = env.datastore.sitrep_read(&viewer, sitrep.id()).await.unwrap_err();
            assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        } else {
            let n = i as i64 + 1;
            assert_eq!(rows, [1, 1, n, n, n], "sitrep {i} must be kept whole");
            assert_eq!(&env.datastore.sitrep_read(&viewer, sitrep.id()).await.unwrap(), sitrep);
        }
    }
    let (_, current) = env.datastore.sitrep_read_current(&viewer).await.unwrap().unwrap();
    assert_eq!(&current, chain.last().unwrap());

    // A second pass has nothing to do.
    let again = env
        .datastore
        .sitrep_history_prune(&executor, RetentionPolicy { keep: 5, archive_keep: 100 })
        .await
        .unwrap();
    assert!(again.pruned.is_empty() && again.archive_entries_deleted == 0, "{again:?}");
}

#[tokio::test]
async fn the_archive_is_bounded_and_keep_has_a_floor() {
    let env = TestEnv::new().await;
    let chain = publish_chain(&env, 8).await;
    let executor = env.opctx(Role::FmExecutor);
    let viewer = env.opctx(Role::Viewer);

    let err = env
        .datastore
        .sitrep_history_prune(&executor, RetentionPolicy { keep: MIN_KEEP - 1, archive_keep: 3 })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("at least 2")), "{err:?}");

    // Keep the minimum: 6 pruned, and only the newest 3 archive entries stay.
    let report = env
        .datastore
        .sitrep_history_prune(&executor, RetentionPolicy { keep: MIN_KEEP, archive_keep: 3 })
        .await
        .unwrap();
    assert_eq!(report.pruned.len(), 6);
    assert_eq!(report.archive_entries_deleted, 3);
    for (i, sitrep) in chain.iter().enumerate().take(6) {
        let archived = env.datastore.sitrep_archive_read(&viewer, sitrep.id()).await;
        if i < 3 {
            assert!(matches!(archived, Err(Error::NotFound { .. })), "entry {i}: {archived:?}");
        } else {
            assert_eq!(&archived.unwrap().sitrep, sitrep);
        }
    }
    let mut conn = connect(env.db.url()).await;
    let archived: i64 = fm_sitrep_archive::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(archived, 3);
    // The current sitrep and its parent remain.
    let history: i64 = fm_sitrep_history::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(history, 2);

    // Viewers and operators may not prune.
    for role in [Role::Viewer, Role::Operator] {
        let err = env
            .datastore
            .sitrep_history_prune(&env.opctx(role), RetentionPolicy::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    }
}

/// A reader racing the pruner sees a complete sitrep or NotFound, never a
/// sitrep with some of its children missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_racing_the_pruner_never_sees_a_torn_sitrep() {
    let env = Arc::new(TestEnv::new().await);
    // Sitreps with many children, so that a torn read would show.
    let executor = env.opctx(Role::FmExecutor);
    let mut chain: Vec<Sitrep> = Vec::new();
    for i in 0..6 {
        let mut b = SitrepBuilder::new(chain.last(), ExecutorUuid::new_v4(), format!("s{i}"));
        let case = b.open_case("engine", "bulk");
        for j in 0..500 {
            b.request_alert(case, "bulk", json!({ "j": j })).unwrap();
        }
        let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
        env.datastore.sitrep_insert(&executor, &sitrep).await.unwrap();
        chain.push(env.datastore.sitrep_read(&env.opctx(Role::Viewer), sitrep.id()).await.unwrap());
    }
    let targets: Vec<Sitrep> = chain[..4].to_vec();
    let targets_len = targets.len();

    let done = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let reader = {
        let env = Arc::clone(&env);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut started_tx = Some(started_tx);
            let viewer = env.opctx(Role::Viewer);
            let (mut complete, mut not_found) = (0, 0);
            // Read until the pruner is done, then once more.
            let mut last_round = false;
            while !last_round {
                last_round = AtomicBool::load(&done, Ordering::SeqCst);
                for expected in &targets {
                    match env.datastore.sitrep_read(&viewer, expected.id()).await {
                        Ok(sitrep) => {
                            assert_eq!(&sitrep, expected, "a read returned a torn sitrep");
                            complete += 1;
                        }
                        Err(Error::NotFound { .. }) => not_found += 1,
                        Err(e) => panic!("unexpected read error: {e:#?}"),
                    }
                }
                // The pruner starts once the reader has done a full round.
                if let Some(tx) = started_tx.take() {
                    let _ = tx.send(());
                }
            }
            (complete, not_found)
        })
    };
    started_rx.await.unwrap();
    let report = env
        .datastore
        .sitrep_history_prune(&executor, RetentionPolicy { keep: 2, archive_keep: 10 })
        .await
        .unwrap();
    done.store(true, Ordering::SeqCst);
    let (complete, not_found) = reader.await.unwrap();
    assert_eq!(report.pruned.len(), 4);
    // Once the pruner is done every target is gone.
    let viewer = env.opctx(Role::Viewer);
    for t in &chain[..4] {
        assert!(matches!(
            env.datastore.sitrep_read(&viewer, t.id()).await,
            Err(Error::NotFound { .. })
        ));
    }
    // The first round ran before the pruner started and the last one after
    // it finished; the rounds in between raced it.
    assert!(complete >= targets_len, "{complete} complete and {not_found} not-found reads");
    assert!(not_found >= targets_len, "{complete} complete and {not_found} not-found reads");
}

/// Several executors prune at once: every sitrep is pruned exactly once,
/// and no pruner reports an error (a sitrep another pruner removed first is
/// counted as already gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pruners_do_not_fail() {
    let env = Arc::new(TestEnv::new().await);
    let chain = publish_chain(&env, 30).await;
    for round in 0..3 {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let env = Arc::clone(&env);
            tasks.push(tokio::spawn(async move {
                env.datastore
                    .sitrep_history_prune(
                        &env.opctx(Role::FmExecutor),
                        RetentionPolicy { keep: 2 + 8 * (2 - round), archive_keep: 100 },
                    )
                    .await
            }));
        }
        let mut pruned = Vec::new();
        for task in tasks {
            let report = task.await.unwrap().unwrap_or_else(|e| panic!("round {round}: {e:#?}"));
            pruned.extend(report.pruned.into_iter().map(|p| p.sitrep_id));
        }
        let unique: std::collections::BTreeSet<_> = pruned.iter().collect();
        assert_eq!(unique.len(), pruned.len(), "round {round}: a sitrep was pruned twice");
    }
    let mut conn = connect(env.db.url()).await;
    let history: i64 = fm_sitrep_history::table.count().get_result(&mut conn).await.unwrap();
    let archived: i64 = fm_sitrep_archive::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!((history, archived), (2, 28));
    assert_eq!(chain.len(), 30);
}
