//! Finding the PostgreSQL server binaries (`initdb`, `postgres`).
//!
//! Stock Debian and Ubuntu install the server under
//! `/usr/lib/postgresql/<major>/bin`, which is not on `PATH`, so a plain `PATH`
//! search is not enough. [`find_pg_binaries`] looks in this order:
//!
//! 1. the directory named by the environment variable [`BINDIR_ENV`]
//!    (`FM_PG_BINDIR`); if it is set, it is the only place looked at, so a
//!    wrong value is reported instead of silently ignored;
//! 2. `pg_config --bindir`, accepted only if `initdb` and `postgres` are there
//!    (on Debian `pg_config` can come from the client-only `libpq-dev`);
//! 3. the highest-numbered `/usr/lib/postgresql/*/bin`;
//! 4. every directory on `PATH`.
//!
//! The choice itself is the pure function [`choose_bindir`], so it can be
//! tested without touching the process environment.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// The environment variable that names the directory holding `initdb` and
/// `postgres`, overriding every other way of finding them.
pub const BINDIR_ENV: &str = "FM_PG_BINDIR";

/// The directory under which Debian and Ubuntu install one `<major>/bin`
/// directory per PostgreSQL major version.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// A directory that holds the PostgreSQL server programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgBinaries {
    bindir: PathBuf,
}

impl PgBinaries {
    /// Uses `bindir` if it contains executable `initdb` and `postgres` files.
    ///
    /// # Errors
    ///
    /// Fails, naming the directory and the missing program, if either program
    /// is missing or not executable.
    pub fn from_bindir(bindir: impl Into<PathBuf>) -> anyhow::Result<PgBinaries> {
        let bindir = bindir.into();
        for program in ["initdb", "postgres"] {
            if !is_executable(&bindir.join(program)) {
                bail!("{} does not contain an executable `{program}`", bindir.display());
            }
        }
        Ok(PgBinaries { bindir })
    }

    /// The directory that holds the programs.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The path of `initdb`.
    pub fn initdb(&self) -> PathBuf {
        self.bindir.join("initdb")
    }

    /// The path of the `postgres` server.
    pub fn postgres(&self) -> PathBuf {
        self.bindir.join("postgres")
    }

    /// The path of `psql` in the same directory, if it is there.
    pub fn psql(&self) -> Option<PathBuf> {
        let psql = self.bindir.join("psql");
        is_executable(&psql).then_some(psql)
    }
}

/// Every place [`choose_bindir`] may look, gathered beforehand so that the
/// choice is a pure function of its input.
#[derive(Clone, Debug, Default)]
pub struct BindirCandidates {
    /// The value of [`BINDIR_ENV`], if it is set and not empty.
    pub env: Option<PathBuf>,
    /// What `pg_config --bindir` printed, if it ran successfully.
    pub pg_config: Option<PathBuf>,
    /// The `/usr/lib/postgresql/*/bin` directories, in any order.
    pub versioned: Vec<PathBuf>,
    /// The directories on `PATH`, in order.
    pub path: Vec<PathBuf>,
}

impl BindirCandidates {
    /// Gathers the candidates from this process's environment and file system.
    pub fn from_environment() -> BindirCandidates {
        let env = std::env::var_os(BINDIR_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
        let path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        BindirCandidates {
            env,
            pg_config: pg_config_bindir(),
            versioned: versioned_bindirs(Path::new(DEBIAN_PG_ROOT)),
            path,
        }
    }
}

/// Finds the PostgreSQL server binaries on this machine.
///
/// See the module documentation for the order in which places are tried.
///
/// # Errors
///
/// Fails if [`BINDIR_ENV`] is set to a directory without the programs, or if
/// no place has them; the message says which package to install.
pub fn find_pg_binaries() -> anyhow::Result<PgBinaries> {
    choose_bindir(&BindirCandidates::from_environment())
}

/// Chooses the server binaries from the given candidates.
///
/// An explicit [`BindirCandidates::env`] wins and is never skipped: if it
/// lacks the programs, that is the error. Otherwise the first of `pg_config`,
/// the highest-numbered versioned directory, and the `PATH` entries that has
/// both programs is chosen.
///
/// # Errors
///
/// As for [`find_pg_binaries`].
pub fn choose_bindir(candidates: &BindirCandidates) -> anyhow::Result<PgBinaries> {
    if let Some(dir) = &candidates.env {
        return PgBinaries::from_bindir(dir).with_context(|| {
            format!("{BINDIR_ENV} is set to {}, which is not usable", dir.display())
        });
    }
    let mut versioned = candidates.versioned.clone();
    versioned.sort_by_key(|dir| std::cmp::Reverse(version_key(dir)));
    let found = candidates
        .pg_config
        .iter()
        .chain(versioned.iter())
        .chain(candidates.path.iter())
        .find_map(|dir| PgBinaries::from_bindir(dir).ok());
    match found {
        Some(binaries) => Ok(binaries),
        None => bail!(
            "could not find the PostgreSQL server programs `initdb` and `postgres` \
             (looked at `pg_config --bindir`, {DEBIAN_PG_ROOT}/*/bin and PATH); \
             install the server (Debian/Ubuntu: `apt-get install postgresql`) \
             or set {BINDIR_ENV} to the directory that contains them"
        ),
    }
}

/// Runs `pg_config --bindir` and returns its output, if it ran successfully.
fn pg_config_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let dir = text.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Lists `<root>/*/bin`, in no particular order.
fn versioned_bindirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|p| p.is_dir()).collect()
}

/// The numeric sort key of `.../<version>/bin`: "9.6" sorts below "15".
///
/// Components that are not numbers sort below every number, so an odd
/// directory name never wins over a real version.
fn version_key(bindir: &Path) -> Vec<i64> {
    let version = bindir.parent().and_then(Path::file_name).and_then(OsStr::to_str).unwrap_or("");
    version.split('.').map(|part| part.parse::<i64>().unwrap_or(-1)).collect()
}

/// Whether `path` is a regular file with an execute bit set.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Creates `<root>/<name>/bin` holding executable `initdb` and `postgres`
    /// stand-ins, or only `initdb` when `complete` is false.
    fn fake_bindir(root: &Path, name: &str, complete: bool) -> PathBuf {
        let dir = root.join(name).join("bin");
        std::fs::create_dir_all(&dir).unwrap();
        let programs: &[&str] = if complete { &["initdb", "postgres"] } else { &["initdb"] };
        for program in programs {
            let path = dir.join(program);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[test]
    fn explicit_bindir_without_programs_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let good = fake_bindir(root.path(), "15", true);
        let candidates = BindirCandidates {
            env: Some(root.path().join("nowhere")),
            versioned: vec![good],
            ..Default::default()
        };
        let error = format!("{:#}", choose_bindir(&candidates).unwrap_err());
        assert!(error.contains(BINDIR_ENV), "{error}");
        assert!(error.contains("nowhere"), "{error}");
    }

    #[test]
    fn explicit_bindir_wins() {
        let root = tempfile::tempdir().unwrap();
        let explicit = fake_bindir(root.path(), "mine", true);
        let versioned = fake_bindir(root.path(), "16", true);
        let candidates = BindirCandidates {
            env: Some(explicit.clone()),
            versioned: vec![versioned],
            ..Default::default()
        };
        assert_eq!(choose_bindir(&candidates).unwrap().bindir(), explicit);
    }

    #[test]
    fn highest_version_wins_numerically_and_incomplete_dirs_are_skipped() {
        let root = tempfile::tempdir().unwrap();
        let v9 = fake_bindir(root.path(), "9.6", true);
        let v15 = fake_bindir(root.path(), "15", true);
        let v16 = fake_bindir(root.path(), "16", false);
        let candidates =
            BindirCandidates { versioned: vec![v16, v9, v15.clone()], ..Default::default() };
        assert_eq!(choose_bindir(&candidates).unwrap().bindir(), v15);
    }

    #[test]
    fn pg_config_is_used_only_when_complete() {
        let root = tempfile::tempdir().unwrap();
        let client_only = fake_bindir(root.path(), "client", false);
        let on_path = fake_bindir(root.path(), "path", true);
        let candidates = BindirCandidates {
            pg_config: Some(client_only),
            path: vec![root.path().to_path_buf(), on_path.clone()],
            ..Default::default()
        };
        assert_eq!(choose_bindir(&candidates).unwrap().bindir(), on_path);
    }

    #[test]
    fn nothing_found_names_the_package_and_the_variable() {
        let error = format!("{:#}", choose_bindir(&BindirCandidates::default()).unwrap_err());
        assert!(error.contains("apt-get install postgresql"), "{error}");
        assert!(error.contains(BINDIR_ENV), "{error}");
    }
}
