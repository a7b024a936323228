//! `lamin cat`: stream the rows of a tabular artifact to stdout, reading
//! only the columns and row groups needed, with ranged reads on any storage.

use std::io::Write;

use anyhow::{bail, Context};
use arrow::record_batch::RecordBatch;
use clap::{Args, ValueEnum};

use crate::cli::DbArgs;
use crate::files::db_message;
use crate::tabular::{parse_where, Query};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Parquet,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Artifact uid (20 characters) or stem (16: the latest version).
    pub uid: String,
    /// Only these columns, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Only rows meeting these conditions: `col = value AND col2 >= 3` (=, !=, <, <=, >, >=; 'quoted strings').
    #[arg(long = "where")]
    pub filter: Option<String>,
    /// At most this many rows.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Print what was read (bytes, row groups, rows) to stderr.
    #[arg(long)]
    pub stats: bool,
}

/// Where batches go: CSV, JSON lines, or a parquet stream.
enum Out {
    Csv(arrow::csv::Writer<std::io::BufWriter<std::io::Stdout>>),
    Json(arrow::json::LineDelimitedWriter<std::io::BufWriter<std::io::Stdout>>),
    Parquet(Option<parquet::arrow::ArrowWriter<std::io::BufWriter<std::io::Stdout>>>),
}

impl Out {
    fn new(format: Format) -> Out {
        let stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
        match format {
            Format::Csv => Out::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(stdout),
            ),
            Format::Json => Out::Json(arrow::json::LineDelimitedWriter::new(stdout)),
            Format::Parquet => Out::Parquet(None),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        match self {
            Out::Csv(w) => w.write(batch)?,
            Out::Json(w) => w.write(batch)?,
            Out::Parquet(w) => {
                if w.is_none() {
                    let stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
                    *w = Some(parquet::arrow::ArrowWriter::try_new(
                        stdout,
                        batch.schema(),
                        None,
                    )?);
                }
                w.as_mut().expect("writer").write(batch)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Out::Csv(w) => w.into_inner().flush()?,
            Out::Json(mut w) => {
                w.finish()?;
                w.into_inner().flush()?;
            }
            Out::Parquet(Some(w)) => {
                w.close()?;
            }
            Out::Parquet(None) => {}
        }
        Ok(())
    }
}

pub async fn run(args: CatArgs) -> anyhow::Result<()> {
    let client = crate::db::open(&args.db.database_url).await?;
    let row = client
        .query_one(
            "SELECT a.uid, s.root, lamin.object_key(a), a.status, a.size, a.suffix, a.n_files IS NOT NULL
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id WHERE a.id = lamin.artifact_id($1)",
            &[&args.uid],
        )
        .await
        .map_err(db_message)?;
    let (uid, root, object, status): (String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let (size, suffix, folder): (Option<i64>, String, bool) = (row.get(4), row.get(5), row.get(6));
    if status != "ready" {
        bail!("artifact {uid} is {status}: its bytes are not (yet) verified in storage");
    }
    if suffix != ".parquet" || folder {
        bail!(
            "lamin cat reads parquet artifacts; {uid} is {}",
            if folder {
                "a folder".to_string()
            } else {
                format!("a {suffix:?} file")
            }
        );
    }
    let query = Query {
        columns: args.columns.clone(),
        conditions: match &args.filter {
            Some(w) => parse_where(w)?,
            None => Vec::new(),
        },
        limit: args.limit,
    };
    let storage = crate::storage::Storage::open(&root)?;
    let mut out = Out::new(args.format);
    let cost = crate::tabular::scan(&storage, &object, size.map(|s| s as u64), &query, |batch| {
        out.write(batch)
    })
    .await
    .with_context(|| format!("artifact {uid}"))?;
    out.finish()?;
    if args.stats {
        let total = size.unwrap_or(0).max(1) as f64;
        eprintln!(
            "read {} of {} bytes ({:.1}%), {} of {} row groups, {} rows out",
            cost.bytes_read,
            size.unwrap_or(0),
            100.0 * cost.bytes_read as f64 / total,
            cost.row_groups_read,
            cost.row_groups,
            cost.rows_out
        );
    }
    Ok(())
}
