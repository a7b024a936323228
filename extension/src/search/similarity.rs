//! lamin.similar_record: the duplicate guard's "did you mean" check.

use lamin_core::search_plan::{self as plan, SIMILAR_CANDIDATES, TERM_ROW_COLUMNS as COLS};
use pgrx::prelude::*;

use super::select_terms;

/// The closest existing record to a new name, if it is close but not equal (a
/// typo-tier match): the guard's "did you mean" check. Cheaper than a full
/// search: two index lookups (terms sharing the first characters, and terms
/// containing the name's longest word), ranked in Rust.
#[pg_extern(stable, parallel_safe)]
fn similar_record(
    registry: &str,
    name: &str,
) -> TableIterator<'static, (name!(uid, String), name!(name, String))> {
    let Some(look) = plan::similar_lookup(name) else {
        return TableIterator::new(Vec::new());
    };
    let rows = select_terms(
        &format!(
            "(SELECT {COLS} FROM lamin.search_term t
              WHERE t.registry = $1 AND t.term_norm >= $2 AND t.term_norm < $3 LIMIT {SIMILAR_CANDIDATES})
             UNION ALL
             (SELECT {COLS} FROM (SELECT w.term_id FROM lamin.search_word w
                                  WHERE w.registry = $1 AND w.word = $4 ORDER BY w.term_len LIMIT {SIMILAR_CANDIDATES}) w
              JOIN lamin.search_term t ON t.id = w.term_id)"
        ),
        &[
            registry.into(),
            look.head.as_str().into(),
            look.head_end.as_str().into(),
            look.longest_word.as_str().into(),
        ],
    );
    TableIterator::new(plan::similar_pick(name, &rows))
}
