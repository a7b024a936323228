use pgrx::prelude::*;

/// The version of the installed lamin code (extension and sidecar share it).
#[pg_extern(immutable, parallel_safe)]
fn version() -> &'static str {
    lamin_core::VERSION
}
