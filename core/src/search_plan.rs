//! Planning of search, validate, standardize, inspect and similar_record:
//! everything those functions decide without the database. The extension
//! runs the queries (index range scans over `lamin.search_term` and
//! `lamin.search_word`) and hands the rows back here; ranking itself is
//! [`crate::rank`].

use std::collections::{HashMap, HashSet};

use crate::rank::{self, Candidate, TermKind, Tier};
use crate::sql::{quote_ident, shown};

/// Longest query used to look up candidates; longer input is cut (not refused).
pub const MAX_QUERY_CHARS: usize = 256;
/// Candidates fetched per lookup strategy (equal terms, terms with the prefix).
pub const CANDIDATES_PER_STRATEGY: i64 = 300;
/// Words whose matches are at most this many are fetched in full.
pub const FEW_MATCHES: i64 = 300;
/// Terms fetched for a common word (the shortest ones).
pub const WORD_CANDIDATES: i64 = 300;
/// How far the walk over a common word's terms goes looking for a second word,
/// and how many terms with both words end it.
pub const WALK_LIMIT: i64 = 2_000;
pub const WALK_MATCHES: i64 = 60;
/// Subtrees up to this many records are ranked whole; larger ones filter the
/// usual candidates.
pub const SUBTREE_RANK_WHOLE: usize = 20_000;
/// Candidates a search under a large subtree ranks before keeping those inside.
pub const SUBTREE_SEARCH_LIMIT: usize = 10_000;
/// Inputs that get a "did you mean" suggestion in one inspect call.
pub const MAX_SUGGESTIONS: usize = 1000;
/// Above this many distinct inputs (and a quarter of the registry), reading
/// the whole field once beats looking every value up.
pub const BULK_LOOKUP_MIN: usize = 10_000;
/// Values per validate / standardize / inspect call: a bound on the memory a
/// single call may take from the server.
pub const MAX_VALUES: usize = 1_000_000;
/// Terms fetched per lookup of similar_record (prefix, longest word).
pub const SIMILAR_CANDIDATES: i64 = 300;
/// Allowed values of search's `lim`.
pub const SEARCH_LIMITS: std::ops::RangeInclusive<i32> = 1..=10_000;

/// The smallest string greater than every string starting with `prefix`
/// (C collation), for index range scans.
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// The end of the range of exactly `word` among words (C collation): the
/// next string after it.
pub fn word_end(word: &str) -> String {
    format!("{word}\u{1}")
}

/// A searchable registry's configuration (a row of lamin.registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// Qualified table name, e.g. `lamin.ulabel`.
    pub name: String,
    pub name_field: String,
    pub organism_field: Option<String>,
    pub id_field: Option<String>,
    pub abbr_field: Option<String>,
    /// Whether the table has a branch_id (trash is branch -1).
    pub has_branch: bool,
}

impl Registry {
    /// The quoted table name.
    pub fn table(&self) -> String {
        match self.name.split_once('.') {
            Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
            None => quote_ident(&self.name),
        }
    }

    /// The search_term kind that holds values of `field`, if any.
    pub fn kind_of(&self, field: &str) -> Option<TermKind> {
        if field == self.name_field {
            Some(TermKind::Name)
        } else if self.abbr_field.as_deref() == Some(field) {
            Some(TermKind::Abbreviation)
        } else if self.id_field.as_deref() == Some(field) {
            Some(TermKind::Id)
        } else {
            None
        }
    }

    /// SQL conditions (on alias r) for live records of the organism, with the
    /// organism as parameter `$param`.
    pub fn record_filter(&self, organism: Option<&str>, param: usize) -> String {
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

/// A query as the lookups use it: cut to [`MAX_QUERY_CHARS`], its folded
/// (exact, case-insensitive) and normalized (prefix, words) forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedQuery {
    pub text: String,
    pub fold: String,
    pub norm: String,
}

impl PreparedQuery {
    pub fn new(query: &str) -> PreparedQuery {
        let text: String = query.chars().take(MAX_QUERY_CHARS).collect();
        PreparedQuery {
            fold: rank::fold(&text),
            norm: rank::normalize(&text),
            text,
        }
    }

    /// A corrected query (already normalized): its own fold, the same text.
    pub fn corrected(norm: &str) -> PreparedQuery {
        PreparedQuery {
            text: norm.to_string(),
            fold: rank::fold(norm),
            norm: norm.to_string(),
        }
    }

    /// The query's other spellings at letter/digit boundaries ("il6" →
    /// "il 6"; see [`rank::letter_digit_variants`]): candidates are looked up
    /// for each too, and ranked against the query as typed.
    pub fn variants(&self) -> Vec<PreparedQuery> {
        rank::letter_digit_variants(&self.norm)
            .iter()
            .map(|v| PreparedQuery::corrected(v))
            .collect()
    }
}

/// The range `[from, to)` of `lamin.search_word.word` one query word matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordRange {
    pub word: String,
    pub from: String,
    pub to: String,
}

/// The word ranges of a normalized query: its words less stop words, each
/// matched whole, but the last one also as a word prefix ("alveolar macro").
pub fn word_ranges(norm: &str) -> Vec<WordRange> {
    let words: Vec<&str> = norm
        .split(' ')
        .filter(|w| !w.is_empty() && !rank::is_stop_word(w))
        .collect();
    words
        .iter()
        .enumerate()
        .map(|(i, w)| WordRange {
            word: w.to_string(),
            from: w.to_string(),
            to: if i + 1 == words.len() {
                prefix_end(w)
            } else {
                word_end(w)
            },
        })
        .collect()
}

/// How the terms containing the query's words are fetched, given how many
/// matches each word range has (capped at `FEW_MATCHES + 1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordPlan {
    /// No words to look up.
    Nothing,
    /// Rare words (at most [`FEW_MATCHES`] matches): all their terms, range by range.
    Rare(Vec<usize>),
    /// Only common words: walk the terms of `order[0]` shortest first, keeping
    /// those that also have every other word of `order` (rarest first); if
    /// none has them all, the shortest terms of `order[0]` alone.
    Walk(Vec<usize>),
}

/// Plan the word lookups: every word whose matches are few, else a walk over
/// the rarest word. Counts are capped, so among equally common words the
/// longer one counts as rarer (in names, long words are the rarer ones:
/// "dendritic" before "cell").
pub fn plan_words(ranges: &[WordRange], counts: &[i64]) -> WordPlan {
    assert_eq!(ranges.len(), counts.len(), "one count per word range");
    if ranges.is_empty() {
        return WordPlan::Nothing;
    }
    let few: Vec<usize> = (0..ranges.len())
        .filter(|&i| counts[i] <= FEW_MATCHES)
        .collect();
    if !few.is_empty() {
        return WordPlan::Rare(few);
    }
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (counts[i], std::cmp::Reverse(ranges[i].word.chars().count())));
    WordPlan::Walk(order)
}

/// One candidate term as fetched from lamin.search_term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermRow {
    pub registry: String,
    pub uid: String,
    pub name: String,
    /// The stored kind code (see [`TermKind::code`]).
    pub kind: i16,
    pub term: String,
    pub deprecated: bool,
}

/// The columns of lamin.search_term (alias t) a [`TermRow`] is read from, in order.
pub const TERM_ROW_COLUMNS: &str = "t.registry, t.uid, t.name, t.kind, t.term, t.deprecated";

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub tier: Tier,
    /// The kind of the matched term.
    pub kind: TermKind,
    pub registry: String,
    pub uid: String,
    pub name: String,
    /// The matched term with its kind's label, e.g. "synonym: T cell".
    pub matched: String,
    pub score: f32,
}

/// Rank candidate terms of a query; a record is identified by registry + uid.
/// A code no kind has ranks as an id (the table's CHECK admits none).
pub fn rank_rows(query: &str, rows: &[TermRow], lim: usize) -> Vec<Hit> {
    let keys: Vec<String> = rows
        .iter()
        .map(|r| format!("{}\u{1}{}", r.registry, r.uid))
        .collect();
    let candidates: Vec<Candidate> = rows
        .iter()
        .zip(&keys)
        .map(|(r, key)| Candidate {
            uid: key,
            name: &r.name,
            term: &r.term,
            kind: TermKind::from_code(r.kind).unwrap_or(TermKind::Id),
            deprecated: r.deprecated,
        })
        .collect();
    rank::rank(query, &candidates, lim)
        .into_iter()
        .map(|r| {
            let (registry, uid) = r.uid.split_once('\u{1}').expect("key built above");
            Hit {
                tier: r.tier,
                kind: r.kind,
                registry: registry.to_string(),
                uid: uid.to_string(),
                name: r.name,
                matched: format!("{}: {}", r.kind.as_str(), r.matched),
                score: r.score as f32,
            }
        })
        .collect()
}

/// Hits a search ranks before [`general_first`] keeps the first `lim`: broader
/// names may rank further down than the narrower terms they yield to.
pub const GENERAL_WINDOW: usize = 200;
/// Synonym hits [`general_first`] checks for broader names (one hierarchy
/// walk each).
pub const GENERAL_CHECKS: usize = 3;

/// Whether a name begins with the query's words and goes on ("skin of body"
/// for "skin"; not "skin" itself, not "skinny").
pub fn name_begins_with_words(query_norm: &str, name: &str) -> bool {
    let name = rank::normalize(name);
    !query_norm.is_empty()
        && name.starts_with(query_norm)
        && name[query_norm.len()..].starts_with(' ')
}

/// General terms first. A hit found through a synonym or abbreviation equal
/// to the query (UBERON "zone of skin", exact synonym "skin") yields its place
/// to a hit of the same registry whose name begins with the query's words and
/// that is its ancestor in the ontology ("skin of body"): the broader term the
/// query names, which the narrower one only borrows the word from. Ranks are
/// otherwise kept. `hits` are ranked best first (more than `lim`, see
/// [`GENERAL_WINDOW`]); `ancestors_among(x, ys)` answers which of the ys
/// (uids) are ancestors of x (none in a registry without a hierarchy). At
/// most [`GENERAL_CHECKS`] hits are checked. Returns the first `lim`.
pub fn general_first(
    query: &str,
    mut hits: Vec<Hit>,
    lim: usize,
    mut ancestors_among: impl FnMut(&Hit, &[&Hit]) -> HashSet<String>,
) -> Vec<Hit> {
    let norm = rank::normalize(query);
    let mut checks = 0;
    let mut i = 0;
    while i < hits.len().min(lim) && checks < GENERAL_CHECKS {
        let x = &hits[i];
        if x.tier == Tier::ExactOther
            && matches!(x.kind, TermKind::Synonym | TermKind::Abbreviation)
        {
            let ys: Vec<usize> = (i + 1..hits.len())
                .filter(|&j| {
                    hits[j].registry == x.registry
                        && hits[j].tier == Tier::NamePrefixOrWords
                        && name_begins_with_words(&norm, &hits[j].name)
                })
                .collect();
            if !ys.is_empty() {
                checks += 1;
                let refs: Vec<&Hit> = ys.iter().map(|&j| &hits[j]).collect();
                let ancestors = ancestors_among(x, &refs);
                if let Some(&j) = ys.iter().find(|&&j| ancestors.contains(&hits[j].uid)) {
                    let mut y = hits.remove(j);
                    y.tier = hits[i].tier;
                    y.score = hits[i].score;
                    hits.insert(i, y);
                    i += 1;
                }
            }
        }
        i += 1;
    }
    hits.truncate(lim);
    hits
}

/// Whether the terms equal to or starting with the query already give `lim`
/// strong hits (name prefix or better), so words can add nothing better.
pub fn enough_strong_hits(query: &str, rows: &[TermRow], lim: usize) -> bool {
    rank_rows(query, rows, lim)
        .iter()
        .filter(|h| h.tier >= Tier::NamePrefixOrWords)
        .count()
        >= lim
}

/// Whether direct matches are scarce enough to search again with a
/// spelling-corrected query.
pub fn wants_correction(hits: usize, lim: usize) -> bool {
    hits < lim.min(3)
}

/// The query with each word that is unknown (and long enough to be a typo)
/// replaced by the closest known word, if any word changed. `known` and
/// `closest` look words up (through the caller's rights).
pub fn correct_words(
    norm: &str,
    mut known: impl FnMut(&str) -> bool,
    mut closest: impl FnMut(&str) -> Option<String>,
) -> Option<String> {
    let mut changed = false;
    let words: Vec<String> = norm
        .split(' ')
        .map(|w| {
            if w.chars().count() < rank::MIN_FUZZY_WORD || known(w) {
                return w.to_string();
            }
            match closest(w) {
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

/// Whether a subtree of `n` records is ranked whole (else the usual search
/// is filtered to it).
pub fn rank_subtree_whole(n: usize) -> bool {
    n <= SUBTREE_RANK_WHOLE
}

/// The hits inside the subtree, at most `lim`.
pub fn keep_under(mut hits: Vec<Hit>, uids: &HashSet<String>, lim: usize) -> Vec<Hit> {
    hits.retain(|h| uids.contains(&h.uid));
    hits.truncate(lim);
    hits
}

/// What similar_record looks up for a new name: terms starting with its
/// first three characters and terms containing its longest word; `None` when
/// the name is too short to be a typo of anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimilarLookup {
    pub head: String,
    pub head_end: String,
    pub longest_word: String,
}

pub fn similar_lookup(name: &str) -> Option<SimilarLookup> {
    let norm = rank::normalize(name);
    if norm.chars().count() < rank::MIN_FUZZY_WORD {
        return None;
    }
    let head: String = norm.chars().take(3).collect();
    let longest_word = norm
        .split(' ')
        .max_by_key(|w| w.chars().count())
        .unwrap_or_default()
        .to_string();
    Some(SimilarLookup {
        head_end: prefix_end(&head),
        head,
        longest_word,
    })
}

/// The closest record to a new name if it is a typo-tier match (close, not
/// equal): (uid, name).
pub fn similar_pick(name: &str, rows: &[TermRow]) -> Option<(String, String)> {
    rank_rows(name, rows, 1)
        .into_iter()
        .find(|h| h.tier == Tier::Fuzzy)
        .map(|h| (h.uid, h.name))
}

// ------------------------------------------------- validate & friends

/// Distinct non-NULL values, in first-seen order.
pub fn distinct_values<'a>(vals: &[Option<&'a str>]) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    vals.iter()
        .flatten()
        .copied()
        .filter(|v| seen.insert(*v))
        .collect()
}

/// Whether `n` lookups are better served by reading a registry of about
/// `rows` rows (pg_class.reltuples) whole.
pub fn read_whole(n: usize, rows: f32) -> bool {
    n >= BULK_LOOKUP_MIN && n as f64 > rows as f64 / 4.0
}

/// How one input value standardizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    Exact,
    /// Unique case-insensitive or synonym match.
    Mapped(String),
    /// Several records claim the value (their field values, first-created first).
    Ambiguous(Vec<String>),
    Unmapped,
}

/// The values that are not exactly in the field, folded: what the term
/// lookup of [`map_values`] needs.
pub fn folds_to_look_up(values: &[&str], exact: &HashSet<String>) -> Vec<String> {
    values
        .iter()
        .filter(|v| !exact.contains(**v))
        .map(|v| rank::fold(v))
        .collect()
}

/// A term that matched a folded input: the term's fold, its kind code and
/// the field value of its record. Rows come in record order (first created
/// first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermMatch {
    pub fold: String,
    pub kind: i16,
    pub value: String,
}

/// Map distinct values: exact (in `exact`), then case-insensitive on the
/// field (a term of the field's own kind), then any other term (synonyms,
/// abbreviations, ids, names) of a record. Of several records, the best tier's
/// distinct field values make the value ambiguous.
pub fn map_values(
    values: &[&str],
    exact: &HashSet<String>,
    field_kind: Option<TermKind>,
    matches: &[TermMatch],
) -> HashMap<String, Mapping> {
    // Per folded value: the best tier's distinct field values, in record order.
    let field_code = field_kind.map(TermKind::code);
    let mut by_fold: HashMap<&str, (u8, Vec<&str>)> = HashMap::new();
    for m in matches {
        let tier = if Some(m.kind) == field_code { 1 } else { 2 };
        let entry = by_fold.entry(m.fold.as_str()).or_insert((tier, Vec::new()));
        if tier < entry.0 {
            *entry = (tier, Vec::new());
        }
        if tier == entry.0 && !entry.1.contains(&m.value.as_str()) {
            entry.1.push(&m.value);
        }
    }
    let mut out = HashMap::with_capacity(values.len());
    for v in values {
        let mapping = if exact.contains(*v) {
            Mapping::Exact
        } else {
            match by_fold.get(rank::fold(v).as_str()) {
                None => Mapping::Unmapped,
                Some((_, targets)) if targets.len() == 1 => Mapping::Mapped(targets[0].to_string()),
                Some((_, targets)) => {
                    Mapping::Ambiguous(targets.iter().map(|t| t.to_string()).collect())
                }
            }
        };
        out.insert(v.to_string(), mapping);
    }
    out
}

/// What standardize returns for a value: the mapped value, the first
/// candidate of an ambiguous one if `keep_first`, else the value itself.
pub fn standardized(value: &str, mapping: Option<&Mapping>, keep_first: bool) -> String {
    match mapping {
        Some(Mapping::Mapped(to)) => to.clone(),
        Some(Mapping::Ambiguous(options)) if keep_first => options[0].clone(),
        _ => value.to_string(),
    }
}

/// A row of inspect: value, validated, standardized, suggestion. `None` when
/// the value maps to nothing (the caller looks a suggestion up).
pub type InspectRow = (Option<String>, bool, Option<String>, Option<String>);

pub fn inspect_row(value: &str, mapping: Option<&Mapping>) -> Option<InspectRow> {
    let v = Some(value.to_string());
    match mapping {
        Some(Mapping::Exact) => Some((v, true, Some(value.to_string()), None)),
        Some(Mapping::Mapped(to)) => Some((v, false, Some(to.clone()), None)),
        Some(Mapping::Ambiguous(options)) => Some((
            v,
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
        )),
        Some(Mapping::Unmapped) | None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(uid: &str, name: &str, kind: TermKind, term: &str) -> TermRow {
        TermRow {
            registry: "lamin.ulabel".into(),
            uid: uid.into(),
            name: name.into(),
            kind: kind.code(),
            term: term.into(),
            deprecated: false,
        }
    }

    fn reg() -> Registry {
        Registry {
            name: "bionty.cell_type".into(),
            name_field: "name".into(),
            organism_field: Some("organism".into()),
            id_field: Some("ontology_id".into()),
            abbr_field: Some("abbr".into()),
            has_branch: true,
        }
    }

    #[test]
    fn term_kind_codes_and_names_round_trip() {
        let codes: Vec<i16> = TermKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 3]);
        for k in TermKind::ALL {
            assert_eq!(TermKind::from_code(k.code()), Some(k));
            assert_eq!(TermKind::from_name(k.name()), Some(k));
        }
        assert_eq!(TermKind::Abbreviation.name(), "abbreviation");
        assert_eq!(TermKind::Abbreviation.as_str(), "abbr");
        assert_eq!(TermKind::from_code(4), None);
        assert_eq!(TermKind::from_code(-1), None);
        assert_eq!(TermKind::from_name("abbr"), None);
        assert_eq!(TermKind::from_name("Name"), None);
    }

    #[test]
    fn prefix_end_bounds_every_string_with_the_prefix() {
        let end = prefix_end("cd4");
        for s in ["cd4", "cd4 ", "cd40", "cd4\u{FFFF}", "cd4zzz"] {
            assert!(s >= "cd4" && s < end.as_str(), "{s:?}");
        }
        assert!("cd5" > end.as_str() || !"cd5".starts_with("cd4"));
        assert!("cd3z" < "cd4");
        assert_eq!(word_end("t"), "t\u{1}");
        assert!("t" < word_end("t").as_str() && "t cell" > word_end("t").as_str());
    }

    #[test]
    fn word_ranges_drop_stop_words_and_take_the_last_as_prefix() {
        let r = word_ranges("alveolar of macro");
        assert_eq!(r.len(), 2, "'of' is a stop word: {r:?}");
        assert_eq!(r[0].word, "alveolar");
        assert_eq!(r[0].to, "alveolar\u{1}");
        assert_eq!(r[1].word, "macro");
        assert_eq!(r[1].to, prefix_end("macro"));
        assert!(word_ranges("").is_empty());
        assert!(word_ranges("  ").is_empty());
        let one = word_ranges("cell");
        assert_eq!(one[0].to, prefix_end("cell"));
    }

    #[test]
    fn plan_words_prefers_rare_words_then_walks_the_rarest() {
        let r = word_ranges("dendritic cell type");
        assert_eq!(plan_words(&[], &[]), WordPlan::Nothing);
        assert_eq!(plan_words(&r, &[5, 301, 300]), WordPlan::Rare(vec![0, 2]));
        // All common (capped): the longest word walks first, ties keep query order.
        assert_eq!(
            plan_words(&r, &[301, 301, 301]),
            WordPlan::Walk(vec![0, 1, 2])
        );
        let r = word_ranges("cell dendritic");
        assert_eq!(plan_words(&r, &[301, 301]), WordPlan::Walk(vec![1, 0]));
        assert_eq!(plan_words(&r, &[301, 250]), WordPlan::Rare(vec![1]));
        assert_eq!(
            plan_words(&word_ranges("cell type"), &[301, 301]),
            WordPlan::Walk(vec![0, 1])
        );
    }

    #[test]
    fn prepared_query_cuts_folds_and_normalizes() {
        let q = PreparedQuery::new("T-Cell");
        assert_eq!(q.fold, "t-cell");
        assert_eq!(q.norm, "t cell");
        let long = "a".repeat(1000);
        assert_eq!(
            PreparedQuery::new(&long).text.chars().count(),
            MAX_QUERY_CHARS
        );
        let c = PreparedQuery::corrected("t cell");
        assert_eq!(
            (c.text.as_str(), c.fold.as_str(), c.norm.as_str()),
            ("t cell", "t cell", "t cell")
        );
    }

    #[test]
    fn registry_kinds_tables_and_filters() {
        let r = reg();
        assert_eq!(r.kind_of("name"), Some(TermKind::Name));
        assert_eq!(r.kind_of("abbr"), Some(TermKind::Abbreviation));
        assert_eq!(r.kind_of("ontology_id"), Some(TermKind::Id));
        assert_eq!(r.kind_of("description"), None);
        assert_eq!(r.table(), "\"bionty\".\"cell_type\"");
        assert_eq!(
            r.record_filter(Some("human"), 4),
            " AND r.branch_id <> -1 AND r.\"organism\"::text = $4"
        );
        assert_eq!(r.record_filter(None, 4), " AND r.branch_id <> -1");
        let plain = Registry {
            organism_field: None,
            has_branch: false,
            ..reg()
        };
        assert_eq!(plain.record_filter(Some("human"), 2), "");
    }

    #[test]
    fn rank_rows_keys_records_by_registry_and_labels_kinds() {
        let mut other = row("u1", "T cell", TermKind::Name, "T cell");
        other.registry = "bionty.cell_type".into();
        let rows = vec![
            row("u1", "T cell", TermKind::Name, "T cell"),
            other,
            row("u2", "thymus-derived cell", TermKind::Synonym, "T cell"),
            row("u3", "CD4", TermKind::Abbreviation, "cd4"),
            TermRow {
                kind: 9,
                ..row("u4", "x", TermKind::Id, "t cell")
            },
        ];
        let hits = rank_rows("t cell", &rows, 10);
        assert_eq!(hits.len(), 4, "same uid in two registries is two records");
        assert_eq!(hits[0].matched, "name: T cell");
        assert!(hits.iter().any(|h| h.registry == "bionty.cell_type"));
        assert!(hits.iter().any(|h| h.matched == "synonym: T cell"));
        assert!(
            hits.iter().any(|h| h.matched == "id: t cell"),
            "unknown code ranks as id"
        );
        let abbr = rank_rows("cd4", &rows, 1);
        assert_eq!(abbr[0].matched, "abbr: cd4");
    }

    #[test]
    fn strong_hits_and_correction_thresholds() {
        let rows = vec![
            row("u1", "T cell", TermKind::Name, "T cell"),
            row("u2", "T cell receptor", TermKind::Name, "T cell receptor"),
        ];
        assert!(enough_strong_hits("t cell", &rows, 2));
        assert!(!enough_strong_hits("t cell", &rows, 3));
        assert!(wants_correction(0, 20));
        assert!(wants_correction(2, 20));
        assert!(!wants_correction(3, 20));
        assert!(!wants_correction(1, 1));
        assert!(wants_correction(0, 1));
    }

    #[test]
    fn correct_words_replaces_unknown_long_words_only() {
        let fixed = correct_words(
            "macrophge of lung",
            |w| w == "lung",
            |w| (w == "macrophge").then(|| "macrophage".to_string()),
        );
        assert_eq!(fixed.as_deref(), Some("macrophage of lung"));
        // Short words are never looked up; unknown words without a fix stay.
        let mut asked = Vec::new();
        let none = correct_words(
            "abc zzzzz",
            |w| {
                asked.push(w.to_string());
                false
            },
            |_| None,
        );
        assert_eq!(none, None);
        assert_eq!(asked, vec!["zzzzz".to_string()]);
    }

    #[test]
    fn subtree_decisions() {
        assert!(rank_subtree_whole(SUBTREE_RANK_WHOLE));
        assert!(!rank_subtree_whole(SUBTREE_RANK_WHOLE + 1));
        let hits: Vec<Hit> = rank_rows(
            "cell",
            &[
                row("a", "cell", TermKind::Name, "cell"),
                row("b", "cell a", TermKind::Name, "cell a"),
                row("c", "cell b", TermKind::Name, "cell b"),
            ],
            10,
        );
        let uids: HashSet<String> = ["b".to_string(), "c".to_string()].into();
        let kept = keep_under(hits, &uids, 1);
        assert_eq!(kept.len(), 1);
        assert!(uids.contains(&kept[0].uid));
    }

    #[test]
    fn similar_lookup_and_pick() {
        assert_eq!(similar_lookup("T c"), None);
        let l = similar_lookup("Alveolar Macrophage").unwrap();
        assert_eq!(l.head, "alv");
        assert_eq!(l.head_end, prefix_end("alv"));
        assert_eq!(l.longest_word, "macrophage");
        let rows = vec![
            row("u1", "macrophage", TermKind::Name, "macrophage"),
            row("u2", "monocyte", TermKind::Name, "monocyte"),
        ];
        assert_eq!(
            similar_pick("macrophge", &rows),
            Some(("u1".to_string(), "macrophage".to_string()))
        );
        assert_eq!(similar_pick("macrophage", &rows), None, "equal is no typo");
        assert_eq!(similar_pick("fibroblast", &rows), None);
    }

    #[test]
    fn general_first_puts_a_broader_name_above_a_narrower_synonym() {
        // UBERON: "zone of skin" (UBERON:0000014, exact synonym "skin") is a
        // part of "skin of body" (UBERON:0002097); "skin gland" is below it.
        let tissue = |uid: &str, name: &str, kind: TermKind, term: &str| TermRow {
            registry: "bionty.tissue".into(),
            ..row(uid, name, kind, term)
        };
        let rows = vec![
            tissue("zone", "zone of skin", TermKind::Name, "zone of skin"),
            tissue("zone", "zone of skin", TermKind::Synonym, "skin"),
            tissue("body", "skin of body", TermKind::Name, "skin of body"),
            tissue("gland", "skin gland", TermKind::Name, "skin gland"),
            tissue("back", "skin of back", TermKind::Name, "skin of back"),
            tissue("epi", "skin epidermis", TermKind::Name, "skin epidermis"),
        ];
        let ranked = rank_rows("skin", &rows, GENERAL_WINDOW);
        assert_eq!(ranked[0].uid, "zone", "by tiers alone the synonym wins");
        let mut asked = Vec::new();
        let hits = general_first("skin", ranked.clone(), 3, |x, ys| {
            asked.push((
                x.uid.clone(),
                ys.iter().map(|y| y.uid.clone()).collect::<Vec<_>>(),
            ));
            ["body".to_string(), "unrelated".to_string()].into()
        });
        let uids: Vec<&str> = hits.iter().map(|h| h.uid.as_str()).collect();
        assert_eq!(uids, ["body", "zone", "gland"]);
        assert_eq!(hits[0].tier, Tier::ExactOther);
        assert!(hits[0].score >= hits[1].score);
        assert_eq!(hits[0].matched, "name: skin of body");
        assert_eq!(asked.len(), 1, "one hierarchy lookup");
        assert_eq!(asked[0].0, "zone");
        assert!(
            asked[0].1.contains(&"body".to_string()) && asked[0].1.contains(&"back".to_string())
        );
        // No ancestor among them (or no hierarchy): the order stays.
        let same = general_first("skin", ranked.clone(), 3, |_, _| HashSet::new());
        assert_eq!(same, ranked[..3].to_vec());
        // An exact name is never passed over; names that only contain the
        // query, or are another word, are no broader names.
        assert!(name_begins_with_words("skin", "skin of body"));
        assert!(!name_begins_with_words("skin", "skin"));
        assert!(!name_begins_with_words("skin", "skinny cell"));
        assert!(!name_begins_with_words("skin", "zone of skin"));
        let named = vec![
            tissue("exact", "skin", TermKind::Name, "skin"),
            tissue("zone", "zone of skin", TermKind::Synonym, "skin"),
            tissue("body", "skin of body", TermKind::Name, "skin of body"),
        ];
        let hits = general_first("skin", rank_rows("skin", &named, 10), 10, |_, _| {
            ["body".to_string()].into()
        });
        let uids: Vec<&str> = hits.iter().map(|h| h.uid.as_str()).collect();
        assert_eq!(uids, ["exact", "body", "zone"]);
    }

    #[test]
    fn prepared_query_variants_are_normalized_spellings() {
        let v = PreparedQuery::new("IL6").variants();
        assert_eq!(v, vec![PreparedQuery::corrected("il 6")]);
        assert!(PreparedQuery::new("T cell").variants().is_empty());
    }

    #[test]
    fn distinct_values_keeps_first_seen_order_without_nulls() {
        assert_eq!(
            distinct_values(&[Some("b"), None, Some("a"), Some("b"), Some("c"), None]),
            vec!["b", "a", "c"]
        );
        assert!(distinct_values(&[None]).is_empty());
    }

    #[test]
    fn read_whole_needs_many_values_and_a_quarter_of_the_rows() {
        assert!(!read_whole(BULK_LOOKUP_MIN - 1, 0.0));
        assert!(read_whole(BULK_LOOKUP_MIN, 0.0));
        assert!(read_whole(BULK_LOOKUP_MIN, 39_999.0));
        assert!(!read_whole(BULK_LOOKUP_MIN, 40_000.0));
    }

    fn m(fold: &str, kind: TermKind, value: &str) -> TermMatch {
        TermMatch {
            fold: fold.into(),
            kind: kind.code(),
            value: value.into(),
        }
    }

    #[test]
    fn map_values_merges_exact_case_and_synonym_matches() {
        let exact: HashSet<String> = ["B cell".to_string()].into();
        let values = ["B cell", "b cell", "B lymphocyte", "other", "dup", "mixed"];
        let look = folds_to_look_up(&values, &exact);
        assert_eq!(
            look,
            vec!["b cell", "b lymphocyte", "other", "dup", "mixed"]
        );
        let matches = vec![
            m("b cell", TermKind::Name, "B cell"),
            m("b lymphocyte", TermKind::Synonym, "B cell"),
            m("b lymphocyte", TermKind::Synonym, "B cell"),
            // Two records claim "dup" as a synonym: ambiguous, in record order.
            m("dup", TermKind::Synonym, "first"),
            m("dup", TermKind::Synonym, "second"),
            // The field's own kind (a case-insensitive match) beats synonyms.
            m("mixed", TermKind::Synonym, "by synonym"),
            m("mixed", TermKind::Name, "Mixed"),
        ];
        let out = map_values(&values, &exact, Some(TermKind::Name), &matches);
        assert_eq!(out["B cell"], Mapping::Exact);
        assert_eq!(out["b cell"], Mapping::Mapped("B cell".into()));
        assert_eq!(out["B lymphocyte"], Mapping::Mapped("B cell".into()));
        assert_eq!(out["other"], Mapping::Unmapped);
        assert_eq!(
            out["dup"],
            Mapping::Ambiguous(vec!["first".into(), "second".into()])
        );
        assert_eq!(out["mixed"], Mapping::Mapped("Mixed".into()));
        // A field with no kind of its own: every term is one tier.
        let out = map_values(&["mixed"], &HashSet::new(), None, &matches);
        assert_eq!(
            out["mixed"],
            Mapping::Ambiguous(vec!["by synonym".into(), "Mixed".into()])
        );
    }

    #[test]
    fn standardized_and_inspect_rows() {
        let amb = Mapping::Ambiguous(vec!["a'x".into(), "b".into()]);
        assert_eq!(
            standardized("v", Some(&Mapping::Mapped("w".into())), false),
            "w"
        );
        assert_eq!(standardized("v", Some(&amb), false), "v");
        assert_eq!(standardized("v", Some(&amb), true), "a'x");
        assert_eq!(standardized("v", Some(&Mapping::Unmapped), true), "v");
        assert_eq!(standardized("v", None, true), "v");
        assert_eq!(
            inspect_row("v", Some(&Mapping::Exact)),
            Some((Some("v".into()), true, Some("v".into()), None))
        );
        assert_eq!(
            inspect_row("v", Some(&Mapping::Mapped("w".into()))),
            Some((Some("v".into()), false, Some("w".into()), None))
        );
        assert_eq!(
            inspect_row("v", Some(&amb)),
            Some((
                Some("v".into()),
                false,
                None,
                Some("ambiguous: 'a''x' or 'b'".into())
            ))
        );
        assert_eq!(inspect_row("v", Some(&Mapping::Unmapped)), None);
        assert_eq!(inspect_row("v", None), None);
    }
}
