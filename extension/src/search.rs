//! search / validate / standardize / inspect: pgrx glue. Candidates come from
//! the lamin.search_term index (see sql/15_search.sql); ranking is the pure
//! `lamin_core::rank`; registry and field names are checked against the
//! catalog and quoted before they reach any SQL.

use std::collections::{HashMap, HashSet};

use lamin_core::rank::{self, Candidate, TermKind};
use pgrx::datum::{Array, DatumWithOid};
use pgrx::prelude::*;

use crate::errors::invalid_parameter;

/// Longest query used to look up candidates; longer input is cut (not refused).
const MAX_QUERY_CHARS: usize = 256;
/// Candidates fetched per lookup strategy.
const CANDIDATES_PER_STRATEGY: i64 = 1000;
/// Inputs that get a "did you mean" suggestion in one inspect call.
const MAX_SUGGESTIONS: usize = 1000;

/// Lower case, punctuation as single spaces: the form search matches on.
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn normalize_term(term: &str) -> String {
    rank::normalize(term)
}

/// A searchable registry's configuration (a row of lamin.registry).
struct Registry {
    name: String,
    name_field: String,
    organism_field: Option<String>,
    id_field: Option<String>,
    abbr_field: Option<String>,
    has_branch: bool,
}

impl Registry {
    fn table(&self) -> String {
        let (schema, table) = self
            .name
            .split_once('.')
            .expect("registry names are qualified");
        format!("{}.{}", quote_ident(schema), quote_ident(table))
    }

    /// The search_term kind that holds values of `field`, if any.
    fn kind_of(&self, field: &str) -> Option<i16> {
        if field == self.name_field {
            Some(0)
        } else if self.abbr_field.as_deref() == Some(field) {
            Some(2)
        } else if self.id_field.as_deref() == Some(field) {
            Some(3)
        } else {
            None
        }
    }

    /// SQL conditions (on alias r) for live records of the organism, with the
    /// organism as parameter `$n`.
    fn record_filter(&self, organism: Option<&str>, param: usize) -> String {
        let mut cond = String::new();
        if self.has_branch {
            cond.push_str(" AND r.branch_id <> -1");
        }
        if let (Some(_), Some(field)) = (organism, &self.organism_field) {
            cond.push_str(&format!(" AND r.{}::text = ${param}", quote_ident(field)));
        }
        cond
    }
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn spi_error(e: pgrx::spi::SpiError) -> ! {
    error!("lamin: internal query failed: {e}")
}

/// Look a registry up in lamin.registry; unknown names get an error listing the valid ones.
fn load_registry(name: &str) -> Registry {
    let found = Spi::connect(|client| {
        let rows = client
            .select(
                "SELECT r.name, r.name_field, r.organism_field, r.id_field, r.abbr_field,
                        EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.name::regclass
                                AND a.attname = 'branch_id' AND NOT a.attisdropped)
                 FROM lamin.registry r WHERE r.name = $1",
                None,
                &[name.into()],
            )
            .unwrap_or_else(|e| spi_error(e));
        rows.into_iter().next().map(|row| Registry {
            name: row.get::<String>(1).ok().flatten().unwrap_or_default(),
            name_field: row.get::<String>(2).ok().flatten().unwrap_or_default(),
            organism_field: row.get::<String>(3).ok().flatten(),
            id_field: row.get::<String>(4).ok().flatten(),
            abbr_field: row.get::<String>(5).ok().flatten(),
            has_branch: row.get::<bool>(6).ok().flatten().unwrap_or(false),
        })
    });
    found.unwrap_or_else(|| {
        let known = Spi::get_one::<String>(
            "SELECT string_agg(name, ', ' ORDER BY name) FROM lamin.registry",
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        invalid_parameter(format!(
            "unknown registry {}: searchable registries are {known}",
            shown(name)
        ))
    })
}

/// The field to compare against: the registry's name field by default, else a
/// text column of the registry (checked against the catalog).
fn resolve_field(reg: &Registry, field: Option<&str>) -> String {
    let Some(field) = field else {
        return reg.name_field.clone();
    };
    let text_fields: Vec<String> = Spi::connect(|client| {
        client
            .select(
                "SELECT a.attname::text FROM pg_attribute a
                 WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
                 ORDER BY a.attnum",
                None,
                &[reg.name.as_str().into()],
            )
            .unwrap_or_else(|e| spi_error(e))
            .into_iter()
            .filter_map(|row| row.get::<String>(1).ok().flatten())
            .collect()
    });
    if text_fields.iter().any(|f| f == field) {
        field.to_string()
    } else {
        invalid_parameter(format!(
            "unknown field {} of registry {}: its text fields are {}",
            shown(field),
            reg.name,
            text_fields.join(", ")
        ))
    }
}

/// Quote a user value for an error message, shortened.
fn shown(value: &str) -> String {
    let cut: String = value.chars().take(80).collect();
    let more = if cut.len() < value.len() { "…" } else { "" };
    format!("'{}{more}'", cut.replace('\'', "''"))
}

fn check_organism(reg: &Registry, organism: Option<&str>) {
    if organism.is_some() && reg.organism_field.is_none() {
        invalid_parameter(format!(
            "registry {} has no organism: leave the organism argument NULL",
            reg.name
        ));
    }
}

// ---------------------------------------------------------------- search

/// Candidate rows for a query: exact, prefix, word and contains lookups, and
/// (when asked) typo-tolerant trigram lookups.
fn fetch_candidates(
    fold: &str,
    norm: &str,
    registry: Option<&str>,
    organism: Option<&str>,
    fuzzy: bool,
) -> Vec<(String, String, String, i16, String, bool)> {
    let mut filters = String::new();
    if registry.is_some() {
        filters.push_str(" AND t.registry = $3");
    }
    if organism.is_some() {
        filters.push_str(" AND t.organism = $4");
    }
    let cols = "t.registry, t.uid, t.name, t.kind, t.term, t.deprecated";
    let trgm = trgm_schema();
    let limit = CANDIDATES_PER_STRATEGY;
    let mut parts = Vec::new();
    if fuzzy {
        // Word similarity finds a misspelt word inside a longer name.
        parts.push(format!(
            "(SELECT {cols} FROM lamin.search_term t WHERE $2 OPERATOR({trgm}.<%) t.term_norm {filters}
              ORDER BY $2 OPERATOR({trgm}.<<->) t.term_norm LIMIT 200)"
        ));
    } else {
        parts.push(format!("(SELECT {cols} FROM lamin.search_term t WHERE t.term_fold = $1 {filters} LIMIT {limit})"));
        if !norm.is_empty() {
            parts.push(format!(
                "(SELECT {cols} FROM lamin.search_term t WHERE t.term_norm >= $2 AND t.term_norm < $2 || chr(1114111) {filters} LIMIT {limit})"
            ));
        }
        if norm.chars().count() >= 3 {
            // Words inside a term; the trigram index serves LIKE with >= 3 characters.
            parts.push(format!("(SELECT {cols} FROM lamin.search_term t WHERE t.term_norm LIKE $5 {filters} LIMIT {limit})"));
        }
    }
    let sql = parts.join(" UNION ALL ");
    let like = format!(
        "%{}%",
        norm.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let args: Vec<DatumWithOid> = vec![
        fold.into(),
        norm.into(),
        registry.map(str::to_string).into(),
        organism.map(str::to_string).into(),
        like.into(),
    ];
    Spi::connect(|client| {
        client
            .select(sql.as_str(), None, &args)
            .unwrap_or_else(|e| spi_error(e))
            .into_iter()
            .filter_map(|row| {
                Some((
                    row.get::<String>(1).ok()??,
                    row.get::<String>(2).ok()??,
                    row.get::<String>(3).ok()??,
                    row.get::<i16>(4).ok()??,
                    row.get::<String>(5).ok()??,
                    row.get::<bool>(6).ok()??,
                ))
            })
            .collect()
    })
}

/// The schema pg_trgm lives in (CREATE EXTENSION lamin CASCADE puts it in
/// lamin; an existing install stays where it is), quoted.
fn trgm_schema() -> String {
    let schema = Spi::get_one::<String>(
        "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'",
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| error!("lamin: extension pg_trgm is missing"));
    quote_ident(&schema)
}

fn term_kind(kind: i16) -> TermKind {
    match kind {
        0 => TermKind::Name,
        1 => TermKind::Synonym,
        2 => TermKind::Abbreviation,
        _ => TermKind::Id,
    }
}

/// One search result.
pub(crate) struct Hit {
    pub registry: String,
    pub uid: String,
    pub name: String,
    pub matched: String,
    pub score: f32,
}

/// Rank the candidates of a query; a record is identified by registry + uid.
fn rank_rows(
    query: &str,
    rows: &[(String, String, String, i16, String, bool)],
    lim: usize,
) -> Vec<Hit> {
    let keys: Vec<String> = rows
        .iter()
        .map(|r| format!("{}\u{1}{}", r.0, r.1))
        .collect();
    let candidates: Vec<Candidate> = rows
        .iter()
        .zip(&keys)
        .map(|(r, key)| Candidate {
            uid: key,
            name: &r.2,
            term: &r.4,
            kind: term_kind(r.3),
            deprecated: r.5,
        })
        .collect();
    rank::rank(query, &candidates, lim)
        .into_iter()
        .map(|r| {
            let (registry, uid) = r.uid.split_once('\u{1}').expect("key built above");
            Hit {
                registry: registry.to_string(),
                uid: uid.to_string(),
                name: r.name,
                matched: format!("{}: {}", r.kind.as_str(), r.matched),
                score: r.score as f32,
            }
        })
        .collect()
}

pub(crate) fn run_search(
    query: &str,
    registry: Option<&str>,
    lim: usize,
    organism: Option<&str>,
) -> Vec<Hit> {
    let query: String = query.chars().take(MAX_QUERY_CHARS).collect();
    let fold = rank::fold(&query);
    let norm = rank::normalize(&query);
    let mut rows = fetch_candidates(&fold, &norm, registry, organism, false);
    let mut hits = rank_rows(&query, &rows, lim);
    // Typo tolerance only when the direct matches leave room.
    if hits.len() < lim && norm.chars().count() >= 4 {
        rows.extend(fetch_candidates(&fold, &norm, registry, organism, true));
        hits = rank_rows(&query, &rows, lim);
    }
    hits
}

/// Search registries for `query`: exact names first, then synonyms, prefixes,
/// words, and typo-tolerant matches. `registry` (e.g. 'bionty.cell_type')
/// restricts the search; NULL searches every registry in lamin.registry.
#[pg_extern(stable, parallel_safe, name = "search")]
fn search(
    query: Option<&str>,
    registry: default!(Option<&str>, "NULL"),
    lim: default!(i32, 20),
    organism: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(registry, String),
        name!(uid, String),
        name!(name, String),
        name!(matched, String),
        name!(score, f32),
    ),
> {
    let query = match query {
        None => invalid_parameter("search query must not be NULL"),
        Some(q) if q.trim().is_empty() => invalid_parameter("search query must not be empty"),
        Some(q) => q,
    };
    if !(1..=10_000).contains(&lim) {
        invalid_parameter(format!("lim must be between 1 and 10000, got {lim}"));
    }
    if let Some(name) = registry {
        let reg = load_registry(name);
        check_organism(&reg, organism);
    }
    let hits = run_search(query, registry, lim as usize, organism);
    TableIterator::new(
        hits.into_iter()
            .map(|h| (h.registry, h.uid, h.name, h.matched, h.score)),
    )
}

// ------------------------------------------------------- validate & friends

/// Distinct non-NULL values, in first-seen order.
fn distinct_values<'a>(vals: &[Option<&'a str>]) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    vals.iter()
        .flatten()
        .copied()
        .filter(|v| seen.insert(*v))
        .collect()
}

/// The subset of `values` that exist exactly in `field` of the registry.
fn exact_matches(
    reg: &Registry,
    field: &str,
    values: &[&str],
    organism: Option<&str>,
) -> HashSet<String> {
    if values.is_empty() {
        return HashSet::new();
    }
    let sql = format!(
        "SELECT DISTINCT r.{f}::text FROM {table} r WHERE r.{f}::text = ANY($1){filter}",
        f = quote_ident(field),
        table = reg.table(),
        filter = reg.record_filter(organism, 2)
    );
    let list: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    Spi::connect(|client| {
        client
            .select(
                sql.as_str(),
                None,
                &[list.into(), organism.map(str::to_string).into()],
            )
            .unwrap_or_else(|e| spi_error(e))
            .into_iter()
            .filter_map(|row| row.get::<String>(1).ok().flatten())
            .collect()
    })
}

/// Exact, case-sensitive membership of each value in the registry's field;
/// NULL stays NULL.
#[pg_extern(stable, parallel_safe)]
fn validate(
    registry: &str,
    vals: Option<Array<'_, &str>>,
    field: default!(Option<&str>, "NULL"),
    organism: default!(Option<&str>, "NULL"),
) -> Option<Vec<Option<bool>>> {
    let reg = load_registry(registry);
    let field = resolve_field(&reg, field);
    check_organism(&reg, organism);
    let array = vals?;
    let vals: Vec<Option<&str>> = array.iter().collect();
    let found = exact_matches(&reg, &field, &distinct_values(&vals), organism);
    Some(vals.iter().map(|v| v.map(|v| found.contains(v))).collect())
}

/// How one input value standardizes.
#[derive(Debug, Clone, PartialEq)]
enum Mapping {
    Exact,
    /// Unique case-insensitive or synonym match.
    Mapped(String),
    /// Several records claim the value (their field values, first-created first).
    Ambiguous(Vec<String>),
    Unmapped,
}

/// Map distinct values: exact, then case-insensitive on the field, then any
/// other term (synonyms, abbreviations, ids, names) of a record.
fn map_values(
    reg: &Registry,
    field: &str,
    values: &[&str],
    organism: Option<&str>,
) -> HashMap<String, Mapping> {
    let exact = exact_matches(reg, field, values, organism);
    let mut out: HashMap<String, Mapping> = HashMap::new();
    let mut rest: Vec<String> = Vec::new();
    for v in values {
        if exact.contains(*v) {
            out.insert(v.to_string(), Mapping::Exact);
        } else {
            rest.push(rank::fold(v));
        }
    }
    if rest.is_empty() {
        return out;
    }
    // (folded term, tier, field value of the record, record id)
    let field_kind = reg.kind_of(field);
    let sql = format!(
        "SELECT t.term_fold::text, CASE WHEN t.kind = $3 THEN 1 ELSE 2 END, r.{f}::text, r.id
         FROM lamin.search_term t JOIN {table} r ON r.id = t.record_id
         WHERE t.registry = $1 AND t.term_fold = ANY($2) AND r.{f} IS NOT NULL{filter}
         ORDER BY r.id",
        f = quote_ident(field),
        table = reg.table(),
        filter = reg.record_filter(organism, 4)
    );
    let rows: Vec<(String, i32, String)> = Spi::connect(|client| {
        client
            .select(
                sql.as_str(),
                None,
                &[
                    reg.name.as_str().into(),
                    rest.clone().into(),
                    field_kind.unwrap_or(-1).into(),
                    organism.map(str::to_string).into(),
                ],
            )
            .unwrap_or_else(|e| spi_error(e))
            .into_iter()
            .filter_map(|row| {
                Some((
                    row.get::<String>(1).ok()??,
                    row.get::<i32>(2).ok()??,
                    row.get::<String>(3).ok()??,
                ))
            })
            .collect()
    });
    // Per folded value: the best tier's distinct field values, in record order.
    let mut by_fold: HashMap<&str, (i32, Vec<&str>)> = HashMap::new();
    for (fold, tier, value) in &rows {
        let entry = by_fold.entry(fold.as_str()).or_insert((*tier, Vec::new()));
        if *tier < entry.0 {
            *entry = (*tier, Vec::new());
        }
        if *tier == entry.0 && !entry.1.contains(&value.as_str()) {
            entry.1.push(value);
        }
    }
    for v in values {
        if out.contains_key(*v) {
            continue;
        }
        let mapping = match by_fold.get(rank::fold(v).as_str()) {
            None => Mapping::Unmapped,
            Some((_, targets)) if targets.len() == 1 => Mapping::Mapped(targets[0].to_string()),
            Some((_, targets)) => {
                Mapping::Ambiguous(targets.iter().map(|t| t.to_string()).collect())
            }
        };
        out.insert(v.to_string(), mapping);
    }
    out
}

/// Map values to the registry's canonical field values: exact, then
/// case-insensitive, then synonym. Unmapped values come back unchanged; so do
/// ambiguous ones, unless `keep_first` picks the first-created candidate.
#[pg_extern(stable, parallel_safe)]
fn standardize(
    registry: &str,
    vals: Option<Array<'_, &str>>,
    field: default!(Option<&str>, "NULL"),
    organism: default!(Option<&str>, "NULL"),
    keep_first: default!(bool, false),
) -> Option<Vec<Option<String>>> {
    let reg = load_registry(registry);
    let field = resolve_field(&reg, field);
    check_organism(&reg, organism);
    let array = vals?;
    let vals: Vec<Option<&str>> = array.iter().collect();
    let mapped = map_values(&reg, &field, &distinct_values(&vals), organism);
    Some(
        vals.iter()
            .map(|v| {
                v.map(|v| match mapped.get(v) {
                    Some(Mapping::Mapped(to)) => to.clone(),
                    Some(Mapping::Ambiguous(options)) if keep_first => options[0].clone(),
                    _ => v.to_string(),
                })
            })
            .collect(),
    )
}

/// One row per distinct input: whether it validates, what it standardizes to,
/// and for values that do neither, the closest record ("did you mean") or the
/// candidates of an ambiguous synonym.
#[pg_extern(stable, parallel_safe)]
fn inspect(
    registry: &str,
    vals: Option<Array<'_, &str>>,
    field: default!(Option<&str>, "NULL"),
    organism: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(value, Option<String>),
        name!(validated, bool),
        name!(standardized, Option<String>),
        name!(suggestion, Option<String>),
    ),
> {
    let reg = load_registry(registry);
    let field = resolve_field(&reg, field);
    check_organism(&reg, organism);
    let vals: Vec<Option<&str>> = vals
        .as_ref()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let distinct = distinct_values(&vals);
    let mapped = map_values(&reg, &field, &distinct, organism);
    let mut suggestions_left = MAX_SUGGESTIONS;
    let mut rows = Vec::with_capacity(distinct.len());
    for v in distinct {
        let row = match mapped.get(v) {
            Some(Mapping::Exact) => (Some(v.to_string()), true, Some(v.to_string()), None),
            Some(Mapping::Mapped(to)) => (Some(v.to_string()), false, Some(to.clone()), None),
            Some(Mapping::Ambiguous(options)) => (
                Some(v.to_string()),
                false,
                None,
                Some(format!(
                    "ambiguous: {}",
                    options
                        .iter()
                        .map(|o| shown(o))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )),
            ),
            Some(Mapping::Unmapped) | None => {
                let suggestion = if suggestions_left > 0 {
                    suggestions_left -= 1;
                    suggest(&reg, &field, v, organism)
                } else {
                    None
                };
                (Some(v.to_string()), false, None, suggestion)
            }
        };
        rows.push(row);
    }
    if vals.iter().any(Option::is_none) {
        rows.push((None, false, None, None));
    }
    TableIterator::new(rows)
}

/// The field value of the best search hit for `value` in the registry.
fn suggest(reg: &Registry, field: &str, value: &str, organism: Option<&str>) -> Option<String> {
    let hit = run_search(value, Some(&reg.name), 1, organism)
        .into_iter()
        .next()?;
    if field == reg.name_field {
        return Some(hit.name);
    }
    let sql = format!(
        "SELECT r.{f}::text FROM {table} r WHERE r.uid = $1",
        f = quote_ident(field),
        table = reg.table()
    );
    Spi::get_one_with_args::<String>(&sql, &[hit.uid.into()])
        .ok()
        .flatten()
}
