//! History retention: the pruner keeps the newest K sitreps, archives and
//! removes the rest with all their children, never the current one; an
//! oversized or unarchivable sitrep does not wedge it.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fm_db_queries::datastore::sitrep::prune::{
    ArchiveCompleteness, MAX_ARCHIVE_BYTES, MAX_ARCHIVE_FIELD_BYTES, MIN_KEEP, RetentionPolicy,
};
use fm_db_queries::db_schema::{
    fm_alert_request, fm_case, fm_sitrep, fm_sitrep_archive, fm_sitrep_history,
    fm_support_bundle_request,
};
use fm_db_queries::{Error, Role};
use fm_integration_tests::{TestEnv, connect};
use nexus_fm::builder::{SatisfiedRequests, SitrepBuilder};
use nexus_fm::driver::{ActivationOutcome, BackgroundTask};
use nexus_fm::tasks::fm_sitrep_pruner::FmSitrepPruner;
use nexus_fm_types::task::ArchiveFailureOutcome;
use nexus_fm_types::{
    ActivationReason, ExecutorUuid, FmSitrepPrunerStatus, Sitrep, SitrepRef, SitrepUuid,
    SitrepVersion,
};
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
            let whole = archived.archive.into_sitrep();
            assert_eq!(whole.as_ref(), Some(sitrep), "archived sitrep {i} reads back equal");
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
            assert_eq!(archived.unwrap().archive.into_sitrep().as_ref(), Some(sitrep));
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

/// Runs one statement of test-only DDL (triggers that provoke real
/// failures; nothing of the schema itself changes).
async fn execute_sql(env: &TestEnv, sql: &str) {
    let mut conn = connect(env.db.url()).await;
    diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), &mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// The archive row of one sitrep, as stored.
async fn archive_json(env: &TestEnv, id: SitrepUuid) -> serde_json::Value {
    let mut conn = connect(env.db.url()).await;
    fm_sitrep_archive::table
        .filter(fm_sitrep_archive::sitrep_id.eq(id.into_untyped()))
        .select(fm_sitrep_archive::sitrep)
        .get_result(&mut conn)
        .await
        .unwrap()
}

/// A sitrep whose archive form is far beyond the archive's bound is pruned
/// anyway: its archive entry is within the bound, keeps the metadata, the
/// cases and every request's id and class, and says what it left out; the
/// sitreps after it are pruned in the same pass.
///
/// Shown to fail without its guard: with the archive bounds lifted
/// (`ArchiveLimits::DEFAULT` set to unbounded sizes, i.e. archiving the
/// sitrep whole as before), this sitrep's archive entry was its whole JSON
/// form and the size assertion failed ("archive of ... is 13914994 bytes").
#[tokio::test]
async fn an_oversized_sitrep_is_archived_truncated_and_pruning_goes_on() {
    let env = TestEnv::new().await;
    let executor = env.opctx(Role::FmExecutor);
    let viewer = env.opctx(Role::Viewer);
    let mut chain = publish_chain(&env, 1).await;
    // Alert payloads above the per-field bound, and bundle data selections
    // below it whose sum is above the whole-document bound.
    let mut b = SitrepBuilder::new(chain.last(), ExecutorUuid::new_v4(), "oversized");
    let case = b.open_case("engine", "big");
    for i in 0..150 {
        b.request_alert(case, "big.alert", json!({ "i": i, "blob": "a".repeat(60_000) })).unwrap();
    }
    for i in 0..400 {
        b.request_support_bundle(case, "big", json!({ "i": i, "blob": "b".repeat(12_000) }))
            .unwrap();
    }
    let big = b.build(&SatisfiedRequests::default()).unwrap();
    env.datastore.sitrep_insert(&executor, &big).await.unwrap();
    chain.push(env.datastore.sitrep_read(&viewer, big.id()).await.unwrap());
    let whole = serde_json::to_vec(&chain[1]).unwrap().len();
    assert!(whole > 3 * MAX_ARCHIVE_BYTES, "the test sitrep must be oversized: {whole}");
    // The next sitrep closes the big case, whose requests count as
    // satisfied, so it and its requests are dropped: the sitreps after the
    // oversized one are small.
    let satisfied = SatisfiedRequests {
        alerts: big.alert_requests.iter().map(|r| r.id).collect(),
        support_bundles: big.support_bundle_requests.iter().map(|r| r.id).collect(),
    };
    for i in 0..3 {
        let mut b = SitrepBuilder::new(chain.last(), ExecutorUuid::new_v4(), format!("after {i}"));
        if i == 0 {
            b.close_case(case).unwrap();
        }
        let new_case = b.open_case("engine", format!("after {i}"));
        b.request_alert(new_case, "test.alert", json!({ "after": i })).unwrap();
        let sitrep = b.build(&satisfied).unwrap();
        env.datastore.sitrep_insert(&executor, &sitrep).await.unwrap();
        chain.push(env.datastore.sitrep_read(&viewer, sitrep.id()).await.unwrap());
    }

    let report = env
        .datastore
        .sitrep_history_prune(&executor, RetentionPolicy { keep: 2, archive_keep: 100 })
        .await
        .unwrap();
    let pruned: Vec<SitrepUuid> = report.pruned.iter().map(|p| p.sitrep_id).collect();
    assert_eq!(pruned, [chain[0].id(), chain[1].id(), chain[2].id()]);
    for sitrep in &chain[..3] {
        assert_eq!(rows_of(&env, sitrep.id()).await, [0; 5]);
        let stored = archive_json(&env, sitrep.id()).await;
        let size = serde_json::to_vec(&stored).unwrap().len();
        assert!(size <= MAX_ARCHIVE_BYTES, "archive of {} is {size} bytes", sitrep.id());
    }
    check_truncated_archive(&env, &chain[1]).await;
    // The small sitreps around it are archived whole.
    for sitrep in [&chain[0], &chain[2]] {
        let archived = env.datastore.sitrep_archive_read(&viewer, sitrep.id()).await.unwrap();
        assert_eq!(archived.archive.completeness, ArchiveCompleteness::Complete);
        assert_eq!(archived.archive.clone().into_sitrep().as_ref(), Some(sitrep));
    }
}

/// Checks the archive entry of `big`, the oversized sitrep above.
async fn check_truncated_archive(env: &TestEnv, big: &Sitrep) {
    let viewer = env.opctx(Role::Viewer);
    let archived = env.datastore.sitrep_archive_read(&viewer, big.id()).await.unwrap();
    let archive = archived.archive;
    let ArchiveCompleteness::Truncated(truncation) = &archive.completeness else {
        panic!(
            "the oversized sitrep's archive must say it is truncated: {:?}",
            archive.completeness
        )
    };
    assert_eq!(archive.metadata.as_ref(), Some(&big.metadata));
    assert_eq!(archive.cases, big.cases);
    assert!(archive.clone().into_sitrep().is_none(), "a truncated archive is not a sitrep");
    // Every alert request is kept with its id and class; each payload above
    // the per-field bound (all but the one carried from the first sitrep)
    // is replaced by its size.
    let ids: Vec<_> = archive.alert_requests.iter().map(|r| (r.id, r.class.as_str())).collect();
    let expected: Vec<_> = big.alert_requests.iter().map(|r| (r.id, r.class.as_str())).collect();
    assert_eq!(ids, expected);
    let mut large_payloads = 0;
    for (kept, original) in archive.alert_requests.iter().zip(&big.alert_requests) {
        let size = serde_json::to_vec(&original.payload).unwrap().len();
        if size > MAX_ARCHIVE_FIELD_BYTES {
            large_payloads += 1;
            let omitted = (&kept.payload, kept.payload_omitted_bytes);
            assert_eq!(omitted, (&json!(null), Some(size as u64)));
        } else {
            assert_eq!((&kept.payload, kept.payload_omitted_bytes), (&original.payload, None));
        }
    }
    assert_eq!(large_payloads, 150);
    assert_eq!(truncation.alert_payloads_omitted, 150);
    assert_eq!(truncation.alert_requests_omitted, 0);
    // Every bundle request is kept with its id and reason; the data
    // selections are each below the per-field bound but together above the
    // whole bound, so some are kept whole and the rest replaced by a size.
    let bundles = big.support_bundle_requests.len() as u64;
    assert_eq!(archive.support_bundle_requests.len() as u64, bundles);
    let mut kept_selections = 0;
    for (kept, original) in archive.support_bundle_requests.iter().zip(&big.support_bundle_requests)
    {
        assert_eq!((kept.id, &kept.reason), (original.id, &original.reason));
        match kept.data_selection_omitted_bytes {
            None => {
                assert_eq!(kept.data_selection, original.data_selection);
                kept_selections += 1;
            }
            Some(size) => {
                assert_eq!(kept.data_selection, json!(null));
                assert_eq!(
                    size,
                    serde_json::to_vec(&original.data_selection).unwrap().len() as u64
                );
            }
        }
    }
    assert!(kept_selections > 0 && kept_selections < 400, "{kept_selections} selections kept");
    assert_eq!(truncation.support_bundle_data_selections_omitted, bundles - kept_selections);
    assert_eq!(truncation.support_bundle_requests_omitted, 0);
    assert_eq!(truncation.cases_omitted, 0);
    assert_eq!(
        (truncation.max_bytes, truncation.max_field_bytes),
        (MAX_ARCHIVE_BYTES as u64, MAX_ARCHIVE_FIELD_BYTES as u64)
    );
}

/// Makes every insert into the archive fail for one sitrep, with a real
/// PostgreSQL error raised by a test-only trigger; `full_only` spares the
/// failure record (an archive whose status is "failed").
async fn refuse_archive_of(env: &TestEnv, id: SitrepUuid, full_only: bool) {
    let spare = if full_only {
        "AND NEW.sitrep->'archive'->>'status' IS DISTINCT FROM 'failed'"
    } else {
        ""
    };
    let sql = format!(
        "CREATE OR REPLACE FUNCTION test_refuse_archive() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'test: refusing to archive sitrep %', NEW.sitrep_id; END $$; \
         DROP TRIGGER IF EXISTS test_refuse_archive ON fm_sitrep_archive; \
         CREATE TRIGGER test_refuse_archive BEFORE INSERT ON fm_sitrep_archive FOR EACH ROW \
         WHEN (NEW.sitrep_id = '{id}' {spare}) EXECUTE FUNCTION test_refuse_archive();"
    );
    let mut conn = connect(env.db.url()).await;
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, &sql).await.unwrap();
}

/// A sitrep that cannot be archived is pruned with an archive entry that
/// says archiving failed and why, the pass goes on with the others, and the
/// pruner's status names the sitrep, its version and the error.
///
/// Shown to fail without its guard: with the first archive error ending the
/// pass (as it did before), the status carried the pass error "transaction
/// sitrep_prune_one: test: refusing to archive sitrep ..." and versions 1
/// and 3 were not pruned; every later pass failed the same way.
#[tokio::test]
async fn a_sitrep_that_cannot_be_archived_is_pruned_with_a_failure_record() {
    let env = TestEnv::new().await;
    let chain = publish_chain(&env, 5).await;
    refuse_archive_of(&env, chain[1].id(), true).await;

    let mut pruner =
        FmSitrepPruner::new(env.datastore.clone(), RetentionPolicy { keep: 2, archive_keep: 100 });
    let report = pruner.activate(&env.opctx(Role::FmExecutor), &[ActivationReason::Explicit]).await;
    let status: FmSitrepPrunerStatus = serde_json::from_value(report.status).unwrap();
    assert_eq!(report.outcome, ActivationOutcome::Failed);
    assert_eq!(status.error, None, "the pass itself did not fail");
    let refs: Vec<SitrepRef> = (0..3).map(|i| sitrep_ref(&chain, i)).collect();
    assert_eq!(status.pruned, refs, "all three pruned, the failed one included");
    assert_eq!(status.archive_failures.len(), 1, "{status:?}");
    let failure = &status.archive_failures[0];
    assert_eq!(failure.sitrep, refs[1]);
    assert!(failure.error.contains("test: refusing to archive sitrep"), "{}", failure.error);
    assert_eq!(failure.outcome, ArchiveFailureOutcome::PrunedWithFailureRecord);
    assert!(status.outcome.contains("could not archive sitrep version 2"), "{}", status.outcome);

    for sitrep in &chain[..3] {
        assert_eq!(rows_of(&env, sitrep.id()).await, [0; 5]);
    }
    let viewer = env.opctx(Role::Viewer);
    let record = env.datastore.sitrep_archive_read(&viewer, chain[1].id()).await.unwrap();
    assert_eq!(record.version.as_i64(), 2);
    let ArchiveCompleteness::Failed { error } = &record.archive.completeness else {
        panic!("{:?}", record.archive.completeness)
    };
    assert_eq!(error, &failure.error);
    // What could still be read without the failing step is kept: the
    // metadata; the children are not claimed.
    assert_eq!(record.archive.metadata.as_ref(), Some(&chain[1].metadata));
    assert!(record.archive.cases.is_empty() && record.archive.alert_requests.is_empty());
    for i in [0, 2] {
        let archived = env.datastore.sitrep_archive_read(&viewer, chain[i].id()).await.unwrap();
        assert_eq!(archived.archive.into_sitrep().as_ref(), Some(&chain[i]));
    }
}

/// If not even the failure record can be written, the sitrep is kept whole
/// (retaining longer is always safe), the pass prunes the others, the
/// status says the sitrep was kept and why, and a later pass prunes it once
/// archiving works again.
///
/// Shown to fail without its guard: with the pass ending on the first
/// archive error (as it did before), `sitrep_history_prune` returned
/// "transaction sitrep_prune_one: test: refusing to archive sitrep ..." and
/// versions 1 and 3 stayed.
#[tokio::test]
async fn a_sitrep_that_cannot_be_archived_at_all_is_kept_and_does_not_wedge_pruning() {
    let env = TestEnv::new().await;
    let executor = env.opctx(Role::FmExecutor);
    let mut chain = publish_chain(&env, 5).await;
    refuse_archive_of(&env, chain[1].id(), false).await;
    let policy = RetentionPolicy { keep: 2, archive_keep: 100 };

    let report = env.datastore.sitrep_history_prune(&executor, policy).await.unwrap();
    let pruned: Vec<SitrepUuid> = report.pruned.iter().map(|p| p.sitrep_id).collect();
    assert_eq!(pruned, [chain[0].id(), chain[2].id()]);
    assert_eq!(report.archive_failures.len(), 1);
    let failure = &report.archive_failures[0];
    assert_eq!(failure.sitrep, sitrep_ref(&chain, 1));
    let ArchiveFailureOutcome::Retained { failure_record_error } = &failure.outcome else {
        panic!("{failure:?}")
    };
    assert!(failure_record_error.contains("test: refusing"), "{failure_record_error}");
    // Kept whole: its row and every child.
    assert_eq!(rows_of(&env, chain[1].id()).await, [1, 1, 2, 2, 2]);
    let viewer = env.opctx(Role::Viewer);
    assert_eq!(env.datastore.sitrep_read(&viewer, chain[1].id()).await.unwrap(), chain[1]);
    assert!(matches!(
        env.datastore.sitrep_archive_read(&viewer, chain[1].id()).await,
        Err(Error::NotFound { .. })
    ));

    // Later passes still prune what they may.
    let more = publish_more(&env, &mut chain, 2).await;
    let report = env.datastore.sitrep_history_prune(&executor, policy).await.unwrap();
    let pruned: Vec<SitrepUuid> = report.pruned.iter().map(|p| p.sitrep_id).collect();
    assert_eq!(pruned, [chain[3].id(), chain[4].id()], "{more:?}");
    assert_eq!(report.archive_failures.len(), 1);

    // Once archiving works, the kept sitrep is pruned and archived whole.
    execute_sql(&env, "DROP TRIGGER test_refuse_archive ON fm_sitrep_archive").await;
    let report = env.datastore.sitrep_history_prune(&executor, policy).await.unwrap();
    let pruned: Vec<SitrepUuid> = report.pruned.iter().map(|p| p.sitrep_id).collect();
    assert_eq!(pruned, [chain[1].id()]);
    assert!(report.archive_failures.is_empty());
    let archived = env.datastore.sitrep_archive_read(&viewer, chain[1].id()).await.unwrap();
    assert_eq!(archived.archive.into_sitrep().as_ref(), Some(&chain[1]));
}

/// Publishes `n` more sitreps on top of `chain` (as `publish_chain` does).
async fn publish_more(env: &TestEnv, chain: &mut Vec<Sitrep>, n: usize) -> usize {
    let executor = env.opctx(Role::FmExecutor);
    let viewer = env.opctx(Role::Viewer);
    for i in 0..n {
        let mut b = SitrepBuilder::new(chain.last(), ExecutorUuid::new_v4(), format!("more {i}"));
        let case = b.open_case("engine", format!("more {i}"));
        b.request_alert(case, "test.alert", json!({ "more": i })).unwrap();
        let sitrep = b.build(&SatisfiedRequests::default()).unwrap();
        env.datastore.sitrep_insert(&executor, &sitrep).await.unwrap();
        chain.push(env.datastore.sitrep_read(&viewer, sitrep.id()).await.unwrap());
    }
    chain.len()
}

/// The reference (version, id) of `chain[i]`, published as version i + 1.
fn sitrep_ref(chain: &[Sitrep], i: usize) -> SitrepRef {
    SitrepRef { version: SitrepVersion::try_new(i as i64 + 1).unwrap(), sitrep_id: chain[i].id() }
}

#[derive(diesel::QueryableByName)]
struct TrimLogRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    sitrep_id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    isolation: String,
}

/// The archive trim runs in the retry wrapper: every delete of an archive
/// entry happens in a SERIALIZABLE transaction, and a serialization failure
/// in the middle of the trim is retried instead of failing the pass.
///
/// Shown to fail without its guard: with the trim's statements run outside
/// any transaction (as they were), the injected 40001 ended the pass
/// (`sitrep_history_prune` returned "deleting old archive entries" caused by
/// SerializationFailure "test: injected serialization failure").
#[tokio::test]
async fn the_archive_trim_runs_in_the_retry_wrapper() {
    let env = TestEnv::new().await;
    let chain = publish_chain(&env, 8).await;
    // A probe on every archive delete: the first one fails with a
    // serialization failure (the sequence is not rolled back), the others
    // record the isolation level they ran at.
    let mut conn = connect(env.db.url()).await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        "CREATE TABLE test_trim_log (sitrep_id UUID NOT NULL, isolation TEXT NOT NULL); \
         CREATE SEQUENCE test_trim_calls; \
         CREATE FUNCTION test_trim_probe() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF nextval('test_trim_calls') = 1 THEN \
             RAISE EXCEPTION 'test: injected serialization failure' USING ERRCODE = 'serialization_failure'; \
           END IF; \
           INSERT INTO test_trim_log VALUES (OLD.sitrep_id, current_setting('transaction_isolation')); \
           RETURN OLD; \
         END $$; \
         CREATE TRIGGER test_trim_probe BEFORE DELETE ON fm_sitrep_archive \
           FOR EACH ROW EXECUTE FUNCTION test_trim_probe();",
    )
    .await
    .unwrap();

    let report = env
        .datastore
        .sitrep_history_prune(
            &env.opctx(Role::FmExecutor),
            RetentionPolicy { keep: MIN_KEEP, archive_keep: 3 },
        )
        .await
        .unwrap();
    assert_eq!(report.pruned.len(), 6);
    assert_eq!(report.archive_entries_deleted, 3);
    // The injected serialization failure is counted, as every retry is.
    assert_eq!(report.retries, 1, "the retry is counted in the report");
    let log: Vec<TrimLogRow> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT sitrep_id, isolation FROM test_trim_log ORDER BY sitrep_id"),
        &mut conn,
    )
    .await
    .unwrap();
    let mut oldest: Vec<uuid::Uuid> = chain[..3].iter().map(|s| s.id().into_untyped()).collect();
    oldest.sort();
    assert_eq!(log.iter().map(|r| r.sitrep_id).collect::<Vec<_>>(), oldest);
    assert!(
        log.iter().all(|r| r.isolation == "serializable"),
        "{:?}",
        log.iter().map(|r| &r.isolation).collect::<Vec<_>>()
    );
    let kept: Vec<uuid::Uuid> = fm_sitrep_archive::table
        .order(fm_sitrep_archive::version)
        .select(fm_sitrep_archive::sitrep_id)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, chain[3..6].iter().map(|s| s.id().into_untyped()).collect::<Vec<_>>());
}
