//! The README's tutorial, run as a user would: docs/tutorial/daily-loop.sh
//! (the CLI, psql) with docs/tutorial/pipeline.py (Python with psycopg and
//! pyarrow) against an instance with real ontologies and genes and a running
//! sidecar. The answers of its one-query questions are checked, and the
//! README shows the two files as they are.

use std::path::{Path, PathBuf};
use std::process::Command;

use lamin_e2e::{check, lamin, lamin_bin, real_source, Cluster, Sidecar};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn import(cluster: &Cluster, args: &[&str]) {
    let out = lamin(cluster, args);
    check(&format!("lamin {}", args.join(" ")), &out);
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The lines of `out` after the line starting with `heading`, up to the next
/// line starting with `--` or `==`.
fn answer<'a>(out: &'a str, heading: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip(1)
        .take_while(|l| !l.starts_with("--") && !l.starts_with("=="))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

#[test]
fn the_tutorial_runs_and_answers_its_questions() {
    let python = std::env::var("LAMIN_PYARROW_PYTHON")
        .expect("LAMIN_PYARROW_PYTHON: a Python with pyarrow and psycopg (scripts/test sets it)");
    let cluster = Cluster::start();
    let storage = tempfile::tempdir().unwrap();
    let mut db = cluster.connect();
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&storage.path().to_str().unwrap()],
    )
    .unwrap();
    import(
        &cluster,
        &[
            "import",
            "ontology",
            "--entity",
            "cell_type",
            path(&real_source("CL-ontology-v2026-03-26.json.zst")),
        ],
    );
    import(
        &cluster,
        &[
            "import",
            "ontology",
            "--entity",
            "tissue",
            path(&real_source("UBERON-ontology-v2026-04-01.json.zst")),
        ],
    );
    import(
        &cluster,
        &[
            "import",
            "genes",
            "--organism",
            "human",
            "--source",
            "gencode+hgnc",
            "--version",
            "v48",
            path(&real_source("genes_homo_sapiens.csv.gz")),
            path(&real_source("hgnc_entries.tsv")),
        ],
    );
    let _sidecar = Sidecar::start(&cluster, "tutorial");

    let bin_dir = lamin_bin().parent().unwrap().to_path_buf();
    let search_path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(repo().join("docs/tutorial/daily-loop.sh"))
        .env("DATABASE_URL", cluster.url())
        .env("PATH", search_path)
        .env("PYTHON", &python)
        .env("DATA", repo().join("tests/fixtures"))
        .output()
        .unwrap();
    check("docs/tutorial/daily-loop.sh", &out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // (Shown with --nocapture, and with a failure.)
    eprintln!("{text}\n{}", String::from_utf8_lossy(&out.stderr));

    // The latest artifacts annotated with any T cell: the two raw files whose
    // cell types were curated, not the pipeline's outputs.
    let t_cells = answer(&text, "-- the latest artifacts annotated with any T cell");
    assert_eq!(t_cells.len(), 2, "{text}");
    assert!(
        t_cells[0].ends_with("| tutorial/raw/cells.parquet"),
        "{text}"
    );
    assert!(t_cells[1].ends_with("| tutorial/raw/pbmc.h5ad"), "{text}");
    // n_genes > 100 and tissue lung: the h5ad only (the parquet is blood).
    let lung = answer(&text, "-- artifacts where n_genes > 100 and tissue is lung");
    assert_eq!(lung.len(), 1, "{text}");
    assert!(lung[0].ends_with("| tutorial/raw/pbmc.h5ad"), "{text}");
    // The Python pipeline's run: the raw parquet in, its result out.
    let runs = answer(&text, "-- runs of tutorial/pipeline.py");
    assert_eq!(runs.len(), 2, "{text}");
    assert!(
        runs[0].ends_with("| completed | input | tutorial/raw/cells.parquet"),
        "{text}"
    );
    assert!(
        runs[1].ends_with("| completed | output | tutorial/rich_cells.parquet"),
        "{text}"
    );

    // What the walk-through left behind, checked in the database.
    let one =
        |db: &mut postgres::Client, sql: &str| -> i64 { db.query_one(sql, &[]).unwrap().get(0) };
    assert_eq!(
        one(&mut db, "SELECT count(*) FROM lamin.annotations WHERE key = 'tutorial/raw/pbmc.h5ad' AND registry = 'bionty.gene'"),
        5,
        "the five known Ensembl ids of var.index are linked (the unknown one is not)"
    );
    assert_eq!(
        one(
            &mut db,
            "SELECT count(*) FROM lamin.artifacts WHERE key = 'tutorial/qc.csv'"
        ),
        2,
        "two versions of the shell pipeline's output"
    );
    assert_eq!(
        one(&mut db, "SELECT count(*) FROM lamin.run_artifacts WHERE transform_key = 'tutorial/qc.sh' AND run_status = 'completed' AND direction = 'output'"),
        1,
        "lamin track / --run / lamin finish made a completed run with its output"
    );
    assert_eq!(
        one(&mut db, "SELECT count(*) FROM analysis.tutorial_cells"),
        1000,
        "lamin.load made the table"
    );
    assert!(
        text.contains("tutorial/lab/qc.csv | tutorial_lab"),
        "the reader role sees the lab's artifact: {text}"
    );
}

#[test]
fn the_readme_shows_the_tutorial_as_it_runs() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for file in ["docs/tutorial/daily-loop.sh", "docs/tutorial/pipeline.py"] {
        let body = std::fs::read_to_string(repo().join(file)).unwrap();
        assert!(
            readme.contains(body.trim_end()),
            "README.md's Tutorial shows {file} as it is: paste it again"
        );
    }
}
