//! A mesh of instances at the size of a user's: a template database holding
//! the default ontologies and genes (imported by scripts/import-defaults),
//! then seconds to a new instance that answers a search (`lamin init`),
//! beside the baseline of importing the sources into a new database; then
//! `lamin transfer` records/s (same storage and --copy) and `lamin
//! import-lamindb` records/s beside LaminDB's own time to register the
//! same files.
//!
//!     scripts/bench mesh    (BENCH_N artifacts to transfer, default 2000;
//!                            BENCH_LAMINDB_N files in the LaminDB instance, default 300;
//!                            BENCH_TEMPLATE=small: the Cell Ontology cut instead of the default sources)

use std::process::Command;
use std::time::Instant;

use lamin_e2e::{check, fixture, import_default_sources, lamin_bin, Cluster, Sidecar};

fn url(cluster: &Cluster, db: &str) -> String {
    cluster.url().rsplit_once('/').unwrap().0.to_string() + "/" + db
}

fn lamin(cluster: &Cluster, db: &str, args: &[&str]) -> (f64, String) {
    let start = Instant::now();
    let out = Command::new(lamin_bin())
        .args(args)
        .env("DATABASE_URL", url(cluster, db))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lamin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        start.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let n_lamindb: usize = std::env::var("BENCH_LAMINDB_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let small = std::env::var("BENCH_TEMPLATE").as_deref() == Ok("small");
    let cluster = Cluster::start_tuned();
    let mut admin = cluster.connect_to("postgres");
    let version: String = cluster
        .connect()
        .query_one("SELECT lamin.version()", &[])
        .unwrap()
        .get(0);
    println!(
        "lamin {version}; release build; a throw-away cluster (shared_buffers 512MB), 2 cores\n"
    );

    // The template: the extension and the default sources (the baseline: how long that takes).
    admin
        .batch_execute("CREATE DATABASE lamin_template")
        .unwrap();
    cluster
        .connect_to("lamin_template")
        .batch_execute("SET client_min_messages = warning; CREATE EXTENSION lamin CASCADE")
        .unwrap();
    let start = Instant::now();
    if small {
        let out = Command::new(lamin_bin())
            .args([
                "import",
                "ontology",
                "--entity",
                "cell_type",
                "--source",
                "cl",
                "--version",
                "cut",
            ])
            .arg(fixture("bionty/cl-cut.json.zst"))
            .env("DATABASE_URL", url(&cluster, "lamin_template"))
            .output()
            .unwrap();
        check("lamin import ontology", &out);
    } else {
        import_default_sources(&url(&cluster, "lamin_template"));
    }
    let import_s = start.elapsed().as_secs_f64();
    let mut template = cluster.connect_to("lamin_template");
    let (terms, bytes): (i64, i64) = {
        let r = template
            .query_one(
                "SELECT (SELECT count(*) FROM lamin.search_term), pg_database_size(current_database())",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    drop(template);
    admin
        .batch_execute(
            "ALTER DATABASE lamin_template WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
        )
        .unwrap();
    println!(
        "template: {} ({} search terms, {:.2} GB)",
        if small {
            "the Cell Ontology cut"
        } else {
            "the default ontologies and genes (scripts/import-defaults)"
        },
        terms,
        bytes as f64 / 1e9
    );
    println!("  baseline, importing them into a new database: {import_s:.1} s\n");

    // Seconds to a new instance that answers a search.
    let mut init = Vec::new();
    for i in 0..3 {
        let name = format!("lab_{i}");
        let start = Instant::now();
        lamin(&cluster, "postgres", &["init", &name]);
        let hit: String = cluster
            .connect_to(&name)
            .query_one(
                "SELECT name FROM lamin.search('T cell', 'bionty.cell_type') LIMIT 1",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(hit, "T cell");
        init.push(start.elapsed().as_secs_f64());
    }
    let init_s = median(init.clone());
    println!(
        "lamin init (CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY, init_instance) to a first search: median {init_s:.2} s of {:?} ({:.0}x faster than the import)",
        init.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>(),
        import_s / init_s
    );
    // The other strategy, for the record.
    let start = Instant::now();
    admin
        .batch_execute("CREATE DATABASE wal_copy TEMPLATE lamin_template STRATEGY WAL_LOG")
        .unwrap();
    println!(
        "  for comparison, CREATE DATABASE … STRATEGY WAL_LOG alone: {:.2} s\n",
        start.elapsed().as_secs_f64()
    );

    // Transfer: n artifacts with real bytes, a label, a value and a term each.
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("s1");
    let mut src = cluster.connect_to("lab_0");
    src.batch_execute(&format!(
        "SELECT lamin.add_storage('{}');
         SELECT lamin.create_feature('temperature', 'float'), lamin.create_feature('cell_type', 'cat[bionty.cell_type]'),
                lamin.create_feature('batch', 'cat');
         INSERT INTO lamin.ulabel (name) SELECT 'batch ' || i FROM generate_series(0, 9) i;",
        storage.display()
    ))
    .unwrap();
    std::fs::create_dir_all(storage.join(".lamindb")).unwrap();
    let start = Instant::now();
    let mut tx = src.transaction().unwrap();
    for i in 0..n {
        let bytes = format!("cell,value\nc{i},{i}\n");
        let hash = lamin_core::content::sha256_hex(bytes.as_bytes());
        let uid: String = tx
            .query_one(
                "SELECT lamin.save_artifact($1, $2, key => $3)",
                &[&hash, &(bytes.len() as i64), &format!("bench/{i}.csv")],
            )
            .unwrap()
            .get(0);
        std::fs::write(storage.join(format!(".lamindb/{uid}.csv")), bytes).unwrap();
        tx.query_one(
            "SELECT lamin.annotate($1, 'temperature', ARRAY[$2])",
            &[&uid, &format!("{}.5", 30 + i % 10)],
        )
        .unwrap();
        tx.query_one(
            "SELECT lamin.annotate($1, 'batch', ARRAY[$2])",
            &[&uid, &format!("batch {}", i % 10)],
        )
        .unwrap();
        tx.query_one(
            "SELECT lamin.annotate($1, 'cell_type', ARRAY['T cell'])",
            &[&uid],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    println!(
        "transfer of {n} artifacts (each with a value, a label and a cell type; filled in {:.1} s)",
        start.elapsed().as_secs_f64()
    );
    let query = "SELECT uid FROM lamin.artifact";
    let (s, out) = lamin(
        &cluster,
        "postgres",
        &[
            "transfer", "--from", "lab_0", "--to", "lab_1", "--query", query, "-q",
        ],
    );
    assert_eq!(out.lines().filter(|l| l.ends_with("\tcreated")).count(), n);
    println!("  same storage:  {s:.2} s, {:.0} artifacts/s", n as f64 / s);
    let (s, out) = lamin(
        &cluster,
        "postgres",
        &[
            "transfer", "--from", "lab_0", "--to", "lab_1", "--query", query, "-q",
        ],
    );
    assert_eq!(out.lines().filter(|l| l.ends_with("\texists")).count(), n);
    println!(
        "  again (nothing to do): {s:.2} s, {:.0} artifacts/s",
        n as f64 / s
    );
    let copy_root = dir.path().join("s2");
    cluster
        .connect_to("lab_2")
        .query_one(
            "SELECT lamin.add_storage($1)",
            &[&copy_root.to_str().unwrap()],
        )
        .unwrap();
    let (s, _) = lamin(
        &cluster,
        "postgres",
        &[
            "transfer", "--from", "lab_0", "--to", "lab_2", "--query", query, "--copy", "-q",
        ],
    );
    println!(
        "  --copy into another storage (hash-checked): {s:.2} s, {:.0} artifacts/s",
        n as f64 / s
    );
    // Baseline: pg_dump/pg_restore of the whole source (what moving records took before).
    let start = Instant::now();
    let dump = dir.path().join("lab_0.dump");
    let out = cluster
        .client_command("pg_dump")
        .args(["-Fc", "-d", "lab_0", "-f"])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "  baseline, pg_dump -Fc of the source alone (the whole instance, ontologies included): {:.2} s\n",
        start.elapsed().as_secs_f64()
    );

    // LaminDB: n_lamindb files saved by LaminDB itself, then imported.
    let Ok(python) = std::env::var("LAMIN_LAMINDB_PYTHON") else {
        println!("(LAMIN_LAMINDB_PYTHON not set: no LaminDB import figures)");
        return;
    };
    let ldb = dir.path().join("lamindb");
    std::fs::create_dir_all(ldb.join("home")).unwrap();
    let out = Command::new(&python)
        .arg(fixture("lamindb/make_many.py"))
        .arg(ldb.join("storage"))
        .arg(n_lamindb.to_string())
        .env("HOME", ldb.join("home"))
        .current_dir(&ldb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ldb.join("made.json")).unwrap()).unwrap();
    let lamindb_s = made["seconds"].as_f64().unwrap();
    let _sidecar = Sidecar::start_as(&cluster, &url(&cluster, "lab_2"), "bench-mesh", &[], &[]);
    let from = ldb.join("storage");
    let (s_doc, _) = lamin(
        &cluster,
        "lab_2",
        &["import-lamindb", "--from", from.to_str().unwrap(), "-q"],
    );
    let mut db = cluster.connect_to("lab_2");
    let start = Instant::now();
    loop {
        let pending: i64 = db
            .query_one(
                "SELECT count(*) FROM lamin.artifact WHERE status = 'pending'",
                &[],
            )
            .unwrap()
            .get(0);
        if pending == 0 {
            break;
        }
        assert!(start.elapsed().as_secs() < 1800, "{pending} still pending");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let s_hash = start.elapsed().as_secs_f64();
    println!("lamin import-lamindb of {n_lamindb} artifacts saved by LaminDB (+ a label each)");
    println!(
        "  records written: {s_doc:.2} s, {:.0} artifacts/s",
        n_lamindb as f64 / s_doc
    );
    println!(
        "  then hashed by the sidecar (register jobs): {s_hash:.2} s, {:.0} artifacts/s",
        n_lamindb as f64 / s_hash
    );
    println!(
        "  baseline, LaminDB saving the same files: {lamindb_s:.2} s, {:.0} artifacts/s",
        n_lamindb as f64 / lamindb_s
    );
}
