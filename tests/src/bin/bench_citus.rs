//! lamin on a Citus coordinator (two workers, loopback) beside a single
//! node with the same settings (issue 21). lamin's tables stay local to the
//! coordinator (README "Scaling out: Citus" says why), so this measures what
//! Citus costs lamin there (its planner and executor hooks on every
//! statement), not a speed-up: bulk labels and artifacts, and search latency
//! over the labels. Two rounds, A B A B, each round adding to both.
//!
//!     scripts/bench citus       (BENCH_N per round, default 20000)

use std::time::Instant;

use lamin_e2e::citus::CitusCluster;
use lamin_e2e::{percentile, Cluster};

/// Both servers' settings beside Citus's own (which the single node gets too,
/// but for preloading Citus).
const SETTINGS: &str = "shared_buffers = '512MB'\nmax_wal_size = '4GB'\n";

const WORDS: &[&str] = &[
    "macrophage",
    "hepatocyte",
    "neuron",
    "fibroblast",
    "T cell",
    "B cell",
    "monocyte",
    "dendritic cell",
    "erythrocyte",
    "neutrophil",
    "keratinocyte",
    "adipocyte",
];
const PLACES: &[&str] = &[
    "lung",
    "liver",
    "kidney",
    "spleen",
    "bone marrow",
    "lymph node",
    "skin",
    "brain",
];
const QUERIES: &[&str] = &[
    "T cell",
    "hepatocyte of liver",
    "macrophag",
    "lymph node",
    "dendritic",
    "neuron of brain 12",
    "B cel",
    "skin",
    "monocyte of spleen",
    "fibroblst",
];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One round on one server: labels, artifacts (1,000 a statement), then
/// searches; returns labels/s, artifacts/s, search p50 and p99 (ms).
fn round(db: &mut postgres::Client, round: usize, n: usize) -> (f64, f64, f64, f64) {
    let start = Instant::now();
    for b in 0..n / 1000 {
        let names: Vec<String> = (0..1000)
            .map(|i| {
                let k = (round * n) + b * 1000 + i;
                format!(
                    "{} of {} {k}",
                    WORDS[k % WORDS.len()],
                    PLACES[(k / WORDS.len()) % PLACES.len()]
                )
            })
            .collect();
        db.execute(
            "INSERT INTO lamin.ulabel (name) SELECT unnest($1::text[])",
            &[&names],
        )
        .unwrap();
    }
    let labels = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for b in 0..n / 1000 {
        let keys: Vec<String> = (0..1000)
            .map(|i| format!("round{round}/{b}/file-{i}.parquet"))
            .collect();
        db.execute(
            "SELECT count(*) FROM lamin.save_artifacts(
                 ARRAY(SELECT encode(sha256(convert_to(k, 'UTF8')), 'hex') FROM unnest($1::text[]) k),
                 array_fill(1000::bigint, ARRAY[cardinality($1::text[])]), keys => $1::text[])",
            &[&keys],
        )
        .unwrap();
    }
    let artifacts = n as f64 / start.elapsed().as_secs_f64();
    db.batch_execute("ANALYZE").unwrap();
    let mut times = Vec::new();
    for _ in 0..20 {
        for q in QUERIES {
            let start = Instant::now();
            db.query("SELECT uid FROM lamin.search($1, 'lamin.ulabel')", &[q])
                .unwrap();
            times.push(start.elapsed());
        }
    }
    times.sort();
    (
        labels,
        artifacts,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
    )
}

fn main() {
    let n = env_or("BENCH_N", 20_000).max(1000);
    let setup = "CREATE EXTENSION lamin CASCADE; SELECT lamin.add_storage('/tmp/lamin-bench-citus'); SET client_min_messages = warning";
    let single = Cluster::start_node(
        &format!("max_connections = 200\n{SETTINGS}"),
        "CREATE EXTENSION lamin CASCADE",
        "unused-single-node",
    );
    single
        .connect()
        .batch_execute("SELECT lamin.add_storage('/tmp/lamin-bench-citus')")
        .unwrap();
    let citus = CitusCluster::start_with(2, SETTINGS, setup);
    let mut a = single.connect();
    let mut b = citus.coordinator.connect();
    println!("\n{n} labels and {n} artifacts per round (1,000 a statement), then 200 searches of lamin.ulabel; A B A B:\n");
    println!("| round | server | labels/s | artifacts/s | search p50 ms | search p99 ms |");
    println!("|---:|---|---:|---:|---:|---:|");
    for r in 0..2 {
        for (name, db) in [
            ("single node", &mut a),
            ("Citus coordinator + 2 workers", &mut b),
        ] {
            let (labels, artifacts, p50, p99) = round(db, r, n);
            println!(
                "| {} | {name} | {labels:.0} | {artifacts:.0} | {p50:.2} | {p99:.2} |",
                r + 1
            );
        }
    }
}
