//! The lamin sidecar as a library: the byte work behind the SQL functions
//! and the CLI verbs. Two thin front-ends use it, both in the `lamin` binary:
//! the CLI (`src/cli/`, clap structs only there) and the job worker
//! (`worker/`, which turns job rows into the same requests).
//!
//! Layers, each depending only on those below it:
//! - `worker/` — claiming jobs, leases, dispatch by kind, the daemon loop.
//! - `artifacts/`, `warehouse/`, `validation/`, `import/`, `records`, `mesh/`, `lamindb/` — the
//!   work: save, get, register, stage, verify, delete and sweep; load,
//!   export, curate; validation of datasets against schemas; ontology and
//!   gene imports; sheets of records from and to files; `mesh/` (new
//!   instances, transfers between instances) and `lamindb/` (moving in from
//!   LaminDB).
//!   Functions take a database client and a request struct and return typed
//!   results.
//! - `query/`, `slicing/` — SQL over artifacts (DataFusion) and slices of
//!   AnnData, both read where the bytes are stored.
//! - `formats/` — what files hold: parquet, CSV/TSV, AnnData (h5ad, zarr).
//! - `storage/` — bytes in a storage root through object_store, and local files.
//! - `db`, `error`, `progress` — connections, error classification, progress.

pub mod artifacts;
pub mod db;
pub mod error;
pub mod formats;
pub mod import;
pub mod lamindb;
pub mod listing;
pub mod mesh;
pub mod progress;
pub mod query;
pub mod records;
pub mod replica;
pub mod runs;
pub mod slicing;
pub mod status;
pub mod storage;
pub mod validation;
pub mod warehouse;
pub mod worker;
