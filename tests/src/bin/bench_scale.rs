//! Artifacts at scale: fill lamin.artifact through the bulk path
//! (lamin.save_artifacts) with what a real instance holds, and measure the
//! reads users make at 1M, 10M and the largest size reached.
//!
//!     scripts/bench scale     (BENCH_MAX, default 100000000 artifacts; BENCH_CHECKPOINTS,
//!                              default 1000000,10000000; BENCH_DISK_RESERVE_GB, default 12:
//!                              stop filling when less is free; BENCH_FILL_MINUTES, default 600;
//!                              BENCH_DEFAULTS=0 skips importing the default sources; BENCH_REPS,
//!                              default 300 per read)
//!
//! The cluster is tuned like the local instance and holds the default
//! ontologies and genes (scripts/import-defaults), as a user's does. Two
//! clients fill it, each into its own storage (a bulk save holds its storage's
//! saves lock), in batches of 10,000 artifacts, one transaction each:
//! - a run of pipelines/ingest-N.py is tracked (lamin.track) and reads one
//!   artifact of an earlier batch (lamin.get records it as the run's input),
//!   so lineage grows as a real pipeline's does;
//! - the batch goes to one of four spaces (lamin.use_space);
//! - lamin.save_artifacts saves it: keys `cN/bB/sample-I.h5ad`, one in ten a
//!   new version (new content) of a key of an earlier batch;
//! - each new record gets a `project` label (one of 1,000 ulabels), a
//!   `cell_type` link (one of CL's terms when the sources are loaded) and a
//!   `temperature` value (through the typing trigger), with every trigger on.
//!
//! At each checkpoint the fill pauses, the tables are vacuumed and analyzed,
//! and each read runs BENCH_REPS times with random arguments (a slow read
//! stops after a minute, with at least 3 runs): p50, p99.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use lamin_e2e::{percentile, Cluster};

const BATCH: u64 = 10_000;
const CLIENTS: u64 = 2;
const SPACES: [&str; 4] = ["bench-a", "bench-b", "bench-c", "bench-d"];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn free_gb(path: &std::path::Path) -> f64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .expect("df");
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes: f64 = text
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0.0);
    bytes / 1e9
}

/// A deterministic "random" number from a seed (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn key(client: u64, batch: u64, i: u64) -> String {
    format!("c{client}/b{batch}/sample-{i}.h5ad")
}

/// One batch of one client, in one transaction.
fn fill_batch(db: &mut postgres::Client, client: u64, batch: u64, storage: &str) {
    // One in ten entries: new content under a key of an earlier batch.
    let keys: Vec<String> = (0..BATCH)
        .map(|i| {
            if batch > 0 && i % 10 == 9 {
                key(client, mix(batch * BATCH + i) % batch, i)
            } else {
                key(client, batch, i)
            }
        })
        .collect();
    let salt = format!("{client}/{batch}");
    let mut tx = db.transaction().unwrap();
    tx.execute(
        "SELECT lamin.track($1)",
        &[&format!("pipelines/ingest-{client}.py")],
    )
    .unwrap();
    tx.execute(
        "SELECT lamin.use_space($1)",
        &[&SPACES[(batch % 4) as usize]],
    )
    .unwrap();
    if batch > 0 {
        // The run reads an artifact of batch b/2: lineage depth grows as log2.
        let input = key(client, batch / 2, 0);
        tx.execute(
            "SELECT lamin.get(a.uid) FROM lamin.artifact a
             WHERE a.storage_id = lamin.storage_id($2) AND a.key = $1 AND a.is_latest",
            &[&input, &storage],
        )
        .unwrap();
    }
    tx.execute("TRUNCATE saved", &[]).unwrap();
    tx.execute(
        "INSERT INTO saved
         SELECT s.ord, s.uid, s.outcome FROM lamin.save_artifacts(
             ARRAY(SELECT encode(sha256(convert_to(k || $2, 'UTF8')), 'hex') FROM unnest($1::text[]) k),
             ARRAY(SELECT 1000000 + (hashtext(k) & 65535)::bigint FROM unnest($1::text[]) k),
             keys => $1::text[], storage => $3) s",
        &[&keys, &salt, &storage],
    )
    .unwrap();
    tx.batch_execute(
        "INSERT INTO lamin.artifact_ulabel (artifact_id, ulabel_id, feature_id)
         SELECT a.id, (SELECT min(id) FROM lamin.ulabel WHERE name LIKE 'project-%') + (a.id * 7919) % 1000,
                (SELECT id FROM lamin.feature WHERE name = 'project')
         FROM saved s JOIN lamin.artifact a ON a.uid = s.uid WHERE s.outcome IN ('saved', 'new version');
         INSERT INTO bionty.artifact_cell_type (artifact_id, cell_type_id, feature_id)
         SELECT a.id, ct.ids[1 + (a.id * 104729) % cardinality(ct.ids)], (SELECT id FROM lamin.feature WHERE name = 'cell_type')
         FROM saved s JOIN lamin.artifact a ON a.uid = s.uid
         CROSS JOIN bench_cell_types ct WHERE s.outcome IN ('saved', 'new version');
         INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value)
         SELECT a.id, (SELECT id FROM lamin.feature WHERE name = 'temperature'), to_jsonb(((a.id * 7919) % 100000) / 1000.0)
         FROM saved s JOIN lamin.artifact a ON a.uid = s.uid WHERE s.outcome IN ('saved', 'new version');
         SELECT lamin.finish();",
    )
    .unwrap();
    tx.commit().unwrap();
}

/// One read of the benchmark: its SQL takes one argument ($1), the
/// `arg`-th of a random artifact's (uid, key, hash, key prefix, label, value).
/// A read with `cli` runs the release CLI instead (`{}` is the argument), as
/// a user does: the process and its connection are part of the time.
struct Read {
    name: &'static str,
    sql: &'static str,
    cli: &'static [&'static str],
    arg: usize,
}

const READS: &[Read] = &[
    Read {
        name: "get by uid: lamin.get(uid)",
        sql: "SELECT uid FROM lamin.get($1)",
        cli: &[],
        arg: 0,
    },
    Read {
        name: "get by stem (latest version): lamin.get(stem)",
        sql: "SELECT uid FROM lamin.get(left($1, 16))",
        cli: &[],
        arg: 0,
    },
    Read {
        name: "by key: lamin.artifacts WHERE key = … AND is_latest",
        sql: "SELECT uid FROM lamin.artifacts WHERE key = $1 AND is_latest",
        cli: &[],
        arg: 1,
    },
    Read {
        name: "by hash: lamin.artifacts WHERE hash = …",
        sql: "SELECT uid FROM lamin.artifacts WHERE hash = $1",
        cli: &[],
        arg: 2,
    },
    Read {
        name: "key prefix, first 100 (lamin ls's query)",
        sql: "SELECT v.uid, v.key FROM lamin.artifacts v JOIN lamin.artifact a ON a.uid = v.uid
              WHERE v.is_latest AND starts_with(v.key, $1)
              ORDER BY v.key COLLATE \"C\" NULLS LAST, a.id LIMIT 100",
        cli: &[],
        arg: 3,
    },
    Read {
        name: "by label, 100 of them: find_artifacts({project: …}, 100)",
        sql: "SELECT uid FROM lamin.find_artifacts(jsonb_build_object('project', $1::text), max_rows => 100)",
        cli: &[],
        arg: 4,
    },
    Read {
        name: "the CLI: lamin ls PREFIX --limit 100",
        sql: "",
        cli: &["ls", "{}", "--limit", "100", "--format", "csv"],
        arg: 3,
    },
    Read {
        name: "the CLI: lamin ls --label NAME --limit 100",
        sql: "",
        cli: &["ls", "--label", "{}", "--limit", "100", "--format", "csv"],
        arg: 4,
    },
    Read {
        name: "the CLI: lamin ls --feature temperature=x --limit 100",
        sql: "",
        cli: &["ls", "--feature", "temperature={}", "--limit", "100", "--format", "csv"],
        arg: 5,
    },
    Read {
        name: "by value, all: find_artifacts({temperature: [x, x+0.01)})",
        sql: "SELECT uid FROM lamin.find_artifacts(jsonb_build_object('temperature',
                  jsonb_build_object('>=', $1::text::numeric, '<', $1::text::numeric + 0.01)))",
        cli: &[],
        arg: 5,
    },
    Read {
        name: "lineage of one artifact: lamin.lineage(uid)",
        sql: "SELECT count(*) FROM lamin.lineage($1)",
        cli: &[],
        arg: 0,
    },
];

fn measure(db: &mut postgres::Client, url: &str, count: u64, reps: u64) {
    db.batch_execute("VACUUM ANALYZE").unwrap();
    let (bytes, artifacts, heads, runs, audit): (i64, i64, i64, i64, i64) = {
        let r = db
            .query_one(
                "SELECT pg_database_size(current_database()), (SELECT count(*) FROM lamin.artifact),
                        (SELECT count(*) FROM lamin.artifact WHERE is_latest), (SELECT count(*) FROM lamin.run),
                        (SELECT count(*) FROM lamin.audit)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
    };
    println!(
        "\n## {artifacts} artifacts ({heads} latest versions, {runs} runs, {audit} audit rows): database {:.2} GB",
        bytes as f64 / 1e9
    );
    let sizes = db
        .query(
            "SELECT c.oid::regclass::text, pg_total_relation_size(c.oid), pg_relation_size(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('lamin', 'bionty')
             ORDER BY 2 DESC LIMIT 8",
            &[],
        )
        .unwrap();
    println!(
        "{:<40} {:>12} {:>12} {:>14}",
        "table", "total MB", "heap MB", "bytes/artifact"
    );
    for r in &sizes {
        let (name, total, heap): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        println!(
            "{name:<40} {:>12.0} {:>12.0} {:>14.0}",
            total as f64 / 1e6,
            heap as f64 / 1e6,
            total as f64 / artifacts as f64
        );
    }
    println!(
        "{:<40} {:>12} {:>12} {:>14.0}",
        "whole database",
        "",
        "",
        bytes as f64 / artifacts as f64
    );
    // Arguments: existing artifacts picked at random by id.
    let max_id: i64 = db
        .query_one("SELECT max(id) FROM lamin.artifact", &[])
        .unwrap()
        .get(0);
    let mut args: Vec<[String; 6]> = Vec::new();
    let mut seed = count;
    while args.len() < reps as usize {
        seed = mix(seed);
        let id = 1 + (seed % max_id as u64) as i64;
        if let Some(r) = db
            .query_opt(
                "SELECT a.uid, a.key, a.hash FROM lamin.artifact a WHERE a.id >= $1 ORDER BY a.id LIMIT 1",
                &[&id],
            )
            .unwrap()
        {
            let key: String = r.get(1);
            let prefix = format!("{}/", key.rsplit_once('/').unwrap().0);
            args.push([
                r.get(0),
                key,
                r.get(2),
                prefix,
                format!("project-{}", seed % 1000),
                format!("{:.2}", ((seed >> 20) % 9990) as f64 / 100.0),
            ]);
        }
    }
    println!(
        "\n{:<64} {:>9} {:>9} {:>9} {:>8} {:>6}",
        "read", "p50 ms", "p99 ms", "max ms", "rows", "runs"
    );
    for read in READS {
        let stmt = (read.cli.is_empty()).then(|| db.prepare(read.sql).unwrap());
        let mut times = Vec::with_capacity(args.len());
        let mut rows = 0usize;
        let read_start = Instant::now();
        for a in &args {
            // A slow read gets at least 3 runs and at most a minute.
            if times.len() >= 3 && read_start.elapsed() > Duration::from_secs(60) {
                break;
            }
            let start = Instant::now();
            rows += match &stmt {
                Some(stmt) => db
                    .query(stmt, &[&a[read.arg]])
                    .unwrap_or_else(|e| panic!("{}: {e:?}", read.name))
                    .len(),
                None => {
                    let args: Vec<String> = read
                        .cli
                        .iter()
                        .map(|x| x.replace("{}", &a[read.arg]))
                        .collect();
                    let out = std::process::Command::new(lamin_e2e::lamin_bin())
                        .args(&args)
                        .env("DATABASE_URL", url)
                        .output()
                        .expect("run lamin");
                    assert!(
                        out.status.success(),
                        "{}: {}",
                        read.name,
                        String::from_utf8_lossy(&out.stderr)
                    );
                    // CSV: a header, then one line per artifact.
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .count()
                        .saturating_sub(1)
                }
            };
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "{:<64} {:>9.2} {:>9.2} {:>9.2} {:>8.0} {:>6}",
            read.name,
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.last().unwrap().as_secs_f64() * 1000.0,
            rows as f64 / times.len() as f64,
            times.len()
        );
    }
    println!();
}

fn main() {
    let max = env_u64("BENCH_MAX", 100_000_000);
    let reserve = env_u64("BENCH_DISK_RESERVE_GB", 12) as f64;
    let minutes = env_u64("BENCH_FILL_MINUTES", 600);
    let reps = env_u64("BENCH_REPS", 300);
    let mut checkpoints: Vec<u64> = std::env::var("BENCH_CHECKPOINTS")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|v| v.trim().replace('_', "").parse().ok())
        .filter(|&c| c < max)
        .collect();
    checkpoints.push(max);
    let defaults = std::env::var("BENCH_DEFAULTS").as_deref() != Ok("0");

    let cluster = Cluster::start_tuned();
    let mut db = cluster.connect();
    let version: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
    if defaults {
        let start = Instant::now();
        lamin_e2e::import_default_sources(&cluster.url());
        eprintln!(
            "default sources imported in {:.0} s",
            start.elapsed().as_secs_f64()
        );
    }
    db.batch_execute(
        "SET client_min_messages = warning;
         SELECT lamin.create_space(s) FROM unnest(ARRAY['bench-a', 'bench-b', 'bench-c', 'bench-d']) s;
         SELECT lamin.create_feature('project', 'cat[lamin.ulabel]');
         SELECT lamin.create_feature('cell_type', 'cat[bionty.cell_type]');
         SELECT lamin.create_feature('temperature', 'float');
         SET lamin.allow_duplicates = on;
         INSERT INTO lamin.ulabel (name) SELECT 'project-' || i FROM generate_series(0, 999) i;
         INSERT INTO bionty.cell_type (ontology_id, name)
         SELECT 'CL:99' || lpad(i::text, 5, '0'), 'bench cell type ' || i FROM generate_series(0, 99) i
         WHERE NOT EXISTS (SELECT FROM bionty.cell_type LIMIT 1);
         RESET lamin.allow_duplicates;",
    )
    .unwrap();
    let (terms, db_bytes): (i64, i64) = {
        let r = db
            .query_one(
                "SELECT (SELECT count(*) FROM lamin.search_term), pg_database_size(current_database())",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    println!(
        "lamin {version}; tuned cluster with {} ({terms} search terms, {:.2} GB before the fill); {CLIENTS} clients, batches of {BATCH}",
        if defaults { "the default sources" } else { "no sources" },
        db_bytes as f64 / 1e9
    );
    let storages: Vec<String> = (0..CLIENTS)
        .map(|c| {
            let root = format!("{}/storage-{c}", cluster.dir().display());
            db.query_one("SELECT lamin.add_storage($1)", &[&root])
                .unwrap();
            root
        })
        .collect();

    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let fill_start = Instant::now();
    let mut reached = 0;
    let mut filled_s = 0.0;
    let batches = Arc::new(Mutex::new(vec![0u64; CLIENTS as usize]));
    for &target in &checkpoints {
        let barrier = Arc::new(Barrier::new(CLIENTS as usize));
        let round_start = Instant::now();
        let round_from = done.load(Ordering::SeqCst);
        std::thread::scope(|s| {
            for c in 0..CLIENTS {
                let (done, stop, batches, storages, barrier) =
                    (&done, &stop, &batches, &storages, &barrier);
                let cluster = &cluster;
                s.spawn(move || {
                    let mut db = cluster.connect();
                    db.batch_execute(
                        "SET client_min_messages = warning;
                         CREATE TEMP TABLE saved (ord int, uid text, outcome text);
                         CREATE TEMP TABLE bench_cell_types AS
                         SELECT array_agg(id ORDER BY id) AS ids FROM bionty.cell_type;",
                    )
                    .unwrap();
                    barrier.wait();
                    loop {
                        if stop.load(Ordering::SeqCst) || done.load(Ordering::SeqCst) >= target {
                            break;
                        }
                        let b = {
                            let mut bs = batches.lock().unwrap();
                            bs[c as usize] += 1;
                            bs[c as usize] - 1
                        };
                        fill_batch(&mut db, c, b, &storages[c as usize]);
                        let n = done.fetch_add(BATCH, Ordering::SeqCst) + BATCH;
                        if n % 500_000 < BATCH {
                            eprintln!(
                                "  {n} artifacts, {:.0} s, {:.1} GB free",
                                fill_start.elapsed().as_secs_f64(),
                                free_gb(cluster.dir())
                            );
                        }
                        if free_gb(cluster.dir()) < reserve
                            || fill_start.elapsed() > Duration::from_secs(minutes * 60)
                        {
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        let n = done.load(Ordering::SeqCst);
        let secs = round_start.elapsed().as_secs_f64();
        filled_s += secs;
        println!(
            "fill {round_from} → {n}: {secs:.0} s, {:.0} artifacts/s (all trigger work, labels and values included)",
            (n - round_from) as f64 / secs
        );
        reached = n;
        measure(&mut db, &cluster.url(), n, reps);
        if stop.load(Ordering::SeqCst) {
            println!(
                "stopped at {n}: {} ({:.1} GB free, reserve {reserve} GB; {:.0} min of filling)",
                if free_gb(cluster.dir()) < reserve {
                    "disk budget"
                } else {
                    "time budget"
                },
                free_gb(cluster.dir()),
                filled_s / 60.0
            );
            break;
        }
    }
    println!(
        "filled {reached} artifacts in {:.0} s of filling ({:.0}/s)",
        filled_s,
        reached as f64 / filled_s
    );
}
