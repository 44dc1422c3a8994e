//! Operation contexts: who is asking, in what role, with which logger.
//!
//! Every public datastore entry point takes an [`OpContext`] first and calls
//! [`OpContext::authorize`] before it touches the database, so a denial never
//! writes anything.

use std::fmt;

/// The role an actor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// May read everything.
    Viewer,
    /// May read, and delete alerts and support bundles.
    Operator,
    /// The fault-management executor: may read, publish sitreps, create
    /// resources, sweep tombstones and prune history.
    FmExecutor,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::FmExecutor => "fm-executor",
        })
    }
}

/// What an operation does, for authorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read anything.
    Read,
    /// Delete an alert or a support bundle (operator action).
    DeleteResource,
    /// Create an alert or support bundle outside fault management (an
    /// operator, or another part of the control plane acting as the FM
    /// executor).
    CreateResource,
    /// Fault-management writes: publish sitreps, create resources, sweep
    /// tombstones, prune history, record task status, mark alerts
    /// dispatched, fail the support bundles of an executor that has gone
    /// away.
    FmWrite,
    /// Change a live resource's mutable fields (a support bundle's state or
    /// user comment): an operator, or the FM executor that collects it.
    UpdateResource,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Read => "read fault-management data",
            Action::DeleteResource => "delete alerts or support bundles",
            Action::CreateResource => "create alerts or support bundles",
            Action::FmWrite => "perform fault-management writes",
            Action::UpdateResource => "update alerts or support bundles",
        })
    }
}

impl Role {
    /// Whether this role may perform `action`.
    pub const fn permits(self, action: Action) -> bool {
        matches!(
            (self, action),
            (_, Action::Read)
                | (Role::Operator, Action::DeleteResource | Action::CreateResource)
                | (Role::FmExecutor, Action::CreateResource)
                | (Role::Operator | Role::FmExecutor, Action::UpdateResource)
                | (Role::FmExecutor, Action::FmWrite)
        )
    }
}

/// The context of one datastore operation.
#[derive(Clone, Debug)]
pub struct OpContext {
    /// Logger carrying the caller's key-values.
    pub log: slog::Logger,
    actor: String,
    role: Role,
}

impl OpContext {
    /// A context for `actor` acting in `role`.
    pub fn new(log: slog::Logger, actor: impl Into<String>, role: Role) -> Self {
        let actor = actor.into();
        let log = log.new(slog::o!("actor" => actor.clone(), "role" => role.to_string()));
        OpContext { log, actor, role }
    }

    /// Who is acting.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// In which role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Checks that the role permits `action`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Forbidden`] when it does not.
    pub fn authorize(&self, action: Action) -> Result<(), crate::Error> {
        if self.role.permits(action) {
            Ok(())
        } else {
            Err(crate::Error::Forbidden { actor: self.actor.clone(), role: self.role, action })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_matrix() {
        use Action::*;
        use Role::*;
        let expect = [
            (Viewer, Read, true),
            (Viewer, DeleteResource, false),
            (Viewer, FmWrite, false),
            (Viewer, CreateResource, false),
            (Operator, CreateResource, true),
            (FmExecutor, CreateResource, true),
            (Operator, Read, true),
            (Operator, DeleteResource, true),
            (Operator, FmWrite, false),
            (FmExecutor, Read, true),
            (FmExecutor, DeleteResource, false),
            (FmExecutor, FmWrite, true),
            (Viewer, UpdateResource, false),
            (Operator, UpdateResource, true),
            (FmExecutor, UpdateResource, true),
        ];
        for (role, action, allowed) in expect {
            assert_eq!(role.permits(action), allowed, "{role} {action:?}");
        }
    }

    #[test]
    fn denial_names_actor_role_and_action() {
        let log = slog::Logger::root(slog::Discard, slog::o!());
        let opctx = OpContext::new(log, "alice", Role::Viewer);
        let err = opctx.authorize(Action::DeleteResource).unwrap_err();
        assert_eq!(err.to_string(), "alice (role viewer) may not delete alerts or support bundles");
        assert!(opctx.authorize(Action::Read).is_ok());
    }
}
