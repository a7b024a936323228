//! Job queue soak: many empty (noop) jobs fed continuously to one release
//! sidecar with the default settings except a short retention, reporting
//! per tenth of the run the jobs/s and the size of `lamin.job`: with pruning
//! both stay flat. Beside it, the same feed with pruning off for the first
//! two tenths: the table grows with every job.
//!
//!     scripts/bench jobs-soak   (BENCH_SOAK_JOBS, default 10000000;
//!                                BENCH_SOAK_CONCURRENCY, default the sidecar's)

use std::time::Instant;

use lamin_e2e::{Cluster, Sidecar};

/// Jobs added per statement while the queue runs low.
const FEED: i64 = 50_000;

fn env(name: &str) -> Option<i64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn one(db: &mut postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().get(0)
}

/// Feed `total` jobs and print a line per `window` finished.
fn soak(db: &mut postgres::Client, label: &str, total: i64, window: i64) {
    let started = Instant::now();
    let mut enqueued = 0i64;
    let mut last = (0i64, 0f64);
    loop {
        let live = one(
            db,
            "SELECT count(*) FROM lamin.job WHERE status IN ('queued', 'running')",
        );
        if live < FEED && enqueued < total {
            let add = FEED.min(total - enqueued);
            db.execute(
                "SELECT lamin.enqueue('noop') FROM generate_series(1, $1::int)",
                &[&(add as i32)],
            )
            .unwrap();
            enqueued += add;
            continue;
        }
        let finished = enqueued - live;
        if finished - last.0 >= window || finished == total {
            let secs = started.elapsed().as_secs_f64();
            let rows = one(db, "SELECT count(*) FROM lamin.job");
            let bytes = one(db, "SELECT pg_total_relation_size('lamin.job')");
            println!(
                "{label:<12} {finished:>11} {:>9.1} {:>9.0} {rows:>11} {:>11.1}",
                secs,
                (finished - last.0) as f64 / (secs - last.1),
                bytes as f64 / 1048576.0
            );
            last = (finished, secs);
            if finished == total {
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn main() {
    let total = env("BENCH_SOAK_JOBS").unwrap_or(10_000_000);
    let window = (total / 10).max(1);
    let concurrency = env("BENCH_SOAK_CONCURRENCY").map(|c| c.to_string());
    let cluster = Cluster::start_tuned();
    let mut db = cluster.connect();
    println!(
        "lamin job queue soak: {total} noop jobs fed {FEED} at a time, one release sidecar (log level info, concurrency {}), autovacuum on\n",
        concurrency.as_deref().unwrap_or("default")
    );
    println!(
        "{:<12} {:>11} {:>9} {:>9} {:>11} {:>11}",
        "case", "jobs done", "seconds", "jobs/s", "job rows", "job MB"
    );
    let start = |name: &str, extra: &[&str]| {
        let mut args: Vec<&str> = extra.to_vec();
        if let Some(c) = &concurrency {
            args.extend(["--concurrency", c.as_str()]);
        }
        Sidecar::start_as_users_do(&cluster, name, &args)
    };

    // Baseline: no pruning, two tenths of the run.
    {
        let _sidecar = start("soak-keep", &["--prune-interval-s", "0"]);
        soak(&mut db, "no pruning", 2 * window, window);
    }
    // (VACUUM outside the prune's transaction: a batch is one transaction.)
    db.batch_execute("SELECT lamin.prune_jobs(interval '0', interval '0', 100000000)")
        .unwrap();
    db.batch_execute("VACUUM lamin.job").unwrap();

    // Finished jobs kept 30 s, pruned every 10 s.
    let _sidecar = start(
        "soak-prune",
        &["--keep-done-jobs", "30s", "--prune-interval-s", "10"],
    );
    soak(&mut db, "pruned", total, window);
}
