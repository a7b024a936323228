//! Loading parsed terms and genes: binary COPY into the staging tables of
//! bionty.start_import(), then bionty.finish_import() merges them, all in one
//! transaction, so a failed import leaves the registry as it was.

use std::collections::HashSet;

use anyhow::Context;
use futures_util::pin_mut;
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use super::term::{Gene, Term};

/// Which source version is being imported.
#[derive(Debug, Clone)]
pub struct SourceMeta {
    /// `bionty.cell_type`, or `bionty.gene`.
    pub entity: String,
    pub organism: Option<String>,
    pub name: String,
    pub version: String,
    pub url: String,
    pub checksum: String,
    pub description: Option<String>,
}

/// What the parser thread sends: terms, then End, or Failed. A channel that
/// closes without End (a panic) also counts as a failure, so a broken file can
/// never commit the terms read before the break.
#[derive(Debug)]
pub enum Feed {
    Term(Term),
    End,
    Failed(anyhow::Error),
}

/// What an import did.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub terms: i64,
    pub inserted: i64,
    pub updated: i64,
    pub deprecated: i64,
    pub edges: i64,
    pub edges_outside: i64,
    /// Terms of the file left out because their id prefix belongs elsewhere.
    pub skipped_prefix: u64,
}

/// Whether this exact file was imported as this version before.
pub async fn already_imported(client: &Client, meta: &SourceMeta) -> anyhow::Result<bool> {
    let row = client
        .query_one(
            "SELECT bionty.imported_source($1, $2, $3, $4, $5)",
            &[
                &meta.entity,
                &meta.name,
                &meta.version,
                &meta.checksum,
                &meta.organism,
            ],
        )
        .await
        .context("cannot look up earlier imports (is the lamin extension installed?)")?;
    Ok(row.get::<_, Option<i64>>(0).is_some())
}

/// The id prefixes an ontology registry holds, or an error naming the known registries.
pub async fn registry_prefixes(client: &Client, entity: &str) -> anyhow::Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT entity, id_prefixes FROM bionty.ontology ORDER BY entity",
            &[],
        )
        .await
        .context("cannot read bionty.ontology (is the lamin extension installed?)")?;
    for row in &rows {
        if row.get::<_, String>(0) == entity {
            return Ok(row.get(1));
        }
    }
    let known: Vec<String> = rows
        .iter()
        .map(|r| {
            r.get::<_, String>(0)
                .trim_start_matches("bionty.")
                .to_string()
        })
        .collect();
    anyhow::bail!(
        "unknown ontology registry {entity}: use one of {}",
        known.join(", ")
    )
}

/// Create the staging tables in the import's transaction and open a binary
/// COPY into one of them.
async fn start_staging(
    tx: &tokio_postgres::Transaction<'_>,
    copy_sql: &str,
    types: &[Type],
) -> anyhow::Result<BinaryCopyInWriter> {
    tx.execute("SELECT bionty.start_import()", &[]).await?;
    let sink = tx.copy_in(copy_sql).await?;
    Ok(BinaryCopyInWriter::new(sink, types))
}

/// Stream terms from `rx` into the registry. `prefixes` (empty = all) keeps
/// terms whose id prefix is listed; `on_term` is called per staged term,
/// `on_merge` once all are staged, before the merge (minutes for NCBITaxon).
pub async fn import_terms(
    client: &mut Client,
    meta: &SourceMeta,
    prefixes: &[String],
    mut rx: mpsc::Receiver<Feed>,
    mut on_term: impl FnMut(u64),
    on_merge: impl FnOnce(u64),
) -> anyhow::Result<Outcome> {
    let tx = client.transaction().await?;
    let writer = start_staging(
        &tx,
        "COPY pg_temp.import_term (ontology_id, name, synonyms, description, abbr, deprecated, replaced_by, parents, relations)
         FROM STDIN (FORMAT binary)",
        &[
            Type::TEXT,
            Type::TEXT,
            Type::TEXT_ARRAY,
            Type::TEXT,
            Type::TEXT,
            Type::BOOL,
            Type::TEXT,
            Type::TEXT_ARRAY,
            Type::TEXT_ARRAY,
        ],
    )
    .await?;
    pin_mut!(writer);
    let wanted: HashSet<&str> = prefixes.iter().map(String::as_str).collect();
    let mut outcome = Outcome::default();
    let mut staged = 0u64;
    loop {
        let term = match rx.recv().await {
            Some(Feed::Term(term)) => term,
            Some(Feed::End) => break,
            Some(Feed::Failed(e)) => return Err(e),
            None => anyhow::bail!("the parser stopped without finishing"),
        };
        if !wanted.is_empty() && !wanted.contains(term.prefix()) {
            outcome.skipped_prefix += 1;
            continue;
        }
        if let Some(field) = term.field_with_nul() {
            anyhow::bail!(
                "term {}: its {field} holds a NUL byte, which Postgres text cannot store",
                term.ontology_id.replace('\0', "\\0")
            );
        }
        let (parents, relations): (Vec<&str>, Vec<&str>) = term
            .parents
            .iter()
            .map(|(p, r)| (p.as_str(), r.as_str()))
            .unzip();
        let row: [&(dyn ToSql + Sync); 9] = [
            &term.ontology_id,
            &term.name,
            &term.synonyms,
            &term.description,
            &term.abbr,
            &term.deprecated,
            &term.replaced_by,
            &parents,
            &relations,
        ];
        writer
            .as_mut()
            .write(&row)
            .await
            .with_context(|| format!("cannot stage term {}", term.ontology_id))?;
        staged += 1;
        on_term(staged);
    }
    writer.finish().await.context("staging the terms failed")?;
    if staged == 0 {
        anyhow::bail!(
            "no terms to import{}",
            if outcome.skipped_prefix > 0 {
                format!(
                    ": all {} terms have id prefixes other than {} (pass --prefix to choose)",
                    outcome.skipped_prefix,
                    prefixes.join(", ")
                )
            } else {
                String::new()
            }
        );
    }
    on_merge(staged);
    let row = tx
        .query_one(
            "SELECT terms, inserted, updated, deprecated, edges, edges_outside
             FROM bionty.finish_import($1, $2, $3, $4, $5, $6)",
            &[
                &meta.entity,
                &meta.name,
                &meta.version,
                &meta.url,
                &meta.checksum,
                &meta.description,
            ],
        )
        .await
        .context("merging the terms failed")?;
    tx.commit().await.context("committing the import failed")?;
    outcome.terms = row.get(0);
    outcome.inserted = row.get(1);
    outcome.updated = row.get(2);
    outcome.deprecated = row.get(3);
    outcome.edges = row.get(4);
    outcome.edges_outside = row.get(5);
    Ok(outcome)
}

/// Load the genes of one organism.
pub async fn import_genes(
    client: &mut Client,
    meta: &SourceMeta,
    genes: impl Iterator<Item = &Gene>,
) -> anyhow::Result<Outcome> {
    let tx = client.transaction().await?;
    let writer = start_staging(
        &tx,
        "COPY pg_temp.import_gene (ensembl_gene_id, symbol, ncbi_gene_ids, hgnc_id, mgi_id, biotype, synonyms, description)
         FROM STDIN (FORMAT binary)",
        &[
            Type::TEXT,
            Type::TEXT,
            Type::TEXT_ARRAY,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT_ARRAY,
            Type::TEXT,
        ],
    )
    .await?;
    pin_mut!(writer);
    for g in genes {
        let row: [&(dyn ToSql + Sync); 8] = [
            &g.ensembl_gene_id,
            &g.symbol,
            &g.ncbi_gene_ids,
            &g.hgnc_id,
            &g.mgi_id,
            &g.biotype,
            &g.synonyms,
            &g.description,
        ];
        writer
            .as_mut()
            .write(&row)
            .await
            .with_context(|| format!("cannot stage gene {}", g.ensembl_gene_id))?;
    }
    writer.finish().await.context("staging the genes failed")?;
    let row = tx
        .query_one(
            "SELECT terms, inserted, updated, deprecated FROM bionty.finish_gene_import($1, $2, $3, $4, $5, $6)",
            &[&meta.organism, &meta.name, &meta.version, &meta.url, &meta.checksum, &meta.description],
        )
        .await
        .context("merging the genes failed")?;
    tx.commit().await.context("committing the import failed")?;
    Ok(Outcome {
        terms: row.get(0),
        inserted: row.get(1),
        updated: row.get(2),
        deprecated: row.get(3),
        ..Outcome::default()
    })
}
