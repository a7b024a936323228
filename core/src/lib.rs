//! Pure logic of lamin, free of Postgres and I/O so that it can be unit-tested
//! with plain `cargo test` and shared by the extension and the sidecar.

pub mod compat;
pub mod content;
pub mod key;
pub mod object;
pub mod rank;
pub mod search_plan;
pub mod sql;
pub mod storage_root;
pub mod uid;

/// The version of the lamin code base (extension, sidecar and CLI share it).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
