//! The sidecar daemon: stay connected, LISTEN for job notifications, sweep
//! periodically, and stop cleanly on SIGTERM or Ctrl-C.

use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_postgres::Client;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::cli::DaemonArgs;
use crate::db::{self, ConnectionEvent};

/// Why a connected session ended.
enum SessionEnd {
    Shutdown,
    Disconnected(String),
}

/// SIGTERM and SIGINT, installed once for the whole daemon.
struct ShutdownSignals {
    term: Signal,
    int: Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn received(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let mut signals = ShutdownSignals::install()?;
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    info!(version = lamin_core::VERSION, database = %db::redact(&args.db.database_url), "sidecar starting");
    loop {
        let connected = tokio::select! {
            result = db::connect_listening(&args.db.database_url) => result,
            sig = signals.received() => {
                info!(signal = sig, "sidecar stopped before connecting");
                return Ok(());
            }
        };
        match connected {
            Ok((client, events)) => {
                backoff.reset();
                match serve(&client, events, &args, &mut signals).await {
                    Ok(SessionEnd::Shutdown) => {
                        info!("sidecar stopped");
                        return Ok(());
                    }
                    Ok(SessionEnd::Disconnected(reason)) => {
                        warn!(%reason, "lost the database connection")
                    }
                    Err(e) => warn!(error = %format!("{e:#}"), "session failed"),
                }
            }
            Err(e) => warn!(error = %format!("{e:#}"), "cannot connect to the database"),
        }
        let delay = backoff.next_delay();
        info!(delay_ms = delay.as_millis() as u64, "reconnecting");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            sig = signals.received() => {
                info!(signal = sig, "sidecar stopped while reconnecting");
                return Ok(());
            }
        }
    }
}

/// One connected session: LISTEN, then react to notifications, sweeps and signals.
async fn serve(
    client: &Client,
    mut events: UnboundedReceiver<ConnectionEvent>,
    args: &DaemonArgs,
    signals: &mut ShutdownSignals,
) -> anyhow::Result<SessionEnd> {
    let version: String = client
        .query_one("SELECT lamin.version()", &[])
        .await?
        .get(0);
    client
        .batch_execute(&format!("LISTEN {}", quote_ident(&args.channel)))
        .await?;
    info!(channel = %args.channel, extension_version = %version, "listening for jobs");
    let mut sweep = tokio::time::interval(Duration::from_secs(args.sweep_interval_s.max(1)));
    sweep.tick().await; // the first tick fires at once; the session has just started
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(ConnectionEvent::Notification { channel, payload }) => {
                    debug!(%channel, %payload, "notification");
                }
                Some(ConnectionEvent::Closed(reason)) => return Ok(SessionEnd::Disconnected(reason)),
                None => return Ok(SessionEnd::Disconnected("connection task ended".into())),
            },
            _ = sweep.tick() => {
                // The sweep will claim jobs whose notification was missed; for now it
                // checks that the connection is alive so a dead one is noticed.
                client.simple_query("SELECT 1").await?;
                debug!("sweep");
            }
            sig = signals.received() => {
                info!(signal = sig, "shutting down");
                return Ok(SessionEnd::Shutdown);
            }
        }
    }
}

/// Quote a Postgres identifier (for LISTEN, which takes no parameters).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("lamin_job"), "\"lamin_job\"");
        assert_eq!(quote_ident("a\"; drop"), "\"a\"\"; drop\"");
    }
}
