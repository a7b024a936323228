//! `lamin slice`: part of an AnnData (an `.h5ad` file or a `.zarr` store)
//! — the observations where an obs condition holds, the variables named —
//! read where the artifact is stored, by ranged reads of only what the
//! slice needs (obs, var, the row pointers of a sparse X and the stretches
//! of the rows or columns kept), and written as h5ad or parquet. The
//! artifact read becomes an input of the run, when one is given.

pub mod aligned;
pub mod frame;
pub mod h5ad;
pub mod matrix;
pub mod num;
pub mod prefetch;
pub mod ranged;
pub mod select;
pub mod source;
pub mod spans;
pub mod write;
pub mod x;
pub mod zarr;

use std::path::PathBuf;

use anyhow::{bail, Context};
use tokio_postgres::Client;

use crate::artifacts::locate_ready;
use crate::query::counting::ReadCounter;
use crate::refused;
use crate::runs::{reading_for_run, record_input};
pub use source::stored_frame;
use source::AnnData;
use write::Slice;
use x::Layout;

/// What to cut from which artifact, and where the slice goes.
#[derive(Debug, Clone)]
pub struct SliceRequest {
    /// The artifact: uid, stem or key of an `.h5ad`.
    pub artifact: String,
    /// An SQL condition over obs's columns (all rows without one).
    pub obs: Option<String>,
    /// Variables by name (all without names).
    pub var: Vec<String>,
    /// The var column the names are looked up in (default: the var index).
    pub var_key: Option<String>,
    /// The file written: `.h5ad` or `.parquet`, by its suffix.
    pub output: PathBuf,
    /// The run (uid) whose input the artifact becomes.
    pub run: Option<String>,
}

/// What a slice read and kept.
#[derive(Debug, Clone)]
pub struct SliceOutcome {
    pub uid: String,
    pub n_obs: usize,
    pub n_vars: usize,
    /// The artifact's size, and what was read of it (bytes, requests).
    pub size: u64,
    pub bytes_read: u64,
    pub requests: u64,
    /// What the source holds that an h5ad slice does not carry (`uns`, an
    /// `obsm` entry that is not a matrix).
    pub left_out: Vec<String>,
}

/// The output formats, by the output's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    H5ad,
    Parquet,
}

fn output_of(path: &std::path::Path) -> anyhow::Result<Output> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".h5ad") {
        Ok(Output::H5ad)
    } else if name.ends_with(".parquet") {
        Ok(Output::Parquet)
    } else {
        bail!(refused!(
            "{}: a slice is written as .h5ad or .parquet; name the output with one of these suffixes",
            path.display()
        ))
    }
}

/// Cut a slice (see the module's documentation).
pub async fn slice(
    client: &Client,
    recorder: &Client,
    request: &SliceRequest,
) -> anyhow::Result<SliceOutcome> {
    let output = output_of(&request.output)?;
    reading_for_run(recorder, request.run.as_deref()).await?;
    let a = locate_ready(client, &request.artifact).await?;
    let counter = ReadCounter::default();
    let what = format!("artifact {}", a.uid);
    let (file, obs, var) = AnnData::open(&a, &counter, &what).await?;
    let rows = select::rows_where(&obs, request.obs.as_deref()).await?;
    let select::Variables {
        keep,
        rows: var_rows,
        names: var_names,
    } = select::variables(&var, &request.var, request.var_key.as_deref())?;
    let out_path = request.output.clone();
    let n_out = var_rows.len();
    let (n_obs, n_vars, left_out) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let x = file.read_x(&rows, &keep, n_out)?;
        // Layers, obsm, varm, obsp, varp and raw go into an h5ad slice (a
        // parquet one is obs and X).
        let aligned = match output {
            Output::H5ad => {
                let (n_obs, n_vars) = file.shape();
                aligned::read(
                    &file,
                    &aligned::Kept {
                        rows: &rows,
                        keep: &keep,
                        var_rows: &var_rows,
                        n_obs,
                        n_vars,
                    },
                )?
            }
            Output::Parquet => aligned::Aligned::default(),
        };
        let picked: Vec<usize> = rows.iter().map(|r| *r as usize).collect();
        let slice = Slice {
            obs: obs.take(&picked),
            var: var.take(&var_rows),
            var_names,
            x,
            sparse: file.layout().0 != Layout::Dense,
            x_type: file.layout().1,
            aligned,
        };
        // Written beside the output and renamed when whole: a slice that
        // fails half-way leaves no file, and never half of one.
        let folder = match out_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let partial = tempfile::Builder::new()
            .prefix(".lamin-slice-")
            // As any file the user writes (0666 less the umask), not the
            // 0600 of a temporary file.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .suffix(if output == Output::H5ad {
                ".h5ad"
            } else {
                ".parquet"
            })
            .tempfile_in(&folder)
            .with_context(|| format!("{} cannot be written", folder.display()))?;
        match output {
            Output::H5ad => write::write_h5ad(&slice, partial.path())?,
            Output::Parquet => write::write_parquet(&slice, partial.path())?,
        }
        partial
            .persist(&out_path)
            .with_context(|| format!("{} cannot be written", out_path.display()))?;
        Ok((
            slice.obs.index.len(),
            slice.var.index.len(),
            slice.aligned.left_out,
        ))
    })
    .await??;
    if request.run.is_some() {
        record_input(recorder, &a.uid).await?;
    }
    Ok(SliceOutcome {
        uid: a.uid,
        n_obs,
        n_vars,
        size: a.size.unwrap_or_default() as u64,
        bytes_read: counter.bytes(),
        requests: counter.requests(),
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::local::LocalFileSystem;

    use super::*;
    use crate::formats::anndata::{read_frame_h5ad, Slot};
    use crate::formats::fixture;
    use h5ad::H5ad;
    use source::frames;

    /// The fixture opened through object_store by ranges, as a remote one is.
    async fn open_fixture(name: &str) -> (H5ad, ReadCounter, u64) {
        let path = fixture(name).canonicalize().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        let counter = ReadCounter::default();
        let store = counter.wrap(Arc::new(LocalFileSystem::new()));
        let object = object_store::path::Path::from_absolute_path(&path).unwrap();
        let runtime = tokio::runtime::Handle::current();
        let file = tokio::task::spawn_blocking(move || {
            H5ad::open(ranged::hdf5_source(store, object, size, runtime), "fixture")
        })
        .await
        .unwrap()
        .unwrap();
        (file, counter, size)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn frames_read_by_ranges_match_the_hdf5_library() {
        let (file, counter, _) = open_fixture("anndata/pbmc.h5ad").await;
        let (obs, var) = tokio::task::spawn_blocking(move || {
            (file.frame("obs").unwrap(), file.frame("var").unwrap())
        })
        .await
        .unwrap();
        let path = fixture("anndata/pbmc.h5ad");
        assert_eq!(
            obs.to_batch(false).unwrap(),
            read_frame_h5ad(&path, Slot::Obs).unwrap()
        );
        assert_eq!(
            var.to_batch(false).unwrap(),
            read_frame_h5ad(&path, Slot::Var).unwrap()
        );
        assert!(
            matches!(obs.column("cell_type"), Some(frame::Values::Cat { categories, .. }) if categories.len() == 5)
        );
        assert!(counter.requests() > 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn conditions_and_names_select_rows_and_variables() {
        let (file, _, _) = open_fixture("anndata/pbmc.h5ad").await;
        let (obs, var, file) = tokio::task::spawn_blocking(move || {
            (file.frame("obs").unwrap(), file.frame("var").unwrap(), file)
        })
        .await
        .unwrap();
        let rows = select::rows_where(&obs, Some("cell_type = 'B cell' AND n_genes >= 300"))
            .await
            .unwrap();
        // cell_type cycles through 5 names; B cell is every 5th from 1; n_genes = 10 × row.
        assert_eq!(rows, (30..120).filter(|r| r % 5 == 1).collect::<Vec<u64>>());
        let all = select::rows_where(&obs, Some("donor IN ('d0') OR pct_mito IS NULL"))
            .await
            .unwrap();
        assert_eq!(all.len(), 40);
        for bad in ["no_such_column = 1", "cell_type = ", "1"] {
            assert!(select::rows_where(&obs, Some(bad)).await.is_err(), "{bad}");
        }
        let names = vec!["MS4A1".to_string(), "CD4".to_string()];
        let chosen = select::variables(&var, &names, Some("gene_symbol")).unwrap();
        assert_eq!(chosen.rows, vec![2, 0]);
        assert_eq!(chosen.names, names);
        assert_eq!(chosen.keep[..3], [Some(1), None, Some(0)]);
        let keep = chosen.keep;
        // A misspelt key is refused even when no names are given.
        let err = select::variables(&var, &[], Some("gene_sym")).unwrap_err();
        assert!(err.to_string().contains("gene_sym"), "{err}");
        let err = select::variables(&var, &["CD4".into(), "NOPE".into()], None).unwrap_err();
        assert!(err.to_string().contains("NOPE"), "{err}");
        // X at those rows and columns, against the whole matrix.
        let x = tokio::task::spawn_blocking(move || file.read_x(&rows, &keep, 2))
            .await
            .unwrap()
            .unwrap();
        let whole = hdf5::File::open(fixture("anndata/pbmc.h5ad")).unwrap();
        let g = whole.group("X").unwrap();
        let data = g
            .dataset("data")
            .unwrap()
            .read_1d::<f32>()
            .unwrap()
            .to_vec();
        let indices = g
            .dataset("indices")
            .unwrap()
            .read_1d::<i32>()
            .unwrap()
            .to_vec();
        let indptr = g
            .dataset("indptr")
            .unwrap()
            .read_1d::<i64>()
            .unwrap()
            .to_vec();
        let at = |r: usize, c: i32| {
            (indptr[r] as usize..indptr[r + 1] as usize)
                .find(|k| indices[*k] == c)
                .map_or(0.0, |k| f64::from(data[k]))
        };
        let rows: Vec<usize> = (30..120).filter(|r| r % 5 == 1).collect();
        assert_eq!(x.n_rows(), rows.len());
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(x.dense_row(i), vec![at(*r, 2), at(*r, 0)], "row {r}");
        }
        assert!(!x.data.is_empty());
    }

    /// typed.h5ad and typed.zarr (one AnnData written twice by anndata):
    /// 32-bit and unsigned columns, an ordered categorical, categories of
    /// integers, floats and booleans, an int32 X.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_slice_keeps_its_sources_types_and_reads_back_as_it_was_cut() {
        use frame::Values;
        use num::Num;
        let (file, _, _) = open_fixture("anndata/typed.h5ad").await;
        let dir = fixture("anndata/typed.zarr").canonicalize().unwrap();
        let runtime = tokio::runtime::Handle::current();
        let zarr = crate::storage::zarr::zarr_store(
            Arc::new(LocalFileSystem::new()),
            object_store::path::Path::from_absolute_path(&dir).unwrap(),
            runtime.clone(),
        );
        let out = tempfile::tempdir().unwrap();
        let written = out.path().join("slice.h5ad");
        let w = written.clone();
        let (obs, var, x) = tokio::task::spawn_blocking(move || {
            assert_eq!(file.x.num, Num::I32);
            let file = AnnData::H5ad(file);
            let z = zarr::ZarrAnnData::open(zarr, "typed.zarr").unwrap();
            let (obs, var) = frames(&file, "typed.h5ad").unwrap();
            assert_eq!(
                (obs.clone(), var.clone()),
                frames(&AnnData::Zarr(z), "z").unwrap()
            );
            let kind = |name: &str| match obs.column(name).unwrap() {
                Values::Int(_, n) | Values::Float(_, n) => format!("{n:?}"),
                Values::Cat {
                    categories,
                    ordered,
                    ..
                } => format!(
                    "cat of {:?}, ordered {ordered}",
                    categories.to_arrow().unwrap().data_type()
                ),
                other => format!("{other:?}"),
            };
            assert_eq!(kind("n_counts"), "I32");
            assert_eq!(kind("score"), "F32");
            assert_eq!(kind("lane"), "U8");
            assert_eq!(kind("stage"), "cat of Utf8, ordered true");
            assert_eq!(kind("cluster"), "cat of Int64, ordered false");
            assert_eq!(kind("dose"), "cat of Float64, ordered false");
            assert_eq!(kind("treated"), "cat of Boolean, ordered false");
            // What `lamin query` gives of them is what the whole-file
            // reader gives: 64-bit numbers, categoricals as their values.
            assert_eq!(
                frame::widened(obs.to_batch(false).unwrap()).unwrap(),
                read_frame_h5ad(&fixture("anndata/typed.h5ad"), Slot::Obs).unwrap()
            );
            // A slice of some rows, written.
            let rows = [0u64, 3, 4, 5, 39];
            let keep: Vec<Option<u32>> = (0..5).map(Some).collect();
            let x = file.read_x(&rows, &keep, 5).unwrap();
            let picked: Vec<usize> = rows.iter().map(|r| *r as usize).collect();
            let slice = write::Slice {
                obs: obs.take(&picked),
                var: var.clone(),
                var_names: vec![],
                x,
                sparse: true,
                x_type: file.layout().1,
                aligned: Default::default(),
            };
            write::write_h5ad(&slice, &w).unwrap();
            (slice.obs, var, slice.x)
        })
        .await
        .unwrap();
        // Read back: the same frames, types and X.
        let size = std::fs::metadata(&written).unwrap().len();
        let object = object_store::path::Path::from_absolute_path(&written).unwrap();
        tokio::task::spawn_blocking(move || {
            let source =
                ranged::hdf5_source(Arc::new(LocalFileSystem::new()), object, size, runtime);
            let back = AnnData::H5ad(H5ad::open(source, "slice").unwrap());
            assert_eq!(back.layout(), (x::Layout::Csr, Num::I32));
            assert_eq!(frames(&back, "slice").unwrap(), (obs, var));
            let keep: Vec<Option<u32>> = (0..5).map(Some).collect();
            assert_eq!(back.read_x(&[0, 1, 2, 3, 4], &keep, 5).unwrap(), x);
        })
        .await
        .unwrap();
    }

    /// A damaged store that declares an obsm matrix a trillion columns wide
    /// (zarr needs no chunk for that) is refused by name before anything
    /// is allocated for its columns.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_matrix_declared_too_wide_is_refused_not_allocated() {
        let copy = tempfile::tempdir().unwrap();
        let dir = copy.path().join("typed.zarr");
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(fixture("anndata/typed.zarr"))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        for file in ["obsm/X_umap/.zarray", ".zmetadata"] {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let array = if file == ".zmetadata" {
                &mut json["metadata"]["obsm/X_umap/.zarray"]
            } else {
                &mut json
            };
            array["shape"][1] = serde_json::json!(1_000_000_000_000u64);
            std::fs::write(&path, json.to_string()).unwrap();
        }
        let runtime = tokio::runtime::Handle::current();
        let store = crate::storage::zarr::zarr_store(
            Arc::new(LocalFileSystem::new()),
            object_store::path::Path::from_absolute_path(dir.canonicalize().unwrap()).unwrap(),
            runtime,
        );
        let err = tokio::task::spawn_blocking(move || {
            let file = AnnData::Zarr(zarr::ZarrAnnData::open(store, "typed.zarr").unwrap());
            let keep = vec![Some(0u32); 1];
            aligned::read(
                &file,
                &aligned::Kept {
                    rows: &[0, 1],
                    keep: &keep,
                    var_rows: &[0],
                    n_obs: 40,
                    n_vars: 5,
                },
            )
        })
        .await
        .unwrap()
        .map(|_| ())
        .expect_err("a trillion columns");
        let message = format!("{err:#}");
        assert!(
            message.contains("obsm/X_umap has 1000000000000 columns, more than a slice carries"),
            "{message}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_truncated_file_is_refused_by_name() {
        let path = fixture("anndata/truncated.h5ad").canonicalize().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        let store = Arc::new(LocalFileSystem::new());
        let object = object_store::path::Path::from_absolute_path(&path).unwrap();
        let runtime = tokio::runtime::Handle::current();
        let result = tokio::task::spawn_blocking(move || {
            let file = H5ad::open(
                ranged::hdf5_source(store, object, size, runtime),
                "artifact T",
            )?;
            frames(&AnnData::H5ad(file), "artifact T")
        })
        .await
        .unwrap();
        let err = result.expect_err("a truncated file cannot be read");
        assert!(
            format!("{err:#}")
                .contains("artifact T cannot be read (the file is truncated or damaged)"),
            "{err:#}"
        );
    }
}
