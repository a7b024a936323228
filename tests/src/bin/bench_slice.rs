//! `lamin slice` of an h5ad of about 1 GB on an S3 server on loopback
//! (s3s-fs: moto copies the whole object for every ranged GET, 0.6 s a
//! request at 1 GB, which would time moto, not the slice), written by
//! anndata: an obs filter keeping 1 % of the cells
//! (contiguous, and scattered over the file) with 50 genes, and every gene
//! of those cells, timed with the bytes read — beside the baseline of
//! reading the file whole with anndata (download with `lamin get`, then
//! `anndata.read_h5ad` and the same subset), which is what a user without
//! ranged reads does.
//!
//!     scripts/bench slice        (BENCH_CELLS, default 250000, × 2000 genes, 25 % non-zero)

use std::process::Command;
use std::time::Instant;

use lamin_e2e::{lamin_bin, Cluster, S3Server};

const MAKE: &str = r#"
import sys, numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad
n, g, out = int(sys.argv[1]), 2000, sys.argv[2]
rng = np.random.default_rng(22)
per_row = g // 4
# 25 % of the genes of each cell non-zero: every 4th, shifted by the cell.
indptr = np.arange(0, (n + 1) * per_row, per_row, dtype=np.int64)
indices = (np.arange(per_row)[None, :] * 4 + (np.arange(n) % 4)[:, None]).astype(np.int32).ravel()
data = rng.integers(1, 50, n * per_row).astype(np.float32)
x = sp.csr_matrix((data, indices, indptr), shape=(n, g))
obs = pd.DataFrame({
    "cell_type": pd.Categorical(np.array(["T cell", "B cell", "NK cell", "monocyte"])[np.arange(n) % 4]),
    "sample": pd.Categorical(np.char.add("s", (np.arange(n) % 100).astype(str))),
    "n_genes": np.full(n, per_row, dtype=np.int64),
    "position": np.arange(n, dtype=np.int64),
    "pct_mito": rng.random(n),
}, index=np.char.add("cell-", np.arange(n).astype(str)))
var = pd.DataFrame({"gene_symbol": np.char.add("SYM", np.arange(g).astype(str))}, index=np.char.add("G", np.arange(g).astype(str)))
ad.AnnData(X=x, obs=obs, var=var).write_h5ad(out)
"#;

const BASELINE: &str = r#"
import sys, time, anndata as ad
path, kind, genes = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
t = time.perf_counter()
a = ad.read_h5ad(path)
cut = a.shape[0] // 100
rows = a.obs_names[:cut] if kind == "contiguous" else a.obs_names[(a.obs["sample"] == "s7").to_numpy()]
s = a[rows, genes if genes != [""] else slice(None)].copy()
print(f"{time.perf_counter() - t:.2f} {s.shape[0]} {s.shape[1]}")
"#;

fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

fn main() {
    let cells: u64 = std::env::var("BENCH_CELLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250_000);
    let python = std::env::var("LAMIN_PYARROW_PYTHON")
        .expect("LAMIN_PYARROW_PYTHON (scripts/bench sets it)");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("atlas.h5ad");
    let start = Instant::now();
    let made = Command::new(&python)
        .args(["-c", MAKE, &cells.to_string(), file.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success(), "anndata could not write the file");
    let size = std::fs::metadata(&file).unwrap().len();
    println!(
        "slice: {cells} cells × 2000 genes, 25 % non-zero, CSR float32, written by anndata in {:.0} s: {:.1} MB, on the S3 server\n",
        secs(start),
        size as f64 / 1e6
    );

    let s3 = S3Server::start_fs();
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
    // The same file on local disk too: the slice's own cost, without a
    // server's latency per request.
    let local = dir.path().join("local");
    std::fs::create_dir(&local).unwrap();
    db.execute("SELECT lamin.add_storage($1)", &[&local.to_str().unwrap()])
        .unwrap();
    for (storage, key) in [
        ("s3://bench/data", "atlas/big.h5ad"),
        (local.to_str().unwrap(), "atlas/local.h5ad"),
    ] {
        lamin(&[
            "save",
            file.to_str().unwrap(),
            "--storage",
            storage,
            "--key",
            key,
            "-q",
        ]);
    }

    let genes: Vec<String> = (0..50).map(|i| format!("G{}", i * 40)).collect();
    let genes = genes.join(",");
    let cut = cells / 100;
    println!(
        "{:<80} {:>8} {:>14} {:>7} {:>9}",
        "case", "seconds", "bytes read", "share", "requests"
    );
    let mut cases = Vec::new();
    for (kind, condition) in [
        ("contiguous", format!("position < {cut}")),
        ("scattered", "sample = 's7'".to_string()),
    ] {
        for (vars, label) in [(genes.as_str(), "50 genes"), ("", "every gene")] {
            cases.push((kind, condition.clone(), vars, label));
        }
    }
    for ((kind, condition, vars, label), (key, place)) in cases.iter().flat_map(|c| {
        [("atlas/big.h5ad", "S3"), ("atlas/local.h5ad", "local disk")].map(|k| (c, k))
    }) {
        let out = dir.path().join("slice.h5ad");
        let mut args = vec![
            "slice",
            key,
            "--obs",
            condition.as_str(),
            "-o",
            out.to_str().unwrap(),
            "--stats",
        ];
        if !vars.is_empty() {
            args.extend(["--var", vars]);
        }
        // Twice: the first run warms moto and the page cache alike.
        let mut best = f64::MAX;
        let mut stats = String::new();
        for _ in 0..2 {
            let start = Instant::now();
            let res = lamin(&args);
            best = best.min(secs(start));
            stats = String::from_utf8_lossy(&res.stderr).trim().to_string();
        }
        // "sliced artifact UID: N observations × M variables; read B of
        // its S bytes (P %) in R requests"
        let parsed = (|| {
            let bytes: u64 = stats
                .split(" read ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            let requests: u64 = stats
                .rsplit(" in ")
                .next()?
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            let shape = stats.split(": ").nth(1)?.split(';').next()?.to_string();
            Some((bytes, requests, shape))
        })();
        let Some((bytes, requests, shape)) = parsed else {
            panic!("--stats printed {stats:?}, not the line this benchmark reads");
        };
        assert!(bytes > 0 && requests > 0, "{stats}");
        println!(
            "{:<80} {best:>8.2} {bytes:>14} {:>6.2}% {requests:>9}",
            format!("lamin slice on {place}, {kind} 1 %, {label} ({shape})"),
            100.0 * bytes as f64 / size as f64
        );
    }
    let copy = dir.path().join("copy.h5ad");
    let start = Instant::now();
    lamin(&[
        "get",
        "atlas/big.h5ad",
        "--to",
        copy.to_str().unwrap(),
        "-q",
    ]);
    let download = secs(start);
    println!(
        "{:<80} {download:>8.2} {size:>14} {:>6.2}%",
        "  baseline: lamin get of the file", 100.0
    );
    for (kind, _, vars, label) in &cases {
        let out = Command::new(&python)
            .args(["-c", BASELINE, copy.to_str().unwrap(), kind, vars])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        let read: f64 = words[0].parse().unwrap();
        println!(
            "{:<80} {:>8.2} {size:>14} {:>6.2}%",
            format!(
                "  baseline: get + anndata.read_h5ad + subset, {kind}, {label} ({} × {})",
                words[1], words[2]
            ),
            download + read,
            100.0
        );
    }
}
