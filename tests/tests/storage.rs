//! Storage jobs end to end, on real local folders and a real S3 server:
//! register / stage / verify / delete through the sidecar, folder artifacts,
//! and recovery after saves and sidecars killed mid-transfer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lamin_e2e::{
    await_job, db_message, lamin_bin, lamin_with_env, register_job, stderr_text, stdout_text,
    wait_until, Cluster, S3Server, Sidecar,
};
use serde_json::Value;

fn artifact(db: &mut postgres::Client, uid: &str) -> (String, Option<String>, Option<String>) {
    let r = db
        .query_one(
            "SELECT status, status_detail, hash FROM lamin.artifact WHERE uid = $1",
            &[&uid],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// The folder hash as coreutils computes it (the recipe documented in lamin_core::content).
fn coreutils_folder_hash(dir: &Path) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg("find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum")
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn noise(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 11) as u8)
        .collect()
}

fn write_folder(dir: &Path, big: usize) {
    std::fs::create_dir_all(dir.join("0")).unwrap();
    std::fs::write(dir.join(".zattrs"), br#"{"encoding-type":"anndata"}"#).unwrap();
    std::fs::write(dir.join("0/0"), noise(1000, 1)).unwrap();
    std::fs::write(dir.join("0/1"), noise(big, 2)).unwrap();
}

/// How often these tests look again: often, to catch a copy in flight.
const POLL: Duration = Duration::from_millis(2);

#[test]
fn local_register_stage_verify_and_delete() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let cache = dir.path().join("cache");
    db.execute("SELECT lamin.add_storage($1)", &[&root.to_str().unwrap()])
        .unwrap();
    std::fs::create_dir_all(root.join("raw")).unwrap();
    let table = noise(300_000, 7);
    std::fs::write(root.join("raw/cells.csv"), &table).unwrap();
    write_folder(&root.join("raw/img.zarr"), 50_000);
    let _sidecar = Sidecar::start_with(
        &cluster,
        "a",
        &["--lease-s", "3", "--cache-dir", cache.to_str().unwrap()],
    );

    // register: pending at once, ready once the sidecar has hashed it.
    let r = |db: &mut postgres::Client, uri: &Path| -> String {
        db.query_one("SELECT lamin.register($1)", &[&uri.to_str().unwrap()])
            .unwrap()
            .get(0)
    };
    let file_uid = r(&mut db, &root.join("raw/cells.csv"));
    let folder_uid = r(&mut db, &root.join("raw/img.zarr"));
    assert_eq!(
        r(&mut db, &root.join("raw/cells.csv")),
        file_uid,
        "same URI, same artifact"
    );
    for uid in [&file_uid, &folder_uid] {
        let job = register_job(&mut db, uid);
        assert_eq!(await_job(&mut db, job).0, "done");
    }
    let (status, _, hash) = artifact(&mut db, &file_uid);
    assert_eq!((status.as_str(), hash), ("ready", Some(sha256_hex(&table))));
    let row = db
        .query_one(
            "SELECT status, hash, n_files, size, hash_type, key, lamin.artifact_path(a) FROM lamin.artifact a WHERE uid = $1",
            &[&folder_uid],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ready");
    assert_eq!(
        row.get::<_, String>(1),
        coreutils_folder_hash(&root.join("raw/img.zarr")),
        "folder hash = sha256 of the sha256sum manifest"
    );
    assert_eq!(row.get::<_, Option<i64>>(2), Some(3));
    assert_eq!(row.get::<_, i64>(3), 27 + 1000 + 50_000);
    assert_eq!(row.get::<_, String>(4), "sha256-dir");
    assert_eq!(row.get::<_, String>(5), "raw/img.zarr");
    assert_eq!(
        row.get::<_, String>(6),
        root.join("raw/img.zarr").to_str().unwrap()
    );

    // A missing object: the job fails and so does the artifact, with the reason.
    let missing = r(&mut db, &root.join("raw/nothing.csv"));
    let job = register_job(&mut db, &missing);
    let (status, _, error) = await_job(&mut db, job);
    assert_eq!(status, "failed");
    assert!(error.unwrap().contains("no object at"));
    let (status, detail, _) = artifact(&mut db, &missing);
    assert_eq!(status, "failed");
    assert!(
        detail.unwrap().contains("no object at"),
        "reason kept on the artifact"
    );
    // Outside every storage, or with a conflicting key: refused in SQL.
    let err = db
        .query_one("SELECT lamin.register('/elsewhere/x.csv')", &[])
        .unwrap_err();
    assert!(
        db_message(&err).contains("outside every registered storage"),
        "{err}"
    );

    // stage on local storage: the object is its own local copy.
    let job: i64 = db
        .query_one("SELECT lamin.stage($1)", &[&file_uid])
        .unwrap()
        .get(0);
    let (status, result, _) = await_job(&mut db, job);
    assert_eq!(status, "done");
    assert_eq!(result["path"], root.join("raw/cells.csv").to_str().unwrap());

    // verify: all good, then damage one file of the folder.
    let job: i64 = db.query_one("SELECT lamin.verify()", &[]).unwrap().get(0);
    let (_, result, _) = await_job(&mut db, job);
    assert_eq!(
        (result["checked"].as_i64(), result["ok"].as_i64()),
        (Some(2), Some(2))
    );
    let chunk = root.join("raw/img.zarr/0/0");
    let original = std::fs::read(&chunk).unwrap();
    std::fs::write(&chunk, b"bit rot").unwrap();
    let job: i64 = db.query_one("SELECT lamin.verify()", &[]).unwrap().get(0);
    let (_, result, _) = await_job(&mut db, job);
    assert_eq!(result["ok"].as_i64(), Some(1));
    assert_eq!(result["corrupt"][0]["uid"], folder_uid.as_str());
    let (status, detail, _) = artifact(&mut db, &folder_uid);
    assert_eq!(status, "corrupt");
    assert!(detail.unwrap().contains("not the registered"));
    let err = db
        .query_one("SELECT lamin.stage($1)", &[&folder_uid])
        .unwrap_err();
    assert!(db_message(&err).contains("is corrupt"), "{err}");
    // Bytes restored: verify makes it ready again.
    std::fs::write(&chunk, original).unwrap();
    let job: i64 = db
        .query_one("SELECT lamin.verify($1)", &[&folder_uid])
        .unwrap()
        .get(0);
    await_job(&mut db, job);
    assert_eq!(artifact(&mut db, &folder_uid).0, "ready");

    // A saved folder (lamin save DIR) and the permanent delete of its object.
    let src = dir.path().join("upload.zarr");
    write_folder(&src, 20_000);
    let out = lamin_e2e::lamin(&cluster, &["save", src.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    let saved = stdout_text(&out);
    let object = root.join(format!(".lamindb/{saved}.zarr"));
    assert_eq!(coreutils_folder_hash(&object), coreutils_folder_hash(&src));
    assert_eq!(
        artifact(&mut db, &saved).2.unwrap(),
        coreutils_folder_hash(&src)
    );
    // A rolled-back delete deletes nothing: the job exists only at commit.
    let mut tx = db.transaction().unwrap();
    tx.query_one("SELECT lamin.delete($1, permanent => true)", &[&saved])
        .unwrap();
    tx.rollback().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        object.join("0/1").is_file(),
        "object kept after the rollback"
    );
    let jobs: i64 = db
        .query_one(
            "SELECT count(*) FROM lamin.job WHERE kind = 'delete_object'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(jobs, 0);
    db.query_one("SELECT lamin.delete($1, permanent => true)", &[&saved])
        .unwrap();
    let job: i64 = db
        .query_one(
            "SELECT max(id) FROM lamin.job WHERE kind = 'delete_object'",
            &[],
        )
        .unwrap()
        .get(0);
    let (status, result, _) = await_job(&mut db, job);
    assert_eq!(
        (status.as_str(), result["deleted_objects"].as_i64()),
        ("done", Some(3))
    );
    assert!(!object.exists(), "the object went with the artifact");
    // A registered object is the user's: deleting its artifact keeps the file.
    db.query_one("SELECT lamin.delete($1, permanent => true)", &[&file_uid])
        .unwrap();
    assert!(root.join("raw/cells.csv").is_file());
}

/// A moto server with bucket `lab`, a cluster whose storage is s3://lab/data, a temp folder.
fn s3_setup() -> (S3Server, Cluster, postgres::Client, tempfile::TempDir) {
    let s3 = S3Server::start();
    s3.create_bucket("lab");
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.execute("SELECT lamin.add_storage('s3://lab/data')", &[])
        .unwrap();
    (s3, cluster, db, tempfile::tempdir().unwrap())
}

#[test]
fn s3_register_save_folder_stage_verify_delete() {
    let (s3, cluster, mut db, dir) = s3_setup();
    let env = s3.env();
    let cache = dir.path().join("cache");
    let _sidecar = Sidecar::start_env(
        &cluster,
        "s3",
        &["--lease-s", "3", "--cache-dir", cache.to_str().unwrap()],
        &env,
    );

    // An object put there by someone else, registered by URI.
    let table = noise(2_000_000, 3);
    s3.put("lab", "data/ext/table.parquet", table.clone());
    let reg: String = db
        .query_one(
            "SELECT lamin.register('s3://lab/data/ext/table.parquet')",
            &[],
        )
        .unwrap()
        .get(0);
    let job = register_job(&mut db, &reg);
    assert_eq!(await_job(&mut db, job).0, "done");
    assert_eq!(
        artifact(&mut db, &reg),
        ("ready".into(), None, Some(sha256_hex(&table)))
    );

    // A folder saved with the CLI: one file big enough for a multipart upload.
    let src = dir.path().join("atlas.zarr");
    write_folder(&src, 9_000_000);
    let out = lamin_with_env(&cluster, &env, &["save", src.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uid = stdout_text(&out);
    assert_eq!(
        s3.keys("lab", &format!("data/.lamindb/{uid}.zarr")),
        [".zattrs", "0/0", "0/1"].map(|f| format!("data/.lamindb/{uid}.zarr/{f}"))
    );
    assert_eq!(
        artifact(&mut db, &uid).2.unwrap(),
        coreutils_folder_hash(&src)
    );
    // lamin get brings the folder back.
    let back = dir.path().join("back.zarr");
    let got = lamin_with_env(
        &cluster,
        &env,
        &["get", &uid, "--to", back.to_str().unwrap(), "-q"],
    );
    assert!(got.status.success(), "{}", stderr_text(&got));
    assert_eq!(coreutils_folder_hash(&back), coreutils_folder_hash(&src));

    // stage copies into the documented cache layout, then reuses the copy.
    let job: i64 = db
        .query_one("SELECT lamin.stage($1)", &[&uid])
        .unwrap()
        .get(0);
    let (status, result, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    let staged = cache.join(format!("s3/lab/data/.lamindb/{uid}.zarr"));
    assert_eq!(result["path"], staged.to_str().unwrap());
    assert_eq!(result["copied"], true);
    assert_eq!(coreutils_folder_hash(&staged), coreutils_folder_hash(&src));
    let job: i64 = db
        .query_one("SELECT lamin.stage($1)", &[&uid])
        .unwrap()
        .get(0);
    assert_eq!(
        await_job(&mut db, job).1["copied"],
        false,
        "hash matched: reused"
    );

    // verify, then damage an object behind lamin's back.
    let job: i64 = db.query_one("SELECT lamin.verify()", &[]).unwrap().get(0);
    assert_eq!(await_job(&mut db, job).1["ok"].as_i64(), Some(2));
    s3.put(
        "lab",
        &format!("data/.lamindb/{uid}.zarr/0/0"),
        b"bit rot".to_vec(),
    );
    let job: i64 = db.query_one("SELECT lamin.verify()", &[]).unwrap().get(0);
    let (_, result, _) = await_job(&mut db, job);
    assert_eq!(result["corrupt"][0]["uid"], uid.as_str());
    assert_eq!(artifact(&mut db, &uid).0, "corrupt");
    let refused = lamin_with_env(
        &cluster,
        &env,
        &["get", &uid, "--to", dir.path().join("x").to_str().unwrap()],
    );
    assert!(!refused.status.success());
    assert!(
        stderr_text(&refused).contains("is corrupt"),
        "{}",
        stderr_text(&refused)
    );

    // Permanent delete removes every object of the folder.
    db.query_one("SELECT lamin.delete($1, permanent => true)", &[&uid])
        .unwrap();
    let job: i64 = db
        .query_one(
            "SELECT max(id) FROM lamin.job WHERE kind = 'delete_object'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(await_job(&mut db, job).0, "done");
    assert!(s3.keys("lab", "data/.lamindb").is_empty());
    assert_eq!(s3.keys("lab", "data/ext"), ["data/ext/table.parquet"]);
}

#[test]
fn interrupted_saves_are_recovered_or_swept() {
    let s3 = S3Server::start();
    s3.create_bucket("lab");
    let env = s3.env();
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("storage");
    db.execute("SELECT lamin.add_storage($1)", &[&local.to_str().unwrap()])
        .unwrap();
    db.execute("SELECT lamin.add_storage('s3://lab/data')", &[])
        .unwrap();

    // 1. kill -9 of `lamin save` in the middle of a 200 MB upload to S3.
    let big = dir.path().join("big.h5ad");
    std::fs::write(&big, noise(200_000_000, 9)).unwrap();
    let mut save = Command::new(lamin_bin())
        .args([
            "save",
            big.to_str().unwrap(),
            "--storage",
            "s3://lab/data",
            "-q",
        ])
        .env("DATABASE_URL", cluster.url())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pending = None;
    wait_until("the upload starts", Duration::from_secs(60), POLL, || {
        pending = db
            .query_opt(
                "SELECT uid FROM lamin.artifact WHERE status = 'pending'",
                &[],
            )
            .unwrap()
            .map(|r| r.get::<_, String>(0));
        pending.is_some()
    });
    std::thread::sleep(Duration::from_millis(200));
    save.kill().unwrap();
    save.wait().unwrap();
    let killed = pending.unwrap();
    assert_eq!(
        artifact(&mut db, &killed).0,
        "pending",
        "visibly pending, never ready"
    );

    // 2. a local save killed while copying (its source is a pipe that never ends).
    let fifo = dir.path().join("stream.csv");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut stuck = Command::new(lamin_bin())
        .args(["save", fifo.to_str().unwrap(), "-q"])
        .env("DATABASE_URL", cluster.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let temp_copy = || {
        std::fs::read_dir(local.join(".lamindb"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().starts_with(".lamin-save-"))
            })
            .unwrap_or(false)
    };
    wait_until(
        "the local copy starts",
        Duration::from_secs(30),
        POLL,
        temp_copy,
    );
    stuck.kill().unwrap();
    stuck.wait().unwrap();
    drop(writer);

    // 3. a client that died after its bytes were complete but before finish_upload.
    let done_bytes = b"complete but never finished".to_vec();
    let hash = sha256_hex(&done_bytes);
    let row = db
        .query_one(
            "SELECT uid, path FROM lamin.begin_upload($1, $2, suffix => '.txt')",
            &[&hash, &(done_bytes.len() as i64)],
        )
        .unwrap();
    let (unfinished, path): (String, String) = (row.get(0), row.get(1));
    std::fs::write(&path, &done_bytes).unwrap();

    // 4. an orphan object no artifact owns.
    let orphan = local.join(".lamindb/ZZZZZZZZZZZZZZZZ0000.bin");
    std::fs::write(&orphan, b"nobody's").unwrap();

    // A sweep with a long grace period touches nothing recent ...
    let _sidecar = Sidecar::start_env(&cluster, "sweeper", &["--lease-s", "3"], &env);
    let sweep_all = |db: &mut postgres::Client, grace: i32| -> Vec<(String, Value)> {
        let ids: Vec<i64> = db
            .query("SELECT lamin.sweep_storage(NULL, $1)", &[&grace])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        ids.into_iter()
            .map(|id| {
                let (status, result, error) = await_job(db, id);
                assert_eq!(status, "done", "{error:?}");
                (result["root"].as_str().unwrap().to_string(), result)
            })
            .collect()
    };
    for (_, result) in sweep_all(&mut db, 3600) {
        assert_eq!(result["removed"], serde_json::json!([]), "{result}");
        assert_eq!(result["failed"], serde_json::json!([]), "{result}");
    }
    assert!(orphan.exists() && temp_copy());
    // ... and with no grace period it cleans up.
    std::thread::sleep(Duration::from_millis(1100));
    let results = sweep_all(&mut db, 0);
    let local_result = &results.iter().find(|(r, _)| r.starts_with('/')).unwrap().1;
    let s3_result = &results
        .iter()
        .find(|(r, _)| r.starts_with("s3://"))
        .unwrap()
        .1;
    assert_eq!(local_result["recovered"], serde_json::json!([unfinished]));
    assert_eq!(
        artifact(&mut db, &unfinished).0,
        "ready",
        "complete bytes recovered"
    );
    assert!(!orphan.exists(), "orphan removed");
    assert!(!temp_copy(), "the killed local copy removed");
    assert_eq!(s3_result["failed"], serde_json::json!([killed]));
    let (status, detail, _) = artifact(&mut db, &killed);
    assert_eq!(status, "failed");
    assert!(detail.unwrap().contains("abandoned"));
    assert!(
        s3.keys("lab", "data/.lamindb").is_empty(),
        "no object of the killed upload"
    );
    // Saving again retries the failed artifact and completes it.
    let out = lamin_with_env(
        &cluster,
        &env,
        &[
            "save",
            big.to_str().unwrap(),
            "--storage",
            "s3://lab/data",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(stdout_text(&out), killed);
    assert_eq!(artifact(&mut db, &killed).0, "ready");
}

#[test]
fn sidecar_killed_mid_stage_of_200mb_finishes_after_restart() {
    let (s3, cluster, mut db, dir) = s3_setup();
    let env = s3.env();
    let cache = dir.path().join("cache");
    let data = noise(200_000_000, 5);
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &data).unwrap();
    let out = lamin_with_env(&cluster, &env, &["save", file.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uid = stdout_text(&out);

    let args = ["--lease-s", "3", "--cache-dir", cache.to_str().unwrap()];
    let mut first = Sidecar::start_env(&cluster, "first", &args, &env);
    let job: i64 = db
        .query_one("SELECT lamin.stage($1)", &[&uid])
        .unwrap()
        .get(0);
    let staged: PathBuf = cache.join(format!("s3/lab/data/.lamindb/{uid}.bin"));
    let partial = PathBuf::from(format!("{}.partial", staged.display()));
    wait_until("the copy starts", Duration::from_secs(60), POLL, || {
        partial.exists()
    });
    first.kill9();
    assert!(
        !staged.exists(),
        "nothing at the cache path but whole copies"
    );

    let second = Sidecar::start_env(&cluster, "second", &args, &env);
    let (status, result, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    assert_eq!(result["copied"], true);
    let attempts: i32 = db
        .query_one("SELECT attempts FROM lamin.job WHERE id = $1", &[&job])
        .unwrap()
        .get(0);
    assert_eq!(attempts, 2, "taken over after the lease:\n{}", second.log());
    assert_eq!(std::fs::read(&staged).unwrap(), data);
    assert!(
        !partial.exists(),
        "the interrupted copy was replaced, not left behind"
    );
}

#[test]
fn storage_failures_fail_jobs_with_the_reason() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.execute("SELECT lamin.add_storage('s3://nowhere/data')", &[])
        .unwrap();
    // An endpoint where nothing listens.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env: Vec<(String, String)> = vec![
        ("AWS_ACCESS_KEY_ID".into(), "x".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "x".into()),
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ("AWS_ENDPOINT".into(), format!("http://127.0.0.1:{port}")),
        ("AWS_ALLOW_HTTP".into(), "true".into()),
    ];
    let uid: String = db
        .query_one("SELECT lamin.register('s3://nowhere/data/x.csv')", &[])
        .unwrap()
        .get(0);
    let job = register_job(&mut db, &uid);
    db.execute(
        "UPDATE lamin.job SET max_attempts = 1 WHERE id = $1",
        &[&job],
    )
    .unwrap();
    let started = Instant::now();
    let _sidecar = Sidecar::start_env(&cluster, "dead-endpoint", &["--lease-s", "60"], &env);
    let (status, _, error) = await_job(&mut db, job);
    let error = error.unwrap_or_default();
    assert_eq!(status, "failed");
    assert!(error.contains("s3://nowhere/data/x.csv"), "{error}");
    let (status, detail, _) = artifact(&mut db, &uid);
    assert_eq!(status, "failed");
    assert!(detail.unwrap().contains("register failed"));
    eprintln!(
        "unreachable endpoint failed the job in {:?}",
        started.elapsed()
    );

    // The CLI: an unknown storage, a key with .., an empty folder — refused, nothing registered.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let a = dir.path().join("a.txt");
    let empty = dir.path().join("empty");
    let cases: [(&[&str], &str); 3] = [
        (
            &["save", a.to_str().unwrap(), "--storage", "s3://unknown"],
            "unknown storage",
        ),
        (
            &["save", a.to_str().unwrap(), "--key", "x/../../a.txt"],
            "'..'",
        ),
        (&["save", empty.to_str().unwrap()], "holds no files"),
    ];
    for (args, expected) in cases {
        let out = lamin_with_env(&cluster, &env, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr_text(&out).contains(expected),
            "{args:?}: {}",
            stderr_text(&out)
        );
    }
    let n: i64 = db
        .query_one("SELECT count(*) FROM lamin.artifact", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "only the registered (failed) artifact");
}

#[test]
fn azure_save_register_stage_verify_delete_through_azurite() {
    let az = lamin_e2e::Azurite::start();
    az.create_container("lab");
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.execute("SELECT lamin.add_storage('az://lab/data')", &[])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let file = dir.path().join("counts.bin");
    let data = noise(9_000_000, 11);
    std::fs::write(&file, &data).unwrap();

    // Wrong account key: the CLI refuses before registering, a job fails with the reason.
    let bad_env = az.env_with_key(&format!("{}==", "A".repeat(86)));
    let out = lamin_with_env(&cluster, &bad_env, &["save", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("storage az://lab/data is not usable"),
        "{}",
        stderr_text(&out)
    );
    az.put("lab", "data/ext/table.csv", b"a,b\n1,2\n".to_vec());
    let reg: String = db
        .query_one("SELECT lamin.register('az://lab/data/ext/table.csv')", &[])
        .unwrap()
        .get(0);
    let job = register_job(&mut db, &reg);
    db.execute(
        "UPDATE lamin.job SET max_attempts = 1 WHERE id = $1",
        &[&job],
    )
    .unwrap();
    {
        let _refused = Sidecar::start_env(&cluster, "bad-key", &["--lease-s", "60"], &bad_env);
        let (status, _, error) = await_job(&mut db, job);
        assert_eq!(status, "failed");
        assert!(error.unwrap().contains("az://lab/data/ext/table.csv"));
    }
    assert_eq!(artifact(&mut db, &reg).0, "failed");

    // The right key: save, get, register, stage, verify, delete.
    let env = az.env();
    let _sidecar = Sidecar::start_env(
        &cluster,
        "azure",
        &["--lease-s", "3", "--cache-dir", cache.to_str().unwrap()],
        &env,
    );
    let out = lamin_with_env(&cluster, &env, &["save", file.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uid = stdout_text(&out);
    assert_eq!(
        az.keys("lab", "data/.lamindb"),
        [format!("data/.lamindb/{uid}.bin")]
    );
    let back = dir.path().join("back.bin");
    let got = lamin_with_env(
        &cluster,
        &env,
        &["get", &uid, "--to", back.to_str().unwrap()],
    );
    assert!(got.status.success(), "{}", stderr_text(&got));
    assert_eq!(std::fs::read(&back).unwrap(), data);

    db.query_one("SELECT lamin.register('az://lab/data/ext/table.csv')", &[])
        .unwrap();
    let job = register_job(&mut db, &reg);
    assert_eq!(await_job(&mut db, job).0, "done");
    assert_eq!(artifact(&mut db, &reg).2, Some(sha256_hex(b"a,b\n1,2\n")));

    let job: i64 = db
        .query_one("SELECT lamin.stage($1)", &[&uid])
        .unwrap()
        .get(0);
    let (status, result, error) = await_job(&mut db, job);
    assert_eq!(status, "done", "{error:?}");
    let staged = cache.join(format!("az/lab/data/.lamindb/{uid}.bin"));
    assert_eq!(result["path"], staged.to_str().unwrap());
    assert_eq!(std::fs::read(&staged).unwrap(), data);

    let job: i64 = db.query_one("SELECT lamin.verify()", &[]).unwrap().get(0);
    assert_eq!(await_job(&mut db, job).1["ok"].as_i64(), Some(2));
    az.put(
        "lab",
        "data/ext/table.csv",
        b"changed behind lamin's back".to_vec(),
    );
    let job: i64 = db.query_one("SELECT lamin.verify()", &[]).unwrap().get(0);
    let (_, result, _) = await_job(&mut db, job);
    assert_eq!(result["corrupt"][0]["uid"], reg.as_str());

    db.query_one("SELECT lamin.delete($1, permanent => true)", &[&uid])
        .unwrap();
    let job: i64 = db
        .query_one(
            "SELECT max(id) FROM lamin.job WHERE kind = 'delete_object'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(await_job(&mut db, job).0, "done");
    assert!(az.keys("lab", "data/.lamindb").is_empty());
}
