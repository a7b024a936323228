//! Running one claimed job: its work (see `dispatch`), a heartbeat that
//! extends the lease (and notices cancellation), and the final
//! complete/fail call; claiming jobs and batching completions.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio_postgres::Client;
use tracing::{info, warn};

use super::dispatch::execute;
use super::job::{Failure, Job, WorkerContext};
use crate::progress::Counter;

/// Claim up to `n` of the oldest ready jobs (or ones whose lease expired),
/// in one round trip and one commit.
pub async fn claim(client: &Client, ctx: &WorkerContext, n: i32) -> anyhow::Result<Vec<Job>> {
    let rows = client
        .query(
            "SELECT id, kind, args::text, attempts, requested_by::text FROM lamin.claim_job($1, $2, $3, NULL, $4) ORDER BY id",
            &[&ctx.worker, &lamin_core::VERSION, &ctx.lease_s, &n],
        )
        .await
        .context("claiming jobs failed")?;
    Ok(rows
        .iter()
        .map(|r| Job {
            id: r.get(0),
            kind: r.get(1),
            // Read as text and parsed per job: arguments serde cannot take
            // (nested too deep) fail their own job, not the whole claim.
            args: serde_json::from_str(r.get::<_, &str>(2)).unwrap_or_else(|e| {
                serde_json::json!({ "__invalid_args": format!("job arguments cannot be read: {e}") })
            }),
            attempts: r.get(3),
            requested_by: r.get(4),
        })
        .collect())
}

/// Run a claimed job to its end: done, retried later, or failed; a job that
/// was cancelled (or taken over) meanwhile is left alone.
/// Ends are recorded on `finisher`, a connection with synchronous_commit
/// off, so an end costs no WAL flush (completions go through `completer`,
/// which batches them). An end lost in a Postgres crash only means the job
/// runs again when its lease ends (jobs are idempotent); claims stay
/// durable on `client`, so no job ever runs twice at once.
pub async fn run(
    client: Arc<Client>,
    finisher: Arc<Client>,
    completer: Completer,
    ctx: WorkerContext,
    job: Job,
) {
    let id = job.id;
    let kind = job.kind.clone();
    info!(job = id, %kind, attempt = job.attempts, "job started");
    let progress = Arc::new(Counter::default());
    // Heartbeats run on a task of their own, so that a job busy hashing
    // cannot starve them: they extend the lease and report progress every
    // third of the lease (at least every 2 s), and say when the job is no
    // longer this attempt's (cancelled, or taken over).
    let (lost_tx, mut lost) = tokio::sync::oneshot::channel::<()>();
    let heartbeat = tokio::spawn({
        let client = Arc::clone(&client);
        let progress = Arc::clone(&progress);
        let worker = ctx.worker.clone();
        let (lease_s, attempt) = (ctx.lease_s, job.attempts);
        async move {
            let every = Duration::from_secs((lease_s as u64 / 3).clamp(1, 2));
            let mut beat = tokio::time::interval(every);
            beat.tick().await;
            loop {
                beat.tick().await;
                let done = Some(progress.done()).filter(|d| *d > 0);
                let total = Some(progress.total()).filter(|t| *t > 0);
                let stage = progress.stage();
                match client
                    .query_one(
                        "SELECT lamin.heartbeat_job($1, $2, $3, $4, $5, $6, $7)",
                        &[&id, &worker, &lease_s, &done, &total, &attempt, &stage],
                    )
                    .await
                {
                    Ok(row) if row.get::<_, bool>(0) => {}
                    Ok(_) => {
                        let _ = lost_tx.send(());
                        return;
                    }
                    Err(e) => warn!(job = id, error = %e, "heartbeat failed"),
                }
            }
        }
    });
    let outcome = tokio::select! {
        out = execute(&client, &ctx, &job, &progress) => Some(out),
        _ = &mut lost => {
            info!(job = id, "job was cancelled or taken over: stopping it");
            None
        }
    };
    heartbeat.abort();
    let Some(outcome) = outcome else { return };
    let recorded = match outcome {
        // The slot frees at once: the completion is written by the
        // completer with the others that finished meanwhile.
        Ok(result) => {
            completer.submit(id, job.attempts, kind, result);
            Ok(())
        }
        Err(failure) => {
            let (error, permanent) = match failure {
                Failure::Retry(e) => (format!("{e:#}"), false),
                Failure::Permanent(e) => (format!("{e:#}"), true),
            };
            finisher
                .query_one(
                    "SELECT lamin.fail_job($1, $2, $3, $4, $5)",
                    &[&id, &ctx.worker, &error, &permanent, &job.attempts],
                )
                .await
                .map_err(anyhow::Error::from)
                .map(|r| {
                    let status: Option<String> = r.get(0);
                    warn!(job = id, %kind, %error, status = status.as_deref().unwrap_or("not ours"), "job attempt failed");
                })
        }
    };
    if let Err(e) = recorded {
        let e = format!("{e:#}");
        // The lease runs out and another attempt follows: nothing is lost.
        warn!(job = id, error = %e, "could not record the job's end; it will be retried when its lease expires");
    }
}

/// Records job completions in batches: every completion that arrives while
/// the previous batch is being written goes into the next statement
/// (lamin.complete_jobs), so a busy sidecar pays one round trip and one
/// commit per batch rather than per job. A job's slot is free as soon as its
/// completion is submitted; `flush` waits until every submitted completion
/// is written (before running jobs are handed back to the queue, so that no
/// finished job is handed back).
#[derive(Clone)]
pub struct Completer {
    tx: tokio::sync::mpsc::UnboundedSender<Message>,
}

enum Message {
    Done {
        id: i64,
        attempt: i32,
        kind: String,
        result: Value,
    },
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl Completer {
    /// Start the batching task on `finisher` for this worker.
    pub fn start(finisher: Arc<Client>, worker: String) -> Completer {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            let mut flushes = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut batch = Vec::new();
                let mut next = Some(first);
                while let Some(message) = next.take() {
                    match message {
                        Message::Done {
                            id,
                            attempt,
                            kind,
                            result,
                        } => batch.push((id, attempt, kind, result)),
                        // Answered once what came before it is written.
                        Message::Flush(reply) => flushes.push(reply),
                    }
                    if batch.len() < 512 {
                        next = rx.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    write_batch(&finisher, &worker, batch).await;
                }
                for reply in flushes.drain(..) {
                    let _ = reply.send(());
                }
            }
        });
        Completer { tx }
    }

    /// Hand a job's result over to be recorded as done (logged once written).
    fn submit(&self, id: i64, attempt: i32, kind: String, result: Value) {
        if self
            .tx
            .send(Message::Done {
                id,
                attempt,
                kind,
                result,
            })
            .is_err()
        {
            warn!(
                job = id,
                "the completion recorder stopped; the job runs again when its lease expires"
            );
        }
    }

    /// Wait until every completion submitted so far is written (or failed).
    pub async fn flush(&self) {
        let (reply, written) = tokio::sync::oneshot::channel();
        if self.tx.send(Message::Flush(reply)).is_ok() {
            let _ = written.await;
        }
    }
}

/// One lamin.complete_jobs statement for a batch, and a log line per job.
async fn write_batch(finisher: &Client, worker: &str, batch: Vec<(i64, i32, String, Value)>) {
    let ids: Vec<i64> = batch.iter().map(|c| c.0).collect();
    let attempts: Vec<i32> = batch.iter().map(|c| c.1).collect();
    let results: Vec<&Value> = batch.iter().map(|c| &c.3).collect();
    match finisher
        .query(
            "SELECT lamin.complete_jobs($1, $2, $3, $4)",
            &[&worker, &ids, &attempts, &results],
        )
        .await
    {
        Ok(rows) => {
            let done: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
            for (id, _, kind, _) in &batch {
                if done.contains(id) {
                    info!(job = id, %kind, "job done");
                } else {
                    info!(
                        job = id,
                        "job finished after it was cancelled or taken over; result dropped"
                    );
                }
            }
        }
        Err(e) => {
            // The leases run out and other attempts follow: nothing is lost.
            for (id, ..) in &batch {
                warn!(job = id, error = %e, "could not record the job's end; it will be retried when its lease expires");
            }
        }
    }
}
