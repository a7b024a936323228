//! Which lamin is installed. Two versions can differ for a while: the shared
//! library (replaced when a new release is installed on the server) and the
//! SQL objects (replaced only by `ALTER EXTENSION lamin UPDATE`). Clients
//! check the SQL version, since that is what they talk to.

use pgrx::prelude::*;

use crate::errors::raise;
use crate::reads::select_one;

/// The version of the installed SQL objects (`pg_extension.extversion`): what
/// the sidecar and the CLI compare with their own before they use the schema.
/// (Until 0.2.0 this was the library's version; the symbol stays the same so
/// that 0.1.0's script, run against a newer library, also answers truthfully.)
#[pg_extern(stable, parallel_safe)]
pub(crate) fn version() -> String {
    let installed = select_one::<String>(
        "SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'lamin'",
        &[],
        "the installed extension's version",
    );
    installed.unwrap_or_else(|| {
        // (SQLSTATE XX000, as error! raised it before.)
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "the lamin extension is not installed in this database",
            "CREATE EXTENSION lamin CASCADE, or connect to the database that has it",
        )
    })
}

/// The version of the shared library this backend has loaded (`lamin.so`).
#[pg_extern(stable, parallel_safe)]
pub(crate) fn library_version() -> &'static str {
    lamin_core::VERSION
}
