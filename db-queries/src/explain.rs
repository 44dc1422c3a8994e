//! EXPLAIN any query, and fail on sequential scans.
//!
//! [`explain_plan`] returns PostgreSQL's plan of a diesel query (or of a
//! `sql_query` with binds) planned with `enable_seqscan = off`. With that
//! setting the planner still chooses a `Seq Scan` when no index can serve the
//! query, so a plan without one proves that an index path exists. This is how
//! the project shows that no production query ever scans a whole table.

use crate::error::Error;
use crate::transaction::transaction_retry;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::fmt;
use std::sync::Arc;

/// `EXPLAIN <query>`: a query whose rows are the plan's lines.
///
/// It shares the query, so it can be rebuilt for every attempt of a retried
/// transaction without the query being `Clone` (diesel's batch inserts are
/// not).
#[derive(Debug)]
pub struct Explain<Q>(pub Arc<Q>);

impl<Q> Clone for Explain<Q> {
    fn clone(&self) -> Self {
        Explain(Arc::clone(&self.0))
    }
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        out.push_sql("EXPLAIN ");
        self.0.as_ref().walk_ast(out.reborrow())
    }
}

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for Explain<Q> {
    type SqlType = Text;
}

/// Plans `query` with `enable_seqscan = off` and returns the plan text, one
/// plan node per line.
///
/// The query is planned, not run. The setting is made with `SET LOCAL` inside
/// the transaction, so it never leaks into a pooled connection.
///
/// # Errors
///
/// A database error, for example when the query does not plan.
pub async fn explain_plan<Q>(
    conn: &mut AsyncPgConnection,
    log: &slog::Logger,
    query: Q,
) -> Result<String, Error>
where
    Q: QueryFragment<Pg> + Send + Sync + 'static,
{
    explain_shared(conn, log, Arc::new(query)).await
}

/// [`explain_plan`] of a query already shared (the catalogue plans each of
/// its queries many times).
///
/// # Errors
///
/// A database error, for example when the query does not plan.
pub async fn explain_shared<Q>(
    conn: &mut AsyncPgConnection,
    log: &slog::Logger,
    query: Arc<Q>,
) -> Result<String, Error>
where
    Q: QueryFragment<Pg> + Send + Sync + 'static,
{
    let plan = transaction_retry(conn, log, "explain_plan", |conn| {
        let query = Explain(Arc::clone(&query));
        Box::pin(async move {
            diesel::sql_query("SET LOCAL enable_seqscan = off").execute(conn).await?;
            let lines: Vec<String> = query.load(conn).await?;
            Ok(lines.join("\n"))
        })
    })
    .await?;
    Ok(plan.value)
}

/// A plan that contains at least one sequential scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqScanFound {
    /// The plan lines that scan sequentially.
    pub scans: Vec<String>,
    /// The whole plan.
    pub plan: String,
}

impl fmt::Display for SeqScanFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the plan has {} sequential scan(s):", self.scans.len())?;
        for scan in &self.scans {
            writeln!(f, "    {}", scan.trim())?;
        }
        writeln!(f, "whole plan:")?;
        write!(f, "{}", self.plan)
    }
}

impl std::error::Error for SeqScanFound {}

/// Checks a plan for sequential scans.
///
/// # Errors
///
/// [`SeqScanFound`] listing each offending line and the whole plan.
pub fn check_no_seq_scan(plan: &str) -> Result<(), SeqScanFound> {
    let scans: Vec<String> =
        plan.lines().filter(|line| line.contains("Seq Scan")).map(str::to_owned).collect();
    if scans.is_empty() { Ok(()) } else { Err(SeqScanFound { scans, plan: plan.to_owned() }) }
}

/// Panics, printing the plan, if it contains a sequential scan. `what` names
/// the query in the message.
#[track_caller]
pub fn assert_no_seq_scan(what: &str, plan: &str) {
    if let Err(e) = check_no_seq_scan(plan) {
        panic!("query {what:?} does not use an index: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_seq_scans_in_nested_plans() {
        let plan = "Nested Loop  (cost=0.29..16.33 rows=1 width=8)\n  ->  Seq Scan on alert  (cost=10000000000.00..10000000001.01 rows=1 width=16)\n  ->  Index Scan using fm_sitrep_pkey on fm_sitrep";
        let err = check_no_seq_scan(plan).unwrap_err();
        assert_eq!(err.scans.len(), 1);
        assert!(err.scans[0].contains("Seq Scan on alert"));
        assert!(err.to_string().contains("whole plan:\nNested Loop"), "{err}");
        assert!(check_no_seq_scan("Index Scan using alert_pkey on alert").is_ok());
        let panic = std::panic::catch_unwind(|| assert_no_seq_scan("q", plan)).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("query \"q\" does not use an index"), "{message}");
        assert!(message.contains("Seq Scan on alert"), "{message}");
    }
}
