//! `lamin validate` and `lamin schema from-file`: the CLI over
//! `lamin_sidecar::validation` (`lamin save --schema` is in `files`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use lamin_sidecar::db;
use lamin_sidecar::refused;
use lamin_sidecar::runs::use_run;
use lamin_sidecar::validation::standardize::{
    standardize as standardize_artifact, StandardizeRequest,
};
use lamin_sidecar::validation::{self, problem_lines, ValidateRequest};
use serde_json::Value;

use super::progress::Bar;
use super::DbArgs;

#[derive(Debug, Args)]
#[command(
    after_help = "Prints one line per problem on stdout (nothing when the dataset passes),
a summary on stderr; exits 1 when the dataset does not meet the schema.
The verdict is recorded on the artifact: SELECT * FROM lamin.validation_report(uid)."
)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The artifact (uid) to validate: parquet, CSV/TSV, h5ad or AnnData zarr.
    pub uid: String,
    /// The schema (uid or name).
    #[arg(long)]
    pub schema: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Values a registry knows by another name (synonyms, other case) are written as
its names into a copy, saved as a new version of the artifact (the existing
version's bytes never change) and validated. Prints the new version's uid."
)]
pub struct StandardizeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The artifact (uid): parquet, CSV/TSV or h5ad.
    pub uid: String,
    /// The schema (uid or name) whose categorical features name the registries.
    #[arg(long)]
    pub schema: String,
    /// The run (uid) that makes the new version.
    #[arg(long, env = "LAMIN_RUN")]
    pub run: Option<String>,
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[command(subcommand)]
    pub command: SchemaCommand,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Make a schema from the columns of a sample file (features made when
    /// missing; existing features keep their dtypes); prints its uid.
    FromFile(FromFileArgs),
}

#[derive(Debug, Args)]
pub struct FromFileArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// A parquet, CSV/TSV, h5ad file or AnnData zarr store.
    pub file: PathBuf,
    /// The schema's name (`--schema NAME` of `lamin save` and `lamin validate`).
    #[arg(long)]
    pub name: String,
}

/// The summary and problems of a verdict: the problems on stdout when they
/// are the verb's result (else on stderr), the sentence on stderr. Returns
/// whether the dataset passed.
pub fn report(what: &str, verdict: &Value, problems_are_result: bool) -> bool {
    let passed = verdict["passed"] == true;
    let schema = verdict["schema_name"]
        .as_str()
        .or(verdict["schema"].as_str())
        .unwrap_or("?");
    for line in problem_lines(verdict) {
        if problems_are_result {
            println!("{line}");
        } else {
            eprintln!("{line}");
        }
    }
    if passed {
        eprintln!("{what} meets schema {schema:?}");
    } else {
        eprintln!(
            "{what} does not meet schema {schema:?}: {} problem(s)",
            verdict["n_problems"]
        );
    }
    passed
}

/// Validate a stored artifact against a schema, recording the verdict.
pub async fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let client = db::open(&args.db.database_url).await?;
    let request = ValidateRequest {
        uid: args.uid,
        schema: args.schema,
    };
    let verdict = validation::validate(&client, &request).await?;
    if report(&format!("artifact {}", request.uid), &verdict, true) {
        Ok(())
    } else {
        Err(refused!(
            "artifact {} is not validated; fix the problems above and save a new version (`lamin standardize` writes synonyms as their registry names into one)",
            request.uid
        ))
    }
}

/// Standardize an artifact into a new, validated version.
pub async fn standardize(args: StandardizeArgs) -> anyhow::Result<()> {
    let client = db::open(&args.db.database_url).await?;
    use_run(&client, args.run.as_deref()).await?;
    let request = StandardizeRequest {
        uid: args.uid,
        schema: args.schema,
        run: args.run,
    };
    let done = standardize_artifact(&client, &request, &Bar::new(args.quiet)).await?;
    println!("{}", done.uid);
    for (column, n) in &done.replaced {
        eprintln!("{column}: {n} value(s) standardized");
    }
    report(
        &format!("new version {} of {}", done.uid, done.revises),
        &done.verdict,
        false,
    );
    Ok(())
}

/// `lamin schema …`.
pub async fn schema(args: SchemaArgs) -> anyhow::Result<()> {
    match args.command {
        SchemaCommand::FromFile(args) => {
            let client = db::open(&args.db.database_url).await?;
            let made = validation::schema_from_file(&client, &args.file, &args.name).await?;
            println!("{}", made["schema"].as_str().unwrap_or_default());
            let created: Vec<&str> = made["created"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !created.is_empty() {
                eprintln!("new features: {}", created.join(", "));
            }
            for c in made["conflicts"].as_array().into_iter().flatten() {
                eprintln!(
                    "note: column {} is {} in the file; the existing feature has dtype {}, which the schema uses",
                    c["column"], c["column_dtype"], c["feature_dtype"]
                );
            }
            Ok(())
        }
    }
}
