//! What `lamin status` reports: the versions of the extension (installed,
//! offered by the server, the loaded library), the sidecars connected to the
//! database, and the server.

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
}

pub async fn status(client: &Client) -> anyhow::Result<Status> {
    let found = db::handshake(client).await?;
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_user::text,
                    to_regprocedure('lamin.library_version()') IS NOT NULL,
                    to_regclass('lamin.instance') IS NOT NULL",
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
    })
}
