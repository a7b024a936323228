//! search / validate / standardize / inspect / similar_record: pgrx glue. The
//! planning (candidate ranges, term kinds, the merge of standardize results)
//! is the pure `lamin_core::search_plan`, ranking `lamin_core::rank`; these
//! modules check arguments and run the queries. Candidates come from the
//! lamin.search_term index (see sql/15_search.sql); registry and field names
//! are checked against the catalog and quoted before they reach any SQL.
//!
//! - `query`: lamin.search (and under a term), with spelling correction;
//! - `curation`: validate, standardize, inspect;
//! - `similarity`: similar_record, the duplicate guard's "did you mean".

mod curation;
mod query;
mod similarity;

use lamin_core::rank::{self, TermKind};
use lamin_core::search_plan::{Registry, TermRow};
use lamin_core::sql::shown;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiHeapTupleData;

use crate::errors::{invalid_parameter, spi};

/// Lower case, punctuation as single spaces: the form search matches on.
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn normalize_term(term: &str) -> String {
    rank::normalize(term)
}

/// Words too common to help find anything (one list, shared with the index triggers).
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn is_stop_word(word: &str) -> bool {
    rank::is_stop_word(word)
}

/// The code lamin.search_term.kind stores for a kind of term (name, synonym,
/// abbreviation, id): SQL's one source of the codes (`lamin_core::rank::TermKind`).
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn term_kind(name: &str) -> i16 {
    match TermKind::from_name(name) {
        Some(kind) => kind.code(),
        None => invalid_parameter(
            format!(
                "unknown term kind {}: the kinds are {}",
                shown(name),
                kind_names()
            ),
            "pass one of the kind names",
        ),
    }
}

/// The name of the kind of term stored as `kind`; NULL for a code no kind has.
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn term_kind_name(kind: i16) -> Option<&'static str> {
    TermKind::from_code(kind).map(TermKind::name)
}

fn kind_names() -> String {
    TermKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column of an SPI row; a type mismatch (a bug) is an internal error.
fn col<T: IntoDatum + FromDatum>(row: &SpiHeapTupleData, n: usize, what: &str) -> Option<T> {
    spi(row.get::<T>(n), what)
}

/// The first column of every row of a query, NULLs left out.
fn select_column<T: IntoDatum + FromDatum>(sql: &str, args: &[DatumWithOid], what: &str) -> Vec<T> {
    Spi::connect(|client| {
        spi(client.select(sql, None, args), what)
            .filter_map(|row| col::<T>(&row, 1, what))
            .collect()
    })
}

/// The single value of a query (`None` for no row or NULL).
fn select_one<T: IntoDatum + FromDatum>(sql: &str, args: &[DatumWithOid], what: &str) -> Option<T> {
    crate::reads::select_one(sql, args, what)
}

/// Candidate terms: a query selecting `search_plan::TERM_ROW_COLUMNS`.
fn select_terms(sql: &str, args: &[DatumWithOid]) -> Vec<TermRow> {
    const WHAT: &str = "candidate terms";
    Spi::connect(|client| {
        spi(client.select(sql, None, args), WHAT)
            .filter_map(|row| {
                Some(TermRow {
                    registry: col(&row, 1, WHAT)?,
                    uid: col(&row, 2, WHAT)?,
                    name: col(&row, 3, WHAT)?,
                    kind: col(&row, 4, WHAT)?,
                    term: col(&row, 5, WHAT)?,
                    deprecated: col(&row, 6, WHAT)?,
                })
            })
            .collect()
    })
}

/// Look a registry up in lamin.registry; unknown names get an error listing the valid ones.
fn load_registry(name: &str) -> Registry {
    const WHAT: &str = "registry configuration";
    let found = Spi::connect(|client| {
        let rows = spi(
            client.select(
                "SELECT r.name, r.name_field, r.organism_field, r.id_field, r.abbr_field,
                        EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.name::regclass
                                AND a.attname = 'branch_id' AND NOT a.attisdropped)
                 FROM lamin.registry r WHERE r.name = $1",
                None,
                &[name.into()],
            ),
            WHAT,
        );
        rows.into_iter().next().map(|row| Registry {
            name: col(&row, 1, WHAT).unwrap_or_default(),
            name_field: col(&row, 2, WHAT).unwrap_or_default(),
            organism_field: col(&row, 3, WHAT),
            id_field: col(&row, 4, WHAT),
            abbr_field: col(&row, 5, WHAT),
            has_branch: col(&row, 6, WHAT).unwrap_or(false),
        })
    });
    found.unwrap_or_else(|| {
        let known: String = select_one(
            "SELECT string_agg(name, ', ' ORDER BY name) FROM lamin.registry",
            &[],
            "registry names",
        )
        .unwrap_or_default();
        invalid_parameter(
            format!("unknown registry {}: searchable registries are {known}", shown(name)),
            "pass one of the searchable registries (lamin.registries), or make the table searchable with lamin.make_searchable()",
        )
    })
}

/// The field to compare against: the registry's name field by default, else a
/// text column of the registry (checked against the catalog).
fn resolve_field(reg: &Registry, field: Option<&str>) -> String {
    let Some(field) = field else {
        return reg.name_field.clone();
    };
    let text_fields: Vec<String> = select_column(
        "SELECT a.attname::text FROM pg_attribute a
         WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
           AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
         ORDER BY a.attnum",
        &[reg.name.as_str().into()],
        "text fields of a registry",
    );
    if text_fields.iter().any(|f| f == field) {
        field.to_string()
    } else {
        invalid_parameter(
            format!(
                "unknown field {} of registry {}: its text fields are {}",
                shown(field),
                reg.name,
                text_fields.join(", ")
            ),
            "pass one of the registry's text fields, or NULL for its name field",
        )
    }
}

/// An organism only for registries that have one.
fn check_organism(reg: &Registry, organism: Option<&str>) {
    if let (Some(o), None) = (organism, &reg.organism_field) {
        invalid_parameter(
            format!(
                "registry {} has no organism: leave the organism argument NULL (got {})",
                reg.name,
                shown(o)
            ),
            "registries with an organism column: see lamin.registries.organism_field",
        );
    }
}
