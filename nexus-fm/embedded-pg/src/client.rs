//! Small helpers around `tokio-postgres` connections.

use anyhow::Context;
use tokio::task::JoinHandle;

/// Connects to `url` and drives the connection on the current tokio runtime.
///
/// The connection ends when the returned client is dropped. It belongs to the
/// runtime it was made on: a client made in one `#[tokio::test]` fails with
/// "connection closed" when used from another.
///
/// # Errors
///
/// Fails if the server cannot be reached or refuses the connection; the error
/// names the URL.
pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(async move {
        // The client only sees "connection closed" afterwards; the cause is
        // here. Sessions ended on purpose (a dropped test database, a stopped
        // server) show up too, which is harmless.
        if let Err(error) = connection.await {
            eprintln!("PostgreSQL connection ended: {:#}", anyhow::Error::new(error));
        }
    });
    Ok(client)
}

/// A connection whose end can be awaited, so that the server side is known to
/// be closing when [`Connection::close`] returns.
pub struct Connection {
    /// The client.
    pub client: tokio_postgres::Client,
    task: JoinHandle<()>,
}

impl Connection {
    /// Connects to `url` on the current tokio runtime.
    pub async fn open(url: &str) -> anyhow::Result<Connection> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { client, task })
    }

    /// Closes the connection and waits until the socket is closed.
    pub async fn close(self) {
        drop(self.client);
        let _ = self.task.await;
    }
}
