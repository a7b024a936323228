//! Who is writing: `lamin.current_user_id()`, the lamin user row of the
//! current database role, which every registry's `created_by` defaults to.
//!
//! A column default runs once per inserted row. As a plpgsql function (until
//! 0.11.0) each call was a query and a search_path switch, about 5 µs: a
//! million-row insert spent 5 s on it. Here the answer is remembered per role
//! for the life of the backend, and a call costs a hash lookup.
//!
//! What is remembered is only a row that existed before this transaction:
//! a row this transaction created goes away again if it rolls back. Rows of
//! lamin.user are never deleted (every record's created_by refers to one; only
//! lamin's owner could), so a remembered id stays valid as long as the table
//! does: an invalidation of it (DROP EXTENSION and CREATE again in one
//! session, TRUNCATE) forgets everything, so ids of the old table are never
//! given out for the new one.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pgrx::prelude::*;

use crate::errors::spi;
use crate::reads::select_three;

thread_local! {
    /// Role oid → lamin.user id, for rows committed before they were looked up.
    static KNOWN: RefCell<HashMap<u32, i64>> = RefCell::new(HashMap::new());
    /// The oid of the lamin.user table those ids are rows of.
    static TABLE: Cell<u32> = const { Cell::new(0) };
}

/// Registered once per backend (_PG_init): forget the ids when lamin.user
/// changes as a table (or every relation is invalidated, relid 0).
pub(crate) fn watch_user_table() {
    // SAFETY: registers a plain function with the backend's relcache; it is
    // called between statements and only clears this module's map.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(forget), pg_sys::Datum::from(0usize)) }
}

unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let relid = relid.to_u32();
    if relid == 0 || relid == TABLE.with(Cell::get) {
        KNOWN.with(|k| {
            if let Ok(mut k) = k.try_borrow_mut() {
                k.clear();
            }
        });
    }
}

/// The lamin user id of the current role (current_user: the owner inside a
/// SECURITY DEFINER function), its row created on first use.
#[pg_extern(volatile, parallel_unsafe)]
pub(crate) fn current_user_id() -> i64 {
    // SAFETY: reads the backend's current user id; no pointers involved.
    let role = unsafe { pg_sys::GetUserId() }.to_u32();
    if let Some(id) = KNOWN.with(|k| k.borrow().get(&role).copied()) {
        return id;
    }
    let (id, xmin, table) = find().unwrap_or_else(|| {
        // Only a missing row is written: a read-only transaction (a hot
        // standby) answers for every role that has a row, and says what to
        // do for one that has none, instead of a failed INSERT.
        if crate::reads::read_only() {
            crate::errors::raise(
                PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
                "the current role has no lamin user yet, and this transaction is read-only (a hot standby, or READ ONLY)",
                "its user is created by its first write: connect to the primary (target_session_attrs=read-write) for writes",
            )
        }
        spi(
            Spi::run(
                "INSERT INTO lamin.\"user\" (handle) VALUES (CURRENT_USER) ON CONFLICT (handle) DO NOTHING",
            ),
            "creating the lamin user of the current role",
        );
        // Ours, or a concurrent session's that won the conflict.
        find().unwrap_or_else(|| {
            crate::errors::raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "the lamin user of the current role could not be created",
                "check the row-level security policies of lamin.user",
            )
        })
    });
    // SAFETY: a plain lookup in the backend's transaction state.
    let made_here = unsafe {
        pg_sys::TransactionIdIsCurrentTransactionId(pg_sys::TransactionId::from_inner(xmin))
    };
    if !made_here {
        if TABLE.with(Cell::get) != table {
            KNOWN.with(|k| k.borrow_mut().clear());
            TABLE.with(|t| t.set(table));
        }
        KNOWN.with(|k| k.borrow_mut().insert(role, id));
    }
    id
}

/// The user row of the current role: its id, the transaction that made it,
/// and the table's oid.
fn find() -> Option<(i64, u32, u32)> {
    let (id, xmin, table) = select_three::<i64, i64, i64>(
        "SELECT u.id, u.xmin::text::bigint, 'lamin.user'::pg_catalog.regclass::pg_catalog.oid::bigint
         FROM lamin.\"user\" u WHERE u.handle OPERATOR(pg_catalog.=) CURRENT_USER",
        &[],
        "looking up the lamin user of the current role",
    )?;
    Some((id?, u32::try_from(xmin?).ok()?, u32::try_from(table?).ok()?))
}
