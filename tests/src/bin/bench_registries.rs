//! Bulk registration throughput through the public SQL API, in a throw-away
//! cluster, with raw INSERTs of the same rows as the baseline beside it.
//!
//!     scripts/bench registries            (100k of each; BENCH_N to change)
//!
//! Then 10 statements of 1,000 labels in one transaction beside an ontology's
//! worth of indexed terms, at this release and at the previous one
//! (BENCH_PREVIOUS, default 0.4.0: its frozen SQL with this library; `none`
//! skips it: at 0.4.0 this case takes about 20 minutes), and before it
//! save_artifact at both releases (A B A B; BENCH_CASES=save_artifact runs
//! only these). BENCH_CASES=records: a sheet of records imported through
//! lamin.import_records beside a plain table of the same rows.
//! BENCH_CASES=audit: label loads and a reader's audit lookups with an
//! empty audit log and again after BENCH_AUDIT_ROWS (default 10M) more rows.
//! BENCH_CASES=bulk_save: lamin.save_artifacts (many per call) beside
//! save_artifact (one call per artifact) and a raw INSERT of the same rows,
//! in a registry pre-filled with BENCH_PREFILL (default 1M) artifacts.

use std::time::Instant;

use lamin_e2e::Cluster;

const BATCH: usize = 1000;

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // BENCH_CASES=save_artifact: only the two-release save_artifact cases.
    if std::env::var("BENCH_CASES").as_deref() == Ok("save_artifact") {
        save_artifact_at_both_releases(n.min(20_000));
        return;
    }
    // BENCH_CASES=records: only the sheet import (0.7.0).
    if std::env::var("BENCH_CASES").as_deref() == Ok("records") {
        records_import(n);
        return;
    }
    // BENCH_CASES=audit: does lamin.audit stay fast as it grows?
    if std::env::var("BENCH_CASES").as_deref() == Ok("audit") {
        audit_growth(n.min(20_000));
        return;
    }
    // BENCH_CASES=bulk_save: set-based artifact registration (0.9.0).
    if std::env::var("BENCH_CASES").as_deref() == Ok("bulk_save") {
        bulk_save(n);
        return;
    }
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.batch_execute("SELECT lamin.add_storage('/tmp/lamin-bench-storage')")
        .unwrap();
    let version: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
    println!(
        "lamin {version}; {n} records per case, batches of {BATCH} per transaction, 1 client\n"
    );
    println!("{:<58} {:>10} {:>12}", "case", "seconds", "records/s");

    let mut report = |name: &str, count: usize, f: &mut dyn FnMut(&mut postgres::Client)| -> f64 {
        let start = Instant::now();
        f(&mut db);
        let secs = start.elapsed().as_secs_f64();
        let rate = count as f64 / secs;
        println!("{name:<58} {secs:>10.2} {rate:>12.0}");
        rate
    };

    let api_labels = report(
        "labels: INSERT INTO lamin.ulabel, 1000-row batches",
        n,
        &mut |db| {
            for b in 0..n / BATCH {
                let names: Vec<String> = (0..BATCH).map(|i| format!("label {b}-{i}")).collect();
                db.execute(
                    "INSERT INTO lamin.ulabel (name) SELECT unnest($1::text[])",
                    &[&names],
                )
                .unwrap();
            }
        },
    );
    let raw_labels = report(
        "  baseline: same rows into a plain table (no triggers)",
        n,
        &mut |db| {
            db.batch_execute("CREATE TABLE plain_label (id bigserial PRIMARY KEY, uid text, name text, created_at timestamptz DEFAULT now())")
            .unwrap();
            for b in 0..n / BATCH {
                let names: Vec<String> = (0..BATCH).map(|i| format!("label {b}-{i}")).collect();
                db.execute("INSERT INTO plain_label (uid, name) SELECT md5(n), n FROM unnest($1::text[]) n", &[&names]).unwrap();
            }
        },
    );
    let single = n.min(10_000);
    let single_labels = report(
        &format!("labels: one INSERT per label, autocommit ({single})"),
        single,
        &mut |db| {
            let stmt = db
                .prepare("INSERT INTO lamin.ulabel (name) VALUES ($1)")
                .unwrap();
            for i in 0..single {
                db.execute(&stmt, &[&format!("single {i}")]).unwrap();
            }
        },
    );

    let api_artifacts = report(
        "artifacts: lamin.save_artifact(), 1000 per statement",
        n,
        &mut |db| {
            for b in 0..n / BATCH {
                let keys: Vec<String> = (0..BATCH)
                    .map(|i| format!("bench/{b}/file-{i}.parquet"))
                    .collect();
                db.execute(
                "SELECT count(lamin.save_artifact(encode(sha256(convert_to(k, 'UTF8')), 'hex'), 1000, key => k)) FROM unnest($1::text[]) k",
                &[&keys],
            )
            .unwrap();
            }
        },
    );
    let raw_artifacts = report(
        "  baseline: raw INSERT INTO lamin.artifact, same rows",
        n,
        &mut |db| {
            for b in 0..n / BATCH {
                let keys: Vec<String> = (0..BATCH)
                    .map(|i| format!("raw/{b}/file-{i}.parquet"))
                    .collect();
                db.execute(
                "INSERT INTO lamin.artifact (storage_id, key, suffix, hash, hash_type, size)
                 SELECT 1, k, '.parquet', encode(sha256(convert_to(k, 'UTF8')), 'hex'), 'sha256', 1000 FROM unnest($1::text[]) k",
                &[&keys],
            )
            .unwrap();
            }
        },
    );
    let resave = report(
        "artifacts: re-saving existing content (idempotent path)",
        n.min(10_000),
        &mut |db| {
            for b in 0..n.min(10_000) / BATCH {
                let keys: Vec<String> = (0..BATCH)
                    .map(|i| format!("bench/{b}/file-{i}.parquet"))
                    .collect();
                db.batch_execute("SET client_min_messages = warning")
                    .unwrap();
                db.execute(
                "SELECT count(lamin.save_artifact(encode(sha256(convert_to(k, 'UTF8')), 'hex'), 1000, key => k)) FROM unnest($1::text[]) k",
                &[&keys],
            )
            .unwrap();
            }
        },
    );
    let versions = report(
        "artifacts: new versions of existing keys",
        n.min(10_000),
        &mut |db| {
            for b in 0..n.min(10_000) / BATCH {
                let keys: Vec<String> = (0..BATCH)
                    .map(|i| format!("bench/{b}/file-{i}.parquet"))
                    .collect();
                db.execute(
                "SELECT count(lamin.save_artifact(encode(sha256(convert_to(k || ' v2', 'UTF8')), 'hex'), 1000, key => k)) FROM unnest($1::text[]) k",
                &[&keys],
            )
            .unwrap();
            }
        },
    );
    // Typed feature values (0.6.0): two per artifact through lamin.add_values
    // (the typing trigger, the one-value check with its row lock), and the
    // same rows inserted raw with the trigger off as the baseline.
    let api_values = report(
        "feature values: lamin.add_values, 2 each for 1000 artifacts a statement",
        2 * n,
        &mut |db| {
            db.batch_execute(
                "SELECT lamin.create_feature('bench_temperature', 'float'), lamin.create_feature('bench_cells', 'int')",
            )
            .unwrap();
            for b in 0..n / BATCH {
                let keys: Vec<String> = (0..BATCH)
                    .map(|i| format!("bench/{b}/file-{i}.parquet"))
                    .collect();
                db.execute(
                    "SELECT sum(lamin.add_values('artifact', a.uid, jsonb_build_object('bench_temperature', (a.id % 1000) / 10.0, 'bench_cells', a.id % 5000)))
                     FROM lamin.artifact a WHERE a.key = ANY ($1) AND a.is_latest",
                    &[&keys],
                )
                .unwrap();
            }
        },
    );
    let raw_values = report(
        "  baseline: raw INSERT of the same typed rows, trigger off",
        2 * n,
        &mut |db| {
            db.batch_execute(
                "ALTER TABLE lamin.artifact_feature_value DISABLE TRIGGER typed_value",
            )
            .unwrap();
            for b in 0..n / BATCH {
                let keys: Vec<String> = (0..BATCH)
                    .map(|i| format!("raw/{b}/file-{i}.parquet"))
                    .collect();
                db.execute(
                    "INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value, value_number)
                     SELECT a.id, f.id, to_jsonb(x), x
                     FROM lamin.artifact a
                     CROSS JOIN lamin.feature f
                     CROSS JOIN LATERAL (SELECT CASE WHEN f.name = 'bench_cells' THEN (a.id % 5000)::float8 ELSE (a.id % 1000) / 10.0 END AS x) v
                     WHERE a.key = ANY ($1) AND f.name IN ('bench_temperature', 'bench_cells')",
                    &[&keys],
                )
                .unwrap();
            }
            db.batch_execute("ALTER TABLE lamin.artifact_feature_value ENABLE TRIGGER typed_value")
                .unwrap();
        },
    );

    let lamindb_labels_per_s = 190.0;
    println!();
    println!("ratios");
    println!(
        "  labels, batched API / plain-table baseline         {:>8.2}x",
        api_labels / raw_labels
    );
    println!(
        "  artifacts, save_artifact / raw INSERT               {:>8.2}x",
        api_artifacts / raw_artifacts
    );
    println!(
        "  labels batched / LaminDB on SQLite (~190 labels/s)  {:>8.0}x",
        api_labels / lamindb_labels_per_s
    );
    println!(
        "  labels one-by-one / LaminDB (~190 labels/s)         {:>8.0}x",
        single_labels / lamindb_labels_per_s
    );
    println!(
        "  feature values, add_values / raw INSERT              {:>8.2}x",
        api_values / raw_values
    );
    println!("  (re-save {resave:.0}/s, new versions {versions:.0}/s)");
    let count: i64 = db
        .query_one("SELECT count(*) FROM lamin.artifact", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        count as usize,
        2 * n + n.min(10_000),
        "every save made exactly one record"
    );
    drop(db);
    drop(cluster);

    save_artifact_at_both_releases(n.min(20_000));
    one_transaction_bulk_loads();
}

/// save_artifact at this release and at the previous one (its frozen SQL,
/// the same library), one after the other, twice (A B A B), with a raw
/// INSERT beside each: what the per-call checks of a release cost.
fn save_artifact_at_both_releases(n: usize) {
    let previous = std::env::var("BENCH_PREVIOUS").unwrap_or_else(|_| "0.4.0".to_string());
    if previous == "none" {
        return;
    }
    println!("\nsave_artifact, {n} new artifacts then {n} re-saves of known content, {BATCH} per statement, A B A B\n");
    println!(
        "{:<46} {:>12} {:>12} {:>12}",
        "release", "new/s", "re-save/s", "raw INSERT/s"
    );
    for round in 0..2 {
        for version in [None, Some(previous.as_str())] {
            let cluster = match version {
                None => Cluster::start(),
                Some(v) => Cluster::start_at(v),
            };
            let mut db = cluster.connect();
            db.batch_execute("SELECT lamin.add_storage('/tmp/lamin-bench-storage'); SET client_min_messages = warning")
                .unwrap();
            let version: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
            let mut timed = |sql: &str, prefix: &str| -> f64 {
                let start = Instant::now();
                for b in 0..n / BATCH {
                    let keys: Vec<String> = (0..BATCH)
                        .map(|i| format!("{prefix}/{b}/file-{i}.parquet"))
                        .collect();
                    db.execute(sql, &[&keys]).unwrap();
                }
                n as f64 / start.elapsed().as_secs_f64()
            };
            let save = "SELECT count(lamin.save_artifact(encode(sha256(convert_to(k, 'UTF8')), 'hex'), 1000, key => k)) FROM unnest($1::text[]) k";
            let new = timed(save, "bench");
            let resave = timed(save, "bench");
            let raw = timed(
                "INSERT INTO lamin.artifact (storage_id, key, suffix, hash, hash_type, size)
                 SELECT 1, k, '.parquet', encode(sha256(convert_to(k, 'UTF8')), 'hex'), 'sha256', 1000 FROM unnest($1::text[]) k",
                "raw",
            );
            println!(
                "{:<46} {new:>12.0} {resave:>12.0} {raw:>12.0}",
                format!("{version} (round {})", round + 1)
            );
        }
    }
}

/// Terms of the stand-in for the default ontologies (names and synonyms).
const ONTOLOGY_RECORDS: usize = 150_000;
const STATEMENTS: usize = 10;

/// LaminDB's bulk load: 10 statements of 1,000 labels in one transaction, on
/// an instance whose search index holds an ontology's worth of other terms
/// (statistics taken before the load, as after importing the default
/// ontologies), at this release and at the previous one (its frozen SQL, the
/// same library), with a plain table with a unique name beside it.
fn one_transaction_bulk_loads() {
    println!(
        "\n{STATEMENTS} statements of {BATCH} labels in one transaction, beside {ONTOLOGY_RECORDS} ontology records \
         ({} terms) indexed and analyzed\n",
        2 * ONTOLOGY_RECORDS
    );
    println!(
        "{:<46} {:>10} {:>12} {:>16}",
        "case", "seconds", "labels/s", "last statement s"
    );
    let previous = std::env::var("BENCH_PREVIOUS").unwrap_or_else(|_| "0.4.0".to_string());
    let versions = if previous == "none" {
        vec![None]
    } else {
        vec![None, Some(previous.as_str())]
    };
    for version in versions {
        let cluster = match version {
            None => Cluster::start(),
            Some(v) => Cluster::start_at(v),
        };
        let mut db = cluster.connect();
        let version: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
        db.batch_execute(&format!(
            "CREATE TABLE public.onto (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, uid text NOT NULL, name text NOT NULL, synonyms text[]);
             INSERT INTO public.onto (uid, name, synonyms)
             SELECT 'o' || g, 'ontology term ' || g, ARRAY['ontology synonym ' || g] FROM generate_series(1, {ONTOLOGY_RECORDS}) g;
             SELECT lamin.make_searchable('public.onto', 'name', 'synonyms', guard => false);
             ANALYZE;
             CREATE TABLE plain_label (id bigserial PRIMARY KEY, uid text, name text UNIQUE, created_at timestamptz DEFAULT now());"
        ))
        .unwrap();
        for (case, sql) in [
            (
                format!("labels ({version}): INSERT INTO lamin.ulabel"),
                "INSERT INTO lamin.ulabel (name) SELECT unnest($1::text[])",
            ),
            (
                format!("  baseline ({version}): plain table, unique name"),
                "INSERT INTO plain_label (uid, name) SELECT md5(n), n FROM unnest($1::text[]) n",
            ),
        ] {
            let mut tx = db.transaction().unwrap();
            let start = Instant::now();
            let mut last = 0.0;
            for b in 0..STATEMENTS {
                let names: Vec<String> =
                    (0..BATCH).map(|i| format!("bulk label {b}-{i}")).collect();
                let t = Instant::now();
                tx.execute(sql, &[&names]).unwrap();
                last = t.elapsed().as_secs_f64();
            }
            tx.commit().unwrap();
            let secs = start.elapsed().as_secs_f64();
            let rate = (STATEMENTS * BATCH) as f64 / secs;
            println!("{case:<46} {secs:>10.2} {rate:>12.0} {last:>16.3}");
        }
    }
}

/// Records of a sheet (0.7.0): rows of five typed features (int, float,
/// str, date, categorical) imported through lamin.import_records into a
/// record type with a schema, 1,000 rows a statement, every statement its
/// own transaction (so the required-feature check at commit is paid); the
/// same rows into a plain table with one typed column per feature beside it.
fn records_import(n: usize) {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.batch_execute(
        "SELECT lamin.create_feature('b_age', 'int'), lamin.create_feature('b_weight', 'float'),
                lamin.create_feature('b_note', 'str'), lamin.create_feature('b_day', 'date'),
                lamin.create_feature('b_sex', 'cat');
         INSERT INTO lamin.ulabel (name) VALUES ('female'), ('male');
         SELECT lamin.create_schema(ARRAY['b_age', 'b_weight', 'b_note', 'b_day', 'b_sex'], name => 'bench sheet');
         INSERT INTO lamin.record (name, is_type, schema_id) VALUES ('BenchDonor', true, lamin.schema_id('bench sheet'));
         CREATE TABLE plain_donor (id bigserial PRIMARY KEY, name text UNIQUE, b_age int, b_weight float8, b_note text, b_day date, b_sex text);",
    )
    .unwrap();
    let version: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
    println!(
        "lamin {version}; {n} records of 5 features, {BATCH} rows a statement and transaction\n"
    );
    println!(
        "{:<58} {:>10} {:>12} {:>12}",
        "case", "seconds", "records/s", "values/s"
    );
    let rows = |b: usize| -> String {
        let items: Vec<String> = (0..BATCH)
            .map(|i| {
                let k = b * BATCH + i;
                format!(
                    r#"{{"name": "donor {k}", "b_age": {}, "b_weight": {}.5, "b_note": "note {k}", "b_day": "2024-{:02}-{:02}", "b_sex": "{}"}}"#,
                    20 + k % 60, 50 + k % 40, 1 + k % 12, 1 + k % 28, if k.is_multiple_of(2) { "female" } else { "male" }
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    };
    let start = Instant::now();
    let mut batches = Vec::new();
    for b in 0..n / BATCH {
        let one = Instant::now();
        db.execute(
            "SELECT count(*) FROM lamin.import_records('BenchDonor', $1::text::jsonb)",
            &[&rows(b)],
        )
        .unwrap();
        batches.push(one.elapsed().as_secs_f64());
    }
    let api = start.elapsed().as_secs_f64();
    println!(
        "(seconds per statement of {BATCH} rows: first {:.2}, last {:.2}, slowest {:.2})",
        batches.first().copied().unwrap_or(0.0),
        batches.last().copied().unwrap_or(0.0),
        batches.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "{:<58} {api:>10.2} {:>12.0} {:>12.0}",
        "records: lamin.import_records (new records)",
        n as f64 / api,
        5.0 * n as f64 / api
    );
    let start = Instant::now();
    for b in 0..n / BATCH {
        db.execute(
            "SELECT count(*) FROM lamin.import_records('BenchDonor', $1::text::jsonb)",
            &[&rows(b)],
        )
        .unwrap();
    }
    let again = start.elapsed().as_secs_f64();
    println!(
        "{:<58} {again:>10.2} {:>12.0} {:>12.0}",
        "records: the same rows again (updates, values replaced)",
        n as f64 / again,
        5.0 * n as f64 / again
    );
    let start = Instant::now();
    for b in 0..n / BATCH {
        db.execute(
            "INSERT INTO plain_donor (name, b_age, b_weight, b_note, b_day, b_sex)
             SELECT r->>'name', (r->>'b_age')::int, (r->>'b_weight')::float8, r->>'b_note', (r->>'b_day')::date, r->>'b_sex'
             FROM jsonb_array_elements($1::text::jsonb) r",
            &[&rows(b)],
        )
        .unwrap();
    }
    let plain = start.elapsed().as_secs_f64();
    println!(
        "{:<58} {plain:>10.2} {:>12.0}",
        "  baseline: the same JSON rows into a plain typed table",
        n as f64 / plain
    );
    println!("\nimport_records / plain table: {:.3}", plain / api);
}

/// Labels loaded in 1,000-row statements (each audited row by row) and a
/// reader's lookups of one record's audit trail (row-level security on),
/// with the audit log as a new instance has it and after `BENCH_AUDIT_ROWS`
/// synthetic rows spread over two years (the writes of a busy lab).
fn audit_growth(n: usize) {
    let extra: i64 = std::env::var("BENCH_AUDIT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let cluster = Cluster::start_tuned();
    let mut db = cluster.connect();
    db.batch_execute(
        "CREATE ROLE bench_reader LOGIN PASSWORD 'pw' IN ROLE lamin_reader;
         CREATE TABLE plain_label (id bigserial PRIMARY KEY, name text UNIQUE)",
    )
    .unwrap();
    let mut reader =
        postgres::Client::connect(&cluster.url_as("bench_reader", "pw"), postgres::NoTls).unwrap();
    let version: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
    println!("lamin {version}; {n} labels per load in {BATCH}-row statements; 1,000 audit lookups by a reader\n");
    println!(
        "{:<14} {:>12} {:>10} {:>12} {:>13} {:>9} {:>9}",
        "audit rows", "labels/s", "plain/s", "labels/plain", "audit MB", "p50 ms", "p99 ms"
    );
    let mut round = 0usize;
    let mut measure = |db: &mut postgres::Client, reader: &mut postgres::Client| {
        let rows: i64 = db
            .query_one("SELECT count(*) FROM lamin.audit", &[])
            .unwrap()
            .get(0);
        let load = |db: &mut postgres::Client, table: &str| -> f64 {
            let start = Instant::now();
            for b in 0..n / BATCH {
                let names: Vec<String> = (0..BATCH)
                    .map(|i| format!("label {round}-{b}-{i}"))
                    .collect();
                db.execute(
                    &format!("INSERT INTO {table} (name) SELECT unnest($1::text[])"),
                    &[&names],
                )
                .unwrap();
            }
            n as f64 / start.elapsed().as_secs_f64()
        };
        let labels = load(db, "lamin.ulabel");
        let plain = load(db, "plain_label");
        round += 1;
        let ids: Vec<i64> = db
            .query(
                "SELECT id FROM lamin.ulabel ORDER BY random() LIMIT 1000",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let lookup = reader
            .prepare("SELECT at, role_name, operation, fields FROM lamin.audit WHERE registry = 'lamin.ulabel' AND record_id = $1")
            .unwrap();
        let mut ms: Vec<f64> = ids
            .iter()
            .map(|id| {
                let start = Instant::now();
                let found = reader.query(&lookup, &[id]).unwrap();
                assert!(!found.is_empty(), "the reader sees the label's audit row");
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let bytes: i64 = db
            .query_one("SELECT pg_total_relation_size('lamin.audit')", &[])
            .unwrap()
            .get(0);
        println!(
            "{rows:<14} {labels:>12.0} {plain:>10.0} {:>12.2} {:>13.0} {:>9.3} {:>9.3}",
            labels / plain,
            bytes as f64 / 1048576.0,
            ms[ms.len() / 2],
            ms[ms.len() * 99 / 100]
        );
    };
    measure(&mut db, &mut reader);
    // A busy lab's history: rows of every registry, most of other records.
    let start = Instant::now();
    db.execute(
        "INSERT INTO lamin.audit (at, role_name, registry, operation, record_id, uid, space_id, fields)
         SELECT now() - (i % 730) * interval '1 day', 'someone',
                (ARRAY['lamin.artifact', 'lamin.ulabel', 'lamin.run', 'lamin.feature'])[1 + i % 4],
                (ARRAY['insert', 'update', 'delete'])[1 + i % 3], 1000000 + i, NULL, 1, ARRAY['name']
         FROM generate_series(1, $1::bigint) i",
        &[&extra],
    )
    .unwrap();
    db.batch_execute("VACUUM ANALYZE lamin.audit").unwrap();
    eprintln!(
        "({extra} audit rows added in {:.0} s)",
        start.elapsed().as_secs_f64()
    );
    measure(&mut db, &mut reader);
}

/// lamin.save_artifacts beside save_artifact and a raw INSERT of the same
/// rows (every trigger on), interleaved A B C A B C against the machine's
/// drift, in a registry pre-filled with BENCH_PREFILL artifacts (with keys).
/// Then re-saves of known content and new versions of existing keys.
fn bulk_save(n: usize) {
    let prefill: usize = std::env::var("BENCH_PREFILL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.batch_execute(
        "SELECT lamin.add_storage('/tmp/lamin-bench-storage'); SET client_min_messages = warning",
    )
    .unwrap();
    let version: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
    // Hashes and keys are made in SQL from a name: the client sends names only.
    let bulk = |db: &mut postgres::Client, names: &[String]| {
        db.execute(
            "SELECT count(*) FROM lamin.save_artifacts(
                 ARRAY(SELECT encode(sha256(convert_to(k, 'UTF8')), 'hex') FROM unnest($1::text[]) k),
                 array_fill(1000::bigint, ARRAY[cardinality($1::text[])]), keys => $1::text[])",
            &[&names],
        )
        .unwrap();
    };
    let names = |prefix: &str, b: usize, per: usize| -> Vec<String> {
        (0..per)
            .map(|i| format!("{prefix}/{b}/file-{i}.parquet"))
            .collect()
    };
    let start = Instant::now();
    for b in 0..prefill / 10_000 {
        bulk(&mut db, &names("prefill", b, 10_000));
    }
    db.batch_execute("VACUUM ANALYZE lamin.artifact").unwrap();
    println!(
        "lamin {version}; {prefill} artifacts pre-filled in {:.0} s; {n} artifacts per case (half in each of two rounds), 1 client\n",
        start.elapsed().as_secs_f64()
    );
    println!("{:<62} {:>10} {:>12}", "case", "seconds", "artifacts/s");
    let mut totals = [0f64; 4];
    let cases = [
        "save_artifact, one call per artifact, 1,000 per statement",
        "save_artifacts, 1,000 per call",
        "save_artifacts, 10,000 per call",
        "baseline: raw INSERT INTO lamin.artifact, 1,000 per statement",
    ];
    for round in 0..2 {
        for (c, total) in totals.iter_mut().enumerate() {
            let start = Instant::now();
            let per = if c == 2 { 10_000 } else { BATCH };
            for b in 0..n / 2 / per {
                let keys = names(&format!("case{c}/r{round}"), b, per);
                match c {
                    0 => {
                        db.execute(
                            "SELECT count(lamin.save_artifact(encode(sha256(convert_to(k, 'UTF8')), 'hex'), 1000, key => k)) FROM unnest($1::text[]) k",
                            &[&keys],
                        )
                        .unwrap();
                    }
                    1 | 2 => bulk(&mut db, &keys),
                    _ => {
                        db.execute(
                            "INSERT INTO lamin.artifact (storage_id, key, suffix, hash, hash_type, size)
                             SELECT 1, k, '.parquet', encode(sha256(convert_to(k, 'UTF8')), 'hex'), 'sha256', 1000 FROM unnest($1::text[]) k",
                            &[&keys],
                        )
                        .unwrap();
                    }
                }
            }
            *total += start.elapsed().as_secs_f64();
        }
    }
    for (name, secs) in cases.iter().zip(totals) {
        println!("{name:<62} {secs:>10.2} {:>12.0}", n as f64 / secs);
    }
    // Known content again, and new content under existing keys (new versions).
    let m = n.min(50_000);
    for (name, suffix) in [
        ("save_artifacts, known content again, 10,000 per call", ""),
        (
            "save_artifacts, new versions of existing keys, 10,000 per call",
            " v2",
        ),
    ] {
        let start = Instant::now();
        for b in 0..m / 10_000 {
            let keys = names("prefill", b, 10_000);
            db.execute(
                "SELECT count(*) FROM lamin.save_artifacts(
                     ARRAY(SELECT encode(sha256(convert_to(k || $2, 'UTF8')), 'hex') FROM unnest($1::text[]) k),
                     array_fill(1000::bigint, ARRAY[cardinality($1::text[])]), keys => $1::text[])",
                &[&keys, &suffix],
            )
            .unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        println!("{name:<62} {secs:>10.2} {:>12.0}", m as f64 / secs);
    }
    println!();
    println!("ratios");
    println!(
        "  save_artifacts (10,000 a call) / save_artifact        {:>8.2}x",
        totals[0] / totals[2]
    );
    println!(
        "  save_artifacts (10,000 a call) / raw INSERT           {:>8.2}x",
        totals[3] / totals[2]
    );
    let (count, heads): (i64, i64) = {
        let row = db
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE is_latest) FROM lamin.artifact",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    let per_round = 3 * (n / 2 / BATCH * BATCH) + n / 2 / 10_000 * 10_000;
    let versions = m / 10_000 * 10_000;
    assert_eq!(
        count as usize,
        prefill / 10_000 * 10_000 + 2 * per_round + versions,
        "every new content made exactly one record, known content none"
    );
    assert_eq!(
        heads as usize,
        count as usize - versions,
        "each new version replaced its family's head"
    );
}
