//! Ontology and gene imports through `lamin import`, from real files: the
//! queries a fresh instance must answer, idempotent re-import, a version
//! upgrade that drops a term, and refused inputs that leave nothing behind.

use std::path::Path;

use lamin_e2e::{check, fixture, lamin, real_source, Cluster};

fn import(cluster: &Cluster, args: &[&str]) -> String {
    let out = lamin(cluster, args);
    check(&format!("lamin {}", args.join(" ")), &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn count(db: &mut postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn a_fresh_instance_answers_from_real_cl_uberon_and_human_genes() {
    let cluster = Cluster::start();
    let cl = real_source("CL-ontology-v2026-03-26.json.zst");
    let uberon = real_source("UBERON-ontology-v2026-04-01.json.zst");
    let gencode = real_source("genes_homo_sapiens.csv.gz");
    let hgnc = real_source("hgnc_entries.tsv");
    let out = import(
        &cluster,
        &["import", "ontology", "--entity", "cell_type", path(&cl)],
    );
    assert!(
        out.contains("from cl 2026-03-26: 3596 records (3596 new"),
        "{out}"
    );
    import(
        &cluster,
        &["import", "ontology", "--entity", "tissue", path(&uberon)],
    );
    let out = import(
        &cluster,
        &[
            "import",
            "genes",
            "--organism",
            "human",
            "--source",
            "gencode+hgnc",
            "--version",
            "v48",
            path(&gencode),
            path(&hgnc),
        ],
    );
    assert!(out.contains("imported bionty.gene"), "{out}");

    let mut db = cluster.connect();
    let first = db
        .query_one(
            "SELECT name, uid FROM lamin.search('CD8', 'bionty.cell_type') LIMIT 1",
            &[],
        )
        .unwrap();
    assert_eq!(first.get::<_, String>(0), "CD8-positive, alpha-beta T cell");
    let ontology_id: String = db
        .query_one(
            "SELECT ontology_id FROM bionty.cell_type WHERE uid = $1",
            &[&first.get::<_, String>(1)],
        )
        .unwrap()
        .get(0);
    assert_eq!(ontology_id, "CL:0000625");
    let cd4: Vec<Option<String>> = db
        .query_one(
            "SELECT lamin.standardize('bionty.gene', ARRAY['T4', 'Leu-3'], organism => 'human')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(cd4, vec![Some("CD4".to_string()), Some("CD4".to_string())]);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM bionty.descendants('CL:0000084') WHERE ontology_id = 'CL:0000625'"),
        1,
        "CD8-positive, alpha-beta T cell descends from T cell"
    );
    let lung: Vec<Option<bool>> = db
        .query_one(
            "SELECT lamin.validate('bionty.tissue', ARRAY['lung', 'Lung'])",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(lung, vec![Some(true), Some(false)]);
    // Names, synonyms and ids mixed in one column standardize to ids.
    let ids: Vec<Option<String>> = db
        .query_one(
            "SELECT lamin.standardize('bionty.cell_type', ARRAY['T cell', 'T-lymphocyte', 'CL:0000236'], field => 'ontology_id')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        ids,
        vec![
            Some("CL:0000084".to_string()),
            Some("CL:0000084".to_string()),
            Some("CL:0000236".to_string())
        ]
    );
    // Every returned row of a search under T cell is a T cell.
    let under: Vec<String> = db
        .query(
            "SELECT name FROM lamin.search('CD8', 'bionty.cell_type', under => 'CL:0000084')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        !under.is_empty()
            && under
                .iter()
                .all(|n| n.contains("T cell") || n.contains("T-cell") || n.contains("thymocyte")),
        "search under T cell: {under:?}"
    );
}

#[test]
fn reimport_changes_nothing_and_a_new_version_deprecates_the_dropped_term() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let v1 = fixture("bionty/cl-cut.json.zst");
    let args = [
        "import",
        "ontology",
        "--entity",
        "cell_type",
        "--source",
        "cl",
        "--version",
        "v1",
        path(&v1),
    ];
    let first = import(&cluster, &args);
    assert!(
        first.contains("(202 new, 0 changed, 0 deprecated)"),
        "{first}"
    );
    let mut db = cluster.connect();
    let before = count(
        &mut db,
        "SELECT sum(hashtext(c::text)) FROM bionty.cell_type c",
    );
    let again = import(&cluster, &args);
    assert!(again.contains("already imported"), "{again}");
    assert_eq!(
        count(
            &mut db,
            "SELECT sum(hashtext(c::text)) FROM bionty.cell_type c"
        ),
        before,
        "re-import is a no-op"
    );

    // v2: B cell gone, T cell renamed.
    let raw = zstd::decode_all(std::fs::File::open(&v1).unwrap()).unwrap();
    let mut terms: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&raw).unwrap();
    assert!(terms.remove("CL:0000236").is_some(), "fixture has B cell");
    terms["CL:0000084"]["label"] = serde_json::Value::from("T-cell (renamed)");
    let v2 = dir.path().join("CL-ontology-v2.json.zst");
    std::fs::write(
        &v2,
        zstd::encode_all(serde_json::to_vec(&terms).unwrap().as_slice(), 3).unwrap(),
    )
    .unwrap();
    let out = import(
        &cluster,
        &[
            "import",
            "ontology",
            "--entity",
            "cell_type",
            "--source",
            "cl",
            "--version",
            "v2",
            path(&v2),
        ],
    );
    assert!(
        out.contains("(0 new, 1 changed, 1 deprecated)") || out.contains("0 new"),
        "{out}"
    );
    let row = db
        .query_one(
            "SELECT deprecated FROM bionty.cell_type WHERE ontology_id = 'CL:0000236'",
            &[],
        )
        .unwrap();
    assert!(row.get::<_, bool>(0), "B cell is kept, deprecated");
    let name: String = db
        .query_one(
            "SELECT name FROM bionty.cell_type WHERE ontology_id = 'CL:0000084'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(name, "T-cell (renamed)");
    let current: String = db
        .query_one(
            "SELECT version FROM bionty.sources WHERE entity = 'bionty.cell_type'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(current, "v2");
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM lamin.search('T-cell (renamed)', 'bionty.cell_type') WHERE name = 'T-cell (renamed)'"),
        1,
        "the search index follows the rename"
    );
}

#[test]
fn a_malformed_obo_file_is_refused_with_its_line_and_nothing_is_imported() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture("bionty/hp-cut.obo")).unwrap();
    // Break the 3rd is_a line: "is_a HP:…" (no colon) is not OBO.
    let mut seen = 0;
    let mut broken_line = 0;
    let broken: Vec<String> = good
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if l.starts_with("is_a: ") {
                seen += 1;
                if seen == 3 {
                    broken_line = i + 1;
                    return l.replacen("is_a: ", "is_a ", 1);
                }
            }
            l.to_string()
        })
        .collect();
    let bad = dir.path().join("hp-broken.obo");
    std::fs::write(&bad, broken.join("\n") + "\n").unwrap();
    let out = lamin(
        &cluster,
        &["import", "ontology", "--entity", "phenotype", path(&bad)],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hp-broken.obo is not valid OBO 1.4"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{broken_line}:")),
        "line {broken_line} not named: {stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    let mut db = cluster.connect();
    assert_eq!(count(&mut db, "SELECT count(*) FROM bionty.phenotype"), 0);
    assert_eq!(count(&mut db, "SELECT count(*) FROM bionty.source"), 0);

    // The intact fixture imports, with name and version from its header.
    let out = import(
        &cluster,
        &[
            "import",
            "ontology",
            "--entity",
            "phenotype",
            path(&fixture("bionty/hp-cut.obo")),
        ],
    );
    assert!(out.contains("from hp 2025-01-16"), "{out}");
}

#[test]
fn a_truncated_zst_file_is_refused_and_the_previous_version_stays() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let v1 = fixture("bionty/cl-cut.json.zst");
    import(
        &cluster,
        &[
            "import",
            "ontology",
            "--entity",
            "cell_type",
            "--source",
            "cl",
            "--version",
            "v1",
            path(&v1),
        ],
    );
    let bytes = std::fs::read(&v1).unwrap();
    let cut = dir.path().join("CL-ontology-v2.json.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = lamin(
        &cluster,
        &[
            "import",
            "ontology",
            "--entity",
            "cell_type",
            "--source",
            "cl",
            "--version",
            "v2",
            path(&cut),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CL-ontology-v2.json.zst")
            && (stderr.contains("incomplete frame")
                || stderr.contains("not a complete cellxgene ontology JSON file")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    let mut db = cluster.connect();
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM bionty.cell_type WHERE NOT deprecated"
        ),
        200
    );
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM bionty.source"),
        1,
        "no v2 source row"
    );
}

#[test]
fn the_real_hpo_obo_file_imports_whole() {
    let cluster = Cluster::start();
    let hp = real_source("hp.obo");
    let out = import(
        &cluster,
        &["import", "ontology", "--entity", "phenotype", path(&hp)],
    );
    assert!(out.contains("from hp 2025-01-16: 19484 records"), "{out}");
    let mut db = cluster.connect();
    // Abnormality of the eye (HP:0000478) descends from Phenotypic abnormality (HP:0000118).
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM bionty.ancestors('HP:0000478') WHERE ontology_id = 'HP:0000118'"
        ),
        1
    );
    assert!(
        count(
            &mut db,
            "SELECT count(*) FROM bionty.phenotype WHERE deprecated"
        ) > 0,
        "obsolete terms are flagged"
    );
}

#[test]
fn bad_arguments_get_clear_errors() {
    let cluster = Cluster::start();
    let cl = fixture("bionty/cl-cut.json.zst");
    let out = lamin(
        &cluster,
        &["import", "ontology", "--entity", "cell_types", path(&cl)],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown ontology registry bionty.cell_types")
            && stderr.contains("cell_type"),
        "{stderr}"
    );
    let out = lamin(
        &cluster,
        &[
            "import",
            "ontology",
            "--entity",
            "cell_type",
            "/nonexistent/cl.obo",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cl.obo: no such file"));
    let out = lamin(
        &cluster,
        &[
            "import",
            "ontology",
            "--entity",
            "tissue",
            "--source",
            "cl",
            "--version",
            "1",
            path(&cl),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("id prefixes other than UBERON"),
        "CL terms into tissue: {stderr}"
    );
    let out = lamin(
        &cluster,
        &[
            "import",
            "genes",
            "--organism",
            "human",
            "--version",
            "1",
            path(&cl),
        ],
    );
    assert!(
        !out.status.success(),
        "an ontology file is not a gene table"
    );
}
