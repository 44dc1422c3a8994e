//! A fresh database per test, cloned from a template that holds the schema.
//!
//! The first [`TestDatabase`] a test process asks for starts one PostgreSQL
//! cluster for the whole process (see [`PgCluster`]) and loads the schema
//! (`fm_db_queries::migration::DBINIT_SQL`) once into a template database.
//! Every test database after that is a file copy of the template, which takes
//! about 10 ms on tmpfs. With the environment variable
//! [`TEST_DATABASE_URL_ENV`] set, an existing server is used instead and no
//! cluster is started.
//!
//! Everything here is synchronous and may be called from inside a tokio
//! runtime (e.g. a `#[tokio::test]`): the administrative work runs on its own
//! thread with its own single-threaded runtime, because blocking on a future
//! inside a runtime panics.
//!
//! # Sharing a server between processes
//!
//! Several test processes (cargo-nextest runs one per test) may share one
//! server through [`TEST_DATABASE_URL_ENV`]. The template is named after a
//! hash of the schema text and is built under a temporary name, then renamed
//! into place, so no process ever clones a half-loaded template; a process
//! that loses the race to rename drops its copy and uses the winner's. The
//! template does not allow connections: a session connected to it would make
//! `CREATE DATABASE ... TEMPLATE` wait 5 s and fail.
//!
//! # Cleanup
//!
//! A test database is dropped (`WITH (FORCE)`) when its handle is dropped.
//! The process-wide cluster lives in a static, and statics are never dropped,
//! so an `atexit` handler stops it when the process exits; if the process dies
//! without running it (a signal), the cluster's supervisor cleans up.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock, PoisonError};

use anyhow::{Context, anyhow, bail};
use tokio_postgres::error::SqlState;

use fm_embedded_pg::client::Connection;
use fm_embedded_pg::cluster::{PgCluster, PgClusterOptions};
use fm_embedded_pg::url::url_with_dbname;

/// The environment variable naming an existing server to use instead of
/// starting one, e.g. `postgresql://postgres@/postgres?host=/tmp/x&port=5432`.
///
/// Its user must be allowed to create databases (a superuser, in practice,
/// since `DROP DATABASE ... WITH (FORCE)` ends other sessions). Test databases
/// get the same URL with the database name replaced.
pub const TEST_DATABASE_URL_ENV: &str = "FM_TEST_DATABASE_URL";

/// The longest identifier PostgreSQL keeps without truncating it.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The server version that introduced `CREATE DATABASE ... STRATEGY`.
const STRATEGY_VERSION: i32 = 150000;

/// The server version that introduced `DROP DATABASE ... WITH (FORCE)`.
const DROP_FORCE_VERSION: i32 = 130000;

/// How often creating a test database is retried when its name is taken.
const NAME_ATTEMPTS: usize = 20;

/// The process-wide server and template, or why they could not be set up.
static HARNESS: OnceLock<Result<Harness, String>> = OnceLock::new();

/// Numbers the databases this process creates.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The process-wide state behind every [`TestDatabase`].
struct Harness {
    /// The cluster this process started, or `None` when using an external
    /// server. Taken (and stopped) by the exit handler.
    cluster: Mutex<Option<PgCluster>>,
    /// Where administrative statements are sent.
    admin_url: String,
    /// The database that holds the schema and is cloned for each test.
    template: String,
    /// `server_version_num` of the server.
    server_version_num: i32,
}

/// A database for one test, dropped when this handle is dropped.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// let db = fm_dev::TestDatabase::new()?;
/// let client = fm_dev::connect(db.url()).await?;
/// client.batch_execute("SELECT * FROM fm_sitrep").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    server_version_num: i32,
}

impl TestDatabase {
    /// Creates a database that holds the current schema
    /// (`fm_db_queries::migration::DBINIT_SQL`).
    ///
    /// The first call in a process starts the shared server (about a second);
    /// later calls take about 10 ms.
    ///
    /// # Errors
    ///
    /// Fails if the server cannot be started or reached, the schema does not
    /// load, or the database cannot be created. A failure to set up the
    /// server is remembered: every later call fails with the same message.
    pub fn new() -> anyhow::Result<TestDatabase> {
        let harness = harness()?;
        TestDatabase::create(harness, &harness.template)
    }

    /// Creates an empty database (a copy of `template0`), e.g. for tests that
    /// apply the migrations themselves.
    ///
    /// # Errors
    ///
    /// As for [`TestDatabase::new`].
    pub fn empty() -> anyhow::Result<TestDatabase> {
        TestDatabase::create(harness()?, "template0")
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the database, accepted by `tokio-postgres`, diesel-async
    /// and `psql`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates a uniquely named copy of `template`.
    fn create(harness: &Harness, template: &str) -> anyhow::Result<TestDatabase> {
        let admin_url = harness.admin_url.clone();
        let version = harness.server_version_num;
        // The name is taken here: the work below runs on another thread.
        let thread = std::thread::current();
        let label = thread.name().unwrap_or("");
        let name = block_on_own_thread(|| async {
            let admin = Connection::open(&admin_url).await?;
            let result = create_unique_database(&admin.client, template, version, label).await;
            admin.close().await;
            result
        })?;
        let url = url_with_dbname(&admin_url, &name)?;
        Ok(TestDatabase { name, url, admin_url, server_version_num: version })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let force =
            if self.server_version_num >= DROP_FORCE_VERSION { " WITH (FORCE)" } else { "" };
        let sql = format!("DROP DATABASE IF EXISTS {}{force}", quote_ident(&self.name));
        let result = block_on_own_thread(|| async {
            let admin = Connection::open(&self.admin_url).await?;
            let result = admin.client.batch_execute(&sql).await;
            admin.close().await;
            result.context("running DROP DATABASE")
        });
        if let Err(error) = result {
            eprintln!("fm-dev: could not drop test database {}: {error:#}", self.name);
        }
    }
}

/// The administrative URL of the server behind [`TestDatabase`], starting it
/// if needed: the `postgres` database of the harness's own cluster, or the
/// URL in [`TEST_DATABASE_URL_ENV`].
///
/// # Errors
///
/// As for [`TestDatabase::new`].
pub fn test_server_admin_url() -> anyhow::Result<String> {
    Ok(harness()?.admin_url.clone())
}

/// The process-wide harness, set up on first use.
fn harness() -> anyhow::Result<&'static Harness> {
    HARNESS
        .get_or_init(|| start_harness().map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|message| anyhow!("setting up the test database server: {message}"))
}

/// Starts (or finds) the server and prepares the template.
fn start_harness() -> anyhow::Result<Harness> {
    let external = match std::env::var(TEST_DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        Ok(_) | Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => bail!("{TEST_DATABASE_URL_ENV} is not UTF-8"),
    };
    let (cluster, admin_url) = match external {
        Some(url) => (None, url),
        None => {
            let cluster = PgCluster::start(&PgClusterOptions::new())
                .context("starting a PostgreSQL cluster for tests")?;
            register_exit_handler();
            let url = cluster.admin_url();
            (Some(cluster), url)
        }
    };
    let schema = fm_db_queries::migration::DBINIT_SQL;
    let (template, server_version_num) =
        block_on_own_thread(|| prepare_template(&admin_url, schema))?;
    Ok(Harness { cluster: Mutex::new(cluster), admin_url, template, server_version_num })
}

/// Makes sure the template for `schema` exists; returns its name and the
/// server's `server_version_num`.
async fn prepare_template(admin_url: &str, schema: &str) -> anyhow::Result<(String, i32)> {
    let admin = Connection::open(admin_url).await?;
    let result = prepare_template_on(&admin.client, admin_url, schema).await;
    admin.close().await;
    result
}

/// [`prepare_template`] on an open administrative connection.
async fn prepare_template_on(
    admin: &tokio_postgres::Client,
    admin_url: &str,
    schema: &str,
) -> anyhow::Result<(String, i32)> {
    let version: i32 = admin
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .await
        .context("reading server_version_num")?
        .get(0);
    let template = template_name(schema);
    if database_exists(admin, &template).await? {
        return Ok((template, version));
    }

    let build = build_name();
    admin
        .batch_execute(&create_database_sql(&build, "template0", version))
        .await
        .with_context(|| format!("creating database {build} to load the schema into"))?;
    let outcome = load_and_publish(admin, admin_url, &build, &template, schema).await;
    if !matches!(outcome, Ok(true)) {
        // Either something failed or another process published the same
        // template first: this copy is not needed.
        let drop_sql = format!("DROP DATABASE IF EXISTS {}", quote_ident(&build));
        if let Err(error) = admin.batch_execute(&drop_sql).await {
            eprintln!("fm-dev: could not drop database {build}: {error:#}");
        }
    }
    outcome.map(|_| (template, version))
}

/// Loads `schema` into `build`, closes it to connections and renames it to
/// `template`. Returns false if `template` appeared meanwhile (another
/// process won the race), true if this call published it.
async fn load_and_publish(
    admin: &tokio_postgres::Client,
    admin_url: &str,
    build: &str,
    template: &str,
    schema: &str,
) -> anyhow::Result<bool> {
    let build_url = url_with_dbname(admin_url, build)?;
    let loader = Connection::open(&build_url).await?;
    let loaded = loader.client.batch_execute(schema).await;
    // The connection must be gone before the database can be renamed and
    // used as a template.
    loader.close().await;
    loaded.with_context(|| {
        format!("loading the schema (fm_db_queries::migration::DBINIT_SQL) into {build}")
    })?;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            quote_ident(build)
        ))
        .await
        .with_context(|| format!("closing database {build} to connections"))?;
    let rename =
        format!("ALTER DATABASE {} RENAME TO {}", quote_ident(build), quote_ident(template));
    match admin.batch_execute(&rename).await {
        Ok(()) => Ok(true),
        Err(error) if error.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(false),
        Err(error) => {
            Err(anyhow::Error::new(error).context(format!("renaming {build} to {template}")))
        }
    }
}

/// Creates a copy of `template` under a fresh name and returns the name.
async fn create_unique_database(
    admin: &tokio_postgres::Client,
    template: &str,
    version: i32,
    thread_name: &str,
) -> anyhow::Result<String> {
    for _ in 0..NAME_ATTEMPTS {
        let name = unique_database_name(thread_name);
        match admin.batch_execute(&create_database_sql(&name, template, version)).await {
            Ok(()) => return Ok(name),
            // Only possible when a server is shared with processes elsewhere
            // (or left over from an earlier run): try the next number.
            Err(error) if error.code() == Some(&SqlState::DUPLICATE_DATABASE) => continue,
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("creating test database {name} from {template}")));
            }
        }
    }
    bail!("could not find a free database name in {NAME_ATTEMPTS} attempts")
}

/// Whether database `name` exists.
async fn database_exists(admin: &tokio_postgres::Client, name: &str) -> anyhow::Result<bool> {
    let rows = admin
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .with_context(|| format!("looking for database {name}"))?;
    Ok(!rows.is_empty())
}

/// `CREATE DATABASE name TEMPLATE template`, as a file copy where the server
/// supports choosing (a file copy is much faster for small databases).
fn create_database_sql(name: &str, template: &str, version: i32) -> String {
    let strategy = if version >= STRATEGY_VERSION { " STRATEGY = FILE_COPY" } else { "" };
    format!("CREATE DATABASE {} TEMPLATE {}{strategy}", quote_ident(name), quote_ident(template))
}

/// The template's name: a hash of the schema text, so that a changed schema
/// gets a new template on a long-lived server.
fn template_name(schema: &str) -> String {
    format!("fm_template_{:016x}", fnv1a64(schema.as_bytes()))
}

/// The temporary name a template is built under.
fn build_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("fm_template_build_{}_{nanos:08x}", std::process::id())
}

/// A database name unique within this process: `fmt_<pid>_<n>_<thread>`,
/// where `<thread>` is the end of the sanitized `thread_name` (libtest names
/// each test's thread after the test), cut to 63 bytes in all.
fn unique_database_name(thread_name: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    database_name_for(std::process::id(), n, thread_name)
}

/// [`unique_database_name`] for given parts.
fn database_name_for(pid: u32, n: u64, thread_name: &str) -> String {
    let prefix = format!("fmt_{pid}_{n}");
    let label = sanitize(thread_name);
    let room = MAX_IDENTIFIER_BYTES.saturating_sub(prefix.len() + 1);
    // The end of a test's path (its function name) says the most.
    let label = label[label.len().saturating_sub(room)..].trim_start_matches('_');
    if label.is_empty() { prefix } else { format!("{prefix}_{label}") }
}

/// Lower-case ASCII letters, digits and single underscores only.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' };
        if !(c == '_' && (out.is_empty() || out.ends_with('_'))) {
            out.push(c);
        }
    }
    out.trim_end_matches('_').to_string()
}

/// Quotes an SQL identifier, with the escaping of the PostgreSQL protocol
/// crate that tokio-postgres is built on.
fn quote_ident(name: &str) -> String {
    postgres_protocol::escape::escape_identifier(name)
}

/// The 64-bit FNV-1a hash: small, and stable across Rust releases (unlike
/// the standard library's hasher).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Runs a future to completion on a new thread with its own single-threaded
/// runtime, so that it can be called from inside another runtime.
fn block_on_own_thread<T, F, Fut>(work: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = anyhow::Result<T>>,
    T: Send,
{
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("fm-dev-admin".into())
            .spawn_scoped(scope, || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("building a tokio runtime for database administration")?;
                runtime.block_on(work())
            })
            .context("starting a thread for database administration")?;
        thread
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the database administration thread panicked")))
    })
}

/// Registers [`stop_cluster_at_exit`] with the C runtime, once.
#[allow(unsafe_code)]
fn register_exit_handler() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: `atexit` only records the function pointer. The handler is an
        // `extern "C" fn()` that takes no arguments and never unwinds (it
        // catches panics), which is all that the C runtime requires of it.
        let rc = unsafe { libc::atexit(stop_cluster_at_exit) };
        if rc != 0 {
            eprintln!(
                "fm-dev: could not register the exit handler; the test cluster will \
                 still be stopped by its supervisor when this process exits"
            );
        }
    });
}

/// Stops the process-wide cluster when the process exits.
extern "C" fn stop_cluster_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let Some(Ok(harness)) = HARNESS.get() else {
            return;
        };
        let cluster = harness.cluster.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(cluster) = cluster
            && let Err(error) = cluster.stop()
        {
            eprintln!("fm-dev: stopping the test cluster at exit: {error:#}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `table` exists in the database at `url`.
    async fn has_table(url: &str, table: &str) -> bool {
        let client = crate::connect(url).await.unwrap();
        let row = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await.unwrap();
        row.get(0)
    }

    /// Whether database `name` exists on the harness's server.
    async fn database_is_listed(name: &str) -> bool {
        let admin = crate::connect(&test_server_admin_url().unwrap()).await.unwrap();
        let rows =
            admin.query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await.unwrap();
        !rows.is_empty()
    }

    #[tokio::test]
    async fn test_databases_are_distinct_and_hold_the_schema() {
        let a = TestDatabase::new().unwrap();
        let b = TestDatabase::new().unwrap();
        assert_ne!(a.name(), b.name());
        assert!(a.name().contains("test_databases_are_distinct"), "{}", a.name());
        for db in [&a, &b] {
            let client = crate::connect(db.url()).await.unwrap();
            let current: String =
                client.query_one("SELECT current_database()", &[]).await.unwrap().get(0);
            assert_eq!(current, db.name());
            assert!(has_table(db.url(), "fm_sitrep").await);
        }

        // A row written to one is not in the other.
        let client_a = crate::connect(a.url()).await.unwrap();
        client_a.batch_execute("CREATE TABLE only_in_a (v INT)").await.unwrap();
        assert!(has_table(a.url(), "only_in_a").await);
        assert!(!has_table(b.url(), "only_in_a").await);

        // Dropping a handle drops its database, even with a session open.
        let name = a.name().to_string();
        drop(a);
        assert!(!database_is_listed(&name).await);
        assert!(database_is_listed(b.name()).await);
        drop(client_a);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn empty_databases_have_no_schema() {
        let db = TestDatabase::empty().unwrap();
        assert!(!has_table(db.url(), "fm_sitrep").await);
        assert!(!has_table(db.url(), "db_metadata").await);
    }

    #[test]
    fn many_threads_get_databases_at_once() {
        let names: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let db = TestDatabase::new().unwrap();
                        db.name().to_string()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn names_are_sanitized_and_bounded() {
        let name = database_name_for(
            4242,
            7,
            "pg::testdb::tests::Some-Test_With::a_very_long_name_that_goes_on_and_on_forever",
        );
        assert!(name.len() <= MAX_IDENTIFIER_BYTES, "{name}");
        assert!(name.starts_with("fmt_4242_7_"), "{name}");
        assert!(name.ends_with("_and_on_forever"), "{name}");
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        assert!(!name.contains("__"), "{name}");
        assert_eq!(database_name_for(1, 2, ""), "fmt_1_2");
        assert_eq!(database_name_for(1, 2, "main"), "fmt_1_2_main");
    }

    #[test]
    fn template_name_follows_the_schema() {
        assert_eq!(template_name("a"), template_name("a"));
        assert_ne!(template_name("a"), template_name("b"));
        assert_eq!(template_name("a").len(), "fm_template_".len() + 16);
        // The reference value of FNV-1a 64 for "a".
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            create_database_sql("t", "tpl", 150000),
            "CREATE DATABASE \"t\" TEMPLATE \"tpl\" STRATEGY = FILE_COPY"
        );
        assert_eq!(
            create_database_sql("t", "tpl", 140000),
            "CREATE DATABASE \"t\" TEMPLATE \"tpl\""
        );
    }
}
