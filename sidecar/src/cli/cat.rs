//! `lamin cat`: stream the rows of a tabular artifact to stdout, reading
//! only the columns and row groups needed, with ranged reads on any storage.

use std::io::Write;

use arrow::record_batch::RecordBatch;
use clap::{Args, ValueEnum};

use lamin_sidecar::artifacts::cat::{cat, CatRequest};
use lamin_sidecar::formats::filter::parse_where;
use lamin_sidecar::formats::Query;

use super::reading::{ReadArgs, Reading};
use super::DbArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Parquet,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lamin cat atlas/cells.parquet --columns cell_id,n_genes --where \"n_genes >= 990 AND cell_type = 'T cell'\"
  lamin cat UID --where \"donor IN ('d1', 'd2') OR (score IS NULL AND NOT is_doublet)\" --format json
  lamin cat atlas/pbmc.h5ad --slot var --columns index,gene_symbol

--where takes a SQL condition: =, !=, <, <=, >, >= between a column and a value, IN (…),
BETWEEN … AND …, LIKE / ILIKE, IS [NOT] NULL, joined by AND, OR, NOT and parentheses.
Text values take 'single quotes'; \"double quotes\" name a column.")]
pub struct CatArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Artifact uid (20 characters), stem (16: the latest version) or key.
    #[arg(value_name = "UID_OR_KEY")]
    pub uid: String,
    /// Only these columns, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Only rows meeting this SQL condition, e.g. "n_genes >= 200 AND cell_type IN ('T cell', 'B cell')".
    #[arg(long = "where")]
    pub filter: Option<String>,
    /// For an AnnData (.h5ad, .zarr): its obs (default) or var table; for a MuData (.h5mu) also a
    /// modality's, e.g. rna:obs or prot:var; for a SpatialData store a table's, e.g.
    /// tables:table:obs. The index comes first, as `index`.
    #[arg(long)]
    pub slot: Option<String>,
    /// At most this many rows.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Print what was read (bytes, row groups, rows) to stderr.
    #[arg(long)]
    pub stats: bool,
}

/// Where batches go: CSV, JSON lines, or a parquet stream (`lamin cat`,
/// `lamin query`).
pub(super) enum Out {
    Csv(arrow::csv::Writer<std::io::BufWriter<std::io::Stdout>>),
    Json(arrow::json::LineDelimitedWriter<std::io::BufWriter<std::io::Stdout>>),
    Parquet(Option<parquet::arrow::ArrowWriter<std::io::BufWriter<std::io::Stdout>>>),
}

impl Out {
    pub(super) fn new(format: Format) -> Out {
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

    pub(super) fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
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

    pub(super) fn finish(self) -> anyhow::Result<()> {
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
    // A bad condition is refused before connecting.
    let filter = args.filter.as_deref().map(parse_where).transpose()?;
    let reading = Reading::open(&args.db, &args.read).await?;
    let client = reading.reader();
    let request = CatRequest {
        uid: args.uid.clone(),
        query: Query {
            columns: args.columns.clone(),
            filter,
            limit: args.limit,
        },
        slot: args.slot.clone(),
    };
    let mut out = Out::new(args.format);
    let read = cat(client, &request, |batch| out.write(batch)).await?;
    out.finish()?;
    if args.stats {
        let (cost, size) = (read.cost, read.size.unwrap_or(0));
        if cost.row_groups > 0 {
            eprintln!(
                "read {} of {} bytes ({:.1}%), {} of {} row groups, {} rows out",
                cost.bytes_read,
                size,
                100.0 * cost.bytes_read as f64 / size.max(1) as f64,
                cost.row_groups_read,
                cost.row_groups,
                cost.rows_out
            );
        } else {
            eprintln!("read the {size}-byte file, {} rows out", cost.rows_out);
        }
    }
    Ok(())
}
