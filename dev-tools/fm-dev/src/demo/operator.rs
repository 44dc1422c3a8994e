//! Operator deletions during the demo: an operator deletes FM-created
//! alerts and support bundles while the sitreps keep coming, so that the
//! demo shows a deleted resource is never brought back, and that the
//! executors' sweeps collect its tombstone once no sitrep asks for it any
//! more (docs/design.md, "Deleting a resource" and "The sweep").
//!
//! After each publish the operator looks up which of the current sitrep's
//! requests are live (a row without `time_deleted`, found with
//! [`DataStore::fm_resource_rows_including_deleted`]), draws up to
//! [`DemoConfig::deletions_per_sitrep`](super::DemoConfig::deletions_per_sitrep)
//! of them at random, and deletes each through the datastore's delete API
//! ([`DataStore::alert_delete`], [`DataStore::support_bundle_delete`]) as the
//! operator role: the same role check and read-then-one-write transaction
//! as any operator's delete.
//!
//! The draws come from an RNG derived from the demo's seed (a stream of its
//! own, apart from the analysis's). The ids themselves are fresh random
//! UUIDs and which requests are live when the operator looks depends on the
//! executors' timing, so the same seed makes the same draws, not
//! necessarily the same picks.

use anyhow::{Context, bail};
use fm_db_queries::datastore::alert::Deleted;
use fm_db_queries::{DataStore, Error as DbError, OpContext};
use nexus_fm_types::{AlertUuid, ResourceType, Sitrep, SupportBundleUuid};
use rand::SeedableRng;
use rand::rngs::StdRng;
use uuid::Uuid;

/// Mixed into the demo's seed to derive the operator's RNG, so that its
/// draws are a stream of their own, apart from the analysis's.
const OPERATOR_STREAM: u64 = u64::from_be_bytes(*b"operator");

/// A resource an operator deleted during the demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeletedResource {
    /// Its type.
    pub resource: ResourceType,
    /// Its id.
    pub id: Uuid,
}

/// The demo's operator.
pub(super) struct Operator {
    /// The operator's context (the operator role).
    opctx: OpContext,
    rng: StdRng,
    /// Most resources deleted after one publish.
    per_sitrep: usize,
}

impl Operator {
    /// An operator acting as `opctx` that deletes up to `per_sitrep`
    /// resources after each publish, drawing them with an RNG derived from
    /// `seed`.
    pub fn new(opctx: OpContext, seed: u64, per_sitrep: usize) -> Operator {
        Operator { opctx, rng: StdRng::seed_from_u64(seed ^ OPERATOR_STREAM), per_sitrep }
    }

    /// Whether this operator deletes anything at all.
    pub fn deletes(&self) -> bool {
        self.per_sitrep > 0
    }

    /// Deletes up to the configured number of live resources among
    /// `current`'s requests, drawn at random, and returns those deleted.
    ///
    /// A delete that finds its resource gone or already deleted
    /// ([`DbError::NotFound`]: something else deleted it first) is skipped.
    ///
    /// # Errors
    ///
    /// A lookup or a delete that fails for any other reason, or a delete
    /// that removed the row instead of leaving a tombstone (the resource
    /// was not created by fault management, which no request's resource
    /// can be).
    pub async fn delete_some(
        &mut self,
        datastore: &DataStore,
        current: &Sitrep,
    ) -> anyhow::Result<Vec<DeletedResource>> {
        if !self.deletes() {
            return Ok(Vec::new());
        }
        let mut live = Vec::new();
        for resource in ResourceType::ALL {
            let ids: Vec<Uuid> = current.request_ids(resource).into_iter().collect();
            if ids.is_empty() {
                continue;
            }
            let rows = datastore
                .fm_resource_rows_including_deleted(&self.opctx, resource, &ids)
                .await
                .with_context(|| format!("looking up which {resource} requests are live"))?;
            live.extend(
                rows.into_iter()
                    .filter(|(_, deleted)| !deleted)
                    .map(|(id, _)| DeletedResource { resource, id }),
            );
        }
        // The lookup's order is the database's; the draw must not depend
        // on it.
        live.sort_unstable();

        let mut deleted = Vec::new();
        for target in pick(&mut self.rng, &live, self.per_sitrep) {
            let DeletedResource { resource, id } = target;
            let outcome = match resource {
                ResourceType::Alert => {
                    datastore.alert_delete(&self.opctx, AlertUuid::from_untyped(id)).await
                }
                ResourceType::SupportBundle => {
                    datastore
                        .support_bundle_delete(&self.opctx, SupportBundleUuid::from_untyped(id))
                        .await
                }
            };
            match outcome {
                Ok(Deleted::Tombstoned) => {
                    slog::info!(self.opctx.log, "operator deleted a resource";
                        "resource" => %resource, "id" => %id, "sitrep_id" => %current.id());
                    deleted.push(target);
                }
                Ok(Deleted::Removed) => bail!(
                    "the operator's delete of {resource} {id} removed its row instead of leaving \
                     a tombstone: it was not created by fault management, yet sitrep {} requests \
                     it",
                    current.id()
                ),
                Err(error @ DbError::NotFound { .. }) => {
                    slog::info!(self.opctx.log, "resource already gone; skipped";
                        "resource" => %resource, "id" => %id, "error" => %error);
                }
                Err(error) => {
                    return Err(anyhow::Error::new(error)
                        .context(format!("the operator deleting {resource} {id}")));
                }
            }
        }
        Ok(deleted)
    }
}

/// Draws up to `amount` distinct entries of `candidates` at random, in
/// the candidates' order.
fn pick(rng: &mut StdRng, candidates: &[DeletedResource], amount: usize) -> Vec<DeletedResource> {
    let amount = amount.min(candidates.len());
    if amount == 0 {
        return Vec::new();
    }
    let mut indices = rand::seq::index::sample(rng, candidates.len(), amount).into_vec();
    indices.sort_unstable();
    indices.into_iter().map(|i| candidates[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `n` candidates, sorted as the operator sorts them.
    fn candidates(n: u128) -> Vec<DeletedResource> {
        let mut all: Vec<_> = (0..n)
            .map(|i| DeletedResource {
                resource: if i % 3 == 0 {
                    ResourceType::SupportBundle
                } else {
                    ResourceType::Alert
                },
                id: Uuid::from_u128(i),
            })
            .collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn picks_are_distinct_bounded_and_follow_the_seed() {
        let all = candidates(10);
        let draws = |seed: u64| {
            let mut rng = StdRng::seed_from_u64(seed ^ OPERATOR_STREAM);
            (0..20).map(|_| pick(&mut rng, &all, 3)).collect::<Vec<_>>()
        };
        for picks in draws(1) {
            assert_eq!(picks.len(), 3);
            assert_eq!(picks.iter().collect::<BTreeSet<_>>().len(), 3, "{picks:?}");
            assert!(picks.is_sorted(), "{picks:?}");
            assert!(picks.iter().all(|p| all.contains(p)));
        }
        assert_eq!(draws(1), draws(1));
        assert_ne!(draws(1), draws(2));
    }

    #[test]
    fn picks_take_what_there_is() {
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(pick(&mut rng, &candidates(2), 5), candidates(2));
        assert_eq!(pick(&mut rng, &candidates(4), usize::MAX), candidates(4));
        assert!(pick(&mut rng, &candidates(0), 2).is_empty());
        assert!(pick(&mut rng, &candidates(4), 0).is_empty());
    }
}
