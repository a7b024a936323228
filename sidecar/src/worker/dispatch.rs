//! The work of one job, by kind: the job's arguments become the request of
//! a library function, which runs on a connection acting as the requester;
//! its typed result becomes the job's result.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tokio_postgres::Client;

use super::job::{resolve_inside, Args, Failure, Job, Kind, WorkerContext, SIDECAR_ROLE};
use crate::artifacts::cleanup::{delete_object, sweep_storage, DeleteObjectRequest, SweepRequest};
use crate::artifacts::register::{register, RegisterRequest};
use crate::artifacts::stage::{stage, StageRequest};
use crate::artifacts::verify::{verify, VerifyRequest};
use crate::error::DbError;
use crate::import::{import_genes, import_ontology, GenesRequest, OntologyFormat, OntologyRequest};
use crate::progress::Counter;
use crate::refused;
use crate::validation::standardize::{standardize, StandardizeRequest};
use crate::validation::{validate, ValidateRequest};
use crate::warehouse::curate::{curate, CurateRequest};
use crate::warehouse::export::{export, ExportRequest};
use crate::warehouse::load::{load, LoadRequest};

/// A typed result as the job's result (jsonb).
fn result(value: impl Serialize) -> Result<Value, Failure> {
    serde_json::to_value(value).map_err(|e| Failure::Permanent(e.into()))
}

/// Run the work of `job`; `client` is the sidecar's own connection.
pub async fn execute(
    client: &Client,
    ctx: &WorkerContext,
    job: &Job,
    progress: &Counter,
) -> Result<Value, Failure> {
    if let Some(problem) = job.args.get("__invalid_args").and_then(Value::as_str) {
        return Err(Failure::Permanent(refused!("{problem}")));
    }
    let Some(kind) = Kind::parse(&job.kind) else {
        return Err(Failure::Permanent(refused!(
            "this sidecar (lamin {}) cannot run jobs of kind {:?}",
            lamin_core::VERSION,
            job.kind
        )));
    };
    if kind.is_internal() {
        check_internal(ctx, job)?;
    }
    let args = Args(&job.args);
    match kind {
        Kind::Noop => Ok(json!({})),
        Kind::Sleep => sleep(client, job, &args).await,
        Kind::Fail => {
            let message = args
                .opt_str("message")
                .unwrap_or_else(|| "failed on purpose".into());
            let e = anyhow::anyhow!("{message}");
            Err(if args.bool_or("permanent", false) {
                Failure::Permanent(e)
            } else {
                Failure::Retry(e)
            })
        }
        // Database work of these jobs runs as their requester (its own connection).
        Kind::Register => {
            let request = RegisterRequest {
                uid: args.str("uid")?,
            };
            result(register(&ctx.connect_as(job).await?, &request, progress).await?)
        }
        Kind::Stage => {
            let request = StageRequest {
                uid: args.str("uid")?,
                cache_dir: ctx.cache_dir.clone(),
            };
            result(stage(&ctx.connect_as(job).await?, &request, progress).await?)
        }
        Kind::Verify => {
            let request = VerifyRequest {
                uid: args.opt_str("uid"),
            };
            result(verify(&ctx.connect_as(job).await?, &request, progress).await?)
        }
        // Internal jobs: on the sidecar's own connection, which sees every artifact.
        Kind::DeleteObject => {
            let request = DeleteObjectRequest {
                uid: args.str("uid")?,
                object: args.str("object")?,
                storage_id: args.i64("storage_id")?,
                folder: args.bool_or("folder", false),
            };
            result(delete_object(client, &request).await?)
        }
        Kind::SweepStorage => {
            let request = SweepRequest {
                storage_id: args.i64("storage_id")?,
                grace_s: args.opt_i64("grace_s").unwrap_or(3600),
            };
            // Its own connection: the sweep's row locks need transactions of their own.
            result(sweep_storage(&mut ctx.connect_as(job).await?, &request).await?)
        }
        Kind::Load => {
            let request = LoadRequest {
                uid: args.str("uid")?,
                schema: args.str("schema")?,
                table: args.str("table")?,
            };
            result(load(&mut ctx.connect_as(job).await?, &request, progress).await?)
        }
        Kind::Export => {
            let request = ExportRequest {
                query: args.str("query")?,
                key: args.str("key")?,
                run: args.opt_str("run"),
                space: args.opt_str("space"),
                scratch_dir: ctx.cache_dir.clone(),
            };
            result(export(&mut ctx.connect_as(job).await?, &request, progress).await?)
        }
        Kind::Curate => {
            let request = CurateRequest {
                uid: args.str("uid")?,
                column: args.str("column")?,
                registry: args.str("registry")?,
                field: args.opt_str("field"),
            };
            result(curate(&ctx.connect_as(job).await?, &request, progress).await?)
        }
        Kind::Validate => {
            let request = ValidateRequest {
                uid: args.str("uid")?,
                schema: args.str("schema")?,
            };
            result(validate(&ctx.connect_as(job).await?, &request).await?)
        }
        Kind::Standardize => {
            let request = StandardizeRequest {
                uid: args.str("uid")?,
                schema: args.str("schema")?,
                run: args.opt_str("run"),
            };
            result(standardize(&ctx.connect_as(job).await?, &request, progress).await?)
        }
        Kind::ImportOntology => {
            let request = OntologyRequest {
                entity: args.str("entity")?,
                source: args.opt_str("source"),
                version: args.opt_str("version"),
                format: OntologyFormat::Auto,
                prefix: Vec::new(),
                url: None,
                description: args.opt_str("description"),
                file: import_path(ctx, args.opt_str("file").as_deref())?,
            };
            let mut conn = connect_checked(ctx, job).await?;
            let summary = import_ontology(&mut conn, &request, progress)
                .await
                .map_err(|e| Failure::from(e.context("nothing was imported")))?;
            Ok(json!({ "summary": summary }))
        }
        Kind::ImportGenes => {
            let files = job
                .args
                .get("files")
                .and_then(Value::as_array)
                .ok_or_else(|| refused!("import_genes: args.files must be an array of file names"))?
                .iter()
                .map(|f| import_path(ctx, f.as_str()))
                .collect::<Result<Vec<_>, _>>()?;
            let request = GenesRequest {
                organism: args.str("organism")?,
                source: args.str("source")?,
                version: args.str("version")?,
                url: None,
                description: args.opt_str("description"),
                files,
            };
            let mut conn = connect_checked(ctx, job).await?;
            let summary = import_genes(&mut conn, &request)
                .await
                .map_err(|e| Failure::from(e.context("nothing was imported")))?;
            Ok(json!({ "summary": summary }))
        }
    }
}

/// A connection acting as the requester, after the version handshake
/// (imports write a schema this build must speak).
async fn connect_checked(ctx: &WorkerContext, job: &Job) -> Result<Client, Failure> {
    let conn = ctx.connect_as(job).await?;
    crate::db::check_version(&conn).await?;
    Ok(conn)
}

/// sleep: a test job that reports progress once a second.
async fn sleep(client: &Client, job: &Job, args: &Args<'_>) -> Result<Value, Failure> {
    let seconds = args.f64_or("seconds", 1.0);
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(Failure::Permanent(refused!(
            "sleep: seconds must be 0..86400, got {seconds}"
        )));
    }
    let steps = seconds.ceil().max(1.0) as i64;
    for step in 0..steps {
        tokio::time::sleep(Duration::from_secs_f64(seconds / steps as f64)).await;
        client
            .execute(
                "UPDATE lamin.job SET progress_done = $2, progress_total = $3 WHERE id = $1",
                &[&job.id, &(step + 1), &steps],
            )
            .await
            .map_err(|e| Failure::Retry(DbError(e).into()))?;
    }
    Ok(json!({ "slept_s": seconds }))
}

/// Internal jobs (delete_object, sweep_storage) are enqueued by lamin's own
/// code for the sidecar itself (or by the superuser the sidecar logs in as);
/// one that names another requester was not.
fn check_internal(ctx: &WorkerContext, job: &Job) -> Result<(), Failure> {
    if job.requested_by == SIDECAR_ROLE || job.requested_by == ctx.own_role {
        return Ok(());
    }
    Err(Failure::Permanent(refused!(
        "refusing a {} job requested by {:?}: jobs of this kind are lamin's own (enqueued for {SIDECAR_ROLE:?})",
        job.kind,
        job.requested_by,
    )))
}

/// A file of an import job: a relative path that stays inside the import
/// folder once symlinks are resolved.
fn import_path(ctx: &WorkerContext, file: Option<&str>) -> Result<PathBuf, Failure> {
    let Some(dir) = &ctx.import_dir else {
        return Err(Failure::Permanent(refused!(
            "this sidecar has no import folder: start it with --import-dir (or LAMIN_IMPORT_DIR)"
        )));
    };
    let file = file.ok_or_else(|| Failure::Permanent(refused!("argument file missing")))?;
    Ok(resolve_inside(dir, file)?)
}
