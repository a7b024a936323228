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

/// Work done and total as counters, and the stage they count, read by
/// another task (the job heartbeat).
#[derive(Debug, Default)]
pub struct Counter {
    done: AtomicI64,
    total: AtomicI64,
    stage: std::sync::Mutex<Option<String>>,
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

    /// The stage last started, if one was.
    pub fn stage(&self) -> Option<String> {
        self.stage.lock().expect("progress stage").clone()
    }
}

impl Progress for Counter {
    /// A new stage counts from zero against its own total.
    fn start(&self, what: &str, total: u64) {
        *self.stage.lock().expect("progress stage") = Some(what.to_string());
        self.set_done(0);
        self.set_total(total as i64);
    }

    fn add(&self, n: u64) {
        self.done.fetch_add(n as i64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_counts_from_zero_and_is_named() {
        let c = Counter::default();
        assert_eq!(c.stage(), None);
        c.start("reading bionty.organism 2025-01", 100);
        c.add(100);
        assert_eq!((c.done(), c.total()), (100, 100));
        c.start("merging 5 terms into bionty.organism", 0);
        assert_eq!((c.done(), c.total()), (0, 0));
        assert_eq!(
            c.stage().as_deref(),
            Some("merging 5 terms into bionty.organism")
        );
    }
}
