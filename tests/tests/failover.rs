//! Sidecars on several hosts and failover (issue 21). Two sidecars, each on a
//! host of its own (a network namespace with its own address, made by the
//! test), work one queue against a primary with a synchronous hot standby;
//! the storage is an S3 server they share. While register jobs run and a
//! pipeline on one host saves files with the CLI, the primary is stopped at
//! once and the standby promoted. Every DATABASE_URL lists both servers with
//! target_session_attrs=read-write, so the sidecars and the CLI find the new
//! primary by themselves. Afterwards: every job done once, every file one
//! ready artifact with the right hash, nothing left pending after a sweep,
//! and the sidecars take new work from the new primary.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lamin_e2e::netns::Network;
use lamin_e2e::{
    db_message, fixture, lamin_bin, register_job, stderr_text, wait_until, Cluster, S3Server,
    Sidecar,
};
use sha2::{Digest, Sha256};

const REGISTERED_BEFORE: usize = 40;
const REGISTERED_AFTER: usize = 20;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Distinct content for object `i`, big enough that hashing takes a moment.
fn content(kind: &str, i: usize) -> Vec<u8> {
    let mut bytes = format!("{kind} {i}\n").into_bytes();
    bytes.extend(std::iter::repeat_n(b'x', 4_000_000 + i));
    bytes
}

/// Register objects already in the bucket; returns their uids.
fn register(db: &mut postgres::Client, range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| {
            db.query_one(
                "SELECT lamin.register($1)",
                &[&format!("s3://lab/data/ext/{i}.bin")],
            )
            .unwrap_or_else(|e| panic!("register {i}: {}", db_message(&e)))
            .get(0)
        })
        .collect()
}

/// Sets the flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn sidecars_on_two_hosts_carry_on_through_a_failover_without_losing_work() {
    let net = Network::create(3);
    let s3 = S3Server::start_on(&net.gateway);
    s3.create_bucket("lab");
    let primary = Cluster::start_reachable(&net.gateway, &net.subnet);
    let mut db = primary.connect();
    db.execute("SELECT lamin.add_storage('s3://lab/data')", &[])
        .unwrap();
    let standby = primary.start_standby();
    primary.wait_for_replay(&standby);
    // Synchronous replication (what an HA manager such as Patroni's
    // synchronous mode sets): a commit returns once the standby has it.
    db.execute("ALTER SYSTEM SET synchronous_standby_names = '*'", &[])
        .unwrap();
    db.execute("SELECT pg_reload_conf()", &[]).unwrap();
    wait_until(
        "the standby to be synchronous",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            db.query_one(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
                == 1
        },
    );
    // Both servers, the writable one wanted: what every client gets.
    let url = format!(
        "postgresql://{}:{}@{gw}:{},{gw}:{}/{}?target_session_attrs=read-write",
        primary.user,
        primary.password,
        primary.port,
        standby.port,
        primary.dbname,
        gw = net.gateway
    );
    let env = s3.env();
    let logs = tempfile::tempdir().unwrap();
    let sidecars: Vec<Sidecar> = net.hosts[..2]
        .iter()
        .map(|host| {
            // Each host stages into a cache of its own; imports read the fixtures.
            let cache = logs.path().join(format!("cache-{}", host.name));
            Sidecar::start_on_host(
                host,
                logs.path(),
                &url,
                &[
                    "--lease-s",
                    "3",
                    "--concurrency",
                    "4",
                    "--cache-dir",
                    cache.to_str().unwrap(),
                    "--import-dir",
                    fixture("bionty").to_str().unwrap(),
                ],
                &env,
            )
        })
        .collect();
    for sidecar in &sidecars {
        sidecar.wait_for_log("listening for jobs", 1, Duration::from_secs(30));
    }

    // Objects for register jobs, and files a pipeline saves.
    for i in 0..REGISTERED_BEFORE + REGISTERED_AFTER {
        s3.put(
            "lab",
            &format!("data/ext/{i}.bin"),
            content("registered", i),
        );
    }
    let files = tempfile::tempdir().unwrap();
    let before = register(&mut db, 0..REGISTERED_BEFORE);

    // The pipeline on the third host: each save retried until it succeeds,
    // as a pipeline step would be; a failover breaks some attempts.
    let stop_saving = Arc::new(AtomicBool::new(false));
    // (Also when this test fails: the pipeline must not outlive the network.)
    let _stop_on_exit = StopOnDrop(Arc::clone(&stop_saving));
    let pipeline = {
        let host = net.hosts[2].clone();
        let (url, env, dir) = (url.clone(), env.clone(), files.path().to_path_buf());
        let stop = Arc::clone(&stop_saving);
        std::thread::spawn(move || {
            let (mut uids, mut attempts) = (Vec::new(), 0);
            // Until told to stop: saves before, during and after the failover.
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let file = dir.join(format!("{i}.bin"));
                std::fs::write(&file, content("saved", i)).unwrap();
                let deadline = Instant::now() + Duration::from_secs(90);
                loop {
                    let out = host
                        .command(lamin_bin())
                        .args(["save", "-q", "--key"])
                        .arg(format!("saved/{i}.bin"))
                        .arg(&file)
                        .env("DATABASE_URL", &url)
                        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .output()
                        .expect("run lamin save");
                    attempts += 1;
                    if out.status.success() {
                        uids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "save {i} kept failing: {}",
                        stderr_text(&out)
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            (uids, attempts)
        })
    };

    // Fail over while the jobs run: some done, some not.
    wait_until(
        "a quarter of the register jobs to finish",
        Duration::from_secs(60),
        Duration::from_millis(20),
        || {
            db.query_one(
                "SELECT count(*) FROM lamin.job WHERE kind = 'register' AND status = 'done'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
                >= (REGISTERED_BEFORE / 4) as i64
        },
    );
    let row = db
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'running')
             FROM lamin.job WHERE kind = 'register'",
            &[],
        )
        .unwrap();
    let (done_at_failover, running_at_failover): (i64, i64) = (row.get(0), row.get(1));
    assert!(
        (done_at_failover as usize) < REGISTERED_BEFORE,
        "every job was done before the failover: it interrupted nothing"
    );
    // Stages of what is ready, and an ontology import, queued just before.
    let staged: Vec<(usize, i64)> = before
        .iter()
        .enumerate()
        .filter_map(|(i, uid)| {
            let ready: bool = db
                .query_one(
                    "SELECT status = 'ready' FROM lamin.artifact WHERE uid = $1",
                    &[uid],
                )
                .unwrap()
                .get(0);
            ready.then(|| {
                (
                    i,
                    db.query_one("SELECT lamin.stage($1)", &[uid])
                        .unwrap()
                        .get(0),
                )
            })
        })
        .take(8)
        .collect();
    assert!(!staged.is_empty());
    let import: i64 = db
        .query_one(
            "SELECT lamin.import_ontology('cell_type', 'cl-cut.json.zst', 'cl', 'cut')",
            &[],
        )
        .unwrap()
        .get(0);
    drop(db);
    primary.stop_now();
    standby.promote();

    // The new primary: more work for the sidecars.
    let mut db = standby.connect();
    let after = register(
        &mut db,
        REGISTERED_BEFORE..REGISTERED_BEFORE + REGISTERED_AFTER,
    );

    // Every register job ends done, on the new primary.
    let mut jobs = Vec::new();
    for uid in before.iter().chain(&after) {
        let job = register_job(&mut db, uid);
        let (status, _, error) = lamin_e2e::await_job(&mut db, job);
        assert_eq!(status, "done", "register of {uid}: {error:?}");
        jobs.push(job);
    }
    // One job per artifact, never a second one for the same work.
    let register_jobs: i64 = db
        .query_one(
            "SELECT count(*) FROM lamin.job WHERE kind = 'register'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(register_jobs as usize, REGISTERED_BEFORE + REGISTERED_AFTER);

    // The pipeline saves a few more files on the new primary, then stops.
    std::thread::sleep(Duration::from_secs(2));
    stop_saving.store(true, Ordering::SeqCst);
    let (saved, attempts) = pipeline.join().expect("the pipeline");
    assert!(saved.len() >= 3, "{} files saved", saved.len());

    // Every stage left a whole copy in a cache; the import is in, once.
    for (i, job) in &staged {
        let (status, result, error) = lamin_e2e::await_job(&mut db, *job);
        assert_eq!(status, "done", "stage of object {i}: {error:?}");
        let path = result["path"].as_str().expect("a staged path");
        assert_eq!(
            std::fs::read(path).unwrap(),
            content("registered", *i),
            "{path}"
        );
    }
    let (status, _, error) = lamin_e2e::await_job(&mut db, import);
    assert_eq!(status, "done", "the import: {error:?}");
    let terms: i64 = db
        .query_one("SELECT count(*) FROM bionty.cell_type", &[])
        .unwrap()
        .get(0);
    assert_eq!(terms, 202);

    // A sweep recovers or fails what an interrupted save left pending.
    let sweeps: Vec<i64> = db
        .query("SELECT lamin.sweep_storage(NULL, 0)", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for job in sweeps {
        assert_eq!(lamin_e2e::await_job(&mut db, job).0, "done");
    }
    let pending: Vec<String> = db
        .query(
            "SELECT uid FROM lamin.artifact WHERE status = 'pending'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(pending.is_empty(), "left pending: {pending:?}");

    // Every object and every file: one ready artifact, with its content's hash.
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    for i in 0..REGISTERED_BEFORE + REGISTERED_AFTER {
        expected.insert((
            format!("ext/{i}.bin"),
            sha256_hex(&content("registered", i)),
        ));
    }
    for i in 0..saved.len() {
        expected.insert((format!("saved/{i}.bin"), sha256_hex(&content("saved", i))));
    }
    let ready: Vec<(String, String)> = db
        .query(
            "SELECT coalesce(key, ''), hash FROM lamin.artifact WHERE status = 'ready' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let keys: BTreeSet<(String, String)> = ready.iter().cloned().collect();
    assert_eq!(
        keys.len(),
        ready.len(),
        "a file was registered twice: {ready:?}"
    );
    assert_eq!(keys, expected);
    for uid in &saved {
        let status: String = db
            .query_one("SELECT status FROM lamin.artifact WHERE uid = $1", &[uid])
            .unwrap()
            .get(0);
        assert_eq!(status, "ready", "{uid}");
    }

    // The CLI on a host finds the promoted standby as the primary.
    let status = net.hosts[2]
        .command(lamin_bin())
        .arg("status")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains(&format!(
            "primary (read-write) at {}:{}",
            net.gateway, standby.port
        )),
        "{status}"
    );

    // Both sidecars reconnected to the new primary, and the work enqueued
    // there was done (by one or both of them).
    for sidecar in &sidecars {
        sidecar.wait_for_log("listening for jobs", 2, Duration::from_secs(30));
    }
    let workers: BTreeSet<String> = db
        .query(
            "SELECT DISTINCT split_part(worker, ':', 2) FROM lamin.job
             WHERE kind = 'register' AND id = ANY($1)",
            &[&jobs[REGISTERED_BEFORE..].to_vec()],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!workers.is_empty());
    let rerun: i64 = db
        .query_one("SELECT count(*) FROM lamin.job WHERE attempts > 1", &[])
        .unwrap()
        .get(0);
    eprintln!(
        "failover after {done_at_failover} of {REGISTERED_BEFORE} register jobs ({running_at_failover} running), {} stages and an import queued; {rerun} jobs ran more than once; {attempts} save attempts for {} files; jobs after it run by {} sidecar(s)",
        staged.len(),
        saved.len(),
        workers.len()
    );
}
