//! Connecting to Postgres.

use anyhow::Context;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

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
    let (client, mut connection) = tokio_postgres::connect(url, NoTls)
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
                    tracing::info!(message = notice.message(), "server notice");
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

/// The URL without its password, for logs and error messages.
pub fn redact(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let user = config.get_user().unwrap_or("?");
            let dbname = config.get_dbname().unwrap_or("?");
            let host = match config.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
                None => "?".to_string(),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            format!("postgresql://{user}@{host}:{port}/{dbname}")
        }
        Err(_) => "<unparsable DATABASE_URL>".to_string(),
    }
}

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
    fn redact_does_not_echo_garbage() {
        assert_eq!(
            redact("not a url with password=x y=\"z"),
            "<unparsable DATABASE_URL>"
        );
    }
}
