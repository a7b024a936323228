//! `lamin import-lamindb`: move an existing LaminDB instance in (over
//! `lamin_sidecar::lamindb`).

use std::time::Duration;

use clap::Args;
use lamin_sidecar::db;
use lamin_sidecar::lamindb;

use super::progress::Bar;
use super::DbArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lamin import-lamindb --from ~/mydata/.lamindb/lamin.db --wait
  lamin import-lamindb --from postgresql://me@db.example.org/lamindb_lab

Prints one line per kind of record: kind, new, already here. Run it again to
take only what is new. The artifacts are pending until a sidecar (lamin
daemon) has read and hashed their bytes; --wait waits for that.")]
pub struct ImportLamindbArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The LaminDB instance: its SQLite file (or its storage folder) or its Postgres URL.
    #[arg(long)]
    pub from: String,
    /// Wait until every imported artifact's bytes are hashed (needs a running sidecar).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_s: u64,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the import document (JSON: what would be imported, by uid) and import nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: ImportLamindbArgs) -> anyhow::Result<()> {
    if args.dry_run {
        let doc = lamindb::build_document(&lamindb::read_source(&args.from).await?)?;
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let target = db::open(&args.db.database_url).await?;
    let imported = lamindb::import(&target, &args.from).await?;
    for c in &imported.counts {
        println!("{}\t{}\t{}", c.kind, c.imported, c.existing);
    }
    eprintln!(
        "{} artifacts wait for their bytes to be hashed (register jobs of the sidecar)",
        imported.pending.len()
    );
    if args.wait && !imported.pending.is_empty() {
        let failed = lamindb::wait_hashed(
            &target,
            &imported.pending,
            Duration::from_secs(args.timeout_s),
            &Bar::new(args.quiet),
        )
        .await?;
        for (uid, why) in &failed {
            eprintln!("artifact {uid}: {why}");
        }
        if !failed.is_empty() {
            anyhow::bail!("{} artifacts could not be hashed (see above)", failed.len());
        }
        eprintln!("every artifact is hashed and ready");
    }
    Ok(())
}
