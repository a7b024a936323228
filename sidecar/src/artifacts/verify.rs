//! verify: re-read artifacts' bytes and compare their sha256 with the
//! registered one; mismatches and missing objects make an artifact corrupt.

use std::collections::HashMap;

use serde::Serialize;
use tokio_postgres::Client;

use super::{locate, problem, record_check};
use crate::error::DbError;
use crate::progress::Progress;
use crate::storage::Storage;

/// One artifact (uid), or every stored one (None).
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub uid: Option<String>,
}

/// What verify found.
#[derive(Debug, Serialize)]
pub struct Verified {
    pub checked: usize,
    pub ok: u64,
    /// The first 1000 corrupt artifacts.
    pub corrupt: Vec<Corrupt>,
}

#[derive(Debug, Serialize)]
pub struct Corrupt {
    pub uid: String,
    pub problem: String,
}

/// verify: re-read one artifact (args.uid) or every stored one; mismatches
/// and missing objects make the artifact corrupt, matches make it ready.
pub async fn verify(
    client: &Client,
    request: &VerifyRequest,
    progress: &dyn Progress,
) -> anyhow::Result<Verified> {
    let uid = request.uid.as_deref();
    let rows = client
        .query(
            "SELECT a.uid FROM lamin.artifact a
             WHERE ($1::text IS NULL AND a.status IN ('ready', 'corrupt')) OR a.uid = $1
             ORDER BY a.id",
            &[&uid],
        )
        .await
        .map_err(DbError)?;
    progress.start("verifying", rows.len() as u64);
    let mut stores: HashMap<String, Storage> = HashMap::new();
    let (mut ok, mut corrupt) = (0u64, Vec::new());
    for row in &rows {
        let a = locate(client, row.get(0)).await?;
        if a.status != "ready" && a.status != "corrupt" {
            progress.add(1);
            continue;
        }
        if !stores.contains_key(&a.root) {
            let s = Storage::open(&a.root)?;
            stores.insert(a.root.clone(), s);
        }
        let storage = &stores[&a.root];
        let uri = storage.uri(&a.object);
        let found = storage
            .content(&a.object, Some(a.folder), &crate::progress::Silent)
            .await
            .map_err(|e| e.context(format!("cannot read {uri}")))?;
        let p = problem(&uri, &found, a.hash.as_deref());
        record_check(client, &a.uid, &p).await?;
        match p {
            None => ok += 1,
            Some(problem) => {
                if corrupt.len() < 1000 {
                    corrupt.push(Corrupt {
                        uid: a.uid.clone(),
                        problem,
                    });
                }
            }
        }
        progress.add(1);
    }
    Ok(Verified {
        checked: rows.len(),
        ok,
        corrupt,
    })
}
