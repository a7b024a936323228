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
