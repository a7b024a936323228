//! Search, validate and standardize at scale, with two baselines run beside
//! lamin.search on the same registry and queries:
//!   (a) LaminDB's ranking written as plain SQL (ILIKE filter, CASE/regex weights),
//!   (b) pg_trgm: ORDER BY similarity over the trigram-indexed terms.
//!
//!     scripts/bench search            (BENCH_SIZES=1000000,10000000 by default)
//!
//! BENCH_LIBRARY_DIR=<dir> loads lamin.so from <dir> instead (a build of
//! another commit with the same SQL), for before/after runs.

use std::time::{Duration, Instant};

use lamin_e2e::Cluster;

/// Vocabulary for synthetic but realistic cell-type-like names.
const BASES: &[&str] = &[
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
    "megakaryocyte",
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
    "osteoclast",
    "myoblast",
    "cardiomyocyte",
    "endothelial cell",
    "epithelial cell",
    "astrocyte",
    "oligodendrocyte",
    "microglial cell",
    "pericyte",
    "podocyte",
    "enterocyte",
    "goblet cell",
    "Paneth cell",
    "stem cell",
    "progenitor cell",
    "thymocyte",
    "lymphocyte",
    "granulocyte",
    "histiocyte",
];
const MODIFIERS: &[&str] = &[
    "activated",
    "naive",
    "memory",
    "effector",
    "regulatory",
    "resident",
    "circulating",
    "immature",
    "mature",
    "proliferating",
    "quiescent",
    "CD4-positive",
    "CD8-positive",
    "CD14-positive",
    "CD16-negative",
    "IgG-positive",
    "alpha-beta",
    "gamma-delta",
    "type I",
    "type II",
    "inflammatory",
    "tolerogenic",
    "cytotoxic",
    "helper",
    "follicular",
    "germinal center",
    "marginal zone",
    "transitional",
    "interstitial",
    "alveolar",
];
const TISSUES: &[&str] = &[
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
    "colon",
    "stomach",
    "pancreas",
    "thymus",
    "blood",
    "adipose tissue",
    "muscle",
    "retina",
    "placenta",
    "tonsil",
];
const STAGES: &[&str] = &[
    "embryonic",
    "fetal",
    "neonatal",
    "juvenile",
    "adult",
    "aged",
    "early",
    "late",
    "primary",
    "secondary",
    "tertiary",
    "terminal",
    "basal",
    "luminal",
    "apical",
    "distal",
    "proximal",
    "central",
    "peripheral",
    "ectopic",
    "tumor-associated",
    "reactive",
    "senescent",
    "dormant",
    "migratory",
];

/// The SQL expression of the i-th synthetic name (0-based, bijective up to the
/// product of the vocabulary sizes: 40 × 30 × 20 × 25 × 17 = 10.2M).
fn name_sql(i: &str) -> String {
    fn arr(words: &[&str]) -> String {
        let quoted: Vec<String> = words
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', "''")))
            .collect();
        format!("ARRAY[{}]", quoted.join(","))
    }
    format!(
        "(({m})[1 + {i} % 30] || ' ' || ({b})[1 + ({i} / 30) % 40] || ' of ' || ({t})[1 + ({i} / 1200) % 20]
          || CASE WHEN {i} >= 24000 THEN ', ' || ({s})[1 + ({i} / 24000) % 25] || ' ' || ({i} / 600000 + 1)::text || 'x' ELSE '' END)",
        m = arr(MODIFIERS),
        b = arr(BASES),
        t = arr(TISSUES),
        s = arr(STAGES),
    )
}

struct Stats {
    p50: Duration,
    p99: Duration,
    n: usize,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        p50: at(0.5),
        p99: at(0.99),
        n: samples.len(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

const QUERIES: &[(&str, &str)] = &[
    ("exact", "naive macrophage of lung"),
    ("exact", "CD8-positive T cell of spleen"),
    ("exact", "activated hepatocyte of liver"),
    ("prefix", "alveolar macro"),
    ("prefix", "CD4-positive helper"),
    ("prefix", "regulatory T"),
    ("short token", "CD8"),
    ("short token", "IgG"),
    ("short token", "NK"),
    ("multi-word", "memory B cell bone marrow"),
    ("multi-word", "dendritic cell lymph node"),
    ("multi-word", "gamma-delta T cell skin"),
    ("misspelt", "macrophge"),
    ("misspelt", "hepatocite"),
    ("misspelt", "fibroblst of lung"),
    // Letters and digits spelt otherwise than in the names (0.5.0: looked up
    // in each spelling at the boundary).
    ("letter/digit", "CD14positive monocyte"),
    ("letter/digit", "cd 16-negative"),
];

/// LaminDB's search ranking (lamin-utils) as one SQL statement: rows that
/// contain the query in the name or a synonym, weighted exact ×200, synonym
/// ×200, whole phrase ×10, synonym prefix ×8, word start ×2, word end ×2, contains ×1.
const LAMINDB_SQL: &str = "
SELECT name FROM bench.term r,
     LATERAL (SELECT lower(r.name) AS n, lower(array_to_string(r.synonyms, '|')) AS s,
                     regexp_replace(lower($1), '([.*+?^${}()|\\[\\]\\\\])', '\\\\\\1', 'g') AS q) x
WHERE r.name ILIKE '%' || $1 || '%' OR array_to_string(r.synonyms, '|') ILIKE '%' || $1 || '%'
ORDER BY
    (CASE WHEN x.n = lower($1) THEN 200 ELSE 0 END)
  + (CASE WHEN x.s ~ ('(^|\\|)' || x.q || '(\\||$)') THEN 200 ELSE 0 END)
  + (CASE WHEN x.n ~ ('\\m' || x.q || '\\M') THEN 10 ELSE 0 END)
  + (CASE WHEN x.s ~ ('(^|\\|)' || x.q) THEN 8 ELSE 0 END)
  + (CASE WHEN x.n ~ ('\\m' || x.q) THEN 2 ELSE 0 END)
  + (CASE WHEN x.n ~ (x.q || '\\M') THEN 2 ELSE 0 END)
  + 1 DESC, length(r.name)
LIMIT 20";

/// pg_trgm on its own trigram GIN index over the names (built by the benchmark
/// for this baseline; lamin's own indexes are all made by the extension).
fn trgm_sql(schema: &str) -> String {
    format!(
        "SELECT name FROM bench.term t WHERE t.name OPERATOR({schema}.%) $1
         ORDER BY {schema}.similarity(t.name, $1) DESC LIMIT 20"
    )
}

fn time_query(db: &mut postgres::Client, sql: &str, q: &str) -> Duration {
    let start = Instant::now();
    db.query(sql, &[&q])
        .unwrap_or_else(|e| panic!("query {q:?} failed: {e}"));
    start.elapsed()
}

fn bench_size(db: &mut postgres::Client, size: i64, trgm_schema: &str) {
    println!("\n== registry of {size} names (+ synonyms for every 3rd) ==");
    db.batch_execute(
        "DROP TABLE IF EXISTS bench.term; DELETE FROM lamin.registry WHERE name = 'bench.term';",
    )
    .unwrap();
    db.batch_execute(
        "CREATE TABLE bench.term (id bigint PRIMARY KEY, uid text NOT NULL, name text NOT NULL, synonyms text[] NOT NULL DEFAULT '{}')",
    )
    .unwrap();
    let start = Instant::now();
    db.batch_execute(&format!(
        "INSERT INTO bench.term (id, uid, name, synonyms)
         SELECT i + 1, lamin.uid(8), {name},
                CASE WHEN i % 3 = 0 THEN ARRAY[replace({name}, ' of ', ' in ')] ELSE '{{}}' END
         FROM generate_series(0, {last}) AS i",
        name = name_sql("i"),
        last = size - 1
    ))
    .unwrap();
    let load = start.elapsed();
    let start = Instant::now();
    db.batch_execute(
        "SELECT lamin.make_searchable('bench.term', 'name', 'synonyms', guard => false)",
    )
    .unwrap();
    let index = start.elapsed();
    let start = Instant::now();
    db.batch_execute(&format!(
        "CREATE INDEX bench_term_trgm ON bench.term USING gin (name {trgm_schema}.gin_trgm_ops)"
    ))
    .unwrap();
    let baseline_index = start.elapsed();
    db.batch_execute("ANALYZE lamin.search_term; ANALYZE lamin.search_word; ANALYZE bench.term;")
        .unwrap();
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM lamin.search_term WHERE registry = 'bench.term'),
                    pg_size_pretty(pg_total_relation_size('lamin.search_term') + pg_total_relation_size('lamin.search_word')
                                   + pg_total_relation_size('lamin.search_vocab')),
                    pg_size_pretty(pg_indexes_size('lamin.search_term') + pg_indexes_size('lamin.search_word')
                                   + pg_indexes_size('lamin.search_vocab')),
                    pg_size_pretty(pg_relation_size('bench.term'))",
            &[],
        )
        .unwrap();
    println!(
        "load {:.1} s; make_searchable (terms, words, indexes) {:.1} s; baseline trigram GIN index {:.1} s; \
         {} terms; search index {} of which indexes {}; registry table {}",
        load.as_secs_f64(),
        index.as_secs_f64(),
        baseline_index.as_secs_f64(),
        row.get::<_, i64>(0),
        row.get::<_, String>(1),
        row.get::<_, String>(2),
        row.get::<_, String>(3)
    );

    let reps = 5;
    let ours_sql = "SELECT * FROM lamin.search($1, 'bench.term')";
    for (_, q) in QUERIES {
        time_query(db, ours_sql, q); // warm the cache
    }
    let mut all = Vec::new();
    println!(
        "{:<12} {:<30} {:>9} {:>9}  top hit",
        "kind", "query", "p50 ms", "max ms"
    );
    for (kind, q) in QUERIES {
        let samples: Vec<Duration> = (0..reps).map(|_| time_query(db, ours_sql, q)).collect();
        let top: Option<String> = db.query(ours_sql, &[q]).unwrap().first().map(|r| r.get(2));
        let s = stats(samples.clone());
        println!(
            "{kind:<12} {q:<30} {:>9.2} {:>9.2}  {}",
            ms(s.p50),
            ms(*samples.iter().max().unwrap()),
            top.unwrap_or_else(|| "(none)".into())
        );
        all.extend(samples);
    }
    let ours = stats(all);

    // Baselines: one run per query (they scan the table).
    let trgm = trgm_sql(trgm_schema);
    let lamindb: Vec<Duration> = QUERIES
        .iter()
        .map(|(_, q)| time_query(db, LAMINDB_SQL, q))
        .collect();
    let lamindb_misses = QUERIES
        .iter()
        .filter(|(kind, q)| *kind == "misspelt" && db.query(LAMINDB_SQL, &[q]).unwrap().is_empty())
        .count();
    let trgm_times: Vec<Duration> = QUERIES
        .iter()
        .map(|(_, q)| time_query(db, &trgm, q))
        .collect();
    let lamindb = stats(lamindb);
    let trgm = stats(trgm_times);
    println!(
        "\n{:<44} {:>9} {:>9} {:>8}",
        "over the whole query mix", "p50 ms", "p99 ms", "samples"
    );
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>8}",
        "lamin.search",
        ms(ours.p50),
        ms(ours.p99),
        ours.n
    );
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>8}",
        "(a) LaminDB ranking as SQL (ILIKE + regex)",
        ms(lamindb.p50),
        ms(lamindb.p99),
        lamindb.n
    );
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>8}",
        "(b) pg_trgm % + ORDER BY similarity (GIN)",
        ms(trgm.p50),
        ms(trgm.p99),
        trgm.n
    );
    println!(
        "ratios (baseline / lamin.search): p50 {:.1}x and {:.1}x; p99 {:.1}x and {:.1}x; LaminDB ranking found nothing for {}/3 misspelt queries",
        ms(lamindb.p50) / ms(ours.p50),
        ms(trgm.p50) / ms(ours.p50),
        ms(lamindb.p99) / ms(ours.p99),
        ms(trgm.p99) / ms(ours.p99),
        lamindb_misses
    );
}

fn bench_validate(db: &mut postgres::Client) {
    println!("\n== validate / standardize against a 100k-term registry ==");
    db.batch_execute(&format!(
        "DROP TABLE IF EXISTS bench.small; DELETE FROM lamin.registry WHERE name = 'bench.small';
         CREATE TABLE bench.small (id bigint PRIMARY KEY, uid text NOT NULL, name text NOT NULL, synonyms text[] NOT NULL DEFAULT '{{}}');
         INSERT INTO bench.small SELECT i + 1, lamin.uid(8), {name}, ARRAY['syn ' || i] FROM generate_series(0, 99999) AS i;
         CREATE INDEX ON bench.small (name);
         SELECT lamin.make_searchable('bench.small', 'name', 'synonyms', guard => false);
         ANALYZE bench.small;
         DROP TABLE IF EXISTS bench.vals;
         -- 2M values: 40% exact, 20% other case, 20% synonyms, 20% unknown;
         -- two arrays of 1M (a call takes at most 1M values).
         CREATE TABLE bench.vals AS
         SELECT array_agg(CASE i % 5 WHEN 0 THEN n WHEN 1 THEN n WHEN 2 THEN upper(n) WHEN 3 THEN 'syn ' || (i % 100000) ELSE 'unknown ' || i END) AS a
         FROM (SELECT i, {name_j} AS n FROM generate_series(0, 1999999) AS i, LATERAL (SELECT i % 100000 AS j) jj) s
         GROUP BY i / 1000000;",
        name = name_sql("i"),
        name_j = name_sql("j")
    ))
    .unwrap();
    let n = 2_000_000f64;
    let base = time_query_noarg(db, "SELECT sum(cardinality(a)) FROM bench.vals");
    let v = time_query_noarg(
        db,
        "SELECT sum(cardinality(lamin.validate('bench.small', a))) FROM bench.vals",
    );
    let s = time_query_noarg(
        db,
        "SELECT sum(cardinality(lamin.standardize('bench.small', a))) FROM bench.vals",
    );
    let sql_validate = time_query_noarg(
        db,
        "SELECT count(*) FROM bench.vals, unnest(a) AS v WHERE EXISTS (SELECT 1 FROM bench.small s WHERE s.name = v)",
    );
    println!(
        "reading the 2M values (two arrays) alone: {:.0} ms",
        ms(base)
    );
    println!(
        "lamin.validate     2M values (2 calls): {:>7.0} ms = {:>6.2} M values/s",
        ms(v),
        n / v.as_secs_f64() / 1e6
    );
    println!(
        "lamin.standardize  2M values (2 calls): {:>7.0} ms = {:>6.2} M values/s",
        ms(s),
        n / s.as_secs_f64() / 1e6
    );
    println!(
        "baseline: SQL EXISTS per value (btree) 2M: {:>7.0} ms = {:>6.2} M values/s  (validate is {:.1}x)",
        ms(sql_validate),
        n / sql_validate.as_secs_f64() / 1e6,
        sql_validate.as_secs_f64() / v.as_secs_f64()
    );
}

fn time_query_noarg(db: &mut postgres::Client, sql: &str) -> Duration {
    let start = Instant::now();
    db.query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
    start.elapsed()
}

fn main() {
    let sizes: Vec<i64> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("BENCH_SIZES: comma-separated counts")
        })
        .collect();
    let cluster = Cluster::start();
    // Settings a deployment of this size would have (the defaults assume a tiny machine).
    let mut admin = cluster.connect();
    for setting in [
        "shared_buffers = '4GB'",
        "work_mem = '64MB'",
        "maintenance_work_mem = '1GB'",
        "max_wal_size = '8GB'",
        "effective_cache_size = '16GB'",
    ] {
        admin
            .batch_execute(&format!("ALTER SYSTEM SET {setting}"))
            .unwrap();
    }
    // BENCH_LIBRARY_DIR: load lamin.so from that folder (a build of another
    // commit, same SQL) for a before/after comparison on one machine.
    if let Ok(dir) = std::env::var("BENCH_LIBRARY_DIR") {
        println!("lamin.so loaded from {dir}");
        admin
            .batch_execute(&format!(
                "ALTER SYSTEM SET dynamic_library_path = '{}:$libdir'",
                dir.replace('\'', "''")
            ))
            .unwrap();
    }
    drop(admin);
    cluster.restart();
    let mut db = cluster.connect();
    db.batch_execute("CREATE SCHEMA bench; SET statement_timeout = '30min';")
        .unwrap();
    let trgm_schema: String = db
        .query_one(
            "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'",
            &[],
        )
        .unwrap()
        .get(0);
    let version: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
    println!("lamin {version}; throw-away cluster with shared_buffers 4GB, work_mem 64MB; 2 cores, 1 client");
    bench_validate(&mut db);
    for size in sizes {
        bench_size(&mut db, size, &trgm_schema);
    }
}
