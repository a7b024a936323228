//! `lamin records import|export`: a record type's records (a sheet) from and
//! to CSV/TSV or parquet files (the CLI over `lamin_sidecar::records`).

use clap::{Args, Subcommand};
use lamin_sidecar::db;
use lamin_sidecar::records::{self, ExportRequest, ImportRequest};

use super::DbArgs;

#[derive(Debug, Args)]
pub struct RecordsArgs {
    #[command(subcommand)]
    pub command: RecordsCommand,
}

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// Import a CSV/TSV or parquet file's rows into a record type (all rows or none); prints each row's record uid.
    Import(ImportArgs),
    /// Export a record type's records to a CSV/TSV or parquet file (columns: name, the features, uid); prints the file's path.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Columns other than the name column and uid must name features (of the
record type's schema, if it has one). A row whose uid, or whose name, the record
type already has updates that record (the values of the features it gives are
replaced); other rows are new records. Empty cells are left out. An exported
file imports back as an update of the same records."
)]
pub struct ImportArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The record type (uid or name), e.g. Donor.
    pub record_type: String,
    /// A .csv, .tsv or .parquet file.
    pub file: std::path::PathBuf,
    /// The column that names the records.
    #[arg(long, default_value = "name")]
    pub name_column: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The record type (uid or name), e.g. Donor.
    pub record_type: String,
    /// Where to write: a .csv, .tsv or .parquet file.
    pub file: std::path::PathBuf,
}

pub async fn run(args: RecordsArgs) -> anyhow::Result<()> {
    match args.command {
        RecordsCommand::Import(args) => import(args).await,
        RecordsCommand::Export(args) => export(args).await,
    }
}

/// Import; one uid per row on stdout, a summary on stderr.
async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let client = db::open(&args.db.database_url).await?;
    let request = ImportRequest {
        record_type: args.record_type,
        path: args.file,
        name_column: args.name_column,
    };
    let rows = records::import(&client, &request).await?;
    for row in &rows {
        println!("{}", row.uid);
    }
    let created = rows.iter().filter(|r| r.created).count();
    eprintln!(
        "imported {} rows into record type {:?}: {created} new records, {} updated",
        rows.len(),
        request.record_type,
        rows.len() - created
    );
    Ok(())
}

/// Export; the file's path on stdout, the number of records on stderr.
async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let client = db::open(&args.db.database_url).await?;
    let request = ExportRequest {
        record_type: args.record_type,
        path: args.file,
    };
    let n = records::export(&client, &request).await?;
    eprintln!(
        "exported {n} records of record type {:?}",
        request.record_type
    );
    println!("{}", request.path.display());
    Ok(())
}
