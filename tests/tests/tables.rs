//! Parquet artifacts end to end, with files written by pyarrow/pandas
//! (tests/fixtures/tabular, script beside them): columns become features and
//! a schema on save and register, `lamin cat` reads only what it must.

use lamin_e2e::{
    await_job, fixture, import_cl_cut, lamin, lamin_with_env, register_job, stderr_text,
    stdout_text, Cluster, S3Server, Sidecar,
};

/// Numbers as f64, so that 167 (Postgres JSON) equals 167.0 (Python).
fn as_floats(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.into_iter().map(as_floats).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, as_floats(v))).collect()),
        other => other,
    }
}

/// `lamin save` of a fixture (e.g. tabular/cells.parquet): its uid and stderr.
fn save(cluster: &Cluster, file: &str, key: &str) -> (String, String) {
    let path = fixture(file);
    let out = lamin(
        cluster,
        &["save", path.to_str().unwrap(), "--key", key, "-q"],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    (stdout_text(&out).trim().to_string(), stderr_text(&out))
}

#[test]
fn saved_parquet_gets_its_columns_and_cat_reads_only_what_it_needs() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let dir = tempfile::tempdir().unwrap();
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&dir.path().join("storage").to_str().unwrap()],
    )
    .unwrap();
    // A feature that exists with another dtype is reported, not changed.
    db.execute("SELECT lamin.create_feature('is_doublet', 'str')", &[])
        .unwrap();

    let (uid, warnings) = save(&cluster, "tabular/cells.parquet", "atlas/cells.parquet");
    assert!(warnings.contains("is_doublet"), "{warnings}");
    let row = db
        .query_one(
            "SELECT a.n_observations, a.otype,
                    (SELECT string_agg(f.name || ':' || f.dtype, ',' ORDER BY sf.position)
                     FROM lamin.artifact_schema s JOIN lamin.schema_feature sf ON sf.schema_id = s.schema_id
                     JOIN lamin.feature f ON f.id = sf.feature_id WHERE s.artifact_id = a.id AND s.slot = 'columns')
             FROM lamin.artifact a WHERE a.uid = $1",
            &[&uid],
        )
        .unwrap();
    assert_eq!(row.get::<_, Option<i64>>(0), Some(1000));
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("DataFrame")
    );
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("cell_id:str,cell_type:cat,n_genes:int,score:float,is_doublet:str,sampled:datetime"),
        "features in column order; the existing is_doublet keeps its dtype"
    );

    // An empty table still has its columns; a CSV named .parquet stays plain bytes.
    let (empty, _) = save(&cluster, "tabular/empty.parquet", "atlas/empty.parquet");
    let n: Option<i64> = db
        .query_one(
            "SELECT n_observations FROM lamin.artifact WHERE uid = $1",
            &[&empty],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, Some(0));
    let (plain, warnings) = save(
        &cluster,
        "tabular/mislabelled.parquet",
        "atlas/mislabelled.parquet",
    );
    assert!(warnings.contains("saved as plain bytes"), "{warnings}");
    let schemas: i64 = db
        .query_one(
            "SELECT count(*) FROM lamin.artifact_schema s JOIN lamin.artifact a ON a.id = s.artifact_id WHERE a.uid = $1",
            &[&plain],
        )
        .unwrap()
        .get(0);
    assert_eq!(schemas, 0);
    let refused = lamin(&cluster, &["cat", &plain]);
    assert!(!refused.status.success());
    assert!(
        stderr_text(&refused).contains("not a readable parquet file"),
        "{}",
        stderr_text(&refused)
    );

    // cat: two columns, the rows whose n_genes >= 990: one row group of four is read.
    let out = lamin(
        &cluster,
        &[
            "cat",
            &uid,
            "--columns",
            "cell_id,n_genes",
            "--where",
            "n_genes >= 990",
            "--stats",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let csv = stdout_text(&out);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "cell_id,n_genes");
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[1], "cell-0990,990");
    assert!(
        stderr_text(&out).contains("1 of 4 row groups"),
        "{}",
        stderr_text(&out)
    );
    // A categorical and a quoted string, JSON lines, a limit.
    let out = lamin(
        &cluster,
        &[
            "cat",
            &uid,
            "--columns",
            "cell_id,cell_type",
            "--where",
            "cell_type = 'CD8-positive, alpha-beta T cell'",
            "--limit",
            "2",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let rows: Vec<serde_json::Value> = stdout_text(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["cell_id"], "cell-0003");
    assert_eq!(rows[1]["cell_type"], "CD8-positive, alpha-beta T cell");
    // Parquet out, saved back: the same rows.
    let subset = dir.path().join("subset.parquet");
    let out = lamin(
        &cluster,
        &[
            "cat",
            &uid,
            "--where",
            "n_genes < 100",
            "--format",
            "parquet",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    std::fs::write(&subset, &out.stdout).unwrap();
    let back = lamin(&cluster, &["save", subset.to_str().unwrap(), "-q"]);
    assert!(back.status.success(), "{}", stderr_text(&back));
    let n: Option<i64> = db
        .query_one(
            "SELECT n_observations FROM lamin.artifact WHERE uid = $1",
            &[&stdout_text(&back).trim()],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, Some(100));
    // load: a new table with the file's types, filled as the caller, the
    // artifact recorded as an input of the current run.
    let run: String = db
        .query_one("SELECT lamin.track('pipelines/warehouse.py')", &[])
        .unwrap()
        .get(0);
    let _sidecar = Sidecar::start(&cluster, "loader");
    let job: i64 = db
        .query_one("SELECT lamin.load($1, 'public.cells')", &[&uid])
        .unwrap()
        .get(0);
    let (status, error): (String, Option<String>) = {
        let s: String = db
            .query_one(
                "SELECT status FROM lamin.await_job_outcome($1, 60)",
                &[&job],
            )
            .unwrap()
            .get(0);
        (
            s,
            db.query_one("SELECT error FROM lamin.job WHERE id = $1", &[&job])
                .unwrap()
                .get(0),
        )
    };
    assert_eq!(status, "done", "{error:?}");
    let sums = db
        .query_one(
            "SELECT count(*), sum(n_genes)::bigint, count(score), round(sum(score)::numeric, 6)::text,
                    count(DISTINCT cell_type), min(sampled)::text, sum(is_doublet::int)::bigint, max(cell_id)
             FROM public.cells",
            &[],
        )
        .unwrap();
    assert_eq!(sums.get::<_, i64>(0), 1000);
    assert_eq!(sums.get::<_, i64>(1), 499_500);
    assert_eq!(sums.get::<_, i64>(2), 900, "nulls stay null");
    assert_eq!(sums.get::<_, String>(3), "64285.714286");
    assert_eq!(sums.get::<_, i64>(4), 4);
    assert_eq!(sums.get::<_, String>(5), "2025-01-01 00:00:00");
    assert_eq!(sums.get::<_, i64>(6), 77);
    assert_eq!(sums.get::<_, String>(7), "cell-0999");
    let types: String = db
        .query_one(
            "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'cells'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        types,
        "cell_id text, cell_type text, n_genes bigint, score double precision, is_doublet boolean, \
         sampled timestamp without time zone"
    );
    let input: i64 = db
        .query_one(
            "SELECT count(*) FROM lamin.run_input_artifact i JOIN lamin.run r ON r.id = i.run_id
             JOIN lamin.artifact a ON a.id = i.artifact_id WHERE r.uid = $1 AND a.uid = $2",
            &[&run, &uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(input, 1);
    let err = db
        .query_one("SELECT lamin.load($1, 'public.cells')", &[&uid])
        .unwrap_err();
    assert!(
        err.as_db_error().unwrap().message().contains("exists"),
        "{err}"
    );
    let err = db
        .query_one("SELECT lamin.load($1, 'a.b.c')", &[&uid])
        .unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("invalid table name"),
        "{err}"
    );
    let job: i64 = db
        .query_one("SELECT lamin.load($1, 'public.broken')", &[&plain])
        .unwrap()
        .get(0);
    let status: String = db
        .query_one(
            "SELECT status FROM lamin.await_job_outcome($1, 60)",
            &[&job],
        )
        .unwrap()
        .get(0);
    assert_eq!(status, "failed");
    let exists: bool = db
        .query_one("SELECT to_regclass('public.broken') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(!exists, "a failed load leaves no table behind");

    // export: a query's rows, run as the caller, saved as a parquet artifact
    // created by the current run; pyarrow reads it back identical.
    let job: i64 = db
        .query_one(
            "SELECT lamin.export('SELECT cell_type, count(*) AS n, avg(n_genes)::float8 / 3 AS mean_genes, \
             min(sampled) AS first_sampled, bool_or(is_doublet) AS any_doublet FROM public.cells GROUP BY 1 ORDER BY 1', \
             'reports/by-type.parquet')",
            &[],
        )
        .unwrap()
        .get(0);
    let status: String = db
        .query_one(
            "SELECT status FROM lamin.await_job_outcome($1, 60)",
            &[&job],
        )
        .unwrap()
        .get(0);
    let (result, error): (Option<String>, Option<String>) = {
        let r = db
            .query_one(
                "SELECT result::text, error FROM lamin.job WHERE id = $1",
                &[&job],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, "done", "{error:?}");
    let result: serde_json::Value = serde_json::from_str(&result.unwrap()).unwrap();
    let exported = result["uid"].as_str().unwrap().to_string();
    let row = db
        .query_one(
            "SELECT a.key, a.n_observations, r.uid FROM lamin.artifact a JOIN lamin.run r ON r.id = a.run_id WHERE a.uid = $1",
            &[&exported],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(0).as_deref(),
        Some("reports/by-type.parquet")
    );
    assert_eq!(row.get::<_, Option<i64>>(1), Some(4));
    assert_eq!(
        row.get::<_, String>(2),
        run,
        "created by the run that asked for it"
    );
    let expected: String = db
        .query_one(
            "SELECT json_agg(x)::text FROM (SELECT cell_type, count(*) AS n, avg(n_genes)::float8 / 3 AS mean_genes,
                    to_char(min(sampled), 'YYYY-MM-DD HH24:MI:SS') AS first_sampled, bool_or(is_doublet) AS any_doublet
             FROM public.cells GROUP BY 1 ORDER BY 1) x",
            &[],
        )
        .unwrap()
        .get(0);
    let file = dir.path().join("by-type.parquet");
    let got = lamin(
        &cluster,
        &["get", &exported, "--to", file.to_str().unwrap(), "-q"],
    );
    assert!(got.status.success(), "{}", stderr_text(&got));
    let python = std::env::var("LAMIN_PYARROW_PYTHON")
        .expect("LAMIN_PYARROW_PYTHON: a python with pyarrow (scripts/test installs it)");
    let read = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys, pyarrow.parquet as pq\n\
             rows = pq.read_table(sys.argv[1]).to_pylist()\n\
             for r in rows: r['first_sampled'] = r['first_sampled'].strftime('%Y-%m-%d %H:%M:%S')\n\
             print(json.dumps(rows))",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", stderr_text(&read));
    let ours: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(
        as_floats(ours),
        as_floats(theirs),
        "pyarrow reads back what the query returned"
    );
    // A query that writes fails (read-only), and so does one that does not parse.
    for (query, expected) in [
        (
            "DELETE FROM public.cells RETURNING n_genes",
            "read-only transaction",
        ),
        ("SELEC 1", "syntax error"),
        ("SELECT 1::numeric AS x", "cast it in the query"),
    ] {
        let job: i64 = db
            .query_one("SELECT lamin.export($1, 'reports/bad.parquet')", &[&query])
            .unwrap()
            .get(0);
        let status: String = db
            .query_one(
                "SELECT status FROM lamin.await_job_outcome($1, 60)",
                &[&job],
            )
            .unwrap()
            .get(0);
        let error: Option<String> = db
            .query_one("SELECT error FROM lamin.job WHERE id = $1", &[&job])
            .unwrap()
            .get(0);
        assert_eq!(status, "failed", "{query}");
        assert!(
            error.as_deref().unwrap_or("").contains(expected),
            "{query}: {error:?}"
        );
    }
    let still: i64 = db
        .query_one("SELECT count(*) FROM public.cells", &[])
        .unwrap()
        .get(0);
    assert_eq!(still, 1000);

    // Bad requests: a clear error each.
    for (args, expected) in [
        (
            vec!["cat", uid.as_str(), "--columns", "nope"],
            "no column \"nope\"",
        ),
        (
            vec!["cat", uid.as_str(), "--where", "n_genes >= 'many'"],
            "is not a value of type",
        ),
        (
            vec!["cat", uid.as_str(), "--where", "cell_type = B"],
            "if B is a text value, put it in single quotes: cell_type = 'B'",
        ),
        (
            vec!["cat", uid.as_str(), "--where", "n_genes ~ 3"],
            "the operator ~ is not supported",
        ),
    ] {
        let out = lamin(&cluster, &args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr_text(&out).contains(expected),
            "{args:?}: {}",
            stderr_text(&out)
        );
    }
}

#[test]
fn registered_parquet_on_s3_is_described_and_read_by_ranges() {
    let s3 = S3Server::start();
    s3.create_bucket("lab");
    let env = s3.env();
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.execute("SELECT lamin.add_storage('s3://lab/data')", &[])
        .unwrap();
    let bytes = std::fs::read(fixture("tabular/cells.parquet")).unwrap();
    s3.put("lab", "data/ext/cells.parquet", bytes.clone());
    let _sidecar = Sidecar::start_env(&cluster, "tables", &["--lease-s", "5"], &env);
    let uid: String = db
        .query_one(
            "SELECT lamin.register('s3://lab/data/ext/cells.parquet')",
            &[],
        )
        .unwrap()
        .get(0);
    let job = register_job(&mut db, &uid);
    assert_eq!(await_job(&mut db, job).0, "done");
    let n: Option<i64> = db
        .query_one(
            "SELECT n_observations FROM lamin.artifact WHERE uid = $1",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, Some(1000));

    let out = lamin_with_env(
        &cluster,
        &env,
        &[
            "cat",
            &uid,
            "--columns",
            "n_genes",
            "--where",
            "n_genes < 10",
            "--stats",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(stdout_text(&out).lines().count(), 11);
    let stats = stderr_text(&out);
    eprintln!("lamin cat from S3: {stats}");
    let read: u64 = stats
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(
        read < bytes.len() as u64 / 3,
        "one column of one row group plus the footer, not the file: {stats}"
    );

    // A CSV and an h5ad saved to S3 are read through a temporary copy.
    for (file, key, args, expected) in [
        (
            "tabular/cells.csv",
            "t/cells.csv",
            vec!["--columns", "cell_id", "--where", "n_genes IN (7, 8)"],
            "cell_id\ncell-0007\ncell-0008",
        ),
        (
            "anndata/pbmc.h5ad",
            "t/pbmc.h5ad",
            vec!["--slot", "var", "--columns", "gene_symbol", "--limit", "2"],
            "gene_symbol\nCD4\nCD8A",
        ),
    ] {
        let out = lamin_with_env(
            &cluster,
            &env,
            &["save", fixture(file).to_str().unwrap(), "--key", key, "-q"],
        );
        assert!(out.status.success(), "{}", stderr_text(&out));
        let saved = stdout_text(&out);
        let mut cat = vec!["cat", saved.as_str()];
        cat.extend(args);
        let out = lamin_with_env(&cluster, &env, &cat);
        assert!(out.status.success(), "{}", stderr_text(&out));
        assert_eq!(stdout_text(&out), expected, "{file}");
    }
}

/// A cluster with a local storage and the cell types of the CL fixture.
fn cluster_with_cl() -> (Cluster, postgres::Client, tempfile::TempDir) {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let dir = tempfile::tempdir().unwrap();
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&dir.path().join("storage").to_str().unwrap()],
    )
    .unwrap();
    import_cl_cut(&cluster);
    (cluster, db, dir)
}

#[test]
fn curation_checks_a_column_against_an_ontology_and_annotates_with_what_validated() {
    let (cluster, mut db, _dir) = cluster_with_cl();
    let (uid, _) = save(&cluster, "tabular/cells.parquet", "atlas/cells.parquet");
    let _sidecar = Sidecar::start(&cluster, "curator");
    let wait = |db: &mut postgres::Client, job: i64| -> String {
        let status: String = db
            .query_one(
                "SELECT status FROM lamin.await_job_outcome($1, 60)",
                &[&job],
            )
            .unwrap()
            .get(0);
        let error: Option<String> = db
            .query_one("SELECT error FROM lamin.job WHERE id = $1", &[&job])
            .unwrap()
            .get(0);
        assert_eq!(status, "done", "{error:?}");
        status
    };

    // The file's cell types against bionty.cell_type: 3 of 4 validate.
    let job: i64 = db
        .query_one(
            "SELECT lamin.curate($1, 'cell_type', 'bionty.cell_type')",
            &[&uid],
        )
        .unwrap()
        .get(0);
    wait(&mut db, job);
    let report: Vec<(String, f64, String, bool)> = db
        .query(
            "SELECT column_name, validated_pct::float8, value, validated FROM lamin.curation_report($1)",
            &[&uid],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(report.len(), 4);
    assert!(
        report.iter().all(|r| r.0 == "cell_type" && r.1 == 75.0),
        "{report:?}"
    );
    assert_eq!(report[0].2, "macrophage", "non-validated first");
    assert!(!report[0].3);

    // A table with a synonym and a typo, made by lamin.export, curated the same way.
    let job: i64 = db
        .query_one(
            "SELECT lamin.export('SELECT unnest(ARRAY[''T lymphocyte'', ''B cell'', ''B cel'']) AS cell_type', 'tables/mixed.parquet')",
            &[],
        )
        .unwrap()
        .get(0);
    wait(&mut db, job);
    let mixed: String = db
        .query_one(
            "SELECT result ->> 'uid' FROM lamin.job WHERE id = $1",
            &[&job],
        )
        .unwrap()
        .get(0);
    let job: i64 = db
        .query_one(
            "SELECT lamin.curate($1, 'cell_type', 'bionty.cell_type')",
            &[&mixed],
        )
        .unwrap()
        .get(0);
    wait(&mut db, job);
    let rows: Vec<(String, bool, Option<String>, Option<String>)> = db
        .query(
            "SELECT value, validated, standardized, suggestion FROM lamin.curation_report($1)",
            &[&mixed],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let by_value = |v: &str| rows.iter().find(|r| r.0 == v).unwrap().clone();
    assert!(by_value("B cell").1);
    assert_eq!(
        by_value("T lymphocyte").2.as_deref(),
        Some("T cell"),
        "a synonym maps to its name: {rows:?}"
    );
    assert_eq!(
        by_value("B cel").3.as_deref(),
        Some("B cell"),
        "a typo gets a suggestion: {rows:?}"
    );

    // The follow-up call annotates with what validated (synonyms as their names).
    let added: i32 = db
        .query_one("SELECT lamin.annotate_curated($1, 'cell_type')", &[&mixed])
        .unwrap()
        .get(0);
    assert_eq!(added, 2);
    let terms: Vec<String> = db
        .query(
            "SELECT t.name FROM bionty.artifact_terms t JOIN lamin.artifact a ON a.id = t.artifact_id WHERE a.uid = $1 ORDER BY 1",
            &[&mixed],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(terms, ["B cell", "T cell"]);
    let dtype: String = db
        .query_one(
            "SELECT dtype FROM lamin.feature WHERE name = 'cell_type'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        dtype, "cat[bionty.cell_type]",
        "the file's generic cat now names its registry"
    );
    let err = db
        .query_one(
            "SELECT lamin.curate($1, 'cell_type', 'bionty.nope')",
            &[&uid],
        )
        .unwrap_err();
    assert!(err
        .as_db_error()
        .unwrap()
        .message()
        .contains("unknown registry"));
    let job: i64 = db
        .query_one(
            "SELECT lamin.curate($1, 'no_such_column', 'bionty.cell_type')",
            &[&uid],
        )
        .unwrap()
        .get(0);
    let status: String = db
        .query_one(
            "SELECT status FROM lamin.await_job_outcome($1, 60)",
            &[&job],
        )
        .unwrap()
        .get(0);
    assert_eq!(status, "failed");
}

#[test]
fn csv_and_tsv_get_inferred_columns_on_save_and_register() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    db.execute("SELECT lamin.add_storage($1)", &[&root.to_str().unwrap()])
        .unwrap();
    let columns = |db: &mut postgres::Client, uid: &str| -> (Option<i64>, Option<String>) {
        let r = db
            .query_one(
                "SELECT a.n_observations,
                        (SELECT string_agg(f.name || ':' || f.dtype, ',' ORDER BY sf.position)
                         FROM lamin.artifact_schema s JOIN lamin.schema_feature sf ON sf.schema_id = s.schema_id
                         JOIN lamin.feature f ON f.id = sf.feature_id WHERE s.artifact_id = a.id AND s.slot = 'columns')
                 FROM lamin.artifact a WHERE a.uid = $1",
                &[&uid],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let (csv, warnings) = save(&cluster, "tabular/cells.csv", "atlas/cells.csv");
    assert!(!warnings.contains("warning"), "{warnings}");
    assert_eq!(
        columns(&mut db, &csv),
        (
            Some(1000),
            Some("cell_id:str,cell_type:str,n_genes:int,score:float,is_doublet:bool,sampled:datetime".into())
        )
    );
    // A TSV already in the storage, registered: the job reads it and records the same.
    std::fs::create_dir_all(root.join("ext")).unwrap();
    std::fs::copy(fixture("tabular/cells.tsv"), root.join("ext/cells.tsv")).unwrap();
    let _sidecar = Sidecar::start(&cluster, "csv");
    let uid: String = db
        .query_one(
            "SELECT lamin.register($1)",
            &[&root.join("ext/cells.tsv").to_str().unwrap()],
        )
        .unwrap()
        .get(0);
    let job = register_job(&mut db, &uid);
    assert_eq!(await_job(&mut db, job).0, "done");
    assert_eq!(columns(&mut db, &uid).0, Some(1000));
    assert!(columns(&mut db, &uid)
        .1
        .unwrap()
        .starts_with("cell_id:str,cell_type:str,n_genes:int"));
    // Ragged rows: saved as plain bytes, with a warning.
    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
    let out = lamin(&cluster, &["save", ragged.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("saved as plain bytes"),
        "{}",
        stderr_text(&out)
    );
}

#[test]
fn anndata_h5ad_gets_obs_and_var_schemas_and_curates_against_ontologies() {
    let (cluster, mut db, dir) = cluster_with_cl();
    // Five human genes by Ensembl id (as GENCODE names them).
    db.batch_execute(
        "INSERT INTO bionty.gene (symbol, ensembl_gene_id, organism) VALUES
            ('CD4', 'ENSG00000010610', 'human'), ('CD8A', 'ENSG00000153563', 'human'),
            ('MS4A1', 'ENSG00000156738', 'human'), ('PTPRC', 'ENSG00000081237', 'human'),
            ('ACTB', 'ENSG00000075624', 'human')",
    )
    .unwrap();
    let (uid, _) = save(&cluster, "anndata/pbmc.h5ad", "atlas/pbmc.h5ad");
    let row = db
        .query_one(
            "SELECT a.n_observations, a.otype,
                    (SELECT string_agg(s.slot || ':' || f.name || ':' || f.dtype, ',' ORDER BY s.slot, sf.position)
                     FROM lamin.artifact_schema s JOIN lamin.schema_feature sf ON sf.schema_id = s.schema_id
                     JOIN lamin.feature f ON f.id = sf.feature_id WHERE s.artifact_id = a.id)
             FROM lamin.artifact a WHERE a.uid = $1",
            &[&uid],
        )
        .unwrap();
    assert_eq!(row.get::<_, Option<i64>>(0), Some(120));
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("AnnData"));
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("obs:cell_type:cat,obs:n_genes:int,obs:donor:cat,obs:pct_mito:float,var:gene_symbol:str")
    );
    // A truncated h5ad is saved as plain bytes with a warning.
    let out = lamin(
        &cluster,
        &[
            "save",
            fixture("anndata/truncated.h5ad").to_str().unwrap(),
            "-q",
        ],
    );
    assert!(out.status.success());
    assert!(
        stderr_text(&out).contains("saved as plain bytes"),
        "{}",
        stderr_text(&out)
    );

    // Curation: obs.cell_type against CL, the var index against genes by Ensembl id.
    let _sidecar = Sidecar::start(&cluster, "anndata");
    for (column, registry, field) in [
        ("obs.cell_type", "bionty.cell_type", None),
        ("var.index", "bionty.gene", Some("ensembl_gene_id")),
    ] {
        let job: i64 = db
            .query_one(
                "SELECT lamin.curate($1, $2, $3, $4)",
                &[&uid, &column, &registry, &field],
            )
            .unwrap()
            .get(0);
        let (status, _, error) = await_job(&mut db, job);
        assert_eq!(status, "done", "{column}: {error:?}");
    }
    let shares: Vec<(String, f64)> = db
        .query(
            "SELECT DISTINCT column_name, validated_pct::float8 FROM lamin.curation_report($1) ORDER BY 1",
            &[&uid],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        shares,
        [
            ("obs.cell_type".to_string(), 60.0),
            ("var.index".to_string(), 83.3)
        ],
        "3 of 5 cell types are CL names as they are; 5 of 6 genes are known"
    );
    let added: i32 = db
        .query_one(
            "SELECT lamin.annotate_curated($1, 'obs.cell_type')",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        added, 3,
        "T cell, B cell, CD8-positive alpha-beta T cell (T lymphocyte maps to T cell; the typo is left out)"
    );
    let err = db
        .query_one(
            "SELECT lamin.curate($1, 'cell_type', 'bionty.cell_type')",
            &[&uid],
        )
        .unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("expected obs."),
        "{err}"
    );

    // The same AnnData as a zarr store (a folder artifact): the same schemas and curation.
    let (store, _) = save(&cluster, "anndata/pbmc.zarr", "atlas/pbmc.zarr");
    let row = db
        .query_one(
            "SELECT a.n_observations, a.otype, a.n_files > 1,
                    (SELECT string_agg(s.slot || ':' || f.name || ':' || f.dtype, ',' ORDER BY s.slot, sf.position)
                     FROM lamin.artifact_schema s JOIN lamin.schema_feature sf ON sf.schema_id = s.schema_id
                     JOIN lamin.feature f ON f.id = sf.feature_id WHERE s.artifact_id = a.id)
             FROM lamin.artifact a WHERE a.uid = $1",
            &[&store],
        )
        .unwrap();
    assert_eq!(row.get::<_, Option<i64>>(0), Some(120));
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("AnnData"));
    assert!(row.get::<_, Option<bool>>(2).unwrap());
    assert_eq!(
        row.get::<_, Option<String>>(3).as_deref(),
        Some("obs:cell_type:cat[bionty.cell_type],obs:n_genes:int,obs:donor:cat,obs:pct_mito:float,var:gene_symbol:str"),
        "the features of the h5ad, cell_type now curated"
    );
    let job: i64 = db
        .query_one(
            "SELECT lamin.curate($1, 'var.index', 'bionty.gene', 'ensembl_gene_id')",
            &[&store],
        )
        .unwrap()
        .get(0);
    let (status, result, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    assert_eq!(result["validated_pct"], 83.3);

    // A zarr store already in the storage, registered: the job reads it the same
    // way. (One more file, else it is the content saved above: a duplicate.)
    let placed = dir.path().join("storage/ext/pbmc.zarr");
    std::fs::create_dir_all(placed.parent().unwrap()).unwrap();
    let copied = std::process::Command::new("cp")
        .args([
            "-r",
            fixture("anndata/pbmc.zarr").to_str().unwrap(),
            placed.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::write(placed.join("README.txt"), "registered copy").unwrap();
    let reg: String = db
        .query_one("SELECT lamin.register($1)", &[&placed.to_str().unwrap()])
        .unwrap()
        .get(0);
    let job = register_job(&mut db, &reg);
    let (status, result, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    assert_eq!(result["table"]["n_obs"], 120, "{result}");
    assert_eq!(
        result["table"]["obs"]["categories"]["cell_type"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

/// `lamin save` and the database share one suffix rule: a dotted stem keeps
/// only the last suffix (`cells.v2.parquet` is `.parquet`, `my.data.csv` is
/// `.csv`), with or without `--key`, so such files are read as the tables
/// they are and their objects are named `{uid}{suffix}`.
#[test]
fn dotted_file_names_keep_one_suffix_and_are_read_as_tables() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    db.execute("SELECT lamin.add_storage($1)", &[&root.to_str().unwrap()])
        .unwrap();
    let v2 = dir.path().join("cells.v2.parquet");
    std::fs::copy(fixture("tabular/cells.parquet"), &v2).unwrap();
    let dotted = dir.path().join("my.data.csv");
    std::fs::copy(fixture("tabular/cells.csv"), &dotted).unwrap();
    // Other bytes (one row more) saved under a dotted key.
    let keyed = dir.path().join("my.data.more.csv");
    let mut bytes = std::fs::read(&dotted).unwrap();
    bytes.extend_from_slice(b"cell-9999,B cell,1,1.0,False,2025-01-01 00:00:00\n");
    std::fs::write(&keyed, bytes).unwrap();
    let mut saved = Vec::new();
    for (file, key) in [
        (&v2, None),
        (&dotted, None),
        (&keyed, Some("runs/my.other.csv")),
    ] {
        let mut args = vec!["save", file.to_str().unwrap(), "-q"];
        if let Some(k) = key {
            args.extend(["--key", k]);
        }
        let out = lamin(&cluster, &args);
        assert!(out.status.success(), "{}", stderr_text(&out));
        assert!(
            !stderr_text(&out).contains("plain bytes"),
            "{}",
            stderr_text(&out)
        );
        saved.push(stdout_text(&out).trim().to_string());
    }
    for (uid, suffix, rows) in [
        (&saved[0], ".parquet", 1000i64),
        (&saved[1], ".csv", 1000),
        (&saved[2], ".csv", 1001),
    ] {
        let r = db
            .query_one(
                "SELECT a.suffix, a.n_observations, lamin.object_key(a),
                        (SELECT count(*) FROM lamin.artifact_schema s WHERE s.artifact_id = a.id AND s.slot = 'columns')
                 FROM lamin.artifact a WHERE a.uid = $1",
                &[uid],
            )
            .unwrap();
        let (got_suffix, n, object, schemas): (String, Option<i64>, String, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        assert_eq!(got_suffix, suffix, "{uid}");
        assert_eq!(n, Some(rows), "{uid}: rows recorded");
        assert_eq!(schemas, 1, "{uid}: columns schema recorded");
        assert_eq!(object, format!(".lamindb/{uid}{suffix}"));
        assert!(
            root.join(&object).is_file(),
            "{object} is where the database says"
        );
    }
}
