//! Tables: lamin.load of a 10M-row, 10-column parquet artifact against a
//! plain `COPY FROM` of the same rows as CSV, in the same run; lamin validate
//! of that file against a schema of 6 of its columns (one categorical)
//! against pyarrow reading the same columns and counting their values and
//! NULLs (the least a Python curator does); and lamin cat of 2 columns × ~1%
//! of the rows of that file on the S3 server against a full download. The
//! files are written by pyarrow (the reference writer).
//!
//!     scripts/bench tables        (BENCH_ROWS, default 10000000)

use std::process::Command;
use std::time::Instant;

use lamin_e2e::{lamin_bin, Cluster, S3Server, Sidecar};

/// What a Python curator does at the least: read the columns, count the
/// categorical's values and every column's NULLs.
const PY_FACTS: &str = r#"
import sys, pyarrow.parquet as pq, pyarrow.compute as pc
t = pq.read_table(sys.argv[1], columns=["cell_type", "n_genes", "pct_mito", "is_doublet", "batch", "sample"])
counts = pc.value_counts(t.column("cell_type").combine_chunks())
nulls = {c: t.column(c).null_count for c in t.column_names}
print(len(counts), sum(nulls.values()))
"#;

const MAKE: &str = r#"
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq, pyarrow.csv as pc
n = int(sys.argv[1]); rng = np.random.default_rng(7)
t = pa.table({
    "id": np.arange(n, dtype=np.int64),
    "sample": pa.array(np.char.add("s", (np.arange(n) % 1000).astype(str))),
    "cell_type": pa.array(np.array(["T cell", "B cell", "macrophage", "NK cell"])[np.arange(n) % 4]).dictionary_encode(),
    "n_genes": rng.integers(200, 8000, n, dtype=np.int32),
    "n_counts": rng.integers(500, 100000, n, dtype=np.int64),
    "pct_mito": rng.random(n),
    "score_a": rng.standard_normal(n),
    "score_b": rng.standard_normal(n).astype(np.float32),
    "is_doublet": rng.random(n) < 0.05,
    "batch": pa.array(np.char.add("b", (np.arange(n) // 100000).astype(str))),
})
pq.write_table(t, sys.argv[2], row_group_size=1_000_000, compression="zstd")
pc.write_csv(t.cast(pa.schema([f.with_type(pa.string()) if pa.types.is_dictionary(f.type) else f for f in t.schema])), sys.argv[3])
"#;

fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

fn main() {
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let python = std::env::var("LAMIN_PYARROW_PYTHON")
        .expect("LAMIN_PYARROW_PYTHON (scripts/bench sets it)");
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("cells.parquet");
    let csv = dir.path().join("cells.csv");
    let start = Instant::now();
    let made = Command::new(&python)
        .args([
            "-c",
            MAKE,
            &rows.to_string(),
            parquet.to_str().unwrap(),
            csv.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(made.success(), "pyarrow could not write the files");
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
    println!(
        "tables: {rows} rows × 10 columns written by pyarrow in {:.0} s: parquet {:.0} MB (zstd, row groups of 1M), CSV {:.0} MB\n",
        secs(start),
        size(&parquet) as f64 / 1e6,
        size(&csv) as f64 / 1e6
    );

    let s3 = S3Server::start();
    s3.create_bucket("bench");
    let env = s3.env();
    let cluster = Cluster::start_tuned();
    let mut db = cluster.connect();
    db.batch_execute(&format!(
        "SELECT lamin.add_storage('{}'); SELECT lamin.add_storage('s3://bench/data');",
        dir.path().join("storage").display()
    ))
    .unwrap();
    let lamin = |args: &[&str]| {
        let out = Command::new(lamin_bin())
            .args(args)
            .env("DATABASE_URL", cluster.url())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let uid = String::from_utf8(lamin(&["save", parquet.to_str().unwrap(), "-q"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let _sidecar = Sidecar::start_env(&cluster, "bench", &["--lease-s", "60"], &env);

    println!("{:<60} {:>9} {:>12}", "case", "seconds", "rows/s");
    let start = Instant::now();
    let job: i64 = db
        .query_one("SELECT lamin.load($1, 'public.loaded')", &[&uid])
        .unwrap()
        .get(0);
    let status: String = db
        .query_one("SELECT lamin.await_job($1, 3600)", &[&job])
        .unwrap()
        .get(0);
    assert_eq!(status, "done");
    let load = secs(start);
    println!(
        "{:<60} {load:>9.2} {:>12.0}",
        "lamin.load (parquet → binary COPY, one transaction)",
        rows as f64 / load
    );

    db.batch_execute(
        "CREATE TABLE public.copied (id bigint, sample text, cell_type text, n_genes integer, n_counts bigint,
         pct_mito double precision, score_a double precision, score_b real, is_doublet boolean, batch text)",
    )
    .unwrap();
    lamin_e2e::give_to_pg_user(dir.path());
    let start = Instant::now();
    db.batch_execute(&format!(
        "COPY public.copied FROM '{}' (FORMAT csv, HEADER)",
        csv.display()
    ))
    .unwrap();
    let copy = secs(start);
    println!(
        "{:<60} {copy:>9.2} {:>12.0}",
        "  baseline: COPY FROM the same rows as CSV (server-side file)",
        rows as f64 / copy
    );
    println!("  ratio (COPY time / load time): {:.2}x\n", copy / load);
    let same: bool = db
        .query_one(
            "SELECT (SELECT sum(n_counts) FROM public.loaded) = (SELECT sum(n_counts) FROM public.copied)
                AND (SELECT count(*) FROM public.loaded) = (SELECT count(*) FROM public.copied)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(same, "both tables must hold the same rows");

    // Validation: the sidecar's facts (6 columns read, value counts) and the verdict in SQL.
    db.batch_execute(
        "INSERT INTO lamin.ulabel (name) VALUES ('T cell'), ('B cell'), ('macrophage'), ('NK cell');
         SELECT lamin.create_feature('cell_type', 'cat');
         SELECT lamin.create_feature('n_genes', 'int');
         SELECT lamin.create_feature('pct_mito', 'float', nullable => false);
         SELECT lamin.create_feature('is_doublet', 'bool');
         SELECT lamin.create_feature('batch', 'str');
         SELECT lamin.create_feature('sample', 'str');
         SELECT lamin.create_schema(ARRAY['cell_type', 'n_genes', 'pct_mito', 'is_doublet', 'batch', 'sample'], name => 'cells');",
    )
    .unwrap();
    let start = Instant::now();
    lamin(&["validate", &uid, "--schema", "cells"]);
    let validate = secs(start);
    let start = Instant::now();
    let py = Command::new(&python)
        .args(["-c", PY_FACTS, parquet.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let pyfacts = secs(start);
    println!(
        "{:<60} {validate:>9.2} {:>12.0}",
        "lamin validate (6 columns, 1 categorical; verdict in SQL)",
        rows as f64 / validate
    );
    println!(
        "{:<60} {pyfacts:>9.2} {:>12.0}",
        "  baseline: pyarrow reads the 6 columns, counts values, NULLs",
        rows as f64 / pyfacts
    );
    println!(
        "  ratio (pyarrow time / validate time): {:.2}x\n",
        pyfacts / validate
    );

    // cat on S3: 2 columns of ~1% of the rows, against a full download.
    let s3_uid = String::from_utf8(
        lamin(&[
            "save",
            parquet.to_str().unwrap(),
            "--storage",
            "s3://bench/data",
            "-q",
        ])
        .stdout,
    )
    .unwrap()
    .split_whitespace()
    .next()
    .unwrap()
    .to_string();
    let cut = rows / 100;
    let start = Instant::now();
    let out = lamin(&[
        "cat",
        &s3_uid,
        "--columns",
        "id,n_genes",
        "--where",
        &format!("id < {cut}"),
        "--stats",
    ]);
    let cat = secs(start);
    let stats = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let start = Instant::now();
    lamin(&[
        "get",
        &s3_uid,
        "--to",
        dir.path().join("full.parquet").to_str().unwrap(),
        "-q",
    ]);
    let get = secs(start);
    println!("{:<60} {:>9}", "case", "seconds");
    println!(
        "{:<60} {cat:>9.2}",
        format!("lamin cat --columns id,n_genes --where 'id < {cut}' (S3)")
    );
    println!("    {stats}");
    println!(
        "{:<60} {get:>9.2}",
        "  baseline: lamin get of the whole file (S3)"
    );
}
