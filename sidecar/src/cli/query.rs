//! `lamin query`: SQL over artifacts and collections (DataFusion), rows to
//! stdout as CSV, JSON lines or parquet, or saved as a new artifact.

use clap::Args;

use lamin_sidecar::artifacts::save::{save, SaveRequest};
use lamin_sidecar::progress::Silent;
use lamin_sidecar::query::{query, QueryRequest};

use super::cat::{Format, Out};
use super::reading::{ReadArgs, Reading};
use super::DbArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lamin query \"SELECT cell_type, count(*) AS n FROM artifact('atlas/cells.parquet') GROUP BY 1 ORDER BY 2 DESC\"
  lamin query \"SELECT * FROM collection('shards') WHERE donor IN ('d1', 'd2') AND n_genes > 900\" --stats
  lamin query \"SELECT o.index, o.cell_type FROM artifact('atlas/pbmc.h5ad', 'obs') o WHERE o.n_genes >= 1000\"
  lamin query \"SELECT * FROM artifact('multi/cite.h5mu', 'rna:var')\" --format json
  lamin query \"SELECT donor, avg(n_genes) FROM collection('shards') GROUP BY 1\" --save reports/by-donor.parquet --run RUN")]
pub struct QueryArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    /// The query (DataFusion SQL). Its tables are artifact('UID or key'), artifact('UID', 'slot')
    /// for an AnnData (obs, var), MuData (rna:obs, …) or SpatialData table (tables:table:obs), and
    /// collection('UID or key') for a collection's members as one table.
    pub sql: String,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Save the rows as a parquet artifact under this key (prints its uid instead of the rows).
    #[arg(long, value_name = "KEY")]
    pub save: Option<String>,
    /// The run that reads the artifacts (recorded as its inputs) and creates the saved one.
    #[arg(long)]
    pub run: Option<String>,
    /// Print what was read (artifacts, bytes, requests, rows) to stderr.
    #[arg(long)]
    pub stats: bool,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    if let Some(key) = &args.save {
        if !key.to_ascii_lowercase().ends_with(".parquet") {
            return Err(lamin_sidecar::refused!(
                "--save {key:?}: the rows are saved as parquet, so the key must end with .parquet"
            ));
        }
    }
    let reading = Reading::open(&args.db, &args.read).await?;
    let request = QueryRequest {
        sql: args.sql.clone(),
        run: args.run.clone(),
    };
    let outcome = match &args.save {
        None => {
            let mut out = Out::new(args.format);
            let outcome = query(reading.reader(), &reading.primary, &request, |b| {
                out.write(b)
            })
            .await?;
            out.finish()?;
            outcome
        }
        Some(key) => {
            // The rows go to a parquet file, saved like any file.
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("query.parquet");
            let mut writer: Option<parquet::arrow::ArrowWriter<std::fs::File>> = None;
            let outcome = query(reading.reader(), &reading.primary, &request, |batch| {
                if writer.is_none() {
                    writer = Some(parquet::arrow::ArrowWriter::try_new(
                        std::fs::File::create(&path)?,
                        batch.schema(),
                        None,
                    )?);
                }
                Ok(writer.as_mut().expect("writer").write(batch)?)
            })
            .await?;
            match writer {
                Some(w) => {
                    w.close()?;
                }
                None => {
                    return Err(lamin_sidecar::refused!(
                        "the query returned no rows: nothing saved under {key}"
                    ))
                }
            }
            let saved = save(
                &reading.primary,
                &SaveRequest {
                    path,
                    key: Some(key.clone()),
                    description: Some(format!("lamin query: {}", args.sql)),
                    storage: None,
                    run: args.run.clone(),
                    space: None,
                    revises: None,
                },
                &Silent,
            )
            .await?;
            println!("{}", saved.uid);
            outcome
        }
    };
    if args.stats {
        eprintln!(
            "read {} artifacts ({}): {} bytes in {} requests, {} rows out",
            outcome.inputs.len(),
            outcome.inputs.join(", "),
            outcome.bytes_read,
            outcome.requests,
            outcome.rows_out
        );
    }
    Ok(())
}
