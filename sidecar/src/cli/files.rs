//! `lamin save` and `lamin get`: the CLI over `artifacts::save` and `artifacts::get`.

use std::path::PathBuf;

use clap::Args;
use lamin_sidecar::artifacts::get::{get as get_artifact, GetRequest};
use lamin_sidecar::artifacts::save::{check_request, save as save_artifact, SaveRequest, Saved};
use lamin_sidecar::db;

use super::progress::Bar;
use super::DbArgs;

#[derive(Debug, Args)]
pub struct SaveArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The file or folder to save.
    pub file: PathBuf,
    /// Key (path within the storage, e.g. raw/cells.parquet); a key that names
    /// an artifact already makes a new version of it.
    #[arg(long)]
    pub key: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Storage root or uid (default: the default storage).
    #[arg(long)]
    pub storage: Option<String>,
    /// The run (uid, from lamin.track) that creates this artifact.
    #[arg(long, env = "LAMIN_RUN")]
    pub run: Option<String>,
    /// The space (name or uid) the artifact goes to (default: "all"); needs write on it.
    #[arg(long, env = "LAMIN_SPACE")]
    pub space: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Artifact uid (20 characters) or stem (16: the latest version).
    pub uid: String,
    /// Where to write the file (default: the key's file name, else uid + suffix, in the current folder).
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// The run (uid, from lamin.track) that reads this artifact: recorded as one of its inputs.
    #[arg(long, env = "LAMIN_RUN")]
    pub run: Option<String>,
    #[arg(long, short)]
    pub quiet: bool,
}

/// Save; print the uid (with a note when nothing was uploaded).
pub async fn save(args: SaveArgs) -> anyhow::Result<()> {
    let request = SaveRequest {
        path: args.file,
        key: args.key,
        description: args.description,
        storage: args.storage,
        run: args.run,
        space: args.space,
    };
    // A bad key is refused before connecting.
    check_request(&request)?;
    let client = db::open(&args.db.database_url).await?;
    let saved = save_artifact(&client, &request, &Bar::new(args.quiet)).await?;
    let uid = &saved.uid;
    match saved.saved {
        Saved::Uploaded => println!("{uid}"),
        Saved::Known => println!("{uid} (same content already saved: nothing uploaded)"),
        Saved::PendingElsewhere => println!(
            "{uid} (same content is being uploaded by another save; the artifact is pending until it finishes)"
        ),
    }
    let conflicts = saved.conflicts();
    if !conflicts.is_empty() {
        eprintln!(
            "warning: {uid}: columns whose features have another dtype (left as they are): {}",
            serde_json::Value::from(conflicts)
        );
    }
    if let Some(w) = &saved.warning {
        eprintln!("warning: {uid} is saved as plain bytes: {w}");
    }
    Ok(())
}

/// Get; print where the file went.
pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let client = db::open(&args.db.database_url).await?;
    let request = GetRequest {
        uid: args.uid,
        to: args.to,
        run: args.run,
    };
    let dest = get_artifact(&client, &request, &Bar::new(args.quiet)).await?;
    println!("{}", dest.display());
    Ok(())
}
