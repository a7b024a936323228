//! Moving in from LaminDB: `lamin import-lamindb` reads an existing LaminDB
//! instance (the Django tables of lamindb and bionty, in its SQLite file or
//! its Postgres database), turns them into one document with every
//! reference by uid (`document`), and hands it to `lamin.import_lamindb`,
//! which writes it in one transaction. The artifacts arrive pending with
//! LaminDB's hash kept as their legacy hash; register jobs (run by the
//! sidecar) read their bytes and record the full sha256.

mod document;
pub mod legacy;
mod source;

use std::time::Duration;

use tokio_postgres::Client;

use crate::error::DbError;
use crate::progress::Progress;

pub use document::build as build_document;
pub use source::{read as read_source, Tables};

/// Per kind of record: how many were new, how many were here already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub kind: String,
    pub imported: i32,
    pub existing: i32,
}

#[derive(Debug, Clone)]
pub struct Imported {
    pub counts: Vec<Count>,
    /// Artifacts whose bytes the register jobs still have to hash.
    pub pending: Vec<String>,
}

/// Import the LaminDB instance at `from` (a SQLite file or a Postgres URL).
pub async fn import(target: &Client, from: &str) -> anyhow::Result<Imported> {
    let tables = source::read(from).await?;
    let doc = document::build(&tables)?;
    let rows = target
        .query(
            "SELECT kind, imported, existing FROM lamin.import_lamindb($1)",
            &[&doc],
        )
        .await
        .map_err(DbError)?;
    let counts = rows
        .iter()
        .map(|r| Count {
            kind: r.get(0),
            imported: r.get(1),
            existing: r.get(2),
        })
        .collect();
    let uids: Vec<String> = document::artifact_uids(&doc);
    let pending = pending(target, &uids).await?;
    Ok(Imported { counts, pending })
}

async fn pending(target: &Client, uids: &[String]) -> anyhow::Result<Vec<String>> {
    Ok(target
        .query(
            "SELECT uid FROM lamin.artifact WHERE uid = ANY ($1) AND status = 'pending' ORDER BY uid",
            &[&uids],
        )
        .await
        .map_err(DbError)?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Wait until the sidecar has hashed every artifact of `uids` (progress in
/// artifacts); the uids that failed, with why.
pub async fn wait_hashed(
    target: &Client,
    uids: &[String],
    timeout: Duration,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<(String, String)>> {
    progress.start("hashing the bytes LaminDB stored", uids.len() as u64);
    let started = std::time::Instant::now();
    let mut done = 0usize;
    loop {
        let left = pending(target, uids).await?;
        let now_done = uids.len() - left.len();
        progress.add((now_done - done) as u64);
        done = now_done;
        if left.is_empty() {
            break;
        }
        if started.elapsed() > timeout {
            progress.finish();
            return Err(crate::refused!(
                "{} artifacts are still pending after {} s: is a sidecar (lamin daemon) running for this instance? lamin.jobs shows the register jobs",
                left.len(),
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress.finish();
    Ok(target
        .query(
            "SELECT uid, coalesce(status_detail, status) FROM lamin.artifact
             WHERE uid = ANY ($1) AND status NOT IN ('ready', 'pending') ORDER BY uid",
            &[&uids],
        )
        .await
        .map_err(DbError)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}
