//! `lamin slice` (issue 22): observations by an obs condition and variables
//! by name, cut from an h5ad artifact on S3 (a moto server on loopback) by
//! ranged reads, written as h5ad or parquet, and checked against anndata's
//! own subsetting of the same file. The files are written by anndata.

use std::path::{Path, PathBuf};
use std::process::Command;

use lamin_e2e::{fails, fixture, lamin_with_env, ok, stderr_text, Cluster, S3Server};

fn python() -> String {
    std::env::var("LAMIN_PYARROW_PYTHON").expect("LAMIN_PYARROW_PYTHON (scripts/test sets it)")
}

fn script() -> PathBuf {
    fixture("slicing/anndata_files.py")
}

/// anndata's verdict on a slice: its subset of `source` must equal `sliced`.
fn anndata_agrees(
    source: &Path,
    sliced: &Path,
    condition: &str,
    vars: &str,
    var_key: Option<&str>,
) {
    let mut cmd = Command::new(python());
    cmd.arg(script())
        .arg("check")
        .arg(source)
        .arg(sliced)
        .arg(condition)
        .arg(vars);
    if let Some(k) = var_key {
        cmd.arg(k);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "anndata disagrees with {}: {}{}",
        sliced.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The bytes read, from `--stats`: "… read N of its M bytes …".
fn bytes_read(stats: &str) -> (u64, u64) {
    let after = stats
        .split(" read ")
        .nth(1)
        .unwrap_or_else(|| panic!("no stats in {stats:?}"));
    let words: Vec<&str> = after.split(' ').collect();
    (words[0].parse().unwrap(), words[3].parse().unwrap())
}

struct Setup {
    s3: S3Server,
    cluster: Cluster,
    db: postgres::Client,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let s3 = S3Server::start();
    s3.create_bucket("lab");
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.execute("SELECT lamin.add_storage('s3://lab/data')", &[])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(python())
        .arg(script())
        .arg("write")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = s3.env();
    for name in ["cells", "dense", "csc"] {
        let path = dir.path().join(format!("{name}.h5ad"));
        ok(&lamin_with_env(
            &cluster,
            &env,
            &[
                "save",
                path.to_str().unwrap(),
                "--key",
                &format!("atlas/{name}.h5ad"),
                "-q",
            ],
        ));
    }
    // An AnnData of 32-bit, unsigned and categorical columns of every kind
    // and integer counts (tests/fixtures/anndata/make_fixtures.py).
    for file in ["typed.h5ad", "typed.zarr"] {
        ok(&lamin_with_env(
            &cluster,
            &env,
            &[
                "save",
                fixture(&format!("anndata/{file}")).to_str().unwrap(),
                "--key",
                &format!("atlas/{file}"),
                "-q",
            ],
        ));
    }
    // The same AnnData as a zarr store (a folder artifact).
    ok(&lamin_with_env(
        &cluster,
        &env,
        &[
            "save",
            dir.path().join("cells.zarr").to_str().unwrap(),
            "--key",
            "atlas/cells.zarr",
            "-q",
        ],
    ));
    ok(&lamin_with_env(
        &cluster,
        &env,
        &[
            "save",
            fixture("tabular/cells.parquet").to_str().unwrap(),
            "--key",
            "atlas/cells.parquet",
            "-q",
        ],
    ));
    Setup {
        s3,
        cluster,
        db,
        env,
        dir,
    }
}

impl Setup {
    fn slice(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["slice"];
        all.extend_from_slice(args);
        lamin_with_env(&self.cluster, &self.env, &all)
    }

    fn source(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.h5ad"))
    }
}

#[test]
fn slices_of_sparse_dense_and_csc_x_and_of_a_zarr_store_on_s3_equal_anndatas_subsets() {
    let s = setup();
    // The h5ad files, and the CSR one as a zarr store (a folder artifact).
    for file in ["cells.h5ad", "dense.h5ad", "csc.h5ad", "cells.zarr"] {
        let key = format!("atlas/{file}");
        let name = file.replace('.', "-");
        let source = s.dir.path().join(file);
        // Rows by a condition over categorical, integer and boolean columns;
        // variables by the var index, in the order given.
        let out = s.dir.path().join(format!("{name}-slice.h5ad"));
        let printed = ok(&s.slice(&[
            &key,
            "--obs",
            "cell_type = 'B cell' AND n_genes >= 1500 AND passed_qc",
            "--var",
            "G250,G3,G17",
            "-o",
            out.to_str().unwrap(),
        ]));
        assert_eq!(
            printed,
            out.to_str().unwrap(),
            "the written file alone on stdout"
        );
        anndata_agrees(
            &source,
            &out,
            "cell_type == 'B cell' and n_genes >= 1500 and passed_qc",
            "G250,G3,G17",
            None,
        );
        // OR, IN and NULL tests (a nullable integer column), every variable.
        let all = s.dir.path().join(format!("{name}-all.h5ad"));
        ok(&s.slice(&[
            &key,
            "--obs",
            "donor IN ('d1', 'd2') OR batch IS NULL",
            "-o",
            all.to_str().unwrap(),
        ]));
        anndata_agrees(
            &source,
            &all,
            "donor in ['d1', 'd2'] or batch.isna()",
            "",
            None,
        );
        // Parquet: obs columns, then one column per variable, by gene symbol.
        let table = s.dir.path().join(format!("{name}.parquet"));
        ok(&s.slice(&[
            &key,
            "--obs",
            "n_genes < 40",
            "--var",
            "SYM7,SYM399",
            "--var-key",
            "gene_symbol",
            "-o",
            table.to_str().unwrap(),
        ]));
        anndata_agrees(
            &source,
            &table,
            "n_genes < 40",
            "SYM7,SYM399",
            Some("gene_symbol"),
        );
    }
}

/// A slice holds what its source held: int32 and uint8 columns, float32
/// ones, an ordered categorical, categories of integers, floats and
/// booleans, and integer counts in X stay as they were (anndata compares
/// the types), from an h5ad file and a zarr store, as h5ad and as parquet.
#[test]
fn a_slice_keeps_the_types_of_its_source() {
    let mut s = setup();
    for file in ["typed.h5ad", "typed.zarr"] {
        // Saving described it (its categories of numbers once made it a
        // file of plain bytes, with a warning).
        let n: Option<i64> =
            s.db.query_one(
                "SELECT n_observations FROM lamin.artifact WHERE key = $1",
                &[&format!("atlas/{file}")],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, Some(40), "{file}");
        let source = fixture(&format!("anndata/{file}"));
        let name = file.replace('.', "-");
        let out = s.dir.path().join(format!("{name}-slice.h5ad"));
        let sliced = s.slice(&[
            &format!("atlas/{file}"),
            "--obs",
            "cluster = 12 OR stage = 'early'",
            "--var",
            "g4,g0",
            "-o",
            out.to_str().unwrap(),
        ]);
        ok(&sliced);
        // Layers, obsm, varm, obsp, varp and raw come along (anndata
        // compares them below); what does not is named.
        let note = stderr_text(&sliced);
        assert!(
            note.contains("does not carry obsm/meta (a dataframe), uns of"),
            "{note}"
        );
        anndata_agrees(
            &source,
            &out,
            "cluster == 12 or stage == 'early'",
            "g4,g0",
            None,
        );
        let table = s.dir.path().join(format!("{name}.parquet"));
        ok(&s.slice(&[
            &format!("atlas/{file}"),
            "--obs",
            "lane = 1 OR score < 1",
            "-o",
            table.to_str().unwrap(),
        ]));
        anndata_agrees(&source, &table, "lane == 1 or score < 1", "", None);
    }
}

#[test]
fn a_one_percent_slice_reads_a_small_part_of_the_file() {
    let s = setup();
    for file in ["dense.h5ad", "cells.h5ad", "csc.h5ad", "cells.zarr"] {
        let name = file.replace('.', "-");
        let out = s.dir.path().join(format!("{name}-1pc.h5ad"));
        let res = s.slice(&[
            &format!("atlas/{file}"),
            "--obs",
            "n_genes BETWEEN 1000 AND 1029",
            "--var",
            "G1,G2,G3",
            "-o",
            out.to_str().unwrap(),
            "--stats",
        ]);
        ok(&res);
        let stats = stderr_text(&res);
        let (read, size) = bytes_read(&stats);
        assert!(stats.contains("30 observations × 3 variables"), "{stats}");
        // The file's metadata, obs and var are read whole (about 8 % of
        // these 5 MB files); of X only the HDF5 chunks (about 150 kB here)
        // that hold the 30 rows (dense, CSR) or the 3 columns (CSC), with
        // the windows read ahead around the reader's walks (at most a 32nd
        // of the file each, here 10-16 % in all): each spares a request.
        // Of the zarr store, obs, var, X's pointers and the chunks of the
        // rows' stretch.
        assert!(
            read > 0 && read * 100 < size * 20,
            "{name}: read {read} of {size}: {stats}"
        );
        anndata_agrees(
            &s.dir.path().join(file),
            &out,
            "1000 <= n_genes <= 1029",
            "G1,G2,G3",
            None,
        );
    }
    // Every other row of the zarr store's first 60: 30 spans that share
    // X's chunks, read as a small part of the store.
    let out = s.dir.path().join("cells-zarr-scattered.h5ad");
    let res = s.slice(&[
        "atlas/cells.zarr",
        "--obs",
        "n_genes % 2 = 0 AND n_genes < 60",
        "-o",
        out.to_str().unwrap(),
        "--stats",
    ]);
    ok(&res);
    let stats = stderr_text(&res);
    let (read, size) = bytes_read(&stats);
    assert!(stats.contains("30 observations × 400 variables"), "{stats}");
    assert!(
        read > 0 && read * 100 < size * 20,
        "read {read} of {size}: {stats}"
    );
    anndata_agrees(
        &s.dir.path().join("cells.zarr"),
        &out,
        "n_genes % 2 == 0 and n_genes < 60",
        "",
        None,
    );
}

#[test]
fn a_query_of_an_anndatas_obs_and_var_on_s3_reads_them_by_ranges() {
    // `lamin query` reads the obs and var of an h5ad (as slicing does) and
    // of an AnnData zarr store where they are stored: not the file or store
    // whole (X is most of it).
    let mut s = setup();
    for (key, sql, expected) in [
        (
            "atlas/cells.h5ad",
            "SELECT count(*) AS n, min(n_genes) AS lo FROM artifact('atlas/cells.h5ad') WHERE n_genes BETWEEN 1000 AND 1029",
            "n,lo\n30,1000",
        ),
        (
            "atlas/csc.h5ad",
            "SELECT count(*) AS n FROM artifact('atlas/csc.h5ad', 'var')",
            "n\n400",
        ),
        (
            "atlas/cells.zarr",
            "SELECT cell_type, count(*) AS n, count(batch) AS batched FROM artifact('atlas/cells.zarr')
             WHERE n_genes < 100 GROUP BY 1 ORDER BY 1",
            "cell_type,n,batched\nB cell,25,23\nNK cell,25,23\nT cell,25,22\nmonocyte,25,22",
        ),
        (
            "atlas/cells.zarr",
            "SELECT index, gene_symbol FROM artifact('atlas/cells.zarr', 'var') WHERE highly_variable AND alias = 'A8'",
            "index,gene_symbol\nG8,SYM8",
        ),
    ] {
        let out = lamin_with_env(&s.cluster, &s.env, &["query", sql, "--stats"]);
        assert_eq!(ok(&out), expected, "{sql}");
        let stats = stderr_text(&out);
        let bytes: i64 = stats
            .split(": ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no byte count in {stats:?}"));
        let size: i64 = s
            .db
            .query_one("SELECT size FROM lamin.artifact WHERE key = $1", &[&key])
            .unwrap()
            .get(0);
        assert!(
            bytes > 0 && bytes * 100 < size * 20,
            "{key}: read {bytes} of {size}: {stats}"
        );
    }
}

#[test]
fn a_slice_saved_with_a_run_is_its_output_and_the_source_its_input() {
    let mut s = setup();
    let run = ok(&lamin_with_env(
        &s.cluster,
        &s.env,
        &["track", "--key", "pipelines/b-cells.sh"],
    ));
    let uid = ok(&s.slice(&[
        "atlas/cells.h5ad",
        "--obs",
        "cell_type = 'B cell'",
        "--save",
        "atlas/b-cells.h5ad",
        "--run",
        &run,
    ]));
    assert_eq!(
        uid.len(),
        20,
        "the saved artifact's uid alone on stdout: {uid}"
    );
    let row =
        s.db.query_one(
            "SELECT r.uid, a.n_observations, a.otype FROM lamin.artifact a
             LEFT JOIN lamin.run r ON r.id = a.run_id WHERE a.uid = $1",
            &[&uid],
        )
        .unwrap();
    let (creator, n, otype): (Option<String>, Option<i64>, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (creator.as_deref(), n, otype.as_deref()),
        (Some(run.as_str()), Some(750), Some("AnnData"))
    );
    let inputs: Vec<String> = s
        .db
        .query(
            "SELECT a.key FROM lamin.run_input_artifact i JOIN lamin.artifact a ON a.id = i.artifact_id
             JOIN lamin.run r ON r.id = i.run_id WHERE r.uid = $1",
            &[&run],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(inputs, ["atlas/cells.h5ad"]);
}

#[test]
fn bad_requests_are_refused_by_name_and_write_nothing() {
    let mut s = setup();
    let out = s.dir.path().join("refused.h5ad");
    let o = out.to_str().unwrap();
    let parquet = s.dir.path().join("refused.parquet");
    for (args, says) in [
        (
            vec!["atlas/cells.h5ad", "--var", "G1,NOPE", "-o", o],
            "NOPE",
        ),
        (
            vec!["atlas/cells.h5ad", "--obs", "no_such = 1", "-o", o],
            "obs has the columns index, cell_type",
        ),
        (
            vec![
                "atlas/cells.h5ad",
                "--var-key",
                "nope",
                "--var",
                "G1",
                "-o",
                o,
            ],
            "var has no such column",
        ),
        // A misspelt key without names is refused too, not ignored.
        (
            vec!["atlas/cells.h5ad", "--var-key", "nope", "-o", o],
            "var has no such column",
        ),
        // Refused while writing, after X was read: a variable named like an
        // obs column cannot share a parquet table with it.
        (
            vec![
                "atlas/cells.h5ad",
                "--var-key",
                "alias",
                "--var",
                "A1,donor",
                "-o",
                parquet.to_str().unwrap(),
            ],
            "has the name of an obs column",
        ),
        (
            vec!["atlas/cells.parquet", "-o", o],
            "lamin slice reads AnnData .h5ad files and .zarr stores",
        ),
        (
            vec!["atlas/cells.h5ad", "-o", "slice.csv"],
            "written as .h5ad or .parquet",
        ),
        (vec!["atlas/nothing.h5ad", "-o", o], "atlas/nothing.h5ad"),
    ] {
        let message = fails(&s.slice(&args));
        assert!(message.contains(says), "{args:?}: {message}");
    }
    // An object shorter than the size recorded (damaged behind lamin's
    // back) is refused by name, not read short.
    let uid: String =
        s.db.query_one(
            "SELECT uid FROM lamin.artifact WHERE key = 'atlas/cells.h5ad'",
            &[],
        )
        .unwrap()
        .get(0);
    let object = format!("data/.lamindb/{uid}.h5ad");
    let whole = std::fs::read(s.source("cells")).unwrap();
    s.s3.put("lab", &object, whole[..whole.len() * 3 / 4].to_vec());
    let message = fails(&s.slice(&["atlas/cells.h5ad", "--obs", "n_genes >= 2900", "-o", o]));
    assert!(
        message.contains(&uid) && !message.contains("panicked"),
        "{message}"
    );
    // Nothing written, not even the partial file beside the output.
    assert!(
        !out.exists() && !parquet.exists(),
        "a refused slice leaves no file"
    );
    let left: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".lamin-slice-"))
        .collect();
    assert!(left.is_empty(), "partial files left: {left:?}");
}
