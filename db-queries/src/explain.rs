//! EXPLAIN any query, and fail on sequential scans or on reading too much.
//!
//! [`explain_plan`] returns PostgreSQL's plan of a diesel query (or of a
//! `sql_query` with binds) planned with `enable_seqscan = off`. With that
//! setting the planner still chooses a `Seq Scan` when no index can serve the
//! query, so a plan without one proves that an index path exists. This is how
//! the project shows that no production query ever scans a whole table.
//!
//! "No Seq Scan" is necessary, not sufficient: a hashed sub-plan or a bitmap
//! scan can still read every row of a sitrep's partition of a table on every
//! page. [`explain_analyze_shared`] runs a query under `EXPLAIN (ANALYZE,
//! FORMAT JSON)` (its writes rolled back) and [`PlanReads`] counts the rows
//! each plan node actually read, so a caller can bound them.

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

/// `EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) <query>`: runs the query and
/// returns its plan with the actual row counts, as one JSON document.
/// VERBOSE lists each node's output expressions, where PostgreSQL 15 names
/// a hashed sub-plan in a select list (`(hashed SubPlan 1)`).
#[derive(Debug)]
pub struct ExplainAnalyze<Q>(pub Arc<Q>);

impl<Q> Clone for ExplainAnalyze<Q> {
    fn clone(&self) -> Self {
        ExplainAnalyze(Arc::clone(&self.0))
    }
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for ExplainAnalyze<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        out.push_sql("EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) ");
        self.0.as_ref().walk_ast(out.reborrow())
    }
}

impl<Q> QueryId for ExplainAnalyze<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for ExplainAnalyze<Q> {
    type SqlType = Text;
}

/// Runs `query` under `EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON)` with
/// `enable_seqscan = off`, like [`explain_plan`], and returns the plan: the
/// rows counted are those of the index paths the no-Seq-Scan audit accepts
/// (where a hashed sub-plan hides behind an index scan).
///
/// ANALYZE executes the statement, writes included, so it runs inside a
/// savepoint that is rolled back before the (empty) transaction commits:
/// nothing the query writes survives, and a failing query aborts the whole
/// transaction. Session-level side effects that no rollback undoes (an
/// advisory lock taken with `pg_advisory_lock`) stay with the connection.
///
/// # Errors
///
/// A database error, for example when the query fails when run.
pub async fn explain_analyze_shared<Q>(
    conn: &mut AsyncPgConnection,
    log: &slog::Logger,
    query: Arc<Q>,
) -> Result<serde_json::Value, Error>
where
    Q: QueryFragment<Pg> + Send + Sync + 'static,
{
    let plan = transaction_retry(conn, log, "explain_analyze", |conn| {
        let query = ExplainAnalyze(Arc::clone(&query));
        Box::pin(async move {
            diesel::sql_query("SET LOCAL enable_seqscan = off").execute(conn).await?;
            diesel::sql_query("SAVEPOINT explain_analyze").execute(conn).await?;
            let lines: Vec<String> = query.load(conn).await?;
            diesel::sql_query("ROLLBACK TO SAVEPOINT explain_analyze").execute(conn).await?;
            Ok(lines.join("\n"))
        })
    })
    .await?;
    serde_json::from_str(&plan.value).map_err(|e| {
        Error::InvalidArgument(format!("EXPLAIN returned a plan that is not JSON: {e}"))
    })
}

/// The tables that hold a sitrep's requests: a hash built over one of them
/// reads a whole sitrep's partition, whatever the page size.
pub const REQUEST_TABLES: &[&str] = &["fm_alert_request", "fm_support_bundle_request"];

/// What one plan node read.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeReads {
    /// The node, e.g. `Index Scan on alert using alert_tombstones`.
    pub node: String,
    /// Rows read over all loops: "Actual Rows" x "Actual Loops", plus the
    /// rows it read and dropped ("Rows Removed by Filter", "by Join
    /// Filter", "by Index Recheck", each x "Actual Loops").
    pub rows_read: f64,
    /// "Actual Loops".
    pub loops: f64,
}

/// The per-node row accounting of one `EXPLAIN (ANALYZE, FORMAT JSON)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanReads {
    /// Every node, in plan order.
    pub nodes: Vec<NodeReads>,
    /// Hashed sub-plans (a sub-plan run once into a hash table: it reads
    /// everything it could ever match, however few rows are probed).
    pub hashed_subplans: Vec<String>,
    /// Hash nodes built over a scan of a request table ([`REQUEST_TABLES`]).
    pub hashed_request_tables: Vec<String>,
}

/// A plan that reads more than its bound, or hashes what it should probe.
#[derive(Clone, Debug, PartialEq)]
pub struct RowBoundExceeded {
    /// The bound on rows read by any one node.
    pub bound: u64,
    /// The nodes above the bound, with what they read.
    pub over: Vec<NodeReads>,
    /// Hashed sub-plans found.
    pub hashed_subplans: Vec<String>,
    /// Hash nodes over request tables found.
    pub hashed_request_tables: Vec<String>,
}

impl fmt::Display for RowBoundExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the plan reads more than its bound of {} rows per node:", self.bound)?;
        for node in &self.over {
            writeln!(
                f,
                "    {}: {} rows read in {} loop(s)",
                node.node, node.rows_read, node.loops
            )?;
        }
        for subplan in &self.hashed_subplans {
            writeln!(f, "    hashed sub-plan: {subplan}")?;
        }
        for hash in &self.hashed_request_tables {
            writeln!(f, "    hash over a request table: {hash}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RowBoundExceeded {}

fn number(node: &serde_json::Value, key: &str) -> f64 {
    node.get(key).and_then(serde_json::Value::as_f64).unwrap_or(0.0)
}

fn text<'a>(node: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    node.get(key).and_then(serde_json::Value::as_str)
}

/// A node's name: its type, relation, alias and index.
fn node_label(node: &serde_json::Value) -> String {
    let mut label = text(node, "Node Type").unwrap_or("?").to_owned();
    if let Some(operation) = text(node, "Operation") {
        label = format!("{label} ({operation})");
    }
    if let Some(relation) = text(node, "Relation Name") {
        label.push_str(" on ");
        label.push_str(relation);
        if let Some(alias) = text(node, "Alias").filter(|a| *a != relation) {
            label.push(' ');
            label.push_str(alias);
        }
    } else if let Some(cte) = text(node, "CTE Name") {
        label.push_str(" on ");
        label.push_str(cte);
    }
    if let Some(index) = text(node, "Index Name") {
        label.push_str(" using ");
        label.push_str(index);
    }
    if let Some(name) = text(node, "Subplan Name") {
        label = format!("{name}: {label}");
    }
    label
}

/// Whether any string in `value` (a node's own fields, not its children)
/// names a hashed sub-plan. PostgreSQL 15 prints it in expressions, e.g.
/// `Filter: (NOT (hashed SubPlan 1))`; later versions also in the name.
fn mentions_hashed_subplan(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains("hashed SubPlan"),
        serde_json::Value::Array(items) => items.iter().any(mentions_hashed_subplan),
        _ => false,
    }
}

/// The relations scanned anywhere under `node`.
fn relations_under(node: &serde_json::Value, found: &mut Vec<String>) {
    if let Some(relation) = text(node, "Relation Name") {
        found.push(relation.to_owned());
    }
    for child in node.get("Plans").and_then(serde_json::Value::as_array).into_iter().flatten() {
        relations_under(child, found);
    }
}

impl PlanReads {
    /// Reads the output of `EXPLAIN (ANALYZE, FORMAT JSON)` (an array with
    /// one object whose `Plan` is the root node).
    pub fn from_json(explain: &serde_json::Value) -> PlanReads {
        let mut reads = PlanReads::default();
        let roots = explain.as_array().into_iter().flatten().filter_map(|o| o.get("Plan"));
        for root in roots {
            reads.walk(root);
        }
        reads
    }

    fn walk(&mut self, node: &serde_json::Value) {
        let loops = number(node, "Actual Loops");
        let removed = number(node, "Rows Removed by Filter")
            + number(node, "Rows Removed by Join Filter")
            + number(node, "Rows Removed by Index Recheck");
        let label = node_label(node);
        // "Rows Removed by ..." are averages per loop, like "Actual Rows".
        self.nodes.push(NodeReads {
            node: label.clone(),
            rows_read: (number(node, "Actual Rows") + removed) * loops,
            loops,
        });
        let own_fields = node.as_object().into_iter().flatten().filter(|(k, _)| *k != "Plans");
        if own_fields.into_iter().any(|(_, v)| mentions_hashed_subplan(v)) {
            self.hashed_subplans.push(label.clone());
        }
        if text(node, "Node Type") == Some("Hash") {
            let mut relations = Vec::new();
            relations_under(node, &mut relations);
            for relation in relations.iter().filter(|r| REQUEST_TABLES.contains(&r.as_str())) {
                self.hashed_request_tables.push(format!("{label} over {relation}"));
            }
        }
        for child in node.get("Plans").and_then(serde_json::Value::as_array).into_iter().flatten() {
            self.walk(child);
        }
    }

    /// The node that read the most rows (`None` for an empty plan).
    pub fn max(&self) -> Option<&NodeReads> {
        self.nodes.iter().max_by(|a, b| a.rows_read.total_cmp(&b.rows_read))
    }

    /// Checks that no node read more than `bound` rows and that nothing is
    /// hashed that should be probed.
    ///
    /// # Errors
    ///
    /// [`RowBoundExceeded`] with every offending node.
    pub fn check(&self, bound: u64) -> Result<(), RowBoundExceeded> {
        let limit = bound as f64;
        let over: Vec<NodeReads> =
            self.nodes.iter().filter(|n| n.rows_read > limit).cloned().collect();
        if over.is_empty()
            && self.hashed_subplans.is_empty()
            && self.hashed_request_tables.is_empty()
        {
            Ok(())
        } else {
            Err(RowBoundExceeded {
                bound,
                over,
                hashed_subplans: self.hashed_subplans.clone(),
                hashed_request_tables: self.hashed_request_tables.clone(),
            })
        }
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

    #[test]
    fn counts_rows_read_per_node_and_flags_hashed_subplans() {
        let plan = serde_json::json!([{ "Plan": {
            "Node Type": "Nested Loop", "Actual Rows": 1000, "Actual Loops": 1,
            "Output": ["t.id", "(hashed SubPlan 1)"],
            "Plans": [
                { "Node Type": "Index Scan", "Relation Name": "alert", "Alias": "t",
                  "Index Name": "alert_tombstones", "Actual Rows": 1000, "Actual Loops": 1,
                  "Rows Removed by Filter": 5 },
                { "Node Type": "Index Only Scan", "Relation Name": "fm_alert_request",
                  "Alias": "r", "Index Name": "fm_alert_request_pkey",
                  "Subplan Name": "SubPlan 1", "Actual Rows": 100000, "Actual Loops": 1 },
                { "Node Type": "Hash", "Actual Rows": 3, "Actual Loops": 2, "Plans": [
                    { "Node Type": "Index Scan", "Relation Name": "fm_support_bundle_request",
                      "Actual Rows": 3, "Actual Loops": 2, "Rows Removed by Index Recheck": 1 }
                ]}
            ]
        }}]);
        let reads = PlanReads::from_json(&plan);
        assert_eq!(reads.nodes.len(), 5);
        assert_eq!(reads.nodes[1].node, "Index Scan on alert t using alert_tombstones");
        assert_eq!(reads.nodes[1].rows_read, 1005.0);
        assert_eq!(reads.nodes[4].rows_read, 8.0);
        let max = reads.max().unwrap();
        assert_eq!(max.rows_read, 100_000.0);
        assert!(max.node.starts_with("SubPlan 1: Index Only Scan on fm_alert_request r"));
        assert_eq!(reads.hashed_subplans, vec!["Nested Loop".to_owned()]);
        assert_eq!(reads.hashed_request_tables.len(), 1);
        let err = reads.check(1_010).unwrap_err();
        assert_eq!(err.over.len(), 1);
        assert!(err.to_string().contains("hashed sub-plan: Nested Loop"), "{err}");
        // Within the bound and with nothing hashed, the check passes.
        let plain = serde_json::json!([{ "Plan": {
            "Node Type": "Limit", "Actual Rows": 100, "Actual Loops": 1 } }]);
        assert!(PlanReads::from_json(&plain).check(110).is_ok());
        assert!(PlanReads::from_json(&plain).check(99).is_err());
    }
}
