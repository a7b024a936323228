//! `lamin query`: SQL over artifacts with Apache DataFusion. The query names
//! its tables with `artifact('UID or key'[, 'slot'])` and
//! `collection('UID or key')`; parquet and CSV/TSV are read where they are
//! stored, by ranged reads of only the columns and row groups (and, with
//! filters pushed down, pages) the query needs; AnnData, MuData and
//! SpatialData tables from a local copy. The artifacts read become inputs of
//! the run, when one is given.

pub mod counting;
pub mod sources;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures_util::StreamExt;
use tokio_postgres::Client;

use crate::refused;
use crate::runs::{reading_for_run, record_input};
use counting::ReadCounter;
use sources::{sources_in, Resolved, Resolver, Source};

/// A query, and the run that reads its artifacts.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub sql: String,
    /// The run (uid) whose inputs the artifacts read become.
    pub run: Option<String>,
}

/// What a query read and returned.
#[derive(Debug, Clone)]
pub struct QueryOutcome {
    /// The artifacts read (uids), in the order the query names them.
    pub inputs: Vec<String>,
    /// Bytes read from storages by ranged reads (an h5ad's obs and var
    /// included; local copies of zarr stores, MuData and the like are not
    /// counted), and in how many requests.
    pub bytes_read: u64,
    pub requests: u64,
    pub rows_out: u64,
}

/// A DataFusion session as lamin queries use it: filters pushed into the
/// parquet scans (pages skipped by their statistics, rows decoded late).
fn session() -> SessionContext {
    let mut config = SessionConfig::new().with_information_schema(false);
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.pushdown_filters = true;
    parquet.reorder_filters = true;
    SessionContext::new_with_config(config)
}

/// Run a query, streaming its batches to `sink`. `client` reads the
/// artifacts' records (a standby will do); `recorder` records them as inputs
/// of the run (the primary).
pub async fn query(
    client: &Client,
    recorder: &Client,
    request: &QueryRequest,
    mut sink: impl FnMut(&RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<QueryOutcome> {
    let sources = sources_in(&request.sql)?;
    reading_for_run(recorder, request.run.as_deref()).await?;
    let ctx = session();
    let counter = ReadCounter::default();
    let mut resolver = Resolver::new(client, &ctx, counter.clone());
    let mut artifacts: HashMap<Vec<String>, Arc<dyn datafusion::catalog::TableProvider>> =
        HashMap::new();
    let mut collections = HashMap::new();
    for source in &sources {
        let table = resolver.resolve(source).await?;
        match source {
            Source::Artifact { name, slot } => {
                let key = std::iter::once(name.clone()).chain(slot.clone()).collect();
                artifacts.insert(key, table);
            }
            Source::Collection { name } => {
                collections.insert(vec![name.clone()], table);
            }
        }
    }
    let inputs = resolver.inputs.clone();
    ctx.register_udtf(
        "artifact",
        Arc::new(Resolved {
            function: "artifact",
            tables: artifacts,
        }),
    );
    ctx.register_udtf(
        "collection",
        Arc::new(Resolved {
            function: "collection",
            tables: collections,
        }),
    );
    // Queries only: no COPY TO, INSERT, CREATE, SET, … (they would write
    // through the storages' stores, past lamin's rules).
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = ctx
        .sql_with_options(&request.sql, read_only)
        .await
        .map_err(|e| {
            refused!("the query cannot be planned (lamin query runs SELECT queries only): {e}")
        })?;
    let mut stream = frame.execute_stream().await?;
    let mut rows_out = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows_out += batch.num_rows() as u64;
        if batch.num_rows() > 0 {
            sink(&batch)?;
        }
    }
    // The artifacts read become inputs of the run (lamin.get records them).
    if request.run.is_some() {
        for uid in &inputs {
            record_input(recorder, uid).await?;
        }
    }
    Ok(QueryOutcome {
        inputs,
        bytes_read: counter.bytes(),
        requests: counter.requests(),
        rows_out,
    })
}
