//! Generic HDF5 files (`.h5`, `.hdf5`): their groups and datasets with
//! shapes and element types, walked with the HDF5 library — the layout that
//! `lamin describe` shows for a file no table reader understands.

use std::path::Path;

use anyhow::Context;
use hdf5::LinkType;
use serde_json::{json, Value};

/// At most this many datasets are listed (the counts stay exact).
pub const MAX_LISTED: usize = 1000;

/// What an HDF5 file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Hdf5Layout {
    /// Every group's path, the root `/` first.
    pub groups: Vec<String>,
    /// Datasets (path, shape, element type), at most [`MAX_LISTED`].
    pub datasets: Vec<(String, Vec<usize>, String)>,
    pub n_groups: usize,
    pub n_datasets: usize,
    /// Soft and external links, and hard links to groups already walked.
    pub n_links_skipped: usize,
}

impl Hdf5Layout {
    /// As recorded in lamin.artifact_layout.
    pub fn to_json(&self) -> Value {
        json!({
            "n_groups": self.n_groups,
            "n_datasets": self.n_datasets,
            "n_links_skipped": self.n_links_skipped,
            "groups": self.groups,
            "datasets": self.datasets.iter()
                .map(|(path, shape, dtype)| json!({ "path": path, "shape": shape, "dtype": dtype }))
                .collect::<Vec<_>>(),
            "truncated": self.n_datasets > self.datasets.len() || self.n_groups > self.groups.len(),
        })
    }
}

/// Whether a suffix names a generic HDF5 file.
pub fn is_hdf5_suffix(suffix: &str) -> bool {
    suffix == ".h5" || suffix == ".hdf5"
}

/// Groups deeper than this are not walked.
const MAX_DEPTH: usize = 64;

/// Walk a local HDF5 file (blocking). Only hard links are followed, each
/// object once: a soft or external link (which could point into another
/// file on this host) or a second hard link to a group already walked (a
/// cycle) is counted in `n_links_skipped`, never opened.
pub fn describe_hdf5(path: &Path) -> anyhow::Result<Hdf5Layout> {
    let file = hdf5::File::open(path)
        .map_err(|e| anyhow::anyhow!("{} is not a readable HDF5 file: {e}", path.display()))?;
    let mut layout = Hdf5Layout {
        groups: vec![],
        datasets: vec![],
        n_groups: 0,
        n_datasets: 0,
        n_links_skipped: 0,
    };
    let mut seen = vec![file.loc_info()?.token];
    walk(&file, "/", 0, &mut seen, &mut layout).with_context(|| format!("{}", path.display()))?;
    Ok(layout)
}

fn walk(
    group: &hdf5::Group,
    at: &str,
    depth: usize,
    seen: &mut Vec<hdf5::LocationToken>,
    layout: &mut Hdf5Layout,
) -> anyhow::Result<()> {
    layout.n_groups += 1;
    if layout.groups.len() < MAX_LISTED {
        layout.groups.push(at.to_string());
    }
    let mut links = Vec::new();
    group.iter_visit_default(|name, info| {
        links.push((name.to_string(), info.link_type));
        Ok(())
    })?;
    links.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, link) in links {
        if link != LinkType::Hard {
            layout.n_links_skipped += 1;
            continue;
        }
        let child = if at == "/" {
            format!("/{name}")
        } else {
            format!("{at}/{name}")
        };
        if let Ok(sub) = group.group(&name) {
            let token = sub.loc_info()?.token;
            if seen.contains(&token) || depth >= MAX_DEPTH || seen.len() >= 10 * MAX_LISTED {
                layout.n_links_skipped += 1;
                continue;
            }
            seen.push(token);
            walk(&sub, &child, depth + 1, seen, layout)?;
        } else if let Ok(ds) = group.dataset(&name) {
            layout.n_datasets += 1;
            if layout.datasets.len() < MAX_LISTED {
                let dtype = ds
                    .dtype()
                    .and_then(|t| t.to_descriptor())
                    .map(|d| d.to_string())
                    .unwrap_or_else(|_| "unknown".into());
                layout.datasets.push((child, ds.shape(), dtype));
            }
        }
        // (Named datatypes are not listed.)
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;

    #[test]
    fn an_hdf5_file_written_by_h5py_is_walked() {
        let layout = describe_hdf5(&fixture("formats/scan.h5")).unwrap();
        assert_eq!(layout.groups, ["/", "/calibration", "/raw", "/raw/frames"]);
        assert_eq!((layout.n_groups, layout.n_datasets), (4, 5));
        let datasets: Vec<(&str, &[usize], &str)> = layout
            .datasets
            .iter()
            .map(|(p, s, t)| (p.as_str(), &s[..], t.as_str()))
            .collect();
        assert_eq!(
            datasets,
            [
                ("/calibration/gain", &[4][..], "float64"),
                ("/calibration/labels", &[4][..], "unicode (var len)"),
                ("/raw/frames/0", &[16, 16][..], "uint16"),
                ("/raw/frames/1", &[16, 16][..], "uint16"),
                ("/raw/timestamps", &[2][..], "int64"),
            ]
        );
        assert!(describe_hdf5(&fixture("formats/truncated.h5")).is_err());
    }

    #[test]
    fn cycles_soft_and_external_links_are_not_followed() {
        let layout = describe_hdf5(&fixture("formats/links.h5")).unwrap();
        assert_eq!(layout.groups, ["/", "/a"]);
        let paths: Vec<&str> = layout.datasets.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(
            paths,
            ["/a/values"],
            "nothing of scan.h5 through the external link"
        );
        assert_eq!(
            layout.n_links_skipped, 3,
            "the cycle, the soft and the external link"
        );
    }
}
