//! `lamin track` and `lamin finish`: a shell pipeline's run, started and
//! finished from the command line (the CLI over `lamin_sidecar::runs`).

use anyhow::Context;
use clap::{Args, ValueEnum};
use lamin_sidecar::db;
use lamin_sidecar::runs::{self, FinishRequest, RunStatus, TrackRequest};

use super::DbArgs;

#[derive(Debug, Args)]
#[command(after_help = "Example:
  run=$(lamin track --key pipelines/qc.sh --params '{\"min_genes\": 200}')
  lamin save cells.parquet --key qc/cells.parquet --run \"$run\"
  lamin finish \"$run\"            # or: lamin finish \"$run\" --status errored

The run is committed at once, so every later `lamin save/get --run` (and any
other session: SELECT lamin.use_run(uid)) can use it.")]
pub struct TrackArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The transform's key (path-like name, e.g. pipelines/qc.sh): found, or created.
    #[arg(long, visible_alias = "transform", value_name = "KEY")]
    pub key: String,
    /// A file holding the transform's source: a changed source makes a new transform version.
    #[arg(long, value_name = "FILE")]
    pub source_code: Option<std::path::PathBuf>,
    /// The transform's kind.
    #[arg(long, default_value = "pipeline", value_parser = ["pipeline", "notebook", "script", "function", "upload", "linker", "other"])]
    pub kind: String,
    /// The transform's description.
    #[arg(long)]
    pub description: Option<String>,
    /// The run's parameters, as a JSON object.
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// A version tag for a new transform version.
    #[arg(long)]
    pub version: Option<String>,
    /// A project (uid or name): the run, its transform and what the run saves belong to it.
    #[arg(long, env = "LAMIN_PROJECT")]
    pub project: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Completed,
    Errored,
    Aborted,
}

#[derive(Debug, Args)]
pub struct FinishArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The run's uid (from `lamin track` or lamin.track).
    pub run: String,
    /// How the run ended.
    #[arg(long, value_enum, default_value = "completed")]
    pub status: StatusArg,
}

/// Start a run; print its uid alone.
pub async fn track(args: TrackArgs) -> anyhow::Result<()> {
    let params = match &args.params {
        Some(text) => Some(serde_json::from_str::<serde_json::Value>(text).with_context(|| {
            format!("--params {text:?} is not JSON: give an object such as '{{\"min_genes\": 200}}'")
        })?),
        None => None,
    };
    let source_code = match &args.source_code {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--source-code: cannot read {}", path.display()))?,
        ),
        None => None,
    };
    let client = db::open(&args.db.database_url).await?;
    let request = TrackRequest {
        key: args.key,
        source_code,
        kind: Some(args.kind),
        description: args.description,
        params,
        version: args.version,
        project: args.project,
    };
    println!("{}", runs::track(&client, &request).await?);
    Ok(())
}

/// Finish a run; print its uid alone.
pub async fn finish(args: FinishArgs) -> anyhow::Result<()> {
    let client = db::open(&args.db.database_url).await?;
    let request = FinishRequest {
        run: args.run,
        status: match args.status {
            StatusArg::Completed => RunStatus::Completed,
            StatusArg::Errored => RunStatus::Errored,
            StatusArg::Aborted => RunStatus::Aborted,
        },
    };
    println!("{}", runs::finish(&client, &request).await?);
    Ok(())
}
