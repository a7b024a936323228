//! Runs across sessions: starting a run (`lamin.track`) and finishing it
//! (`lamin.finish`) from a connection of their own, and making a run started
//! elsewhere the session's current one (`lamin.use_run`) — how a shell
//! pipeline records what its steps save and read.

use anyhow::Context;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::error::DbError;
use crate::refused;
use crate::replica::require_writable;

/// The arguments of `lamin.track(key, source_code, kind, description, params, version, project)`.
#[derive(Debug, Clone, Default)]
pub struct TrackRequest {
    /// The transform's key, e.g. pipelines/qc.sh.
    pub key: String,
    /// The transform's source (its sha256 identifies it: a changed source is a new version).
    pub source_code: Option<String>,
    /// pipeline (default), notebook, script, function, upload, linker or other.
    pub kind: Option<String>,
    pub description: Option<String>,
    /// The run's parameters.
    pub params: Option<serde_json::Value>,
    /// A version tag for a new transform version.
    pub version: Option<String>,
    /// A project (uid or name) the run, its transform and what it saves belong to.
    pub project: Option<String>,
}

/// Start a run (lamin.track, committed at once so other sessions see it); returns its uid.
pub async fn track(client: &Client, request: &TrackRequest) -> anyhow::Result<String> {
    let params = request.params.as_ref().map(|p| p.to_string());
    let kind = request.kind.as_deref().unwrap_or("pipeline");
    let row = client
        .query_one(
            "SELECT lamin.track($1, $2, $3, $4, $5::text::jsonb, $6, $7)",
            &[
                &request.key,
                &request.source_code,
                &kind,
                &request.description,
                &params,
                &request.version,
                &request.project,
            ],
        )
        .await
        .map_err(DbError)
        .context("no run was started")?;
    Ok(row.get(0))
}

/// How a run ended: the statuses lamin.finish takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Completed,
    Errored,
    Aborted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Errored => "errored",
            RunStatus::Aborted => "aborted",
        }
    }
}

/// Which run to finish, and how it ended.
#[derive(Debug, Clone)]
pub struct FinishRequest {
    pub run: String,
    pub status: RunStatus,
}

/// Finish a run started in another session (lamin.use_run, then
/// lamin.finish); returns its uid.
pub async fn finish(client: &Client, request: &FinishRequest) -> anyhow::Result<String> {
    use_run(client, Some(&request.run)).await?;
    let row = client
        .query_one("SELECT lamin.finish($1)", &[&request.status.as_str()])
        .await
        .map_err(DbError)
        .context("the run was not finished")?;
    Ok(row.get(0))
}

/// Make an existing, unfinished run the session's current run (`--run`).
/// A run that is not found is most often one started with lamin.track in a
/// transaction that has not committed yet: the message says so.
pub async fn use_run(client: &Client, run: Option<&str>) -> anyhow::Result<()> {
    let Some(run) = run else {
        return Ok(());
    };
    match client.query_one("SELECT lamin.use_run($1)", &[&run]).await {
        Ok(_) => Ok(()),
        // (The server's own hint says the same; this sentence replaces it.)
        Err(e) if e.code() == Some(&SqlState::NO_DATA_FOUND) => Err(refused!(
            "{}: nothing was done. If the run was started with lamin.track in a transaction that has not committed yet, other sessions cannot see it: commit after lamin.track (psycopg: conn.commit(), or connect with autocommit=True), or start the run with `lamin track`",
            e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string())
        )),
        Err(e) => Err(anyhow::Error::new(DbError(e)).context("nothing was done")),
    }
}

/// Record an artifact (uid) as an input of the session's current run:
/// `lamin.get` does, for whatever reads an artifact's bytes outside it.
pub async fn record_input(client: &Client, uid: &str) -> anyhow::Result<()> {
    client
        .query_one("SELECT (lamin.get($1)).uid", &[&uid])
        .await
        .map_err(DbError)?;
    Ok(())
}

/// Before anything is read for a run (`get`, `query`, `slice` with
/// `--run`): the server that records the inputs must take writes — checked
/// before any byte is read, since a read whose input cannot be recorded is
/// lineage lost — and the run becomes the session's current run.
pub async fn reading_for_run(recorder: &Client, run: Option<&str>) -> anyhow::Result<()> {
    if let Some(run) = run {
        require_writable(
            recorder,
            &format!("recording what is read as inputs of run {run}"),
        )
        .await?;
    }
    use_run(recorder, run).await
}
