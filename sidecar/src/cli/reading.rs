//! Where the reading verbs (get, cat, ls, search, describe) read: the server
//! of DATABASE_URL, or a hot standby of it (`--read-url`, `LAMIN_READ_URL`).
//! Writes (the input of `get --run`) always go to DATABASE_URL.

use clap::Args;
use lamin_sidecar::db;
use lamin_sidecar::replica::{catch_up, CATCH_UP_TIMEOUT};
use tokio_postgres::Client;

use super::DbArgs;

#[derive(Debug, Args, Clone)]
pub struct ReadArgs {
    /// A hot standby of DATABASE_URL's primary to read from, once it has
    /// replayed what the primary had (at most 30 s): your own writes are
    /// always seen. Writes, such as the input of --run, still go to DATABASE_URL.
    #[arg(long, env = "LAMIN_READ_URL", hide_env_values = true)]
    pub read_url: Option<String>,
}

/// The connections of a reading verb.
pub struct Reading {
    /// DATABASE_URL's server: where writes go.
    pub primary: Client,
    /// The standby of --read-url, caught up with the primary.
    standby: Option<Client>,
}

impl Reading {
    pub async fn open(db: &DbArgs, read: &ReadArgs) -> anyhow::Result<Reading> {
        let primary = db::open(&db.database_url).await?;
        let standby = match &read.read_url {
            Some(url) => {
                let standby = db::open(url).await?;
                catch_up(&primary, &standby, CATCH_UP_TIMEOUT).await?;
                Some(standby)
            }
            None => None,
        };
        Ok(Reading { primary, standby })
    }

    /// The connection to read through.
    pub fn reader(&self) -> &Client {
        self.standby.as_ref().unwrap_or(&self.primary)
    }
}
