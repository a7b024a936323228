//! Raising Postgres errors with a SQLSTATE a client can branch on.

use pgrx::prelude::*;

/// Raise `ERROR` with SQLSTATE 22023 (invalid_parameter_value).
pub fn invalid_parameter(message: impl Into<String>) -> ! {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message.into()
    );
}

/// The value of an argument that must not be NULL; raise `ERROR` with SQLSTATE
/// 22004 (null_value_not_allowed) naming it otherwise (never a panic).
pub fn required<T>(value: Option<T>, function: &str, argument: &str) -> T {
    let Some(v) = value else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{function}: {argument} must not be NULL")
        );
    };
    v
}
