//! Curation: lamin.validate, lamin.standardize, lamin.inspect. Exact lookups
//! in the registry's field and term lookups in the search index; the merge of
//! their results is `lamin_core::search_plan::map_values`.

use std::collections::{HashMap, HashSet};

use lamin_core::search_plan::{
    self as plan, Mapping, Registry, TermMatch, MAX_SUGGESTIONS, MAX_VALUES,
};
use lamin_core::sql::quote_ident;
use pgrx::datum::Array;
use pgrx::prelude::*;

use super::query::run_search;
use super::{check_organism, col, load_registry, resolve_field, select_column, select_one};
use crate::errors::{invalid_parameter, required, spi};

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
        exact_matches(&reg, &field, &plan::distinct_values(&vals), organism)
    };
    Some(vals.iter().map(|v| v.map(|v| found.contains(v))).collect())
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
    let mapped = map_values(&reg, &field, &plan::distinct_values(&vals), organism);
    Some(
        vals.iter()
            .map(|v| v.map(|v| plan::standardized(v, mapped.get(v), keep_first)))
            .collect(),
    )
}

/// One row per distinct input: whether it validates, what it standardizes to,
/// and for values that do neither, the closest record ("did you mean") or the
/// candidates of an ambiguous synonym.
#[allow(clippy::type_complexity)]
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
    let distinct = plan::distinct_values(&vals);
    let mapped = map_values(&reg, &field, &distinct, organism);
    let mut suggestions_left = MAX_SUGGESTIONS;
    let mut rows = Vec::with_capacity(distinct.len());
    for v in distinct {
        let row = plan::inspect_row(v, mapped.get(v)).unwrap_or_else(|| {
            let suggestion = if suggestions_left > 0 {
                suggestions_left -= 1;
                suggest(&reg, &field, v, organism)
            } else {
                None
            };
            (Some(v.to_string()), false, None, suggestion)
        });
        rows.push(row);
    }
    if vals.iter().any(Option::is_none) {
        rows.push((None, false, None, None));
    }
    TableIterator::new(rows)
}

/// At most `MAX_VALUES` values per call.
fn check_value_count(n: usize) {
    if n > MAX_VALUES {
        invalid_parameter(
            format!("too many values: {n} (at most {MAX_VALUES} per call)"),
            "pass the distinct values, or split the list",
        );
    }
}

/// Whether `n` lookups are better served by reading the registry whole.
fn read_whole_registry(reg: &Registry, n: usize) -> bool {
    if n < plan::BULK_LOOKUP_MIN {
        return false;
    }
    let rows = select_one::<f32>(
        "SELECT reltuples FROM pg_class WHERE oid = $1::regclass",
        &[reg.name.as_str().into()],
        "registry size",
    )
    .unwrap_or(0.0);
    plan::read_whole(n, rows)
}

/// Every value of `field` in the registry (live records of the organism).
fn field_values(reg: &Registry, field: &str, organism: Option<&str>) -> HashSet<String> {
    let sql = format!(
        "SELECT DISTINCT r.{f}::text FROM {table} r WHERE r.{f} IS NOT NULL{filter}",
        f = quote_ident(field),
        table = reg.table(),
        filter = reg.record_filter(organism, 1)
    );
    select_column::<String>(&sql, &[organism.map(str::to_string).into()], "field values")
        .into_iter()
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
    let found: HashSet<String> = select_column::<String>(
        &sql,
        &[list.into(), organism.map(str::to_string).into()],
        "exact field values",
    )
    .into_iter()
    .collect();
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

/// Map distinct values (see `search_plan::map_values`): the exact matches,
/// then the terms of the search index that match the rest case-insensitively.
fn map_values(
    reg: &Registry,
    field: &str,
    values: &[&str],
    organism: Option<&str>,
) -> HashMap<String, Mapping> {
    const WHAT: &str = "matching terms";
    let exact = exact_matches(reg, field, values, organism);
    let mut rest = plan::folds_to_look_up(values, &exact);
    let mut matches: Vec<TermMatch> = Vec::new();
    if !rest.is_empty() {
        let whole = read_whole_registry(reg, rest.len());
        let sql = format!(
            "SELECT t.term_fold::text, t.kind, r.{f}::text
             FROM lamin.search_term t JOIN {table} r ON r.id = t.record_id
             WHERE {cond} AND r.{f} IS NOT NULL{filter}
             ORDER BY r.id",
            f = quote_ident(field),
            table = reg.table(),
            // The registry in collation "C" matches search_term_fold whole
            // (sql/15_search.sql); reading the whole registry uses its own index.
            cond = if whole {
                "t.registry = $1"
            } else {
                "t.term_fold = ANY($2) AND t.registry COLLATE \"C\" = $1"
            },
            filter = reg.record_filter(organism, 3)
        );
        if whole {
            rest.clear();
        }
        matches = Spi::connect(|client| {
            spi(
                client.select(
                    sql.as_str(),
                    None,
                    &[
                        reg.name.as_str().into(),
                        rest.into(),
                        organism.map(str::to_string).into(),
                    ],
                ),
                WHAT,
            )
            .filter_map(|row| {
                Some(TermMatch {
                    fold: col(&row, 1, WHAT)?,
                    kind: col(&row, 2, WHAT)?,
                    value: col(&row, 3, WHAT)?,
                })
            })
            .collect()
        });
    }
    plan::map_values(values, &exact, reg.kind_of(field), &matches)
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
    select_one::<String>(&sql, &[hit.uid.into()], "suggested field value")
}
