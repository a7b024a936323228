//! How long-running work reports how far it is: the CLI draws a progress
//! bar, the worker stores the counts on the job row (its heartbeat reads them).

use std::sync::atomic::{AtomicI64, Ordering};

/// Something that hears of work done. `start` announces a stage (hashing,
/// saving, …) and its total (bytes or items); `add` reports work done.
pub trait Progress: Send + Sync {
    fn start(&self, _what: &str, _total: u64) {}
    fn add(&self, n: u64);
    fn finish(&self) {}
}

/// No progress wanted.
pub struct Silent;

impl Progress for Silent {
    fn add(&self, _n: u64) {}
}

/// Work done and total as counters, read by another task (the job heartbeat).
#[derive(Debug, Default)]
pub struct Counter {
    done: AtomicI64,
    total: AtomicI64,
}

impl Counter {
    pub fn done(&self) -> i64 {
        self.done.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> i64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn set_done(&self, n: i64) {
        self.done.store(n, Ordering::Relaxed);
    }

    pub fn set_total(&self, n: i64) {
        self.total.store(n, Ordering::Relaxed);
    }
}

impl Progress for Counter {
    /// A new stage counts from zero against its own total.
    fn start(&self, _what: &str, total: u64) {
        self.set_done(0);
        self.set_total(total as i64);
    }

    fn add(&self, n: u64) {
        self.done.fetch_add(n as i64, Ordering::Relaxed);
    }
}
