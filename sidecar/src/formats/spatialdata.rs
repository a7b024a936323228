//! SpatialData zarr stores (folders, as the spatialdata package writes them,
//! zarr format 2 or 3): the elements — images and labels (OME-NGFF
//! multiscale arrays), points and shapes (parquet), tables (AnnData) — with
//! their shapes, and each table described like an AnnData zarr store. Its
//! frames are named as LaminDB's SpatialDataCurator names the slots:
//! `tables:<table>:obs`, `tables:<table>:var`.

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use arrow::record_batch::RecordBatch;

use super::anndata::{describe_zarr, read_frame_zarr, AnnDataInfo, Slot};
use super::zarr_node::ZarrNode;

/// The element kinds of a SpatialData store, in the order it lists them.
pub const ELEMENT_KINDS: [&str; 4] = ["images", "labels", "points", "shapes"];

/// One image, label, point or shape element.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub kind: &'static str,
    pub name: String,
    /// Images and labels: the full-resolution array's shape and axes, and
    /// the number of scales.
    pub shape: Option<Vec<i64>>,
    pub axes: Option<Vec<String>>,
    pub n_scales: Option<usize>,
    /// Points and shapes: their rows (from the parquet footers).
    pub n_rows: Option<i64>,
}

/// What a SpatialData store holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SpatialDataInfo {
    /// The store's spatialdata format version.
    pub version: Option<String>,
    pub elements: Vec<Element>,
    /// The tables by name, each an AnnData.
    pub tables: Vec<(String, AnnDataInfo)>,
}

impl SpatialDataInfo {
    /// As recorded in lamin.artifact_layout.
    pub fn to_json(&self) -> Value {
        let mut elements = serde_json::Map::new();
        for kind in ELEMENT_KINDS {
            let of_kind: Vec<Value> = self
                .elements
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| {
                    let mut v = json!({ "name": e.name });
                    for (key, value) in [
                        ("shape", json!(e.shape)),
                        ("axes", json!(e.axes)),
                        ("n_scales", json!(e.n_scales)),
                        ("n_rows", json!(e.n_rows)),
                    ] {
                        if !value.is_null() {
                            v[key] = value;
                        }
                    }
                    v
                })
                .collect();
            elements.insert(kind.to_string(), Value::Array(of_kind));
        }
        json!({
            "version": self.version,
            "elements": elements,
            "tables": self.tables.iter()
                .map(|(name, t)| (name.clone(), json!({ "n_obs": t.n_obs, "n_vars": t.n_vars })))
                .collect::<serde_json::Map<String, Value>>(),
        })
    }
}

/// Whether a local folder is a SpatialData store (its root says so).
pub fn is_spatialdata(dir: &Path) -> bool {
    ZarrNode::open(dir, &[]).is_some_and(|root| root.attrs.get("spatialdata_attrs").is_some())
}

/// The names of the child nodes of a group in a local store, sorted.
fn children(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// The rows of the parquet files of a points or shapes element (one file,
/// or a folder of parts as dask writes them).
fn parquet_rows(element: &Path) -> Option<i64> {
    let mut files = vec![];
    for entry in std::fs::read_dir(element).ok()?.flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "parquet") {
            if p.is_dir() {
                files.extend(
                    std::fs::read_dir(&p)
                        .ok()?
                        .flatten()
                        .map(|e| e.path())
                        .filter(|f| f.extension().is_some_and(|e| e == "parquet")),
                );
            } else {
                files.push(p);
            }
        }
    }
    let mut rows = 0;
    for f in &files {
        rows += super::parquet::describe_local(f).ok()?.n_rows;
    }
    (!files.is_empty()).then_some(rows)
}

/// An image or labels element: its multiscales (OME-NGFF 0.4 in the
/// attributes, 0.5 under `ome`), the first scale's shape.
fn raster(dir: &Path, kind: &'static str, name: &str) -> Element {
    let group = ZarrNode::open(dir, &[kind, name]);
    let multiscales = group.as_ref().and_then(|g| {
        g.attrs
            .get("multiscales")
            .or_else(|| g.attrs.get("ome")?.get("multiscales"))
            .and_then(|m| m.get(0))
            .cloned()
    });
    let datasets = multiscales
        .as_ref()
        .and_then(|m| m.get("datasets")?.as_array().cloned())
        .unwrap_or_default();
    let first = datasets
        .first()
        .and_then(|d| d.get("path")?.as_str().map(str::to_string));
    let shape = first.and_then(|p| ZarrNode::open(dir, &[kind, name, &p]).map(|a| a.shape));
    let axes = multiscales.as_ref().and_then(|m| {
        m.get("axes")?.as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.get("name").or(Some(x))?.as_str().map(str::to_string))
                .collect()
        })
    });
    Element {
        kind,
        name: name.to_string(),
        shape,
        axes,
        n_scales: (!datasets.is_empty()).then_some(datasets.len()),
        n_rows: None,
    }
}

/// Describe a local SpatialData store (blocking).
pub fn describe_spatialdata(dir: &Path) -> anyhow::Result<SpatialDataInfo> {
    let root = ZarrNode::open(dir, &[])
        .with_context(|| format!("{} is not a zarr store", dir.display()))?;
    let Some(attrs) = root.attrs.get("spatialdata_attrs") else {
        bail!(
            "{} is not a SpatialData store (no spatialdata_attrs)",
            dir.display()
        );
    };
    let mut elements = vec![];
    for kind in ELEMENT_KINDS {
        for name in children(&dir.join(kind)) {
            elements.push(match kind {
                "images" | "labels" => raster(dir, kind, &name),
                _ => Element {
                    kind,
                    name: name.clone(),
                    shape: None,
                    axes: None,
                    n_scales: None,
                    n_rows: parquet_rows(&dir.join(kind).join(&name)),
                },
            });
        }
    }
    let mut tables = vec![];
    for name in children(&dir.join("tables")) {
        let table = describe_zarr(&dir.join("tables").join(&name))
            .with_context(|| format!("table {name}"))?;
        tables.push((name, table));
    }
    Ok(SpatialDataInfo {
        version: attrs
            .get("version")
            .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string())),
        elements,
        tables,
    })
}

/// A table's `obs` or `var` of a local SpatialData store as one arrow batch,
/// by its slot name `tables:<table>:obs` / `tables:<table>:var`; plain `obs`
/// or `var` name those of the store's only table.
pub fn read_table_frame(dir: &Path, slot: &str) -> anyhow::Result<RecordBatch> {
    let tables = children(&dir.join("tables"));
    let (table, frame) = match slot.split(':').collect::<Vec<_>>()[..] {
        ["tables", table, frame] => (table.to_string(), frame),
        [frame] if tables.len() == 1 => (tables[0].clone(), frame),
        _ => bail!(
            "a SpatialData store's slots are tables:<table>:obs and tables:<table>:var; its tables are {}",
            tables.join(", ")
        ),
    };
    let slot_of = match frame {
        "obs" => Slot::Obs,
        "var" => Slot::Var,
        other => bail!("{other:?} is not a table's obs or var"),
    };
    if !tables.contains(&table) {
        bail!(
            "{} has no table {table:?}; its tables are {}",
            dir.display(),
            tables.join(", ")
        );
    }
    read_frame_zarr(&dir.join("tables").join(&table), slot_of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;

    #[test]
    fn a_store_written_by_spatialdata_lists_its_elements_and_tables() {
        let dir = fixture("formats/visium.zarr");
        assert!(is_spatialdata(&dir));
        assert!(!is_spatialdata(&fixture("formats/pbmc_v3.zarr")));
        let info = describe_spatialdata(&dir).unwrap();
        let names: Vec<(&str, &str)> = info
            .elements
            .iter()
            .map(|e| (e.kind, e.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("images", "tissue"),
                ("labels", "nuclei"),
                ("points", "transcripts"),
                ("shapes", "spots")
            ]
        );
        let image = &info.elements[0];
        assert_eq!(image.shape.as_deref(), Some(&[3, 64, 64][..]));
        assert_eq!(
            image.axes.as_deref(),
            Some(&["c".to_string(), "y".into(), "x".into()][..])
        );
        assert_eq!(image.n_scales, Some(2));
        assert_eq!(info.elements[1].shape.as_deref(), Some(&[64, 64][..]));
        assert_eq!(info.elements[2].n_rows, Some(100));
        assert_eq!(info.elements[3].n_rows, Some(12));
        assert_eq!(info.tables.len(), 1);
        let (name, table) = &info.tables[0];
        assert_eq!((name.as_str(), table.n_obs, table.n_vars), ("table", 12, 4));
        assert!(table
            .obs
            .iter()
            .any(|c| c.name == "region" && c.dtype == "cat"));
        assert!(describe_spatialdata(&fixture("formats/pbmc_v3.zarr")).is_err());
    }

    #[test]
    fn a_tables_obs_reads_by_its_slot_name() {
        let dir = fixture("formats/visium.zarr");
        let obs = read_table_frame(&dir, "tables:table:obs").unwrap();
        assert_eq!(obs.num_rows(), 12);
        assert_eq!(
            obs,
            read_table_frame(&dir, "obs").unwrap(),
            "the only table"
        );
        let e = read_table_frame(&dir, "tables:cells:obs").unwrap_err();
        assert!(format!("{e:#}").contains("its tables are table"), "{e:#}");
        assert!(read_table_frame(&dir, "images:tissue").is_err());
    }
}
