//! Querying by value at scale: "artifacts where feature A > x and label B is
//! under term C", through lamin.find_artifacts and the views over the typed
//! layout of 0.6.0 (lamin.feature_values reads value_number, a range scan of
//! (feature_id, value_number, artifact_id)) and,
//! as the baseline in the same cluster, over the jsonb layout of 0.5.0 (the
//! same rows in a copy of 0.5.0's table and indexes, read through 0.5.0's
//! definition of the view, which compares `(value #>> '{}')::numeric`).
//!
//!     scripts/bench values        (BENCH_ARTIFACTS, default 1000000; BENCH_REPS, default 200;
//!                                  BENCH_CASE_S, default 60: a case's time once it has 3 runs)
//!
//! The fill: BENCH_ARTIFACTS artifacts, 10 feature values and 10 cell-type
//! links each, and a generated cell-type hierarchy of 3,000 terms (a 4-ary
//! tree, every 10th term with a second parent: a DAG of depth 6, shaped like
//! CL's upper levels) in bionty.cell_type, the default ontology registry.
//! Values are bulk-inserted with the typing trigger disabled, as the rows the
//! trigger would write (canonical JSON plus value_number); a sample of them is
//! run through the trigger afterwards and must come out unchanged.
//! BENCH_EXPLAIN=1 prints the plans (EXPLAIN ANALYZE) of the typed query as
//! the owner and as the reader.

use std::time::{Duration, Instant};

use lamin_e2e::Cluster;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn step(db: &mut postgres::Client, what: &str, sql: &str) {
    let start = Instant::now();
    db.batch_execute(sql)
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    eprintln!("  {what}: {:.1} s", start.elapsed().as_secs_f64());
}

/// The benchmark's question asked through the typed per-kind view and the
/// cell-type link table itself (no union view on either side).
fn query_links(threshold: f64) -> String {
    format!(
        "SELECT v.artifact_uid FROM lamin.artifact_values v
         WHERE v.feature = 'temperature' AND v.value_number > {threshold}
           AND EXISTS (SELECT FROM bionty.artifact_cell_type l JOIN bionty.cell_type t ON t.id = l.cell_type_id
                       WHERE l.artifact_id = v.artifact_id
                         AND t.ontology_id IN (SELECT ontology_id FROM bionty.descendants('CL:9000005', include_self => true)))"
    )
}

/// The benchmark's question through lamin.find_artifacts (0.6.0): the value
/// range read from its typed index first, the subtree's records second, then
/// each candidate artifact's links probed.
fn query_find(threshold: f64) -> String {
    format!(
        "SELECT a.uid FROM lamin.find_artifacts('{{\"temperature\": {{\">\": {threshold}}}, \"cell_type\": {{\"under\": \"CL:9000005\"}}}}') a"
    )
}

/// Run a query under a statement timeout: its duration, or None when it timed out.
fn timed(conn: &mut postgres::Client, sql: &str) -> Option<(Duration, usize)> {
    let s = Instant::now();
    match conn.query(sql, &[]) {
        Ok(rows) => Some((s.elapsed(), rows.len())),
        Err(e) if e.code() == Some(&postgres::error::SqlState::QUERY_CANCELED) => None,
        Err(e) => panic!("{sql}: {e:?}"),
    }
}

/// The query of the benchmark against a feature-values view.
fn query(view: &str, threshold: f64) -> String {
    format!(
        "SELECT v.artifact_uid FROM {view} v
         WHERE v.feature = 'temperature' AND v.value_number > {threshold}
           AND EXISTS (SELECT FROM lamin.annotations a
                       WHERE a.artifact_id = v.artifact_id AND a.feature = 'cell_type'
                         AND a.ontology_id IN (SELECT ontology_id FROM bionty.descendants('CL:9000005', include_self => true)))"
    )
}

fn main() {
    let n: i64 = std::env::var("BENCH_ARTIFACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let case_s: u64 = std::env::var("BENCH_CASE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let cluster = Cluster::start_tuned();
    let mut db = cluster.connect();
    let version: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
    let fill = Instant::now();
    eprintln!("filling ({n} artifacts) ...");
    step(
        &mut db,
        "cell-type hierarchy (3,000 terms)",
        "SET lamin.audit_summary = on;
         SET lamin.allow_duplicates = on;
         INSERT INTO bionty.cell_type (ontology_id, name)
         SELECT format('CL:%s', 9000000 + i), 'bench cell type ' || i FROM generate_series(0, 2999) i;
         INSERT INTO bionty.cell_type_parent (child_id, parent_id)
         SELECT c.id, p.id FROM generate_series(1, 2999) i
         JOIN bionty.cell_type c ON c.ontology_id = format('CL:%s', 9000000 + i)
         JOIN bionty.cell_type p ON p.ontology_id = format('CL:%s', 9000000 + (i - 1) / 4)
         UNION
         SELECT c.id, p.id FROM generate_series(10, 2999, 10) i
         JOIN bionty.cell_type c ON c.ontology_id = format('CL:%s', 9000000 + i)
         JOIN bionty.cell_type p ON p.ontology_id = format('CL:%s', 9000000 + (i - 1) / 7)
         WHERE (i - 1) / 7 <> (i - 1) / 4;",
    );
    step(
        &mut db,
        "features",
        "SELECT lamin.create_feature('temperature', 'float');
         SELECT lamin.create_feature('cell_type', 'cat[bionty.cell_type]');
         SELECT lamin.create_feature('f' || k, CASE WHEN k % 2 = 0 THEN 'int' ELSE 'float' END) FROM generate_series(1, 9) k;
         SELECT lamin.add_storage('/tmp/lamin-bench-values');",
    );
    // In batches: each new artifact takes its version family's advisory
    // lock until the end of its transaction.
    let start = Instant::now();
    db.batch_execute("SET lamin.audit_summary = on").unwrap();
    const BATCH: i64 = 5000;
    for b in 0..(n + BATCH - 1) / BATCH {
        db.execute(
            "INSERT INTO lamin.artifact (storage_id, key, suffix, hash, hash_type, size)
             SELECT (SELECT min(id) FROM lamin.storage), 'bench/' || i || '.parquet', '.parquet',
                    encode(sha256(convert_to('bench ' || i, 'UTF8')), 'hex'), 'sha256', 1000
             FROM generate_series($1::bigint, $2::bigint) i",
            &[&(b * BATCH + 1), &((b + 1) * BATCH).min(n)],
        )
        .unwrap();
    }
    eprintln!("  artifacts: {:.1} s", start.elapsed().as_secs_f64());
    // temperature: 0.000 … 99.999, uniform over the artifacts; f1 … f9 other numbers.
    step(
        &mut db,
        "feature values (10 per artifact), trigger disabled, rows as it writes them",
        "ALTER TABLE lamin.artifact_feature_value DISABLE TRIGGER typed_value;
         INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value, value_number)
         SELECT a.id, f.id, to_jsonb(x), x::numeric
         FROM lamin.artifact a CROSS JOIN lamin.feature f
         CROSS JOIN LATERAL (SELECT CASE WHEN f.name = 'temperature' THEN ((a.id * 7919) % 100000) / 1000.0
                                         WHEN f.dtype = 'int' THEN ((a.id * 31 + f.id * 17) % 1000)
                                         ELSE ((a.id * 13 + f.id) % 10000) / 100.0 END::double precision AS x) v
         WHERE f.dtype IN ('int', 'float')
         ORDER BY f.id, a.id;
         ALTER TABLE lamin.artifact_feature_value ENABLE TRIGGER typed_value;",
    );
    step(
        &mut db,
        "cell-type links (10 per artifact)",
        "INSERT INTO bionty.artifact_cell_type (artifact_id, cell_type_id, feature_id)
         SELECT a.id, c0.id + (a.id * 31 + k * 977) % 3000, (SELECT id FROM lamin.feature WHERE name = 'cell_type')
         FROM lamin.artifact a CROSS JOIN generate_series(0, 9) k
         CROSS JOIN (SELECT min(id) AS id FROM bionty.cell_type) c0;",
    );
    step(
        &mut db,
        "baseline: the same values in 0.5.0's layout and view",
        "CREATE SCHEMA bench;
         CREATE TABLE bench.artifact_feature_value (
             id bigint PRIMARY KEY, artifact_id bigint NOT NULL, feature_id bigint NOT NULL, value jsonb NOT NULL,
             created_at timestamptz NOT NULL, created_by bigint NOT NULL,
             CONSTRAINT bench_afv_unique UNIQUE (artifact_id, feature_id, value));
         CREATE INDEX bench_afv_feature ON bench.artifact_feature_value (feature_id, value);
         INSERT INTO bench.artifact_feature_value SELECT id, artifact_id, feature_id, value, created_at, created_by
         FROM lamin.artifact_feature_value;
         CREATE VIEW bench.feature_values AS
         SELECT a.uid AS artifact_uid, a.key, a.version, a.is_latest, f.name AS feature, f.dtype,
                NULL::text AS registry,
                CASE WHEN jsonb_typeof(v.value) = 'string' THEN v.value #>> '{}' ELSE v.value::text END AS value_text,
                CASE WHEN jsonb_typeof(v.value) = 'number' THEN (v.value #>> '{}')::numeric END AS value_number,
                CASE WHEN jsonb_typeof(v.value) = 'boolean' THEN (v.value #>> '{}')::boolean END AS value_boolean,
                CASE WHEN f.dtype = 'date' THEN (v.value #>> '{}')::date END AS value_date,
                CASE WHEN f.dtype = 'datetime' THEN (v.value #>> '{}')::timestamptz END AS value_timestamp,
                v.value, a.id AS artifact_id
         FROM bench.artifact_feature_value v
         JOIN lamin.artifact a ON a.id = v.artifact_id
         JOIN lamin.feature f ON f.id = v.feature_id
         WHERE a.branch_id <> -1
         UNION ALL
         SELECT a.uid, a.key, a.version, a.is_latest, f.name, f.dtype, x.registry, x.name, NULL, NULL, NULL, NULL,
                to_jsonb(x.name), a.id
         FROM (
             SELECT l.artifact_id, l.feature_id, 'lamin.ulabel'::text AS registry, u.name
             FROM lamin.artifact_ulabel l JOIN lamin.ulabel u ON u.id = l.ulabel_id
             UNION ALL
             SELECT t.artifact_id, t.feature_id, t.registry, t.name FROM bionty.artifact_terms t
         ) x
         JOIN lamin.artifact a ON a.id = x.artifact_id
         JOIN lamin.feature f ON f.id = x.feature_id
         WHERE a.branch_id <> -1;",
    );
    step(&mut db, "VACUUM ANALYZE", "VACUUM ANALYZE;");
    // Time on a quiet cluster: after loading 30M rows autovacuum keeps
    // working for minutes, on the 2 cores the timings need.
    let quiet = Instant::now();
    while quiet.elapsed().as_secs() < 900 {
        let busy: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'",
                &[],
            )
            .unwrap()
            .get(0);
        if busy == 0 {
            break;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    step(&mut db, "CHECKPOINT", "CHECKPOINT;");
    eprintln!(
        "  waited {:.0} s for autovacuum to finish",
        quiet.elapsed().as_secs_f64()
    );
    // The bulk rows are what the trigger writes: a sample through it, unchanged.
    let changed: i64 = db
        .query_one(
            "WITH s AS (SELECT id, value, value_number FROM lamin.artifact_feature_value WHERE id % 9973 = 0),
                  u AS (UPDATE lamin.artifact_feature_value t SET value = t.value FROM s WHERE t.id = s.id
                        RETURNING t.id, t.value, t.value_number)
             SELECT count(*) FROM u JOIN s USING (id)
             WHERE u.value IS DISTINCT FROM s.value OR u.value_number IS DISTINCT FROM s.value_number",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(changed, 0, "the bulk rows must be what the trigger writes");
    let counts: (i64, i64, i64, i64) = {
        let r = db
            .query_one(
                "SELECT (SELECT count(*) FROM lamin.artifact), (SELECT count(*) FROM lamin.artifact_feature_value),
                        (SELECT count(*) FROM bionty.artifact_cell_type),
                        (SELECT count(*) FROM bionty.descendants('CL:9000005', include_self => true))",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    db.batch_execute(
        "CREATE ROLE bench_reader LOGIN PASSWORD 'bench' IN ROLE lamin_reader;
         GRANT USAGE ON SCHEMA bench TO bench_reader; GRANT SELECT ON ALL TABLES IN SCHEMA bench TO bench_reader;",
    )
    .unwrap();
    let mut reader =
        postgres::Client::connect(&cluster.url_as("bench_reader", "bench"), postgres::NoTls)
            .unwrap();
    println!(
        "lamin {version}: {} artifacts, {} feature values, {} cell-type links; term C = CL:9000005 with {} terms at or below it \
         of 3,000 (generated hierarchy); filled in {:.0} s. p50 / p99 of up to {reps} runs of find_artifacts (at most {case_s} s a case), 3 of each view form (1 as the reader); \
         the baseline (0.5.0's jsonb layout and view) 3 runs at 0.1%, 1 otherwise.\n",
        counts.0, counts.1, counts.2, counts.3, fill.elapsed().as_secs_f64()
    );
    println!(
        "query: {}\n",
        query("lamin.feature_values", 99.9)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<74} {:>7} {:>9} {:>9} {:>11} {:>6}",
        "case", "rows", "p50 ms", "p99 ms", "base p50 ms", "runs"
    );
    // (threshold, share, as a lamin_reader role through row-level security?)
    // Every statement under a timeout: the slow cases (the baseline, the
    // reader) are reported as "> timeout" rather than run for hours; the
    // reader's cases run fewer times.
    let timeout_s: u64 = std::env::var("BENCH_TIMEOUT_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    for conn in [&mut db, &mut reader] {
        conn.batch_execute(&format!("SET statement_timeout = '{timeout_s}s'"))
            .unwrap();
    }
    // Rows per threshold: every form, owner or reader, must give the same answer.
    let mut answers = std::collections::HashMap::new();
    let show = |d: Option<f64>| d.map_or(format!(">{timeout_s}000"), |v| format!("{v:.2}"));
    for (threshold, share, as_reader) in [
        (99.9, "0.1%", false),
        (99.0, "1%", false),
        (90.0, "10%", false),
        (99.9, "0.1%", true),
    ] {
        let who = if as_reader {
            "lamin_reader role, RLS"
        } else {
            "owner"
        };
        let conn = if as_reader { &mut reader } else { &mut db };
        let base_runs = if as_reader || threshold < 95.0 { 1 } else { 3 };
        for (form, sql) in [
            ("lamin.find_artifacts", query_find(threshold)),
            (
                "feature_values + annotations",
                query("lamin.feature_values", threshold),
            ),
            ("artifact_values + link table", query_links(threshold)),
        ] {
            // find_artifacts BENCH_REPS times; the view forms, which take
            // seconds, 3 times (once as the reader); every case stops
            // after BENCH_CASE_S seconds once it has 3 runs.
            let runs = match (form, as_reader) {
                ("lamin.find_artifacts", _) => reps,
                (_, true) => 1,
                _ => reps.min(3),
            };
            let case_start = Instant::now();
            let mut a = Vec::new();
            let mut rows = 0;
            for i in 0..runs {
                if i >= 3 && case_start.elapsed().as_secs() >= case_s {
                    break;
                }
                match timed(conn, &sql) {
                    Some((d, n)) => {
                        a.push(ms(d));
                        rows = n;
                    }
                    None => break,
                }
            }
            let mut b = Vec::new();
            if form.starts_with("feature_values") {
                for _ in 0..base_runs {
                    match timed(conn, &query("bench.feature_values", threshold)) {
                        Some((d, n)) => {
                            assert!(
                                a.is_empty() || n == rows,
                                "both layouts give the same answer"
                            );
                            b.push(ms(d));
                        }
                        None => break,
                    }
                }
            }
            if !a.is_empty() {
                if let Some(n) = answers.insert(threshold.to_bits(), rows) {
                    assert_eq!(n, rows, "every form gives the same answer ({form})");
                }
            }
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            let p = |v: &[f64], q: f64| {
                (!v.is_empty()).then(|| v[((v.len() as f64 - 1.0) * q).round() as usize])
            };
            println!(
                "{:<74} {:>7} {:>9} {:>9} {:>11} {:>6}",
                format!("temperature > {threshold} ({share}), {who}, {form}"),
                rows,
                show(p(&a, 0.5)),
                show(p(&a, 0.99)),
                if form.starts_with("feature_values") {
                    show(p(&b, 0.5))
                } else {
                    "-".into()
                },
                a.len()
            );
        }
    }
    if std::env::var_os("BENCH_EXPLAIN").is_some() {
        for conn in [&mut db, &mut reader] {
            for r in conn
                .query(
                    &format!(
                        "EXPLAIN (ANALYZE, BUFFERS) {}",
                        query("lamin.feature_values", 99.9)
                    ),
                    &[],
                )
                .unwrap()
            {
                println!("{}", r.get::<_, String>(0));
            }
        }
    }
    let plan: Vec<String> = db
        .query(
            &format!("EXPLAIN {}", query("lamin.feature_values", 99.9)),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let uses_index = plan
        .iter()
        .any(|l| l.contains("artifact_feature_value_number"));
    println!("\ntyped plan scans artifact_feature_value_number: {uses_index}");
    assert!(
        uses_index,
        "the typed query must use the value_number index:\n{}",
        plan.join("\n")
    );
}
