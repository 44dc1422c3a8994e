//! `fmdb explain [QUERY]`: the plan of every catalogued production query
//! (`fm_db_queries::catalogue`) on the connected database, planned with
//! `enable_seqscan = off` as the EXPLAIN audit does, flagging any
//! `Seq Scan`. Only planned, never run (EXPLAIN without ANALYZE), so the
//! write statements plan fine inside the read-only transaction.

use crate::db::{Access, open};
use crate::output::{print_json, table};
use crate::{CliError, Context, Exit};
use clap::Args;
use fm_db_queries::catalogue::catalogue;
use fm_db_queries::explain::check_no_seq_scan;
use serde::Serialize;
use tabled::Tabled;

/// `fmdb explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// One catalogued query (by name) and its whole plan; default: every
    /// query, one line each.
    #[arg(value_name = "QUERY")]
    pub query: Option<String>,
}

/// One query's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct PlanView {
    /// The catalogue name.
    pub name: &'static str,
    /// `ok`, `seq_scan` or `error`.
    pub verdict: &'static str,
    /// The plan lines that scan sequentially.
    pub seq_scans: Vec<String>,
    /// Expected indexes the plan does not mention (informational).
    pub expected_indexes_missing: Vec<&'static str>,
    /// The plan, or the error.
    pub plan: String,
}

#[derive(Tabled)]
struct PlanRow {
    #[tabled(rename = "QUERY")]
    name: String,
    #[tabled(rename = "VERDICT")]
    verdict: String,
    #[tabled(rename = "NOTE")]
    note: String,
}

/// Runs `explain`.
///
/// # Errors
///
/// An unknown query name ([`Exit::UnknownSelector`]), connection errors.
pub async fn run(ctx: &Context, args: ExplainArgs) -> Result<Exit, CliError> {
    let mut entries = catalogue();
    if let Some(name) = &args.query {
        entries.retain(|e| e.name == name.as_str());
        if entries.is_empty() {
            return Err(CliError::new(
                Exit::UnknownSelector,
                format!(
                    "no catalogued query is named {name:?}: `fmdb explain` without a name lists \
                     them all"
                ),
            ));
        }
    }
    let db = open(ctx, Access::ReadOnly).await?;
    let mut conn = db.conn().await?;
    let mut views = Vec::with_capacity(entries.len());
    for entry in &entries {
        let view = match entry.explain(&mut conn, &ctx.log).await {
            Ok(plan) => {
                let seq_scans = match check_no_seq_scan(&plan) {
                    Ok(()) => Vec::new(),
                    Err(found) => found.scans.iter().map(|s| s.trim().to_string()).collect(),
                };
                PlanView {
                    name: entry.name,
                    verdict: if seq_scans.is_empty() { "ok" } else { "seq_scan" },
                    seq_scans,
                    expected_indexes_missing: entry
                        .expected_indexes
                        .iter()
                        .copied()
                        .filter(|i| !plan.contains(i))
                        .collect(),
                    plan,
                }
            }
            // Carry on: one query that does not plan does not hide the rest.
            Err(e) => PlanView {
                name: entry.name,
                verdict: "error",
                seq_scans: Vec::new(),
                expected_indexes_missing: Vec::new(),
                plan: fm_db_queries::error::error_chain(&e),
            },
        };
        views.push(view);
    }
    let flagged = views.iter().filter(|v| v.verdict != "ok").count();
    if ctx.global.json {
        print_json(&views);
    } else if args.query.is_some() {
        for v in &views {
            println!("{}: {}", v.name, verdict_label(v));
            println!("{}", v.plan);
        }
    } else {
        println!(
            "{}",
            table(views.iter().map(|v| PlanRow {
                name: v.name.to_string(),
                verdict: verdict_label(v),
                note: if v.expected_indexes_missing.is_empty() {
                    String::new()
                } else {
                    format!("does not use {}", v.expected_indexes_missing.join(", "))
                },
            }))
        );
        println!("{} queries planned, {flagged} flagged", views.len());
    }
    Ok(if flagged == 0 { Exit::Ok } else { Exit::Failure })
}

fn verdict_label(v: &PlanView) -> String {
    match v.verdict {
        "ok" => "ok".to_string(),
        "seq_scan" => format!("SEQ SCAN: {}", v.seq_scans.join("; ")),
        _ => format!("ERROR: {}", v.plan),
    }
}
