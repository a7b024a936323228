//! `lamin query` over a collection of 10 parquet shards on the S3 server
//! (moto on loopback), written by pyarrow: a filter touching 1 % of the
//! rows — contiguous (an id range: row groups pruned by their statistics)
//! and scattered (one sample of 100, in every row group: pages and rows
//! filtered late) — timed with the bytes read, against downloading every
//! shard (`lamin get`), which is what reading them whole costs at the least.
//!
//!     scripts/bench query        (BENCH_ROWS, default 5000000, over 10 shards)

use std::process::Command;
use std::time::Instant;

use lamin_e2e::{lamin_bin, Cluster, S3Server};

const MAKE: &str = r#"
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
n, shards, out = int(sys.argv[1]), 10, sys.argv[2]
rng = np.random.default_rng(7)
per = n // shards
for s in range(shards):
    ids = np.arange(s * per, (s + 1) * per, dtype=np.int64)
    t = pa.table({
        "id": ids,
        "sample": pa.array(np.char.add("s", (ids % 100).astype(str))),
        "cell_type": pa.array(np.array(["T cell", "B cell", "macrophage", "NK cell"])[ids % 4]).dictionary_encode(),
        "n_genes": rng.integers(200, 8000, per, dtype=np.int32),
        "n_counts": rng.integers(500, 100000, per, dtype=np.int64),
        "pct_mito": rng.random(per),
        "score_a": rng.standard_normal(per),
        "score_b": rng.standard_normal(per).astype(np.float32),
        "is_doublet": rng.random(per) < 0.05,
        "batch": pa.array(np.char.add("b", (ids // 100000).astype(str))),
    })
    pq.write_table(t, f"{out}/shard-{s:02d}.parquet", row_group_size=100_000, compression="zstd")
"#;

fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

fn main() {
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let python = std::env::var("LAMIN_PYARROW_PYTHON")
        .expect("LAMIN_PYARROW_PYTHON (scripts/bench sets it)");
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    std::fs::create_dir_all(&shards).unwrap();
    let made = Command::new(&python)
        .args(["-c", MAKE, &rows.to_string(), shards.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success(), "pyarrow could not write the shards");
    let mut files: Vec<_> = std::fs::read_dir(&shards)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    println!(
        "query: {rows} rows × 10 columns in {} parquet shards written by pyarrow (zstd, row groups of 100k): {:.1} MB, on the S3 server\n",
        files.len(),
        total as f64 / 1e6
    );

    let s3 = S3Server::start();
    s3.create_bucket("bench");
    let env = s3.env();
    let cluster = Cluster::start_tuned();
    let mut db = cluster.connect();
    db.batch_execute("SELECT lamin.add_storage('s3://bench/data');")
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
    let mut uids = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let key = format!("shards/shard-{i:02}.parquet");
        let out = lamin(&["save", f.to_str().unwrap(), "--key", &key, "-q"]);
        uids.push(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    db.execute("SELECT lamin.save_collection('shards', $1)", &[&uids])
        .unwrap();

    println!(
        "{:<72} {:>8} {:>12} {:>8}",
        "case", "seconds", "bytes read", "share"
    );
    let cut = rows / 100;
    for (label, sql) in [
        (
            format!("contiguous 1 %: WHERE id < {cut} (count, avg)"),
            format!("SELECT count(*) AS n, avg(n_genes) AS g FROM collection('shards') WHERE id < {cut}"),
        ),
        (
            "scattered 1 %: WHERE sample = 's7' (count, avg)".to_string(),
            "SELECT count(*) AS n, avg(n_genes) AS g FROM collection('shards') WHERE sample = 's7'".to_string(),
        ),
        (
            "scattered 1 %, 3 columns out".to_string(),
            "SELECT id, cell_type, n_genes FROM collection('shards') WHERE sample = 's7'".to_string(),
        ),
    ] {
        // Twice: the first run warms moto and the page cache alike.
        let mut best = f64::MAX;
        let mut stats = String::new();
        for _ in 0..2 {
            let start = Instant::now();
            let out = lamin(&["query", &sql, "--stats", "--format", "csv"]);
            best = best.min(secs(start));
            stats = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        let bytes: u64 = stats
            .split(": ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        println!(
            "{label:<72} {best:>8.2} {bytes:>12} {:>7.1}%",
            100.0 * bytes as f64 / total as f64
        );
    }
    let start = Instant::now();
    for (i, uid) in uids.iter().enumerate() {
        lamin(&[
            "get",
            uid,
            "--to",
            dir.path()
                .join(format!("copy-{i}.parquet"))
                .to_str()
                .unwrap(),
            "-q",
        ]);
    }
    println!(
        "{:<72} {:>8.2} {total:>12} {:>7.1}%",
        "  baseline: lamin get of every shard (what reading them whole needs)",
        secs(start),
        100.0
    );
}
