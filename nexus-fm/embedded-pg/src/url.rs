//! Connection URLs that both `tokio-postgres` (and so diesel-async) and libpq
//! (`psql`) accept.
//!
//! A server reached through a Unix socket is named as
//! `postgresql://postgres@/DBNAME?host=SOCKET_DIR&port=PORT`: the empty host
//! in the authority plus a `host` query parameter holding a directory. The
//! port must be given even though no TCP port is open, because it names the
//! socket file (`.s.PGSQL.PORT`).

use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, bail, ensure};

/// The database superuser that `initdb -U` creates.
pub const SUPERUSER: &str = "postgres";

/// The URL of database `dbname` on a server listening on a Unix socket in
/// `socket_dir` for `port`.
///
/// `socket_dir` must be an absolute path made only of URL-safe characters;
/// the clusters this crate starts choose theirs that way.
pub fn socket_url(socket_dir: &Path, port: u16, dbname: &str) -> String {
    format!(
        "postgresql://{SUPERUSER}@/{}?host={}&port={port}",
        encode(dbname),
        encode_path(&socket_dir.to_string_lossy())
    )
}

/// The URL of database `dbname` on a server listening on TCP at
/// `127.0.0.1:port`.
pub fn tcp_url(port: u16, dbname: &str) -> String {
    format!("postgresql://{SUPERUSER}@127.0.0.1:{port}/{}", encode(dbname))
}

/// Returns `url` naming database `dbname` instead of the one it names.
///
/// Both connection-string forms are handled: a URL
/// (`postgres://` or `postgresql://`), whose path is replaced and whose
/// `dbname` query parameters are dropped, keeping the user, hosts, ports and
/// every other parameter; and a `key=value` string, to which a `dbname`
/// setting is appended (the last setting wins).
///
/// # Errors
///
/// Fails if the result does not parse as a `tokio-postgres` configuration
/// naming `dbname`.
pub fn url_with_dbname(url: &str, dbname: &str) -> anyhow::Result<String> {
    let url = url.trim();
    let scheme = ["postgresql://", "postgres://"].into_iter().find(|s| url.starts_with(s));
    let edited = match scheme {
        Some(scheme) => {
            let rest = &url[scheme.len()..];
            let (before_query, query) = match rest.split_once('?') {
                Some((before, query)) => (before, Some(query)),
                None => (rest, None),
            };
            // The authority (user, hosts, ports) ends at the first '/', if any;
            // everything after it is the database name being replaced.
            let authority = before_query.split_once('/').map_or(before_query, |(a, _)| a);
            let kept: Vec<&str> = query
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("dbname="))
                .collect();
            let mut edited = format!("{scheme}{authority}/{}", encode(dbname));
            if !kept.is_empty() {
                edited.push('?');
                edited.push_str(&kept.join("&"));
            }
            edited
        }
        None => {
            if url.contains("://") {
                bail!("unsupported connection URL scheme in {url:?}");
            }
            let quoted = dbname.replace('\\', "\\\\").replace('\'', "\\'");
            format!("{url} dbname='{quoted}'")
        }
    };
    let config = tokio_postgres::Config::from_str(&edited)
        .with_context(|| format!("parsing the connection string {edited:?}"))?;
    ensure!(
        config.get_dbname() == Some(dbname),
        "the connection string {edited:?} does not name database {dbname:?}"
    );
    Ok(edited)
}

/// Percent-encodes everything but unreserved URL characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Like [`encode`], but keeps `/` so that socket directories stay readable.
fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbname_of(url: &str) -> String {
        tokio_postgres::Config::from_str(url).unwrap().get_dbname().unwrap().to_string()
    }

    #[test]
    fn socket_url_parses_with_everything_in_place() {
        let url = socket_url(Path::new("/dev/shm/fm-pg-x1"), 5433, "fm");
        assert_eq!(url, "postgresql://postgres@/fm?host=/dev/shm/fm-pg-x1&port=5433");
        let config = tokio_postgres::Config::from_str(&url).unwrap();
        assert_eq!(config.get_user(), Some("postgres"));
        assert_eq!(config.get_dbname(), Some("fm"));
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(
            config.get_hosts(),
            &[tokio_postgres::config::Host::Unix("/dev/shm/fm-pg-x1".into())]
        );
    }

    #[test]
    fn dbname_is_replaced_and_the_rest_kept() {
        let cases = [
            (
                "postgresql://postgres@/postgres?host=/tmp/x&port=5432",
                "postgresql://postgres@/t1?host=/tmp/x&port=5432",
            ),
            ("postgres://u:pw@db.example:6543/old", "postgres://u:pw@db.example:6543/t1"),
            ("postgresql://u@h1:1,h2:2", "postgresql://u@h1:1,h2:2/t1"),
            (
                "postgresql:///old?host=/run/pg&dbname=other&application_name=a",
                "postgresql:///t1?host=/run/pg&application_name=a",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(url_with_dbname(input, "t1").unwrap(), expected, "for {input}");
        }
    }

    #[test]
    fn key_value_strings_get_a_dbname() {
        let edited = url_with_dbname("host=/tmp/x port=5432 user=postgres dbname=old", "t1");
        assert_eq!(dbname_of(&edited.unwrap()), "t1");
    }

    #[test]
    fn other_schemes_are_rejected() {
        assert!(url_with_dbname("mysql://localhost/db", "t1").is_err());
    }
}
