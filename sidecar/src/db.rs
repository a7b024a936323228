//! Connecting to Postgres, and the version handshake every client does first.

use std::sync::OnceLock;

use anyhow::Context;
use futures_util::StreamExt;
use lamin_core::compat;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// The `application_name` of this process's connections (pg_stat_activity,
/// server logs, `lamin status`), unless the URL sets one.
static APPLICATION_NAME: OnceLock<String> = OnceLock::new();

/// Name this process's connections, once, before the first connection:
/// `lamin/{version} {verb}` for the CLI, `lamin-sidecar/{version} {worker}`
/// for the daemon (what `lamin status` lists as sidecars).
pub fn set_application_name(name: String) {
    // Postgres keeps 63 bytes; cut at a character boundary.
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let _ = APPLICATION_NAME.set(name[..end].to_string());
}

/// The prefix of a sidecar's application_name; the version follows.
pub const SIDECAR_APPLICATION: &str = "lamin-sidecar/";

/// What the connection task reports besides query results.
#[derive(Debug)]
pub enum ConnectionEvent {
    Notification {
        channel: String,
        payload: String,
    },
    /// The connection ended; the string says why.
    Closed(String),
}

/// Connect and return the client plus a stream of notifications and the
/// connection's end. The connection runs on its own task.
pub async fn connect_listening(
    url: &str,
) -> anyhow::Result<(Client, mpsc::UnboundedReceiver<ConnectionEvent>)> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .with_context(|| format!("cannot connect to {}: invalid DATABASE_URL", redact(url)))?;
    if config.get_application_name().is_none() {
        if let Some(name) = APPLICATION_NAME.get() {
            config.application_name(name);
        }
    }
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .with_context(|| format!("cannot connect to {}", redact(url)))?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        let reason = loop {
            match messages.next().await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let event = ConnectionEvent::Notification {
                        channel: n.channel().to_string(),
                        payload: n.payload().to_string(),
                    };
                    if tx.send(event).is_err() {
                        return;
                    }
                }
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    // The verbs say what matters in their own words (e.g.
                    // save's note on known content); the server's NOTICEs
                    // show with -v.
                    tracing::debug!(message = notice.message(), "server notice");
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "connection closed by the server".to_string(),
            }
        };
        let _ = tx.send(ConnectionEvent::Closed(reason));
    });
    Ok((client, rx))
}

/// Connect for plain queries (no notifications needed).
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, mut events) = connect_listening(url).await?;
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(client)
}

/// Connect for a CLI verb: connect, then refuse a database whose lamin
/// extension this build does not speak (the error is a `compat::Refusal`).
pub async fn open(url: &str) -> anyhow::Result<Client> {
    let client = connect(url).await?;
    check_version(&client).await?;
    Ok(client)
}

/// The version handshake: a `compat::Refusal` when the database's lamin
/// extension is a release this build does not speak (or is missing).
pub async fn check_version(client: &Client) -> anyhow::Result<()> {
    compat::check(&handshake(client).await?)?;
    Ok(())
}

/// What the version handshake reads: the installed extension version (what
/// `lamin.version()` returns from 0.2.0 on; read from the catalog so that a
/// database without the extension gets a clear message too) and the newest
/// version the server's package offers.
pub async fn handshake(client: &Client) -> anyhow::Result<compat::Found> {
    let row = client
        .query_one(
            "SELECT (SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'lamin'),
                    (SELECT default_version::text FROM pg_catalog.pg_available_extensions WHERE name = 'lamin'),
                    current_database()::text",
            &[],
        )
        .await
        .context("cannot read the lamin extension's version")?;
    Ok(compat::Found {
        installed: row.get(0),
        available: row.get(1),
        database: row.get(2),
    })
}

/// The URL without its password, for logs and error messages.
pub fn redact(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let user = config.get_user().unwrap_or("?");
            let dbname = config.get_dbname().unwrap_or("?");
            // Every host of a multi-host URL (a primary and its standbys).
            let ports = config.get_ports();
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .enumerate()
                .map(|(i, host)| {
                    let host = match host {
                        tokio_postgres::config::Host::Tcp(h) => h.clone(),
                        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                    };
                    let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                    format!("{host}:{port}")
                })
                .collect();
            let hosts = if hosts.is_empty() {
                "?:5432".to_string()
            } else {
                hosts.join(",")
            };
            format!("postgresql://{user}@{hosts}/{dbname}")
        }
        Err(_) => "<unparsable DATABASE_URL>".to_string(),
    }
}

/// Quote a Postgres identifier, for statements that take no parameters
/// (LISTEN, CREATE TABLE, COPY): the rule of `lamin_core::sql`.
pub use lamin_core::sql::quote_ident;

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password() {
        let shown = redact("postgresql://lamin:s3cret@127.0.0.1:28815/lamin");
        assert_eq!(shown, "postgresql://lamin@127.0.0.1:28815/lamin");
        assert!(!shown.contains("s3cret"));
    }

    #[test]
    fn redact_names_every_host_of_a_multi_host_url() {
        assert_eq!(
            redact("postgresql://lamin:pw@10.0.0.1:5432,10.0.0.2:5433/lamin?target_session_attrs=read-write"),
            "postgresql://lamin@10.0.0.1:5432,10.0.0.2:5433/lamin"
        );
    }

    #[test]
    fn redact_does_not_echo_garbage() {
        assert_eq!(
            redact("not a url with password=x y=\"z"),
            "<unparsable DATABASE_URL>"
        );
    }
}
