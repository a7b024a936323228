//! The cost of row-level security: lamin.search, validate and standardize on
//! a registry of 1M labels (lamin.ulabel, spread over 4 spaces), run by the
//! table owner (RLS bypassed) and, beside it, by an ordinary lamin role that
//! reads all 4 spaces through grants (the same rows, every policy applied).
//!
//!     scripts/bench access        (BENCH_ROWS, default 1000000)

use std::time::{Duration, Instant};

use lamin_e2e::Cluster;

const WORDS: &[&str] = &[
    "macrophage",
    "hepatocyte",
    "neuron",
    "fibroblast",
    "T cell",
    "B cell",
    "monocyte",
    "dendritic cell",
    "natural killer cell",
    "erythrocyte",
    "neutrophil",
    "eosinophil",
    "basophil",
    "mast cell",
    "plasma cell",
    "keratinocyte",
    "melanocyte",
    "adipocyte",
    "chondrocyte",
    "osteoblast",
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
    "heart",
    "intestine",
];

fn arr(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    format!("ARRAY[{}]", quoted.join(","))
}

fn p50(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

/// Median milliseconds of `sql` over `reps` runs (after one warm-up).
fn time(db: &mut postgres::Client, sql: &str, reps: usize) -> f64 {
    db.batch_execute(sql).unwrap();
    p50((0..reps)
        .map(|_| {
            let start = Instant::now();
            db.batch_execute(sql).unwrap();
            start.elapsed()
        })
        .collect())
}

fn main() {
    let rows: i64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let cluster = Cluster::start_tuned();
    let mut owner = cluster.connect();
    let start = Instant::now();
    owner
        .batch_execute(&format!(
            "SELECT lamin.create_space('s2'), lamin.create_space('s3'), lamin.create_space('s4');
             SET lamin.allow_duplicates = on;
             INSERT INTO lamin.ulabel (name, synonyms, space_id)
             SELECT ({w})[1 + i % {nw}] || ' ' || i || ' of ' || ({p})[1 + (i / {nw}) % {np}],
                    CASE WHEN i % 3 = 0 THEN ARRAY['label ' || i] ELSE '{{}}' END,
                    1 + i % 4
             FROM generate_series(0, {last}) i;
             ANALYZE;
             CREATE ROLE bench_user LOGIN PASSWORD 'bench' IN ROLE lamin_reader;
             SELECT lamin.grant(s, 'bench_user', 'read') FROM unnest(ARRAY['s2', 's3', 's4']) s;",
            w = arr(WORDS),
            nw = WORDS.len(),
            p = arr(PLACES),
            np = PLACES.len(),
            last = rows - 1
        ))
        .unwrap();
    println!(
        "row-level security overhead: {rows} labels in lamin.ulabel over 4 spaces (loaded in {:.0} s); \
         the owner bypasses RLS, bench_user reads all 4 spaces through grants (same rows, policies applied); \
         median of 20 runs each\n",
        start.elapsed().as_secs_f64()
    );
    let mut user =
        postgres::Client::connect(&cluster.url_as("bench_user", "bench"), postgres::NoTls).unwrap();
    let visible: i64 = user
        .query_one("SELECT count(*) FROM lamin.ulabel", &[])
        .unwrap()
        .get(0);
    assert_eq!(visible, rows, "bench_user must see every row");

    let values: Vec<String> = (0..1000)
        .map(|i| {
            let i = i * 997 % rows;
            format!(
                "'{} {} of {}'",
                WORDS[(i as usize) % WORDS.len()],
                i,
                PLACES[(i as usize / WORDS.len()) % PLACES.len()]
            )
        })
        .collect();
    let list = format!("ARRAY[{}]", values.join(","));
    let cases = [
        (
            "search 'macrophage 4242' (top 20)",
            "SELECT * FROM lamin.search('macrophage 4242', 'lamin.ulabel')".to_string(),
        ),
        (
            "search 'T cell of lung' (top 20)",
            "SELECT * FROM lamin.search('T cell of lung', 'lamin.ulabel')".to_string(),
        ),
        (
            "search 'label 99' (synonym prefix)",
            "SELECT * FROM lamin.search('label 99', 'lamin.ulabel')".to_string(),
        ),
        (
            "search 'hepatocite' (misspelt)",
            "SELECT * FROM lamin.search('hepatocite', 'lamin.ulabel')".to_string(),
        ),
        (
            "validate 1,000 names",
            format!("SELECT lamin.validate('lamin.ulabel', {list})"),
        ),
        (
            "standardize 1,000 names",
            format!("SELECT lamin.standardize('lamin.ulabel', {list})"),
        ),
        (
            "count rows (plain SELECT)",
            "SELECT count(*) FROM lamin.ulabel".to_string(),
        ),
    ];
    println!(
        "{:<40} {:>12} {:>12} {:>8}",
        "case", "owner ms", "RLS ms", "ratio"
    );
    for (name, sql) in cases {
        let a = time(&mut owner, &sql, 20);
        let b = time(&mut user, &sql, 20);
        println!("{name:<40} {a:>12.2} {b:>12.2} {:>7.2}x", b / a);
    }
}
