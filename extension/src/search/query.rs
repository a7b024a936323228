//! lamin.search: candidate lookups in the search index, spelling correction,
//! search under an ontology term. What to look up is planned by
//! `lamin_core::search_plan`; this module runs the lookups.

use std::collections::HashSet;

use lamin_core::rank::TermKind;
use lamin_core::search_plan::{
    self as plan, Hit, PreparedQuery, TermRow, WordPlan, WordRange, CANDIDATES_PER_STRATEGY,
    FEW_MATCHES, SEARCH_LIMITS, TERM_ROW_COLUMNS as COLS, WALK_LIMIT, WALK_MATCHES,
    WORD_CANDIDATES,
};
use lamin_core::sql::quote_ident;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use super::{check_organism, load_registry, select_column, select_one, select_terms};
use crate::errors::{invalid_parameter, required};

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
        None => invalid_parameter(
            "search query must not be NULL",
            "pass the text to search for",
        ),
        Some(q) if q.trim().is_empty() => invalid_parameter(
            "search query must not be empty",
            "pass the text to search for",
        ),
        Some(q) => q,
    };
    let lim = required(lim, "lamin.search", "lim");
    if !SEARCH_LIMITS.contains(&lim) {
        invalid_parameter(
            format!(
                "lim must be between {} and {}, got {lim}",
                SEARCH_LIMITS.start(),
                SEARCH_LIMITS.end()
            ),
            "pass how many results to return",
        );
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

/// Search `registry` (or every searchable registry) for `query`: the best
/// `lim` hits, with a spelling-corrected second round when hits are scarce.
pub(super) fn run_search(
    query: &str,
    registry: Option<&str>,
    lim: usize,
    organism: Option<&str>,
) -> Vec<Hit> {
    let q = PreparedQuery::new(query);
    let variants = q.variants();
    let registries = registries_to_search(registry);
    let mut rows: Vec<TermRow> = Vec::new();
    for reg in &registries {
        rows.extend(fetch_candidates(&q, reg, organism, lim, true));
    }
    // The query spelt otherwise at letter/digit boundaries ("il6" finds
    // "IL-6"): terms equal to or starting with each spelling, and terms with
    // its words only when the query as typed found little (as for spelling
    // correction: the word lookups cost most). Terms already found are not
    // counted twice.
    if !variants.is_empty() {
        for v in &variants {
            for reg in &registries {
                add_new_rows(&mut rows, fetch_candidates(v, reg, organism, lim, false));
            }
        }
        if plan::wants_correction(plan::rank_rows(&q.text, &rows, lim).len(), lim) {
            for v in &variants {
                for reg in &registries {
                    add_new_rows(&mut rows, fetch_candidates(v, reg, organism, lim, true));
                }
            }
        }
    }
    // Ranked beyond lim: a broader name further down may take a narrower
    // term's place (general_first).
    let window = lim.max(plan::GENERAL_WINDOW);
    let mut hits = plan::rank_rows(&q.text, &rows, window);
    // Typo tolerance: when direct matches are scarce, search again with the
    // query's unknown words replaced by the closest known words, and rank the
    // new candidates against the original query.
    if plan::wants_correction(hits.len(), lim) {
        if let Some(fixed) = corrected_query(&q.norm, &registries) {
            let fixed = PreparedQuery::corrected(&fixed);
            for reg in &registries {
                rows.extend(fetch_candidates(&fixed, reg, organism, lim, true));
            }
            hits = plan::rank_rows(&q.text, &rows, window);
        }
    }
    plan::general_first(&q.text, hits, lim, ancestors_among)
}

/// Add the rows that are not among `rows` yet (same registry, record, kind and term).
fn add_new_rows(rows: &mut Vec<TermRow>, more: Vec<TermRow>) {
    let seen: HashSet<(String, String, i16, String)> = rows
        .iter()
        .map(|r| (r.registry.clone(), r.uid.clone(), r.kind, r.term.clone()))
        .collect();
    rows.extend(
        more.into_iter().filter(|r| {
            !seen.contains(&(r.registry.clone(), r.uid.clone(), r.kind, r.term.clone()))
        }),
    );
}

/// The uids of `ys` that are ancestors of `x` in its ontology (bionty.walk
/// upward), for general_first; none for a registry without a hierarchy.
fn ancestors_among(x: &Hit, ys: &[&Hit]) -> HashSet<String> {
    let has_hierarchy = select_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM bionty.ontology o WHERE o.entity = $1)",
        &[x.registry.as_str().into()],
        "hierarchy of a registry",
    )
    .unwrap_or(false);
    if !has_hierarchy {
        return HashSet::new();
    }
    let reg = load_registry(&x.registry);
    let Some(id_field) = reg.id_field.as_deref() else {
        return HashSet::new();
    };
    let Some(term_id) = select_one::<String>(
        &format!(
            "SELECT r.{}::text FROM {} r WHERE r.uid = $1",
            quote_ident(id_field),
            reg.table()
        ),
        &[x.uid.as_str().into()],
        "ontology id of a hit",
    ) else {
        return HashSet::new();
    };
    let uids: Vec<String> = ys.iter().map(|y| y.uid.clone()).collect();
    select_column::<String>(
        &format!(
            "SELECT t.uid FROM bionty.walk($1, true, $2) w
             JOIN lamin.search_term t ON t.record_id = w.record_id AND t.registry COLLATE \"C\" = $2 AND t.kind = {name}
             WHERE t.uid = ANY ($3)",
            name = TermKind::Name.code()
        ),
        &[term_id.into(), x.registry.as_str().into(), uids.into()],
        "ancestors among hits",
    )
    .into_iter()
    .collect()
}

/// Every searchable registry, or just the one named.
fn registries_to_search(registry: Option<&str>) -> Vec<String> {
    match registry {
        Some(name) => vec![name.to_string()],
        None => select_column(
            "SELECT name FROM lamin.registry ORDER BY name",
            &[],
            "searchable registries",
        ),
    }
}

/// Candidates of one registry: terms equal to the query, terms starting with
/// it, and (with `words`) terms containing its words (see
/// `search_plan::plan_words`).
fn fetch_candidates(
    q: &PreparedQuery,
    registry: &str,
    organism: Option<&str>,
    lim: usize,
    words: bool,
) -> Vec<TermRow> {
    let organism_filter = if organism.is_some() {
        " AND t.organism = $3"
    } else {
        ""
    };
    let limit = CANDIDATES_PER_STRATEGY;
    let mut rows = select_terms(
        &format!(
            "(SELECT {COLS} FROM lamin.search_term t WHERE t.term_fold = $1 AND t.registry COLLATE \"C\" = $2{organism_filter} LIMIT {limit})
             UNION ALL
             (SELECT {COLS} FROM lamin.search_term t
              WHERE t.registry = $2 AND t.term_norm >= $4 AND t.term_norm < $5{organism_filter} LIMIT {limit})"
        ),
        &[
            q.fold.as_str().into(),
            registry.into(),
            organism.map(str::to_string).into(),
            q.norm.as_str().into(),
            plan::prefix_end(&q.norm).into(),
        ],
    );
    if !words || plan::enough_strong_hits(&q.text, &rows, lim) {
        return rows;
    }
    let ranges = plan::word_ranges(&q.norm);
    let counts: Vec<i64> = ranges.iter().map(|r| word_count(registry, r)).collect();
    let organism_where = if organism.is_some() {
        " WHERE t.organism = $4"
    } else {
        ""
    };
    let range_args = |r: &WordRange| -> Vec<DatumWithOid<'static>> {
        vec![
            registry.to_string().into(),
            r.from.clone().into(),
            r.to.clone().into(),
            organism.map(str::to_string).into(),
        ]
    };
    match plan::plan_words(&ranges, &counts) {
        WordPlan::Nothing => {}
        WordPlan::Rare(few) => {
            let sql = format!(
                "SELECT {COLS} FROM (SELECT w.term_id FROM lamin.search_word w
                     WHERE w.registry = $1 AND w.word >= $2 AND w.word < $3
                     ORDER BY w.word, w.term_len LIMIT {WORD_CANDIDATES}) w
                 JOIN lamin.search_term t ON t.id = w.term_id{organism_where}"
            );
            for i in few {
                rows.extend(select_terms(&sql, &range_args(&ranges[i])));
            }
        }
        WordPlan::Walk(order) => {
            // Walk the rarest word's terms, shortest first, keeping those that
            // have every other word too (one index probe each; bounded, so a
            // query no term satisfies stays cheap).
            let mut args = range_args(&ranges[order[0]]);
            let mut others = String::new();
            for &i in &order[1..] {
                let n = args.len();
                others.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM lamin.search_word w2 WHERE w2.term_id = w.term_id AND w2.word >= ${} AND w2.word < ${})",
                    n + 1,
                    n + 2
                ));
                args.push(ranges[i].from.clone().into());
                args.push(ranges[i].to.clone().into());
            }
            let walk = |filter: &str, limit: i64| {
                format!(
                    "SELECT {COLS} FROM (
                         SELECT w.term_id FROM (SELECT w.term_id FROM lamin.search_word w
                                                WHERE w.registry = $1 AND w.word >= $2 AND w.word < $3
                                                ORDER BY w.word, w.term_len LIMIT {WALK_LIMIT}) w
                         WHERE true{filter} LIMIT {limit}) w
                     JOIN lamin.search_term t ON t.id = w.term_id{organism_where}"
                )
            };
            let found = select_terms(&walk(&others, WALK_MATCHES), &args);
            if found.is_empty() && !others.is_empty() {
                // No term has every word: the shortest terms with the rarest one.
                rows.extend(select_terms(&walk("", WORD_CANDIDATES), &args[..4]));
            } else {
                rows.extend(found);
            }
        }
    }
    rows
}

/// How many words of the registry fall in the range, counted up to
/// `FEW_MATCHES + 1`.
fn word_count(registry: &str, r: &WordRange) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM lamin.search_word w
         WHERE w.registry = $1 AND w.word >= $2 AND w.word < $3 LIMIT {}) x",
        FEW_MATCHES + 1
    );
    select_one::<i64>(
        &sql,
        &[
            registry.into(),
            r.from.as_str().into(),
            r.to.as_str().into(),
        ],
        "word match count",
    )
    .unwrap_or(0)
}

/// The query with each word that no readable term of `registries` has (and
/// long enough to be a typo) replaced by the closest word that one has, if
/// any changed. Words are seen through the caller's rights: a word of a
/// space the caller cannot read is neither known nor suggested.
fn corrected_query(norm: &str, registries: &[String]) -> Option<String> {
    plan::correct_words(
        norm,
        |w| {
            select_one::<bool>(
                "SELECT EXISTS (SELECT 1 FROM lamin.search_word w WHERE w.registry = ANY ($2) AND w.word = $1)",
                &[w.into(), registries.to_vec().into()],
                "known word",
            )
            .unwrap_or(false)
        },
        |w| {
            select_one::<String>(
                "SELECT lamin.search_closest_word($1, $2)",
                &[w.into(), registries.to_vec().into()],
                "closest word",
            )
        },
    )
}

/// uids of a term and its descendants (bionty.walk), in the registry that holds it.
fn subtree(under: &str, registry: Option<&str>) -> (String, HashSet<String>) {
    let reg: String = match registry {
        Some(r) => r.to_string(),
        None => select_one::<String>(
            "SELECT bionty.registry_of($1)",
            &[under.into()],
            "registry of a term",
        )
        .unwrap_or_else(|| {
            invalid_parameter(
                format!(
                    "unknown term {} for under: no ontology registry holds it",
                    lamin_core::sql::shown(under)
                ),
                "pass the ontology id of an imported term (e.g. 'CL:0000084'), or name its registry",
            )
        }),
    };
    let uids = select_column::<String>(
        &format!(
            "SELECT t.uid FROM lamin.search_term t
             WHERE t.registry = $2 AND t.kind = {id} AND t.term = $1
             UNION
             SELECT t.uid FROM bionty.walk($1, false, $2) w
             JOIN lamin.search_term t ON t.registry COLLATE \"C\" = $2 AND t.record_id = w.record_id AND t.kind = {name}",
            id = TermKind::Id.code(),
            name = TermKind::Name.code()
        ),
        &[under.into(), reg.as_str().into()],
        "subtree of a term",
    );
    (reg, uids.into_iter().collect())
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
    if plan::rank_subtree_whole(uids.len()) {
        let list: Vec<String> = uids.into_iter().collect();
        let rows = select_terms(
            &format!(
                "SELECT {COLS} FROM lamin.search_term t
                 WHERE t.registry = $1 AND t.uid = ANY($2) AND ($3::text IS NULL OR t.organism = $3)"
            ),
            &[reg.as_str().into(), list.into(), organism.map(str::to_string).into()],
        );
        return plan::rank_rows(query, &rows, lim);
    }
    let hits = run_search(query, Some(&reg), plan::SUBTREE_SEARCH_LIMIT, organism);
    plan::keep_under(hits, &uids, lim)
}
