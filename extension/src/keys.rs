use pgrx::prelude::*;

use crate::errors::invalid_parameter;

/// Raise an error naming the broken rule when `key` is not a valid artifact key;
/// return the key unchanged otherwise (so it can be used inline in SQL).
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn check_key(key: &str) -> &str {
    if let Err(e) = lamin_core::key::validate_key(key) {
        invalid_parameter(
            format!("invalid key {:?}: {e}", truncate(key)),
            "a key is a relative path of '/'-separated segments, e.g. 'folder/file.parquet'",
        );
    }
    key
}

/// Keep error messages readable when a key is huge.
fn truncate(s: &str) -> String {
    const MAX: usize = 120;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The file suffix of a key (`a/b.parquet` → `.parquet`, `x.tar.gz` → `.tar.gz`).
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn suffix_from_key(key: &str) -> String {
    lamin_core::key::suffix_from_key(key)
}
