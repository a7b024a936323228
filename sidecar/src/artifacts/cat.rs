//! Reading a tabular artifact's rows (`lamin cat`): parquet by ranged reads
//! of only the columns and row groups needed; CSV/TSV files, the `obs` /
//! `var` tables of AnnData (.h5ad files, .zarr stores), the slots of MuData
//! (.h5mu: `obs`, `rna:var`, …), SpatialData tables and DuckDB tables from
//! the local object or a temporary copy of a remote one.

use std::path::Path;

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use tokio_postgres::Client;

use super::locate_ready;
use crate::formats::parquet::scan;
use crate::formats::{delimited, delimiter_of, has_slots, read_slot, Emitter, Query, ReadCost};
use crate::refused;
use crate::storage::Storage;

/// Which artifact (uid, 16-character stem or key), and what of it.
#[derive(Debug, Clone)]
pub struct CatRequest {
    pub uid: String,
    pub query: Query,
    /// For an AnnData: its `obs` (default) or `var` table; for a MuData also
    /// a modality's, e.g. `rna:var`.
    pub slot: Option<String>,
}

/// What was read.
#[derive(Debug, Clone)]
pub struct CatOutcome {
    pub uid: String,
    /// The artifact's size in bytes, when known.
    pub size: Option<i64>,
    pub cost: ReadCost,
}

/// The formats `lamin cat` reads, for messages.
const READABLE: &str =
    "parquet, CSV (.csv), TSV (.tsv), AnnData (.h5ad, .zarr: --slot obs or var), MuData (.h5mu: --slot obs, var, rna:obs, …), SpatialData tables (.zarr: --slot tables:table:obs) and DuckDB tables (.duckdb: --slot cells)";

/// Stream the selected rows of a ready tabular artifact to `sink`, batch by batch.
pub async fn cat(
    client: &Client,
    request: &CatRequest,
    sink: impl FnMut(&RecordBatch) -> anyhow::Result<()> + Send,
) -> anyhow::Result<CatOutcome> {
    let a = locate_ready(client, &request.uid).await?;
    let (uid, root, object, size, suffix, folder) =
        (a.uid, a.root, a.object, a.size, a.suffix, a.folder);
    let anndata = suffix == ".h5ad" || (suffix == ".zarr" && folder);
    let slotted = has_slots(&suffix, folder);
    if request.slot.is_some() && !slotted {
        return Err(refused!(
            "--slot is for AnnData, MuData, SpatialData and DuckDB artifacts (.h5ad, .zarr, .h5mu, .duckdb); {uid} is a {suffix:?} {}",
            if folder { "folder" } else { "file" }
        ));
    }
    let slot = request.slot.clone().unwrap_or_else(|| "obs".into());
    if anndata && slot != "obs" && slot != "var" && !slot.starts_with("tables:") {
        return Err(refused!(
            "an AnnData has the slots obs and var (a SpatialData store tables:<table>:obs and :var); --slot {slot:?} names none of them"
        ));
    }
    let readable =
        (!folder && (suffix == ".parquet" || delimiter_of(&suffix).is_some())) || slotted;
    if !readable {
        return Err(refused!(
            "lamin cat reads {READABLE}; {uid} is {}",
            if folder {
                format!("a {suffix:?} folder")
            } else {
                format!("a {suffix:?} file")
            }
        ));
    }
    let storage = Storage::open(&root)?;
    let cost = if suffix == ".parquet" {
        scan(
            &storage,
            &object,
            size.map(|s| s as u64),
            &request.query,
            sink,
        )
        .await
    } else {
        let query = request.query.clone();
        let suffix = suffix.clone();
        storage
            .with_local_copy(&object, folder, move |path| {
                tokio::task::block_in_place(|| read_local(path, &suffix, slot, &query, sink))
            })
            .await
    }
    .with_context(|| format!("artifact {uid}"))?;
    Ok(CatOutcome { uid, size, cost })
}

/// Read a local CSV/TSV file or one table of a file with slots (blocking).
fn read_local(
    path: &Path,
    suffix: &str,
    slot: String,
    query: &Query,
    sink: impl FnMut(&RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<ReadCost> {
    if let Some(delimiter) = delimiter_of(suffix) {
        return delimited::scan_local(path, delimiter, query, sink);
    }
    let table = read_slot(path, suffix, &slot)?;
    let wanted = query
        .output_columns(&table.schema())
        .with_context(|| format!("the {slot} table"))?;
    let mut out = Emitter::new(query, wanted, sink);
    let mut offset = 0;
    while offset < table.num_rows() && !out.done() {
        let n = 8192.min(table.num_rows() - offset);
        out.emit(&table.slice(offset, n))?;
        offset += n;
    }
    Ok(ReadCost {
        rows_out: out.rows_out,
        ..Default::default()
    })
}
