//! `lamin slice`: the observations and variables of an AnnData (.h5ad file or
//! .zarr store) that one asks for, read where the artifact is stored, written as h5ad or
//! parquet, or saved as a new artifact.

use std::path::PathBuf;

use clap::Args;

use lamin_sidecar::artifacts::save::{save, SaveRequest};
use lamin_sidecar::progress::Silent;
use lamin_sidecar::slicing::{slice, SliceRequest};

use super::reading::{ReadArgs, Reading};
use super::DbArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lamin slice atlas/pbmc.h5ad --obs \"cell_type = 'B cell' AND n_genes >= 300\" -o b_cells.h5ad
  lamin slice atlas/pbmc.h5ad --var CD4,MS4A1 --var-key gene_symbol -o markers.parquet --stats
  lamin slice UID --obs \"donor IN ('d1', 'd2')\" --save atlas/d1d2.h5ad --run RUN")]
pub struct SliceArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    /// The AnnData artifact (an .h5ad file or a .zarr store): uid, stem or key.
    pub artifact: String,
    /// Keep the observations where this SQL condition over obs's columns holds
    /// (as in lamin query: AND, OR, IN, IS NULL, LIKE, …). Default: all.
    #[arg(long, value_name = "CONDITION")]
    pub obs: Option<String>,
    /// Keep these variables (comma-separated), in this order. Default: all.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub var: Vec<String>,
    /// Look the --var names up in this var column (e.g. gene_symbol) instead of the var index.
    #[arg(long, value_name = "COLUMN")]
    pub var_key: Option<String>,
    /// Write the slice to this file: .h5ad (AnnData) or .parquet (obs columns, then one column per variable).
    #[arg(
        short,
        long,
        value_name = "FILE",
        required_unless_present = "save",
        conflicts_with = "save"
    )]
    pub output: Option<PathBuf>,
    /// Save the slice as an artifact under this key (.h5ad or .parquet); prints its uid.
    #[arg(long, value_name = "KEY")]
    pub save: Option<String>,
    /// The run that reads the artifact (recorded as its input) and creates the saved one.
    #[arg(long)]
    pub run: Option<String>,
    /// Print what was read (bytes and requests, against the artifact's size) to stderr.
    #[arg(long)]
    pub stats: bool,
}

pub async fn run(args: SliceArgs) -> anyhow::Result<()> {
    let reading = Reading::open(&args.db, &args.read).await?;
    let dir = tempfile::tempdir()?;
    let output = match (&args.output, &args.save) {
        (Some(path), _) => path.clone(),
        (None, Some(key)) => {
            let name = key.rsplit('/').next().unwrap_or(key);
            dir.path().join(name)
        }
        (None, None) => unreachable!("clap requires --output or --save"),
    };
    let request = SliceRequest {
        artifact: args.artifact.clone(),
        obs: args.obs.clone(),
        var: args.var.clone(),
        var_key: args.var_key.clone(),
        output: output.clone(),
        run: args.run.clone(),
    };
    let outcome = slice(reading.reader(), &reading.primary, &request).await?;
    if !outcome.left_out.is_empty() {
        eprintln!(
            "note: the slice does not carry {} of artifact {}",
            outcome.left_out.join(", "),
            outcome.uid
        );
    }
    match &args.save {
        Some(key) => {
            let saved = save(
                &reading.primary,
                &SaveRequest {
                    path: output,
                    key: Some(key.clone()),
                    description: Some(format!(
                        "lamin slice of {}{}",
                        outcome.uid,
                        args.obs
                            .as_ref()
                            .map(|c| format!(" where {c}"))
                            .unwrap_or_default()
                    )),
                    storage: None,
                    run: args.run.clone(),
                    space: None,
                    revises: None,
                },
                &Silent,
            )
            .await?;
            println!("{}", saved.uid);
        }
        None => println!("{}", output.display()),
    }
    if args.stats {
        eprintln!(
            "sliced artifact {}: {} observations × {} variables; read {} of its {} bytes ({:.1} %) in {} requests",
            outcome.uid,
            outcome.n_obs,
            outcome.n_vars,
            outcome.bytes_read,
            outcome.size,
            100.0 * outcome.bytes_read as f64 / outcome.size.max(1) as f64,
            outcome.requests
        );
    }
    Ok(())
}
