use pgrx::prelude::*;

use crate::errors::invalid_parameter;

/// A random base62 uid of `len` characters; used as the DEFAULT of every
/// registry's `uid` column.
#[pg_extern(volatile, parallel_safe)]
pub(crate) fn uid(len: i32) -> String {
    if !(1..=64).contains(&len) {
        invalid_parameter(format!("uid length must be between 1 and 64, got {len}"));
    }
    lamin_core::uid::random_base62(len as usize)
}

/// The 4-character base62 version counter for version number `n` (0 → `0000`).
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn version_suffix(n: i32) -> String {
    u32::try_from(n)
        .ok()
        .and_then(lamin_core::uid::version_suffix)
        .unwrap_or_else(|| {
            invalid_parameter(format!(
                "version number {n} is outside 0..62^4: the family has too many versions"
            ))
        })
}

/// The version number encoded by a 4-character base62 counter.
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn version_number(suffix: &str) -> i32 {
    lamin_core::uid::parse_version_suffix(suffix)
        .map(|n| n as i32)
        .unwrap_or_else(|| {
            invalid_parameter(format!(
                "invalid version counter {suffix:?}: expected 4 base62 characters"
            ))
        })
}

/// base62(md5(input)) cut to `len` characters: deterministic uids for records
/// keyed by an external id (bionty terms and genes).
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn base62_md5(input: &str, len: i32) -> String {
    if !(1..=22).contains(&len) {
        invalid_parameter(format!(
            "md5 uid length must be between 1 and 22, got {len}"
        ));
    }
    lamin_core::uid::base62_md5(input, len as usize)
}
