//! The formats beyond parquet, CSV/TSV and AnnData zarr v2 (issue 22), with
//! files written by their reference libraries (tests/fixtures/formats, the
//! scripts beside them): MuData `.h5mu`, AnnData zarr format 3, generic
//! HDF5, SpatialData stores and TileDB-SOMA experiments.

use std::io::Write;

use lamin_e2e::{
    await_job, cluster_with_storage, fails, fixture, lamin, lamin_with_env, ok, register_job,
    stderr_text, stdout_text, Cluster, Sidecar,
};

/// `lamin save` of a fixture under `key`: its uid.
fn save(cluster: &Cluster, file: &str, key: &str) -> String {
    let path = fixture(file);
    ok(&lamin(
        cluster,
        &["save", path.to_str().unwrap(), "--key", key, "-q"],
    ))
    .trim()
    .to_string()
}

/// An artifact's otype, n_observations and its schemas' features as
/// `slot:feature:dtype`, by slot and position.
fn recorded(db: &mut postgres::Client, uid: &str) -> (Option<String>, Option<i64>, String) {
    let row = db
        .query_one(
            "SELECT a.otype, a.n_observations,
                    (SELECT string_agg(s.slot || ':' || f.name || ':' || f.dtype, ',' ORDER BY s.slot, sf.position)
                     FROM lamin.artifact_schema s JOIN lamin.schema_feature sf ON sf.schema_id = s.schema_id
                     JOIN lamin.feature f ON f.id = sf.feature_id WHERE s.artifact_id = a.id)
             FROM lamin.artifact a WHERE a.uid = $1",
            &[&uid],
        )
        .unwrap();
    (
        row.get(0),
        row.get(1),
        row.get::<_, Option<String>>(2).unwrap_or_default(),
    )
}

#[test]
fn a_mudata_gets_a_schema_per_modality_slot_and_is_read_and_validated_by_slot() {
    let (cluster, mut db, _dir) = cluster_with_storage();
    let uid = save(&cluster, "formats/citeseq.h5mu", "multi/citeseq.h5mu");
    let (otype, n_obs, slots) = recorded(&mut db, &uid);
    assert_eq!(otype.as_deref(), Some("MuData"));
    assert_eq!(n_obs, Some(40), "the global obs");
    assert_eq!(
        slots,
        "obs:donor:cat,obs:batch:int,\
         prot:obs:total_counts:int,prot:var:isotype:cat,\
         rna:obs:cell_type:cat,rna:obs:n_genes:int,\
         rna:var:gene_symbol:str,rna:var:highly_variable:bool",
        "a schema per slot with columns (the global var has none)"
    );

    // `lamin cat` reads any slot, with conditions.
    let prot_var = ok(&lamin(&cluster, &["cat", &uid, "--slot", "prot:var"]));
    assert_eq!(prot_var, "index,isotype\nCD3,no\nCD19,no\nIgG1,yes");
    let monocytes = ok(&lamin(
        &cluster,
        &[
            "cat",
            &uid,
            "--slot",
            "rna:obs",
            "--where",
            "cell_type = 'monocyte'",
            "--columns",
            "index",
        ],
    ));
    assert_eq!(monocytes.lines().count(), 1 + 13, "{monocytes}");
    assert_eq!(monocytes.lines().nth(1), Some("cell-002"));
    let global = ok(&lamin(
        &cluster,
        &["cat", &uid, "--columns", "donor,batch", "--limit", "2"],
    ));
    assert_eq!(global, "donor,batch\nd0,0\nd1,1", "obs by default");
    let err = fails(&lamin(&cluster, &["cat", &uid, "--slot", "atac:obs"]));
    assert!(err.contains("its modalities are rna, prot"), "{err}");
    let err = fails(&lamin(&cluster, &["cat", &uid, "--slot", "rna:X"]));
    assert!(err.contains("not a slot of a MuData"), "{err}");

    // A schema from the file is a composite of its slots; the file passes it
    // (its categoricals, features of dtype cat, hold labels).
    db.batch_execute(
        "INSERT INTO lamin.ulabel (name) VALUES ('d0'), ('d1'), ('T cell'), ('B cell'), ('monocyte'), ('no'), ('yes')",
    )
    .unwrap();
    ok(&lamin(
        &cluster,
        &[
            "schema",
            "from-file",
            fixture("formats/citeseq.h5mu").to_str().unwrap(),
            "--name",
            "cite",
        ],
    ));
    let parts: Vec<String> = db
        .query(
            "SELECT c.slot FROM lamin.schema_component c
             WHERE c.composite_id = lamin.schema_id('cite') ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(parts, ["obs", "prot:obs", "prot:var", "rna:obs", "rna:var"]);
    let otype: Option<String> = db
        .query_one(
            "SELECT otype FROM lamin.schema WHERE id = lamin.schema_id('cite')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(otype.as_deref(), Some("MuData"));
    let h5mu = fixture("formats/citeseq.h5mu");
    let passed = ok(&lamin(
        &cluster,
        &[
            "save",
            h5mu.to_str().unwrap(),
            "--key",
            "multi/v2.h5mu",
            "--schema",
            "cite",
            "--strict",
            "-q",
        ],
    ));
    let schema: Option<String> = db
        .query_one(
            "SELECT s.name FROM lamin.artifact a JOIN lamin.schema s ON s.id = a.schema_id WHERE a.uid = $1",
            &[&passed.trim()],
        )
        .unwrap()
        .get(0);
    assert_eq!(schema.as_deref(), Some("cite"), "validated and linked");

    // The same check as a job (lamin.validate_artifact), on the saved artifact.
    let _sidecar = Sidecar::start(&cluster, "mudata");
    let job: i64 = db
        .query_one("SELECT lamin.validate_artifact($1, 'cite')", &[&uid])
        .unwrap()
        .get(0);
    let (status, _, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    let passed: bool = db
        .query_one(
            "SELECT v.passed FROM lamin.validation v JOIN lamin.artifact a ON a.id = v.artifact_id
             WHERE a.uid = $1 AND v.schema_id = lamin.schema_id('cite')",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert!(passed, "the MuData passes its own schema as a job too");

    // A schema asking for a modality the file lacks, and one for an AnnData, fail.
    db.batch_execute(
        "SELECT lamin.create_schema(name => 'needs atac', otype => 'MuData',
             slots => jsonb_build_object('atac:var', (SELECT s.uid FROM lamin.schema s
                 JOIN lamin.schema_component c ON c.component_id = s.id
                 WHERE c.composite_id = lamin.schema_id('cite') AND c.slot = 'rna:var')))",
    )
    .unwrap();
    let err = fails(&lamin(
        &cluster,
        &[
            "save",
            h5mu.to_str().unwrap(),
            "--schema",
            "needs atac",
            "--strict",
            "-q",
        ],
    ));
    assert!(err.contains("the dataset has no atac:var"), "{err}");
    ok(&lamin(
        &cluster,
        &[
            "schema",
            "from-file",
            fixture("anndata/pbmc.h5ad").to_str().unwrap(),
            "--name",
            "pbmc",
        ],
    ));
    let err = fails(&lamin(
        &cluster,
        &[
            "save",
            h5mu.to_str().unwrap(),
            "--schema",
            "pbmc",
            "--strict",
            "-q",
        ],
    ));
    assert!(
        err.contains("the schema is for a AnnData, the dataset is a MuData"),
        "{err}"
    );

    // A truncated file is kept as plain bytes, with a warning.
    let out = lamin(
        &cluster,
        &[
            "save",
            fixture("formats/truncated.h5mu").to_str().unwrap(),
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("saved as plain bytes"),
        "{}",
        stderr_text(&out)
    );
    let (otype, _, slots) = recorded(&mut db, stdout_text(&out).trim());
    assert_eq!((otype, slots.as_str()), (None, ""));
}

#[test]
fn an_anndata_zarr_format_3_store_is_described_and_read_like_format_2() {
    let (cluster, mut db, _dir) = cluster_with_storage();
    let uid = save(&cluster, "formats/pbmc_v3.zarr", "atlas/rna.zarr");
    let (otype, n_obs, slots) = recorded(&mut db, &uid);
    assert_eq!(otype.as_deref(), Some("AnnData"));
    assert_eq!(n_obs, Some(40));
    assert_eq!(
        slots,
        "obs:cell_type:cat,obs:n_genes:int,var:gene_symbol:str,var:highly_variable:bool"
    );
    let var = ok(&lamin(
        &cluster,
        &[
            "cat",
            &uid,
            "--slot",
            "var",
            "--columns",
            "gene_symbol",
            "--limit",
            "2",
        ],
    ));
    assert_eq!(var, "gene_symbol\nCD4\nCD8A");
    let obs = ok(&lamin(
        &cluster,
        &[
            "cat",
            &uid,
            "--where",
            "cell_type IN ('B cell', 'monocyte') AND n_genes < 3",
        ],
    ));
    assert_eq!(
        obs,
        "index,cell_type,n_genes\ncell-001,B cell,1\ncell-002,monocyte,2"
    );
}

#[test]
fn a_mudata_and_a_zarr_format_3_store_already_in_storage_are_described_when_registered() {
    let (cluster, mut db, dir) = cluster_with_storage();
    let root = dir.path().join("storage");
    std::fs::create_dir_all(root.join("ext")).unwrap();
    std::fs::copy(
        fixture("formats/citeseq.h5mu"),
        root.join("ext/citeseq.h5mu"),
    )
    .unwrap();
    let zarr = root.join("ext/rna.zarr");
    copy_folder(&fixture("formats/pbmc_v3.zarr"), &zarr);
    let _sidecar = Sidecar::start(&cluster, "formats");
    for (path, otype, n_obs, first_slots) in [
        (
            "ext/citeseq.h5mu",
            "MuData",
            40,
            "obs:donor:cat,obs:batch:int,prot:obs:total_counts:int",
        ),
        (
            "ext/rna.zarr",
            "AnnData",
            40,
            "obs:cell_type:cat,obs:n_genes:int,var:gene_symbol:str",
        ),
    ] {
        let uid: String = db
            .query_one(
                "SELECT lamin.register($1)",
                &[&root.join(path).to_str().unwrap()],
            )
            .unwrap()
            .get(0);
        let job = register_job(&mut db, &uid);
        let (status, _, error) = await_job(&mut db, job);
        assert_eq!(status, "done", "{path}: {error:?}");
        let (o, n, slots) = recorded(&mut db, &uid);
        assert_eq!((o.as_deref(), n), (Some(otype), Some(n_obs)), "{path}");
        assert!(slots.starts_with(first_slots), "{path}: {slots}");
    }
}

/// Copy a folder (a zarr store) with everything in it to `to`.
fn copy_folder(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_folder(&p, &dest);
        } else {
            std::fs::copy(&p, dest).unwrap();
        }
    }
}

#[test]
fn a_generic_hdf5_file_gets_its_layout_on_save_and_register() {
    let (cluster, mut db, dir) = cluster_with_storage();
    let uid = save(&cluster, "formats/scan.h5", "scans/scan.h5");
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&lamin(&cluster, &["describe", &uid]))).unwrap();
    let layout = &doc["layout"];
    assert_eq!(layout["format"], "hdf5", "{doc}");
    assert_eq!(
        (layout["n_groups"].as_i64(), layout["n_datasets"].as_i64()),
        (Some(4), Some(5))
    );
    assert_eq!(
        layout["datasets"][2],
        serde_json::json!({ "path": "/raw/frames/0", "shape": [16, 16], "dtype": "uint16" })
    );
    assert_eq!(layout["truncated"], false);
    assert_eq!(
        recorded(&mut db, &uid),
        (None, None, String::new()),
        "no tables, no otype"
    );

    // Already in the storage: the register job reads it the same.
    let root = dir.path().join("storage");
    std::fs::create_dir_all(root.join("ext")).unwrap();
    std::fs::copy(fixture("formats/beads.hdf5"), root.join("ext/beads.hdf5")).unwrap();
    let _sidecar = Sidecar::start(&cluster, "hdf5");
    let registered: String = db
        .query_one(
            "SELECT lamin.register($1)",
            &[&root.join("ext/beads.hdf5").to_str().unwrap()],
        )
        .unwrap()
        .get(0);
    let job = register_job(&mut db, &registered);
    let (status, result, _) = await_job(&mut db, job);
    assert_eq!(status, "done");
    assert!(result.get("warning").is_none(), "{result}");
    let layout: serde_json::Value = db
        .query_one("SELECT lamin.describe($1) -> 'layout'", &[&registered])
        .unwrap()
        .get(0);
    assert_eq!(
        layout["datasets"],
        serde_json::json!([{ "path": "/intensity", "shape": [8, 3], "dtype": "float32" }]),
        "{layout} {result}"
    );

    // A truncated file is kept as plain bytes, with a warning, and no layout.
    let out = lamin(
        &cluster,
        &[
            "save",
            fixture("formats/truncated.h5").to_str().unwrap(),
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("not a readable HDF5 file"),
        "{}",
        stderr_text(&out)
    );
    let layout: Option<serde_json::Value> = db
        .query_one(
            "SELECT lamin.describe($1) -> 'layout'",
            &[&stdout_text(&out).trim()],
        )
        .unwrap()
        .get(0);
    assert_eq!(layout, Some(serde_json::Value::Null));
}

#[test]
fn a_spatialdata_store_gets_its_elements_as_layout_and_a_schema_per_table_slot() {
    let (cluster, mut db, dir) = cluster_with_storage();
    let uid = save(&cluster, "formats/visium.zarr", "spatial/visium.zarr");
    let (otype, n_obs, slots) = recorded(&mut db, &uid);
    assert_eq!(otype.as_deref(), Some("SpatialData"));
    assert_eq!(n_obs, None, "no global obs");
    assert_eq!(
        slots,
        "tables:table:obs:region:cat,tables:table:obs:instance_id:int,tables:table:obs:tissue_zone:cat",
        "the table's obs (its var has no columns)"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&lamin(&cluster, &["describe", &uid]))).unwrap();
    let layout = &doc["layout"];
    assert_eq!(layout["format"], "spatialdata", "{doc}");
    assert_eq!(
        layout["elements"]["images"],
        serde_json::json!([{ "name": "tissue", "shape": [3, 64, 64], "axes": ["c", "y", "x"], "n_scales": 2 }])
    );
    assert_eq!(layout["elements"]["points"][0]["n_rows"], 100);
    assert_eq!(layout["elements"]["shapes"][0]["n_rows"], 12);
    assert_eq!(
        layout["tables"]["table"],
        serde_json::json!({ "n_obs": 12, "n_vars": 4 })
    );

    // A table's obs reads by its slot (plain obs: the only table's).
    let cortex = ok(&lamin(
        &cluster,
        &[
            "cat",
            &uid,
            "--slot",
            "tables:table:obs",
            "--where",
            "tissue_zone = 'cortex'",
            "--columns",
            "index",
        ],
    ));
    assert_eq!(cortex.lines().count(), 1 + 6, "{cortex}");
    assert_eq!(
        cortex,
        ok(&lamin(
            &cluster,
            &[
                "cat",
                &uid,
                "--where",
                "tissue_zone = 'cortex'",
                "--columns",
                "index"
            ]
        ))
    );
    let err = fails(&lamin(
        &cluster,
        &["cat", &uid, "--slot", "tables:cells:obs"],
    ));
    assert!(err.contains("its tables are table"), "{err}");

    // Validation against a schema says it does not read SpatialData yet.
    db.batch_execute("SELECT lamin.create_schema(ARRAY['tissue_zone'], name => 'zones')")
        .unwrap();
    let err = fails(&lamin(
        &cluster,
        &[
            "save",
            fixture("formats/visium.zarr").to_str().unwrap(),
            "--schema",
            "zones",
            "-q",
        ],
    ));
    assert!(
        err.contains("is a SpatialData store: validating one"),
        "{err}"
    );
    // … and as a job or a curation, before anything is read.
    let err = db
        .query_one("SELECT lamin.validate_artifact($1, 'zones')", &[&uid])
        .unwrap_err();
    assert!(
        lamin_e2e::db_message(&err).contains("is a SpatialData store"),
        "{err}"
    );
    let err = db
        .query_one(
            "SELECT lamin.curate($1, 'obs.tissue_zone', 'lamin.ulabel')",
            &[&uid],
        )
        .unwrap_err();
    assert!(
        lamin_e2e::db_message(&err).contains("AnnData zarr store"),
        "{err}"
    );

    // The register job reads one already in the storage the same.
    let root = dir.path().join("storage");
    let copy = root.join("ext/visium.zarr");
    copy_folder(&fixture("formats/visium.zarr"), &copy);
    // (Other bytes than the saved copy's, or the register would find it known.)
    std::fs::write(copy.join("README"), "a copy").unwrap();
    let _sidecar = Sidecar::start(&cluster, "spatial");
    let registered: String = db
        .query_one("SELECT lamin.register($1)", &[&copy.to_str().unwrap()])
        .unwrap()
        .get(0);
    let job = register_job(&mut db, &registered);
    let (status, result, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    assert!(result.get("warning").is_none(), "{result}");
    assert_eq!(recorded(&mut db, &registered).2, slots);
}

#[test]
fn a_tiledbsoma_experiment_gets_obs_and_a_schema_per_measurement_and_its_arrays_as_layout() {
    assert!(
        std::env::var_os("LAMIN_TILEDB_LIBRARY").is_some(),
        "LAMIN_TILEDB_LIBRARY must name a libtiledb.so (scripts/test sets it)"
    );
    let (cluster, mut db, dir) = cluster_with_storage();
    let uid = save(&cluster, "formats/pbmc.tiledbsoma", "soma/pbmc.tiledbsoma");
    let (otype, n_obs, slots) = recorded(&mut db, &uid);
    assert_eq!(otype.as_deref(), Some("tiledbsoma"));
    assert_eq!(n_obs, Some(40));
    assert_eq!(
        slots,
        "ms:ADT:var_id:str,\
         ms:RNA:var_id:str,ms:RNA:gene_symbol:str,ms:RNA:feature_type:cat,\
         obs:obs_id:str,obs:cell_type:cat,obs:n_genes:int,obs:percent_mito:float,obs:doublet:bool",
        "LaminDB's slots: obs and ms:<measurement>"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&lamin(&cluster, &["describe", &uid]))).unwrap();
    let layout = &doc["layout"];
    assert_eq!(layout["format"], "tiledbsoma", "{doc}");
    assert_eq!(
        layout["measurements"],
        serde_json::json!({ "ADT": { "n_vars": 3 }, "RNA": { "n_vars": 6 } })
    );
    let x = layout["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == "ms/RNA/X/data")
        .unwrap_or_else(|| panic!("{layout}"));
    assert_eq!(
        x,
        &serde_json::json!({ "path": "ms/RNA/X/data", "sparse": true, "soma_type": "SOMASparseNDArray", "n_values": 72 })
    );
    assert_eq!(doc["n_files"].as_i64(), Some(93), "a folder artifact");

    // Already in the storage: registering reads it the same. (With a note
    // beside it: the same bytes would be the artifact saved above.)
    let root = dir.path().join("storage");
    copy_folder(
        &fixture("formats/pbmc.tiledbsoma"),
        &root.join("ext/pbmc.tiledbsoma"),
    );
    std::fs::write(
        root.join("ext/pbmc.tiledbsoma/NOTES.txt"),
        "registered in place",
    )
    .unwrap();
    let _sidecar = Sidecar::start(&cluster, "soma");
    let registered: String = db
        .query_one(
            "SELECT lamin.register($1)",
            &[&root.join("ext/pbmc.tiledbsoma").to_str().unwrap()],
        )
        .unwrap()
        .get(0);
    let job = register_job(&mut db, &registered);
    let (status, result, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    assert!(result.get("warning").is_none(), "{result}");
    assert_eq!(
        recorded(&mut db, &registered),
        recorded(&mut db, &uid),
        "{result}"
    );

    // A truncated experiment is kept as a plain folder, with TileDB's reason.
    let out = lamin(
        &cluster,
        &[
            "save",
            fixture("formats/truncated.tiledbsoma").to_str().unwrap(),
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("not a readable TileDB-SOMA experiment"),
        "{}",
        stderr_text(&out)
    );
    let plain = stdout_text(&out).trim().to_string();
    assert_eq!(recorded(&mut db, &plain), (None, None, String::new()));

    // Without a TileDB library only the folder's layout is recorded, and the
    // warning says how to get one. (Another copy: the same bytes would be
    // the artifact saved first.)
    let copy = dir.path().join("unread.tiledbsoma");
    copy_folder(&fixture("formats/pbmc.tiledbsoma"), &copy);
    std::fs::write(copy.join("README.txt"), "a note beside the experiment").unwrap();
    let out = lamin_with_env(
        &cluster,
        &[(
            "LAMIN_TILEDB_LIBRARY".into(),
            "/nonexistent/libtiledb.so".into(),
        )],
        &[
            "save",
            copy.to_str().unwrap(),
            "--key",
            "soma/unread.tiledbsoma",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("only the folder's layout was recorded")
            && stderr_text(&out).contains("set LAMIN_TILEDB_LIBRARY"),
        "{}",
        stderr_text(&out)
    );
    let unread = stdout_text(&out).trim().to_string();
    let layout: serde_json::Value = db
        .query_one("SELECT lamin.describe($1) -> 'layout'", &[&unread])
        .unwrap()
        .get(0);
    assert_eq!(layout["format"], "tiledbsoma");
    assert_eq!(
        layout["arrays"].as_array().map(Vec::len),
        Some(5),
        "{layout}"
    );
    assert!(
        layout["unread"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/libtiledb.so"),
        "{layout}"
    );
    assert_eq!(
        recorded(&mut db, &unread),
        (Some("tiledbsoma".into()), None, String::new())
    );
}

#[test]
fn a_duckdb_file_gets_a_schema_per_table_and_its_tables_and_views_as_layout() {
    assert!(
        std::env::var_os("LAMIN_DUCKDB_LIBRARY").is_some(),
        "LAMIN_DUCKDB_LIBRARY must name a libduckdb.so (scripts/test sets it)"
    );
    let (cluster, mut db, dir) = cluster_with_storage();
    let out = lamin(
        &cluster,
        &[
            "save",
            fixture("formats/experiment.duckdb").to_str().unwrap(),
            "--key",
            "warehouse/experiment.duckdb",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out)
            .contains("no schema for the tables 2024 runs (their names cannot name a slot"),
        "{}",
        stderr_text(&out)
    );
    let uid = stdout_text(&out);
    assert_eq!(
        recorded(&mut db, &uid),
        (
            None,
            None,
            "cells:cell_id:str,cells:cell_type:cat,cells:n_genes:int,cells:score:float,\
             cells:passed_qc:bool,cells:collected:date,cells:measured_at:datetime,cells:dose:num,cells:tags:dict,\
             genes:ensembl_gene_id:str,genes:symbol:str,\
             qc.runs:run:int,qc.runs:operator:str"
                .to_string()
        ),
        "a slot per table; no otype, no n_observations for three tables"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&lamin(&cluster, &["describe", &uid]))).unwrap();
    let layout = &doc["layout"];
    assert_eq!(layout["format"], "duckdb", "{doc}");
    assert_eq!(layout["views"], serde_json::json!(["main.t_cells"]));
    let rows: Vec<(String, i64)> = layout["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["n_rows"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("2024 runs".into(), 1),
            ("cells".into(), 50),
            ("genes".into(), 4),
            ("runs".into(), 2)
        ]
    );
    assert_eq!(
        layout["tables"][1]["columns"][1],
        serde_json::json!({ "name": "cell_type", "type": "ENUM('B cell', 'NK cell', 'T cell')" })
    );

    // Its tables are read by slot: `lamin cat` with conditions, `lamin query`
    // with SQL (joined with each other here).
    let t_cells = ok(&lamin(
        &cluster,
        &[
            "cat",
            &uid,
            "--slot",
            "cells",
            "--where",
            "cell_type = 'T cell' AND n_genes > 800",
            "--columns",
            "cell_id,cell_type,dose",
            "--limit",
            "2",
        ],
    ));
    assert_eq!(
        t_cells,
        "cell_id,cell_type,dose\ncell-044,T cell,11.00\ncell-047,T cell,11.75"
    );
    let err = fails(&lamin(&cluster, &["cat", &uid]));
    assert!(
        err.contains("its tables are 2024 runs, cells, genes, qc.runs"),
        "{err}"
    );
    let counts = ok(&lamin(
        &cluster,
        &[
            "query",
            &format!(
                "SELECT c.cell_type, count(*) AS n, max(r.operator) AS operator
                 FROM artifact('{uid}', 'cells') c CROSS JOIN artifact('{uid}', 'qc.runs') r
                 WHERE r.run = 2 GROUP BY 1 ORDER BY 1"
            ),
        ],
    ));
    assert_eq!(
        counts,
        "cell_type,n,operator\nB cell,17,ben\nNK cell,17,ben\nT cell,16,ben"
    );

    // Already in the storage: registering reads it the same.
    let root = dir.path().join("storage");
    std::fs::create_dir_all(root.join("ext")).unwrap();
    let copy = root.join("ext/experiment.duckdb");
    std::fs::copy(fixture("formats/experiment.duckdb"), &copy).unwrap();
    // (One more byte at the end, which DuckDB does not read: other bytes
    // than the artifact saved above.)
    std::fs::OpenOptions::new()
        .append(true)
        .open(&copy)
        .unwrap()
        .write_all(b"\0")
        .unwrap();
    let _sidecar = Sidecar::start(&cluster, "duckdb");
    let registered: String = db
        .query_one("SELECT lamin.register($1)", &[&copy.to_str().unwrap()])
        .unwrap()
        .get(0);
    let job = register_job(&mut db, &registered);
    let (status, result, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    assert!(
        result["warning"]
            .as_str()
            .is_some_and(|w| w.contains("no schema for the tables 2024 runs")),
        "{result}"
    );
    assert_eq!(
        recorded(&mut db, &registered),
        recorded(&mut db, &uid),
        "{result}"
    );

    // A truncated file and one read without a library stay plain bytes, with
    // DuckDB's reason or how to get the library. (Another copy again.)
    let unread = dir.path().join("unread.duckdb");
    std::fs::copy(&copy, &unread).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&unread)
        .unwrap()
        .write_all(b"\0")
        .unwrap();
    for (file, env, says) in [
        (
            fixture("formats/truncated.duckdb"),
            vec![],
            "not a readable DuckDB database",
        ),
        (
            unread,
            vec![(
                "LAMIN_DUCKDB_LIBRARY".to_string(),
                "/nonexistent/libduckdb.so".to_string(),
            )],
            "set LAMIN_DUCKDB_LIBRARY",
        ),
    ] {
        let out = lamin_with_env(&cluster, &env, &["save", file.to_str().unwrap(), "-q"]);
        assert!(out.status.success(), "{}", stderr_text(&out));
        assert!(
            stderr_text(&out).contains(says),
            "{}: {}",
            file.display(),
            stderr_text(&out)
        );
        let plain = stdout_text(&out);
        assert_eq!(recorded(&mut db, &plain), (None, None, String::new()));
    }
}
