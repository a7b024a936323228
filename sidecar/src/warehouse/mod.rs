//! The bridge between artifacts and the warehouse: `load` (a parquet
//! artifact into a new table), `export` (a query's rows into a parquet
//! artifact) and `curate` (a column's values checked against a registry).

pub mod curate;
pub mod export;
pub mod load;
pub mod pg_binary;
