//! Operator deletions during the demo: the step that will show that a
//! resource an operator deleted is never brought back.
//!
//! The datastore has no delete API yet, so this step deletes nothing. It is
//! not faked with SQL: a raw `UPDATE ... SET time_deleted` would skip the
//! operator-role check and the read-then-one-write transaction that the
//! real delete must be (DESIGN.md section 7), and would prove nothing about
//! it. Everything around the step is in place: the demo calls it after every
//! publish, keeps what it returns, shows the count, and the verification
//! checks that none of it came back.

use fm_db_queries::{DataStore, OpContext};
use nexus_fm_types::{ResourceType, Sitrep};
use uuid::Uuid;

/// A resource an operator deleted during the demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeletedResource {
    /// Its type.
    pub resource: ResourceType,
    /// Its id.
    pub id: Uuid,
}

/// Lets an operator delete some of the FM-created resources that `current`
/// requests, as operators may at any time, and returns what was deleted.
///
/// TODO: deletes nothing until the issue that adds `DataStore::alert_delete`
/// and `DataStore::support_bundle_delete` (operator deletes, DESIGN.md
/// section 7) fills this in: pick a few live resources of `current`'s
/// requests at random (with an RNG seeded from the demo's seed) and delete
/// them through that API as `opctx` (the operator role), returning each one
/// deleted. The verification already checks that none of them comes back.
pub(super) async fn operator_deletions(
    _datastore: &DataStore,
    _opctx: &OpContext,
    _current: &Sitrep,
) -> anyhow::Result<Vec<DeletedResource>> {
    Ok(Vec::new())
}
