//! `fm-dev sitrep publish FILE`: publish a sitrep written as JSON.
//!
//! The file holds one sitrep in the JSON form of
//! [`nexus_fm_types::Sitrep`] (documented in the README). Publishing goes
//! through the datastore like any fault-management analysis would, so every
//! rule applies: the parent must be current, generations must follow the
//! request sets, new request ids must be fresh. A file that is not valid
//! JSON, or a sitrep that breaks a rule, is reported and nothing is written.

use anyhow::Context;
use fm_db_queries::datastore::PoolConfig;
use fm_db_queries::datastore::sitrep::insert::PublishedSitrep;
use fm_db_queries::{DataStore, OpContext, Role};
use nexus_fm_types::Sitrep;
use std::path::Path;

/// The actor name `fm-dev` publishes as.
pub const ACTOR: &str = "fm-dev sitrep publish";

/// Parses a sitrep from JSON text; `source` names it in errors.
///
/// # Errors
///
/// The JSON error, with the line and column where parsing stopped.
pub fn parse_sitrep(text: &str, source: &str) -> anyhow::Result<Sitrep> {
    // serde_json's message ends with the line and column.
    let mut sitrep: Sitrep = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("{source} is not a sitrep in JSON form: {e}"))?;
    sitrep.normalize();
    Ok(sitrep)
}

/// Reads, parses and publishes the sitrep in `path` to the database at
/// `url`, as the FM executor.
///
/// # Errors
///
/// A file that cannot be read or parsed, a database that cannot be reached
/// or has an unknown schema version, or any publish rule the sitrep breaks
/// (see [`DataStore::sitrep_insert`]).
pub async fn publish_file(
    log: &slog::Logger,
    url: &str,
    path: &Path,
) -> anyhow::Result<PublishedSitrep> {
    let sitrep = {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // The text is dropped here: only the parsed sitrep is held from now on.
        std::sync::Arc::new(parse_sitrep(&text, &path.display().to_string())?)
    };
    let datastore = DataStore::new(log, url, PoolConfig { max_size: 1, ..PoolConfig::default() })
        .await
        .context("opening the database")?;
    let opctx = OpContext::new(log.clone(), ACTOR, Role::FmExecutor);
    datastore
        .sitrep_insert_shared(&opctx, std::sync::Arc::clone(&sitrep))
        .await
        .with_context(|| format!("publishing sitrep {} from {}", sitrep.id(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example the README points to stays a valid sitrep.
    #[test]
    fn the_readme_example_is_a_valid_first_sitrep() {
        let text = include_str!("../sitreps/first.json");
        let sitrep = parse_sitrep(text, "sitreps/first.json").unwrap();
        sitrep.validate().unwrap();
        assert_eq!(sitrep.metadata.parent_sitrep_id, None);
        assert_eq!(sitrep.alert_requests.len(), 1);
        assert_eq!(sitrep.support_bundle_requests.len(), 1);
    }

    #[test]
    fn malformed_json_names_the_place() {
        let err = parse_sitrep("{\n  \"metadata\": {\n    \"id\": 12\n", "s.json").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("s.json is not a sitrep in JSON form"), "{msg}");
        assert!(msg.contains("at line 3"), "{msg}");
        let err = parse_sitrep("[]", "t.json").unwrap_err();
        assert!(err.to_string().contains("t.json is not a sitrep"), "{err}");
    }
}
