//! `lamin import`: the CLI over `lamin_sidecar::import`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use lamin_sidecar::db;
use lamin_sidecar::import::{
    import_genes, import_ontology, GenesRequest, OntologyFormat, OntologyRequest,
};

use super::progress::Bar;
use super::DbArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lamin import ontology --entity cell_type --source cl --version 2026-03-26 cl.obo
  lamin import ontology --entity tissue UBERON-ontology-v2026-04-01.json.zst
  lamin import genes --organism human --source gencode+hgnc --version v48 genes_homo_sapiens.csv.gz hgnc_entries.tsv

Each import is one transaction: a file that fails leaves the registry as it was.
scripts/import-defaults imports the default sources (scripts/default-sources.tsv).")]
pub struct ImportArgs {
    #[command(subcommand)]
    pub what: ImportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import an ontology file into a bionty registry.
    ///
    /// Example: lamin import ontology --entity cell_type --source cl --version 2026-03-26 cl.obo
    ///
    /// Formats: OBO 1.4 (.obo), OBO Graphs JSON, and the cellxgene-ontology-guide
    /// JSON files (CL-ontology-v2026-03-26.json.zst); gzip and zstd compressed
    /// files are read as they are. Re-importing the same file as the same version
    /// changes nothing; a new version updates terms in place, marks terms the
    /// new version dropped as deprecated, and becomes the current source.
    Ontology(OntologyArgs),
    /// Import gene tables of one organism into bionty.gene.
    ///
    /// Example: lamin import genes --organism human --source gencode --version v48 genes_homo_sapiens.csv.gz hgnc_entries.tsv
    ///
    /// Tables: GENCODE/Ensembl CSV (ensembl_id,symbol,version,length,biotype), HGNC TSV
    /// (aliases and previous symbols become synonyms) and MGI TSV; several tables merge
    /// by Ensembl gene id. Rows without an Ensembl id are counted and left out.
    Genes(GenesArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// From the file: .obo → OBO; JSON with "graphs" → OBO Graphs; other JSON → cellxgene.
    Auto,
    Obo,
    Obographs,
    Cellxgene,
}

#[derive(Debug, Args)]
pub struct OntologyArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The registry: cell_type, tissue, disease, phenotype, experimental_factor,
    /// developmental_stage, ethnicity, organism, pathway or cell_line.
    #[arg(long)]
    pub entity: String,
    /// Short source name (cl, uberon, …); default: from the OBO header or the cellxgene file name.
    #[arg(long)]
    pub source: Option<String>,
    /// Source version (e.g. 2026-03-26); default: from the OBO header or the cellxgene file name.
    #[arg(long)]
    pub version: Option<String>,
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    /// Keep only terms with these id prefixes (default: the registry's own, e.g. CL for cell_type).
    #[arg(long, value_delimiter = ',')]
    pub prefix: Vec<String>,
    /// Where the file came from, recorded on the source (default: the file name).
    #[arg(long)]
    pub url: Option<String>,
    /// Recorded on the source, e.g. the licence and attribution.
    #[arg(long)]
    pub description: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// The ontology file (.obo, .json, .json.zst, optionally gzip/zstd-compressed).
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct GenesArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Organism name the genes are filed under (human, mouse, …): the organism
    /// argument of search/validate/standardize.
    #[arg(long)]
    pub organism: String,
    /// Short source name (e.g. gencode, hgnc, ensembl).
    #[arg(long, default_value = "ensembl")]
    pub source: String,
    /// Source version, e.g. v48.
    #[arg(long)]
    pub version: String,
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// One or more gene tables of the organism.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

impl From<FormatArg> for OntologyFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Auto => OntologyFormat::Auto,
            FormatArg::Obo => OntologyFormat::Obo,
            FormatArg::Obographs => OntologyFormat::Obographs,
            FormatArg::Cellxgene => OntologyFormat::Cellxgene,
        }
    }
}

/// Imports are all-or-nothing, so every failure says so.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let summary = match args.what {
        ImportCommand::Ontology(a) => {
            let mut client = db::open(&a.db.database_url).await?;
            let request = OntologyRequest {
                entity: a.entity,
                source: a.source,
                version: a.version,
                format: a.format.into(),
                prefix: a.prefix,
                url: a.url,
                description: a.description,
                file: a.file,
            };
            import_ontology(&mut client, &request, &Bar::new(a.quiet)).await
        }
        ImportCommand::Genes(a) => {
            let mut client = db::open(&a.db.database_url).await?;
            let request = GenesRequest {
                organism: a.organism,
                source: a.source,
                version: a.version,
                url: a.url,
                description: a.description,
                files: a.files,
            };
            import_genes(&mut client, &request).await
        }
    }
    .context("nothing was imported")?;
    println!("{summary}");
    Ok(())
}
