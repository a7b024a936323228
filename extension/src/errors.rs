//! Raising Postgres errors. Every error the extension's Rust code raises goes
//! through here, in one style: a SQLSTATE a client can branch on, a message
//! that names the offending value and the rule it broke, and a hint saying
//! what to do instead.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::SpiError;
use pgrx::PgLogLevel;

/// Raise `ERROR` with `code`, `message` and `hint`.
#[track_caller]
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>, hint: impl Into<String>) -> ! {
    ErrorReport::new(code, message.into(), "lamin")
        .set_hint(hint.into())
        .report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// Raise `ERROR` with SQLSTATE 22023 (invalid_parameter_value).
#[track_caller]
pub fn invalid_parameter(message: impl Into<String>, hint: impl Into<String>) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message,
        hint,
    )
}

/// The value of an argument that must not be NULL; raise `ERROR` with SQLSTATE
/// 22004 (null_value_not_allowed) naming it otherwise (never a panic).
#[track_caller]
pub fn required<T>(value: Option<T>, function: &str, argument: &str) -> T {
    match value {
        Some(v) => v,
        None => raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{function}: {argument} must not be NULL"),
            format!("pass a value for {argument}"),
        ),
    }
}

/// Raise `ERROR` with SQLSTATE XX000 (internal_error) for a query of lamin's
/// own that failed in a way no argument explains (a bug, or a damaged
/// schema): `what` says which query.
#[track_caller]
pub fn internal(what: &str, e: impl std::fmt::Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("lamin: internal query failed ({what}): {e}"),
        "this is a bug in lamin or a damaged lamin schema: report it with the statement that failed",
    )
}

/// The value of an SPI call, or an internal error naming the query.
#[track_caller]
pub fn spi<T>(result: Result<T, SpiError>, what: &str) -> T {
    result.unwrap_or_else(|e| internal(what, e))
}

/// The single value of an SPI query that returns at most one row: `None`
/// for no row or NULL; any other failure is an internal error.
#[track_caller]
pub fn spi_optional<T>(result: Result<Option<T>, SpiError>, what: &str) -> Option<T> {
    match result {
        Ok(v) => v,
        Err(SpiError::InvalidPosition) => None,
        Err(e) => internal(what, e),
    }
}
