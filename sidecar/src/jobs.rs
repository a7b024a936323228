//! Running one claimed job: its work by kind, a heartbeat that extends the
//! lease (and notices cancellation), and the final complete/fail call.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio_postgres::Client;
use tracing::{info, warn};

use crate::cli::DbArgs;
use crate::storage_jobs::{self, Progress};

/// A job as claimed from lamin.job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub args: Value,
    pub attempts: i32,
    /// The role that enqueued the job: its database work runs as that role.
    pub requested_by: String,
}

/// What every job needs from the daemon.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    pub worker: String,
    pub database_url: String,
    pub lease_s: i32,
    /// Where import jobs may read files from (None: import jobs fail).
    pub import_dir: Option<PathBuf>,
    /// Where stage jobs copy artifacts of remote storages (None: stage jobs fail).
    pub cache_dir: Option<PathBuf>,
    /// The role the sidecar logs in as (jobs it enqueued itself run as it).
    pub own_role: String,
}

/// The role lamin's own code enqueues internal jobs (delete_object,
/// sweep_storage) for: they run on the sidecar's own login.
pub const SIDECAR_ROLE: &str = "lamin_sidecar";

/// The shared instance roles: the sidecar never acts as one of them.
const INSTANCE_ROLES: [&str; 3] = ["lamin_reader", "lamin_writer", "lamin_admin"];

impl WorkerContext {
    /// The connection string for a job's database work: the sidecar's login,
    /// acting as the job's requester (`-c role=…` at connection start, which
    /// Postgres allows only if the sidecar is a member of that role), so that
    /// row-level security governs the job exactly as it governs the requester.
    pub fn url_acting_as(&self, role: &str) -> String {
        // Internal jobs are enqueued for lamin_sidecar: they run on the
        // sidecar's own login, whatever role that is.
        if role == self.own_role || role == SIDECAR_ROLE {
            return self.database_url.clone();
        }
        let escaped = role.replace('\\', "\\\\").replace(' ', "\\ ");
        let option = format!("-c role={escaped}");
        match url::Url::parse(&self.database_url) {
            Ok(url) if url.scheme().starts_with("postgres") => {
                // Percent-encoded by hand: tokio-postgres does not read `+` as a space.
                let encoded: String = option
                    .bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                let sep = if url.query().is_some() { '&' } else { '?' };
                format!("{url}{sep}options={encoded}")
            }
            _ => format!(
                "{} options='{}'",
                self.database_url,
                option.replace('\\', "\\\\").replace('\'', "\\'")
            ),
        }
    }

    /// A connection for a job's database work, acting as its requester.
    /// Never as a shared instance role (the database refuses such jobs too).
    pub async fn connect_as(&self, job: &Job) -> Result<Client, Failure> {
        if INSTANCE_ROLES.contains(&job.requested_by.as_str()) {
            return Err(Failure::Permanent(anyhow::anyhow!(
                "the sidecar does not act as the instance role {:?}: jobs are enqueued by a person's role",
                job.requested_by
            )));
        }
        crate::db::connect(&self.url_acting_as(&job.requested_by))
            .await
            .map_err(|e| {
                let msg = format!("{e:#}");
                let e = anyhow::anyhow!(
                    "the sidecar cannot act as role {:?}, who enqueued the job: {msg}",
                    job.requested_by
                );
                // Refused roles stay refused; a server that is down comes back.
                if msg.contains("permission denied") || msg.contains("does not exist") {
                    Failure::Permanent(e)
                } else {
                    Failure::Retry(e)
                }
            })
    }
}

/// Why a job's work stopped without a result.
#[derive(Debug)]
pub enum Failure {
    /// Worth another attempt (network, database hiccup).
    Retry(anyhow::Error),
    /// Will fail the same way again (bad arguments, missing file).
    Permanent(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Permanent(e)
    }
}

/// Claim up to `n` of the oldest ready jobs (or ones whose lease expired),
/// in one round trip and one commit.
pub async fn claim(client: &Client, ctx: &WorkerContext, n: i32) -> anyhow::Result<Vec<Job>> {
    let rows = client
        .query(
            "SELECT id, kind, args::text, attempts, requested_by::text FROM lamin.claim_job($1, $2, $3, NULL, $4) ORDER BY id",
            &[&ctx.worker, &lamin_core::VERSION, &ctx.lease_s, &n],
        )
        .await
        .context("claiming jobs failed")?;
    Ok(rows
        .iter()
        .map(|r| Job {
            id: r.get(0),
            kind: r.get(1),
            // Read as text and parsed per job: arguments serde cannot take
            // (nested too deep) fail their own job, not the whole claim.
            args: serde_json::from_str(r.get::<_, &str>(2)).unwrap_or_else(|e| {
                serde_json::json!({ "__invalid_args": format!("job arguments cannot be read: {e}") })
            }),
            attempts: r.get(3),
            requested_by: r.get(4),
        })
        .collect())
}

/// Run a claimed job to its end: done, retried later, or failed; a job that
/// was cancelled (or taken over) meanwhile is left alone.
/// Ends are recorded on `finisher`, a connection with synchronous_commit
/// off, so an end costs no WAL flush (completions go through `completer`,
/// which batches them). An end lost in a Postgres crash only means the job
/// runs again when its lease ends (jobs are idempotent); claims stay
/// durable on `client`, so no job ever runs twice at once.
pub async fn run(
    client: Arc<Client>,
    finisher: Arc<Client>,
    completer: Completer,
    ctx: WorkerContext,
    job: Job,
) {
    let id = job.id;
    let kind = job.kind.clone();
    info!(job = id, %kind, attempt = job.attempts, "job started");
    let progress = Arc::new(Progress::default());
    // Heartbeats run on a task of their own, so that a job busy hashing
    // cannot starve them: they extend the lease and report progress every
    // third of the lease (at least every 2 s), and say when the job is no
    // longer this attempt's (cancelled, or taken over).
    let (lost_tx, mut lost) = tokio::sync::oneshot::channel::<()>();
    let heartbeat = tokio::spawn({
        let client = Arc::clone(&client);
        let progress = Arc::clone(&progress);
        let worker = ctx.worker.clone();
        let (lease_s, attempt) = (ctx.lease_s, job.attempts);
        async move {
            let every = Duration::from_secs((lease_s as u64 / 3).clamp(1, 2));
            let mut beat = tokio::time::interval(every);
            beat.tick().await;
            loop {
                beat.tick().await;
                let done = Some(progress.done.load(Ordering::Relaxed)).filter(|d| *d > 0);
                let total = Some(progress.total.load(Ordering::Relaxed)).filter(|t| *t > 0);
                match client
                    .query_one(
                        "SELECT lamin.heartbeat_job($1, $2, $3, $4, $5, $6)",
                        &[&id, &worker, &lease_s, &done, &total, &attempt],
                    )
                    .await
                {
                    Ok(row) if row.get::<_, bool>(0) => {}
                    Ok(_) => {
                        let _ = lost_tx.send(());
                        return;
                    }
                    Err(e) => warn!(job = id, error = %e, "heartbeat failed"),
                }
            }
        }
    });
    let outcome = tokio::select! {
        out = execute(&client, &ctx, &job, &progress) => Some(out),
        _ = &mut lost => {
            info!(job = id, "job was cancelled or taken over: stopping it");
            None
        }
    };
    heartbeat.abort();
    let Some(outcome) = outcome else { return };
    let recorded = match outcome {
        Ok(result) => completer
            .complete(id, job.attempts, result)
            .await
            .map(|done| {
                if done {
                    info!(job = id, %kind, "job done");
                } else {
                    info!(
                        job = id,
                        "job finished after it was cancelled or taken over; result dropped"
                    );
                }
            }),
        Err(failure) => {
            let (error, permanent) = match failure {
                Failure::Retry(e) => (format!("{e:#}"), false),
                Failure::Permanent(e) => (format!("{e:#}"), true),
            };
            finisher
                .query_one(
                    "SELECT lamin.fail_job($1, $2, $3, $4, $5)",
                    &[&id, &ctx.worker, &error, &permanent, &job.attempts],
                )
                .await
                .map_err(anyhow::Error::from)
                .map(|r| {
                    let status: Option<String> = r.get(0);
                    warn!(job = id, %kind, %error, status = status.as_deref().unwrap_or("not ours"), "job attempt failed");
                })
        }
    };
    if let Err(e) = recorded {
        let e = format!("{e:#}");
        // The lease runs out and another attempt follows: nothing is lost.
        warn!(job = id, error = %e, "could not record the job's end; it will be retried when its lease expires");
    }
}

/// Records job completions in batches: every completion that arrives while
/// the previous batch is being written goes into the next statement
/// (lamin.complete_jobs), so a busy sidecar pays one round trip and one
/// commit per batch rather than per job.
#[derive(Clone)]
pub struct Completer {
    tx: tokio::sync::mpsc::UnboundedSender<Completion>,
}

struct Completion {
    id: i64,
    attempt: i32,
    result: Value,
    reply: tokio::sync::oneshot::Sender<Result<bool, String>>,
}

impl Completer {
    /// Start the batching task on `finisher` for this worker.
    pub fn start(finisher: Arc<Client>, worker: String) -> Completer {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Completion>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 512 {
                    match rx.try_recv() {
                        Ok(c) => batch.push(c),
                        Err(_) => break,
                    }
                }
                let ids: Vec<i64> = batch.iter().map(|c| c.id).collect();
                let attempts: Vec<i32> = batch.iter().map(|c| c.attempt).collect();
                let results: Vec<&Value> = batch.iter().map(|c| &c.result).collect();
                let outcome = finisher
                    .query(
                        "SELECT lamin.complete_jobs($1, $2, $3, $4)",
                        &[&worker, &ids, &attempts, &results],
                    )
                    .await
                    .map(|rows| {
                        rows.iter()
                            .map(|r| r.get::<_, i64>(0))
                            .collect::<std::collections::HashSet<i64>>()
                    })
                    .map_err(|e| e.to_string());
                for c in batch {
                    let _ = c.reply.send(match &outcome {
                        Ok(done) => Ok(done.contains(&c.id)),
                        Err(e) => Err(e.clone()),
                    });
                }
            }
        });
        Completer { tx }
    }

    /// Record a job as done; false when it was no longer this attempt's.
    async fn complete(&self, id: i64, attempt: i32, result: Value) -> anyhow::Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Completion {
                id,
                attempt,
                result,
                reply,
            })
            .map_err(|_| anyhow::anyhow!("the completion recorder stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the completion recorder stopped"))?
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// The work of one job, by kind.
async fn execute(
    client: &Client,
    ctx: &WorkerContext,
    job: &Job,
    progress: &Progress,
) -> Result<Value, Failure> {
    if let Some(problem) = job.args.get("__invalid_args").and_then(Value::as_str) {
        return Err(Failure::Permanent(anyhow::anyhow!("{problem}")));
    }
    match job.kind.as_str() {
        "noop" => Ok(json!({})),
        // Database work of these jobs runs as their requester (its own connection).
        "register" => storage_jobs::register(&ctx.connect_as(job).await?, job, progress).await,
        "stage" => storage_jobs::stage(&ctx.connect_as(job).await?, ctx, job, progress).await,
        "verify" => storage_jobs::verify(&ctx.connect_as(job).await?, job, progress).await,
        "delete_object" => storage_jobs::delete_object(client, ctx, job).await,
        "load" => crate::warehouse::load(&mut ctx.connect_as(job).await?, job, progress).await,
        "export" => crate::warehouse::export(ctx, job, progress).await,
        "curate" => crate::warehouse::curate(ctx, job, progress).await,
        "sweep_storage" => storage_jobs::sweep_storage(ctx, job).await,
        "sleep" => {
            let seconds = job
                .args
                .get("seconds")
                .and_then(Value::as_f64)
                .unwrap_or(1.0);
            if !(0.0..=86_400.0).contains(&seconds) {
                return Err(Failure::Permanent(anyhow::anyhow!(
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
                    .map_err(|e| Failure::Retry(e.into()))?;
            }
            Ok(json!({ "slept_s": seconds }))
        }
        "fail" => {
            let message = job
                .args
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("failed on purpose");
            let permanent = job
                .args
                .get("permanent")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let e = anyhow::anyhow!("{message}");
            Err(if permanent {
                Failure::Permanent(e)
            } else {
                Failure::Retry(e)
            })
        }
        "import_ontology" => {
            let file = import_path(ctx, job.args.get("file").and_then(Value::as_str))?;
            let args = crate::import::OntologyArgs {
                db: DbArgs {
                    database_url: ctx.url_acting_as(&job.requested_by),
                },
                entity: arg_str(&job.args, "entity")?,
                source: job
                    .args
                    .get("source")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                version: job
                    .args
                    .get("version")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                format: crate::import::OntologyFormat::Auto,
                prefix: Vec::new(),
                url: None,
                description: None,
                quiet: true,
                file,
            };
            let summary = crate::import::import_ontology(args)
                .await
                .context("nothing was imported")?;
            Ok(json!({ "summary": summary }))
        }
        "import_genes" => {
            let files = job
                .args
                .get("files")
                .and_then(Value::as_array)
                .context("import_genes: args.files must be an array of file names")?
                .iter()
                .map(|f| import_path(ctx, f.as_str()))
                .collect::<Result<Vec<_>, _>>()?;
            let args = crate::import::GenesArgs {
                db: DbArgs {
                    database_url: ctx.url_acting_as(&job.requested_by),
                },
                organism: arg_str(&job.args, "organism")?,
                source: arg_str(&job.args, "source")?,
                version: arg_str(&job.args, "version")?,
                url: None,
                description: None,
                files,
            };
            let summary = crate::import::import_genes(args)
                .await
                .context("nothing was imported")?;
            Ok(json!({ "summary": summary }))
        }
        other => Err(Failure::Permanent(anyhow::anyhow!(
            "this sidecar (lamin {}) cannot run jobs of kind {other:?}",
            lamin_core::VERSION
        ))),
    }
}

pub fn arg_str(args: &Value, name: &str) -> anyhow::Result<String> {
    args.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("argument {name} missing or not a string"))
}

pub fn arg_i64(args: &Value, name: &str) -> anyhow::Result<i64> {
    args.get(name)
        .and_then(Value::as_i64)
        .with_context(|| format!("argument {name} missing or not an integer"))
}

/// A file of an import job: a relative path that stays inside the import
/// folder once symlinks are resolved.
fn import_path(ctx: &WorkerContext, file: Option<&str>) -> Result<PathBuf, Failure> {
    let Some(dir) = &ctx.import_dir else {
        return Err(Failure::Permanent(anyhow::anyhow!(
            "this sidecar has no import folder: start it with --import-dir (or LAMIN_IMPORT_DIR)"
        )));
    };
    let file = file.ok_or_else(|| Failure::Permanent(anyhow::anyhow!("argument file missing")))?;
    Ok(resolve_inside(dir, file)?)
}

/// `dir/file`, refused when it would leave `dir` (.., absolute paths, symlinks out).
pub fn resolve_inside(dir: &Path, file: &str) -> anyhow::Result<PathBuf> {
    let relative = Path::new(file);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        bail!("import file {file:?} must be a plain relative path inside the import folder");
    }
    let root = dir
        .canonicalize()
        .with_context(|| format!("import folder {} is not accessible", dir.display()))?;
    let full = root
        .join(relative)
        .canonicalize()
        .with_context(|| format!("{file}: no such file in the import folder"))?;
    if !full.starts_with(&root) {
        bail!("import file {file:?} leads outside the import folder");
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::{resolve_inside, WorkerContext};

    fn ctx(url: &str) -> WorkerContext {
        WorkerContext {
            worker: "w".into(),
            database_url: url.into(),
            lease_s: 30,
            import_dir: None,
            cache_dir: None,
            own_role: "lamin_sidecar".into(),
        }
    }

    #[test]
    fn jobs_connect_as_their_requester() {
        let c = ctx("postgresql://lamin_sidecar:pw@127.0.0.1:5432/lamin");
        assert_eq!(
            c.url_acting_as("lamin_sidecar"),
            c.database_url,
            "its own jobs: as itself"
        );
        let url = c.url_acting_as("alice");
        assert_eq!(
            url,
            "postgresql://lamin_sidecar:pw@127.0.0.1:5432/lamin?options=-c%20role%3Dalice"
        );
        let config: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(config.get_options(), Some("-c role=alice"));
        let odd: tokio_postgres::Config = c.url_acting_as("a b&c").parse().unwrap();
        assert_eq!(odd.get_options(), Some("-c role=a\\ b&c"));
        let kv = ctx("host=127.0.0.1 user=lamin_sidecar dbname=lamin");
        let config: tokio_postgres::Config = kv.url_acting_as("o'neil").parse().unwrap();
        assert_eq!(config.get_options(), Some("-c role=o'neil"));
    }

    #[test]
    fn import_paths_stay_inside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cl.obo"), "x").unwrap();
        assert!(resolve_inside(dir.path(), "cl.obo").is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../x", "./cl.obo"] {
            assert!(resolve_inside(dir.path(), bad).is_err(), "{bad} accepted");
        }
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        let err = resolve_inside(dir.path(), "link").unwrap_err().to_string();
        assert!(err.contains("outside the import folder"), "{err}");
        assert!(resolve_inside(dir.path(), "missing.obo")
            .unwrap_err()
            .to_string()
            .contains("no such file"));
    }
}
