//! Pruning finished jobs after their retention (lamin.prune_jobs), so the
//! queue does not grow forever: the daemon calls `prune` periodically.

use std::time::Duration;

use anyhow::Context;
use tokio_postgres::Client;

/// How long finished jobs are kept (`lamin daemon --keep-done-jobs`,
/// `--keep-failed-jobs`, whose defaults are the only ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Done and cancelled jobs.
    pub keep_done: Duration,
    /// Failed jobs: kept longer by default, their errors are what one reads.
    pub keep_failed: Duration,
}

/// Rows deleted per statement: each batch is its own short transaction, so a
/// large backlog never holds locks (or a snapshot) for long.
pub const PRUNE_BATCH: i32 = 10_000;

/// Delete every finished job past its retention, in batches; returns how many.
pub async fn prune(client: &Client, retention: Retention) -> anyhow::Result<u64> {
    let (done, failed) = (
        retention.keep_done.as_secs_f64(),
        retention.keep_failed.as_secs_f64(),
    );
    let mut total = 0u64;
    loop {
        let pruned: i64 = client
            .query_one(
                "SELECT lamin.prune_jobs(make_interval(secs => $1), make_interval(secs => $2), $3)",
                &[&done, &failed, &PRUNE_BATCH],
            )
            .await
            .context("pruning finished jobs failed")?
            .get(0);
        total += pruned as u64;
        if pruned < PRUNE_BATCH as i64 {
            return Ok(total);
        }
    }
}
