//! Read replicas (issue 21), in a throw-away cluster holding the default
//! ontologies and genes, with a hot standby of it made by pg_basebackup:
//!
//! - `lamin.search` throughput with BENCH_CLIENTS clients on the primary
//!   alone, beside the same clients spread over the primary and the standby
//!   (A B A B, BENCH_SECONDS each);
//! - one client's autocommitted search with and without a transaction id:
//!   until 0.12.0 the library's reads took one, so each search ended with a
//!   commit record and a WAL flush. Both cases send the same statements in
//!   one round trip; the first adds `pg_current_xact_id()`.
//!
//!     scripts/bench replica     (BENCH_CLIENTS default 4, BENCH_SECONDS default 20)

use std::time::{Duration, Instant};

use lamin_e2e::{import_default_sources, percentile, Cluster};

/// Searches a user of the default sources types: names, prefixes, several
/// words, a typo, a gene symbol, a disease, a tissue.
const QUERIES: &[&str] = &[
    "T cell",
    "hepatocyte",
    "CD4-positive, alpha-beta T cell",
    "lymph node",
    "monocyt",
    "dendritic cell",
    "heart left ventricle",
    "type 2 diabetes",
    "neuron",
    "TP53",
    "kidney",
    "macrophge",
    "B cel",
    "lung adenocarcinoma",
    "bone marrow",
];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn search_sql(query: &str) -> String {
    format!(
        "SELECT count(*) FROM lamin.search('{}')",
        query.replace('\'', "''")
    )
}

/// Run the query mix from one client per URL for `seconds`; returns every
/// search's latency.
fn clients(urls: &[String], seconds: u64) -> Vec<Duration> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let handles: Vec<_> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let mut times = Vec::new();
                let mut n = i;
                while Instant::now() < deadline {
                    let sql = search_sql(QUERIES[n % QUERIES.len()]);
                    let start = Instant::now();
                    db.batch_execute(&sql).unwrap();
                    times.push(start.elapsed());
                    n += 1;
                }
                times
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn report(case: &str, mut times: Vec<Duration>, seconds: u64) {
    times.sort();
    println!(
        "| {case} | {:.0} | {:.2} | {:.2} |",
        times.len() as f64 / seconds as f64,
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
}

/// Milliseconds of each of `reps` rounds of the query mix sent as `wrap`
/// makes each one (one round trip each).
fn one_client(
    db: &mut postgres::Client,
    reps: usize,
    wrap: impl Fn(&str) -> String,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..reps {
        for q in QUERIES {
            let sql = wrap(&search_sql(q));
            let start = Instant::now();
            db.batch_execute(&sql).unwrap();
            times.push(start.elapsed());
        }
    }
    times
}

fn main() {
    let n = env_or("BENCH_CLIENTS", 4) as usize;
    let seconds = env_or("BENCH_SECONDS", 20);
    let primary = Cluster::start_tuned();
    let start = Instant::now();
    import_default_sources(&primary.url());
    primary.connect().batch_execute("VACUUM ANALYZE").unwrap();
    let terms: i64 = primary
        .connect()
        .query_one("SELECT count(*) FROM lamin.search_term", &[])
        .unwrap()
        .get(0);
    eprintln!(
        "default sources imported in {:.0} s ({terms} search terms)",
        start.elapsed().as_secs_f64()
    );
    let standby = primary.start_standby();
    primary.wait_for_replay(&standby);
    // Warm both servers' caches with the whole mix.
    for url in [primary.url(), standby.url()] {
        clients(&[url], 3);
    }

    println!("\n{n} clients, {seconds} s each, the 15-query mix, A B A B:\n");
    println!("| clients on | searches/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    let on_primary: Vec<String> = (0..n).map(|_| primary.url()).collect();
    let spread: Vec<String> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                primary.url()
            } else {
                standby.url()
            }
        })
        .collect();
    for _ in 0..2 {
        report(
            &format!("the primary ({n})"),
            clients(&on_primary, seconds),
            seconds,
        );
        report(
            &format!("primary + standby ({} + {})", n.div_ceil(2), n / 2),
            clients(&spread, seconds),
            seconds,
        );
    }

    println!("\nOne client, autocommitted searches, 20 rounds of the mix, A B A B:\n");
    println!("| case | searches/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    let mut db = primary.connect();
    for _ in 0..2 {
        for (case, with_xid) in [
            ("with a transaction id (as until 0.12.0)", true),
            ("without (0.12.0)", false),
        ] {
            let start = Instant::now();
            let times = one_client(&mut db, 20, |sql| {
                if with_xid {
                    format!("BEGIN; SELECT pg_current_xact_id(); {sql}; COMMIT")
                } else {
                    format!("BEGIN; SELECT 1; {sql}; COMMIT")
                }
            });
            let mut sorted = times.clone();
            sorted.sort();
            println!(
                "| {case} | {:.0} | {:.2} | {:.2} |",
                times.len() as f64 / start.elapsed().as_secs_f64(),
                percentile(&sorted, 0.5),
                percentile(&sorted, 0.99)
            );
        }
    }
}
