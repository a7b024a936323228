//! `lamin import`: public ontologies and gene tables into the bionty registries.
//!
//! Files are parsed on a thread of their own and streamed through a bounded
//! channel into a binary COPY, so memory stays flat however large the file.

mod cellxgene;
mod genes;
mod input;
mod load;
mod obo;
mod obographs;
mod term;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::progress::Progress;
use load::{Feed, Outcome, SourceMeta};

/// The parser of an ontology file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OntologyFormat {
    /// From the file: .obo → OBO; JSON with "graphs" → OBO Graphs; other JSON → cellxgene.
    Auto,
    Obo,
    Obographs,
    Cellxgene,
}

/// One ontology file into one bionty registry.
#[derive(Debug, Clone)]
pub struct OntologyRequest {
    /// The registry: cell_type, tissue, … (with or without `bionty.`).
    pub entity: String,
    /// Short source name (cl, uberon, …); None: from the OBO header or the cellxgene file name.
    pub source: Option<String>,
    /// Source version; None: from the OBO header or the cellxgene file name.
    pub version: Option<String>,
    pub format: OntologyFormat,
    /// Keep only terms with these id prefixes (empty: the registry's own).
    pub prefix: Vec<String>,
    /// Where the file came from (None: the file name).
    pub url: Option<String>,
    pub description: Option<String>,
    pub file: PathBuf,
}

/// The gene tables of one organism into bionty.gene.
#[derive(Debug, Clone)]
pub struct GenesRequest {
    pub organism: String,
    pub source: String,
    pub version: String,
    pub url: Option<String>,
    pub description: Option<String>,
    pub files: Vec<PathBuf>,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Which parser a file needs.
fn detect_format(path: &Path, format: OntologyFormat) -> anyhow::Result<OntologyFormat> {
    if !matches!(format, OntologyFormat::Auto) {
        return Ok(format);
    }
    let name = file_name(path).to_lowercase();
    if name.ends_with(".obo") || name.ends_with(".obo.gz") || name.ends_with(".obo.zst") {
        return Ok(OntologyFormat::Obo);
    }
    let mut head = input::open_decoded(path, Arc::new(AtomicU64::new(0)))?;
    let buf = head
        .fill_buf()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&buf[..buf.len().min(4096)]);
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix('{') {
        let first_key = rest.trim_start();
        Ok(if first_key.starts_with("\"graphs\"") {
            OntologyFormat::Obographs
        } else {
            OntologyFormat::Cellxgene
        })
    } else if trimmed.starts_with("format-version:") || trimmed.starts_with("[Term]") {
        Ok(OntologyFormat::Obo)
    } else {
        bail!(
            "{}: cannot tell the format (not OBO, not JSON); pass --format",
            path.display()
        )
    }
}

fn summary(meta: &SourceMeta, o: &Outcome, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    let rate = o.terms as f64 / secs.max(1e-9);
    format!(
        "imported {} from {} {}{}: {} records ({} new, {} changed, {} deprecated){} in {:.1} s ({:.0} records/s, peak memory {} MB)",
        meta.entity,
        meta.name,
        meta.version,
        meta.organism.as_deref().map(|o| format!(" ({o})")).unwrap_or_default(),
        o.terms,
        o.inserted,
        o.updated,
        o.deprecated,
        if meta.entity == "bionty.gene" {
            String::new()
        } else {
            format!(
                ", {} parent edges ({} to terms outside the registry left out){}",
                o.edges,
                o.edges_outside,
                if o.skipped_prefix > 0 {
                    format!(", {} terms of other ontologies left out", o.skipped_prefix)
                } else {
                    String::new()
                }
            )
        },
        secs,
        rate,
        input::peak_rss_bytes() / (1 << 20)
    )
}

/// Import one ontology file; returns the summary line.
///
/// `client` acts as the importing role; the import is one transaction on it.
pub async fn import_ontology(
    client: &mut Client,
    args: &OntologyRequest,
    progress: &dyn Progress,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let path = args.file.clone();
    let what = file_name(&path);
    if !path.is_file() {
        bail!("{}: no such file", path.display());
    }
    let entity = format!("bionty.{}", args.entity.trim_start_matches("bionty."));
    let own_prefixes = load::registry_prefixes(client, &entity).await?;
    let prefixes = if args.prefix.is_empty() {
        own_prefixes
    } else {
        args.prefix.clone()
    };
    let format = detect_format(&path, args.format)?;
    let checksum = input::sha256_file(&path)?;

    // Source name and version: flags, else the file itself.
    let from_name = cellxgene::name_and_version_from_file_name(&what);
    let obo_header = if matches!(format, OntologyFormat::Obo)
        && (args.source.is_none() || args.version.is_none())
    {
        let reader = input::open_decoded(&path, Arc::new(AtomicU64::new(0)))?;
        Some(obo::read_header(reader, &what)?)
    } else {
        None
    };
    let name = args
        .source
        .clone()
        .or_else(|| obo_header.as_ref().and_then(|h| h.ontology.clone()))
        .or_else(|| from_name.as_ref().map(|n| n.0.clone()))
        .with_context(|| format!("{what}: cannot tell the source name; pass --source (e.g. cl)"))?;
    let version = args
        .version
        .clone()
        .or_else(|| obo_header.as_ref().and_then(|h| h.data_version.clone()))
        .or_else(|| from_name.as_ref().map(|n| n.1.clone()))
        .with_context(|| format!("{what}: cannot tell the version; pass --version"))?;
    let meta = SourceMeta {
        entity: entity.clone(),
        organism: None,
        name,
        version,
        url: args.url.clone().unwrap_or_else(|| what.clone()),
        checksum,
        description: args.description.clone(),
    };

    if load::already_imported(client, &meta).await? {
        return Ok(format!(
            "{} {} {} is already imported from this file (sha256 {}…): nothing to do",
            meta.entity,
            meta.name,
            meta.version,
            &meta.checksum[..12]
        ));
    }

    let total = std::fs::metadata(&path)?.len();
    let read = Arc::new(AtomicU64::new(0));
    progress.start(&format!("reading {} {}", meta.entity, meta.version), total);
    let reported = AtomicU64::new(0);
    let (tx, rx) = mpsc::channel::<Feed>(4096);
    let parse_path = path.clone();
    let parse_read = read.clone();
    let parser = std::thread::spawn(move || {
        let parse = || -> anyhow::Result<()> {
            let input = input::open_decoded(&parse_path, parse_read)?;
            let what = file_name(&parse_path);
            let send = |t: term::Term| {
                tx.blocking_send(Feed::Term(t))
                    .map_err(|_| anyhow::anyhow!("the database side stopped"))
            };
            match format {
                OntologyFormat::Obo => obo::read_obo(input, &what, send).map(|_| ()),
                OntologyFormat::Obographs => {
                    obographs::read_obographs(input, &what, send).map(|_| ())
                }
                _ => cellxgene::read_cellxgene(input, &what, send).map(|_| ()),
            }
        };
        let last = match parse() {
            Ok(()) => Feed::End,
            Err(e) => Feed::Failed(e),
        };
        let _ = tx.blocking_send(last);
    });
    let loaded = load::import_terms(
        client,
        &meta,
        &prefixes,
        rx,
        |n| {
            if n % 2048 == 0 {
                // Progress hears of the bytes read since it last heard.
                let now = read.load(Ordering::Relaxed);
                progress.add(now - reported.swap(now, Ordering::Relaxed));
            }
        },
        // The merge reports nothing until it ends: a stage without a total.
        |staged| {
            progress.finish();
            progress.start(&format!("merging {staged} terms into {}", meta.entity), 0);
        },
    )
    .await;
    progress.finish();
    if parser.join().is_err() {
        bail!("the {what} parser panicked");
    }
    let outcome = loaded?;
    Ok(summary(&meta, &outcome, started))
}

/// Import the gene tables of one organism; returns the summary line.
///
/// `client` acts as the importing role; the import is one transaction on it.
pub async fn import_genes(client: &mut Client, args: &GenesRequest) -> anyhow::Result<String> {
    let started = Instant::now();
    if args.organism.trim().is_empty() {
        bail!("--organism must not be empty");
    }
    let mut checksums = Vec::new();
    for path in &args.files {
        if !path.is_file() {
            bail!("{}: no such file", path.display());
        }
        checksums.push(input::sha256_file(path)?);
    }
    // One checksum for the set of files: sha256 over their sha256s in order.
    let checksum = if checksums.len() == 1 {
        checksums[0].clone()
    } else {
        lamin_core::content::sha256_hex(checksums.join("\n").as_bytes())
    };
    let names: Vec<String> = args.files.iter().map(|p| file_name(p)).collect();
    let meta = SourceMeta {
        entity: "bionty.gene".to_string(),
        organism: Some(args.organism.clone()),
        name: args.source.clone(),
        version: args.version.clone(),
        url: args.url.clone().unwrap_or_else(|| names.join(" + ")),
        checksum,
        description: args.description.clone(),
    };
    if load::already_imported(client, &meta).await? {
        return Ok(format!(
            "bionty.gene {} {} ({}) is already imported from these files: nothing to do",
            meta.name, meta.version, args.organism
        ));
    }
    let files = args.files.clone();
    let set = tokio::task::spawn_blocking(move || -> anyhow::Result<genes::GeneSet> {
        let mut set = genes::GeneSet::default();
        for path in &files {
            let input = input::open_decoded(path, Arc::new(AtomicU64::new(0)))?;
            set.read(input, &file_name(path))?;
        }
        set.tidy();
        Ok(set)
    })
    .await??;
    if set.genes.is_empty() {
        bail!(
            "no genes with an Ensembl id in {}: nothing imported",
            names.join(", ")
        );
    }
    let outcome = load::import_genes(client, &meta, set.genes.values()).await?;
    let mut text = summary(&meta, &outcome, started);
    if set.without_ensembl > 0 {
        text.push_str(&format!(
            "\n({} rows without an Ensembl gene id left out)",
            set.without_ensembl
        ));
    }
    Ok(text)
}
