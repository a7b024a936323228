//! TileDB-SOMA experiments (`.tiledbsoma` folders, as tiledbsoma writes
//! them): obs and each measurement's var as dataframes with typed columns and
//! categories, their rows, and every array of the experiment (X layers, obsm,
//! …) with its stored values — read through the TileDB library ([`ffi`]).
//! The slots are named as LaminDB's SOMA curator names them: `obs`, and
//! `ms:<measurement>` for a measurement's var.
//!
//! Without a TileDB library the folder's layout is still listed from its
//! directories ([`folder_layout`]), and the caller says how to get one.

pub mod ffi;

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::anndata::FrameColumn;
use super::mudata::MuFrame;
use ffi::{Array, Ctx, Field, Kind};

/// Groups nested deeper than this are not walked; at most this many objects.
const MAX_DEPTH: usize = 16;
const MAX_OBJECTS: usize = 10_000;

/// Whether a suffix names a TileDB-SOMA experiment.
pub fn is_soma_suffix(suffix: &str) -> bool {
    suffix == ".tiledbsoma"
}

/// One array of an experiment: its path inside the folder (`ms/RNA/X/data`),
/// SOMA type, sparse or dense, and stored values (sparse arrays).
#[derive(Debug, Clone, PartialEq)]
pub struct SomaArray {
    pub path: String,
    pub soma_type: Option<String>,
    pub sparse: bool,
    pub n_values: Option<u64>,
}

/// What a SOMA experiment holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SomaInfo {
    pub tiledb_version: String,
    pub n_obs: i64,
    /// The measurements with their number of variables.
    pub measurements: Vec<(String, i64)>,
    /// `obs` then `ms:<measurement>` (each measurement's var).
    pub frames: Vec<MuFrame>,
    /// Every array, obs and var included.
    pub arrays: Vec<SomaArray>,
    /// Members whose URI points outside the experiment's folder, or at an
    /// object already walked: not opened.
    pub n_members_skipped: usize,
}

impl SomaInfo {
    /// As recorded in lamin.artifact_layout.
    pub fn to_json(&self) -> Value {
        json!({
            "tiledb_version": self.tiledb_version,
            "n_obs": self.n_obs,
            "measurements": self.measurements.iter()
                .map(|(name, n_vars)| (name.clone(), json!({ "n_vars": n_vars })))
                .collect::<serde_json::Map<String, Value>>(),
            "arrays": self.arrays.iter().map(|a| {
                let mut v = json!({ "path": a.path, "sparse": a.sparse });
                if let Some(t) = &a.soma_type { v["soma_type"] = json!(t); }
                if let Some(n) = a.n_values { v["n_values"] = json!(n); }
                v
            }).collect::<Vec<_>>(),
            "n_members_skipped": self.n_members_skipped,
        })
    }
}

/// The lamin dtype of a TileDB datatype (attributes with an enumeration are
/// `cat`).
fn lamin_dtype(field: &Field) -> &'static str {
    if field.enumeration.is_some() {
        return "cat";
    }
    let t = field.datatype.as_str();
    match t {
        "BOOL" => "bool",
        "FLOAT32" | "FLOAT64" => "float",
        "DATETIME_DAY" => "date",
        _ if t.starts_with("INT") || t.starts_with("UINT") => "int",
        _ if t.starts_with("DATETIME_") => "datetime",
        _ if t.starts_with("STRING_") || t == "CHAR" || t == "BLOB" => "str",
        _ => "dict",
    }
}

/// A SOMA dataframe's columns: its attributes (soma_joinid, the dimension,
/// is the row number, not a column).
fn frame_columns(array: &Array) -> anyhow::Result<Vec<FrameColumn>> {
    Ok(array
        .attributes()?
        .into_iter()
        .map(|f| FrameColumn {
            dtype: lamin_dtype(&f),
            name: f.name,
            categories: f.enumeration,
        })
        .collect())
}

/// What a walk has found so far: the arrays, every URI opened (each is
/// opened once: a member naming a group above it, or an array twice, is
/// skipped, so a crafted experiment cannot make the walk loop or blow up),
/// and the members skipped.
struct Walk<'a> {
    root_uri: &'a str,
    arrays: Vec<(String, String)>,
    seen: std::collections::HashSet<String>,
    skipped: usize,
}

/// Walk a group's members depth first: (path inside the folder, URI) of each
/// array; members whose URI leaves the folder, or names an object already
/// walked, are skipped.
fn walk(ctx: &Ctx, w: &mut Walk, uri: &str, prefix: &str, depth: usize) -> anyhow::Result<()> {
    if depth > MAX_DEPTH {
        bail!("groups nested deeper than {MAX_DEPTH} at {prefix}");
    }
    for m in ctx.group(uri)?.members()? {
        // A member may name any URI (another folder, a bucket): only those
        // inside the experiment are read.
        let key = m.uri.trim_end_matches('/').to_string();
        if !inside(w.root_uri, &m.uri)
            || m.name.is_empty()
            || m.name.contains('/')
            || !w.seen.insert(key)
        {
            w.skipped += 1;
            continue;
        }
        if w.seen.len() > MAX_OBJECTS {
            bail!("more than {MAX_OBJECTS} groups and arrays");
        }
        let path = if prefix.is_empty() {
            m.name.clone()
        } else {
            format!("{prefix}/{}", m.name)
        };
        match m.kind {
            Kind::Array => w.arrays.push((path, m.uri)),
            Kind::Group => walk(ctx, w, &m.uri, &path, depth + 1)?,
            Kind::Nothing => w.skipped += 1,
        }
    }
    Ok(())
}

/// Whether a member URI lies inside the folder at `root_uri` (no `..`).
fn inside(root_uri: &str, uri: &str) -> bool {
    let uri = uri.strip_suffix('/').unwrap_or(uri);
    uri.strip_prefix(root_uri)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .split('/')
                    .all(|p| !p.is_empty() && p != "." && p != "..")
        })
}

/// Describe a local SOMA experiment (blocking).
pub fn describe_soma(dir: &Path) -> anyhow::Result<SomaInfo> {
    let tiledb_version = ffi::library_version()?;
    let ctx = Ctx::new()?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{}: not a readable folder", dir.display()))?;
    let root_uri = format!("file://{}", dir.display());
    let not_soma = || format!("{} is not a readable TileDB-SOMA experiment", dir.display());
    if ctx.kind(&root_uri).with_context(not_soma)? != Kind::Group {
        bail!("{}: no TileDB group here", not_soma());
    }
    let kind = ctx
        .group(&root_uri)
        .and_then(|g| g.metadata("soma_object_type"))
        .with_context(not_soma)?;
    if kind.as_deref() != Some("SOMAExperiment") {
        bail!(
            "{}: its soma_object_type is {kind:?}, not SOMAExperiment",
            not_soma()
        );
    }
    let mut w = Walk {
        root_uri: &root_uri,
        arrays: vec![],
        seen: [root_uri.clone()].into(),
        skipped: 0,
    };
    walk(&ctx, &mut w, &root_uri, "", 0).with_context(not_soma)?;
    let (found, n_members_skipped) = (w.arrays, w.skipped);

    let mut info = SomaInfo {
        tiledb_version,
        n_obs: 0,
        measurements: vec![],
        frames: vec![],
        arrays: vec![],
        n_members_skipped,
    };
    let mut obs = None;
    let mut vars = Vec::new();
    for (path, uri) in &found {
        let array = ctx.array(uri).with_context(not_soma)?;
        let soma_type = array.metadata("soma_object_type")?;
        let sparse = array.is_sparse()?;
        let n_values = if sparse {
            Some(array.count().with_context(not_soma)?)
        } else {
            None
        };
        if soma_type.as_deref() == Some("SOMADataFrame") {
            let rows = n_values.unwrap_or(0) as i64;
            let columns = frame_columns(&array).with_context(not_soma)?;
            let parts: Vec<&str> = path.split('/').collect();
            match parts[..] {
                ["obs"] => {
                    obs = Some(MuFrame {
                        slot: "obs".into(),
                        n_rows: rows,
                        columns,
                    })
                }
                ["ms", name, "var"] => {
                    info.measurements.push((name.to_string(), rows));
                    vars.push(MuFrame {
                        slot: format!("ms:{name}"),
                        n_rows: rows,
                        columns,
                    });
                }
                _ => {}
            }
        }
        info.arrays.push(SomaArray {
            path: path.clone(),
            soma_type,
            sparse,
            n_values,
        });
    }
    let obs = obs.ok_or_else(|| anyhow::anyhow!("{}: it has no obs dataframe", not_soma()))?;
    info.n_obs = obs.n_rows;
    info.frames.push(obs);
    info.frames.extend(vars);
    Ok(info)
}

/// The layout of a `.tiledbsoma` folder read from its directories alone
/// (a TileDB array has a `__schema` folder, a group a `__group` one), for
/// when no TileDB library is at hand.
pub fn folder_layout(dir: &Path) -> anyhow::Result<Value> {
    let mut arrays = Vec::new();
    let mut groups = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
    {
        let entry = entry?;
        if !entry.file_type().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name.starts_with("__") {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(dir)?
            .to_string_lossy()
            .into_owned();
        let relative = if relative.is_empty() {
            "/".to_string()
        } else {
            relative
        };
        if entry.path().join("__schema").is_dir() {
            arrays.push(relative);
        } else if entry.path().join("__group").is_dir() {
            groups.push(relative);
        }
        if arrays.len() + groups.len() >= MAX_OBJECTS {
            break;
        }
    }
    Ok(
        json!({ "groups": groups, "arrays": arrays.iter().map(|p| json!({ "path": p })).collect::<Vec<_>>() }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;

    #[test]
    fn member_uris_must_stay_inside_the_folder() {
        let root = "file:///data/pbmc.tiledbsoma";
        assert!(inside(root, "file:///data/pbmc.tiledbsoma/obs"));
        assert!(inside(root, "file:///data/pbmc.tiledbsoma/ms/RNA/"));
        assert!(!inside(root, "file:///data/pbmc.tiledbsoma"));
        assert!(!inside(root, "file:///data/pbmc.tiledbsoma2/obs"));
        assert!(!inside(root, "file:///data/pbmc.tiledbsoma/../secret"));
        assert!(!inside(root, "s3://bucket/obs"));
    }

    #[test]
    fn the_folder_layout_needs_no_library() {
        let layout = folder_layout(&fixture("formats/pbmc.tiledbsoma")).unwrap();
        let arrays: Vec<&str> = layout["arrays"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            arrays,
            [
                "ms/ADT/X/data",
                "ms/ADT/var",
                "ms/RNA/X/data",
                "ms/RNA/var",
                "obs"
            ]
        );
        assert_eq!(
            layout["groups"],
            json!(["/", "ms", "ms/ADT", "ms/ADT/X", "ms/RNA", "ms/RNA/X"])
        );
    }

    /// The tests need the library: scripts/test fetches it and sets
    /// LAMIN_TILEDB_LIBRARY (the error says how to get one by hand).
    fn library() {
        if let Err(e) = ffi::library_version() {
            panic!("{e}");
        }
    }

    #[test]
    fn an_experiment_written_by_tiledbsoma_is_described_slot_by_slot() {
        library();
        let info = describe_soma(&fixture("formats/pbmc.tiledbsoma")).unwrap();
        assert!(
            info.tiledb_version.starts_with("2."),
            "{}",
            info.tiledb_version
        );
        assert_eq!(info.n_obs, 40);
        assert_eq!(
            info.measurements,
            [("ADT".to_string(), 3), ("RNA".to_string(), 6)]
        );
        type Seen<'a> = (&'a str, i64, Vec<(&'a str, &'a str)>);
        let frames: Vec<Seen> = info
            .frames
            .iter()
            .map(|f| {
                (
                    f.slot.as_str(),
                    f.n_rows,
                    f.columns
                        .iter()
                        .map(|c| (c.name.as_str(), c.dtype))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            frames[0],
            (
                "obs",
                40,
                vec![
                    ("obs_id", "str"),
                    ("cell_type", "cat"),
                    ("n_genes", "int"),
                    ("percent_mito", "float"),
                    ("doublet", "bool")
                ]
            )
        );
        assert_eq!(frames[1], ("ms:ADT", 3, vec![("var_id", "str")]));
        assert_eq!(
            frames[2],
            (
                "ms:RNA",
                6,
                vec![
                    ("var_id", "str"),
                    ("gene_symbol", "str"),
                    ("feature_type", "cat")
                ]
            )
        );
        assert_eq!(
            info.frames[0].columns[1].categories.as_deref(),
            Some(
                &[
                    "B cell".to_string(),
                    "NK cell".to_string(),
                    "T cell".to_string()
                ][..]
            )
        );
        let x = info
            .arrays
            .iter()
            .find(|a| a.path == "ms/RNA/X/data")
            .unwrap();
        assert_eq!(x.soma_type.as_deref(), Some("SOMASparseNDArray"));
        assert!(x.sparse);
        assert_eq!(x.n_values, Some(72), "30% of 40 x 6");
        assert_eq!(info.n_members_skipped, 0);
    }

    #[test]
    fn members_outside_the_folder_or_back_up_the_tree_are_skipped_not_followed() {
        library();
        let dir = tempfile::tempdir().unwrap();
        let exp = dir.path().join("hostile.tiledbsoma");
        copy(&fixture("formats/pbmc.tiledbsoma"), &exp);
        let elsewhere = dir.path().join("elsewhere");
        copy(&fixture("formats/pbmc.tiledbsoma/ms"), &elsewhere);
        let ctx = Ctx::new().unwrap();
        let uri = |p: &std::path::Path| format!("file://{}", p.canonicalize().unwrap().display());
        // A cycle (RNA's member "up" is ms, above it) and a group elsewhere.
        ctx.add_member(&uri(&exp.join("ms/RNA")), &uri(&exp.join("ms")), "up")
            .unwrap();
        ctx.add_member(&uri(&exp), &uri(&elsewhere), "outside")
            .unwrap();
        drop(ctx);
        let info = describe_soma(&exp).unwrap();
        assert_eq!(info.n_members_skipped, 2);
        assert_eq!(info.arrays.len(), 5, "{:?}", info.arrays);
        assert_eq!(info.measurements.len(), 2);
    }

    fn copy(from: &std::path::Path, to: &std::path::Path) {
        for e in walkdir::WalkDir::new(from) {
            let e = e.unwrap();
            let dest = to.join(e.path().strip_prefix(from).unwrap());
            if e.file_type().is_dir() {
                std::fs::create_dir_all(&dest).unwrap();
            } else {
                std::fs::copy(e.path(), &dest).unwrap();
            }
        }
    }

    #[test]
    fn a_truncated_or_foreign_folder_is_refused_with_its_reason() {
        library();
        let e = describe_soma(&fixture("formats/truncated.tiledbsoma")).unwrap_err();
        assert!(
            format!("{e:#}").contains("not a readable TileDB-SOMA experiment"),
            "{e:#}"
        );
        let e = describe_soma(&fixture("formats/pbmc_v3.zarr")).unwrap_err();
        assert!(format!("{e:#}").contains("no TileDB group here"), "{e:#}");
    }
}
