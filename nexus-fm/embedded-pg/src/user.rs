//! Which OS user the PostgreSQL programs run as.
//!
//! `initdb` refuses to run as root, and the server should not run as root
//! either. When this process is root, every server program runs as the
//! `postgres` OS user instead: the directories it needs are handed to that
//! user, and the spawned child gets its uid and gid (the standard library then
//! also clears the supplementary groups). Otherwise everything runs as the
//! current user and nothing changes hands.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use nix::unistd::{Gid, Uid, User};

/// The OS user that runs the server when this process is root.
const SERVER_USER: &str = "postgres";

/// The OS user that runs `initdb`, `postgres` and their supervisor.
#[derive(Clone, Debug)]
pub(crate) enum ServerUser {
    /// Not root: the programs run as this process's user.
    Current,
    /// Root: the programs run as this (unprivileged) user.
    Switch {
        /// The user's name, for messages.
        name: String,
        /// The user's id.
        uid: Uid,
        /// The user's primary group.
        gid: Gid,
    },
}

impl ServerUser {
    /// Decides from this process's effective uid.
    ///
    /// # Errors
    ///
    /// Fails when running as root and there is no `postgres` OS user.
    pub(crate) fn detect() -> anyhow::Result<ServerUser> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(ServerUser::Current);
        }
        let user = User::from_name(SERVER_USER)
            .with_context(|| format!("looking up the OS user {SERVER_USER:?}"))?
            .with_context(|| {
                format!(
                    "this process runs as root, and PostgreSQL refuses to; but there is no \
                     {SERVER_USER:?} OS user to run it as (installing the `postgresql` package \
                     creates one), so create it or run as an ordinary user"
                )
            })?;
        Ok(ServerUser::Switch { name: user.name, uid: user.uid, gid: user.gid })
    }

    /// Makes `command` run as this user.
    pub(crate) fn apply(&self, command: &mut Command) {
        if let ServerUser::Switch { uid, gid, .. } = self {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
    }

    /// Hands `path` (not its contents) to this user.
    pub(crate) fn give(&self, path: &Path) -> anyhow::Result<()> {
        if let ServerUser::Switch { name, uid, gid } = self {
            std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw()))
                .with_context(|| format!("handing {} to the OS user {name:?}", path.display()))?;
        }
        Ok(())
    }

    /// Checks that this user can enter and write `dir`.
    ///
    /// Root can reach places (e.g. under `/root`) that the server's user cannot;
    /// finding that out here gives a clearer message than a failed `initdb`.
    pub(crate) fn check_can_use(&self, dir: &Path) -> anyhow::Result<()> {
        let ServerUser::Switch { name, .. } = self else {
            return Ok(());
        };
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", r#"cd -- "$1" && test -r . && test -w ."#, "sh"])
            .arg(dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.apply(&mut command);
        let status = command.status().context("running /bin/sh to check directory access")?;
        if !status.success() {
            bail!(
                "the OS user {name:?}, which runs PostgreSQL because this process is root, \
                 cannot enter or write {} (a parent directory is probably closed to it, as \
                 /root is); choose a directory it can reach, e.g. under /var/tmp or /srv",
                dir.display()
            );
        }
        Ok(())
    }
}
