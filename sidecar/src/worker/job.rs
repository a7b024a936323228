//! What a job is to the worker, at the bottom of the worker: the claimed
//! row, its kind, its arguments, how its work failed, and the context every
//! job runs in (acting as the role that enqueued it). Handlers depend on
//! this module; it depends on none of them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;
use tokio_postgres::Client;

use crate::error::{disposition, Disposition};
use crate::refused;

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

/// The job kinds this sidecar runs: the names in `lamin.job_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Noop,
    Sleep,
    Fail,
    Register,
    Stage,
    Verify,
    DeleteObject,
    SweepStorage,
    Load,
    Export,
    Curate,
    Validate,
    Standardize,
    ImportOntology,
    ImportGenes,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::Noop,
        Kind::Sleep,
        Kind::Fail,
        Kind::Register,
        Kind::Stage,
        Kind::Verify,
        Kind::DeleteObject,
        Kind::SweepStorage,
        Kind::Load,
        Kind::Export,
        Kind::Curate,
        Kind::Validate,
        Kind::Standardize,
        Kind::ImportOntology,
        Kind::ImportGenes,
    ];

    /// The kind's name in `lamin.job_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Noop => "noop",
            Kind::Sleep => "sleep",
            Kind::Fail => "fail",
            Kind::Register => "register",
            Kind::Stage => "stage",
            Kind::Verify => "verify",
            Kind::DeleteObject => "delete_object",
            Kind::SweepStorage => "sweep_storage",
            Kind::Load => "load",
            Kind::Export => "export",
            Kind::Curate => "curate",
            Kind::Validate => "validate",
            Kind::Standardize => "standardize",
            Kind::ImportOntology => "import_ontology",
            Kind::ImportGenes => "import_genes",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// lamin's own kinds: enqueued only by lamin's code, for the sidecar itself.
    pub fn is_internal(self) -> bool {
        matches!(self, Kind::DeleteObject | Kind::SweepStorage)
    }
}

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
            return Err(Failure::Permanent(refused!(
                "the sidecar does not act as the instance role {:?}: jobs are enqueued by a person's role",
                job.requested_by
            )));
        }
        // Refused roles stay refused (their SQLSTATE says so); a server that
        // is down comes back.
        crate::db::connect(&self.url_acting_as(&job.requested_by))
            .await
            .with_context(|| {
                format!(
                    "the sidecar cannot act as role {:?}, who enqueued the job",
                    job.requested_by
                )
            })
            .map_err(Failure::from)
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

/// Whether a failure is retried is decided by the error's types (see
/// `crate::error::disposition`), never by its text.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        match disposition(&e) {
            Disposition::Retry => Failure::Retry(e),
            Disposition::Permanent => Failure::Permanent(e),
        }
    }
}

/// A job's arguments (`lamin.job.args`), read by name.
pub struct Args<'a>(pub &'a Value);

impl Args<'_> {
    pub fn str(&self, name: &str) -> anyhow::Result<String> {
        self.opt_str(name)
            .ok_or_else(|| refused!("argument {name} missing or not a string"))
    }

    pub fn opt_str(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(Value::as_str).map(str::to_string)
    }

    pub fn i64(&self, name: &str) -> anyhow::Result<i64> {
        self.0
            .get(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| refused!("argument {name} missing or not an integer"))
    }

    pub fn opt_i64(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(Value::as_i64)
    }

    pub fn bool_or(&self, name: &str, default: bool) -> bool {
        self.0.get(name).and_then(Value::as_bool).unwrap_or(default)
    }

    pub fn f64_or(&self, name: &str, default: f64) -> f64 {
        self.0.get(name).and_then(Value::as_f64).unwrap_or(default)
    }
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
