//! `lamin ls`, `lamin search` and `lamin describe`: finding and reading
//! records (the CLI over `lamin_sidecar::listing` and `artifacts::describe`).

use anyhow::bail;
use clap::Args;
use lamin_sidecar::artifacts::describe::describe_record;
use lamin_sidecar::listing::{list_artifacts, search, ListRequest, SearchRequest};

use super::output::{human_size, print_rows, RowFormat};
use super::reading::{ReadArgs, Reading};
use super::DbArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lamin ls raw/                               # latest versions under raw/
  lamin ls --label 'T cell' --format csv
  lamin ls --feature tissue=lung --feature donor=d1 --all-versions")]
pub struct LsArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Only keys starting with this, e.g. raw/.
    pub prefix: Option<String>,
    /// Only artifacts in this space (name or uid).
    #[arg(long)]
    pub space: Option<String>,
    /// Only artifacts with this label (by name; repeat for all of several).
    #[arg(long, value_name = "NAME")]
    pub label: Vec<String>,
    /// Only artifacts whose feature has this value: name=value (repeat for all of several).
    #[arg(long, value_name = "NAME=VALUE")]
    pub feature: Vec<String>,
    /// Every version, not only the latest of each.
    #[arg(long)]
    pub all_versions: bool,
    /// At most this many rows.
    #[arg(long)]
    pub limit: Option<i64>,
    /// table (aligned, for people), csv or json (one object per line), the last two with every field.
    #[arg(long, value_enum, default_value = "table")]
    pub format: RowFormat,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lamin search 'CD8 T cell' --registry bionty.cell_type --limit 5
  lamin search CD4 --registry bionty.gene --organism human --format csv")]
pub struct SearchArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    /// What to look for: a name, synonym, id or words of them (typos are forgiven).
    pub query: String,
    /// The registry, e.g. bionty.cell_type or lamin.ulabel (default: every searchable one).
    #[arg(long)]
    pub registry: Option<String>,
    /// At most this many hits.
    #[arg(long, default_value_t = 20)]
    pub limit: i32,
    /// For genes: the organism (e.g. human).
    #[arg(long)]
    pub organism: Option<String>,
    /// Only this term (ontology id, e.g. CL:0000084) and its descendants.
    #[arg(long)]
    pub under: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: RowFormat,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    /// A record's uid (artifact, collection, run, transform, …) or an artifact's key.
    pub uid: String,
}

pub async fn ls(args: LsArgs) -> anyhow::Result<()> {
    let mut features = Vec::new();
    for f in &args.feature {
        match f.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                features.push((name.trim().to_string(), value.to_string()))
            }
            _ => bail!("--feature {f:?}: expected name=value, e.g. --feature tissue=lung"),
        }
    }
    if args.limit.is_some_and(|n| n < 0) {
        bail!("--limit must not be negative");
    }
    let reading = Reading::open(&args.db, &args.read).await?;
    let client = reading.reader();
    let request = ListRequest {
        prefix: args.prefix,
        space: args.space,
        labels: args.label,
        features,
        all_versions: args.all_versions,
        limit: args.limit,
    };
    let rows = list_artifacts(client, &request).await?;
    if rows.is_empty() && args.format == RowFormat::Table {
        eprintln!("no artifacts match");
        return Ok(());
    }
    let mut header = vec!["uid", "key", "size", "status", "space", "created_at"];
    if args.all_versions {
        header.insert(2, "version");
        header.insert(3, "latest");
    }
    print_rows(&rows, args.format, &header, |r| {
        let mut cells = vec![
            r.uid.clone(),
            r.key.clone().unwrap_or_default(),
            human_size(r.size),
            r.status.clone(),
            r.space.clone(),
            r.created_at.clone(),
        ];
        if args.all_versions {
            cells.insert(2, r.version.clone().unwrap_or_default());
            cells.insert(3, if r.is_latest { "yes" } else { "" }.to_string());
        }
        cells
    })
}

pub async fn search_cmd(args: SearchArgs) -> anyhow::Result<()> {
    if args.limit < 1 {
        bail!("--limit must be at least 1");
    }
    let reading = Reading::open(&args.db, &args.read).await?;
    let client = reading.reader();
    let request = SearchRequest {
        query: args.query,
        registry: args.registry,
        limit: Some(args.limit),
        organism: args.organism,
        under: args.under,
    };
    let hits = search(client, &request).await?;
    if hits.is_empty() && args.format == RowFormat::Table {
        eprintln!("nothing found");
        return Ok(());
    }
    print_rows(
        &hits,
        args.format,
        &["registry", "uid", "name", "matched", "score"],
        |h| {
            vec![
                h.registry.clone(),
                h.uid.clone(),
                h.name.clone(),
                h.matched.clone(),
                format!("{:.2}", h.score),
            ]
        },
    )
}

pub async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let reading = Reading::open(&args.db, &args.read).await?;
    let client = reading.reader();
    let doc = describe_record(client, &args.uid).await?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
