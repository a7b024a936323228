//! What `lamin status` reports: the versions of the extension (installed,
//! offered by the server, the loaded library), the sidecars connected to the
//! database, the server, and the caller's unfinished jobs.

use lamin_core::compat;
use tokio_postgres::Client;

use crate::db;

/// The state of a database as the CLI sees it.
#[derive(Debug, Clone)]
pub struct Status {
    pub found: compat::Found,
    pub server_version: String,
    pub user: String,
    /// `lamin.library_version()` (from 0.2.0 on).
    pub library: Option<String>,
    /// Each connected sidecar's application_name: `lamin-sidecar/{version} {worker}`.
    pub sidecars: Vec<String>,
    /// The instance's name and uid (lamin.instance, from 0.8.0 on), when it has one.
    pub instance: Option<(String, String)>,
    /// The caller's jobs not finished yet (lamin.jobs), running ones first; at most 20.
    pub jobs: Vec<UnfinishedJob>,
    /// How many such jobs there are in all.
    pub unfinished_jobs: i64,
    /// Whether the server is a hot standby (read-only), and if so, how many
    /// bytes of WAL it has received and not replayed yet (None: unknown,
    /// e.g. while it restores from an archive).
    pub standby: Option<Option<i64>>,
    /// The address and port of the server this connection reached (of a
    /// multi-host URL, the one chosen), when connected over TCP.
    pub server_address: Option<String>,
}

/// A queued or running job, as `lamin status` lists it.
#[derive(Debug, Clone)]
pub struct UnfinishedJob {
    pub id: i64,
    pub kind: String,
    pub status: String,
    /// Percent done, when the job knows its total.
    pub progress_pct: Option<f64>,
    /// What a running job is doing now (its percent counts this stage).
    pub stage: Option<String>,
    /// What it works on: the ontology, organism, artifact or storage named in its arguments.
    pub subject: Option<String>,
}

/// Jobs listed by `lamin status`.
const JOBS_LISTED: i64 = 20;

pub async fn status(client: &Client) -> anyhow::Result<Status> {
    let found = db::handshake(client).await?;
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_user::text,
                    to_regprocedure('lamin.library_version()') IS NOT NULL,
                    to_regclass('lamin.instance') IS NOT NULL,
                    to_regclass('lamin.jobs') IS NOT NULL,
                    pg_catalog.pg_is_in_recovery(),
                    pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())::bigint,
                    host(inet_server_addr()) || ':' || inet_server_port()",
            &[],
        )
        .await?;
    let library: Option<String> = if row.get::<_, bool>(2) {
        Some(
            client
                .query_one("SELECT lamin.library_version()", &[])
                .await?
                .get(0),
        )
    } else {
        None
    };
    // Read, not made: a status never writes (the identity is made by
    // lamin init, or on first use by lamin.instance()).
    let instance = if row.get::<_, bool>(3) {
        client
            .query_opt("SELECT name, uid FROM lamin.instance", &[])
            .await?
            .map(|r| (r.get(0), r.get(1)))
    } else {
        None
    };
    let (jobs, unfinished_jobs) = unfinished_jobs(client, row.get(4)).await?;
    let sidecars = client
        .query(
            "SELECT DISTINCT application_name::text FROM pg_catalog.pg_stat_activity
             WHERE datname = current_database() AND application_name LIKE $1 || '%'
             ORDER BY 1",
            &[&db::SIDECAR_APPLICATION],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Status {
        found,
        server_version: row.get(0),
        user: row.get(1),
        library,
        sidecars,
        instance,
        jobs,
        unfinished_jobs,
        standby: row.get::<_, bool>(5).then(|| row.get(6)),
        server_address: row.get(7),
    })
}

/// The caller's queued and running jobs (lamin.jobs shows each role its own).
async fn unfinished_jobs(
    client: &Client,
    has_jobs: bool,
) -> anyhow::Result<(Vec<UnfinishedJob>, i64)> {
    if !has_jobs {
        return Ok((Vec::new(), 0));
    }
    let rows = client
        .query(
            // progress_stage read by name from the row: instances before
            // 0.11.0 have no such column (status reports their release).
            "SELECT id, kind, status, progress_pct::float8,
                    coalesce(args->>'entity', args->>'organism', args->>'uid', args->>'storage'),
                    count(*) OVER (), to_jsonb(j)->>'progress_stage'
             FROM lamin.jobs j WHERE status IN ('queued', 'running')
             ORDER BY status = 'running' DESC, id LIMIT $1",
            &[&JOBS_LISTED],
        )
        .await?;
    let total = rows.first().map(|r| r.get(5)).unwrap_or(0);
    let jobs = rows
        .iter()
        .map(|r| UnfinishedJob {
            id: r.get(0),
            kind: r.get(1),
            status: r.get(2),
            progress_pct: r.get(3),
            subject: r.get(4),
            stage: r.get(6),
        })
        .collect();
    Ok((jobs, total))
}
