use pgrx::prelude::*;

use crate::errors::invalid_parameter;

/// A random base62 uid of `len` characters; used as the DEFAULT of every
/// registry's `uid` column.
#[pg_extern(volatile, parallel_safe)]
fn uid(len: i32) -> String {
    if !(1..=64).contains(&len) {
        invalid_parameter(format!("uid length must be between 1 and 64, got {len}"));
    }
    lamin_core::uid::random_base62(len as usize)
}
