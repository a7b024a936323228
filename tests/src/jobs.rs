//! Waiting for sidecar jobs (and other things) from a test.

use std::time::{Duration, Instant};

/// Poll `done` every `poll` until it says true; fail naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, poll: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(poll);
    }
}

/// A job's status now.
pub fn job_status(db: &mut postgres::Client, id: i64) -> String {
    db.query_one("SELECT status FROM lamin.job WHERE id = $1", &[&id])
        .unwrap()
        .get(0)
}

/// Wait (up to 2 minutes) for a job's end: (status, result, error).
pub fn await_job(
    db: &mut postgres::Client,
    job: i64,
) -> (String, serde_json::Value, Option<String>) {
    // One step: the status, result and error as the job ended.
    let row = db
        .query_one(
            "SELECT status, coalesce(result, '{}')::text, error FROM lamin.await_job_outcome($1, 120)",
            &[&job],
        )
        .unwrap();
    let status: String = row.get(0);
    let result: String = row.get(1);
    (status, serde_json::from_str(&result).unwrap(), row.get(2))
}

/// The (latest) register job of an artifact.
pub fn register_job(db: &mut postgres::Client, uid: &str) -> i64 {
    db.query_one(
        "SELECT max(id) FROM lamin.job WHERE kind = 'register' AND args ->> 'uid' = $1",
        &[&uid],
    )
    .unwrap()
    .get(0)
}
