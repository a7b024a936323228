//! The artifacts a `lamin query` names: `artifact('UID or key'[, 'slot'])`
//! and `collection('UID or key')` table functions, found in the SQL text by
//! its tokens (so that quotes and comments are understood) before DataFusion
//! plans it, then resolved against the database into table providers:
//! parquet and CSV/TSV read in place by ranged reads with projection and
//! predicate pushdown, an AnnData's obs and var (h5ad or zarr) by ranged
//! reads, MuData/SpatialData/DuckDB tables from a local copy.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, ScalarValue};
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;
use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Token, Tokenizer};
use tokio_postgres::Client;

use super::counting::ReadCounter;
use crate::artifacts::{locate_ready, Located};
use crate::error::DbError;
use crate::formats::{delimiter_of, has_slots, read_slot};
use crate::refused;
use crate::slicing::stored_frame;
use crate::storage::Storage;

/// A table function call of a query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// An artifact (uid, stem or key), and for AnnData-like ones a slot.
    Artifact { name: String, slot: Option<String> },
    /// A collection (uid, stem or key): its members as one table.
    Collection { name: String },
}

/// The table functions called in `sql`, each once, in order.
pub fn sources_in(sql: &str) -> anyhow::Result<Vec<Source>> {
    let tokens: Vec<Token> = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| refused!("the query cannot be read: {e}"))?
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut found: Vec<Source> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let Token::Word(word) = token else { continue };
        let function = word.value.to_ascii_lowercase();
        if word.quote_style.is_some()
            || !matches!(function.as_str(), "artifact" | "collection")
            || tokens.get(i + 1) != Some(&Token::LParen)
        {
            continue;
        }
        let mut args = Vec::new();
        let mut j = i + 2;
        loop {
            match tokens.get(j) {
                Some(Token::SingleQuotedString(s)) => args.push(s.clone()),
                Some(Token::Comma) => {}
                Some(Token::RParen) => break,
                _ => bail!(refused!(
                    "{function}(…) takes quoted strings: artifact('UID or key'), artifact('UID', 'var'), collection('UID or key')"
                )),
            }
            j += 1;
        }
        let source = match (function.as_str(), &args[..]) {
            ("artifact", [name]) => Source::Artifact {
                name: name.clone(),
                slot: None,
            },
            ("artifact", [name, slot]) => Source::Artifact {
                name: name.clone(),
                slot: Some(slot.clone()),
            },
            ("collection", [name]) => Source::Collection { name: name.clone() },
            _ => bail!(refused!(
                "{function}(…) takes {}: e.g. {}",
                if function == "artifact" {
                    "a uid or key and an optional slot"
                } else {
                    "a uid or key"
                },
                if function == "artifact" {
                    "artifact('atlas/cells.parquet') or artifact('UID', 'var')"
                } else {
                    "collection('UID')"
                }
            )),
        };
        if !found.contains(&source) {
            found.push(source);
        }
    }
    if found.is_empty() {
        bail!(refused!(
            "the query reads no artifact: name them with artifact('UID or key') or collection('UID or key'), e.g. SELECT count(*) FROM artifact('atlas/cells.parquet')"
        ));
    }
    Ok(found)
}

/// The file format DataFusion reads an artifact's bytes with, by suffix.
fn file_format(suffix: &str) -> Option<Arc<dyn FileFormat>> {
    if suffix == ".parquet" {
        return Some(Arc::new(ParquetFormat::default()));
    }
    delimiter_of(suffix).map(|d| {
        Arc::new(CsvFormat::default().with_has_header(true).with_delimiter(d))
            as Arc<dyn FileFormat>
    })
}

/// Resolves a query's sources: the tables it reads, the artifacts behind
/// them (inputs of the run), and the stores they are read through.
pub struct Resolver<'a> {
    client: &'a Client,
    ctx: &'a SessionContext,
    counter: ReadCounter,
    /// Storage root → the URL its (counting) store is registered under.
    stores: HashMap<String, String>,
    /// The uids of the artifacts read, in order.
    pub inputs: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub fn new(client: &'a Client, ctx: &'a SessionContext, counter: ReadCounter) -> Self {
        Resolver {
            client,
            ctx,
            counter,
            stores: HashMap::new(),
            inputs: Vec::new(),
        }
    }

    /// The URL of an artifact's bytes in the session: its storage's store is
    /// registered once, under `lamin://s<n>`, whatever its backend.
    fn table_url(&mut self, a: &Located) -> anyhow::Result<ListingTableUrl> {
        let storage = Storage::open(&a.root)?;
        let base = match self.stores.get(&a.root) {
            Some(url) => url.clone(),
            None => {
                let url = format!("lamin://s{}", self.stores.len());
                self.ctx.register_object_store(
                    &url::Url::parse(&url)?,
                    self.counter.wrap(storage.shared_store()),
                );
                self.stores.insert(a.root.clone(), url.clone());
                url
            }
        };
        let slash = if a.folder { "/" } else { "" };
        Ok(ListingTableUrl::parse(format!(
            "{base}/{}{slash}",
            storage.path(&a.object)
        ))?)
    }

    fn note_input(&mut self, uid: &str) {
        if !self.inputs.iter().any(|u| u == uid) {
            self.inputs.push(uid.to_string());
        }
    }

    /// A listing table over files of one format (an artifact, a parquet
    /// folder, a collection's members).
    async fn listing(
        &mut self,
        what: &str,
        members: &[Located],
    ) -> anyhow::Result<Arc<dyn TableProvider>> {
        let suffix = &members[0].suffix;
        let format = file_format(suffix).with_context(|| {
            refused!("{what}: lamin query reads parquet, CSV and TSV files, and AnnData, MuData and SpatialData tables; this is a {suffix:?} artifact")
        })?;
        if let Some(other) = members.iter().find(|m| &m.suffix != suffix) {
            bail!(refused!(
                "{what}: its members are {suffix:?} and {:?} files; a collection read as one table holds one format",
                other.suffix
            ));
        }
        let roots: std::collections::HashSet<&str> =
            members.iter().map(|m| m.root.as_str()).collect();
        if roots.len() > 1 {
            bail!(refused!(
                "{what}: its members are in {} storages; lamin query reads a collection from one storage",
                roots.len()
            ));
        }
        let urls = members
            .iter()
            .map(|m| self.table_url(m))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let options = ListingOptions::new(format).with_file_extension(suffix.clone());
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .infer_schema(&self.ctx.state())
            .await
            .with_context(|| format!("{what}: its schema cannot be read"))?;
        Ok(Arc::new(ListingTable::try_new(config)?))
    }

    /// The table of one source.
    pub async fn resolve(&mut self, source: &Source) -> anyhow::Result<Arc<dyn TableProvider>> {
        match source {
            Source::Artifact { name, slot } => {
                let a = locate_ready(self.client, name).await?;
                self.note_input(&a.uid);
                if !has_slots(&a.suffix, a.folder) {
                    if let Some(slot) = slot {
                        bail!(refused!(
                            "artifact {} is a {:?} file: slots ({slot:?}) are for AnnData, MuData, SpatialData and DuckDB",
                            a.uid,
                            a.suffix
                        ));
                    }
                    return self.listing(&format!("artifact {}", a.uid), &[a]).await;
                }
                let slot = slot.clone().unwrap_or_else(|| "obs".into());
                // An AnnData's obs and var are read by ranges where it is
                // stored (a few percent of a big file), never copied whole.
                if let Some(batch) = stored_frame(&a, &slot, &self.counter).await? {
                    return Ok(Arc::new(MemTable::try_new(
                        batch.schema(),
                        vec![vec![batch]],
                    )?));
                }
                let storage = Storage::open(&a.root)?;
                let suffix = a.suffix.clone();
                let batch = storage
                    .with_local_copy(&a.object, a.folder, |path: &Path| {
                        tokio::task::block_in_place(|| read_slot(path, &suffix, &slot))
                    })
                    .await
                    .with_context(|| format!("artifact {}", a.uid))?;
                Ok(Arc::new(MemTable::try_new(
                    batch.schema(),
                    vec![vec![batch]],
                )?))
            }
            Source::Collection { name } => {
                let rows = self
                    .client
                    .query(
                        "WITH c AS (
                             SELECT c.id, c.uid FROM lamin.collection c
                             WHERE c.branch_id <> -1 AND (c.uid = $1 OR (c.stem = $1 AND c.is_latest) OR c.key = $1)
                             ORDER BY c.uid = $1 DESC, c.is_latest DESC, c.id DESC LIMIT 1)
                         SELECT c.uid, a.uid FROM c
                         JOIN lamin.collection_artifact m ON m.collection_id = c.id
                         JOIN lamin.artifact a ON a.id = m.artifact_id
                         ORDER BY m.position, a.id",
                        &[name],
                    )
                    .await
                    .map_err(DbError)?;
                if rows.is_empty() {
                    bail!(refused!(
                        "no collection {name:?} with members you can read (a uid, a 16-character stem or a key)"
                    ));
                }
                let uid: String = rows[0].get(0);
                let mut members = Vec::with_capacity(rows.len());
                for row in &rows {
                    let a = locate_ready(self.client, row.get::<_, &str>(1)).await?;
                    self.note_input(&a.uid);
                    members.push(a);
                }
                self.listing(&format!("collection {uid}"), &members).await
            }
        }
    }
}

/// The `artifact` or `collection` table function of a session: the tables
/// resolved before planning, looked up by their arguments.
#[derive(Debug)]
pub struct Resolved {
    pub function: &'static str,
    pub tables: HashMap<Vec<String>, Arc<dyn TableProvider>>,
}

impl TableFunctionImpl for Resolved {
    fn call(&self, args: &[Expr]) -> datafusion::common::Result<Arc<dyn TableProvider>> {
        let mut key = Vec::with_capacity(args.len());
        for arg in args {
            match arg {
                Expr::Literal(ScalarValue::Utf8(Some(s)), _) => key.push(s.clone()),
                other => {
                    return plan_err!("{}(…) takes quoted strings, not {other}", self.function)
                }
            }
        }
        match self.tables.get(&key) {
            Some(table) => Ok(Arc::clone(table)),
            None => plan_err!("{}({key:?}) was not resolved", self.function),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_functions_are_found_by_their_tokens() {
        let found = sources_in(
            "SELECT a.x, c.y FROM artifact('atlas/cells.parquet') a -- artifact('not me')
             JOIN Collection('Abc123') c ON a.id = c.id
             JOIN artifact('UID', 'var') v ON true WHERE a.note = 'artifact(''x'')'
             UNION ALL SELECT 1, 2 FROM artifact('atlas/cells.parquet')",
        )
        .unwrap();
        assert_eq!(
            found,
            [
                Source::Artifact {
                    name: "atlas/cells.parquet".into(),
                    slot: None
                },
                Source::Collection {
                    name: "Abc123".into()
                },
                Source::Artifact {
                    name: "UID".into(),
                    slot: Some("var".into())
                },
            ]
        );
        for bad in [
            "SELECT * FROM artifact(42)",
            "SELECT * FROM artifact('a', 'b', 'c')",
            "SELECT * FROM collection()",
            "SELECT 1",
            "SELECT * FROM artifact('unterminated)",
        ] {
            assert!(sources_in(bad).is_err(), "{bad}");
        }
    }
}
