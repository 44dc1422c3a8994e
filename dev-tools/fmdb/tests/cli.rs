//! Tests of the `fmdb` binary against real PostgreSQL: every command's
//! output (human and `--json`) against a seeded database with fixed ids and
//! timestamps, `--help` of every command, every usage error, and the
//! read-only guarantees.
//!
//! Expected outputs live in `tests/output/`; regenerate them with
//! `EXPECTORATE=overwrite cargo test -p fmdb`.

use fm_db_queries::Role;
use fm_db_queries::datastore::rendezvous::NewResource;
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use fm_integration_tests::{TestEnv, fm_table_checksums};
use nexus_fm::driver::PanickedActivationStatus;
use nexus_fm_types::task::{
    FmRendezvousStatus, FmSitrepLoaderStatus, RendezvousTypeStatus, SitrepRef, SweepStatus,
};
use nexus_fm_types::{
    AlertRequest, AlertUuid, Case, CaseUuid, ExecutorUuid, Generation, ResourceType, Sitrep,
    SitrepMetadata, SitrepUuid, SitrepVersion, SupportBundleRequest, SupportBundleUuid,
    TaskActivationRecord,
};
use std::process::Command;
use uuid::Uuid;

/// The time every age is measured against (`--now`).
const NOW: &str = "2026-11-21T13:00:00Z";

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 | n)
}

fn sitrep_id(n: u128) -> SitrepUuid {
    SitrepUuid::from_untyped(id(0x5170 + n))
}
fn alert_id(n: u128) -> AlertUuid {
    AlertUuid::from_untyped(id(0xa100 + n))
}
fn bundle_id(n: u128) -> SupportBundleUuid {
    SupportBundleUuid::from_untyped(id(0xb100 + n))
}
const CASE: u128 = 0xca5e;
fn case_id() -> CaseUuid {
    CaseUuid::from_untyped(id(CASE))
}
fn executor(n: u128) -> ExecutorUuid {
    ExecutorUuid::from_untyped(id(0xe0 + n))
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().unwrap()
}

/// A sitrep `n` with parent `n - 1`, the given alert and bundle requests
/// (each named by number and the sitrep it first appeared in).
fn sitrep(
    n: u128,
    alerts: &[(u128, u128)],
    bundles: &[(u128, u128)],
    generations: (i64, i64),
) -> Sitrep {
    Sitrep {
        metadata: SitrepMetadata {
            id: sitrep_id(n),
            parent_sitrep_id: (n > 1).then(|| sitrep_id(n - 1)),
            creator_id: executor(1),
            time_created: at(&format!("2026-11-21T12:0{n}:00Z")),
            comment: format!("sitrep {n}"),
            alert_generation: Generation::try_new(generations.0).unwrap(),
            support_bundle_generation: Generation::try_new(generations.1).unwrap(),
        },
        cases: vec![Case {
            id: case_id(),
            diagnosis_engine: "psu-watch".into(),
            opened_sitrep_id: sitrep_id(1),
            closed_sitrep_id: None,
            comment: "power supply flapping".into(),
        }],
        alert_requests: alerts
            .iter()
            .map(|&(a, first)| AlertRequest {
                id: alert_id(a),
                case_id: case_id(),
                requested_sitrep_id: sitrep_id(first),
                class: format!("hw.pwr.psu.{a}"),
                payload: serde_json::json!({ "psu": a }),
            })
            .collect(),
        support_bundle_requests: bundles
            .iter()
            .map(|&(b, first)| SupportBundleRequest {
                id: bundle_id(b),
                case_id: case_id(),
                requested_sitrep_id: sitrep_id(first),
                reason: format!("collect psu {b} logs"),
                data_selection: serde_json::json!({ "logs": b }),
            })
            .collect(),
    }
}

async fn create(env: &TestEnv, s: &Sitrep, resource: ResourceType) {
    let ds = &env.datastore;
    let generation = s.metadata.generation(resource);
    ds.fm_resources_create(&env.opctx(Role::FmExecutor), s.id(), generation, resource)
        .await
        .unwrap();
}

fn type_status(
    resource: ResourceType,
    sitrep: SitrepRef,
    generation: i64,
    counts: [u64; 4],
    stale: bool,
) -> RendezvousTypeStatus {
    RendezvousTypeStatus {
        resource,
        sitrep,
        generation: Generation::try_new(generation).unwrap(),
        requested: counts[0],
        newly_requested: 0,
        created: counts[1],
        already_existed: counts[2],
        deleted_not_recreated: counts[3],
        refused_nil_id: 0,
        stale,
        latest_generation: None,
        statements: 1,
        retries: 0,
        outcome: if stale {
            "skipped: this executor's sitrep is no longer current".into()
        } else {
            "executed".into()
        },
        errors: vec![],
        sweep: SweepStatus {
            outcome: "swept".into(),
            pages: 1,
            tombstones_examined: 2,
            hard_deleted: 1,
            retained_still_requested: 1,
            retained_too_new: 0,
            retained_sitrep_missing: 0,
            retries: 0,
            errors: vec![],
        },
    }
}

/// Seeds the database: four sitreps (the first two pruned into the
/// archive), alerts and bundles created by execution, tombstones, a swept
/// alert, resources not made by fault management, an up-to-date executor
/// (with a panicked pruner activation) and a lagging one. Every timestamp
/// is then set to a fixed value.
async fn seed(env: &TestEnv) {
    let ds = &env.datastore;
    let fm = env.opctx(Role::FmExecutor);
    let operator = env.opctx(Role::Operator);
    // v1: alerts 1, 2; bundle 1.
    let s1 = sitrep(1, &[(1, 1), (2, 1)], &[(1, 1)], (1, 1));
    ds.sitrep_insert(&fm, &s1).await.unwrap();
    create(env, &s1, ResourceType::Alert).await;
    create(env, &s1, ResourceType::SupportBundle).await;
    // v2: alert 3 added.
    let s2 = sitrep(2, &[(1, 1), (2, 1), (3, 2)], &[(1, 1)], (2, 1));
    ds.sitrep_insert(&fm, &s2).await.unwrap();
    create(env, &s2, ResourceType::Alert).await;
    // v3: alert 1 removed, bundle 2 added.
    let s3 = sitrep(3, &[(2, 1), (3, 2)], &[(1, 1), (2, 3)], (3, 2));
    ds.sitrep_insert(&fm, &s3).await.unwrap();
    create(env, &s3, ResourceType::SupportBundle).await;
    // Alert 1 is deleted and swept (S3 no longer requests it).
    ds.alert_delete(&operator, alert_id(1)).await.unwrap();
    ds.fm_tombstones_sweep(&fm, s3.id(), ResourceType::Alert, None).await.unwrap();
    // v4 (current): alert 4 added; bundle 1 removed.
    let s4 = sitrep(4, &[(2, 1), (3, 2), (4, 4)], &[(2, 3)], (4, 3));
    ds.sitrep_insert(&fm, &s4).await.unwrap();
    create(env, &s4, ResourceType::Alert).await;
    // Tombstones: alert 2 (still requested), bundle 1 (no longer requested).
    ds.alert_delete(&operator, alert_id(2)).await.unwrap();
    ds.support_bundle_delete(&operator, bundle_id(1)).await.unwrap();
    // Not made by fault management.
    ds.resource_create(
        &operator,
        NewResource::Alert {
            id: AlertUuid::from_untyped(id(0xaaa1)),
            class: "operator.test".into(),
            payload: serde_json::json!({}),
        },
    )
    .await
    .unwrap();
    ds.resource_create(
        &operator,
        NewResource::SupportBundle {
            id: SupportBundleUuid::from_untyped(id(0xbbb1)),
            reason: "operator asked".into(),
            data_selection: serde_json::json!({}),
        },
    )
    .await
    .unwrap();
    // Prune: keep v3 and v4, archive v1 and v2.
    ds.sitrep_history_prune(&fm, RetentionPolicy { keep: 2, archive_keep: 10 }).await.unwrap();

    // Executors: 1 is up to date (and its pruner panicked), 2 lags on v3.
    let v = |n: i64| SitrepVersion::try_new(n).unwrap();
    let r3 = SitrepRef { version: v(3), sitrep_id: s3.id() };
    let r4 = SitrepRef { version: v(4), sitrep_id: s4.id() };
    let records = [
        (
            executor(1),
            FmRendezvousStatus::TASK_NAME,
            "2026-11-21T12:59:30Z",
            serde_json::to_value(FmRendezvousStatus {
                time_started: at("2026-11-21T12:59:30Z"),
                duration_usec: 1500,
                sitrep: Some(r4),
                outcome: "executed".into(),
                alert: Some(type_status(ResourceType::Alert, r4, 4, [3, 1, 1, 1], false)),
                support_bundle: Some(type_status(
                    ResourceType::SupportBundle,
                    r4,
                    3,
                    [1, 0, 1, 0],
                    false,
                )),
            })
            .unwrap(),
        ),
        (
            executor(1),
            FmSitrepLoaderStatus::TASK_NAME,
            "2026-11-21T12:59:50Z",
            serde_json::to_value(FmSitrepLoaderStatus {
                woken_by: vec![nexus_fm_types::ActivationReason::Periodic],
                pinned: None,
                current: Some(r4),
                loaded: Some(r4),
                changed: false,
                listener: "listening".into(),
                outcome: "unchanged".into(),
                error: None,
            })
            .unwrap(),
        ),
        (
            executor(1),
            "fm_sitrep_pruner",
            "2026-11-21T12:58:00Z",
            serde_json::to_value(PanickedActivationStatus::new("index out of bounds")).unwrap(),
        ),
        (
            executor(2),
            FmRendezvousStatus::TASK_NAME,
            "2026-11-21T11:50:00Z",
            serde_json::to_value(FmRendezvousStatus {
                time_started: at("2026-11-21T11:50:00Z"),
                duration_usec: 2_000_000,
                sitrep: Some(r3),
                outcome: "executed".into(),
                alert: Some(type_status(ResourceType::Alert, r3, 3, [2, 0, 2, 0], true)),
                support_bundle: None,
            })
            .unwrap(),
        ),
    ];
    for (i, (executor_id, task, started, status)) in records.into_iter().enumerate() {
        ds.executor_task_status_upsert(
            &fm,
            &TaskActivationRecord {
                executor_id,
                task_name: task.to_string(),
                iteration: 10 + i as u64,
                time_started: at(started),
                duration_usec: 1500,
                status,
            },
        )
        .await
        .unwrap();
    }

    // Fixed timestamps for everything the datastore stamped with now().
    let client = fm_dev::connect(env.db.url()).await.unwrap();
    client
        .batch_execute(
            "UPDATE fm_sitrep_history \
                SET time_made_current = '2026-11-21T12:00:30Z'::timestamptz \
                                        + (version || ' minutes')::interval; \
             UPDATE fm_sitrep_archive \
                SET time_made_current = '2026-11-21T12:00:30Z'::timestamptz \
                                        + (version || ' minutes')::interval, \
                    time_archived = '2026-11-21T12:30:00Z'; \
             UPDATE alert SET time_created = '2026-11-21T12:10:00Z'; \
             UPDATE alert SET time_deleted = '2026-11-21T12:20:00Z' \
                WHERE time_deleted IS NOT NULL; \
             UPDATE support_bundle SET time_created = '2026-11-21T12:10:00Z'; \
             UPDATE support_bundle SET time_deleted = '2026-11-21T12:20:00Z' \
                WHERE time_deleted IS NOT NULL; \
             UPDATE fm_collected_resource \
                SET time_deleted = '2026-11-21T12:05:00Z', \
                    time_collected = '2026-11-21T12:06:00Z';",
        )
        .await
        .unwrap();
}

/// Runs the binary; returns (status, stdout, stderr).
fn fmdb(db_url: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fmdb"));
    command.env_remove("FM_DB_URL").env("COLUMNS", "200");
    if let Some(url) = db_url {
        command.arg("--db-url").arg(url);
    }
    let output = command.args(args).output().expect("running fmdb");
    (
        output.status.code().expect("fmdb exited by a signal"),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Runs the binary and compares its output with `tests/output/NAME.txt`;
/// `url` is masked as `<DB_URL>`. Returns the exit status.
fn snapshot(name: &str, db_url: Option<&str>, args: &[&str]) -> i32 {
    let (code, stdout, stderr) = fmdb(db_url, args);
    let mut text = format!(
        "$ fmdb {}{}\nexit status: {code}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        if db_url.is_some() { "--db-url <DB_URL> " } else { "" },
        args.join(" ")
    );
    if let Some(url) = db_url {
        text = text.replace(url, "<DB_URL>");
    }
    // Plan costs depend on the server's statistics: mask them.
    while let Some(start) = text.find("(cost=") {
        let end = text[start..].find(')').map_or(text.len(), |e| start + e + 1);
        text.replace_range(start..end, "(costs masked)");
    }
    expectorate::assert_contents(format!("tests/output/{name}.txt"), &text);
    code
}

#[test]
fn help_of_every_command() {
    for (name, args) in [
        ("help", &["--help"][..]),
        ("help_sitrep", &["sitrep", "--help"]),
        ("help_sitrep_history", &["sitrep", "history", "--help"]),
        ("help_sitrep_show", &["sitrep", "show", "--help"]),
        ("help_sitrep_diff", &["sitrep", "diff", "--help"]),
        ("help_alert", &["alert", "--help"]),
        ("help_alert_list", &["alert", "list", "--help"]),
        ("help_alert_show", &["alert", "show", "--help"]),
        ("help_alert_delete", &["alert", "delete", "--help"]),
        ("help_support_bundle", &["support-bundle", "--help"]),
        ("help_support_bundle_list", &["support-bundle", "list", "--help"]),
        ("help_support_bundle_show", &["support-bundle", "show", "--help"]),
        ("help_support_bundle_delete", &["support-bundle", "delete", "--help"]),
        ("help_executors", &["executors", "--help"]),
        ("help_tombstones", &["tombstones", "--help"]),
        ("help_explain", &["explain", "--help"]),
    ] {
        assert_eq!(snapshot(name, None, args), 0, "{name}");
    }
}

#[tokio::test]
async fn usage_errors() {
    let env = TestEnv::new().await;
    let url = Some(env.db.url());
    let cases: [(&str, Option<&str>, &[&str], i32); 9] = [
        ("error_bad_uuid", url, &["alert", "show", "not-a-uuid"], 3),
        ("error_bad_sitrep_uuid", url, &["sitrep", "show", "1234-abcd"], 3),
        ("error_selector_v0", url, &["sitrep", "show", "v0"], 4),
        ("error_selector_vx", url, &["sitrep", "show", "vx"], 4),
        ("error_selector_latest", url, &["sitrep", "diff", "latest", "current"], 4),
        (
            "error_sitrep_nowhere",
            url,
            &["sitrep", "show", "00000000-0000-4000-8000-00000000dead"],
            5,
        ),
        (
            "error_missing_destructive",
            url,
            &["alert", "delete", "00000000-0000-4000-8000-00000000a102"],
            2,
        ),
        (
            "error_unreachable",
            Some("postgresql://postgres@/fm?host=/nonexistent-fmdb-test&port=1"),
            &["sitrep", "history"],
            6,
        ),
        ("error_unknown_flag", url, &["sitrep", "history", "--bogus"], 2),
    ];
    for (name, db_url, args, expected) in cases {
        assert_eq!(snapshot(name, db_url, args), expected, "{name}");
    }
    // No URL and no embedded database in the data directory.
    let dir = std::env::temp_dir().join("fmdb-test-no-such-data-dir");
    let dir = dir.to_str().unwrap();
    let (code, stdout, stderr) = fmdb(None, &["--data-dir", dir, "sitrep", "history"]);
    assert_eq!(code, 6, "{stderr}");
    assert_eq!(stdout, "");
    let stderr = stderr.replace(dir, "<DIR>");
    expectorate::assert_contents("tests/output/error_no_database.txt", &stderr);
}

#[tokio::test]
async fn wrong_schema_versions_are_refused() {
    let env = TestEnv::new().await;
    let client = fm_dev::connect(env.db.url()).await.unwrap();
    let expected = fm_db_queries::migration::SCHEMA_VERSION;
    for (name, version) in
        [("error_schema_newer", i64::from(expected) + 1), ("error_schema_older", 1)]
    {
        client.batch_execute(&format!("UPDATE db_metadata SET version = {version}")).await.unwrap();
        assert_eq!(snapshot(name, Some(env.db.url()), &["executors"]), 7, "{name}");
    }
}

#[tokio::test]
async fn every_command_on_a_seeded_database() {
    let env = TestEnv::new().await;
    seed(&env).await;
    let url = Some(env.db.url());
    let s = |n| sitrep_id(n).to_string();
    let a = |n| alert_id(n).to_string();
    let b = |n| bundle_id(n).to_string();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("sitrep_history", vec!["sitrep".into(), "history".into()]),
        ("sitrep_show_current", vec!["sitrep".into(), "show".into(), "current".into()]),
        ("sitrep_show_v3", vec!["sitrep".into(), "show".into(), "v3".into()]),
        ("sitrep_show_archived", vec!["sitrep".into(), "show".into(), s(1)]),
        ("sitrep_show_archived_v2", vec!["sitrep".into(), "show".into(), "v2".into()]),
        ("sitrep_diff", vec!["sitrep".into(), "diff".into(), "v1".into(), "current".into()]),
        ("sitrep_diff_retained", vec!["sitrep".into(), "diff".into(), s(3), s(4)]),
        ("alert_list", vec!["alert".into(), "list".into()]),
        ("alert_list_deleted", vec!["alert".into(), "list".into(), "--include-deleted".into()]),
        ("alert_show", vec!["alert".into(), "show".into(), a(3)]),
        ("alert_show_tombstone_hidden", vec!["alert".into(), "show".into(), a(2)]),
        (
            "alert_show_tombstone",
            vec!["alert".into(), "show".into(), a(2), "--include-deleted".into()],
        ),
        ("alert_show_swept", vec!["alert".into(), "show".into(), a(1)]),
        ("support_bundle_list", vec!["support-bundle".into(), "list".into()]),
        (
            "support_bundle_list_deleted",
            vec!["support-bundle".into(), "list".into(), "--include-deleted".into()],
        ),
        ("support_bundle_show", vec!["support-bundle".into(), "show".into(), b(2)]),
        ("executors", vec!["executors".into()]),
        ("tombstones", vec!["tombstones".into()]),
        ("tombstones_list", vec!["tombstones".into(), "--list".into()]),
        ("explain_one", vec!["explain".into(), "sitrep_current_history_entry".into()]),
        (
            "explain_one_json",
            vec!["explain".into(), "sitrep_current_history_entry".into(), "--json".into()],
        ),
        ("explain_unknown", vec!["explain".into(), "no_such_query".into()]),
    ];
    // Not found: a hidden tombstone, a swept alert; an unknown query name.
    let failing =
        [("alert_show_tombstone_hidden", 5), ("alert_show_swept", 5), ("explain_unknown", 4)];
    for (name, args) in &cases {
        let expected = failing.iter().find(|(n, _)| n == name).map_or(0, |(_, code)| *code);
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--now", NOW]);
        assert_eq!(snapshot(name, url, &args), expected, "{name}");
        if !name.starts_with("explain") {
            args.push("--json");
            assert_eq!(snapshot(&format!("{name}_json"), url, &args), expected, "{name} --json");
        }
    }
    // A listing cut by the fetch limit warns on stderr.
    let (code, _, stderr) =
        fmdb(url, &["alert", "list", "--include-deleted", "--fetch-limit", "2"]);
    assert_eq!(code, 0);
    assert!(stderr.contains("showing only the first 2 alerts"), "{stderr}");
    // Every catalogued query plans without a sequential scan here.
    let (code, stdout, stderr) = fmdb(url, &["explain"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(" 0 flagged"), "{stdout}");
}

#[tokio::test]
async fn explain_flags_a_sequential_scan() {
    let env = TestEnv::new().await;
    let client = fm_dev::connect(env.db.url()).await.unwrap();
    // Without the history's primary key, reading the current sitrep must
    // scan the table.
    client
        .batch_execute("ALTER TABLE fm_sitrep_history DROP CONSTRAINT fm_sitrep_history_pkey")
        .await
        .unwrap();
    let (code, stdout, _) = fmdb(Some(env.db.url()), &["explain", "sitrep_current_history_entry"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("SEQ SCAN: ->  Seq Scan on fm_sitrep_history"), "{stdout}");
}

#[tokio::test]
async fn delete_without_destructive_writes_nothing_and_with_it_deletes() {
    let env = TestEnv::new().await;
    seed(&env).await;
    let url = Some(env.db.url());
    let before = fm_table_checksums(env.db.url()).await;
    let live_fm_alert = alert_id(3).to_string();
    let (code, _, stderr) = fmdb(url, &["alert", "delete", &live_fm_alert]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = fmdb(url, &["support-bundle", "delete", &bundle_id(2).to_string()]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(fm_table_checksums(env.db.url()).await, before, "nothing may change without -w");

    // With -w: soft delete of an FM alert, hard delete of another, NotFound.
    assert_eq!(snapshot("alert_delete_soft", url, &["alert", "delete", &live_fm_alert, "-w"]), 0);
    let row = env
        .datastore
        .alert_get_including_deleted(&env.opctx(Role::Viewer), alert_id(3))
        .await
        .unwrap();
    assert!(row.time_deleted.is_some());
    let other = id(0xaaa1).to_string();
    assert_eq!(
        snapshot("alert_delete_hard", url, &["alert", "delete", &other, "--destructive"]),
        0
    );
    assert!(!env.all_rows(ResourceType::Alert).await.contains(&id(0xaaa1)));
    assert_eq!(snapshot("alert_delete_not_found", url, &["alert", "delete", &other, "-w"]), 5);
    assert_eq!(
        snapshot(
            "support_bundle_delete_soft",
            url,
            &["support-bundle", "delete", &bundle_id(2).to_string(), "-w", "--json"]
        ),
        0
    );
}

#[tokio::test]
async fn read_commands_run_in_read_only_transactions() {
    let env = TestEnv::new().await;
    seed(&env).await;
    let before = fm_table_checksums(env.db.url()).await;
    // The session options fmdb's reads connect with: the server refuses
    // writes with SQLSTATE 25006.
    let client = fm_dev::connect(&fmdb::db::read_only_url(env.db.url())).await.unwrap();
    let error = client
        .batch_execute("BEGIN; DELETE FROM alert; COMMIT;")
        .await
        .expect_err("a write in a read-only session");
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION),
        "{error:?}"
    );
    drop(client);
    // The datastore the read commands open, exactly as they open it: even
    // an operator's delete through it is refused by the server.
    let ctx = fmdb::Context {
        global: fmdb::GlobalArgs {
            db_url: Some(env.db.url().to_string()),
            data_dir: ".fm".into(),
            json: false,
            fetch_limit: 10,
            destructive: false,
            now: None,
        },
        now: chrono::Utc::now(),
        log: env.log.clone(),
    };
    let db = fmdb::db::open(&ctx, fmdb::db::Access::ReadOnly).await.unwrap();
    assert_eq!(db.opctx.role(), Role::Viewer);
    let error =
        db.datastore.alert_delete(&env.opctx(Role::Operator), alert_id(3)).await.unwrap_err();
    let chain = fm_db_queries::error::error_chain(&error);
    assert!(chain.contains("read-only transaction"), "{chain}");
    // The url form with a query string and the key=value form both carry it.
    assert_eq!(
        fmdb::db::read_only_url("host=/tmp port=5 dbname=fm"),
        "host=/tmp port=5 dbname=fm options='-c default_transaction_read_only=on'"
    );
    assert_eq!(fm_table_checksums(env.db.url()).await, before);
}

#[tokio::test]
async fn without_a_url_the_embedded_database_of_fmd_is_found() {
    // A data directory as fmd lays it out, with its embedded server running
    // (started the way fmd starts it). Its parent must be open to the
    // server's user, so it is made here rather than by `tempfile`.
    let dir = std::env::temp_dir().join(format!("fmdb-embedded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = fm_integration_tests::test_log();
    let options = nexus_fm::embedded::EmbeddedOptions {
        data_dir: Some(dir.join(nexus_fm::fmd::EMBEDDED_CLUSTER_DIR)),
        port: None,
        tcp: false,
        fast_and_unsafe: true,
    };
    let database = nexus_fm::embedded::EmbeddedDatabase::start(&log, options).await.unwrap();
    let data_dir = dir.to_str().unwrap();
    let (code, stdout, stderr) = fmdb(None, &["--data-dir", data_dir, "sitrep", "history"]);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "the history is empty: no sitrep has been published\n"),
        "{stderr}"
    );
    tokio::task::spawn_blocking(move || database.stop()).await.unwrap().unwrap();
    // Stopped: fmdb says how to start it, and starts nothing itself.
    let (code, _, stderr) = fmdb(None, &["--data-dir", data_dir, "sitrep", "history"]);
    assert_eq!(code, 6, "{stderr}");
    assert!(stderr.contains("no embedded database running"), "{stderr}");
    assert!(!dir.join("postgres/postmaster.pid").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn bad_data_is_shown_and_the_command_carries_on() {
    let env = TestEnv::new().await;
    seed(&env).await;
    let client = fm_dev::connect(env.db.url()).await.unwrap();
    // An archive failure record (metadata only), an archive entry that is
    // not in the archive's JSON form, and a status no task writes.
    client
        .batch_execute(
            "INSERT INTO fm_sitrep_archive VALUES \
               ('00000000-0000-4000-8000-000000005190', 90, '2026-11-21T11:00:00Z', \
                '2026-11-21T11:30:00Z', \
                '{\"metadata\": null, \"cases\": [], \"alert_requests\": [], \
                  \"support_bundle_requests\": [], \
                  \"archive\": {\"status\": \"failed\", \"error\": \"reading cases: boom\"}}'), \
               ('00000000-0000-4000-8000-000000005191', 91, '2026-11-21T11:01:00Z', \
                '2026-11-21T11:30:00Z', '{\"not\": \"an archive\"}'); \
             INSERT INTO fm_executor_task_status VALUES \
               ('00000000-0000-4000-8000-0000000000e3', 'fm_rendezvous', 1, \
                '2026-11-21T12:59:00Z', 5, '{\"outcome\": 5}');",
        )
        .await
        .unwrap();
    let url = Some(env.db.url());
    assert_eq!(snapshot("bad_archive_failure_record", url, &["sitrep", "show", "v90"]), 0);
    assert_eq!(
        snapshot(
            "bad_archive_undecodable",
            url,
            &["sitrep", "show", "00000000-0000-4000-8000-000000005191"]
        ),
        0
    );
    assert_eq!(snapshot("bad_archive_diff", url, &["sitrep", "diff", "v90", "current"]), 0);
    // A truncated archive entry; a sitrep row that never became current.
    client
        .batch_execute(
            "INSERT INTO fm_sitrep_archive VALUES \
               ('00000000-0000-4000-8000-000000005192', 92, '2026-11-21T11:02:00Z', \
                '2026-11-21T11:30:00Z', \
                '{\"metadata\": {\"id\": \"00000000-0000-4000-8000-000000005192\", \
                    \"parent_sitrep_id\": null, \
                    \"creator_id\": \"00000000-0000-4000-8000-0000000000e1\", \
                    \"time_created\": \"2026-11-21T11:00:00Z\", \"comment\": \"big\", \
                    \"alert_generation\": 1, \"support_bundle_generation\": 1}, \
                  \"cases\": [], \
                  \"alert_requests\": [{\"id\": \"00000000-0000-4000-8000-00000000a1ff\", \
                    \"case_id\": \"00000000-0000-4000-8000-00000000ca5e\", \
                    \"requested_sitrep_id\": \"00000000-0000-4000-8000-000000005192\", \
                    \"class\": \"hw.big\", \"payload\": null, \
                    \"payload_omitted_bytes\": 70000}], \
                  \"support_bundle_requests\": [], \
                  \"archive\": {\"status\": \"truncated\", \"max_bytes\": 4194304, \
                    \"max_field_bytes\": 16384, \"cases_omitted\": 1, \
                    \"alert_requests_omitted\": 2, \"support_bundle_requests_omitted\": 0, \
                    \"alert_payloads_omitted\": 1, \
                    \"support_bundle_data_selections_omitted\": 0}}'); \
             INSERT INTO fm_sitrep VALUES ('00000000-0000-4000-8000-000000005199', \
               '00000000-0000-4000-8000-000000005174', '00000000-0000-4000-8000-0000000000e1', \
               '2026-11-21T12:50:00Z', 'never published', 5, 3);",
        )
        .await
        .unwrap();
    assert_eq!(snapshot("bad_archive_truncated", url, &["sitrep", "show", "v92"]), 0);
    assert_eq!(
        snapshot(
            "sitrep_show_never_current",
            url,
            &["sitrep", "show", "00000000-0000-4000-8000-000000005199"]
        ),
        0
    );
    let (code, stdout, stderr) = fmdb(url, &["executors", "--now", NOW]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("fm_rendezvous (activation 1)")
            && stdout.contains("status not understood (invalid type: integer `5`"),
        "{stdout}"
    );
    // A history entry whose sitrep row is gone: the history shows it as
    // such and goes on.
    client
        .batch_execute(
            "INSERT INTO fm_sitrep_history VALUES \
               (5, '00000000-0000-4000-8000-000000005198', '2026-11-21T12:55:00Z')",
        )
        .await
        .unwrap();
    assert_eq!(snapshot("bad_history_missing_row", url, &["sitrep", "history"]), 0);
}
