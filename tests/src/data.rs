//! Test inputs: committed fixtures and the real files that
//! `scripts/import-defaults --fetch` caches (scripts/test fetches them first).

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::Cluster;

/// A file of tests/fixtures/.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// Import the Cell Ontology cut (tests/fixtures/bionty/cl-cut.json.zst:
/// T cells with their ancestors, B cell and a few more, with synonyms) into
/// bionty.cell_type through `lamin import ontology`.
pub fn import_cl_cut(cluster: &Cluster) {
    let cl = fixture("bionty/cl-cut.json.zst");
    let out = lamin(
        cluster,
        &[
            "import",
            "ontology",
            "--entity",
            "cell_type",
            "--source",
            "cl",
            "--version",
            "cut",
            cl.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
}

/// Import the default ontologies and genes into the database at `url` as
/// `scripts/up` does (`scripts/import-defaults`, with the CLI of lamin_bin()).
pub fn import_default_sources(url: &str) {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/import-defaults"
    ))
    .env("DATABASE_URL", url)
    .env("LAMIN_BIN", crate::lamin_bin())
    .output()
    .expect("run scripts/import-defaults");
    crate::check("scripts/import-defaults", &out);
}

/// A real source file from the cache: `LAMIN_SOURCES`, else `.lamin/cache/sources`.
pub fn real_source(name: &str) -> PathBuf {
    let dir = std::env::var_os("LAMIN_SOURCES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.lamin/cache/sources")
        });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} missing: run scripts/import-defaults --fetch (or set LAMIN_SOURCES)",
        path.display()
    );
    path
}

/// `lamin ARGS…` against the cluster's database.
pub fn lamin(cluster: &Cluster, args: &[&str]) -> Output {
    lamin_with_env(cluster, &[], args)
}

/// `lamin ARGS…` with extra environment (storage credentials).
pub fn lamin_with_env(cluster: &Cluster, env: &[(String, String)], args: &[&str]) -> Output {
    Command::new(crate::lamin_bin())
        .args(args)
        .env("DATABASE_URL", cluster.url())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run lamin")
}

/// A command's stdout as text, without surrounding whitespace (a printed
/// uid is just the uid).
pub fn stdout_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A command's stderr as text.
pub fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failed command's stderr (failing the test when it succeeded).
pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure, got stdout: {}",
        stdout_text(out)
    );
    stderr_text(out)
}

/// A throw-away cluster with a local storage (in the returned folder,
/// under `storage/`) as its default: where `lamin save` puts files.
pub fn cluster_with_storage() -> (crate::Cluster, postgres::Client, tempfile::TempDir) {
    let cluster = crate::Cluster::start();
    let mut db = cluster.connect();
    let dir = tempfile::tempdir().expect("a temporary folder");
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&dir.path().join("storage").to_str().expect("a UTF-8 path")],
    )
    .expect("lamin.add_storage");
    (cluster, db, dir)
}

/// The server's message of a failed statement.
pub fn db_message(e: &postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// The `p` quantile (0 to 1) of sorted latencies, in milliseconds (the
/// nearest rank): what the benchmarks report as p50 and p99.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A successful command's stdout (failing the test with its output otherwise).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout_text(out),
        stderr_text(out)
    );
    stdout_text(out)
}
