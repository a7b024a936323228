//! `lamin query` (issue 22): SQL over artifacts and collections with
//! DataFusion — parquet and CSV/TSV read in place with pushdown, AnnData and
//! MuData tables, joins across them, the artifacts read recorded as inputs
//! of the run, the result saved as a new artifact with its lineage.

use lamin_e2e::{cluster_with_storage, fails, fixture, lamin, ok, stderr_text, Cluster};

fn setup() -> (Cluster, postgres::Client, tempfile::TempDir) {
    let (cluster, db, dir) = cluster_with_storage();
    for (file, key) in [
        ("tabular/cells.parquet", "atlas/cells.parquet"),
        ("tabular/empty.parquet", "atlas/empty.parquet"),
        ("tabular/cells.tsv", "atlas/cells.tsv"),
        ("anndata/pbmc.h5ad", "atlas/pbmc.h5ad"),
        ("formats/citeseq.h5mu", "multi/citeseq.h5mu"),
    ] {
        ok(&lamin(
            &cluster,
            &["save", fixture(file).to_str().unwrap(), "--key", key, "-q"],
        ));
    }
    (cluster, db, dir)
}

fn query(cluster: &Cluster, sql: &str) -> String {
    ok(&lamin(cluster, &["query", sql]))
}

#[test]
fn sql_over_parquet_csv_anndata_and_mudata_artifacts_and_their_joins() {
    let (cluster, _db, _dir) = setup();
    assert_eq!(
        query(
            &cluster,
            "SELECT cell_type, count(*) AS n FROM artifact('atlas/cells.parquet') GROUP BY 1 ORDER BY 1"
        ),
        "cell_type,n\nB cell,250\n\"CD8-positive, alpha-beta T cell\",250\nT cell,250\nmacrophage,250"
    );
    // OR, IN and NULL tests, which `lamin cat --where` reads too, and more.
    assert_eq!(
        query(
            &cluster,
            "SELECT count(*) AS n FROM artifact('atlas/cells.parquet')
             WHERE score IS NULL OR cell_id IN ('cell-0001', 'cell-0002')"
        ),
        "n\n102"
    );
    // A parquet file joined with a TSV file of the same rows.
    assert_eq!(
        query(
            &cluster,
            "SELECT count(*) AS n, sum(t.n_genes) AS genes FROM artifact('atlas/cells.parquet') p
             JOIN artifact('atlas/cells.tsv') t ON p.cell_id = t.cell_id WHERE t.n_genes < 10"
        ),
        "n,genes\n10,45"
    );
    // AnnData: obs by default, var by its slot; MuData by its slots.
    assert_eq!(
        query(
            &cluster,
            "SELECT count(*) AS n FROM artifact('atlas/pbmc.h5ad') WHERE cell_type = 'B cell'"
        ),
        "n\n24"
    );
    assert_eq!(
        query(
            &cluster,
            "SELECT gene_symbol FROM artifact('atlas/pbmc.h5ad', 'var') ORDER BY 1 LIMIT 2"
        ),
        "gene_symbol\nACTB\nCD4"
    );
    assert_eq!(
        query(
            &cluster,
            "SELECT o.donor, count(*) AS n FROM artifact('multi/citeseq.h5mu') o
             JOIN artifact('multi/citeseq.h5mu', 'rna:obs') r ON r.index = o.index
             WHERE r.cell_type = 'monocyte' GROUP BY 1 ORDER BY 1"
        ),
        "donor,n\nd0,7\nd1,6"
    );
    // JSON lines, and parquet that pyarrow-free readers get as bytes.
    let json = ok(&lamin(
        &cluster,
        &[
            "query",
            "SELECT cell_id, n_genes FROM artifact('atlas/cells.parquet') WHERE n_genes = 7",
            "--format",
            "json",
        ],
    ));
    assert_eq!(json, r#"{"cell_id":"cell-0007","n_genes":7}"#);

    // Mistakes are named.
    let err = fails(&lamin(
        &cluster,
        &["query", "SELECT * FROM artifact('atlas/nothing.parquet')"],
    ));
    assert!(
        err.contains("no artifact with key \"atlas/nothing.parquet\""),
        "{err}"
    );
    let err = fails(&lamin(
        &cluster,
        &[
            "query",
            "SELECT no_such FROM artifact('atlas/cells.parquet')",
        ],
    ));
    assert!(
        err.contains("cannot be planned") && err.contains("no_such"),
        "{err}"
    );
    let err = fails(&lamin(&cluster, &["query", "SELECT 1"]));
    assert!(err.contains("the query reads no artifact"), "{err}");
    let err = fails(&lamin(
        &cluster,
        &[
            "query",
            "SELECT * FROM artifact('atlas/cells.parquet', 'obs')",
        ],
    ));
    assert!(err.contains("slots (\"obs\") are for AnnData"), "{err}");
    let err = fails(&lamin(
        &cluster,
        &[
            "query",
            "SELECT * FROM artifact('atlas/pbmc.h5ad', 'rna:obs')",
        ],
    ));
    assert!(err.contains("the slots obs and var"), "{err}");
    // Queries only: nothing is written through the storages' stores.
    for statement in [
        "COPY (SELECT * FROM artifact('atlas/cells.parquet')) TO 'lamin://s0/stolen.csv'",
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 'lamin://s0/' AS SELECT * FROM artifact('atlas/cells.parquet')",
        "INSERT INTO artifact('atlas/cells.parquet') SELECT * FROM artifact('atlas/cells.parquet')",
    ] {
        let err = fails(&lamin(&cluster, &["query", statement]));
        assert!(err.contains("SELECT queries only"), "{statement}: {err}");
    }
    let err = fails(&lamin(
        &cluster,
        &[
            "query",
            "SELECT * FROM artifact('atlas/cells.parquet')",
            "--save",
            "out.csv",
        ],
    ));
    assert!(err.contains("must end with .parquet"), "{err}");
}

#[test]
fn a_collection_is_one_table_read_by_ranges_and_the_result_is_saved_with_its_lineage() {
    let (cluster, mut db, _dir) = setup();
    let collection: String = db
        .query_one(
            "SELECT lamin.save_collection('atlas/shards', ARRAY(
                 SELECT uid FROM lamin.artifact WHERE key IN ('atlas/cells.parquet', 'atlas/empty.parquet') ORDER BY key))",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        query(
            &cluster,
            "SELECT count(*) AS n FROM collection('atlas/shards')"
        ),
        "n\n1000"
    );
    assert_eq!(
        query(
            &cluster,
            &format!("SELECT max(n_genes) AS m FROM collection('{collection}')")
        ),
        "m\n999"
    );

    // A selective filter reads a fraction of the file: the footer and the
    // pages of the row group that can match (four groups of 250 rows).
    let size: i64 = db
        .query_one(
            "SELECT size FROM lamin.artifact WHERE key = 'atlas/cells.parquet'",
            &[],
        )
        .unwrap()
        .get(0);
    let out = lamin(
        &cluster,
        &[
            "query",
            "SELECT cell_id FROM artifact('atlas/cells.parquet') WHERE n_genes BETWEEN 10 AND 12",
            "--stats",
        ],
    );
    assert_eq!(ok(&out), "cell_id\ncell-0010\ncell-0011\ncell-0012");
    let stats = stderr_text(&out);
    let bytes: i64 = stats
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {stats:?}"));
    assert!(
        bytes > 0 && bytes * 3 < size,
        "read {bytes} of {size} bytes: {stats}"
    );

    // With a run: the artifacts read are its inputs, the saved result its output.
    let run = ok(&lamin(
        &cluster,
        &["track", "--key", "pipelines/summarise.sql"],
    ));
    let saved = ok(&lamin(
        &cluster,
        &[
            "query",
            "SELECT p.cell_type, count(*) AS n, avg(o.n_genes) AS genes FROM collection('atlas/shards') p
             JOIN artifact('atlas/pbmc.h5ad') o ON true WHERE o.cell_type = 'B cell' GROUP BY 1",
            "--save",
            "reports/by-type.parquet",
            "--run",
            &run,
        ],
    ));
    assert_eq!(
        saved.len(),
        20,
        "the saved artifact's uid alone on stdout: {saved}"
    );
    let (created_by, rows): (Option<String>, Option<i64>) = {
        let row = db
            .query_one(
                "SELECT r.uid, a.n_observations FROM lamin.artifact a LEFT JOIN lamin.run r ON r.id = a.run_id WHERE a.uid = $1",
                &[&saved],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((created_by.as_deref(), rows), (Some(run.as_str()), Some(4)));
    let inputs: Vec<String> = db
        .query(
            "SELECT a.key FROM lamin.run_input_artifact i JOIN lamin.artifact a ON a.id = i.artifact_id
             JOIN lamin.run r ON r.id = i.run_id WHERE r.uid = $1 ORDER BY 1",
            &[&run],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        inputs,
        [
            "atlas/cells.parquet",
            "atlas/empty.parquet",
            "atlas/pbmc.h5ad"
        ]
    );
    // The saved result is an artifact like any other: queried back.
    assert_eq!(
        query(
            &cluster,
            "SELECT sum(n) AS n FROM artifact('reports/by-type.parquet')"
        ),
        "n\n24000"
    );
}
