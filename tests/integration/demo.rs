//! `fm-dev demo` on a test database: a small demo converges, passes its own
//! verification, and its lagging executor is seen to hold a stale sitrep.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_demo_converges_and_the_lagging_executor_reports_stale() {
    let env = TestEnv::new().await;
    // The lagging executor's loader polls only at start-up (after the first
    // sitrep is published, which the demo waits for) and when its
    // rendezvous reports stale. Every later sitrep moves a generation, and
    // the demo activates the lagging rendezvous once after the last
    // publish, so at least one stale report is certain, however the
    // activations interleave.
    let config = DemoConfig {
        db_url: Some(env.db.url().to_string()),
        executors: 3,
        lag: NEVER,
        rendezvous_period: Duration::from_millis(50),
        // Pruning only at start-up (nothing to prune yet) and in the final
        // pass, so the count of pruned sitreps is exact.
        pruner_period: NEVER,
        sitreps: 8,
        interval: Duration::from_millis(20),
        seed: 20,
        keep_sitreps: 3,
        progress: ProgressMode::Hidden,
        ..DemoConfig::default()
    };
    let report = run_demo(&env.log, &config, std::future::pending())
        .await
        .unwrap_or_else(|e| panic!("the demo failed: {e:#}"));

    assert!(report.verification.passed(), "{report}");
    assert_eq!(report.sitreps_published, 8, "{report}");
    assert_eq!(report.publish_races_lost, 0, "{report}");
    assert_eq!(report.executors.len(), 3);
    let lagging: Vec<_> = report.executors.iter().filter(|e| e.lagging).collect();
    assert_eq!(lagging.len(), 1, "{report}");
    assert_eq!(lagging[0].name, "executor 3");
    assert!(lagging[0].stale_reports >= 1, "{report}");
    for executor in &report.executors {
        assert!(executor.errors.is_empty(), "{report}");
        assert!(executor.rendezvous_activations >= 1, "{report}");
    }

    // Independently of the demo's own check: exactly the current sitrep's
    // requests, by id, have a row (live: nothing was deleted).
    let viewer = env.opctx(Role::Viewer);
    let (version, current) = env.datastore.sitrep_read_current(&viewer).await.unwrap().unwrap();
    assert_eq!(report.verification.sitrep.map(|s| s.version), Some(version));
    assert_eq!(version.as_i64(), 8);
    for resource in ResourceType::ALL {
        let requested = current.request_ids(resource);
        let ids: Vec<Uuid> = requested.iter().copied().collect();
        let rows = env
            .datastore
            .fm_resource_rows_including_deleted(&viewer, resource, &ids)
            .await
            .unwrap();
        let live: BTreeSet<Uuid> =
            rows.iter().filter(|(_, deleted)| !deleted).map(|(id, _)| *id).collect();
        assert_eq!(live, requested, "{resource}s of the current sitrep\n{report}");
    }
    // Every resource row was created by exactly one executor.
    let alerts: u64 = report.executors.iter().map(|e| e.alerts_created).sum();
    let bundles: u64 = report.executors.iter().map(|e| e.bundles_created).sum();
    assert_eq!(alerts as usize, report.rows.alerts_live, "{report}");
    assert_eq!(bundles as usize, report.rows.support_bundles_live, "{report}");

    // The final pruning pass leaves exactly the newest 3 of 8 sitreps, and
    // each older one was pruned by exactly one executor.
    assert_eq!(report.sitreps_pruned, 5, "{report}");
    let history =
        env.datastore.sitrep_history_list(&viewer, None, Direction::Ascending, 100).await.unwrap();
    let versions: Vec<i64> = history.iter().map(|h| h.version.as_i64()).collect();
    assert_eq!(versions, [6, 7, 8]);
}
