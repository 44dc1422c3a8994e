//! The serializable retry wrapper, against real conflicts.

use diesel::prelude::*;
use diesel::result::DatabaseErrorKind;
use diesel_async::RunQueryDsl;
use fm_db_queries::db_schema::alert;
use fm_db_queries::transaction::{MAX_ATTEMPTS, TransactionError, transaction_retry};
use fm_db_queries::{Action, Error, OpContext, Role};
use fm_integration_tests::TestEnv;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::Barrier;
use uuid::Uuid;

/// Write skew: each transaction counts the alerts of a class and inserts one
/// if there are none. Run serially, exactly one alert results. The two
/// transactions are forced to overlap (both read before either writes), so
/// PostgreSQL must abort one with a serialization failure; the wrapper then
/// runs it again, it sees the other's alert, and inserts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serialization_conflict_is_retried_to_success() {
    let env = TestEnv::new().await;
    let (log, ds) = (&env.log, &env.datastore);
    let barrier = Arc::new(Barrier::new(2));

    let run = |who: &'static str| {
        let ds = ds.clone();
        let log = log.clone();
        let barrier = Arc::clone(&barrier);
        tokio::spawn(async move {
            let opctx = OpContext::new(log.clone(), who, Role::FmExecutor);
            let mut conn = ds.pool_connection_authorized(&opctx, Action::FmWrite).await.unwrap();
            let attempts = Arc::new(AtomicU32::new(0));
            let counter = Arc::clone(&attempts);
            let outcome = transaction_retry(&mut conn, &log, "test_write_skew", move |conn| {
                let attempt = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let barrier = Arc::clone(&barrier);
                Box::pin(async move {
                    let existing: i64 = alert::table
                        .filter(alert::class.eq("write-skew"))
                        .count()
                        .get_result(conn)
                        .await?;
                    if attempt == 1 {
                        // Both transactions have read; now both write.
                        barrier.wait().await;
                    }
                    if existing == 0 {
                        diesel::insert_into(alert::table)
                            .values((
                                alert::id.eq(Uuid::new_v4()),
                                alert::class.eq("write-skew"),
                                alert::payload.eq(serde_json_value(who)),
                                alert::time_created.eq(chrono::Utc::now()),
                            ))
                            .execute(conn)
                            .await?;
                        Ok(true)
                    } else {
                        Ok(false)
                    }
                })
            })
            .await
            .unwrap_or_else(|e| panic!("{who}: {e:#?}"));
            (outcome, AtomicU32::load(&attempts, Ordering::SeqCst))
        })
    };
    let (a, b) = tokio::join!(run("a"), run("b"));
    let ((a, a_calls), (b, b_calls)) = (a.unwrap(), b.unwrap());

    // Exactly one of them inserted; the other was retried and saw its row.
    assert!(a.value ^ b.value, "exactly one insert: a={a:?} b={b:?}");
    let (winner, loser) = if a.value { (a, b) } else { (b, a) };
    assert!(loser.retries > 0, "the conflicting transaction must have been retried: {loser:?}");
    assert_eq!(winner.retries, 0, "{winner:?}");
    // The closure ran once per attempt.
    assert_eq!(a_calls + b_calls, 2 + loser.retries);

    let mut conn = env.conn(Role::Viewer, Action::Read).await;
    let rows: i64 = alert::table
        .filter(alert::class.eq("write-skew"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

fn serde_json_value(who: &str) -> serde_json::Value {
    serde_json::json!({ "writer": who })
}

#[tokio::test]
async fn serialization_failures_give_up_after_the_bound() {
    let env = TestEnv::new().await;
    let log = &env.log;
    let mut conn = env.conn(Role::FmExecutor, Action::FmWrite).await;
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let err = transaction_retry(&mut conn, log, "always_conflicts", move |_conn| {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            Err::<(), _>(TransactionError::Database(diesel::result::Error::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                Box::new("simulated serialization failure".to_string()),
            )))
        })
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::RetriesExhausted { name: "always_conflicts", attempts, .. } if attempts == MAX_ATTEMPTS),
        "{err:?}"
    );
    assert_eq!(AtomicU32::load(&calls, Ordering::SeqCst), MAX_ATTEMPTS);
}

#[tokio::test]
async fn other_errors_are_not_retried_and_roll_back() {
    let env = TestEnv::new().await;
    let log = &env.log;
    let mut conn = env.conn(Role::FmExecutor, Action::FmWrite).await;
    let id = Uuid::new_v4();

    // A failing statement after a successful insert: reported with the
    // transaction's name, run once, and the insert is rolled back.
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let err = transaction_retry(&mut conn, log, "fails_after_insert", move |conn| {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            insert_alert(conn, id).await?;
            insert_alert(conn, id).await?; // duplicate primary key
            Ok(())
        })
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::Database { ref context, .. } if context == "transaction fails_after_insert"),
        "{err:?}"
    );
    assert_eq!(AtomicU32::load(&calls, Ordering::SeqCst), 1);

    // A typed abort is passed through untouched, also run once.
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let err = transaction_retry(&mut conn, log, "aborts", move |conn| {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            insert_alert(conn, id).await?;
            Err::<(), _>(TransactionError::Abort(Error::Migration("typed abort".into())))
        })
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Migration(ref m) if m == "typed abort"), "{err:?}");
    assert_eq!(AtomicU32::load(&calls, Ordering::SeqCst), 1);

    let found: i64 =
        alert::table.filter(alert::id.eq(id)).count().get_result(&mut conn).await.unwrap();
    assert_eq!(found, 0, "both transactions must have rolled back");

    // And a transaction that succeeds commits, with no retries.
    let done = transaction_retry(&mut conn, log, "commits", move |conn| {
        Box::pin(async move { insert_alert(conn, id).await.map_err(Into::into) })
    })
    .await
    .unwrap();
    assert_eq!(done.retries, 0);
    let found: i64 =
        alert::table.filter(alert::id.eq(id)).count().get_result(&mut conn).await.unwrap();
    assert_eq!(found, 1);
}

async fn insert_alert(
    conn: &mut diesel_async::AsyncPgConnection,
    id: Uuid,
) -> Result<usize, diesel::result::Error> {
    diesel::insert_into(alert::table)
        .values((
            alert::id.eq(id),
            alert::class.eq("test"),
            alert::payload.eq(serde_json::json!({})),
            alert::time_created.eq(chrono::Utc::now()),
        ))
        .execute(conn)
        .await
}
