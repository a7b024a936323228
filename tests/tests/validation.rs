//! Datasets validated against schemas, end to end (LaminDB's curators):
//! files written by pandas and anndata (tests/fixtures/validation, script
//! beside them; LaminDB's "mini immuno" example), checked by `lamin save
//! --schema`, `lamin validate` and the validate job of a sidecar.

use lamin_e2e::{
    await_job, fixture, import_cl_cut, lamin, stderr_text, stdout_text, Cluster, Sidecar,
};

/// A cluster with a storage, the Cell Ontology cut, the mini immuno genes,
/// labels and features (as LaminDB's define_mini_immuno_features_labels).
fn setup() -> (Cluster, postgres::Client, tempfile::TempDir) {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let dir = tempfile::tempdir().unwrap();
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&dir.path().join("storage").to_str().unwrap()],
    )
    .unwrap();
    import_cl_cut(&cluster);
    db.batch_execute(
        "INSERT INTO bionty.gene (symbol, ensembl_gene_id, organism) VALUES
            ('CD8A', 'ENSG00000153563', 'human'), ('CD4', 'ENSG00000010610', 'human'), ('CD14', 'ENSG00000170458', 'human');
         INSERT INTO lamin.ulabel (name) VALUES ('DMSO'), ('IFNG');
         SELECT lamin.create_feature('perturbation', 'cat');
         SELECT lamin.create_feature('cell_type_by_expert', 'cat[bionty.cell_type]');
         SELECT lamin.create_feature('cell_type_by_model', 'cat[bionty.cell_type]');
         SELECT lamin.create_feature('concentration', 'str');
         SELECT lamin.create_feature('treatment_time_h', 'num', coerce => true);
         SELECT lamin.create_feature('donor', 'str');
         SELECT lamin.create_feature('assay_oid', 'str');
         SELECT lamin.create_schema(ARRAY['perturbation', 'cell_type_by_model', 'assay_oid', 'donor', 'concentration', 'treatment_time_h'],
                                    name => 'mini_immuno', optionals => ARRAY['assay_oid']);
         SELECT lamin.create_schema(ARRAY['perturbation', 'cell_type_by_expert', 'cell_type_by_model', 'donor'], name => 'mini_immuno_obs');
         SELECT lamin.create_schema(itype => 'bionty.gene.ensembl_gene_id', name => 'ensembl_genes');
         SELECT lamin.create_schema(name => 'mini_immuno_anndata', otype => 'AnnData',
                                    slots => '{\"obs\": \"mini_immuno_obs\", \"var.T\": \"ensembl_genes\"}');",
    )
    .unwrap();
    (cluster, db, dir)
}

fn artifacts(db: &mut postgres::Client) -> i64 {
    db.query_one("SELECT count(*) FROM lamin.artifact", &[])
        .unwrap()
        .get(0)
}

fn validated_schema(db: &mut postgres::Client, uid: &str) -> Option<String> {
    db.query_one(
        "SELECT s.name FROM lamin.artifact a LEFT JOIN lamin.schema s ON s.id = a.schema_id WHERE a.uid = $1",
        &[&uid],
    )
    .unwrap()
    .get(0)
}

#[test]
fn save_with_a_schema_validates_annotates_and_strict_refuses_what_fails() {
    let (cluster, mut db, _dir) = setup();
    let file = |name: &str| {
        fixture(&format!("validation/{name}"))
            .to_str()
            .unwrap()
            .to_string()
    };

    // The documented dataset passes: the schema and the labels of its categorical columns.
    let out = lamin(
        &cluster,
        &[
            "save",
            &file("mini_immuno.parquet"),
            "--schema",
            "mini_immuno",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uid = stdout_text(&out);
    assert_eq!(uid.len(), 20, "the uid alone on stdout: {uid}");
    assert!(
        stderr_text(&out).contains("meets schema \"mini_immuno\""),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(
        validated_schema(&mut db, &uid).as_deref(),
        Some("mini_immuno")
    );
    let labels: Vec<String> = db
        .query(
            "SELECT feature || '=' || name FROM lamin.annotations WHERE artifact_uid = $1 ORDER BY 1",
            &[&uid],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        labels,
        [
            "cell_type_by_model=B cell",
            "cell_type_by_model=T cell",
            "perturbation=DMSO",
            "perturbation=IFNG"
        ]
    );

    // A required column missing, with --strict: refused before anything is stored.
    let before = artifacts(&mut db);
    let out = lamin(
        &cluster,
        &[
            "save",
            &file("mini_immuno_no_donor.parquet"),
            "--schema",
            "mini_immuno",
            "--strict",
            "-q",
        ],
    );
    assert!(!out.status.success());
    let said = stderr_text(&out);
    assert!(
        said.contains("required column 'donor' (str) is missing"),
        "{said}"
    );
    assert!(said.contains("nothing was saved"), "{said}");
    assert!(
        stdout_text(&out).is_empty(),
        "no uid: {}",
        stdout_text(&out)
    );
    assert_eq!(artifacts(&mut db), before, "nothing stored");

    // A synonym and a typo, without --strict: saved, not validated, each value reported.
    let out = lamin(
        &cluster,
        &[
            "save",
            &file("mini_immuno_synonym.parquet"),
            "--schema",
            "mini_immuno_obs",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uid = stdout_text(&out);
    let said = stderr_text(&out);
    assert!(
        said.contains(
            "'B-cell' is not in bionty.cell_type (field name); it standardizes to 'B cell' (1 row)"
        ),
        "{said}"
    );
    assert!(
        said.contains("'CD8-pos alpha-beta T cell' is not in bionty.cell_type (field name); did you mean 'CD8-positive, alpha-beta T cell'? (2 rows)"),
        "{said}"
    );
    assert!(said.contains("not validated"), "{said}");
    assert_eq!(validated_schema(&mut db, &uid), None);
    let report: Vec<(String, Option<String>)> = db
        .query(
            "SELECT value, standardized FROM lamin.validation_report($1) ORDER BY value",
            &[&uid],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        report,
        [
            ("B-cell".to_string(), Some("B cell".to_string())),
            ("CD8-pos alpha-beta T cell".to_string(), None)
        ]
    );

    // The same data as CSV (pandas' to_csv) pass too.
    let out = lamin(
        &cluster,
        &[
            "save",
            &file("mini_immuno.csv"),
            "--schema",
            "mini_immuno",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        validated_schema(&mut db, &stdout_text(&out)).as_deref(),
        Some("mini_immuno")
    );

    // Extra columns: let through by default, refused by a maximal set (the three gene columns,
    // the note, the expert cell types and the assay are not in the schema).
    db.batch_execute(
        "SELECT lamin.create_schema(ARRAY['perturbation', 'cell_type_by_model', 'donor', 'concentration', 'treatment_time_h'],
                                    name => 'mini_immuno_only', maximal_set => true)",
    )
    .unwrap();
    let out = lamin(
        &cluster,
        &["validate", &uid, "--schema", "mini_immuno_only"],
    );
    assert!(!out.status.success());
    let unexpected: Vec<String> = stdout_text(&out)
        .lines()
        .filter_map(|l| {
            l.strip_suffix(" is not in the schema, which allows no others (maximal set)")
        })
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        unexpected,
        [
            "'ENSG00000153563'",
            "'ENSG00000010610'",
            "'ENSG00000170458'",
            "'sample_note'",
            "'cell_type_by_expert'"
        ],
        "{}",
        stdout_text(&out)
    );

    // A file that is no dataset is refused before anything is read or stored.
    let out = lamin(
        &cluster,
        &[
            "save",
            &fixture("bionty/hp-cut.obo").to_string_lossy(),
            "--schema",
            "mini_immuno",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("nothing was saved"),
        "{}",
        stderr_text(&out)
    );
}

#[test]
fn an_anndata_schema_checks_obs_and_the_var_index_in_a_job_and_from_the_cli() {
    let (cluster, mut db, _dir) = setup();
    let _sidecar = Sidecar::start(&cluster, "validator");
    let save = |name: &str| {
        let out = lamin(
            &cluster,
            &[
                "save",
                &fixture(&format!("validation/{name}")).to_string_lossy(),
                "-q",
            ],
        );
        assert!(out.status.success(), "{}", stderr_text(&out));
        stdout_text(&out)
    };
    let good = save("mini_immuno.h5ad");
    let typo = save("mini_immuno_gene_typo.h5ad");

    // The job: lamin.validate_artifact, read by the sidecar, judged by the database.
    let job: i64 = db
        .query_one(
            "SELECT lamin.validate_artifact($1, 'mini_immuno_anndata')",
            &[&good],
        )
        .unwrap()
        .get(0);
    let (status, result, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    assert_eq!(result["passed"], true, "{result}");
    assert_eq!(
        validated_schema(&mut db, &good).as_deref(),
        Some("mini_immuno_anndata")
    );

    let job: i64 = db
        .query_one(
            "SELECT lamin.validate_artifact($1, 'mini_immuno_anndata')",
            &[&typo],
        )
        .unwrap()
        .get(0);
    let (status, result, _) = await_job(&mut db, job);
    assert_eq!(status, "done");
    assert_eq!(result["passed"], false, "{result}");
    let row = db
        .query_one(
            "SELECT slot, problem, value FROM lamin.validation_report($1)",
            &[&typo],
        )
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2)
        ),
        ("var.T".into(), "invalid_values".into(), "GeneTypo".into())
    );

    // The CLI: problems alone on stdout, exit 1 when the dataset fails.
    let out = lamin(
        &cluster,
        &["validate", &typo, "--schema", "mini_immuno_anndata"],
    );
    assert!(!out.status.success());
    assert_eq!(
        stdout_text(&out),
        "var.T: 'GeneTypo' is not in bionty.gene (field ensembl_gene_id)"
    );
    assert!(
        stderr_text(&out).contains("does not meet schema"),
        "{}",
        stderr_text(&out)
    );
    let out = lamin(
        &cluster,
        &["validate", &good, "--schema", "mini_immuno_anndata"],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(stdout_text(&out).is_empty());

    // An AnnData zarr store (anndata's write_zarr), read through its obs and var.
    db.batch_execute(
        "INSERT INTO bionty.gene (symbol, ensembl_gene_id, organism) VALUES
            ('MS4A1', 'ENSG00000156738', 'human'), ('PTPRC', 'ENSG00000081237', 'human'), ('ACTB', 'ENSG00000075624', 'human');
         SELECT lamin.create_feature('cell_type', 'cat[bionty.cell_type]');
         SELECT lamin.create_schema(ARRAY['cell_type', 'donor'], name => 'pbmc obs');
         SELECT lamin.create_schema(name => 'pbmc', otype => 'AnnData', slots => '{\"obs\": \"pbmc obs\", \"var.T\": \"ensembl_genes\"}');",
    )
    .unwrap();
    let out = lamin(
        &cluster,
        &[
            "save",
            &fixture("anndata/pbmc.zarr").to_string_lossy(),
            "-q",
        ],
    );
    let zarr = stdout_text(&out);
    let out = lamin(&cluster, &["validate", &zarr, "--schema", "pbmc"]);
    assert!(!out.status.success());
    assert_eq!(
        stdout_text(&out).lines().collect::<Vec<_>>(),
        [
            "obs.cell_type: 'B cel' is not in bionty.cell_type (field name); did you mean 'B cell'? (24 rows)",
            "obs.cell_type: 'T lymphocyte' is not in bionty.cell_type (field name); it standardizes to 'T cell' (24 rows)",
            "var.T: 'ENSG99999999999' is not in bionty.gene (field ensembl_gene_id)",
        ]
    );
}

#[test]
fn pandas_nullable_integers_and_coercible_columns() {
    let (cluster, mut db, _dir) = setup();
    db.batch_execute(
        "SELECT lamin.create_feature('n_cells', 'int', nullable => false);
         SELECT lamin.create_feature('ratio', 'int');
         SELECT lamin.create_feature('dose', 'float');
         SELECT lamin.create_schema(ARRAY['n_cells', 'treatment_time_h', 'ratio', 'dose', 'donor'], name => 'numbers', maximal_set => true);",
    )
    .unwrap();
    let file = fixture("validation/nullable.parquet");
    let out = lamin(&cluster, &["save", &file.to_string_lossy(), "-q"]);
    let uid = stdout_text(&out);
    let out = lamin(&cluster, &["validate", &uid, "--schema", "numbers"]);
    assert!(!out.status.success());
    let problems = stdout_text(&out);
    assert_eq!(
        problems.lines().collect::<Vec<_>>(),
        [
            "columns.n_cells: column 'n_cells' has 1 missing values; the feature is not nullable",
            "columns.ratio: column 'ratio' is float, the feature is int",
            "columns.dose: column 'dose' is str, the feature is float; its values can be coerced: set coerce on the feature (UPDATE lamin.feature SET coerce = true WHERE name = 'dose') or the schema",
        ],
        "pandas' Int64 with NA is an int column with a missing value; whole floats coerce to num (the feature coerces)"
    );
    db.batch_execute(
        "UPDATE lamin.feature SET coerce = true WHERE name = 'dose';
         UPDATE lamin.feature SET nullable = true WHERE name = 'n_cells';
         UPDATE lamin.feature SET dtype = 'float' WHERE name = 'ratio';",
    )
    .unwrap();
    let out = lamin(&cluster, &["validate", &uid, "--schema", "numbers"]);
    assert!(out.status.success(), "{}", stdout_text(&out));
    let statuses: Vec<String> = db
        .query(
            "SELECT c ->> 'column' || ':' || (c ->> 'status') FROM lamin.validation v, jsonb_array_elements(v.report -> 'columns') c
             WHERE v.artifact_id = lamin.artifact_id($1) ORDER BY 1",
            &[&uid],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        statuses,
        [
            "donor:ok",
            "dose:coerced",
            "n_cells:ok",
            "ratio:ok",
            "treatment_time_h:ok"
        ]
    );
}

#[test]
fn a_schema_from_a_sample_file_validates_files_like_it() {
    let (cluster, mut db, _dir) = setup();
    let out = lamin(
        &cluster,
        &[
            "schema",
            "from-file",
            &fixture("validation/nullable.parquet").to_string_lossy(),
            "--name",
            "sample",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uid = stdout_text(&out);
    assert_eq!(uid.len(), 16, "the schema's uid alone on stdout: {uid}");
    assert!(
        stderr_text(&out).contains("new features: n_cells, ratio, dose"),
        "{}",
        stderr_text(&out)
    );
    // treatment_time_h exists as num (coercing): the schema uses it as it is.
    let out = lamin(
        &cluster,
        &[
            "save",
            &fixture("validation/nullable.parquet").to_string_lossy(),
            "--schema",
            "sample",
            "--strict",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        validated_schema(&mut db, &stdout_text(&out)).as_deref(),
        Some("sample")
    );

    // An AnnData: a composite of its obs and var.
    let out = lamin(
        &cluster,
        &[
            "schema",
            "from-file",
            &fixture("validation/mini_immuno.h5ad").to_string_lossy(),
            "--name",
            "immuno",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let slots: Vec<String> = db
        .query(
            "SELECT c.slot || '=' || s.name FROM lamin.schema_component c JOIN lamin.schema s ON s.id = c.component_id
             WHERE c.composite_id = lamin.schema_id('immuno') ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(slots, ["obs=immuno obs"], "var has no columns: no var slot");
}

#[test]
fn standardizing_writes_a_new_validated_version_and_leaves_the_old_bytes() {
    let (cluster, mut db, dir) = setup();
    let _sidecar = Sidecar::start(&cluster, "standardizer");
    let save = |name: &str, key: &str| {
        let path = fixture(&format!("validation/{name}"));
        let out = lamin(
            &cluster,
            &["save", &path.to_string_lossy(), "--key", key, "-q"],
        );
        assert!(out.status.success(), "{}", stderr_text(&out));
        stdout_text(&out)
    };
    let object = |db: &mut postgres::Client, uid: &str| -> std::path::PathBuf {
        let key: String = db
            .query_one(
                "SELECT lamin.object_key(a) FROM lamin.artifact a WHERE a.uid = $1",
                &[&uid],
            )
            .unwrap()
            .get(0);
        dir.path().join("storage").join(key)
    };

    // An AnnData whose cell types are synonyms, through the job.
    let old = save("mini_immuno_synonyms.h5ad", "immuno/cells.h5ad");
    let old_bytes = std::fs::read(object(&mut db, &old)).unwrap();
    let job: i64 = db
        .query_one(
            "SELECT lamin.standardize_artifact($1, 'mini_immuno_obs')",
            &[&old],
        )
        .unwrap()
        .get(0);
    let (status, result, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    let new = result["uid"].as_str().unwrap().to_string();
    assert_eq!(&new[..16], &old[..16], "a new version of the same family");
    assert_eq!(
        result["replaced"]["obs.cell_type_by_expert"], 3,
        "rows: {result}"
    );
    assert_eq!(result["verdict"]["passed"], true, "{result}");
    assert_eq!(
        validated_schema(&mut db, &new).as_deref(),
        Some("mini_immuno_obs")
    );
    assert_eq!(validated_schema(&mut db, &old), None);
    assert_eq!(
        std::fs::read(object(&mut db, &old)).unwrap(),
        old_bytes,
        "the old version's bytes are untouched"
    );
    let latest: String = db
        .query_one(
            "SELECT uid FROM lamin.artifact WHERE key = 'immuno/cells.h5ad' AND is_latest",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(latest, new);
    // The new file is an AnnData that the reference library reads, its categories merged.
    let python = std::env::var("LAMIN_PYARROW_PYTHON").expect(
        "LAMIN_PYARROW_PYTHON: a Python with pyarrow and anndata (scripts/test installs it)",
    );
    {
        let out = std::process::Command::new(python)
            .args(["-c", "import sys, anndata; a = anndata.read_h5ad(sys.argv[1]); print(sorted(a.obs['cell_type_by_expert'].cat.categories), list(a.obs['cell_type_by_expert']))"])
            .arg(object(&mut db, &new))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "['B cell', 'CD8-positive, alpha-beta T cell'] ['B cell', 'CD8-positive, alpha-beta T cell', 'CD8-positive, alpha-beta T cell']",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A parquet file from the CLI: the synonym is standardized, the typo stays and is reported.
    let old = save("mini_immuno_synonym.parquet", "immuno/table.parquet");
    let out = lamin(
        &cluster,
        &["standardize", &old, "--schema", "mini_immuno_obs", "-q"],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let new = stdout_text(&out);
    assert_eq!(&new[..16], &old[..16]);
    let said = stderr_text(&out);
    assert!(
        said.contains("columns.cell_type_by_expert: 1 value(s) standardized"),
        "{said}"
    );
    assert!(
        said.contains("did you mean 'CD8-positive, alpha-beta T cell'?"),
        "{said}"
    );
    let values: Vec<String> = db
        .query(
            "SELECT value FROM lamin.validation_report($1) ORDER BY value",
            &[&new],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        values,
        ["CD8-pos alpha-beta T cell"],
        "only the typo is left"
    );

    // Nothing to standardize: refused, nothing saved.
    let before = artifacts(&mut db);
    let out = lamin(
        &cluster,
        &["standardize", &new, "--schema", "mini_immuno_obs"],
    );
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("nothing to standardize"),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(artifacts(&mut db), before);
}
