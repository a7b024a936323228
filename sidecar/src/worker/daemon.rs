//! The sidecar daemon: stay connected, LISTEN for job notifications, claim
//! and run jobs (also on a periodic sweep), and stop cleanly on SIGTERM or
//! Ctrl-C without losing a job.

use std::sync::Arc;
use std::time::Duration;

use lamin_core::compat;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tokio_postgres::Client;
use tracing::{debug, error, info, warn};

use super::backoff::Backoff;
use super::job::WorkerContext;
use super::retention::{self, Retention};
use super::runner::{self, Completer};
use crate::db::{self, quote_ident, ConnectionEvent};

/// How the daemon runs (the CLI's `lamin daemon` flags).
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub database_url: String,
    /// The NOTIFY channel that SQL functions use to wake the sidecar.
    pub channel: String,
    /// Seconds between sweeps for work whose notification was missed.
    pub sweep_interval_s: u64,
    /// Jobs run at once (claimed in batches of half as many).
    pub concurrency: usize,
    /// Seconds a claimed job stays this sidecar's without a heartbeat.
    pub lease_s: i32,
    /// On SIGTERM, seconds to let running jobs finish before handing them back.
    pub shutdown_grace_s: u64,
    /// The folder import jobs may read files from.
    pub import_dir: Option<std::path::PathBuf>,
    /// The folder stage jobs copy remote artifacts into (and exports write to).
    pub cache_dir: Option<std::path::PathBuf>,
    /// Seconds between storage sweeps; 0: never.
    pub storage_sweep_interval_s: u64,
    /// How long an upload may sit idle, or an unowned object stay, before a
    /// storage sweep treats it as abandoned.
    pub upload_grace_s: i32,
    /// How long finished jobs are kept before this sidecar prunes them.
    pub retention: Retention,
    /// Seconds between prunes of finished jobs; 0: never.
    pub prune_interval_s: u64,
}

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

pub async fn run(args: DaemonConfig) -> anyhow::Result<()> {
    let mut signals = ShutdownSignals::install()?;
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let worker = worker_name();
    db::set_application_name(format!(
        "{}{} {worker}",
        db::SIDECAR_APPLICATION,
        lamin_core::VERSION
    ));
    info!(version = lamin_core::VERSION, database = %db::redact(&args.database_url), %worker, "sidecar starting");
    loop {
        let connected = tokio::select! {
            result = db::connect_listening(&args.database_url) => result,
            sig = signals.received() => {
                info!(signal = sig, "sidecar stopped before connecting");
                return Ok(());
            }
        };
        match connected {
            Ok((client, events)) => {
                backoff.reset();
                match serve(client, events, &args, &mut signals, &worker).await {
                    Ok(SessionEnd::Shutdown) => {
                        info!("sidecar stopped");
                        return Ok(());
                    }
                    Ok(SessionEnd::Disconnected(reason)) => {
                        warn!(%reason, "lost the database connection")
                    }
                    // A schema this sidecar does not speak: stop rather than
                    // run jobs against it (found at connect, or after a claim
                    // refused because the extension was updated under us).
                    Err(e) if e.downcast_ref::<compat::Refusal>().is_some() => {
                        error!(error = %format!("{e:#}"), "refusing to run jobs");
                        return Err(e);
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

/// A name for this sidecar in lamin.job.worker: host, pid and a random tag.
fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        lamin_core::uid::random_base62(4)
    )
}

/// One connected session: LISTEN, claim jobs while there is room (on
/// notifications, sweeps and finished jobs), and stop on a signal.
async fn serve(
    client: Client,
    mut events: UnboundedReceiver<ConnectionEvent>,
    args: &DaemonConfig,
    signals: &mut ShutdownSignals,
    worker: &str,
) -> anyhow::Result<SessionEnd> {
    let client = Arc::new(client);
    db::check_version(&client).await?;
    let version = lamin_core::VERSION;
    client
        .batch_execute(&format!("LISTEN {}", quote_ident(&args.channel)))
        .await?;
    info!(channel = %args.channel, extension_version = %version, %worker, "listening for jobs");
    let ctx = WorkerContext {
        worker: worker.to_string(),
        database_url: args.database_url.clone(),
        lease_s: args.lease_s.max(3),
        import_dir: args.import_dir.clone(),
        cache_dir: args.cache_dir.clone(),
        own_role: client
            .query_one("SELECT current_user::text", &[])
            .await?
            .get(0),
    };
    let finisher = Arc::new(db::connect(&args.database_url).await?);
    finisher
        .batch_execute("SET synchronous_commit TO off")
        .await?;
    let completer = Completer::start(Arc::clone(&finisher), worker.to_string());
    let mut running: JoinSet<()> = JoinSet::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(args.sweep_interval_s.max(1)));
    sweep.tick().await; // the first tick fires at once; the claim below is the first sweep
                        // Storage sweeps are jobs too (one per storage; the database skips
                        // duplicates, so several sidecars may all ask).
    let every = Duration::from_secs(args.storage_sweep_interval_s.max(1));
    let mut storage_sweep = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // Finished jobs past their retention are pruned on a connection of their
    // own, so that a large backlog never delays claims or completions; the
    // first prune comes soon after a start (a sidecar that was down catches up).
    let every = Duration::from_secs(args.prune_interval_s.max(1));
    let mut prune = tokio::time::interval_at(
        tokio::time::Instant::now() + every.min(Duration::from_secs(10)),
        every,
    );
    let mut pruning: Option<tokio::task::JoinHandle<()>> = None;
    let mut want_claim = true;
    loop {
        // Claim in batches: once half the slots are free (or none is busy), so
        // short jobs are fetched several per round trip instead of one by one.
        let slots = args.concurrency.max(1);
        let batch = (slots / 2).max(1);
        while want_claim && (running.is_empty() || slots - running.len() >= batch) {
            let room = (slots - running.len()) as i32;
            let claimed = match runner::claim(&client, &ctx, room).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    // Refused because the schema moved on under us, or the
                    // session broke: either way the running jobs go back.
                    hand_back(&mut running, &completer, &client, worker).await;
                    // Say why in the handshake's terms when the schema moved on.
                    return Err(match db::check_version(&client).await {
                        Err(refusal) if refusal.downcast_ref::<compat::Refusal>().is_some() => {
                            refusal
                        }
                        _ => e,
                    });
                }
            };
            if (claimed.len() as i32) < room {
                want_claim = false;
            }
            for job in claimed {
                running.spawn(runner::run(
                    Arc::clone(&client),
                    Arc::clone(&finisher),
                    completer.clone(),
                    ctx.clone(),
                    job,
                ));
            }
        }
        tokio::select! {
            event = events.recv() => match event {
                Some(ConnectionEvent::Notification { channel, payload }) => {
                    debug!(%channel, %payload, "notification");
                    want_claim = true;
                }
                Some(ConnectionEvent::Closed(reason)) => return Ok(SessionEnd::Disconnected(reason)),
                None => return Ok(SessionEnd::Disconnected("connection task ended".into())),
            },
            Some(_) = running.join_next(), if !running.is_empty() => want_claim = true,
            _ = sweep.tick() => {
                debug!("sweep");
                // Also notices an update while every slot is busy (no claims then).
                if let Err(e) = db::check_version(&client).await {
                    hand_back(&mut running, &completer, &client, worker).await;
                    return Err(e);
                }
                want_claim = true;
            }
            _ = storage_sweep.tick(), if args.storage_sweep_interval_s > 0 => {
                if let Err(e) = client
                    .query("SELECT lamin.sweep_storage(NULL, $1)", &[&args.upload_grace_s])
                    .await
                {
                    warn!(error = %e, "could not enqueue the storage sweep");
                }
            }
            _ = prune.tick(), if args.prune_interval_s > 0 => {
                if pruning.as_ref().is_none_or(|p| p.is_finished()) {
                    pruning = Some(tokio::spawn(prune_finished_jobs(args.database_url.clone(), args.retention)));
                }
            }
            sig = signals.received() => {
                info!(signal = sig, running = running.len(), "shutting down");
                let grace = Duration::from_secs(args.shutdown_grace_s);
                let _ = tokio::time::timeout(grace, async {
                    while running.join_next().await.is_some() {}
                })
                .await;
                hand_back(&mut running, &completer, &client, worker).await;
                return Ok(SessionEnd::Shutdown);
            }
        }
    }
}

/// One prune of the finished jobs past their retention, on its own connection.
async fn prune_finished_jobs(database_url: String, retention: Retention) {
    let outcome = match db::connect(&database_url).await {
        Ok(client) => retention::prune(&client, retention).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(0) => debug!("no finished job past its retention"),
        Ok(pruned) => info!(pruned, "finished jobs past their retention pruned"),
        Err(e) => warn!(error = %format!("{e:#}"), "could not prune finished jobs"),
    }
}

/// Stop the jobs still running and hand them back to the queue at once,
/// rather than when their lease runs out (when the connection still works).
/// The completions of jobs that finished are written first, so that only
/// unfinished jobs go back (and a stopping sidecar leaves none unwritten).
async fn hand_back(
    running: &mut JoinSet<()>,
    completer: &Completer,
    client: &Client,
    worker: &str,
) {
    let unfinished = !running.is_empty();
    running.abort_all();
    if tokio::time::timeout(Duration::from_secs(10), completer.flush())
        .await
        .is_err()
    {
        warn!("finished jobs not recorded in 10 s; they run again when their leases expire");
    }
    if !unfinished {
        return;
    }
    let released = client
        .query_one("SELECT lamin.release_jobs($1)", &[&worker])
        .await
        .map(|r| r.get::<_, i32>(0))
        .unwrap_or(0);
    info!(released, "unfinished jobs handed back to the queue");
}
