//! Nothing the caller holds is trusted: nil ids are refused everywhere and
//! read wherever they already are; execution reads the committed sitrep in
//! the database; a deleted resource never comes back whoever publishes; and
//! inputs that contradict the history are refused with nothing written.

use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use fm_db_queries::datastore::rendezvous::{CreateCounts, CreateOutcome, NewResource};
use fm_db_queries::datastore::sitrep::prune::RetentionPolicy;
use fm_db_queries::migration::{self, MIGRATIONS, SCHEMA_VERSION};
use fm_db_queries::{Error, Role};
use fm_dev::TestDatabase;
use fm_integration_tests::sitreps::{child, first_sitrep};
use fm_integration_tests::{TestEnv, connect, datastore, fm_table_checksums, opctx, test_log};
use nexus_fm::builder::SatisfiedRequests;
use nexus_fm_types::{
    AlertRequest, AlertUuid, CaseUuid, ExecutorUuid, Generation, ResourceType, Sitrep, SitrepUuid,
    SitrepValidationError, SupportBundleUuid,
};
use serde_json::json;
use uuid::Uuid;

const NIL: &str = "00000000-0000-0000-0000-000000000000";

async fn publish(env: &TestEnv, sitrep: &Sitrep) {
    env.datastore
        .sitrep_insert(&env.opctx(Role::FmExecutor), sitrep)
        .await
        .unwrap_or_else(|e| panic!("publishing {}: {e:#?}", sitrep.id()));
}

async fn create(
    env: &TestEnv,
    sitrep_id: SitrepUuid,
    generation: Generation,
    resource: ResourceType,
) -> Result<CreateOutcome, Error> {
    env.datastore
        .fm_resources_create(&env.opctx(Role::FmExecutor), sitrep_id, generation, resource)
        .await
}

async fn alert_count(env: &TestEnv) -> i64 {
    let mut conn = connect(env.db.url()).await;
    diesel::sql_query("SELECT count(*) AS n FROM alert")
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

// ---------------------------------------------------------------------------
// 1. Ids
// ---------------------------------------------------------------------------

/// Publishing refuses a nil id anywhere, naming the field, with nothing
/// written; `resource_create` refuses a nil id; and the schema refuses nil
/// ids from any other writer.
#[tokio::test]
async fn nil_ids_are_refused_by_publishing_creation_and_the_schema() {
    let env = TestEnv::new().await;
    let nil = Uuid::nil();

    let mut s = first_sitrep(2, 1);
    s.alert_requests[1].id = AlertUuid::from_untyped(nil);
    s.normalize();
    let err = env.publish_rejected(&s).await;
    assert!(
        matches!(&err, Error::InvalidSitrep(SitrepValidationError::NilId { what })
            if what.starts_with("id of alert request")),
        "{err:#?}"
    );
    let mut s = first_sitrep(1, 1);
    s.metadata.creator_id = ExecutorUuid::from_untyped(nil);
    let err = env.publish_rejected(&s).await;
    assert!(err.to_string().contains("creator id is the nil UUID"), "{err}");

    let before = fm_table_checksums(env.db.url()).await;
    let err = env
        .datastore
        .resource_create(
            &env.opctx(Role::Operator),
            NewResource::SupportBundle {
                id: SupportBundleUuid::from_untyped(nil),
                reason: "by hand".into(),
                data_selection: json!({}),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:#?}");
    assert_eq!(before, fm_table_checksums(env.db.url()).await);

    // Any other writer: the CHECK constraints of schema version 3.
    let mut conn = connect(env.db.url()).await;
    for (sql, constraint) in [
        (
            format!(
                "INSERT INTO alert (id, class, payload, time_created) \
                 VALUES ('{NIL}', 'c', '{{}}', now())"
            ),
            "alert_id_not_nil",
        ),
        (
            format!(
                "INSERT INTO fm_alert_request VALUES ('{}', '{NIL}', '{}', '{}', 'c', '{{}}')",
                Uuid::new_v4(),
                Uuid::new_v4(),
                Uuid::new_v4()
            ),
            "fm_alert_request_id_not_nil",
        ),
        (
            format!(
                "INSERT INTO fm_sitrep VALUES ('{}', '{NIL}', '{}', now(), '', 1, 1)",
                Uuid::new_v4(),
                Uuid::new_v4()
            ),
            "fm_sitrep_parent_sitrep_id_not_nil",
        ),
    ] {
        let err = conn.batch_execute(&sql).await.unwrap_err();
        assert!(err.to_string().contains(constraint), "{sql}: {err}");
    }
}

/// A database that holds nil ids from before schema version 3 (inserted by
/// raw SQL under version 2, then migrated): every paginated reader, the
/// sweep and the creation see those rows. Shown to fail without its guard:
/// with the sitrep walk's cursor starting at `id > nil` again, the nil case
/// vanished from `sitrep_read` and the test failed there; every other
/// reader had the same first-page predicate.
#[tokio::test]
async fn rows_with_nil_ids_that_predate_the_constraint_are_read() {
    let log = test_log();
    let db = TestDatabase::empty().expect("empty database");
    let mut conn = connect(db.url()).await;
    for m in &MIGRATIONS[..2] {
        for step in m.steps {
            conn.batch_execute(step.sql).await.unwrap();
        }
    }
    conn.batch_execute(
        "INSERT INTO db_metadata (singleton, version, target_version, time_created, \
         time_modified) VALUES (true, 2, NULL, now(), now())",
    )
    .await
    .unwrap();

    // S1 (alert generation 1) created a nil alert that an operator deleted;
    // S2 (generation 2) no longer requests it, and requests a nil bundle.
    // A live nil bundle of a case; a task status of the nil executor.
    let (s1, s2, case, executor) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::nil());
    conn.batch_execute(&format!(
        "INSERT INTO fm_sitrep VALUES ('{s1}', NULL, '{case}', now(), 's1', 1, 1), \
                                      ('{s2}', '{s1}', '{case}', now(), 's2', 2, 1); \
         INSERT INTO fm_sitrep_history VALUES (1, '{s1}', now()), (2, '{s2}', now()); \
         INSERT INTO fm_case VALUES ('{s2}', '{NIL}', 'engine', '{s2}', NULL, ''); \
         INSERT INTO fm_alert_request VALUES ('{s1}', '{NIL}', '{NIL}', '{s1}', 'c', '{{}}'); \
         INSERT INTO fm_support_bundle_request \
             VALUES ('{s2}', '{NIL}', '{NIL}', '{s2}', 'r', '{{}}'); \
         INSERT INTO alert (id, class, payload, time_created, fm_case_id, fm_sitrep_id, \
             fm_generation, time_deleted) VALUES ('{NIL}', 'c', '{{}}', now(), '{NIL}', '{s1}', \
             1, now()); \
         INSERT INTO fm_executor_task_status VALUES ('{executor}', 'fm_rendezvous', 1, now(), \
             5, '{{}}');"
    ))
    .await
    .unwrap();
    let report = migration::apply_migrations(&mut conn, &log).await.unwrap();
    assert_eq!((report.from, report.to), (2, SCHEMA_VERSION));
    let ds = datastore(&log, db.url()).await;
    let viewer = opctx(&log, Role::Viewer);
    let fm = opctx(&log, Role::FmExecutor);

    // Sitrep reads and request-id pages.
    let sitrep = ds.sitrep_read(&viewer, SitrepUuid::from_untyped(s2)).await.unwrap();
    assert_eq!(sitrep.cases.iter().map(|c| c.id.into_untyped()).collect::<Vec<_>>(), [Uuid::nil()]);
    assert_eq!(sitrep.support_bundle_requests[0].id.into_untyped(), Uuid::nil());
    let ids = ds
        .sitrep_request_ids(&viewer, SitrepUuid::from_untyped(s1), ResourceType::Alert, None, 10)
        .await
        .unwrap();
    assert_eq!(ids, [Uuid::nil()]);
    // Task statuses.
    let statuses = ds.executor_task_status_list(&viewer, None, 10).await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].executor_id.into_untyped(), Uuid::nil());

    // Creation of S2's bundles: the nil request is counted as refused, not
    // lost and not fatal (the schema refuses a nil bundle id).
    let outcome = ds
        .fm_resources_create(
            &fm,
            SitrepUuid::from_untyped(s2),
            Generation::FIRST,
            ResourceType::SupportBundle,
        )
        .await
        .unwrap();
    let CreateOutcome::Executed(counts) = outcome else { panic!("{outcome:?}") };
    assert_eq!((counts.requested, counts.created, counts.refused_nil_id), (1, 0, 1));

    // The sweep driven by S2 examines the nil tombstone and collects it.
    let swept = ds
        .fm_tombstones_sweep(&fm, SitrepUuid::from_untyped(s2), ResourceType::Alert, None)
        .await
        .unwrap();
    assert_eq!((swept.tombstones_examined, swept.hard_deleted), (1, 1));
    let ledger: Vec<Uuid> = diesel::sql_query("SELECT id FROM fm_collected_resource")
        .load::<IdRow>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ledger, [Uuid::nil()]);

    // Live nil resources, for the resource readers: a nil alert of a case
    // and a nil bundle assigned to an executor, inserted by a writer that
    // predates the constraint (simulated by dropping it for the insert).
    let (case_id, owner) = (Uuid::new_v4(), Uuid::new_v4());
    conn.batch_execute(&format!(
        "ALTER TABLE alert DROP CONSTRAINT alert_id_not_nil; \
         ALTER TABLE support_bundle DROP CONSTRAINT support_bundle_id_not_nil; \
         INSERT INTO alert (id, class, payload, time_created, fm_case_id, fm_sitrep_id, \
             fm_generation) VALUES ('{NIL}', 'c', '{{}}', now(), '{case_id}', '{s1}', 1); \
         INSERT INTO support_bundle (id, reason, data_selection, state, time_created, \
             assigned_executor, fm_case_id, fm_sitrep_id, fm_generation) \
             VALUES ('{NIL}', 'r', '{{}}', 'active', now(), '{owner}', '{case_id}', '{s1}', 1);"
    ))
    .await
    .unwrap();
    let nil_alert = |v: Vec<fm_db_queries::datastore::alert::Alert>| {
        v.iter().map(|a| a.id.into_untyped()).collect::<Vec<_>>()
    };
    assert_eq!(nil_alert(ds.alert_list(&viewer, None, 10).await.unwrap()), [Uuid::nil()]);
    let case_id = CaseUuid::from_untyped(case_id);
    assert_eq!(
        nil_alert(ds.alert_list_by_case(&viewer, case_id, None, 10).await.unwrap()),
        [Uuid::nil()]
    );
    let nil_bundle = |v: Vec<fm_db_queries::datastore::support_bundle::SupportBundle>| {
        v.iter().map(|b| b.id.into_untyped()).collect::<Vec<_>>()
    };
    assert_eq!(nil_bundle(ds.support_bundle_list(&viewer, None, 10).await.unwrap()), [Uuid::nil()]);
    assert_eq!(
        nil_bundle(ds.support_bundle_list_by_case(&viewer, case_id, None, 10).await.unwrap()),
        [Uuid::nil()]
    );
    let owner = ExecutorUuid::from_untyped(owner);
    assert_eq!(
        nil_bundle(ds.support_bundle_list_by_executor(&viewer, owner, None, 10).await.unwrap()),
        [Uuid::nil()]
    );
    assert_eq!(ds.support_bundle_fail_orphaned(&fm, owner).await.unwrap(), 1);
}

#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

// ---------------------------------------------------------------------------
// 2. Execution reads what was committed
// ---------------------------------------------------------------------------

/// A sitrep that was never published creates nothing, even with the
/// current generation; so does a generation that is not the sitrep's own.
/// Before execution read committed rows, the fabricated sitrep's requests
/// were inserted: the guard compared only generations.
#[tokio::test]
async fn a_fabricated_sitrep_or_a_wrong_generation_creates_nothing() {
    let env = TestEnv::new().await;
    let s1 = first_sitrep(2, 1);
    publish(&env, &s1).await;

    // Same generation as the current sitrep, never published.
    let fabricated = first_sitrep(3, 0);
    assert_eq!(fabricated.metadata.alert_generation, s1.metadata.alert_generation);
    let err =
        create(&env, fabricated.id(), Generation::FIRST, ResourceType::Alert).await.unwrap_err();
    assert!(matches!(err, Error::SitrepNotCommitted { sitrep_id } if sitrep_id == fabricated.id()));

    // The right sitrep with a generation that is not its own.
    let wrong = Generation::FIRST.next().unwrap();
    let err = create(&env, s1.id(), wrong, ResourceType::Alert).await.unwrap_err();
    assert!(
        matches!(err, Error::SitrepGenerationMismatch { found: Some(g), .. } if g == Generation::FIRST),
        "{err:#?}"
    );
    assert_eq!(alert_count(&env).await, 0, "nothing may be created");

    // The right sitrep and generation: created from its committed rows.
    let outcome = create(&env, s1.id(), Generation::FIRST, ResourceType::Alert).await.unwrap();
    assert!(matches!(outcome, CreateOutcome::Executed(CreateCounts { created: 2, .. })));
}

/// A published sitrep that the pruner removed (its rows are gone) creates
/// nothing and says so; a sitrep whose newest history entry has lost its
/// row does not fall back to an older entry's generation.
#[tokio::test]
async fn a_pruned_sitrep_or_a_missing_newest_row_creates_nothing() {
    let env = TestEnv::new().await;
    let s1 = first_sitrep(2, 0);
    publish(&env, &s1).await;
    let mut parent = s1.clone();
    for _ in 0..3 {
        let next = child(&parent).build(&SatisfiedRequests::default()).unwrap();
        publish(&env, &next).await;
        parent = next;
    }
    let report = env
        .datastore
        .sitrep_history_prune(
            &env.opctx(Role::FmExecutor),
            RetentionPolicy { keep: 2, archive_keep: 10 },
        )
        .await
        .unwrap();
    assert!(report.pruned.iter().any(|p| p.sitrep_id == s1.id()), "{report:?}");
    let err = create(&env, s1.id(), Generation::FIRST, ResourceType::Alert).await.unwrap_err();
    assert!(matches!(err, Error::SitrepNotCommitted { .. }), "{err:#?}");
    assert_eq!(alert_count(&env).await, 0);

    // The newest entry's sitrep row disappears (a broken database, or a
    // writer that breaks the pruning order): the previous sitrep has the
    // same generation, but the guard must not fall back to it.
    let newest = parent.clone();
    let previous = env
        .datastore
        .sitrep_history_list(
            &env.opctx(Role::Viewer),
            None,
            fm_db_queries::datastore::sitrep::read::Direction::Descending,
            2,
        )
        .await
        .unwrap()[1]
        .sitrep_id;
    let mut conn = connect(env.db.url()).await;
    conn.batch_execute(&format!("DELETE FROM fm_sitrep WHERE id = '{}'", newest.id()))
        .await
        .unwrap();
    let outcome = create(&env, previous, Generation::FIRST, ResourceType::Alert).await.unwrap();
    assert!(matches!(outcome, CreateOutcome::Stale { latest_generation: None, .. }), "{outcome:?}");
    assert_eq!(alert_count(&env).await, 0);
}

/// Creation walks the committed request rows in keyset pages: with pages
/// of 2 every request is created exactly once.
#[tokio::test]
async fn creation_pages_over_the_committed_requests() {
    let env = TestEnv::new().await;
    let s1 = first_sitrep(7, 0);
    publish(&env, &s1).await;
    let outcome = env
        .datastore
        .fm_resources_create_paged(
            &env.opctx(Role::FmExecutor),
            s1.id(),
            Generation::FIRST,
            ResourceType::Alert,
            Some(2),
        )
        .await
        .unwrap();
    let CreateOutcome::Executed(counts) = outcome else { panic!("{outcome:?}") };
    assert_eq!((counts.requested, counts.created, counts.statements), (7, 7, 4));
    assert_eq!(alert_count(&env).await, 7);
}

// ---------------------------------------------------------------------------
// 5. A deleted resource never comes back, whoever publishes
// ---------------------------------------------------------------------------

/// Publish S1 requesting alert A; execute; an operator deletes A; publish
/// S2 without A; the sweep hard-deletes A; publish until S1 and S2 are
/// pruned; then a sitrep whose new request reuses A's id is refused, and A
/// is never live again. Shown to fail without its guard: with the ledger
/// lookup in publishing disabled, the last publish was accepted (and only
/// the creation's own ledger probe would then keep A from coming back).
#[tokio::test]
async fn a_collected_id_is_refused_after_every_sitrep_naming_it_is_pruned() {
    let env = TestEnv::new().await;
    let (fm, operator) = (env.opctx(Role::FmExecutor), env.opctx(Role::Operator));
    let s1 = first_sitrep(1, 0);
    let a = s1.alert_requests[0].id;
    publish(&env, &s1).await;
    create(&env, s1.id(), Generation::FIRST, ResourceType::Alert).await.unwrap();
    env.datastore.alert_delete(&operator, a).await.unwrap();

    let mut b = child(&s1);
    b.withdraw_alert_request(a).unwrap();
    let s2 = b.build(&SatisfiedRequests::default()).unwrap();
    publish(&env, &s2).await;
    let swept = env.datastore.fm_tombstones_sweep(&fm, s2.id(), ResourceType::Alert, None).await;
    assert_eq!(swept.unwrap().hard_deleted, 1);

    let mut parent = s2.clone();
    for _ in 0..3 {
        let next = child(&parent).build(&SatisfiedRequests::default()).unwrap();
        publish(&env, &next).await;
        parent = next;
    }
    env.datastore
        .sitrep_history_prune(&fm, RetentionPolicy { keep: 2, archive_keep: 0 })
        .await
        .unwrap();
    for gone in [s1.id(), s2.id()] {
        let err = env.datastore.sitrep_read(&env.opctx(Role::Viewer), gone).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:#?}");
    }

    // A new request (a fresh case keeps the sitrep valid) reusing A's id.
    let mut b = child(&parent);
    let case = b.open_case("power", "again");
    let fresh = b.request_alert(case, "hw.pwr.remove.psu", json!({})).unwrap();
    let mut reuse = b.build(&SatisfiedRequests::default()).unwrap();
    let request = reuse.alert_requests.iter_mut().find(|r| r.id == fresh).unwrap();
    request.id = a;
    reuse.normalize();
    let err = env.publish_rejected(&reuse).await;
    assert!(
        matches!(&err, Error::RequestIdReused { id, used_by, .. }
            if *id == a.into_untyped() && used_by.contains("deleted")),
        "{err:#?}"
    );
    assert!(
        env.datastore.alert_get(&env.opctx(Role::Viewer), a).await.is_err(),
        "A must never be live again"
    );
}

// ---------------------------------------------------------------------------
// 6. Inputs that contradict the history
// ---------------------------------------------------------------------------

/// A new request naming a sitrep that is neither itself nor in its
/// history, a case whose opening sitrep changes, an alert request reusing
/// a support bundle's id, and NUL characters: each a typed error with
/// nothing written.
#[tokio::test]
async fn inputs_that_contradict_the_history_are_refused() {
    let env = TestEnv::new().await;
    let s1 = first_sitrep(1, 1);
    publish(&env, &s1).await;
    create(&env, s1.id(), Generation::FIRST, ResourceType::SupportBundle).await.unwrap();

    // A new request whose first sitrep is invented.
    let mut b = child(&s1);
    let case = s1.cases[0].id;
    let fresh = b.request_alert(case, "hw.x", json!({})).unwrap();
    let mut s2 = b.build(&SatisfiedRequests::default()).unwrap();
    let invented = SitrepUuid::new_v4();
    s2.alert_requests.iter_mut().find(|r| r.id == fresh).unwrap().requested_sitrep_id = invented;
    let err = env.publish_rejected(&s2).await;
    assert!(
        matches!(&err, Error::InconsistentSitrep { detail, .. } if detail.contains(&invented.to_string())),
        "{err:#?}"
    );
    // Naming an ancestor in the history is tolerated.
    s2.alert_requests.iter_mut().find(|r| r.id == fresh).unwrap().requested_sitrep_id = s1.id();
    let accepted_later = s2.clone();

    // A case whose opening sitrep changes between parent and child.
    let mut s3 = child(&s1).build(&SatisfiedRequests::default()).unwrap();
    s3.cases[0].opened_sitrep_id = s3.id();
    let err = env.publish_rejected(&s3).await;
    assert!(matches!(err, Error::InconsistentSitrep { .. }), "{err:#?}");

    // An alert request whose id is an existing support bundle's.
    // (The child no longer requests the bundle, so the two ids do not meet
    // inside one sitrep, which validation alone refuses.)
    let bundle = s1.support_bundle_requests[0].id.into_untyped();
    let mut b = child(&s1);
    b.withdraw_support_bundle_request(s1.support_bundle_requests[0].id).unwrap();
    let fresh = b.request_alert(case, "hw.x", json!({})).unwrap();
    let mut s4 = b.build(&SatisfiedRequests::default()).unwrap();
    s4.alert_requests.iter_mut().find(|r| r.id == fresh).unwrap().id =
        AlertUuid::from_untyped(bundle);
    s4.normalize();
    let err = env.publish_rejected(&s4).await;
    assert!(
        matches!(&err, Error::RequestIdReused { id, used_by, .. }
            if *id == bundle && used_by.contains("support bundle")),
        "{err:#?}"
    );

    // NUL characters in text and in JSON.
    let mut s5 = child(&s1).build(&SatisfiedRequests::default()).unwrap();
    s5.alert_requests[0] =
        AlertRequest { payload: json!({ "note": "a\u{0}b" }), ..s5.alert_requests[0].clone() };
    let err = env.publish_rejected(&s5).await;
    assert!(
        matches!(&err, Error::InvalidSitrep(SitrepValidationError::NulCharacter { what })
            if what.starts_with("payload of alert request")),
        "{err:#?}"
    );
    let mut s6 = child(&s1).build(&SatisfiedRequests::default()).unwrap();
    s6.metadata.comment = "\u{0}".into();
    let err = env.publish_rejected(&s6).await;
    assert!(matches!(err, Error::InvalidSitrep(SitrepValidationError::NulCharacter { .. })));

    // The corrected sitrep publishes.
    publish(&env, &accepted_later).await;
}

/// `fm-dev sitrep publish` on a file with a nil request id (the function
/// the binary runs; it prints the chain and exits 1): an error naming the
/// field, once, and nothing written.
#[tokio::test]
async fn fm_dev_publish_refuses_a_nil_id() {
    let env = TestEnv::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s1 = first_sitrep(1, 0);
    s1.alert_requests[0].id = AlertUuid::from_untyped(Uuid::nil());
    let file = dir.path().join("nil.json");
    std::fs::write(&file, serde_json::to_string_pretty(&s1).unwrap()).unwrap();
    let before = fm_table_checksums(env.db.url()).await;
    let err = fm_dev::sitrep::publish_file(&env.log, env.db.url(), &file).await.unwrap_err();
    let chain = format!("{err:#}");
    assert_eq!(chain.matches("id of alert request #0 is the nil UUID").count(), 1, "{chain}");
    assert_eq!(before, fm_table_checksums(env.db.url()).await);
}

/// Serialization-failure retries are counted per operation: a trigger
/// raises SQLSTATE 40001 once on the first alert insert and once on the
/// first alert delete (a sequence survives the rollback), and the creation
/// and the sweep each report one retry while doing their work exactly once.
#[tokio::test]
async fn retries_are_counted_in_creation_and_sweep() {
    let env = TestEnv::new().await;
    let mut conn = connect(env.db.url()).await;
    conn.batch_execute(
        "CREATE SEQUENCE test_fail_insert; CREATE SEQUENCE test_fail_delete; \
         CREATE FUNCTION test_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF nextval(TG_ARGV[0]::regclass) = 1 THEN \
             RAISE EXCEPTION 'injected conflict' USING ERRCODE = '40001'; \
           END IF; \
           RETURN COALESCE(NEW, OLD); \
         END $$; \
         CREATE TRIGGER test_fail_insert BEFORE INSERT ON alert FOR EACH ROW \
           EXECUTE FUNCTION test_fail_once('test_fail_insert'); \
         CREATE TRIGGER test_fail_delete BEFORE DELETE ON alert FOR EACH ROW \
           EXECUTE FUNCTION test_fail_once('test_fail_delete');",
    )
    .await
    .unwrap();
    let s1 = first_sitrep(3, 0);
    publish(&env, &s1).await;
    let outcome = create(&env, s1.id(), Generation::FIRST, ResourceType::Alert).await.unwrap();
    let CreateOutcome::Executed(counts) = outcome else { panic!("{outcome:?}") };
    assert_eq!((counts.created, counts.retries), (3, 1));

    let gone = s1.alert_requests[0].id;
    env.datastore.alert_delete(&env.opctx(Role::Operator), gone).await.unwrap();
    let mut b = child(&s1);
    b.withdraw_alert_request(gone).unwrap();
    let s2 = b.build(&SatisfiedRequests::default()).unwrap();
    publish(&env, &s2).await;
    let swept = env
        .datastore
        .fm_tombstones_sweep(&env.opctx(Role::FmExecutor), s2.id(), ResourceType::Alert, None)
        .await
        .unwrap();
    assert_eq!((swept.hard_deleted, swept.retries), (1, 1));
}
