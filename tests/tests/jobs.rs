//! The job queue with real sidecars: exactly-once with three sidecars,
//! Postgres restarts, kill -9 and SIGTERM mid-job, NOTIFY at commit only,
//! imports enqueued from SQL, and finished jobs pruned after their retention.

use std::time::{Duration, Instant};

use lamin_e2e::{fixture, job_status, wait_until, Cluster, Sidecar};

/// How often these tests look again: each look is a query.
const POLL: Duration = Duration::from_millis(50);

fn count(db: &mut postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().get(0)
}

/// The database's job kinds (`lamin.job_kind`) and the kinds the sidecar
/// runs are the same list, and agree on which are lamin's own (internal).
#[test]
fn the_database_and_the_sidecar_know_the_same_job_kinds() {
    use lamin_sidecar::worker::job::Kind;
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let mut in_db: Vec<(String, bool)> = db
        .query("SELECT kind, internal FROM lamin.job_kind", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    in_db.sort();
    let mut in_sidecar: Vec<(String, bool)> = Kind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), k.is_internal()))
        .collect();
    in_sidecar.sort();
    assert_eq!(in_db, in_sidecar);
}

#[test]
fn three_sidecars_run_a_thousand_jobs_each_exactly_once() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.batch_execute(
        "SELECT lamin.enqueue('noop', jsonb_build_object('n', i)) FROM generate_series(1, 1000) i",
    )
    .unwrap();
    let sidecars: Vec<Sidecar> = (0..3)
        .map(|i| Sidecar::start(&cluster, &format!("s{i}")))
        .collect();
    wait_until("1000 jobs done", Duration::from_secs(120), POLL, || {
        count(
            &mut db,
            "SELECT count(*) FROM lamin.job WHERE status = 'done'",
        ) == 1000
    });
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM lamin.job WHERE attempts <> 1"
        ),
        0,
        "every job ran once"
    );
    // The sidecars' own logs agree: 1000 starts in all, no id twice.
    let mut started: Vec<u64> = Vec::new();
    let mut per_sidecar = Vec::new();
    for s in &sidecars {
        let log = s.log();
        let ids: Vec<u64> = log
            .lines()
            .filter(|l| l.contains("job started"))
            .filter_map(|l| {
                l.split("job=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        per_sidecar.push(ids.len());
        started.extend(ids);
    }
    started.sort_unstable();
    let n = started.len();
    started.dedup();
    assert_eq!(
        (n, started.len()),
        (1000, 1000),
        "starts per sidecar: {per_sidecar:?}"
    );
    assert!(
        per_sidecar.iter().filter(|&&c| c > 0).count() >= 2,
        "work was shared: {per_sidecar:?}"
    );
}

#[test]
fn a_postgres_restart_in_the_middle_of_a_hundred_jobs_loses_none() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.batch_execute(
        "SELECT lamin.enqueue('sleep', '{\"seconds\": 0.05}') FROM generate_series(1, 100)",
    )
    .unwrap();
    let sidecar = Sidecar::start_with(&cluster, "s", &["--concurrency", "2", "--lease-s", "3"]);
    wait_until("some jobs done", Duration::from_secs(60), POLL, || {
        count(
            &mut db,
            "SELECT count(*) FROM lamin.job WHERE status = 'done'",
        ) >= 10
    });
    cluster.restart();
    let mut db = cluster.connect();
    wait_until(
        "all 100 done after the restart",
        Duration::from_secs(120),
        POLL,
        || {
            count(
                &mut db,
                "SELECT count(*) FROM lamin.job WHERE status = 'done'",
            ) == 100
        },
    );
    assert!(
        sidecar.log().contains("reconnecting"),
        "the sidecar noticed the restart"
    );
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM lamin.job WHERE status <> 'done'"
        ),
        0
    );
}

#[test]
fn a_job_of_a_killed_sidecar_is_taken_over_when_its_lease_runs_out() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let id: i64 = db
        .query_one("SELECT lamin.enqueue('sleep', '{\"seconds\": 2}')", &[])
        .unwrap()
        .get(0);
    let mut first = Sidecar::start_with(&cluster, "first", &["--lease-s", "3"]);
    first.wait_for_log(&format!("job started job={id}"), 1, Duration::from_secs(30));
    first.kill9();
    assert_eq!(
        job_status(&mut db, id),
        "running",
        "the dead sidecar's job stays running until its lease ends"
    );
    let second = Sidecar::start_with(&cluster, "second", &["--lease-s", "3"]);
    wait_until(
        "the job done by the second sidecar",
        Duration::from_secs(30),
        POLL,
        || job_status(&mut db, id) == "done",
    );
    let (attempts, worker): (i32, String) = {
        let r = db
            .query_one(
                "SELECT attempts, worker FROM lamin.job WHERE id = $1",
                &[&id],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(attempts, 2);
    assert!(
        second.log().contains(&worker),
        "done by the second sidecar ({worker})"
    );
}

#[test]
fn sigterm_hands_a_running_job_back_and_another_sidecar_finishes_it() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let id: i64 = db
        .query_one("SELECT lamin.enqueue('sleep', '{\"seconds\": 20}')", &[])
        .unwrap()
        .get(0);
    let mut first = Sidecar::start_with(&cluster, "first", &["--shutdown-grace-s", "1"]);
    first.wait_for_log(&format!("job started job={id}"), 1, Duration::from_secs(30));
    let exit = first.terminate(Duration::from_secs(15));
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    assert_eq!(
        job_status(&mut db, id),
        "queued",
        "handed back at once, not left to a lease"
    );
    assert!(first
        .log()
        .contains("unfinished jobs handed back to the queue"));
    db.execute(
        "UPDATE lamin.job SET args = '{\"seconds\": 0.1}' WHERE id = $1",
        &[&id],
    )
    .unwrap();
    let _second = Sidecar::start(&cluster, "second");
    wait_until(
        "the job done after the handover",
        Duration::from_secs(30),
        POLL,
        || job_status(&mut db, id) == "done",
    );
}

/// A sidecar stopped in the middle of a stream of short jobs records every
/// job it finished (their completions are written before it hands anything
/// back), hands back only the one still running, and leaves no job
/// `running` behind it for a lease to recover.
#[test]
fn a_stopping_sidecar_records_what_it_finished_and_hands_back_only_the_rest() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.batch_execute(
        "SELECT lamin.enqueue('noop') FROM generate_series(1, 20000);
         SELECT lamin.enqueue('sleep', '{\"seconds\": 30}')",
    )
    .unwrap();
    let mut sidecar = Sidecar::start_with(&cluster, "s", &["--shutdown-grace-s", "1"]);
    wait_until("some jobs done", Duration::from_secs(60), POLL, || {
        count(
            &mut db,
            "SELECT count(*) FROM lamin.job WHERE status = 'done'",
        ) >= 500
    });
    let exit = sidecar.terminate(Duration::from_secs(30));
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM lamin.job WHERE status = 'running'"
        ),
        0,
        "no job left running for a lease to recover"
    );
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM lamin.job WHERE kind = 'noop' AND status = 'queued' AND attempts > 0"
        ),
        0,
        "no finished job was handed back"
    );
}

/// The sidecar prunes finished jobs past its retention, failed ones later
/// than done ones, and never a queued or running one.
#[test]
fn the_sidecar_prunes_finished_jobs_after_their_retention() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let done: Vec<i64> = db
        .query(
            "SELECT lamin.enqueue('noop') FROM generate_series(1, 50)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let failed: i64 = db
        .query_one(
            "SELECT lamin.enqueue('fail', '{\"message\": \"kept\"}', 1)",
            &[],
        )
        .unwrap()
        .get(0);
    // A job that is still waiting (its back-off not over) is never pruned.
    let waiting: i64 = db
        .query_one("SELECT lamin.enqueue('noop')", &[])
        .unwrap()
        .get(0);
    db.execute(
        "UPDATE lamin.job SET run_after = now() + interval '1 hour' WHERE id = $1",
        &[&waiting],
    )
    .unwrap();
    let sidecar = Sidecar::start_with(
        &cluster,
        "s",
        &[
            "--keep-done-jobs",
            "2s",
            "--keep-failed-jobs",
            "1h",
            "--prune-interval-s",
            "1",
        ],
    );
    wait_until(
        "the failed job failed",
        Duration::from_secs(30),
        POLL,
        || job_status(&mut db, failed) == "failed",
    );
    wait_until("50 done jobs pruned", Duration::from_secs(30), POLL, || {
        count(
            &mut db,
            &format!("SELECT count(*) FROM lamin.job WHERE id = ANY (ARRAY{done:?})"),
        ) == 0
    });
    sidecar.wait_for_log(
        "finished jobs past their retention pruned",
        1,
        Duration::from_secs(10),
    );
    assert_eq!(
        job_status(&mut db, failed),
        "failed",
        "failed jobs are kept longer"
    );
    assert_eq!(
        job_status(&mut db, waiting),
        "queued",
        "a queued job is never pruned"
    );
    let gone = db
        .query_one("SELECT lamin.await_job($1, 0)", &[&done[0]])
        .unwrap_err();
    let gone = gone.as_db_error().expect("a database error");
    assert_eq!(gone.message(), format!("no job {}", done[0]));
    assert!(
        gone.hint().unwrap_or_default().contains("--keep-done-jobs"),
        "{gone:?}"
    );
}

#[test]
fn a_job_wakes_the_sidecar_at_commit_and_an_aborted_one_never_exists() {
    let cluster = Cluster::start();
    let sidecar = Sidecar::start_with(&cluster, "s", &["--sweep-interval-s", "3600"]);
    sidecar.wait_for_log("listening for jobs", 1, Duration::from_secs(30));
    let mut db = cluster.connect();
    let mut tx = db.transaction().unwrap();
    let id: i64 = tx
        .query_one("SELECT lamin.enqueue('noop')", &[])
        .unwrap()
        .get(0);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !sidecar.log().contains(&format!("job started job={id}")),
        "not before commit"
    );
    tx.commit().unwrap();
    let started = Instant::now();
    let mut db = cluster.connect();
    let final_status: String = db
        .query_one("SELECT lamin.await_job($1, 10)", &[&id])
        .unwrap()
        .get(0);
    assert_eq!(final_status, "done");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "woken by NOTIFY, not a sweep: {:?}",
        started.elapsed()
    );

    let mut tx = db.transaction().unwrap();
    let aborted: i64 = tx
        .query_one("SELECT lamin.enqueue('noop')", &[])
        .unwrap()
        .get(0);
    tx.rollback().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        count(
            &mut db,
            &format!("SELECT count(*) FROM lamin.job WHERE id = {aborted}")
        ),
        0
    );
    assert!(!sidecar
        .log()
        .contains(&format!("job started job={aborted}")));
}

#[test]
fn imports_enqueued_from_sql_run_in_the_sidecar_and_stay_in_its_folder() {
    let cluster = Cluster::start();
    let dir = fixture("bionty");
    let _sidecar = Sidecar::start_with(&cluster, "s", &["--import-dir", dir.to_str().unwrap()]);
    let mut db = cluster.connect();
    let id: i64 = db
        .query_one(
            "SELECT lamin.import_ontology('cell_type', 'cl-cut.json.zst', 'cl', 'v1', 'CL, CC-BY 4.0: a job keeps the attribution')",
            &[],
        )
        .unwrap()
        .get(0);
    let st: String = db
        .query_one("SELECT lamin.await_job($1, 60)", &[&id])
        .unwrap()
        .get(0);
    let row = db
        .query_one(
            "SELECT error, result::text FROM lamin.job WHERE id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(st, "done", "error: {:?}", row.get::<_, Option<String>>(0));
    let result: String = row.get(1);
    assert!(result.contains("202 new"), "{result}");
    assert_eq!(count(&mut db, "SELECT count(*) FROM bionty.cell_type"), 202);
    let described: Option<String> = db
        .query_one(
            "SELECT description FROM bionty.source WHERE entity = 'bionty.cell_type' AND currently_used",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        described.as_deref(),
        Some("CL, CC-BY 4.0: a job keeps the attribution"),
        "the job's description is the source's"
    );

    // Paths out of the folder are refused by SQL; a missing file fails the job.
    let err = db
        .query_one(
            "SELECT lamin.import_ontology('cell_type', '../../etc/passwd')",
            &[],
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("relative path inside the sidecar's import folder")
            || format!("{err:?}").contains("relative path")
    );
    let id: i64 = db
        .query_one(
            "SELECT lamin.import_ontology('cell_type', 'missing.obo')",
            &[],
        )
        .unwrap()
        .get(0);
    // A failed job's status and error in one step (await_job would raise it).
    let row = db
        .query_one(
            "SELECT status, error FROM lamin.await_job_outcome($1, 30)",
            &[&id],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "failed");
    let error: String = row.get(1);
    assert!(
        error.contains("missing.obo: no such file in the import folder"),
        "{error}"
    );
}
