//! `fm-dev demo` on a test database: a small demo converges, passes its own
//! verification, its lagging executor is seen to hold a stale sitrep, its
//! operator deletes resources, and the sweeps hard-delete the tombstones
//! the current sitrep no longer requests.

use fm_db_queries::Role;
use fm_db_queries::datastore::sitrep::read::Direction;
use fm_dev::demo::{DemoConfig, ProgressMode, run_demo};
use fm_integration_tests::TestEnv;
use nexus_fm_types::ResourceType;
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

/// A period long enough that no periodic activation happens during the test
/// after the one at start-up.
const NEVER: Duration = Duration::from_secs(3600);

/// Sitreps the test's demo publishes.
const SITREPS: usize = 14;

/// History entries its pruners keep.
const KEEP: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_demo_converges_deletes_and_sweeps() {
    let env = TestEnv::new().await;
    // The lagging executor's loader polls only at start-up (after the first
    // sitrep is published, which the demo waits for) and when its
    // rendezvous reports stale. Every later sitrep moves a generation, and
    // the demo activates the lagging rendezvous once after the last
    // publish, so at least one stale report is certain, however the
    // activations interleave.
    //
    // A hard-deleted tombstone is certain too, whatever the timing:
    //
    // - After each publish from the second on, the demo waits until a
    //   listening executor has executed the new sitrep (the analysis is the
    //   only publisher, so that execution is not stale), so every request
    //   of that sitrep has a row; the operator then deletes every live one,
    //   since no sitrep here has anywhere near `deletions_per_sitrep`
    //   requests. So every id requested by sitreps 2 to 14 is deleted by the
    //   operator.
    // - No sitrep from the third on requests more than 10 ids: at most 2
    //   open cases with 2 requests each, plus the requests of cases closed
    //   in the very pass that built the sitrep (at most 3 steps a pass, so 3
    //   cases, 2 requests each); a case closed in an earlier pass was
    //   dropped, because all its requests had rows when the next pass
    //   looked (the wait above).
    // - Every pass changes a request set (the analysis's unit tests). If
    //   none of passes 3 to 14 removed an id its parent requested, each of
    //   those 12 passes would add a fresh id and keep the others: sitrep 14
    //   would request at least 12 ids, more than 10.
    // - So some pass withdraws (or drops with its closed case) an id that
    //   sitrep 2 or later requested, which the operator deleted. It never
    //   returns to a request set (docs/design.md, C2), so the final convergence,
    //   which runs the listening executors' rendezvous (and sweep) with the
    //   last sitrep after the last deletion, hard-deletes its tombstone.
    let config = DemoConfig {
        db_url: Some(env.db.url().to_string()),
        executors: 3,
        lag: NEVER,
        rendezvous_period: Duration::from_millis(50),
        // Pruning only at start-up (nothing to prune yet) and in the final
        // pass, so the count of pruned sitreps is exact.
        pruner_period: NEVER,
        sitreps: SITREPS,
        interval: Duration::from_millis(20),
        seed: 20,
        keep_sitreps: KEEP,
        max_open_cases: 2,
        max_requests_per_case: 2,
        // More than any sitrep requests: every live request is deleted.
        deletions_per_sitrep: 100,
        progress: ProgressMode::Hidden,
        ..DemoConfig::default()
    };
    let report = run_demo(&env.log, &config, std::future::pending())
        .await
        .unwrap_or_else(|e| panic!("the demo failed: {e:#}"));

    assert!(report.verification.passed(), "{report}");
    assert_eq!(report.sitreps_published, SITREPS as u64, "{report}");
    assert_eq!(report.publish_races_lost, 0, "{report}");
    assert_eq!(report.executors.len(), 3);
    let lagging: Vec<_> = report.executors.iter().filter(|e| e.lagging).collect();
    assert_eq!(lagging.len(), 1, "{report}");
    assert_eq!(lagging[0].name, "executor 3");
    assert!(lagging[0].tally.stale_reports >= 1, "{report}");
    for executor in &report.executors {
        assert!(executor.tally.errors.is_empty(), "{report}");
        assert!(executor.tally.rendezvous_activations >= 1, "{report}");
    }

    // The operator deleted resources, each once, and the sweeps
    // hard-deleted some of their tombstones: exactly those the
    // verification found gone (on this fresh database only the demo
    // deletes, and a tombstone is hard-deleted at most once).
    let deletions = &report.operator_deletions;
    assert!(!deletions.is_empty(), "{report}");
    assert_eq!(deletions.iter().collect::<BTreeSet<_>>().len(), deletions.len(), "{report}");
    let v = &report.verification;
    assert_eq!(v.operator_deleted, deletions.len(), "{report}");
    assert!(v.operator_deleted_swept >= 1, "{report}");
    let hard_deleted: u64 = report.executors.iter().map(|e| e.tally.tombstones_hard_deleted).sum();
    assert_eq!(hard_deleted, v.operator_deleted_swept as u64, "{report}");
    assert_eq!(
        v.operator_deleted_swept + v.operator_deleted_retained,
        deletions.len(),
        "every deletion is either swept or still requested\n{report}"
    );

    // Independently of the demo's own check: exactly the current sitrep's
    // requests, by id, have a row, and each is a tombstone (the operator
    // deleted every one of them after the last publish, and the sweeps
    // keep what the current sitrep requests).
    let viewer = env.opctx(Role::Viewer);
    let (version, current) = env.datastore.sitrep_read_current(&viewer).await.unwrap().unwrap();
    assert_eq!(report.verification.sitrep.map(|s| s.version), Some(version));
    assert_eq!(version.as_i64(), SITREPS as i64);
    let mut requested_now = 0;
    for resource in ResourceType::ALL {
        let requested = current.request_ids(resource);
        requested_now += requested.len();
        let ids: Vec<Uuid> = requested.iter().copied().collect();
        let rows = env
            .datastore
            .fm_resource_rows_including_deleted(&viewer, resource, &ids)
            .await
            .unwrap();
        let tombstones: BTreeSet<Uuid> =
            rows.iter().filter(|(_, deleted)| *deleted).map(|(id, _)| *id).collect();
        assert_eq!(rows.len(), requested.len(), "{resource}s of the current sitrep\n{report}");
        assert_eq!(tombstones, requested, "{resource}s of the current sitrep\n{report}");
    }
    assert_eq!(v.operator_deleted_retained, requested_now, "{report}");

    // Every resource row was created by exactly one executor, and is still
    // there (live or a tombstone) unless a sweep hard-deleted it.
    let created: u64 =
        report.executors.iter().map(|e| e.tally.alerts_created + e.tally.bundles_created).sum();
    let rows = &report.rows;
    let still_there = rows.alerts_live
        + rows.alerts_deleted
        + rows.support_bundles_live
        + rows.support_bundles_deleted;
    assert_eq!(created, still_there as u64 + hard_deleted, "{report}");

    // The final pruning pass leaves exactly the newest 3 sitreps, and each
    // older one was pruned by exactly one executor.
    assert_eq!(report.sitreps_pruned, SITREPS as u64 - u64::from(KEEP), "{report}");
    let history =
        env.datastore.sitrep_history_list(&viewer, None, Direction::Ascending, 100).await.unwrap();
    let versions: Vec<i64> = history.iter().map(|h| h.version.as_i64()).collect();
    let first_kept = (SITREPS as i64) - i64::from(KEEP) + 1;
    assert_eq!(versions, (first_kept..=SITREPS as i64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_without_deletions_leaves_every_request_live() {
    let env = TestEnv::new().await;
    let config = DemoConfig {
        db_url: Some(env.db.url().to_string()),
        executors: 2,
        rendezvous_period: Duration::from_millis(50),
        sitreps: 6,
        interval: Duration::from_millis(20),
        seed: 21,
        keep_sitreps: KEEP,
        deletions_per_sitrep: 0,
        progress: ProgressMode::Hidden,
        ..DemoConfig::default()
    };
    let report = run_demo(&env.log, &config, std::future::pending())
        .await
        .unwrap_or_else(|e| panic!("the demo failed: {e:#}"));
    assert!(report.verification.passed(), "{report}");
    assert!(report.operator_deletions.is_empty(), "{report}");
    let v = &report.verification;
    assert_eq!((v.alerts.deleted, v.support_bundles.deleted), (0, 0), "{report}");
    assert_eq!(v.alerts.live, v.alerts.requested, "{report}");
    assert_eq!(v.support_bundles.live, v.support_bundles.requested, "{report}");
    assert!(report.executors.iter().all(|e| e.tally.tombstones_hard_deleted == 0), "{report}");
}
