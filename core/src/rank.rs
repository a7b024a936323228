//! Ranking of search candidates: which registry records best match a query.
//!
//! Tiers, best first (LaminDB's order, plus typo tolerance):
//! 1. the name equals the query (case-insensitive)
//! 2. a synonym, abbreviation or id equals the query
//! 3. the name starts with the query, or contains it as whole words
//! 4. a synonym starts with the query, or contains it as whole words
//! 5. a word of the name or a synonym starts with the query; then plain substring
//! 6. fuzzy: close in spelling (Jaro-Winkler / Damerau-Levenshtein), for typos
//!
//! Deprecated records rank below every live one. Ties break by shorter name,
//! then uid, so results are deterministic.
//!
//! A query also matches in its other spellings at letter/digit boundaries
//! ("il6" and "IL-6", see [`letter_digit_variants`]), in the same tier, just
//! below the query as typed. (Which of two hits is the more general term is
//! decided with the ontology: `search_plan::general_first`.)

use std::cmp::Ordering;

/// Which field of a record a candidate term came from. The one definition of
/// the term kinds: their codes are what `lamin.search_term.kind` stores, and
/// SQL reads codes and names through `lamin.term_kind(name)` and
/// `lamin.term_kind_name(kind)`, which call [`TermKind::from_name`] and
/// [`TermKind::from_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i16)]
pub enum TermKind {
    Name = 0,
    Synonym = 1,
    Abbreviation = 2,
    Id = 3,
}

impl TermKind {
    /// Every kind, in code order.
    pub const ALL: [TermKind; 4] = [
        TermKind::Name,
        TermKind::Synonym,
        TermKind::Abbreviation,
        TermKind::Id,
    ];

    /// The code stored in `lamin.search_term.kind`.
    pub fn code(self) -> i16 {
        self as i16
    }

    /// The kind stored as `code`, if any.
    pub fn from_code(code: i16) -> Option<TermKind> {
        TermKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The kind's name in SQL: name, synonym, abbreviation, id.
    pub fn name(self) -> &'static str {
        match self {
            TermKind::Name => "name",
            TermKind::Synonym => "synonym",
            TermKind::Abbreviation => "abbreviation",
            TermKind::Id => "id",
        }
    }

    /// The kind called `name` (as [`TermKind::name`] spells it), if any.
    pub fn from_name(name: &str) -> Option<TermKind> {
        TermKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The short label search results show before the matched term
    /// (`matched` column: "abbr: CD4").
    pub fn as_str(self) -> &'static str {
        match self {
            TermKind::Name => "name",
            TermKind::Synonym => "synonym",
            TermKind::Abbreviation => "abbr",
            TermKind::Id => "id",
        }
    }
}

/// How a term matched, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    ExactName = 6,
    ExactOther = 5,
    NamePrefixOrWords = 4,
    SynonymPrefixOrWords = 3,
    WordStartOrContains = 2,
    Fuzzy = 1,
}

/// Lower case, words separated by single spaces; punctuation other than
/// word-internal characters separates words too ("CD8-positive" → "cd8 positive").
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    }
    out
}

/// Lower case only (keeps punctuation), for exact comparisons.
pub fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Whether two characters of a word meet at a letter/digit boundary
/// ("il6": l|6, "cd8a": d|8 and 8|a).
fn letter_digit_boundary(a: char, b: char) -> bool {
    a.is_alphanumeric() && b.is_alphanumeric() && a.is_numeric() != b.is_numeric()
}

/// At most this many spellings of a query at letter/digit boundaries are tried.
pub const MAX_VARIANTS: usize = 4;

/// The other spellings of a normalized query at its letter/digit boundaries,
/// one boundary at a time: a word split there ("il6" → "il 6", "cd8a" →
/// "cd8 a" and "cd 8a") and two words joined there ("il 6" → "il6"). Names
/// write these either way ("IL-6", "IL 6", "IL6"; "CD8a", "CD8 alpha";
/// "COVID-19"); the index keeps words as the name spells them, so a query
/// is looked up and ranked in each spelling. At most [`MAX_VARIANTS`], the
/// query itself excluded.
pub fn letter_digit_variants(normalized: &str) -> Vec<String> {
    let words: Vec<&str> = normalized.split(' ').filter(|w| !w.is_empty()).collect();
    let mut out: Vec<String> = Vec::new();
    let mut push = |v: String| {
        if v != normalized && !out.contains(&v) && out.len() < MAX_VARIANTS {
            out.push(v);
        }
    };
    for (i, w) in words.iter().enumerate() {
        let chars: Vec<(usize, char)> = w.char_indices().collect();
        for pair in chars.windows(2) {
            let ((_, a), (at, b)) = (pair[0], pair[1]);
            if letter_digit_boundary(a, b) {
                let mut split: Vec<String> = words.iter().map(|x| x.to_string()).collect();
                split[i] = format!("{} {}", &w[..at], &w[at..]);
                push(split.join(" "));
            }
        }
    }
    for i in 1..words.len() {
        let (left, right) = (words[i - 1], words[i]);
        if let (Some(a), Some(b)) = (left.chars().last(), right.chars().next()) {
            if letter_digit_boundary(a, b) {
                let mut joined: Vec<String> =
                    words[..i - 1].iter().map(|x| x.to_string()).collect();
                joined.push(format!("{left}{right}"));
                joined.extend(words[i + 1..].iter().map(|x| x.to_string()));
                push(joined.join(" "));
            }
        }
    }
    out
}

/// A query prepared once for scoring many terms.
#[derive(Debug, Clone)]
pub struct Query {
    folded: String,
    normalized: String,
    words: Vec<String>,
    /// The query spelt otherwise at letter/digit boundaries ([`letter_digit_variants`]).
    variants: Vec<Query>,
}

impl Query {
    pub fn new(raw: &str) -> Query {
        let normalized = normalize(raw);
        let variants = letter_digit_variants(&normalized)
            .iter()
            .map(|v| Query::plain(v, v.clone()))
            .collect();
        Query {
            variants,
            ..Query::plain(&fold(raw), normalized)
        }
    }

    fn plain(folded: &str, normalized: String) -> Query {
        let words = normalized
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        Query {
            folded: folded.to_string(),
            normalized,
            words,
            variants: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.folded.is_empty()
    }
}

/// Words too common to help find anything; the search index leaves them out.
pub fn is_stop_word(word: &str) -> bool {
    matches!(
        word,
        "of" | "the"
            | "and"
            | "in"
            | "to"
            | "for"
            | "with"
            | "by"
            | "on"
            | "at"
            | "from"
            | "or"
            | "an"
            | "a"
    )
}

/// Minimum fuzzy similarity (0..1) for a typo match to count.
pub const FUZZY_THRESHOLD: f64 = 0.84;

/// How much lower a match through another spelling of the query at a
/// letter/digit boundary scores than the same match of the query as typed
/// (the tier stays).
const VARIANT_PENALTY: f64 = 1.5;

/// Score one term against the query: `Some((tier, score))`, where the score
/// orders candidates across tiers (higher is better), or `None` when the term
/// does not match at all. The query's spellings at letter/digit boundaries
/// count too ("il6" equals the name "IL-6"), just below the query as typed;
/// they are not fuzzed.
pub fn score_term(query: &Query, term: &str, kind: TermKind) -> Option<(Tier, f64)> {
    let mut best = score_spelling(query, term, kind, true);
    for v in &query.variants {
        if let Some((tier, score)) = score_spelling(v, term, kind, false) {
            let score = score - VARIANT_PENALTY;
            if best.is_none_or(|(t, s)| (tier, score) > (t, s)) {
                best = Some((tier, score));
            }
        }
    }
    best
}

fn score_spelling(query: &Query, term: &str, kind: TermKind, fuzzy: bool) -> Option<(Tier, f64)> {
    if query.is_empty() || term.is_empty() {
        return None;
    }
    let folded = fold(term);
    if folded == query.folded {
        let tier = if kind == TermKind::Name {
            Tier::ExactName
        } else {
            Tier::ExactOther
        };
        return Some((tier, tier_base(tier)));
    }
    let normalized = normalize(term);
    if !query.normalized.is_empty() && normalized == query.normalized {
        // Equal up to punctuation and case ("CD8 positive" vs "CD8-positive").
        let tier = if kind == TermKind::Name {
            Tier::ExactName
        } else {
            Tier::ExactOther
        };
        return Some((tier, tier_base(tier) - 1.0));
    }
    let starts = folded.starts_with(&query.folded)
        || (!query.normalized.is_empty() && normalized.starts_with(&query.normalized));
    // "CD8" starts "CD8-positive …" at a word boundary, but only the
    // characters of "CD86 …": the latter is a different word.
    let starts_whole_word = !query.normalized.is_empty()
        && normalized.starts_with(&query.normalized)
        && normalized[query.normalized.len()..]
            .chars()
            .next()
            .is_none_or(|c| c == ' ');
    let whole_words =
        !query.normalized.is_empty() && contains_words(&normalized, &query.normalized);
    if starts || whole_words {
        let tier = if kind == TermKind::Name {
            Tier::NamePrefixOrWords
        } else {
            Tier::SynonymPrefixOrWords
        };
        // Prefer whole-word starts, then inner whole words, then starts inside
        // a longer word; then terms the query covers more of.
        let position = if starts_whole_word {
            20.0
        } else if whole_words {
            10.0
        } else {
            5.0
        };
        let bonus = position + coverage(&query.normalized, &normalized) * 10.0;
        return Some((tier, tier_base(tier) + bonus));
    }
    let word_start =
        !query.normalized.is_empty() && has_word_starting_with(&normalized, &query.normalized);
    if query.words.len() > 1 && all_words_present(&query.words, &normalized) {
        // Every query word starts a word of the term, in any order and with
        // words between ("memory B cell bone marrow" → "memory B cell of bone marrow").
        let bonus = 15.0
            + if kind == TermKind::Name { 10.0 } else { 0.0 }
            + coverage(&query.normalized, &normalized) * 10.0;
        return Some((
            Tier::WordStartOrContains,
            tier_base(Tier::WordStartOrContains) + bonus,
        ));
    }
    if word_start || folded.contains(&query.folded) {
        let bonus = if word_start { 20.0 } else { 0.0 }
            + if kind == TermKind::Name { 10.0 } else { 0.0 }
            + coverage(&query.normalized, &normalized) * 10.0;
        return Some((
            Tier::WordStartOrContains,
            tier_base(Tier::WordStartOrContains) + bonus,
        ));
    }
    if !fuzzy {
        return None;
    }
    let similarity = fuzzy_similarity(query, &normalized);
    if similarity >= FUZZY_THRESHOLD {
        let bonus = (similarity - FUZZY_THRESHOLD) / (1.0 - FUZZY_THRESHOLD) * 40.0
            + if kind == TermKind::Name { 5.0 } else { 0.0 };
        return Some((Tier::Fuzzy, tier_base(Tier::Fuzzy) + bonus));
    }
    None
}

fn tier_base(tier: Tier) -> f64 {
    (tier as u8 as f64) * 100.0
}

/// Whether `words` (space-separated) occur in `text` as a run of whole words.
fn contains_words(text: &str, words: &str) -> bool {
    let padded_text = format!(" {text} ");
    let padded_words = format!(" {words} ");
    padded_text.contains(&padded_words)
}

fn all_words_present(query_words: &[String], text: &str) -> bool {
    let text_words: Vec<&str> = text.split(' ').collect();
    query_words
        .iter()
        .all(|q| text_words.iter().any(|t| t.starts_with(q.as_str())))
}

fn has_word_starting_with(text: &str, prefix: &str) -> bool {
    let padded = format!(" {text}");
    padded.contains(&format!(" {prefix}"))
}

/// How much of the term the query covers (0..1): "T cell" covers "T cell" fully.
fn coverage(query: &str, term: &str) -> f64 {
    if term.is_empty() {
        return 0.0;
    }
    (query.chars().count() as f64 / term.chars().count() as f64).min(1.0)
}

/// Spelling similarity between query and term (0..1): the best over every run
/// of consecutive term words as long as the query (the whole term included),
/// so a misspelt word is found inside a longer name. Words shorter than
/// `MIN_FUZZY_WORD` must match exactly: "P cell" is not a typo of "T cell".
pub fn fuzzy_similarity(query: &Query, normalized_term: &str) -> f64 {
    let q = query.normalized.as_str();
    if q.chars().count() < MIN_FUZZY_WORD {
        return 0.0;
    }
    let term_words: Vec<&str> = normalized_term.split(' ').collect();
    let n = query.words.len().max(1);
    let window_score = |window: &[&str]| -> f64 {
        let short_words_agree = window.len() == query.words.len()
            && query
                .words
                .iter()
                .zip(window)
                .all(|(qw, tw)| qw.chars().count() >= MIN_FUZZY_WORD || qw == tw);
        if short_words_agree || query.words.len() == 1 {
            similarity(q, &window.join(" "))
        } else {
            0.0
        }
    };
    if term_words.len() <= n {
        return window_score(&term_words);
    }
    // A window match is slightly weaker than matching the whole term.
    term_words
        .windows(n)
        .map(window_score)
        .fold(0.0_f64, f64::max)
        * 0.98
}

/// Words shorter than this are never treated as typos of other words.
pub const MIN_FUZZY_WORD: usize = 4;

fn similarity(a: &str, b: &str) -> f64 {
    // Cheap rejections first: most candidates are nowhere near the query.
    let (la, lb) = (a.chars().count() as f64, b.chars().count() as f64);
    if (la - lb).abs() > 0.4 * la.max(lb) {
        return 0.0;
    }
    let jw = strsim::jaro_winkler(a, b);
    if jw < 0.75 {
        return jw / 2.0;
    }
    let dl = strsim::normalized_damerau_levenshtein(a, b);
    // Jaro-Winkler alone over-rates short shared prefixes; average with edit distance.
    (jw + dl) / 2.0
}

/// Score added per additional matching term of a record, for at most this many terms.
const MATCHING_TERM_BONUS: f64 = 0.5;
const MATCHING_TERMS_COUNTED: usize = 3;

/// A scored record, ready to be ordered.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub score: f64,
    pub tier: Tier,
    pub name: String,
    pub uid: String,
    pub matched: String,
    pub kind: TermKind,
    pub deprecated: bool,
}

/// The ordering of results: live before deprecated, higher score, shorter name, uid.
pub fn compare(a: &Ranked, b: &Ranked) -> Ordering {
    a.deprecated
        .cmp(&b.deprecated)
        .then_with(|| b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal))
        .then_with(|| a.name.chars().count().cmp(&b.name.chars().count()))
        .then_with(|| a.uid.cmp(&b.uid))
}

/// One candidate term of a record, as fetched from the registry.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub uid: &'a str,
    pub name: &'a str,
    pub term: &'a str,
    pub kind: TermKind,
    pub deprecated: bool,
}

/// Rank candidates (several per record allowed): each record keeps its best
/// term; returns at most `limit` records, best first.
pub fn rank(query: &str, candidates: &[Candidate<'_>], limit: usize) -> Vec<Ranked> {
    let query = Query::new(query);
    let mut best: std::collections::HashMap<&str, Ranked> = std::collections::HashMap::new();
    // How many of a record's terms match: like LaminDB, which sums matches over
    // a record's fields, a record whose synonyms match too ranks a little
    // higher (never enough to change tier).
    let mut matching_terms: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::new();
    for c in candidates {
        let Some((tier, score)) = score_term(&query, c.term, c.kind) else {
            continue;
        };
        *matching_terms.entry(c.uid).or_default() += 1;
        let ranked = Ranked {
            score,
            tier,
            name: c.name.to_string(),
            uid: c.uid.to_string(),
            matched: c.term.to_string(),
            kind: c.kind,
            deprecated: c.deprecated,
        };
        match best.get(c.uid) {
            Some(existing) if compare(existing, &ranked) != Ordering::Greater => {}
            _ => {
                best.insert(c.uid, ranked);
            }
        }
    }
    let mut out: Vec<Ranked> = best
        .into_iter()
        .map(|(uid, mut r)| {
            let others = matching_terms
                .get(uid)
                .copied()
                .unwrap_or(1)
                .saturating_sub(1);
            r.score += MATCHING_TERM_BONUS * others.min(MATCHING_TERMS_COUNTED) as f64;
            r
        })
        .collect();
    out.sort_by(compare);
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_word_prefixes_and_matching_synonyms_rank_first() {
        // Real CL names for "CD8": the T cell (whose synonyms match too) beats
        // shorter names; "CD86 …" and "CD8aa …" only start with the characters.
        let c = [
            cand(
                "a",
                "CD8aa(I) thymocyte",
                "CD8aa(I) thymocyte",
                TermKind::Name,
            ),
            cand(
                "b",
                "CD86-positive plasmablast",
                "CD86-positive plasmablast",
                TermKind::Name,
            ),
            cand(
                "c",
                "CD8-alpha-low Langerhans cell",
                "CD8-alpha-low Langerhans cell",
                TermKind::Name,
            ),
            cand(
                "d",
                "CD8-positive, alpha-beta T cell",
                "CD8-positive, alpha-beta T cell",
                TermKind::Name,
            ),
            cand(
                "d",
                "CD8-positive, alpha-beta T cell",
                "CD8-positive, alpha-beta T lymphocyte",
                TermKind::Synonym,
            ),
            cand(
                "d",
                "CD8-positive, alpha-beta T cell",
                "CD8-positive, alpha-beta T-cell",
                TermKind::Synonym,
            ),
        ];
        let order: Vec<String> = rank("CD8", &c, 10).into_iter().map(|r| r.uid).collect();
        assert_eq!(order, vec!["d", "c", "a", "b"]);
    }

    fn cand<'a>(uid: &'a str, name: &'a str, term: &'a str, kind: TermKind) -> Candidate<'a> {
        Candidate {
            uid,
            name,
            term,
            kind,
            deprecated: false,
        }
    }

    fn names(r: &[Ranked]) -> Vec<&str> {
        r.iter().map(|x| x.name.as_str()).collect()
    }

    #[test]
    fn normalize_splits_punctuation_and_lowercases() {
        assert_eq!(
            normalize("CD8-positive, alpha-beta T cell"),
            "cd8 positive alpha beta t cell"
        );
        assert_eq!(normalize("  B   Cell "), "b cell");
    }

    #[test]
    fn each_tier_in_order() {
        let q = Query::new("T cell");
        let tier = |term: &str, kind| score_term(&q, term, kind).map(|(t, _)| t);
        assert_eq!(tier("T cell", TermKind::Name), Some(Tier::ExactName));
        assert_eq!(tier("t-cell", TermKind::Name), Some(Tier::ExactName));
        assert_eq!(tier("T cell", TermKind::Synonym), Some(Tier::ExactOther));
        assert_eq!(
            tier("T cell receptor", TermKind::Name),
            Some(Tier::NamePrefixOrWords)
        );
        assert_eq!(
            tier("activated T cell", TermKind::Name),
            Some(Tier::NamePrefixOrWords)
        );
        assert_eq!(
            tier("T cells, activated", TermKind::Synonym),
            Some(Tier::SynonymPrefixOrWords)
        );
        assert_eq!(
            tier("gamma-delta T cellular", TermKind::Name),
            Some(Tier::WordStartOrContains)
        );
        assert_eq!(
            tier("NKT cell", TermKind::Name),
            Some(Tier::WordStartOrContains)
        );
        assert_eq!(tier("B lymphocyte", TermKind::Name), None);
        let q = Query::new("memory B cell bone marrow");
        assert_eq!(
            score_term(&q, "memory B cell of bone marrow", TermKind::Name).map(|x| x.0),
            Some(Tier::WordStartOrContains),
            "all words present, with a word between"
        );
    }

    #[test]
    fn exact_id_matches_in_tier_two() {
        let q = Query::new("CL:0000625");
        assert_eq!(
            score_term(&q, "CL:0000625", TermKind::Id).map(|x| x.0),
            Some(Tier::ExactOther)
        );
    }

    #[test]
    fn typos_are_found() {
        let q = Query::new("macrophge");
        assert_eq!(
            score_term(&q, "macrophage", TermKind::Name).map(|x| x.0),
            Some(Tier::Fuzzy)
        );
        let q = Query::new("hepatocite");
        assert_eq!(
            score_term(&q, "hepatocyte", TermKind::Name).map(|x| x.0),
            Some(Tier::Fuzzy)
        );
        // Inside a longer name too.
        let q = Query::new("alveolar macrophge");
        assert_eq!(
            score_term(&q, "alveolar macrophage of lung", TermKind::Name).map(|x| x.0),
            Some(Tier::Fuzzy)
        );
        // But not a different word.
        let q = Query::new("macrophge");
        assert_eq!(score_term(&q, "monocyte", TermKind::Name), None);
        // Short queries are not fuzzed: "CD8" is not "CD4".
        let q = Query::new("CD8");
        assert_eq!(score_term(&q, "CD4", TermKind::Name), None);
        // Nor is a short word inside a phrase: "P cell" is not "T cell".
        let q = Query::new("P cell");
        assert_eq!(score_term(&q, "T cell", TermKind::Name), None);
    }

    #[test]
    fn lamindb_vector_p_cell() {
        // CL fixture: "nodal myocyte" has synonyms cardiac pacemaker cell | myocytus nodalis | P cell.
        let cands = [
            cand("nodal", "nodal myocyte", "nodal myocyte", TermKind::Name),
            cand(
                "nodal",
                "nodal myocyte",
                "cardiac pacemaker cell",
                TermKind::Synonym,
            ),
            cand(
                "nodal",
                "nodal myocyte",
                "myocytus nodalis",
                TermKind::Synonym,
            ),
            cand("nodal", "nodal myocyte", "P cell", TermKind::Synonym),
            cand("pp", "PP cell", "PP cell", TermKind::Name),
            cand(
                "pp",
                "PP cell",
                "pancreatic polypeptide cell",
                TermKind::Synonym,
            ),
            cand("bcell", "B cell", "B cell", TermKind::Name),
            cand("plasma", "plasma cell", "plasma cell", TermKind::Name),
        ];
        let r = rank("P cell", &cands, 20);
        assert_eq!(names(&r)[..2], ["nodal myocyte", "PP cell"]);
        assert_eq!(r[0].matched, "P cell");
        assert_eq!(r[0].kind, TermKind::Synonym);
        let r = rank("b cell", &cands, 20);
        assert_eq!(names(&r)[0], "B cell");
    }

    #[test]
    fn deprecated_rank_last_and_ties_break_by_length_then_uid() {
        let mut dep = cand("a", "T cell", "T cell", TermKind::Name);
        dep.deprecated = true;
        let cands = [
            dep,
            cand(
                "c",
                "T cell receptor complex",
                "T cell receptor complex",
                TermKind::Name,
            ),
            cand("b", "T cell receptor", "T cell receptor", TermKind::Name),
            cand("d", "T cell extra", "T cell extra", TermKind::Name),
            cand("e", "T cell extra", "T cell extra", TermKind::Name),
        ];
        let r = rank("T cell", &cands, 10);
        let uids: Vec<&str> = r.iter().map(|x| x.uid.as_str()).collect();
        assert_eq!(uids, ["d", "e", "b", "c", "a"]);
        assert!(r.last().unwrap().deprecated);
    }

    #[test]
    fn each_record_appears_once_with_its_best_term() {
        let cands = [
            cand(
                "x",
                "CD8-positive, alpha-beta T cell",
                "CD8-positive, alpha-beta T cell",
                TermKind::Name,
            ),
            cand(
                "x",
                "CD8-positive, alpha-beta T cell",
                "CD8-positive, alpha-beta T lymphocyte",
                TermKind::Synonym,
            ),
            cand(
                "y",
                "CD8-positive, alpha-beta cytotoxic T cell",
                "CD8-positive, alpha-beta cytotoxic T cell",
                TermKind::Name,
            ),
        ];
        let r = rank("CD8", &cands, 10);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].uid, "x", "shorter name first within the prefix tier");
        assert_eq!(r[0].kind, TermKind::Name);
    }

    #[test]
    fn letter_digit_variants_split_and_join_one_boundary_at_a_time() {
        assert_eq!(letter_digit_variants("il6"), ["il 6"]);
        assert_eq!(letter_digit_variants("il 6"), ["il6"]);
        assert_eq!(letter_digit_variants("cd8a"), ["cd 8a", "cd8 a"]);
        assert_eq!(letter_digit_variants("covid19"), ["covid 19"]);
        assert_eq!(
            letter_digit_variants("type2 diabetes"),
            ["type 2 diabetes", "type2diabetes"]
        );
        assert_eq!(letter_digit_variants("sarscov2"), ["sarscov 2"]);
        assert_eq!(letter_digit_variants("sars cov 2"), ["sars cov2"]);
        assert!(letter_digit_variants("t cell").is_empty());
        assert!(letter_digit_variants("").is_empty());
        assert!(letter_digit_variants("1234").is_empty());
        // Bounded, whatever the query.
        assert_eq!(letter_digit_variants("a1b2c3d4e5f6").len(), MAX_VARIANTS);
        assert!(letter_digit_variants("Т1 клетка").len() <= MAX_VARIANTS);
    }

    #[test]
    fn fused_letters_and_digits_find_the_hyphenated_and_spaced_names() {
        // MONDO:0100096 "COVID-19"; EFO:0003296 "interleukin-4 (Homo sapiens)",
        // synonym "IL-4"; MONDO:0005148 "type 2 diabetes mellitus"; CL
        // "CD8-alpha-low Langerhans cell" beside "CD8aa(I) thymocyte".
        let c = [
            cand("covid", "COVID-19", "COVID-19", TermKind::Name),
            cand(
                "vacc",
                "COVID-19 vaccine",
                "COVID-19 vaccine",
                TermKind::Name,
            ),
            cand(
                "il4",
                "interleukin-4 (Homo sapiens)",
                "IL-4",
                TermKind::Synonym,
            ),
            cand(
                "il4",
                "interleukin-4 (Homo sapiens)",
                "interleukin-4 (Homo sapiens)",
                TermKind::Name,
            ),
            cand("il4i1", "IL4I1", "IL4I1", TermKind::Name),
            cand(
                "t2d",
                "type 2 diabetes mellitus",
                "type 2 diabetes mellitus",
                TermKind::Name,
            ),
            cand(
                "lang",
                "CD8-alpha-low Langerhans cell",
                "CD8-alpha-low Langerhans cell",
                TermKind::Name,
            ),
            cand(
                "cd8aa",
                "CD8aa(I) thymocyte",
                "CD8aa(I) thymocyte",
                TermKind::Name,
            ),
        ];
        let r = rank("covid19", &c, 10);
        assert_eq!(names(&r)[..2], ["COVID-19", "COVID-19 vaccine"]);
        assert_eq!(r[0].tier, Tier::ExactName);
        let r = rank("il4", &c, 10);
        assert_eq!(names(&r)[0], "interleukin-4 (Homo sapiens)");
        assert_eq!(
            (r[0].tier, r[0].matched.as_str()),
            (Tier::ExactOther, "IL-4")
        );
        assert_eq!(names(&r)[1], "IL4I1", "the fused prefix still matches");
        let r = rank("type2 diabetes", &c, 10);
        assert_eq!(names(&r)[0], "type 2 diabetes mellitus");
        assert_eq!(r[0].tier, Tier::NamePrefixOrWords);
        // "cd8a" starts "CD8aa(I)" as typed, and "CD8-alpha-…" spelt "cd8 a".
        let r = rank("cd8a", &c, 10);
        assert_eq!(
            names(&r),
            ["CD8aa(I) thymocyte", "CD8-alpha-low Langerhans cell"]
        );
        // The other way round: "IL 4" finds the fused "IL4I1" by its prefix.
        let r = rank("IL 4", &c, 10);
        assert_eq!(names(&r)[0], "interleukin-4 (Homo sapiens)");
        assert!(names(&r).contains(&"IL4I1"));
        // Spellings are not fuzzed: "il 6" does not find "IL-4" nor "IL4I1".
        assert!(rank("il6", &c, 10).is_empty());
    }

    #[test]
    fn the_query_as_typed_beats_its_other_spelling() {
        let c = [
            cand("fused", "IL6", "IL6", TermKind::Name),
            cand("spaced", "IL 6", "IL 6", TermKind::Name),
        ];
        assert_eq!(names(&rank("il6", &c, 10)), ["IL6", "IL 6"]);
        assert_eq!(names(&rank("il-6", &c, 10)), ["IL 6", "IL6"]);
        assert_eq!(rank("il6", &c, 10)[1].tier, Tier::ExactName);
    }

    #[test]
    fn limit_is_respected_and_empty_query_matches_nothing() {
        let cands = [
            cand("a", "x1", "x1", TermKind::Name),
            cand("b", "x2", "x2", TermKind::Name),
        ];
        assert_eq!(rank("x", &cands, 1).len(), 1);
        assert!(rank("   ", &cands, 10).is_empty());
    }
}
