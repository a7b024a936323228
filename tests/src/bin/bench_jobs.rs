//! Job queue throughput and latency with real sidecars (release build), in a
//! throw-away cluster, with a baseline beside it: the same claim/complete
//! protocol driven by plain SQL clients with no sidecar in between.
//!
//!     scripts/bench jobs        (BENCH_JOBS, default 20000)

use std::time::{Duration, Instant};

use lamin_e2e::{Cluster, Sidecar};

fn wait_done(db: &mut postgres::Client, n: i64) -> f64 {
    let start = Instant::now();
    loop {
        let done: i64 = db
            .query_one("SELECT count(*) FROM lamin.job WHERE status = 'done'", &[])
            .unwrap()
            .get(0);
        if done >= n {
            return start.elapsed().as_secs_f64();
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "jobs not done in 10 min"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn enqueue(db: &mut postgres::Client, n: i64) {
    db.batch_execute("TRUNCATE lamin.job").unwrap();
    db.execute(
        "SELECT lamin.enqueue('noop') FROM generate_series(1, $1::int)",
        &[&(n as i32)],
    )
    .unwrap();
}

fn main() {
    let n: i64 = std::env::var("BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let cluster = Cluster::start_tuned();
    let mut db = cluster.connect();
    println!("lamin job queue: {n} empty (noop) jobs enqueued, then drained; release sidecars with the default settings (concurrency 8, log level info)\n");
    println!("{:<58} {:>9} {:>10}", "case", "seconds", "jobs/s");

    for sidecars in [1usize, 3] {
        enqueue(&mut db, n);
        let started = Instant::now();
        let running: Vec<Sidecar> = (0..sidecars)
            .map(|i| Sidecar::start_as_users_do(&cluster, &format!("bench{sidecars}-{i}"), &[]))
            .collect();
        let _ = wait_done(&mut db, n);
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{:<58} {secs:>9.2} {:>10.0}",
            format!("{sidecars} sidecar(s)"),
            n as f64 / secs
        );
        drop(running);
    }
    // More jobs in flight per sidecar: bigger claim and completion batches.
    {
        enqueue(&mut db, n);
        let started = Instant::now();
        let sidecar = Sidecar::start_as_users_do(&cluster, "bench-c64", &["--concurrency", "64"]);
        let _ = wait_done(&mut db, n);
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{:<58} {secs:>9.2} {:>10.0}",
            "1 sidecar, --concurrency 64",
            n as f64 / secs
        );
        drop(sidecar);
    }

    // As measured before 0.9.0: the sidecar logging at debug (every
    // statement of the driver too), as the tests run it.
    {
        enqueue(&mut db, n);
        let started = Instant::now();
        let sidecar = Sidecar::start_with(&cluster, "bench-debug", &[]);
        let _ = wait_done(&mut db, n);
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{:<58} {secs:>9.2} {:>10.0}",
            "1 sidecar, log level debug (how earlier releases measured)",
            n as f64 / secs
        );
        drop(sidecar);
    }

    // Baseline: 3 plain SQL clients claiming and completing in a loop.
    enqueue(&mut db, n);
    let started = Instant::now();
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let url = cluster.url();
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let name = format!("sql{w}");
                loop {
                    let row = c
                        .query_opt(
                            "SELECT id FROM lamin.claim_job($1, lamin.version(), 30)",
                            &[&name],
                        )
                        .unwrap();
                    let Some(row) = row else { break };
                    let id: i64 = row.get(0);
                    c.query_one("SELECT lamin.complete_job($1, $2)", &[&id, &name])
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:<58} {secs:>9.2} {:>10.0}",
        "  baseline: 3 plain SQL clients, claim + complete loop",
        n as f64 / secs
    );

    // Latency: one job at a time into an idle sidecar, enqueue commit → start.
    db.batch_execute("TRUNCATE lamin.job").unwrap();
    let _idle = Sidecar::start_as_users_do(&cluster, "latency", &["--sweep-interval-s", "3600"]);
    std::thread::sleep(Duration::from_secs(2));
    let mut lat: Vec<f64> = Vec::new();
    for _ in 0..200 {
        let id: i64 = db
            .query_one("SELECT lamin.enqueue('noop')", &[])
            .unwrap()
            .get(0);
        let st: String = db
            .query_one("SELECT lamin.await_job($1, 10)", &[&id])
            .unwrap()
            .get(0);
        assert_eq!(st, "done");
        let ms: f64 = db
            .query_one(
                "SELECT extract(epoch FROM started_at - created_at)::float8 * 1000 FROM lamin.job WHERE id = $1",
                &[&id],
            )
            .unwrap()
            .get(0);
        lat.push(ms);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "\nadd → start latency (commit of the enqueue to the sidecar's claim, 200 jobs one at a time): p50 {:.2} ms, p99 {:.2} ms",
        lat[100], lat[197]
    );
}
