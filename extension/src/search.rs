//! search / validate / standardize / inspect: pgrx glue. Candidates come from
//! the lamin.search_term index (see sql/15_search.sql); ranking is the pure
//! `lamin_core::rank`; registry and field names are checked against the
//! catalog and quoted before they reach any SQL.

use std::collections::{HashMap, HashSet};

use lamin_core::rank::{self, Candidate, TermKind};
use pgrx::datum::{Array, DatumWithOid};
use pgrx::prelude::*;

use crate::errors::{invalid_parameter, required};

/// Longest query used to look up candidates; longer input is cut (not refused).
const MAX_QUERY_CHARS: usize = 256;
/// Candidates fetched per lookup strategy.
const CANDIDATES_PER_STRATEGY: i64 = 300;
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

/// A candidate term: registry, uid, name, kind, term, deprecated.
type Row = (String, String, String, i16, String, bool);

const ROW_COLS: &str = "t.registry, t.uid, t.name, t.kind, t.term, t.deprecated";

fn collect_rows(sql: &str, args: &[DatumWithOid]) -> Vec<Row> {
    Spi::connect(|client| {
        client
            .select(sql, None, args)
            .unwrap_or_else(|e| spi_error(e))
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

/// The smallest string greater than every string starting with `prefix`
/// (C collation), for index range scans.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// Candidates of one registry: terms equal to the query, terms starting with
/// it, and terms containing its words (shortest terms first; every word whose
/// matches are few, else the rarest word). The last query word also matches
/// as a word prefix ("alveolar macro").
fn fetch_candidates(
    query: &str,
    fold: &str,
    norm: &str,
    registry: &str,
    organism: Option<&str>,
    lim: usize,
) -> Vec<Row> {
    let organism_filter = if organism.is_some() {
        " AND t.organism = $3"
    } else {
        ""
    };
    let limit = CANDIDATES_PER_STRATEGY;
    let mut rows = collect_rows(
        &format!(
            "(SELECT {ROW_COLS} FROM lamin.search_term t WHERE t.term_fold = $1 AND t.registry = $2{organism_filter} LIMIT {limit})
             UNION ALL
             (SELECT {ROW_COLS} FROM lamin.search_term t
              WHERE t.registry = $2 AND t.term_norm >= $4 AND t.term_norm < $5{organism_filter} LIMIT {limit})"
        ),
        &[
            fold.into(),
            registry.into(),
            organism.map(str::to_string).into(),
            norm.into(),
            prefix_end(norm).into(),
        ],
    );
    // Enough terms that equal or start with the query: words can add nothing better.
    let strong = rank_rows(query, &rows, lim)
        .iter()
        .filter(|h| h.tier >= rank::Tier::NamePrefixOrWords)
        .count();
    if strong >= lim {
        return rows;
    }
    let words: Vec<&str> = norm
        .split(' ')
        .filter(|w| !w.is_empty() && !is_stop_word(w))
        .collect();
    let ranges: Vec<(String, String)> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let end = if i + 1 == words.len() {
                prefix_end(w)
            } else {
                format!("{w}\u{1}")
            };
            (w.to_string(), end)
        })
        .collect();
    let count_sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM lamin.search_word w
         WHERE w.registry = $1 AND w.word >= $2 AND w.word < $3 LIMIT {}) x",
        FEW_MATCHES + 1
    );
    let counts: Vec<i64> = ranges
        .iter()
        .map(|(from, to)| {
            Spi::get_one_with_args::<i64>(
                &count_sql,
                &[registry.into(), from.as_str().into(), to.as_str().into()],
            )
            .ok()
            .flatten()
            .unwrap_or(0)
        })
        .collect();
    let few: Vec<usize> = (0..ranges.len())
        .filter(|&i| counts[i] <= FEW_MATCHES)
        .collect();
    let organism_where = if organism.is_some() {
        " WHERE t.organism = $4"
    } else {
        ""
    };
    if !few.is_empty() {
        // Rare words: all their terms.
        let sql = format!(
            "SELECT {ROW_COLS} FROM (SELECT w.term_id FROM lamin.search_word w
                 WHERE w.registry = $1 AND w.word >= $2 AND w.word < $3
                 ORDER BY w.word, w.term_len LIMIT {WORD_CANDIDATES}) w
             JOIN lamin.search_term t ON t.id = w.term_id{organism_where}"
        );
        for i in few {
            let (from, to) = &ranges[i];
            rows.extend(collect_rows(
                &sql,
                &[
                    registry.into(),
                    from.as_str().into(),
                    to.as_str().into(),
                    organism.map(str::to_string).into(),
                ],
            ));
        }
    } else if !ranges.is_empty() {
        // Only common words: walk the rarest one's terms, shortest first, and
        // with two or more words keep those that also have the second rarest
        // (bounded walk, so a query no term satisfies stays cheap).
        // Counts are capped, so among equally common words prefer longer ones
        // (in names, long words are the rarer ones: "dendritic" before "cell").
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        order.sort_by_key(|&i| (counts[i], std::cmp::Reverse(ranges[i].0.chars().count())));
        // Every other word must be in the term too (one index probe each).
        let (from, to) = &ranges[order[0]];
        let mut args: Vec<DatumWithOid> = vec![
            registry.into(),
            from.as_str().into(),
            to.as_str().into(),
            organism.map(str::to_string).into(),
        ];
        let mut others = String::new();
        for &i in &order[1..] {
            let n = args.len();
            others.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM lamin.search_word w2 WHERE w2.term_id = w.term_id AND w2.word >= ${} AND w2.word < ${})",
                n + 1,
                n + 2
            ));
            args.push(ranges[i].0.as_str().into());
            args.push(ranges[i].1.as_str().into());
        }
        let walk = |filter: &str, limit: i64| {
            format!(
                "SELECT {ROW_COLS} FROM (
                     SELECT w.term_id FROM (SELECT w.term_id FROM lamin.search_word w
                                            WHERE w.registry = $1 AND w.word >= $2 AND w.word < $3
                                            ORDER BY w.word, w.term_len LIMIT {WALK_LIMIT}) w
                     WHERE true{filter} LIMIT {limit}) w
                 JOIN lamin.search_term t ON t.id = w.term_id{organism_where}"
            )
        };
        let found = collect_rows(&walk(&others, WALK_MATCHES), &args);
        if found.is_empty() && !others.is_empty() {
            // No term has every word: the shortest terms with the rarest one.
            rows.extend(collect_rows(&walk("", WORD_CANDIDATES), &args[..4]));
        } else {
            rows.extend(found);
        }
    }
    rows
}

/// Words whose matches are at most this many are fetched in full.
const FEW_MATCHES: i64 = 300;
/// Terms fetched for a common word (the shortest ones).
const WORD_CANDIDATES: i64 = 300;
/// How far the walk over a common word's terms goes looking for a second word,
/// and how many terms with both words end it.
const WALK_LIMIT: i64 = 2_000;
const WALK_MATCHES: i64 = 60;

/// Words too common to help find anything (one list, shared with the index triggers).
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn is_stop_word(word: &str) -> bool {
    rank::is_stop_word(word)
}

/// The query with each word that no readable term of `registries` has (and
/// long enough to be a typo) replaced by the closest word that one has, if
/// any changed. Words are seen through the caller's rights: a word of a
/// space the caller cannot read is neither known nor suggested.
fn corrected_query(norm: &str, registries: &[String]) -> Option<String> {
    let known_sql = "SELECT EXISTS (SELECT 1 FROM lamin.search_word w WHERE w.registry = ANY ($2) AND w.word = $1)";
    let closest_sql = "SELECT lamin.search_closest_word($1, $2)";
    let mut changed = false;
    let words: Vec<String> = norm
        .split(' ')
        .map(|w| {
            if w.chars().count() < rank::MIN_FUZZY_WORD
                || Spi::get_one_with_args::<bool>(
                    known_sql,
                    &[w.into(), registries.to_vec().into()],
                )
                .ok()
                .flatten()
                .unwrap_or(false)
            {
                return w.to_string();
            }
            match Spi::get_one_with_args::<String>(
                closest_sql,
                &[w.into(), registries.to_vec().into()],
            )
            .ok()
            .flatten()
            {
                Some(fix) => {
                    changed = true;
                    fix
                }
                None => w.to_string(),
            }
        })
        .collect();
    changed.then(|| words.join(" "))
}

/// Every searchable registry, or just the one named.
fn registries_to_search(registry: Option<&str>) -> Vec<String> {
    match registry {
        Some(name) => vec![name.to_string()],
        None => Spi::connect(|client| {
            client
                .select("SELECT name FROM lamin.registry ORDER BY name", None, &[])
                .unwrap_or_else(|e| spi_error(e))
                .filter_map(|row| row.get::<String>(1).ok().flatten())
                .collect()
        }),
    }
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
    pub tier: rank::Tier,
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
                tier: r.tier,
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
    let registries = registries_to_search(registry);
    let mut rows: Vec<Row> = Vec::new();
    for reg in &registries {
        rows.extend(fetch_candidates(&query, &fold, &norm, reg, organism, lim));
    }
    let mut hits = rank_rows(&query, &rows, lim);
    // Typo tolerance: when direct matches are scarce, search again with the
    // query's unknown words replaced by the closest known words, and rank the
    // new candidates against the original query.
    if hits.len() < lim.min(3) {
        if let Some(fixed) = corrected_query(&norm, &registries) {
            for reg in &registries {
                rows.extend(fetch_candidates(
                    &fixed,
                    &rank::fold(&fixed),
                    &fixed,
                    reg,
                    organism,
                    lim,
                ));
            }
            hits = rank_rows(&query, &rows, lim);
        }
    }
    hits
}

/// Subtrees up to this many records are ranked whole; larger ones filter the
/// usual candidates.
const SUBTREE_RANK_WHOLE: usize = 20_000;

/// uids of a term and its descendants (bionty.walk), in the registry that holds it.
fn subtree(under: &str, registry: Option<&str>) -> (String, HashSet<String>) {
    let reg: String = match registry {
        Some(r) => r.to_string(),
        None => Spi::get_one_with_args::<String>("SELECT bionty.registry_of($1)", &[under.into()])
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                invalid_parameter(format!(
                    "unknown term {} for under: no ontology registry holds it",
                    shown(under)
                ))
            }),
    };
    let uids = Spi::connect(|client| {
        client
            .select(
                "SELECT t.uid FROM lamin.search_term t
                 WHERE t.registry = $2 AND t.kind = 3 AND t.term = $1
                 UNION
                 SELECT t.uid FROM bionty.walk($1, false, $2) w
                 JOIN lamin.search_term t ON t.registry = $2 AND t.record_id = w.record_id AND t.kind = 0",
                None,
                &[under.into(), reg.as_str().into()],
            )
            .unwrap_or_else(|e| spi_error(e))
            .filter_map(|row| row.get::<String>(1).ok().flatten())
            .collect()
    });
    (reg, uids)
}

/// Search within a term and its descendants: small subtrees rank all their
/// terms, large ones keep the usual candidates that fall inside.
fn search_under(
    query: &str,
    under: &str,
    registry: Option<&str>,
    lim: usize,
    organism: Option<&str>,
) -> Vec<Hit> {
    let (reg, uids) = subtree(under, registry);
    if uids.len() <= SUBTREE_RANK_WHOLE {
        let list: Vec<String> = uids.into_iter().collect();
        let rows = collect_rows(
            &format!(
                "SELECT {ROW_COLS} FROM lamin.search_term t
                 WHERE t.registry = $1 AND t.uid = ANY($2) AND ($3::text IS NULL OR t.organism = $3)"
            ),
            &[reg.as_str().into(), list.into(), organism.map(str::to_string).into()],
        );
        return rank_rows(query, &rows, lim);
    }
    let mut hits = run_search(query, Some(&reg), SUBTREE_RANK_WHOLE.min(10_000), organism);
    hits.retain(|h| uids.contains(&h.uid));
    hits.truncate(lim);
    hits
}

/// Search registries for `query`: exact names first, then synonyms, prefixes,
/// words, and typo-tolerant matches. `registry` (e.g. 'bionty.cell_type')
/// restricts the search; NULL searches every registry in lamin.registry.
/// `under` (an ontology id) keeps only that term and its descendants.
#[pg_extern(stable, parallel_safe, name = "search")]
fn search(
    query: Option<&str>,
    registry: default!(Option<&str>, "NULL"),
    lim: default!(Option<i32>, 20),
    organism: default!(Option<&str>, "NULL"),
    under: default!(Option<&str>, "NULL"),
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
    let lim = required(lim, "lamin.search", "lim");
    if !(1..=10_000).contains(&lim) {
        invalid_parameter(format!("lim must be between 1 and 10000, got {lim}"));
    }
    if let Some(name) = registry {
        let reg = load_registry(name);
        check_organism(&reg, organism);
    }
    let hits = match under {
        Some(term) => search_under(query, term, registry, lim as usize, organism),
        None => run_search(query, registry, lim as usize, organism),
    };
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

/// Above this many distinct inputs (and a quarter of the registry), reading
/// the whole field once beats looking every value up.
const BULK_LOOKUP_MIN: usize = 10_000;

/// Whether `n` lookups are better served by reading the registry whole.
fn read_whole_registry(reg: &Registry, n: usize) -> bool {
    if n < BULK_LOOKUP_MIN {
        return false;
    }
    let rows = Spi::get_one_with_args::<f32>(
        "SELECT reltuples FROM pg_class WHERE oid = $1::regclass",
        &[reg.name.as_str().into()],
    )
    .ok()
    .flatten()
    .unwrap_or(0.0);
    n as f64 > rows as f64 / 4.0
}

/// Every value of `field` in the registry (live records of the organism).
fn field_values(reg: &Registry, field: &str, organism: Option<&str>) -> HashSet<String> {
    let sql = format!(
        "SELECT DISTINCT r.{f}::text FROM {table} r WHERE r.{f} IS NOT NULL{filter}",
        f = quote_ident(field),
        table = reg.table(),
        filter = reg.record_filter(organism, 1)
    );
    Spi::connect(|client| {
        client
            .select(sql.as_str(), None, &[organism.map(str::to_string).into()])
            .unwrap_or_else(|e| spi_error(e))
            .filter_map(|row| row.get::<String>(1).ok().flatten())
            .collect()
    })
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
    let whole = read_whole_registry(reg, values.len());
    let sql = format!(
        "SELECT DISTINCT r.{f}::text FROM {table} r WHERE {cond}{filter}",
        f = quote_ident(field),
        table = reg.table(),
        cond = if whole {
            format!("r.{} IS NOT NULL", quote_ident(field))
        } else {
            format!("r.{}::text = ANY($1)", quote_ident(field))
        },
        filter = reg.record_filter(organism, 2)
    );
    let list: Vec<String> = if whole {
        Vec::new()
    } else {
        values.iter().map(|v| v.to_string()).collect()
    };
    let found: HashSet<String> = Spi::connect(|client| {
        client
            .select(
                sql.as_str(),
                None,
                &[list.into(), organism.map(str::to_string).into()],
            )
            .unwrap_or_else(|e| spi_error(e))
            .filter_map(|row| row.get::<String>(1).ok().flatten())
            .collect()
    });
    if whole {
        let wanted: HashSet<&str> = values.iter().copied().collect();
        found
            .into_iter()
            .filter(|v| wanted.contains(v.as_str()))
            .collect()
    } else {
        found
    }
}

/// Values per validate / standardize / inspect call: a bound on the memory a
/// single call may take from the server.
const MAX_VALUES: usize = 1_000_000;

fn check_value_count(n: usize) {
    if n > MAX_VALUES {
        invalid_parameter(format!(
            "too many values: {n} (at most {MAX_VALUES} per call; pass the distinct values, or split the list)"
        ));
    }
}

/// Exact, case-sensitive membership of each value in the registry's field;
/// NULL stays NULL.
#[pg_extern(stable, parallel_safe)]
fn validate(
    registry: Option<&str>,
    vals: Option<Array<'_, &str>>,
    field: default!(Option<&str>, "NULL"),
    organism: default!(Option<&str>, "NULL"),
) -> Option<Vec<Option<bool>>> {
    let reg = load_registry(required(registry, "lamin.validate", "registry"));
    let field = resolve_field(&reg, field);
    check_organism(&reg, organism);
    let array = vals?;
    check_value_count(array.len());
    let vals: Vec<Option<&str>> = array.iter().collect();
    // Many values: read the field once and test each value against it, with
    // no de-duplication pass over the input.
    let found = if read_whole_registry(&reg, vals.len()) {
        field_values(&reg, &field, organism)
    } else {
        exact_matches(&reg, &field, &distinct_values(&vals), organism)
    };
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
    let whole = read_whole_registry(reg, rest.len());
    let sql = format!(
        "SELECT t.term_fold::text, CASE WHEN t.kind = $3 THEN 1 ELSE 2 END, r.{f}::text, r.id
         FROM lamin.search_term t JOIN {table} r ON r.id = t.record_id
         WHERE t.registry = $1 AND {cond} AND r.{f} IS NOT NULL{filter}
         ORDER BY r.id",
        f = quote_ident(field),
        table = reg.table(),
        cond = if whole {
            "true"
        } else {
            "t.term_fold = ANY($2)"
        },
        filter = reg.record_filter(organism, 4)
    );
    if whole {
        rest.clear();
    }
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
    registry: Option<&str>,
    vals: Option<Array<'_, &str>>,
    field: default!(Option<&str>, "NULL"),
    organism: default!(Option<&str>, "NULL"),
    keep_first: default!(bool, false),
) -> Option<Vec<Option<String>>> {
    let reg = load_registry(required(registry, "lamin.standardize", "registry"));
    let field = resolve_field(&reg, field);
    check_organism(&reg, organism);
    let array = vals?;
    check_value_count(array.len());
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
    registry: Option<&str>,
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
    let reg = load_registry(required(registry, "lamin.inspect", "registry"));
    let field = resolve_field(&reg, field);
    check_organism(&reg, organism);
    if let Some(a) = vals.as_ref() {
        check_value_count(a.len());
    }
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

/// The closest existing record to a new name, if it is close but not equal (a
/// typo-tier match): the guard's "did you mean" check. Cheaper than a full
/// search: two index lookups (terms sharing the first characters, and terms
/// containing the name's longest word), ranked in Rust.
#[pg_extern(stable, parallel_safe)]
fn similar_record(
    registry: &str,
    name: &str,
) -> TableIterator<'static, (name!(uid, String), name!(name, String))> {
    let norm = rank::normalize(name);
    if norm.chars().count() < rank::MIN_FUZZY_WORD {
        return TableIterator::new(Vec::new());
    }
    let head: String = norm.chars().take(3).collect();
    let longest = norm
        .split(' ')
        .max_by_key(|w| w.chars().count())
        .unwrap_or_default()
        .to_string();
    let rows = collect_rows(
        &format!(
            "(SELECT {ROW_COLS} FROM lamin.search_term t
              WHERE t.registry = $1 AND t.term_norm >= $2 AND t.term_norm < $3 LIMIT 300)
             UNION ALL
             (SELECT {ROW_COLS} FROM (SELECT w.term_id FROM lamin.search_word w
                                      WHERE w.registry = $1 AND w.word = $4 ORDER BY w.term_len LIMIT 300) w
              JOIN lamin.search_term t ON t.id = w.term_id)"
        ),
        &[registry.into(), head.as_str().into(), prefix_end(&head).into(), longest.as_str().into()],
    );
    let best = rank_rows(name, &rows, 1)
        .into_iter()
        .find(|h| h.tier == rank::Tier::Fuzzy)
        .map(|h| (h.uid, h.name));
    TableIterator::new(best)
}
