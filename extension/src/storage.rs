use pgrx::prelude::*;

use crate::errors::invalid_parameter;

/// Parse and normalise a storage root; returns its type (`local`, `s3`, `gs`,
/// `az`) and the normalised root. Used by `lamin.add_storage`.
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn parse_storage_root(
    root: &str,
) -> TableIterator<'static, (name!(type, String), name!(root, String))> {
    match lamin_core::storage_root::parse_root(root) {
        Ok(parsed) => TableIterator::once((parsed.kind.as_str().to_string(), parsed.root)),
        Err(e) => invalid_parameter(
            e.to_string(),
            "a storage root is a local folder or a URL of a bucket or container (s3://, gs://, az://)",
        ),
    }
}
