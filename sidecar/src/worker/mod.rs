//! The job worker (`lamin daemon`): claim jobs that SQL enqueued, run each
//! as the role that enqueued it, keep their leases alive, record their ends.
//!
//! `job` is at the bottom (the job, its kinds and arguments, failures, the
//! context); `dispatch` turns a job into a library request; `runner` runs
//! one job with its heartbeat; `retention` prunes finished jobs; `daemon` is
//! the connection and claim loop.

pub mod backoff;
pub mod daemon;
pub mod dispatch;
pub mod job;
pub mod retention;
pub mod runner;
