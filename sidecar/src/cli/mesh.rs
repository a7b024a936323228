//! `lamin init`, `instances`, `connect` and `transfer`: the mesh of
//! instances from the command line (over `lamin_sidecar::mesh`).

use std::io::{BufRead, Write};

use anyhow::Context;
use clap::Args;
use lamin_sidecar::mesh::instances::{self, InitRequest, TEMPLATE};
use lamin_sidecar::mesh::transfer::{self, TransferRequest};

use super::progress::Bar;
use super::DbArgs;

#[derive(Debug, Args)]
#[command(after_help = "Example:
  lamin init lab_b --storage /data/lab_b       # on the server of DATABASE_URL
  eval \"$(lamin connect lab_b)\"                # use it in this shell

A server whose scripts/up made the template database lamin_template gives a
new instance the default ontologies in seconds. Prints the new instance's URL
(without the password when it came from DATABASE_URL's).")]
pub struct InitArgs {
    /// The new instance's name (also its database's): lowercase letters, digits, _.
    pub name: String,
    /// A database on the server to make it on (the caller needs CREATEDB).
    #[command(flatten)]
    pub db: DbArgs,
    /// The default storage root of the new instance (/abs/path, s3://, gs://, az://).
    #[arg(long)]
    pub storage: Option<String>,
    /// What the instance holds.
    #[arg(long)]
    pub description: Option<String>,
    /// The template database to clone.
    #[arg(long, default_value = TEMPLATE)]
    pub template: String,
    /// Copy the template even while its default ontologies are still being
    /// imported (the new instance lacks those not in yet).
    #[arg(long)]
    pub incomplete_template: bool,
}

#[derive(Debug, Args)]
pub struct InstancesArgs {
    /// A database on the server whose instances to list.
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:
  eval \"$(lamin connect lab_b)\"
  lamin connect lab_b --env-file .lamin/lab_b.env && . .lamin/lab_b.env")]
pub struct ConnectArgs {
    /// The instance's name (a database on the server of DATABASE_URL).
    pub name: String,
    #[command(flatten)]
    pub db: DbArgs,
    /// Write the environment into this file (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lamin transfer 3Fq9fTzEwJ1lRkWv0000 --from lab_a --to lab_b
  lamin transfer --from lab_a --to postgresql://me@other:5432/lab_c --copy \\
      --query \"SELECT uid FROM lamin.artifacts WHERE key LIKE 'runs/2026/%'\"
  lamin ls runs/ | lamin transfer - --from lab_a --to lab_b

Prints one line per record: kind, source uid, uid here, and what happened
(created, linked: the same content was there, exists: the same record was).")]
pub struct TransferArgs {
    /// Artifact and collection uids (a collection brings its members); - reads them from stdin.
    pub uids: Vec<String>,
    /// The source: an instance name on the server of DATABASE_URL, or a URL.
    #[arg(long)]
    pub from: String,
    /// The target: an instance name on the server of DATABASE_URL, or a URL.
    #[arg(long)]
    pub to: String,
    /// A query run on the source whose first column is uids to transfer.
    #[arg(long, value_name = "SQL")]
    pub query: Option<String>,
    /// Copy the bytes into a storage of the target (hash-checked); without it the
    /// target points at the source's storage, which it must reach.
    #[arg(long)]
    pub copy: bool,
    /// With --copy: the target storage (uid or root; default: the target's default).
    #[arg(long, requires = "copy")]
    pub storage: Option<String>,
    /// The space of the target the records go to (default: "all").
    #[arg(long)]
    pub space: Option<String>,
    /// The server instance names are resolved on.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub async fn init(args: InitArgs) -> anyhow::Result<()> {
    let created = instances::init(&InitRequest {
        server_url: args.db.database_url,
        name: args.name,
        storage: args.storage,
        description: args.description,
        template: args.template,
        incomplete_template: args.incomplete_template,
    })
    .await?;
    eprintln!(
        "instance {} (uid {}) made in {:.1} s{}",
        created.name,
        created.uid,
        created.elapsed.as_secs_f64(),
        if created.from_template {
            ", from the template"
        } else {
            ", without ontologies (no template on this server)"
        }
    );
    println!("{}", lamin_sidecar::db::redact(&created.url));
    Ok(())
}

pub async fn list(args: InstancesArgs) -> anyhow::Result<()> {
    let found = instances::list(&args.db.database_url).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "name\tuid\tversion\tartifacts\tsize")?;
    for i in found {
        let name = if i.is_template {
            format!("{} (template)", i.name)
        } else {
            i.name
        };
        writeln!(
            out,
            "{name}\t{}\t{}\t{}\t{:.1} MB",
            i.uid.as_deref().unwrap_or("-"),
            i.version,
            i.artifacts,
            i.bytes as f64 / 1e6
        )?;
    }
    Ok(())
}

pub async fn connect(args: ConnectArgs) -> anyhow::Result<()> {
    let url = instances::with_database(&args.db.database_url, &args.name)?;
    // Only a lamin instance of a release this CLI speaks.
    lamin_sidecar::db::open(&url)
        .await
        .with_context(|| format!("cannot use instance {}", args.name))?;
    let env = format!(
        "export DATABASE_URL='{}'\nexport PGDATABASE='{}'\n",
        url.replace('\'', "'\\''"),
        args.name
    );
    match args.env_file {
        None => print!("{env}"),
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            file.write_all(env.as_bytes())?;
            eprintln!("wrote {} (source it: . {})", path.display(), path.display());
        }
    }
    Ok(())
}

pub async fn transfer(args: TransferArgs) -> anyhow::Result<()> {
    let base = args.database_url.as_deref();
    let from_url = instances::resolve(&args.from, base)?;
    let to_url = instances::resolve(&args.to, base)?;
    let mut uids: Vec<String> = Vec::new();
    for u in &args.uids {
        if u == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                // The first field of each line (lamin ls prints the uid
                // first, in its table and CSV forms, under a header).
                match line
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .find(|f| !f.is_empty())
                {
                    Some("uid") | None => {}
                    Some(uid) => uids.push(uid.to_string()),
                }
            }
        } else {
            uids.push(u.clone());
        }
    }
    if let Some(query) = &args.query {
        uids.extend(transfer::query_uids(&from_url, query).await?);
    }
    let summary = transfer::transfer(
        &TransferRequest {
            from_url,
            to_url,
            uids,
            copy: args.copy,
            storage: args.storage,
            space: args.space,
        },
        &Bar::new(args.quiet),
    )
    .await?;
    let mut out = std::io::stdout().lock();
    for r in &summary.records {
        writeln!(out, "{}\t{}\t{}\t{}", r.kind, r.source_uid, r.uid, r.action)?;
    }
    let created = summary
        .records
        .iter()
        .filter(|r| r.action == "created")
        .count();
    eprintln!(
        "{} records: {created} created, {} linked to what was there, {} there already; {} objects copied ({} bytes)",
        summary.records.len(),
        summary.records.iter().filter(|r| r.action == "linked").count(),
        summary.records.iter().filter(|r| r.action == "exists").count(),
        summary.objects_copied,
        summary.bytes_copied
    );
    Ok(())
}
