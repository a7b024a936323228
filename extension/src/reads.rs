//! Queries that only read, run as read-only SPI.
//!
//! pgrx's one-row helpers (`Spi::get_one`, `get_two`, `get_three` and their
//! `_with_args` forms) run their query read-write: they first ask Postgres for
//! the transaction's id. On a hot standby that fails ("cannot assign
//! TransactionIds during recovery"), so `lamin.search` and `lamin.version()`
//! failed on every read replica; on a primary it used up a transaction id per
//! search and wrote a commit record for it. Every query of the extension that
//! only reads goes through `Spi::connect` and `select`, here or as the search
//! module does.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use crate::errors::spi_optional;

/// The single value of a read-only query: `None` for no row or NULL.
#[track_caller]
pub(crate) fn select_one<T: IntoDatum + FromDatum>(
    sql: &str,
    args: &[DatumWithOid],
    what: &str,
) -> Option<T> {
    spi_optional(
        Spi::connect(|client| client.select(sql, Some(1), args)?.first().get_one::<T>()),
        what,
    )
}

/// The first row of a read-only query, three columns: `None` for no row.
#[track_caller]
pub(crate) fn select_three<A, B, C>(
    sql: &str,
    args: &[DatumWithOid],
    what: &str,
) -> Option<(Option<A>, Option<B>, Option<C>)>
where
    A: IntoDatum + FromDatum,
    B: IntoDatum + FromDatum,
    C: IntoDatum + FromDatum,
{
    spi_optional(
        Spi::connect(|client| {
            client
                .select(sql, Some(1), args)?
                .first()
                .get_three::<A, B, C>()
                .map(Some)
        }),
        what,
    )
}

/// Whether this transaction cannot write: a hot standby (in recovery), or a
/// transaction begun READ ONLY (`default_transaction_read_only`).
pub(crate) fn read_only() -> bool {
    // SAFETY: reads two backend flags; no pointers involved.
    unsafe { pg_sys::RecoveryInProgress() || pg_sys::XactReadOnly }
}
