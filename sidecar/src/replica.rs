//! Reading from a hot standby while writing to the primary (`lamin get
//! --read-url`): whether a server can write, and waiting until a standby has
//! replayed what the primary had committed, so that a read on the standby
//! sees the caller's own earlier writes (a save, a run just started).

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::error::{DbError, READ_ONLY_HINT};
use crate::refused;

/// How long a read on a standby waits for it to catch up with the primary.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether this connection cannot write: a hot standby, or a session whose
/// transactions are READ ONLY (`default_transaction_read_only`).
pub async fn is_read_only(client: &Client) -> anyhow::Result<bool> {
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_is_in_recovery() OR pg_catalog.current_setting('transaction_read_only')::boolean",
            &[],
        )
        .await
        .map_err(DbError)?;
    Ok(row.get(0))
}

/// Refuse, before any work, what needs a write (`what`) on a connection
/// that cannot write.
pub async fn require_writable(client: &Client, what: &str) -> anyhow::Result<()> {
    if is_read_only(client).await? {
        return Err(refused!(
            "{what} needs a writable server, but {READ_ONLY_HINT} (reads can stay on a standby: --read-url); nothing was done"
        ));
    }
    Ok(())
}

/// Wait until `standby` has replayed the primary's WAL up to where it was
/// when this was called; at once when `standby` is not in recovery (it is a
/// primary itself and sees its own commits) or `primary` is a standby too.
pub async fn catch_up(primary: &Client, standby: &Client, timeout: Duration) -> anyhow::Result<()> {
    let target: Option<String> = primary
        .query_one(
            // The insert position, not the write position: a commit with
            // synchronous_commit off (the sidecar's job completions) may
            // not be written out yet, and must still be waited for.
            "SELECT CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_current_wal_insert_lsn()::text END",
            &[],
        )
        .await
        .map_err(DbError)?
        .get(0);
    let Some(target) = target else {
        return Ok(());
    };
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        // NULL: not a standby. Otherwise the bytes still to replay (all of
        // them while it has replayed nothing yet).
        let behind: Option<i64> = standby
            .query_one(
                "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN
                     greatest(pg_catalog.pg_wal_lsn_diff($1::text::pg_lsn,
                         coalesce(pg_catalog.pg_last_wal_replay_lsn(), '0/0'::pg_lsn)), 0)::bigint END",
                &[&target],
            )
            .await
            .map_err(DbError)?
            .get(0);
        match behind {
            None | Some(0) => return Ok(()),
            Some(bytes) if started.elapsed() >= timeout => {
                return Err(refused!(
                    "the standby of --read-url has not replayed the primary's last {bytes} bytes of WAL within {} s, so it may not show what was just written: check its replication (pg_stat_replication on the primary), or read from the primary; nothing was done",
                    timeout.as_secs()
                ))
            }
            Some(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}
