//! MuData `.h5mu` files (HDF5, as the mudata package writes them): the
//! global `obs` and `var` and, for each modality under `mod/`, its own `obs`
//! and `var` — each an AnnData dataframe group, read by the AnnData readers.
//! The frames are named as LaminDB's MuDataCurator names the slots: `obs`,
//! `var`, `rna:obs`, `rna:var`, …

use std::path::Path;

use anyhow::{bail, Context};
use arrow::record_batch::RecordBatch;

use super::anndata::{frame, read_h5_frame, string_attr, FrameColumn};

/// One dataframe of a MuData: its slot name, rows and columns.
#[derive(Debug, Clone, PartialEq)]
pub struct MuFrame {
    pub slot: String,
    pub n_rows: i64,
    pub columns: Vec<FrameColumn>,
}

/// What a MuData holds: the global n_obs and n_vars, the modalities' names
/// (in the file's order) and every frame, global ones first.
#[derive(Debug, Clone, PartialEq)]
pub struct MuDataInfo {
    pub n_obs: i64,
    pub n_vars: i64,
    pub modalities: Vec<String>,
    pub frames: Vec<MuFrame>,
}

fn open(path: &Path) -> anyhow::Result<hdf5::File> {
    let file = hdf5::File::open(path).map_err(|e| {
        anyhow::anyhow!("{} is not a readable h5mu (HDF5) file: {e}", path.display())
    })?;
    if string_attr(&file, "encoding-type").as_deref() != Some("MuData") {
        bail!(
            "{} is not a MuData file (no encoding-type MuData)",
            path.display()
        );
    }
    Ok(file)
}

/// The HDF5 group of a slot: `obs` → `obs`, `rna:var` → `mod/rna/var`.
fn group_of(slot: &str) -> anyhow::Result<String> {
    match slot.rsplit_once(':') {
        None if slot == "obs" || slot == "var" => Ok(slot.to_string()),
        Some((modality, frame @ ("obs" | "var")))
            if !modality.is_empty() && !modality.contains('/') =>
        {
            Ok(format!("mod/{modality}/{frame}"))
        }
        _ => bail!(
            "{slot:?} is not a slot of a MuData: obs, var, or MODALITY:obs / MODALITY:var (e.g. rna:obs)"
        ),
    }
}

/// The modalities of an open MuData, in the order `mod`'s `mod-order`
/// attribute gives (else by name).
fn modalities(file: &hdf5::File) -> anyhow::Result<Vec<String>> {
    let group = file
        .group("mod")
        .context("no mod group: a MuData without modalities")?;
    // Modalities reached by hard links only: a soft or external link could
    // point into another file on this host.
    let mut names = Vec::new();
    group.iter_visit_default(|name, info| {
        if info.link_type == hdf5::LinkType::Hard {
            names.push(name.to_string());
        }
        Ok(())
    })?;
    names.sort();
    if let Some(order) = group
        .attr("mod-order")
        .ok()
        .and_then(|a| a.read_1d::<hdf5::types::VarLenUnicode>().ok())
    {
        let order: Vec<String> = order.iter().map(|s| s.as_str().to_string()).collect();
        names.sort_by_key(|n| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
    }
    Ok(names)
}

/// Describe a local .h5mu file.
pub fn describe_h5mu(path: &Path) -> anyhow::Result<MuDataInfo> {
    let file = open(path)?;
    let modalities = modalities(&file)?;
    let mut frames = Vec::new();
    let mut slots = vec!["obs".to_string(), "var".to_string()];
    for m in &modalities {
        slots.push(format!("{m}:obs"));
        slots.push(format!("{m}:var"));
    }
    for slot in slots {
        let (n_rows, columns) = frame(&file, &group_of(&slot)?)
            .with_context(|| format!("{}: slot {slot}", path.display()))?;
        frames.push(MuFrame {
            slot,
            n_rows,
            columns,
        });
    }
    Ok(MuDataInfo {
        n_obs: frames[0].n_rows,
        n_vars: frames[1].n_rows,
        modalities,
        frames,
    })
}

/// One slot of a local .h5mu file (`obs`, `rna:var`, …) as one arrow batch:
/// the index first, then the columns as AnnData frames read.
pub fn read_frame_h5mu(path: &Path, slot: &str) -> anyhow::Result<RecordBatch> {
    let group = group_of(slot)?;
    let file = open(path)?;
    if file.group(&group).is_err() {
        bail!(
            "{} has no slot {slot}; its modalities are {}",
            path.display(),
            modalities(&file)?.join(", ")
        );
    }
    read_h5_frame(&file, &group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;

    #[test]
    fn a_mudata_written_by_mudata_is_described_slot_by_slot() {
        let info = describe_h5mu(&fixture("formats/citeseq.h5mu")).unwrap();
        assert_eq!((info.n_obs, info.n_vars), (40, 8));
        assert_eq!(info.modalities, ["rna", "prot"]);
        // (slot, rows, [(column, dtype)])
        type Seen<'a> = (&'a str, i64, Vec<(&'a str, &'a str)>);
        let slots: Vec<Seen> = info
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
            slots[0],
            ("obs", 40, vec![("donor", "cat"), ("batch", "int")])
        );
        assert_eq!(slots[1].0, "var");
        assert_eq!(
            slots[2],
            (
                "rna:obs",
                40,
                vec![("cell_type", "cat"), ("n_genes", "int")]
            )
        );
        assert_eq!(
            slots[3],
            (
                "rna:var",
                5,
                vec![("gene_symbol", "str"), ("highly_variable", "bool")]
            )
        );
        assert_eq!(slots[4], ("prot:obs", 40, vec![("total_counts", "int")]));
        assert_eq!(slots[5], ("prot:var", 3, vec![("isotype", "cat")]));
        assert_eq!(
            info.frames[5].columns[0].categories.as_deref(),
            Some(&["no".to_string(), "yes".to_string()][..])
        );
    }

    #[test]
    fn slots_read_as_tables_and_bad_files_or_slots_are_named() {
        let rna_var = read_frame_h5mu(&fixture("formats/citeseq.h5mu"), "rna:var").unwrap();
        assert_eq!((rna_var.num_rows(), rna_var.num_columns()), (5, 3));
        assert_eq!(rna_var.schema().field(0).name(), "index");
        let obs = read_frame_h5mu(&fixture("formats/citeseq.h5mu"), "obs").unwrap();
        assert_eq!(obs.num_rows(), 40);
        let e = read_frame_h5mu(&fixture("formats/citeseq.h5mu"), "atac:obs").unwrap_err();
        assert!(
            format!("{e:#}").contains("modalities are rna, prot"),
            "{e:#}"
        );
        let e = read_frame_h5mu(&fixture("formats/citeseq.h5mu"), "rna:X").unwrap_err();
        assert!(format!("{e:#}").contains("not a slot of a MuData"), "{e:#}");
        let e = describe_h5mu(&fixture("formats/truncated.h5mu")).unwrap_err();
        assert!(format!("{e:#}").contains("not a readable h5mu"), "{e:#}");
        let h5ad = fixture("anndata/pbmc.h5ad");
        let e = describe_h5mu(&h5ad).unwrap_err();
        assert!(format!("{e:#}").contains("not a MuData file"), "{e:#}");
    }
}
