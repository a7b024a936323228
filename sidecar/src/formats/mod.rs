//! What files hold: tables (parquet, CSV/TSV), AnnData (h5ad, zarr) and
//! MuData (h5mu), and the layout of generic HDF5 files and SpatialData stores —
//! rows, typed columns and the lamin dtype each column maps to — read from
//! local files or, for parquet, by ranged reads from any storage.

pub mod anndata;
mod c_library;
pub mod delimited;
pub mod duckdb;
pub mod filter;
pub mod hdf5_layout;
pub mod mudata;
pub mod parquet;
pub mod rewrite;
pub mod spatialdata;
pub mod tiledb;
pub mod zarr_node;

use std::path::Path;

use anyhow::bail;
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;

use filter::{filter_rows, Predicate};

/// What `lamin cat` asks for: columns (None: all), the rows a `--where`
/// keeps, at most `limit` of them.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub columns: Option<Vec<String>>,
    pub filter: Option<Predicate>,
    pub limit: Option<usize>,
}

/// How much a read cost.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadCost {
    pub bytes_read: u64,
    pub row_groups_read: usize,
    /// Row groups of a parquet file (0 for other formats).
    pub row_groups: usize,
    pub rows_out: u64,
}

impl Query {
    /// The columns to output, checked against the schema: an unknown one
    /// (asked for or in the filter) is refused listing the columns there are.
    pub fn output_columns(&self, schema: &Schema) -> anyhow::Result<Vec<String>> {
        let wanted: Vec<String> = match &self.columns {
            Some(cols) => cols.clone(),
            None => schema.fields().iter().map(|f| f.name().clone()).collect(),
        };
        let in_filter = self
            .filter
            .as_ref()
            .map(|f| f.columns())
            .unwrap_or_default();
        for name in wanted.iter().chain(in_filter.iter()) {
            if schema.field_with_name(name).is_err() {
                bail!(
                    "no column {name:?}; the columns are {}",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Ok(wanted)
    }

    /// The columns to read: the output columns, then those of the filter.
    pub fn read_columns(&self, wanted: &[String]) -> Vec<String> {
        let mut read = wanted.to_vec();
        for c in self
            .filter
            .as_ref()
            .map(|f| f.columns())
            .unwrap_or_default()
        {
            if !read.contains(&c) {
                read.push(c);
            }
        }
        read
    }
}

/// Filters, projects and limits batches on their way to a sink.
pub struct Emitter<'a, S> {
    query: &'a Query,
    wanted: Vec<String>,
    left: usize,
    pub rows_out: u64,
    sink: S,
}

impl<'a, S: FnMut(&RecordBatch) -> anyhow::Result<()>> Emitter<'a, S> {
    pub fn new(query: &'a Query, wanted: Vec<String>, sink: S) -> Self {
        Emitter {
            query,
            wanted,
            left: query.limit.unwrap_or(usize::MAX),
            rows_out: 0,
            sink,
        }
    }

    /// Whether the limit is reached (nothing more is needed).
    pub fn done(&self) -> bool {
        self.left == 0
    }

    /// Filter a batch read with (at least) the read columns, keep the output
    /// columns in order, and pass it on within the limit.
    pub fn emit(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        if self.done() {
            return Ok(());
        }
        let batch = filter_rows(batch, self.query.filter.as_ref())?;
        let indices: Vec<usize> = self
            .wanted
            .iter()
            .map(|n| batch.schema().index_of(n))
            .collect::<Result<_, _>>()?;
        let mut batch = batch.project(&indices)?;
        if batch.num_rows() > self.left {
            batch = batch.slice(0, self.left);
        }
        self.left -= batch.num_rows();
        self.rows_out += batch.num_rows() as u64;
        if batch.num_rows() > 0 {
            (self.sink)(&batch)?;
        }
        Ok(())
    }
}

/// One column: its name, arrow type and the lamin dtype it maps to.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub arrow: String,
    pub dtype: &'static str,
}

/// What a table holds.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    pub n_rows: i64,
    pub columns: Vec<Column>,
    pub row_groups: usize,
}

/// What a local file of a known format holds.
#[derive(Debug, Clone)]
pub enum Described {
    Table(TableInfo),
    AnnData(anndata::AnnDataInfo),
    MuData(mudata::MuDataInfo),
    /// A generic HDF5 file: its layout, no tables.
    Hdf5(hdf5_layout::Hdf5Layout),
    /// A SpatialData zarr store: its elements and tables.
    SpatialData(spatialdata::SpatialDataInfo),
    /// A DuckDB database file: its tables with their columns and rows, views.
    DuckDb(duckdb::DuckDbInfo),
    /// A TileDB-SOMA experiment: obs, each measurement's var, its arrays.
    Soma(tiledb::SomaInfo),
    /// A TileDB-SOMA experiment read without a TileDB library: the layout
    /// of its folder, and why no more was read.
    SomaFolder {
        layout: serde_json::Value,
        reason: String,
    },
}

/// The lamin feature dtype of an arrow type (see lamin.feature.dtype):
/// dictionary-encoded strings (pandas categoricals) are `cat`.
pub fn lamin_dtype(t: &DataType) -> &'static str {
    use DataType::*;
    match t {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => "int",
        Float16 | Float32 | Float64 => "float",
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => "num",
        Boolean => "bool",
        Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => {
            "str"
        }
        Dictionary(_, value) if matches!(value.as_ref(), Utf8 | LargeUtf8 | Utf8View) => "cat",
        Dictionary(_, value) => lamin_dtype(value),
        Date32 | Date64 => "date",
        Timestamp(..) => "datetime",
        _ => "dict",
    }
}

/// The columns of an arrow schema with their lamin dtypes.
pub fn columns_of(schema: &Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            arrow: f.data_type().to_string(),
            dtype: lamin_dtype(f.data_type()),
        })
        .collect()
}

/// The column delimiter of a delimited-text suffix (`.csv`, `.tsv`), if any.
pub fn delimiter_of(suffix: &str) -> Option<u8> {
    match suffix {
        ".csv" => Some(b','),
        ".tsv" | ".tab" => Some(b'\t'),
        _ => None,
    }
}

/// Whether a suffix names an AnnData (an `.h5ad` file or a `.zarr` store).
pub fn is_anndata_suffix(suffix: &str) -> bool {
    suffix == ".h5ad" || suffix == ".zarr"
}

/// Whether artifacts with this suffix get their columns recorded (files;
/// `.zarr` folders are AnnData stores).
pub fn is_table_suffix(suffix: &str) -> bool {
    suffix == ".parquet"
        || is_anndata_suffix(suffix)
        || suffix == ".h5mu"
        || delimiter_of(suffix).is_some()
}

/// Whether saving and registering read artifacts with this suffix: tables,
/// AnnData and MuData (columns and schemas), generic HDF5 (a layout),
/// TileDB-SOMA experiments and DuckDB files (schemas and a layout).
pub fn is_described_suffix(suffix: &str) -> bool {
    is_table_suffix(suffix)
        || hdf5_layout::is_hdf5_suffix(suffix)
        || tiledb::is_soma_suffix(suffix)
        || duckdb::is_duckdb_suffix(suffix)
}

/// Whether a folder artifact with this suffix is read as one dataset (a zarr
/// store: AnnData or SpatialData; a TileDB-SOMA experiment).
pub fn is_store_suffix(suffix: &str) -> bool {
    suffix == ".zarr" || tiledb::is_soma_suffix(suffix)
}

/// Describe a local table file by its suffix (parquet, CSV, TSV).
pub fn describe_local_table(path: &Path, suffix: &str) -> anyhow::Result<TableInfo> {
    match delimiter_of(suffix) {
        Some(d) => delimited::describe_local(path, d),
        None => parquet::describe_local(path),
    }
}

/// Stream the rows of a local table file (parquet, CSV, TSV) that `query`
/// selects to `sink`, the reader chosen by its suffix (blocking).
pub fn scan_local_table(
    path: &Path,
    suffix: &str,
    query: &Query,
    sink: impl FnMut(&RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<ReadCost> {
    match delimiter_of(suffix) {
        Some(d) => delimited::scan_local(path, d, query, sink),
        None => parquet::scan_local(path, query, sink),
    }
}

/// Whether an artifact is read by slot (`read_slot`): AnnData (.h5ad files,
/// .zarr stores), MuData (.h5mu), SpatialData stores and DuckDB files.
pub fn has_slots(suffix: &str, folder: bool) -> bool {
    match suffix {
        ".h5ad" | ".h5mu" | ".duckdb" => !folder,
        ".zarr" => folder,
        _ => false,
    }
}

/// One table of a local AnnData (`obs`, `var`), MuData (`obs`, `rna:var`, …),
/// SpatialData store (`tables:<table>:obs`, …) or DuckDB file (`cells`,
/// `qc.runs`; `obs`: its only table) by its slot name, as one
/// arrow batch: the reader chosen by the suffix (blocking; `lamin cat`,
/// `lamin query`).
pub fn read_slot(path: &Path, suffix: &str, slot: &str) -> anyhow::Result<RecordBatch> {
    use anndata::{read_frame, Slot};
    match (suffix, slot) {
        (".h5mu", _) => mudata::read_frame_h5mu(path, slot),
        (".duckdb", _) => duckdb::read_table(path, slot),
        (".zarr", _) if spatialdata::is_spatialdata(path) => {
            spatialdata::read_table_frame(path, slot)
        }
        (_, "obs") => read_frame(path, suffix, Slot::Obs),
        (_, "var") => read_frame(path, suffix, Slot::Var),
        (_, s) if s.starts_with("tables:") => Err(crate::refused!(
            "{slot:?} is a slot of a SpatialData store; this is an AnnData (slots obs and var)"
        )),
        (_, other) => Err(crate::refused!(
            "an AnnData has the slots obs and var, not {other:?}"
        )),
    }
}

/// Describe a local file (or `.zarr` store) of any known format by its suffix (blocking).
pub fn describe_local(path: &Path, suffix: &str) -> anyhow::Result<Described> {
    Ok(match suffix {
        ".zarr" if spatialdata::is_spatialdata(path) => {
            Described::SpatialData(spatialdata::describe_spatialdata(path)?)
        }
        ".zarr" => Described::AnnData(anndata::describe_zarr(path)?),
        ".h5ad" => Described::AnnData(anndata::describe_h5ad(path)?),
        ".h5mu" => Described::MuData(mudata::describe_h5mu(path)?),
        ".h5" | ".hdf5" => Described::Hdf5(hdf5_layout::describe_hdf5(path)?),
        ".duckdb" => Described::DuckDb(duckdb::describe_duckdb(path)?),
        ".tiledbsoma" => match tiledb::describe_soma(path) {
            Ok(info) => Described::Soma(info),
            Err(e) => match e.downcast::<tiledb::ffi::LibraryMissing>() {
                Ok(missing) => Described::SomaFolder {
                    layout: tiledb::folder_layout(path)?,
                    reason: missing.to_string(),
                },
                Err(e) => return Err(e),
            },
        },
        _ => Described::Table(describe_local_table(path, suffix)?),
    })
}

/// A test fixture under tests/fixtures, e.g. `formats/citeseq.h5mu`.
#[cfg(test)]
pub(crate) fn fixture(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn arrow_types_map_to_lamin_dtypes() {
        assert_eq!(lamin_dtype(&DataType::Int64), "int");
        assert_eq!(lamin_dtype(&DataType::Float32), "float");
        assert_eq!(lamin_dtype(&DataType::Utf8), "str");
        assert_eq!(
            lamin_dtype(&DataType::Dictionary(
                Box::new(DataType::Int8),
                Box::new(DataType::Utf8)
            )),
            "cat"
        );
        assert_eq!(lamin_dtype(&DataType::Boolean), "bool");
        assert_eq!(lamin_dtype(&DataType::Date32), "date");
        assert_eq!(
            lamin_dtype(&DataType::Timestamp(
                arrow::datatypes::TimeUnit::Microsecond,
                None
            )),
            "datetime"
        );
        assert_eq!(
            lamin_dtype(&DataType::List(Arc::new(arrow::datatypes::Field::new(
                "x",
                DataType::Int32,
                true
            )))),
            "dict"
        );
    }

    #[test]
    fn csv_and_tsv_columns_are_inferred_and_rows_counted() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(
            &csv,
            "id,name,score,ok\n1,\"a, quoted\nline\",1.5,true\n2,b,,false\n",
        )
        .unwrap();
        let info = describe_local_table(&csv, ".csv").unwrap();
        assert_eq!(info.n_rows, 2);
        let dtypes: Vec<&str> = info.columns.iter().map(|c| c.dtype).collect();
        assert_eq!(dtypes, ["int", "str", "float", "bool"]);
        let tsv = dir.path().join("t.tsv");
        std::fs::write(&tsv, "gene\tcount\nCD4\t3\nCD8A\t5\n").unwrap();
        assert_eq!(describe_local_table(&tsv, ".tsv").unwrap().n_rows, 2);
        let ragged = dir.path().join("r.csv");
        std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
        assert!(describe_local_table(&ragged, ".csv").is_err());
    }
}
