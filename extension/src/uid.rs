use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use pgrx::prelude::*;

use crate::errors::invalid_parameter;

/// How many uids a backend remembers having handed out.
const REMEMBERED: usize = 1 << 16;

/// What lamin vouches for about a uid this backend remembers.
#[derive(Clone, Copy, Default)]
struct Vouched {
    /// Handed out (lamin.uid, lamin.new_family_uid) or admitted (a
    /// transfer): the backend may insert a record with it.
    issued: bool,
    /// The record will be the head of its version family and no other record
    /// of the family is a head (lamin.is_vouched_head): a new family's first
    /// version, whose random stem nobody else knows, or a next version whose
    /// family's head a bulk save has already demoted. The versioning trigger
    /// need not lock, look up or demote anything for it; the unique indexes
    /// (uid, one head per family, version tags) still refuse any mistake.
    head: bool,
}

thread_local! {
    /// The uids this backend handed out (lamin.uid), oldest first. A record a
    /// user inserts must carry one of them (or be a new version of a family
    /// the user can read): nobody can probe for a record of a space they
    /// cannot read by inserting its uid and reading the unique-key error.
    static ISSUED: RefCell<(HashMap<String, Vouched>, VecDeque<String>)> = RefCell::new((HashMap::new(), VecDeque::new()));
}

/// Remember `uid` with what is vouched for (added to what was before).
fn remember(uid: &str, what: Vouched) {
    ISSUED.with(|issued| {
        let (map, order) = &mut *issued.borrow_mut();
        match map.get_mut(uid) {
            Some(known) => {
                known.issued |= what.issued;
                known.head |= what.head;
            }
            None => {
                map.insert(uid.to_string(), what);
                order.push_back(uid.to_string());
                if order.len() > REMEMBERED {
                    if let Some(oldest) = order.pop_front() {
                        map.remove(&oldest);
                    }
                }
            }
        }
    });
}

const ISSUED_UID: Vouched = Vouched {
    issued: true,
    head: false,
};

/// A random base62 uid of `len` characters; used as the DEFAULT of every
/// registry's `uid` column. Parallel restricted: the uid is remembered by the
/// backend that inserts it, not by a parallel worker.
#[pg_extern(volatile, parallel_restricted)]
pub(crate) fn uid(len: i32) -> String {
    if !(1..=64).contains(&len) {
        invalid_parameter(
            format!("uid length must be between 1 and 64, got {len}"),
            "pass a length from 1 to 64",
        );
    }
    let uid = lamin_core::uid::random_base62(len as usize);
    remember(&uid, ISSUED_UID);
    uid
}

/// The uid of the first version of a new version family: a random stem of
/// `len - 4` characters and the counter `0000`, remembered as the start of a
/// family nobody else knows (a vouched head, lamin.is_vouched_head), so that
/// the versioning trigger skips its lock and look-ups for it. Used by the
/// save functions.
#[pg_extern(volatile, parallel_restricted)]
pub(crate) fn new_family_uid(len: i32) -> String {
    if !(5..=64).contains(&len) {
        invalid_parameter(
            format!("a versioned uid's length must be between 5 and 64, got {len}"),
            "pass the registry's uid length (20 for artifacts and collections, 16 for transforms)",
        );
    }
    let uid = lamin_core::uid::random_base62(len as usize - 4) + "0000";
    remember(
        &uid,
        Vouched {
            issued: true,
            head: true,
        },
    );
    uid
}

/// Let this backend insert a record with `uid` although lamin.uid did not
/// hand it out: a record transferred from another instance keeps its uid
/// (lamin.transfer_in). Only well-formed uids (base62, 8 to 20 characters).
/// The unique key may then refuse it, which is the one hint a transfer can
/// give of a record the caller cannot read (README "Transfer").
#[pg_extern(volatile, parallel_restricted, strict)]
pub(crate) fn admit_uid(uid: &str) {
    if !(8..=20).contains(&uid.len()) || !uid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        invalid_parameter(
            format!("invalid uid {uid:?}: expected 8 to 20 base62 characters"),
            "uids come from lamin.uid or from a transfer document of another instance",
        );
    }
    remember(uid, ISSUED_UID);
}

/// Whether this backend handed out `uid` with lamin.uid (among its last 65,536).
#[pg_extern(volatile, parallel_restricted, strict)]
pub(crate) fn uid_was_issued(uid: &str) -> bool {
    ISSUED.with(|issued| issued.borrow().0.get(uid).is_some_and(|v| v.issued))
}

/// Whether `uid` is vouched for as the head of its family (among this
/// backend's last 65,536 uids): from lamin.new_family_uid, or a next version
/// lamin.vouch_heads named after demoting its family's head.
#[pg_extern(volatile, parallel_restricted, strict)]
pub(crate) fn is_vouched_head(uid: &str) -> bool {
    ISSUED.with(|issued| issued.borrow().0.get(uid).is_some_and(|v| v.head))
}

/// Vouch for next versions as their families' heads: called by a bulk save
/// that holds its storage's saves lock and has just demoted those families'
/// heads, so that the versioning trigger neither locks nor looks up each
/// family again (a lock per family would fill the shared lock table for
/// thousands of new versions). Gives no right to insert a uid (the uid
/// check still asks for a readable family), and a wrong vouch only meets a
/// unique index: the one head per family, or the uid. Returns how many.
#[pg_extern(volatile, parallel_restricted, strict)]
pub(crate) fn vouch_heads(uids: Vec<Option<String>>) -> i32 {
    let mut n = 0;
    for uid in uids.into_iter().flatten() {
        remember(
            &uid,
            Vouched {
                issued: false,
                head: true,
            },
        );
        n += 1;
    }
    n
}

/// The 4-character base62 version counter for version number `n` (0 → `0000`).
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn version_suffix(n: i32) -> String {
    u32::try_from(n)
        .ok()
        .and_then(lamin_core::uid::version_suffix)
        .unwrap_or_else(|| {
            invalid_parameter(
                format!("version number {n} is outside 0..62^4: the family has too many versions"),
                "a family holds at most 62^4 versions: make a new record instead of another version",
            )
        })
}

/// The version number encoded by a 4-character base62 counter.
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn version_number(suffix: &str) -> i32 {
    lamin_core::uid::parse_version_suffix(suffix)
        .map(|n| n as i32)
        .unwrap_or_else(|| {
            invalid_parameter(
                format!("invalid version counter {suffix:?}: expected 4 base62 characters"),
                "a version counter is 4 base62 characters (0-9, A-Z, a-z), e.g. '0000'",
            )
        })
}

/// base62(md5(input)) cut to `len` characters: deterministic uids for records
/// keyed by an external id (bionty terms and genes).
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn base62_md5(input: &str, len: i32) -> String {
    if !(1..=22).contains(&len) {
        invalid_parameter(
            format!("md5 uid length must be between 1 and 22, got {len}"),
            "pass a length from 1 to 22 (an md5 has 22 base62 characters)",
        );
    }
    lamin_core::uid::base62_md5(input, len as usize)
}
