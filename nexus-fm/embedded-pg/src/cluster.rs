//! One PostgreSQL server ("cluster") run by this process.
//!
//! # How cleanup is guaranteed
//!
//! Neither `initdb` nor the server is a direct child of this process. A tiny
//! supervisor shell (`SUPERVISOR_SCRIPT` in this file) runs them and watches
//! its own stdin, a pipe whose only write end this process holds. The pipe closes when
//! [`PgCluster`] is stopped or dropped, but also when this process exits,
//! panics or is killed with SIGKILL, at any moment from the first step on.
//! The supervisor then stops whatever it is running (`initdb`, or the server
//! with a fast shutdown), waits for it, and removes the private run directory
//! (socket, logs, and the data directory of a temporary cluster). A persistent
//! data directory is never removed.
//!
//! The supervisor is in its own process group, so a Ctrl-C in the terminal
//! reaches this process only; the server then stops through the pipe.
//!
//! # Directories
//!
//! Every cluster gets a short private "run directory" under `/dev/shm` (a
//! tmpfs, which makes `initdb` and `CREATE DATABASE` fast) or, failing that,
//! the system temporary directory. It holds the Unix socket, whose path must
//! stay under 108 bytes, the logs, and, for a temporary cluster, the data
//! directory `data/`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use super::binaries::{PgBinaries, find_pg_binaries};
use super::url;
use super::user::ServerUser;

/// The shell script that supervises one cluster.
///
/// Arguments: `$1` is the run directory (removed at the end), `$2` the server
/// log, `$3` the `initdb` program (empty to skip `initdb`), `$4` the data
/// directory, and the rest is the server's command line. It reports on stdout
/// `initdb-failed STATUS` or `server PID`, then waits for end-of-file on
/// stdin before stopping the server and cleaning up.
///
/// Notes on the shell details it relies on:
/// * SIGPIPE is ignored so that reporting to an owner that has already died
///   cannot kill the supervisor before it has done its job.
/// * A background job of a non-interactive shell gets stdin from /dev/null,
///   so the pipe is kept on fd 3 for the watcher job, which reads it and
///   signals the main shell (SIGUSR1) at end-of-file. The main shell stops the
///   current child both in the trap (if the signal arrives during `wait`) and
///   before each `wait` (if it arrived just before).
/// * Background jobs start with SIGINT ignored until PostgreSQL installs its
///   own handlers a few milliseconds later. SIGTERM is therefore sent after
///   SIGINT: once the handlers are installed, the postmaster ignores the
///   weaker (smart) request during a fast shutdown; before, SIGTERM's default
///   action ends it. `initdb` treats both as a request to stop, and removes
///   what it created.
/// * A `wait` interrupted by the trap returns a status above 128 without
///   reaping the child, so every child is waited for twice; for a child
///   already reaped the shell reports the same status again (or 127). The
///   shell does not reap a child before `wait`, so its pid cannot be reused
///   before the signals are sent.
const SUPERVISOR_SCRIPT: &str = r#"
run_dir=$1
log=$2
initdb=$3
data_dir=$4
shift 4
trap '' PIPE
exec 2>>"$log" 3<&0 </dev/null
eof=
child=
stop_child() {
    if [ -n "$child" ]; then
        kill -INT "$child" 2>/dev/null
        kill -TERM "$child" 2>/dev/null
    fi
}
wait_child() {
    [ -z "$eof" ] || stop_child
    wait "$child"
    status=$?
    wait "$child"
    again=$?
    [ "$again" -eq 127 ] || status=$again
    child=
    return "$status"
}
finish() {
    wait "$watcher"
    wait "$watcher"
    rm -rf -- "$run_dir"
    exit "$1"
}
trap 'eof=1; stop_child' USR1
{ while IFS= read -r _line <&3; do :; done; kill -USR1 $$; } >/dev/null &
watcher=$!
exec 3<&-
if [ -n "$initdb" ]; then
    "$initdb" -D "$data_dir" -U postgres --auth=trust -E UTF8 --locale=C --no-sync \
        </dev/null >>"$run_dir/initdb.log" 2>&1 &
    child=$!
    wait_child
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "initdb-failed $status"
        finish "$status"
    fi
fi
"$@" </dev/null >>"$log" 2>&1 &
child=$!
echo "server $child"
wait_child
finish "$?"
"#;

/// The name prefix of run directories, which makes leftovers easy to spot.
pub const RUN_DIR_PREFIX: &str = "fm-pg-";

/// How long [`PgCluster::start`] waits for the server to accept connections.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`PgCluster::start`] waits for `initdb`, which takes half a second
/// on tmpfs but can take many seconds on a slow, busy disk.
const INITDB_TIMEOUT: Duration = Duration::from_secs(180);

/// How long stopping waits for the supervisor before killing its process
/// group.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// How many lines of a log are quoted in an error.
const LOG_TAIL_LINES: usize = 30;

/// How to start a [`PgCluster`].
///
/// The default is a throwaway cluster tuned for tests: a fresh temporary data
/// directory, port 5432 on a private Unix socket only, and durability off.
#[derive(Clone, Debug)]
pub struct PgClusterOptions {
    data_dir: Option<PathBuf>,
    port: u16,
    listen_tcp: bool,
    durable: bool,
    binaries: Option<PgBinaries>,
    settings: Vec<(String, String)>,
    startup_timeout: Duration,
}

impl Default for PgClusterOptions {
    fn default() -> PgClusterOptions {
        PgClusterOptions {
            data_dir: None,
            port: 5432,
            listen_tcp: false,
            durable: false,
            binaries: None,
            settings: Vec::new(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }
}

impl PgClusterOptions {
    /// The default options: see the type's documentation.
    pub fn new() -> PgClusterOptions {
        PgClusterOptions::default()
    }

    /// Keeps the data in `dir` instead of a temporary directory.
    ///
    /// `initdb` runs only if `dir` holds no cluster yet (no `PG_VERSION`);
    /// the directory is created if missing and is never removed.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> PgClusterOptions {
        self.data_dir = Some(dir.into());
        self
    }

    /// The port: the TCP port with [`listen_tcp`](Self::listen_tcp), and in
    /// any case the name of the Unix socket. Defaults to 5432, which cannot
    /// clash on the socket because the socket directory is private.
    pub fn port(mut self, port: u16) -> PgClusterOptions {
        self.port = port;
        self
    }

    /// Whether to also listen on TCP at 127.0.0.1 (default: Unix socket only).
    pub fn listen_tcp(mut self, listen_tcp: bool) -> PgClusterOptions {
        self.listen_tcp = listen_tcp;
        self
    }

    /// Whether writes must survive a crash (default false).
    ///
    /// When false, the server runs with `fsync=off`, `synchronous_commit=off`
    /// and `full_page_writes=off`, which is right for throwaway test data and
    /// wrong for anything worth keeping.
    pub fn durable(mut self, durable: bool) -> PgClusterOptions {
        self.durable = durable;
        self
    }

    /// Uses these server programs instead of [`find_pg_binaries`].
    pub fn binaries(mut self, binaries: PgBinaries) -> PgClusterOptions {
        self.binaries = Some(binaries);
        self
    }

    /// Passes `-c name=value` to the server, after the settings this crate
    /// chooses (so it can override them).
    pub fn setting(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> PgClusterOptions {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// How long to wait for the server to accept connections (default 60 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> PgClusterOptions {
        self.startup_timeout = timeout;
        self
    }
}

/// A running PostgreSQL server with superuser `postgres` and trust
/// authentication, reachable through a private Unix socket.
///
/// Dropping it (or calling [`stop`](Self::stop)) shuts the server down and
/// waits until it is gone and its temporary directories are removed. Even if
/// this process dies without dropping it, the supervisor cleans up.
#[derive(Debug)]
pub struct PgCluster {
    supervisor: Option<Child>,
    pipe: Option<ChildStdin>,
    run_dir: PathBuf,
    data_dir: PathBuf,
    temporary: bool,
    port: u16,
    listen_tcp: bool,
    postmaster_pid: u32,
    log_path: PathBuf,
}

impl PgCluster {
    /// Initializes (if needed) and starts a cluster, and waits until it
    /// accepts connections.
    ///
    /// This blocks for as long as that takes (about half a second for a new
    /// temporary cluster on tmpfs); from async code, call it on a blocking
    /// thread.
    ///
    /// # Errors
    ///
    /// Fails if the programs cannot be found, a directory cannot be prepared,
    /// `initdb` fails, or the server does not become ready; the error quotes
    /// the end of the relevant output or log. Nothing is left behind.
    pub fn start(options: &PgClusterOptions) -> anyhow::Result<PgCluster> {
        let binaries = match &options.binaries {
            Some(binaries) => binaries.clone(),
            None => find_pg_binaries()?,
        };
        let user = ServerUser::detect()?;
        let run_dir = RunDirGuard(Some(create_run_dir()?));
        let run_path = run_dir.path().to_path_buf();
        user.give(&run_path)?;

        let (data_dir, temporary) = match &options.data_dir {
            None => (run_path.join("data"), true),
            Some(dir) => (prepare_persistent_dir(dir, &user)?, false),
        };
        // The supervisor runs initdb itself, so that even an initdb cut short
        // by the death of this process is stopped and cleaned up.
        let initdb =
            if data_dir.join("PG_VERSION").exists() { PathBuf::new() } else { binaries.initdb() };
        let log_path = run_path.join("postgres.log");
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", SUPERVISOR_SCRIPT, "fm-pg-supervisor"])
            .arg(&run_path)
            .arg(&log_path)
            .arg(&initdb)
            .arg(&data_dir)
            .arg(binaries.postgres())
            .args(server_args(options, &data_dir, &run_path))
            .current_dir("/")
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        user.apply(&mut command);
        let mut supervisor =
            command.spawn().context("starting the PostgreSQL supervisor (/bin/sh)")?;
        // From here on the supervisor owns the run directory and removes it.
        run_dir.disarm();

        let pipe = supervisor.stdin.take();
        let reports = supervisor.stdout.take().map(read_reports);
        let mut cluster = PgCluster {
            supervisor: Some(supervisor),
            pipe,
            run_dir: run_path,
            data_dir,
            temporary,
            port: options.port,
            listen_tcp: options.listen_tcp,
            postmaster_pid: 0,
            log_path,
        };
        if let Err(error) = cluster.await_startup(reports, options.startup_timeout) {
            // Stop here rather than in `Drop`, which would also report the
            // failed server's exit status: the error says it all already.
            let _ = cluster.shutdown();
            return Err(error);
        }
        Ok(cluster)
    }

    /// Waits for the supervisor's report and then for the server to be ready.
    fn await_startup(
        &mut self,
        reports: Option<mpsc::Receiver<Report>>,
        startup_timeout: Duration,
    ) -> anyhow::Result<()> {
        let report = reports.and_then(|reports| reports.recv_timeout(INITDB_TIMEOUT).ok());
        match report {
            Some(Report::Server(pid)) => self.postmaster_pid = pid,
            Some(Report::InitdbFailed(status)) => {
                let output = self.run_dir.join("initdb.log");
                bail!(
                    "initdb for {} failed with exit status {status}; end of its output {}:\n{}",
                    self.data_dir.display(),
                    output.display(),
                    read_tail(&output)
                );
            }
            Some(Report::Closed) => {
                return Err(self.startup_error("the supervisor exited during startup"));
            }
            None => {
                return Err(self.startup_error(&format!(
                    "initdb did not finish within {} s",
                    INITDB_TIMEOUT.as_secs()
                )));
            }
        }
        self.wait_until_ready(startup_timeout)
    }

    /// The URL of database `dbname` over the Unix socket, as the superuser.
    pub fn url(&self, dbname: &str) -> String {
        url::socket_url(&self.run_dir, self.port, dbname)
    }

    /// The URL of the `postgres` database: the place for administrative
    /// statements such as `CREATE DATABASE`.
    pub fn admin_url(&self) -> String {
        self.url("postgres")
    }

    /// The URL of database `dbname` over TCP, if the cluster listens on TCP.
    pub fn tcp_url(&self, dbname: &str) -> Option<String> {
        self.listen_tcp.then(|| url::tcp_url(self.port, dbname))
    }

    /// The directory holding the Unix socket and the server log.
    pub fn socket_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The port (and socket name) the server uses.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the data directory is temporary (removed on stop).
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// The server's log file (removed on stop, even for a persistent cluster).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id of the postmaster.
    pub fn postmaster_pid(&self) -> u32 {
        self.postmaster_pid
    }

    /// Shuts the server down (fast shutdown: open sessions are ended) and
    /// waits until it has exited and the temporary directories are gone.
    ///
    /// # Errors
    ///
    /// Fails if the server exited with an error status, did not stop in time
    /// (it is then killed), or a directory could not be removed.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown()
    }

    /// Does the work of [`stop`](Self::stop); does nothing the second time.
    fn shutdown(&mut self) -> anyhow::Result<()> {
        // Closing the only write end of the pipe is the stop request.
        drop(self.pipe.take());
        let Some(mut supervisor) = self.supervisor.take() else {
            return Ok(());
        };
        let status = match wait_with_timeout(&mut supervisor, STOP_TIMEOUT) {
            Ok(Some(status)) => status,
            result => {
                // The supervisor is stuck (or cannot be waited for): kill its
                // whole process group, which includes the server, and clean up
                // here instead.
                let group = nix::unistd::Pid::from_raw(supervisor.id() as i32);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                let _ = supervisor.wait();
                let _ = std::fs::remove_dir_all(&self.run_dir);
                result.context("waiting for the PostgreSQL supervisor")?;
                bail!("PostgreSQL did not stop within {} s and was killed", STOP_TIMEOUT.as_secs());
            }
        };
        if self.run_dir.exists() {
            std::fs::remove_dir_all(&self.run_dir).with_context(|| {
                format!("removing the PostgreSQL run directory {}", self.run_dir.display())
            })?;
        }
        if !status.success() {
            bail!("PostgreSQL exited with {status}");
        }
        Ok(())
    }

    /// Polls until the postmaster reports itself ready in `postmaster.pid`.
    fn wait_until_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if postmaster_is_ready(&self.data_dir, self.postmaster_pid) {
                return Ok(());
            }
            if let Some(supervisor) = self.supervisor.as_mut()
                && let Some(status) = supervisor.try_wait().context("polling the supervisor")?
            {
                return Err(self.startup_error(&format!("the supervisor exited with {status}")));
            }
            if !process_is_alive(self.postmaster_pid) {
                return Err(self.startup_error("PostgreSQL exited during startup"));
            }
            if Instant::now() >= deadline {
                return Err(self.startup_error(&format!(
                    "PostgreSQL did not accept connections within {} s",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// An error saying `what`, followed by the tail of the server log.
    fn startup_error(&self, what: &str) -> anyhow::Error {
        anyhow!(self.log_tail_context(what))
    }

    /// `what`, followed by the tail of the server log.
    fn log_tail_context(&self, what: &str) -> String {
        format!(
            "{what} (data directory {}); end of the server log {}:\n{}",
            self.data_dir.display(),
            self.log_path.display(),
            read_tail(&self.log_path)
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            eprintln!("stopping PostgreSQL in {}: {error:#}", self.run_dir.display());
        }
    }
}

/// Removes a run directory unless disarmed: covers failures before the
/// supervisor has taken the directory over.
struct RunDirGuard(Option<PathBuf>);

impl RunDirGuard {
    fn path(&self) -> &Path {
        self.0.as_deref().expect("the guard is armed")
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RunDirGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// Creates a fresh, private run directory with a short path.
fn create_run_dir() -> anyhow::Result<PathBuf> {
    let base = run_dir_base();
    let dir = tempfile::Builder::new()
        .prefix(RUN_DIR_PREFIX)
        .tempdir_in(&base)
        .with_context(|| format!("creating a temporary directory in {}", base.display()))?;
    Ok(dir.keep())
}

/// Where run directories go: `/dev/shm` if it exists, else the system
/// temporary directory, else `/tmp`.
///
/// The path ends up in the socket path (limited to 107 bytes) and in
/// connection URLs, so a base that is long or has characters that would need
/// quoting is skipped.
fn run_dir_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        return shm.to_path_buf();
    }
    let temp = std::env::temp_dir();
    let text = temp.to_string_lossy();
    let plain = text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if temp.is_absolute() && plain && text.len() <= 60 { temp } else { PathBuf::from("/tmp") }
}

/// Makes `dir` usable as a persistent data directory and returns its
/// absolute path: creates it if missing and hands it to the server's user.
fn prepare_persistent_dir(dir: &Path, user: &ServerUser) -> anyhow::Result<PathBuf> {
    let created = !dir.exists();
    if created {
        // Parents get the default mode, so that the server's user can pass
        // through them; only the data directory itself is private.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the directory {}", parent.display()))?;
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving the data directory {}", dir.display()))?;
    if !dir.is_dir() {
        bail!("the data directory {} is not a directory", dir.display());
    }
    let usable = user.give(&dir).and_then(|()| user.check_can_use(&dir));
    if let Err(error) = usable {
        if created {
            // Leave no trace of a directory that cannot be used.
            let _ = std::fs::remove_dir(&dir);
        }
        return Err(error);
    }
    Ok(dir)
}

/// The server's arguments after the program name.
fn server_args(options: &PgClusterOptions, data_dir: &Path, run_dir: &Path) -> Vec<String> {
    let listen = if options.listen_tcp { "127.0.0.1" } else { "" };
    let mut settings: Vec<(String, String)> = vec![
        ("listen_addresses".into(), listen.into()),
        ("unix_socket_directories".into(), run_dir.to_string_lossy().into_owned()),
        ("logging_collector".into(), "off".into()),
        // JIT makes trivial queries 20-200 ms slower whenever the planner's
        // cost estimate is inflated, e.g. by `enable_seqscan=off` in tests.
        ("jit".into(), "off".into()),
    ];
    if !options.durable {
        for name in ["fsync", "synchronous_commit", "full_page_writes"] {
            settings.push((name.into(), "off".into()));
        }
    }
    settings.extend(options.settings.iter().cloned());
    let mut args = vec!["-D".to_string(), data_dir.to_string_lossy().into_owned()];
    args.extend(["-p".to_string(), options.port.to_string()]);
    for (name, value) in settings {
        args.push("-c".into());
        args.push(format!("{name}={value}"));
    }
    args
}

/// What the supervisor reports on its stdout.
#[derive(Debug)]
enum Report {
    /// `initdb` failed with this exit status.
    InitdbFailed(String),
    /// The server was started with this pid.
    Server(u32),
    /// The supervisor's stdout closed (it exited) or said something else.
    Closed,
}

/// Reads the supervisor's first report on a thread of its own, so that the
/// caller can wait for it with a timeout. The thread ends after one report.
fn read_reports(stdout: ChildStdout) -> mpsc::Receiver<Report> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let report = match BufReader::new(stdout).read_line(&mut line) {
            Ok(_) => parse_report(&line),
            Err(_) => Report::Closed,
        };
        let _ = sender.send(report);
    });
    receiver
}

/// Parses one line of the supervisor's output.
fn parse_report(line: &str) -> Report {
    let line = line.trim();
    if let Some(status) = line.strip_prefix("initdb-failed ") {
        Report::InitdbFailed(status.to_string())
    } else if let Some(pid) = line.strip_prefix("server ").and_then(|p| p.parse().ok()) {
        Report::Server(pid)
    } else {
        Report::Closed
    }
}

/// Whether `postmaster.pid` in `data_dir` belongs to `pid` and says `ready`.
///
/// Checking the pid matters for a persistent data directory, where a stale
/// file from an earlier, killed server may still say `ready`.
fn postmaster_is_ready(data_dir: &Path, pid: u32) -> bool {
    let Ok(text) = std::fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.first().is_some_and(|l| l.trim() == pid.to_string())
        && lines.get(7).is_some_and(|l| l.trim() == "ready")
}

/// Whether process `pid` exists and has not exited (a zombie counts as exited).
fn process_is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x')),
        Err(_) if Path::new("/proc/self/stat").exists() => false,
        // Without /proc, fall back to a signal-0 probe (zombies look alive).
        Err(_) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok(),
    }
}

/// Waits for `child` for at most `timeout`; `Ok(None)` if it is still running.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The last lines of the file at `path`, or why it cannot be read.
fn read_tail(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| tail_lines(&String::from_utf8_lossy(&bytes), LOG_TAIL_LINES))
        .unwrap_or_else(|e| format!("(cannot read it: {e})"))
}

/// The last `n` lines of `text`.
fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one statement-returning query over a fresh connection.
    async fn query_text(url: &str, sql: &str) -> anyhow::Result<String> {
        let client = crate::client::connect(url).await?;
        Ok(client.query_one(sql, &[]).await?.get(0))
    }

    #[tokio::test]
    async fn temporary_cluster_runs_and_leaves_nothing_behind() {
        let cluster = tokio::task::spawn_blocking(|| PgCluster::start(&PgClusterOptions::new()))
            .await
            .unwrap()
            .unwrap();
        let pid = cluster.postmaster_pid();
        let run_dir = cluster.socket_dir().to_path_buf();
        assert!(cluster.is_temporary());
        assert!(cluster.data_dir().starts_with(&run_dir));
        assert!(run_dir.to_string_lossy().len() < 60, "{}", run_dir.display());
        assert!(process_is_alive(pid));

        let url = cluster.url("postgres");
        assert_eq!(query_text(&url, "SELECT current_setting('fsync')").await.unwrap(), "off");
        assert_eq!(query_text(&url, "SELECT current_setting('jit')").await.unwrap(), "off");
        assert_eq!(
            query_text(&url, "SELECT current_setting('listen_addresses')").await.unwrap(),
            ""
        );

        tokio::task::spawn_blocking(move || drop(cluster)).await.unwrap();
        assert!(!run_dir.exists(), "{} is left behind", run_dir.display());
        assert!(!process_is_alive(pid), "postmaster {pid} is still running");
    }

    #[tokio::test]
    async fn persistent_cluster_keeps_its_data() {
        let parent = tempfile::Builder::new().prefix("fm-dev-test-").tempdir_in("/tmp").unwrap();
        ServerUser::detect().unwrap().give(parent.path()).unwrap();
        let data_dir = parent.path().join("data");
        let options = PgClusterOptions::new().data_dir(&data_dir).durable(true);

        let first = PgCluster::start(&options).unwrap();
        assert!(!first.is_temporary());
        let client = crate::client::connect(&first.admin_url()).await.unwrap();
        client
            .batch_execute("CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('x')")
            .await
            .unwrap();
        assert_eq!(query_text(&first.admin_url(), "SHOW fsync").await.unwrap(), "on");
        drop(client);
        let first_run_dir = first.socket_dir().to_path_buf();
        first.stop().unwrap();
        assert!(!first_run_dir.exists());
        assert!(data_dir.join("PG_VERSION").exists(), "the data directory was removed");

        let second = PgCluster::start(&options).unwrap();
        let value = query_text(&second.admin_url(), "SELECT v FROM kept").await.unwrap();
        assert_eq!(value, "x");
        second.stop().unwrap();
        assert!(data_dir.join("PG_VERSION").exists());
    }

    #[test]
    fn startup_failure_quotes_the_log_and_cleans_up() {
        let options = PgClusterOptions::new().setting("shared_buffers", "not-a-size");
        let error = format!("{:#}", PgCluster::start(&options).unwrap_err());
        assert!(error.contains("shared_buffers"), "{error}");
        assert!(error.contains("exited during startup"), "{error}");
        // The message names the log inside the run directory, which must be gone.
        let log = error
            .split_whitespace()
            .find(|w| w.ends_with("postgres.log:"))
            .expect("the error names the log file");
        let run_dir = Path::new(log.trim_end_matches(':')).parent().unwrap();
        assert!(run_dir.file_name().unwrap().to_string_lossy().starts_with(RUN_DIR_PREFIX));
        assert!(!run_dir.exists(), "{} is left behind", run_dir.display());
    }

    #[test]
    fn initdb_failure_quotes_its_output_and_keeps_foreign_files() {
        let parent = tempfile::Builder::new().prefix("fm-dev-test-").tempdir_in("/tmp").unwrap();
        ServerUser::detect().unwrap().give(parent.path()).unwrap();
        let data_dir = parent.path().join("data");
        std::fs::create_dir(&data_dir).unwrap();
        std::fs::write(data_dir.join("precious.txt"), "not a cluster").unwrap();

        let error = PgCluster::start(&PgClusterOptions::new().data_dir(&data_dir)).unwrap_err();
        let error = format!("{error:#}");
        assert!(error.contains("initdb for"), "{error}");
        assert!(error.contains("not empty"), "{error}");
        assert!(data_dir.join("precious.txt").exists());
    }

    #[test]
    fn supervisor_reports_parse() {
        assert!(matches!(parse_report("server 42\n"), Report::Server(42)));
        assert!(matches!(parse_report("initdb-failed 1\n"), Report::InitdbFailed(s) if s == "1"));
        assert!(matches!(parse_report(""), Report::Closed));
        assert!(matches!(parse_report("server x"), Report::Closed));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a", 5), "a");
    }

    #[test]
    fn test_settings_turn_durability_off_and_durable_ones_do_not() {
        let run = Path::new("/dev/shm/fm-pg-x");
        let data = run.join("data");
        let fast = server_args(&PgClusterOptions::new(), &data, run);
        assert!(fast.contains(&"fsync=off".to_string()));
        assert!(fast.contains(&"jit=off".to_string()));
        assert!(fast.contains(&"listen_addresses=".to_string()));
        let durable =
            server_args(&PgClusterOptions::new().durable(true).listen_tcp(true), &data, run);
        assert!(!durable.iter().any(|a| a.starts_with("fsync")));
        assert!(durable.contains(&"jit=off".to_string()));
        assert!(durable.contains(&"listen_addresses=127.0.0.1".to_string()));
    }
}
