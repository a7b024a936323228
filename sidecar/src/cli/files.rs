//! `lamin save` and `lamin get`: the CLI over `artifacts::save` and `artifacts::get`.

use std::path::PathBuf;

use clap::Args;
use lamin_sidecar::artifacts::get::{get as get_artifact, GetRequest};
use lamin_sidecar::artifacts::save::{
    check_request, conflicts_by_slot, save as save_artifact, SaveRequest, Saved,
};
use lamin_sidecar::db;
use lamin_sidecar::refused;
use lamin_sidecar::runs::use_run;
use lamin_sidecar::validation::{problem_lines, save_with_schema};
use serde_json::Value;

use super::progress::Bar;
use super::reading::{ReadArgs, Reading};
use super::DbArgs;

#[derive(Debug, Args)]
pub struct SaveArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The file or folder to save.
    pub file: PathBuf,
    /// Key (path within the storage, e.g. raw/cells.parquet); a key that names
    /// an artifact already makes a new version of it.
    #[arg(long)]
    pub key: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Storage root or uid (default: the default storage).
    #[arg(long)]
    pub storage: Option<String>,
    /// The run (uid, from `lamin track` or a committed lamin.track) that creates this artifact.
    #[arg(long, env = "LAMIN_RUN")]
    pub run: Option<String>,
    /// The space (name or uid) the artifact goes to (default: "all"); needs write on it.
    #[arg(long, env = "LAMIN_SPACE")]
    pub space: Option<String>,
    /// Save as a new version of this artifact (uid), whatever the key.
    #[arg(long, value_name = "UID")]
    pub revises: Option<String>,
    /// Validate the dataset against this schema (uid or name) first: a
    /// passing artifact gets the schema and the labels of its categorical
    /// columns; the problems of a failing one are printed on stderr.
    #[arg(long)]
    pub schema: Option<String>,
    /// With --schema: refuse a dataset that does not meet the schema (nothing is stored; exit 1).
    #[arg(long, requires = "schema")]
    pub strict: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Artifact uid (20 characters), stem (16: the latest version) or key
    /// (the latest version under it that you can read).
    #[arg(value_name = "UID_OR_KEY")]
    pub uid: String,
    /// Where to write: a file path, or a folder (ending with / or existing)
    /// to write the key's file name (else uid + suffix) into; default: the current folder.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// The run (uid, from `lamin track` or a committed lamin.track) that reads this artifact: recorded as one of its inputs.
    #[arg(long, env = "LAMIN_RUN")]
    pub run: Option<String>,
    #[command(flatten)]
    pub read: ReadArgs,
    #[arg(long, short)]
    pub quiet: bool,
}

/// One sentence per column whose existing feature has another dtype.
fn conflict_warnings(uid: &str, table: &Value) -> Vec<String> {
    conflicts_by_slot(table)
        .into_iter()
        .map(|(slot, c)| {
            let text = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
            let (column, in_file, feature) =
                (text("column"), text("column_dtype"), text("feature_dtype"));
            let slot = if slot.is_empty() { slot } else { format!("{slot} ") };
            format!(
                "warning: {uid}: {slot}column {column:?} is {in_file} in the file, but the existing feature {column:?} has dtype {feature}; the feature is kept as it is. To record the column as {in_file}, rename it in the file (a new feature is made), or change the feature if {feature} is wrong: UPDATE lamin.feature SET dtype = '{in_file}' WHERE name = '{}'",
                column.replace('\'', "''")
            )
        })
        .collect()
}

/// Save; print the uid alone on stdout, notes and warnings on stderr.
pub async fn save(args: SaveArgs) -> anyhow::Result<()> {
    let request = SaveRequest {
        path: args.file,
        key: args.key,
        description: args.description,
        storage: args.storage,
        run: args.run,
        space: args.space,
        revises: args.revises,
    };
    // A bad key is refused before connecting.
    check_request(&request)?;
    let client = db::open(&args.db.database_url).await?;
    // A run that is not found gets its explanation before anything is hashed.
    use_run(&client, request.run.as_deref()).await?;
    let (saved, checked) = match &args.schema {
        None => (
            save_artifact(&client, &request, &Bar::new(args.quiet)).await?,
            None,
        ),
        Some(schema) => {
            let checked = save_with_schema(
                &client,
                &request,
                schema,
                args.strict,
                &Bar::new(args.quiet),
            )
            .await?;
            let Some(saved) = checked.outcome.clone() else {
                for line in problem_lines(&checked.verdict) {
                    eprintln!("{line}");
                }
                return Err(refused!(
                    "{} does not meet schema {schema:?} ({} problem(s) above); --strict: nothing was saved",
                    request.path.display(),
                    checked.verdict["n_problems"]
                ));
            };
            (saved, Some(checked))
        }
    };
    let uid = &saved.uid;
    println!("{uid}");
    if let Some(checked) = &checked {
        for line in problem_lines(&checked.verdict) {
            eprintln!("{line}");
        }
        let schema = args.schema.as_deref().unwrap_or_default();
        match (&checked.not_recorded, checked.verdict["passed"] == true) {
            (Some(why), _) => eprintln!("warning: {uid}: the validation is not recorded: {why}"),
            (None, true) => eprintln!("{uid} meets schema {schema:?}: validated"),
            (None, false) => eprintln!(
                "warning: {uid} is saved but does not meet schema {schema:?} ({} problem(s) above): not validated; --strict refuses such files",
                checked.verdict["n_problems"]
            ),
        }
    }
    // Known content: the library's sentence names the record that came back.
    let note = saved
        .note
        .clone()
        .unwrap_or_else(|| format!("{uid}: the same content is already saved: nothing uploaded"));
    match saved.saved {
        Saved::Uploaded => {}
        Saved::Known => eprintln!("note: {note}"),
        Saved::PendingElsewhere => {
            eprintln!("note: {note}; the artifact is pending until that upload finishes")
        }
    }
    if let Some(table) = &saved.table {
        for w in conflict_warnings(uid, table) {
            eprintln!("{w}");
        }
    }
    if let Some(w) = &saved.warning {
        eprintln!("warning: {uid} is saved as plain bytes: {w}");
    }
    Ok(())
}

/// Get; print where the file went (alone on stdout).
pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let reading = Reading::open(&args.db, &args.read).await?;
    let request = GetRequest {
        uid: args.uid,
        to: args.to,
        run: args.run,
    };
    let dest = get_artifact(
        reading.reader(),
        &reading.primary,
        &request,
        &Bar::new(args.quiet),
    )
    .await?;
    println!("{}", dest.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_conflict_is_one_sentence_naming_column_dtypes_and_what_to_do() {
        let table = serde_json::json!({
            "conflicts": [{"column": "is_doublet", "column_dtype": "bool", "feature_dtype": "str"}],
            "obs": {"conflicts": [{"column": "n", "column_dtype": "int", "feature_dtype": "float"}]}
        });
        let w = conflict_warnings("U", &table);
        assert_eq!(w.len(), 2);
        assert!(
            w[0].contains("column \"is_doublet\" is bool in the file"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("has dtype str"), "{}", w[0]);
        assert!(w[0].contains("rename it"), "{}", w[0]);
        assert!(w[1].contains("obs column \"n\""), "{}", w[1]);
        assert!(!w[0].contains('{'), "no JSON: {}", w[0]);
    }
}
