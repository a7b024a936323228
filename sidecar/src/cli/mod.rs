//! The command-line front-end: clap structs and one thin function per verb
//! over the library (`lamin_sidecar`). Results go to stdout alone;
//! messages and progress to stderr.

mod cat;
mod daemon;
mod files;
mod find;
mod import;
mod lamindb;
pub mod logging;
mod mesh;
mod output;
mod progress;
mod query;
mod reading;
mod records;
mod runs;
mod slice;
mod status;
mod validate;

use clap::{Args, Parser, Subcommand};
use lamin_sidecar::db;

#[derive(Debug, Parser)]
#[command(
    name = "lamin",
    version,
    about = "lamin for Postgres: sidecar daemon and client CLI"
)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// Connection settings shared by every verb that talks to Postgres.
#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// Postgres connection URL, e.g. postgresql://user:password@127.0.0.1:28815/lamin
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar: LISTEN for jobs enqueued by SQL functions and do their byte work.
    Daemon(DaemonArgs),
    /// Check the connection and print the versions of the extension and the server.
    Status(StatusArgs),
    /// Save a file or folder as an artifact (hash, upload unless the content is already stored, register); prints the uid.
    Save(files::SaveArgs),
    /// Download an artifact's file by uid or key, checking its sha256; prints where it went.
    Get(files::GetArgs),
    /// Import public ontologies and gene tables into the bionty registries.
    Import(import::ImportArgs),
    /// Stream rows of a table artifact (parquet, CSV/TSV; AnnData, MuData and SpatialData tables by --slot) to stdout, reading only what is needed.
    Cat(cat::CatArgs),
    /// SQL over artifacts and collections (DataFusion): artifact('UID or key'), collection('UID or key').
    Query(query::QueryArgs),
    /// Part of an AnnData (.h5ad): observations by an obs condition, variables by name, read in place by ranged reads; written as h5ad or parquet.
    Slice(slice::SliceArgs),
    /// Start a run of a transform (lamin.track) and print its uid, for `--run` of later verbs.
    Track(runs::TrackArgs),
    /// Finish a run (lamin.finish): completed, errored or aborted.
    Finish(runs::FinishArgs),
    /// Print a record (artifact by uid or key, collection, run, …) as JSON (lamin.describe).
    Describe(find::DescribeArgs),
    /// List artifacts: latest versions under a key prefix, by space, label or feature value.
    Ls(find::LsArgs),
    /// Search a registry (lamin.search): ranked names, synonyms and ids, typos forgiven.
    Search(find::SearchArgs),
    /// Validate an artifact against a schema (lamin.validate_artifact): problems on stdout, exit 1 when it fails.
    Validate(validate::ValidateArgs),
    /// Write a dataset's synonyms as registry names into a new, validated version (lamin.standardize_artifact); prints its uid.
    Standardize(validate::StandardizeArgs),
    /// Schemas: make one from a sample file.
    Schema(validate::SchemaArgs),
    /// Records of a record type (a sheet: samples, donors, reagents) from and to CSV/TSV or parquet files.
    Records(records::RecordsArgs),
    /// Make a new instance (a database with the extension, a default storage and the default ontologies, cloned from the server's template); prints its URL.
    Init(mesh::InitArgs),
    /// List the lamin instances of a server: name, uid, release, artifacts, size.
    Instances(mesh::InstancesArgs),
    /// Print (or write) the environment that points the CLI and psql at an instance.
    Connect(mesh::ConnectArgs),
    /// Copy artifacts and collections, with their annotations by meaning, from one instance to another.
    Transfer(mesh::TransferArgs),
    /// Move an existing LaminDB instance in (SQLite file or Postgres): storages, artifacts, lineage, labels, features, ontology terms.
    ImportLamindb(lamindb::ImportLamindbArgs),
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The NOTIFY channel that SQL functions use to wake the sidecar.
    #[arg(long, default_value = "lamin_job")]
    pub channel: String,
    /// Seconds between sweeps for work whose notification was missed.
    #[arg(long, default_value_t = 30)]
    pub sweep_interval_s: u64,
    /// Jobs run at once by this sidecar (claimed in batches of half as many).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds a claimed job stays this sidecar's without a heartbeat; after
    /// that another sidecar takes it over (a heartbeat comes every third of it).
    #[arg(long, default_value_t = 30)]
    pub lease_s: i32,
    /// On SIGTERM, seconds to let running jobs finish before handing them back to the queue.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_s: u64,
    /// The folder import jobs (lamin.import_ontology / lamin.import_genes) may read files from.
    #[arg(long, env = "LAMIN_IMPORT_DIR")]
    pub import_dir: Option<std::path::PathBuf>,
    /// The folder stage jobs (lamin.stage) copy artifacts of remote storages
    /// into: {cache}/{scheme}/{bucket}/{prefix}/{object key}.
    #[arg(long, env = "LAMIN_CACHE_DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Seconds between storage sweeps (lamin.sweep_storage) that clean up
    /// after interrupted saves; 0: never.
    #[arg(long, default_value_t = 3600)]
    pub storage_sweep_interval_s: u64,
    /// How long an upload may sit idle, or an unowned object stay, before a
    /// storage sweep treats it as abandoned.
    #[arg(long, default_value_t = 3600)]
    pub upload_grace_s: i32,
    /// How long done and cancelled jobs stay in lamin.job before the sidecar
    /// prunes them (e.g. 7d, 12h, 30min).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub keep_done_jobs: std::time::Duration,
    /// How long failed jobs stay (longer: their errors are what one reads).
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub keep_failed_jobs: std::time::Duration,
    /// Seconds between prunes of finished jobs past their retention; 0: never prune.
    #[arg(long, default_value_t = 600)]
    pub prune_interval_s: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub db: DbArgs,
}

/// Run one verb.
pub async fn run(command: Command) -> anyhow::Result<()> {
    // The daemon names its connections after its worker name instead.
    let verb = match &command {
        Command::Daemon(_) => None,
        Command::Status(_) => Some("status"),
        Command::Import(_) => Some("import"),
        Command::Save(_) => Some("save"),
        Command::Get(_) => Some("get"),
        Command::Cat(_) => Some("cat"),
        Command::Query(_) => Some("query"),
        Command::Slice(_) => Some("slice"),
        Command::Track(_) => Some("track"),
        Command::Finish(_) => Some("finish"),
        Command::Describe(_) => Some("describe"),
        Command::Ls(_) => Some("ls"),
        Command::Search(_) => Some("search"),
        Command::Validate(_) => Some("validate"),
        Command::Schema(_) => Some("schema"),
        Command::Standardize(_) => Some("standardize"),
        Command::Records(_) => Some("records"),
        Command::Init(_) => Some("init"),
        Command::Instances(_) => Some("instances"),
        Command::Connect(_) => Some("connect"),
        Command::Transfer(_) => Some("transfer"),
        Command::ImportLamindb(_) => Some("import-lamindb"),
    };
    if let Some(verb) = verb {
        db::set_application_name(format!("lamin/{} {verb}", lamin_core::VERSION));
    }
    match command {
        Command::Daemon(args) => daemon::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Save(args) => files::save(args).await,
        Command::Get(args) => files::get(args).await,
        Command::Cat(args) => cat::run(args).await,
        Command::Query(args) => query::run(args).await,
        Command::Slice(args) => slice::run(args).await,
        Command::Track(args) => runs::track(args).await,
        Command::Finish(args) => runs::finish(args).await,
        Command::Describe(args) => find::describe(args).await,
        Command::Ls(args) => find::ls(args).await,
        Command::Search(args) => find::search_cmd(args).await,
        Command::Validate(args) => validate::validate(args).await,
        Command::Schema(args) => validate::schema(args).await,
        Command::Standardize(args) => validate::standardize(args).await,
        Command::Records(args) => records::run(args).await,
        Command::Init(args) => mesh::init(args).await,
        Command::Instances(args) => mesh::list(args).await,
        Command::Connect(args) => mesh::connect(args).await,
        Command::Transfer(args) => mesh::transfer(args).await,
        Command::ImportLamindb(args) => lamindb::run(args).await,
    }
}
