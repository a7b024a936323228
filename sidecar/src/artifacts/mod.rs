//! Artifacts' bytes: save, get and cat (the CLI verbs), and the storage jobs —
//! register, stage, verify, delete_object, sweep_storage. Each is a function
//! taking a database client (acting as the requester) and a request struct,
//! returning a typed result; the front-ends turn those into output or job
//! results.

pub mod cat;
pub mod cleanup;
pub mod describe;
pub mod get;
pub mod register;
pub mod save;
pub mod stage;
pub mod verify;

use tokio_postgres::Client;

use crate::error::DbError;
use crate::refused;
use crate::storage::Content;

/// An artifact as the storage jobs need it.
pub struct Located {
    pub uid: String,
    pub root: String,
    pub object: String,
    pub folder: bool,
    pub hash: Option<String>,
    pub status: String,
    /// LaminDB's hash and its type, for an artifact moved in from LaminDB.
    pub legacy: Option<(String, String)>,
    pub suffix: String,
    pub size: Option<i64>,
}

const LOCATED: &str =
    "SELECT a.uid, s.root, lamin.object_key(a), a.n_files IS NOT NULL, a.hash, a.status,
                              a.legacy_hash, a.legacy_hash_type, a.suffix, a.size
                       FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id";

fn located(row: &tokio_postgres::Row) -> Located {
    Located {
        uid: row.get(0),
        root: row.get(1),
        object: row.get(2),
        folder: row.get(3),
        hash: row.get(4),
        status: row.get(5),
        legacy: row
            .get::<_, Option<String>>(6)
            .zip(row.get::<_, Option<String>>(7)),
        suffix: row.get(8),
        size: row.get(9),
    }
}

/// An artifact by its exact uid (the storage jobs).
pub async fn locate(client: &Client, uid: &str) -> anyhow::Result<Located> {
    let row = client
        .query_opt(&format!("{LOCATED} WHERE a.uid = $1"), &[&uid])
        .await
        .map_err(DbError)?
        .ok_or_else(|| refused!("no artifact with uid {uid:?}"))?;
    Ok(located(&row))
}

/// A ready artifact as a reader names it — uid, stem (its latest version)
/// or key — whose bytes are to be read (`lamin cat`, `lamin query`).
pub async fn locate_ready(client: &Client, uid_or_key: &str) -> anyhow::Result<Located> {
    let uid = get::resolve_artifact(client, uid_or_key).await?;
    let row = client
        .query_one(
            &format!("{LOCATED} WHERE a.id = lamin.artifact_id($1)"),
            &[&uid],
        )
        .await
        .map_err(DbError)?;
    let a = located(&row);
    if a.status != "ready" {
        return Err(refused!(
            "artifact {} is {}: its bytes are not (yet) verified in storage",
            a.uid,
            a.status
        ));
    }
    Ok(a)
}

/// The problem with stored content, if any, for lamin.record_check.
pub(crate) fn problem(
    uri: &str,
    found: &Option<Content>,
    registered: Option<&str>,
) -> Option<String> {
    match found {
        None => Some(format!("object missing at {uri}")),
        Some(c) if Some(c.hash.as_str()) != registered => Some(format!(
            "stored bytes at {uri} have sha256 {}, not the registered {}",
            c.hash,
            registered.unwrap_or("?")
        )),
        Some(_) => None,
    }
}

pub(crate) async fn record_check(
    client: &Client,
    uid: &str,
    problem: &Option<String>,
) -> anyhow::Result<()> {
    client
        .execute("SELECT lamin.record_check($1, $2)", &[&uid, problem])
        .await
        .map_err(DbError)?;
    Ok(())
}

/// The root of a storage, read from its row (never from a job's arguments).
pub(crate) async fn storage_root(client: &Client, storage_id: i64) -> anyhow::Result<String> {
    client
        .query_opt(
            "SELECT s.root FROM lamin.storage s WHERE s.id = $1",
            &[&storage_id],
        )
        .await
        .map_err(DbError)?
        .map(|r| r.get(0))
        .ok_or_else(|| refused!("no storage with id {storage_id}"))
}
