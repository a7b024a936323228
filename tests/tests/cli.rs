//! The CLI in a shell's daily loop (issue 16): every verb prints its result
//! alone on stdout (messages on stderr), runs started and finished from the
//! command line (`lamin track` / `lamin finish`) and across sessions,
//! `lamin describe`, `lamin ls`, `lamin get <key>`, `lamin search`, and
//! `lamin cat` over CSV/TSV and AnnData with SQL `--where` conditions.

use lamin_e2e::{fails, fixture, lamin, ok, stderr_text, Cluster};

fn setup() -> (Cluster, tempfile::TempDir, postgres::Client) {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let mut db = cluster.connect();
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&dir.path().join("storage").to_str().unwrap()],
    )
    .unwrap();
    (cluster, dir, db)
}

fn is_uid(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn every_verb_prints_its_result_alone_on_stdout() {
    let (cluster, dir, mut db) = setup();
    let file = write(&dir, "a.txt", "some bytes\n");
    let uid = ok(&lamin(
        &cluster,
        &["save", &file, "--key", "notes/a.txt", "-q"],
    ));
    assert!(is_uid(&uid, 20), "{uid:?}");
    // Known content: the same uid alone, so `uid=$(lamin save f)` keeps working.
    let again = lamin(&cluster, &["save", &file, "-q"]);
    assert_eq!(ok(&again), uid, "only the uid on stdout");
    assert!(
        stderr_text(&again).contains("nothing uploaded"),
        "{}",
        stderr_text(&again)
    );
    // A column whose feature has another dtype: one sentence per column, no JSON.
    db.execute("SELECT lamin.create_feature('is_doublet', 'str')", &[])
        .unwrap();
    let cells = fixture("tabular/cells.parquet");
    let out = lamin(
        &cluster,
        &[
            "save",
            cells.to_str().unwrap(),
            "--key",
            "t/cells.parquet",
            "-q",
        ],
    );
    let table = ok(&out);
    assert!(is_uid(&table, 20), "{table:?}");
    let warning = stderr_text(&out);
    let line = warning
        .lines()
        .find(|l| l.contains("is_doublet"))
        .unwrap_or_else(|| panic!("no warning about is_doublet: {warning}"));
    assert!(
        line.contains("column \"is_doublet\" is bool in the file")
            && line.contains("has dtype str")
            && line.contains("rename"),
        "{line}"
    );
    assert!(
        !line.contains('{') && !line.contains('['),
        "no JSON: {line}"
    );

    // get: the path alone; describe: JSON alone; track/finish: the run uid alone.
    let to = dir.path().join("back.txt");
    assert_eq!(
        ok(&lamin(
            &cluster,
            &["get", &uid, "--to", to.to_str().unwrap(), "-q"]
        )),
        to.to_str().unwrap()
    );
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&lamin(&cluster, &["describe", &uid]))).unwrap();
    assert_eq!(doc["uid"], uid.as_str());
    let run = ok(&lamin(
        &cluster,
        &["track", "--transform", "pipelines/x.sh"],
    ));
    assert!(is_uid(&run, 20), "{run:?}");
    assert_eq!(ok(&lamin(&cluster, &["finish", &run])), run);
}

#[test]
fn a_run_from_lamin_track_records_saves_and_gets_and_lamin_finish_ends_it() {
    let (cluster, dir, mut db) = setup();
    let run = ok(&lamin(
        &cluster,
        &[
            "track",
            "--transform",
            "pipelines/qc.sh",
            "--kind",
            "script",
            "--description",
            "quality control",
            "--params",
            r#"{"min_genes": 200}"#,
        ],
    ));
    assert!(is_uid(&run, 20), "{run:?}");
    let row = db
        .query_one(
            "SELECT t.key, t.kind, t.description, r.params::text, r.status, r.finished_at IS NULL
             FROM lamin.run r JOIN lamin.transform t ON t.id = r.transform_id WHERE r.uid = $1",
            &[&run],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "pipelines/qc.sh");
    assert_eq!(row.get::<_, String>(1), "script");
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("quality control")
    );
    assert_eq!(row.get::<_, String>(3), r#"{"min_genes": 200}"#);
    assert_eq!(row.get::<_, String>(4), "started");
    assert!(row.get::<_, bool>(5));

    // Another process saves and reads in that run.
    let input = write(&dir, "in.txt", "input\n");
    let input_uid = ok(&lamin(&cluster, &["save", &input, "-q"]));
    let output = write(&dir, "out.txt", "output\n");
    let out_uid = ok(&lamin(&cluster, &["save", &output, "--run", &run, "-q"]));
    let got = dir.path().join("got.txt");
    ok(&lamin(
        &cluster,
        &[
            "get",
            &input_uid,
            "--run",
            &run,
            "--to",
            got.to_str().unwrap(),
            "-q",
        ],
    ));
    let (creator, inputs): (Option<String>, i64) = {
        let r = db
            .query_one(
                "SELECT (SELECT r.uid FROM lamin.run r WHERE r.id = a.run_id),
                        (SELECT count(*) FROM lamin.run_input_artifact i JOIN lamin.run r ON r.id = i.run_id
                         JOIN lamin.artifact x ON x.id = i.artifact_id WHERE r.uid = $2 AND x.uid = $3)
                 FROM lamin.artifact a WHERE a.uid = $1",
                &[&out_uid, &run, &input_uid],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(creator.as_deref(), Some(run.as_str()));
    assert_eq!(inputs, 1);

    // finish: completed by default; a finished run takes no more outputs.
    assert_eq!(ok(&lamin(&cluster, &["finish", &run])), run);
    let (status, finished): (String, bool) = {
        let r = db
            .query_one(
                "SELECT status, finished_at IS NOT NULL FROM lamin.run WHERE uid = $1",
                &[&run],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((status.as_str(), finished), ("completed", true));
    let late = write(&dir, "late.txt", "late\n");
    let err = fails(&lamin(&cluster, &["save", &late, "--run", &run, "-q"]));
    assert!(err.contains("finished"), "{err}");

    // --status errored; bad input is refused naming the problem.
    let second = ok(&lamin(&cluster, &["track", "--key", "pipelines/qc.sh"]));
    ok(&lamin(
        &cluster,
        &["finish", &second, "--status", "errored"],
    ));
    let status: String = db
        .query_one("SELECT status FROM lamin.run WHERE uid = $1", &[&second])
        .unwrap()
        .get(0);
    assert_eq!(status, "errored");
    let err = fails(&lamin(
        &cluster,
        &["track", "--transform", "p.sh", "--params", "{not json"],
    ));
    assert!(
        err.contains("--params") && err.contains("not JSON"),
        "{err}"
    );
    let err = fails(&lamin(
        &cluster,
        &["track", "--key", "p.sh", "--kind", "job"],
    ));
    assert!(err.contains("possible values: pipeline, notebook"), "{err}");
    let err = fails(&lamin(&cluster, &["finish", "nosuchrun"]));
    assert!(err.contains("no run with uid"), "{err}");
}

#[test]
fn a_run_tracked_in_an_uncommitted_transaction_gets_a_hint_to_commit() {
    let (cluster, dir, mut db) = setup();
    let file = write(&dir, "f.txt", "data\n");
    // psycopg's default: lamin.track inside a transaction not yet committed.
    let mut tx = db.transaction().unwrap();
    let run: String = tx
        .query_one("SELECT lamin.track('notebooks/analysis.ipynb')", &[])
        .unwrap()
        .get(0);
    let err = fails(&lamin(&cluster, &["save", &file, "--run", &run, "-q"]));
    assert!(err.contains("no run with uid"), "{err}");
    assert!(
        err.contains("has not committed")
            && err.contains("conn.commit()")
            && err.contains("lamin track"),
        "the hint says to commit or to use lamin track: {err}"
    );
    tx.commit().unwrap();
    let uid = ok(&lamin(&cluster, &["save", &file, "--run", &run, "-q"]));
    let creator: Option<String> = db
        .query_one(
            "SELECT r.uid FROM lamin.artifact a JOIN lamin.run r ON r.id = a.run_id WHERE a.uid = $1",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(creator.as_deref(), Some(run.as_str()));
}

#[test]
fn get_takes_a_key_and_a_folder_gets_the_key_s_file_name() {
    let (cluster, dir, _db) = setup();
    let v1 = write(&dir, "v1.csv", "a,b\n1,2\n");
    let v2 = write(&dir, "v2.csv", "a,b\n3,4\n");
    let uid1 = ok(&lamin(
        &cluster,
        &["save", &v1, "--key", "raw/cells.csv", "-q"],
    ));
    let uid2 = ok(&lamin(
        &cluster,
        &["save", &v2, "--key", "raw/cells.csv", "-q"],
    ));
    assert_ne!(uid1, uid2);

    // A key: its latest version; a folder ending with / is made and gets the key's name.
    let into = dir.path().join("fresh");
    let to = format!("{}/", into.display());
    let got = ok(&lamin(
        &cluster,
        &["get", "raw/cells.csv", "--to", &to, "-q"],
    ));
    assert_eq!(got, into.join("cells.csv").to_str().unwrap());
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "a,b\n3,4\n");
    // An existing folder, by uid: the older version under the key's name.
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    let got = ok(&lamin(
        &cluster,
        &["get", &uid1, "--to", existing.to_str().unwrap(), "-q"],
    ));
    assert_eq!(got, existing.join("cells.csv").to_str().unwrap());
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "a,b\n1,2\n");
    // No key: uid + suffix.
    let keyless = write(&dir, "k.csv", "a\n9\n");
    let k = ok(&lamin(&cluster, &["save", &keyless, "-q"]));
    let got = ok(&lamin(
        &cluster,
        &["get", &k, "--to", existing.to_str().unwrap(), "-q"],
    ));
    assert_eq!(got, existing.join(format!("{k}.csv")).to_str().unwrap());
    // An unknown key says what it looked for.
    let err = fails(&lamin(&cluster, &["get", "raw/nope.csv", "-q"]));
    assert!(
        err.contains("no artifact with key \"raw/nope.csv\""),
        "{err}"
    );
}

#[test]
fn describe_prints_a_record_as_json_by_uid_or_key() {
    let (cluster, dir, _db) = setup();
    let f = write(&dir, "d.txt", "describe me\n");
    let uid = ok(&lamin(
        &cluster,
        &[
            "save",
            &f,
            "--key",
            "docs/d.txt",
            "--description",
            "a note",
            "-q",
        ],
    ));
    let by_uid: serde_json::Value =
        serde_json::from_str(&ok(&lamin(&cluster, &["describe", &uid]))).unwrap();
    assert_eq!(by_uid["key"], "docs/d.txt");
    assert_eq!(by_uid["description"], "a note");
    let by_key: serde_json::Value =
        serde_json::from_str(&ok(&lamin(&cluster, &["describe", "docs/d.txt"]))).unwrap();
    assert_eq!(by_key["uid"], uid.as_str());
    let err = fails(&lamin(&cluster, &["describe", "0000000000000000zzzz"]));
    assert!(err.contains("0000000000000000zzzz"), "{err}");
}

#[test]
fn ls_lists_latest_versions_by_prefix_space_label_and_feature() {
    let (cluster, dir, mut db) = setup();
    let a1 = ok(&lamin(
        &cluster,
        &[
            "save",
            &write(&dir, "a1", "1\n"),
            "--key",
            "raw/a.txt",
            "-q",
        ],
    ));
    let a2 = ok(&lamin(
        &cluster,
        &[
            "save",
            &write(&dir, "a2", "2\n"),
            "--key",
            "raw/a.txt",
            "-q",
        ],
    ));
    let b = ok(&lamin(
        &cluster,
        &["save", &write(&dir, "b", "b\n"), "--key", "raw/b.txt", "-q"],
    ));
    let c = ok(&lamin(
        &cluster,
        &[
            "save",
            &write(&dir, "c", "c\n"),
            "--key",
            "results/c.txt",
            "-q",
        ],
    ));
    db.batch_execute(&format!(
        "SELECT lamin.create_space('lab');
         INSERT INTO lamin.ulabel (name) VALUES ('lung'), ('liver');
         SELECT lamin.create_feature('tissue', 'cat');
         SELECT lamin.create_feature('batch', 'int');
         SELECT lamin.annotate('{b}', 'tissue', ARRAY['lung']);
         SELECT lamin.annotate('{c}', 'tissue', ARRAY['liver']);
         SELECT lamin.annotate('{c}', 'batch', ARRAY['3']);
         INSERT INTO bionty.cell_type (name, ontology_id) VALUES ('T cell', 'CL:0000084');
         SELECT lamin.create_feature('cell_type', 'cat[bionty.cell_type]');
         SELECT lamin.annotate('{a2}', 'cell_type', ARRAY['T cell']);"
    ))
    .unwrap();
    let d = ok(&lamin(
        &cluster,
        &[
            "save",
            &write(&dir, "d", "d\n"),
            "--key",
            "lab/d.txt",
            "--space",
            "lab",
            "-q",
        ],
    ));

    let uids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ls", "--format", "json"];
        all.extend_from_slice(args);
        ok(&lamin(&cluster, &all))
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["uid"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(uids(&[]), [d.clone(), a2.clone(), b.clone(), c.clone()]);
    assert_eq!(uids(&["raw/"]), [a2.clone(), b.clone()]);
    assert_eq!(
        uids(&["raw/", "--all-versions"]),
        [a1, a2.clone(), b.clone()]
    );
    assert_eq!(uids(&["--space", "lab"]), [d]);
    assert_eq!(uids(&["--label", "lung"]), std::slice::from_ref(&b));
    assert_eq!(
        uids(&["--feature", "tissue=liver"]),
        std::slice::from_ref(&c)
    );
    assert_eq!(
        uids(&["--feature", "batch=3", "--feature", "tissue=liver"]),
        std::slice::from_ref(&c)
    );
    assert!(uids(&["--feature", "batch=4"]).is_empty());
    // Records of other registries (a cell type) count as labels and feature values too.
    assert_eq!(uids(&["--label", "T cell"]), std::slice::from_ref(&a2));
    assert_eq!(
        uids(&["--feature", "cell_type=T cell"]),
        std::slice::from_ref(&a2)
    );
    assert!(uids(&["--label", "T cell", "--label", "lung"]).is_empty());

    // The table: a header and aligned columns; CSV: a header and every field.
    let table = ok(&lamin(&cluster, &["ls", "raw/"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("uid "), "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    let key_at = lines[0].find("key").unwrap();
    assert_eq!(&lines[1][key_at..key_at + 9], "raw/a.txt", "{table}");
    assert_eq!(&lines[2][key_at..key_at + 9], "raw/b.txt", "{table}");
    let csv = ok(&lamin(&cluster, &["ls", "results/", "--format", "csv"]));
    assert!(
        csv.starts_with("uid,key,version,is_latest,suffix,size"),
        "{csv}"
    );
    assert!(csv
        .lines()
        .nth(1)
        .unwrap()
        .starts_with(&format!("{c},results/c.txt,")));

    let err = fails(&lamin(&cluster, &["ls", "--feature", "tissue"]));
    assert!(err.contains("name=value"), "{err}");
    let err = fails(&lamin(&cluster, &["ls", "--feature", "tisue=lung"]));
    assert!(err.contains("no feature named \"tisue\""), "{err}");
}

#[test]
fn search_ranks_a_registry_s_records() {
    let (cluster, _dir, _db) = setup();
    let cl = fixture("bionty/cl-cut.json.zst");
    ok(&lamin(
        &cluster,
        &[
            "import",
            "ontology",
            "--entity",
            "cell_type",
            "--source",
            "cl",
            "--version",
            "cut",
            cl.to_str().unwrap(),
        ],
    ));
    let out = ok(&lamin(
        &cluster,
        &[
            "search",
            "T cell",
            "--registry",
            "bionty.cell_type",
            "--limit",
            "3",
            "--format",
            "csv",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "registry,uid,name,matched,score");
    assert!(lines.len() >= 2 && lines.len() <= 4, "{out}");
    assert!(lines[1].starts_with("bionty.cell_type,"), "{out}");
    assert!(lines[1].contains(",T cell,"), "the exact name first: {out}");
    let table = ok(&lamin(
        &cluster,
        &["search", "T cel", "--registry", "bionty.cell_type"],
    ));
    assert!(table.starts_with("registry"), "{table}");
    assert!(table.contains("T cell"), "{table}");
    let err = fails(&lamin(
        &cluster,
        &["search", "x", "--registry", "bionty.nope"],
    ));
    assert!(err.contains("bionty.nope"), "{err}");
}

#[test]
fn cat_reads_csv_tsv_and_the_obs_and_var_of_anndata() {
    let (cluster, _dir, _db) = setup();
    let save = |file: &str, key: &str| {
        ok(&lamin(
            &cluster,
            &["save", fixture(file).to_str().unwrap(), "--key", key, "-q"],
        ))
    };
    let csv = save("tabular/cells.csv", "t/cells.csv");
    let tsv = save("tabular/cells.tsv", "t/cells.tsv");
    let parquet = save("tabular/cells.parquet", "t/cells.parquet");
    let query = [
        "--columns",
        "cell_id,n_genes,score",
        "--where",
        "cell_type IN ('B cell', 'macrophage') AND n_genes < 10",
    ];
    let from = |what: &str| {
        let mut args = vec!["cat", what];
        args.extend_from_slice(&query);
        ok(&lamin(&cluster, &args))
    };
    let rows = from(&parquet);
    assert_eq!(
        rows,
        "cell_id,n_genes,score\ncell-0001,1,0.14285714285714285\ncell-0002,2,0.2857142857142857\ncell-0005,5,0.7142857142857143\ncell-0006,6,0.8571428571428571\ncell-0009,9,1.2857142857142858"
    );
    assert_eq!(from(&csv), rows, "CSV reads as the parquet does");
    assert_eq!(from(&tsv), rows, "TSV too");
    assert_eq!(from("t/cells.csv"), rows, "by key");

    // AnnData: obs by default, var with --slot; h5ad and zarr alike.
    let h5ad = save("anndata/pbmc.h5ad", "t/pbmc.h5ad");
    let zarr = save("anndata/pbmc.zarr", "t/pbmc.zarr");
    let obs = ok(&lamin(
        &cluster,
        &[
            "cat",
            &h5ad,
            "--where",
            "cell_type = 'B cell' AND n_genes >= 1000",
            "--limit",
            "2",
        ],
    ));
    assert_eq!(
        obs.lines().next().unwrap(),
        "index,cell_type,n_genes,donor,pct_mito"
    );
    assert_eq!(obs.lines().count(), 3, "{obs}");
    assert!(
        obs.lines()
            .nth(1)
            .unwrap()
            .starts_with("cell-101,B cell,1010,d2,"),
        "{obs}"
    );
    let var = ok(&lamin(&cluster, &["cat", &h5ad, "--slot", "var"]));
    assert_eq!(var.lines().count(), 7, "{var}");
    assert!(var.contains("ENSG00000010610,CD4"), "{var}");
    for slot in ["obs", "var"] {
        assert_eq!(
            ok(&lamin(&cluster, &["cat", &zarr, "--slot", slot])),
            ok(&lamin(&cluster, &["cat", &h5ad, "--slot", slot])),
            "{slot} of the zarr store is that of the h5ad"
        );
    }
    let err = fails(&lamin(&cluster, &["cat", &csv, "--slot", "var"]));
    assert!(err.contains("--slot is for AnnData"), "{err}");
}

#[test]
fn cat_where_is_sql_with_or_in_null_and_parentheses() {
    let (cluster, _dir, _db) = setup();
    let uid = ok(&lamin(
        &cluster,
        &[
            "save",
            fixture("tabular/cells.parquet").to_str().unwrap(),
            "--key",
            "t/cells.parquet",
            "-q",
        ],
    ));
    let cat = |filter: &str| {
        lamin(
            &cluster,
            &[
                "cat",
                &uid,
                "--columns",
                "n_genes",
                "--where",
                filter,
                "--stats",
            ],
        )
    };
    let n_rows = |filter: &str| ok(&cat(filter)).lines().count() - 1;
    assert_eq!(n_rows("n_genes < 3 OR n_genes >= 998"), 5);
    assert_eq!(
        n_rows("(n_genes < 20 OR n_genes > 990) AND score IS NULL"),
        2
    );
    assert_eq!(n_rows("score IS NOT NULL AND n_genes BETWEEN 10 AND 19"), 9);
    assert_eq!(
        n_rows("cell_type NOT IN ('T cell', 'B cell', 'macrophage') AND n_genes < 12"),
        3
    );
    assert_eq!(
        n_rows("cell_type LIKE 'CD8%' AND NOT is_doublet AND n_genes < 12"),
        3
    );
    // Row groups are still skipped by their statistics, OR and IN included.
    let out = cat("n_genes < 3 OR n_genes >= 998");
    assert!(
        stderr_text(&out).contains("2 of 4 row groups"),
        "{}",
        stderr_text(&out)
    );
    let out = cat("n_genes IN (5, 260)");
    assert!(
        stderr_text(&out).contains("2 of 4 row groups"),
        "{}",
        stderr_text(&out)
    );

    // Clear refusals, before anything is read.
    let err = fails(&cat("cell_type = macrophage"));
    assert!(
        err.contains("put it in single quotes: cell_type = 'macrophage'"),
        "an unquoted string says to quote it: {err}"
    );
    let err = fails(&cat("lower(cell_type) = 'b cell'"));
    assert!(
        err.contains("a function call") && err.contains("not supported"),
        "{err}"
    );
    let err = fails(&cat("n_genes = NULL"));
    assert!(err.contains("IS NULL"), "{err}");
    let err = fails(&cat("n_genes >= 3 cell_type = 'x'"));
    assert!(err.contains("AND or OR"), "{err}");
    let err = fails(&cat("nope = 1"));
    assert!(err.contains("no column \"nope\""), "{err}");
}
