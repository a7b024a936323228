//! `lamin save` / `lamin get` against a local storage root: real files,
//! content de-duplication, concurrent savers, hash-checked downloads, and
//! refused inputs that register nothing.

use std::process::Output;

use lamin_e2e::{lamin, lamin_with_env, Cluster};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn setup() -> (Cluster, tempfile::TempDir, postgres::Client) {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let mut db = cluster.connect();
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&storage.to_str().unwrap()],
    )
    .unwrap();
    (cluster, dir, db)
}

#[test]
fn save_stores_verified_bytes_once_and_get_returns_them() {
    let (cluster, dir, mut db) = setup();
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let file = dir.path().join("cells.parquet");
    std::fs::write(&file, &data).unwrap();
    let out = lamin(
        &cluster,
        &[
            "save",
            file.to_str().unwrap(),
            "--key",
            "raw/cells.parquet",
            "--description",
            "test",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let uid = stdout(&out);
    assert_eq!(uid.len(), 20, "{uid}");

    let row = db
        .query_one(
            "SELECT a.status, a.size, a.suffix, a.hash, lamin.artifact_path(a) FROM lamin.artifact a WHERE a.uid = $1",
            &[&uid],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ready");
    assert_eq!(row.get::<_, i64>(1), data.len() as i64);
    assert_eq!(row.get::<_, String>(2), ".parquet");
    let object = std::fs::read(row.get::<_, String>(4)).unwrap();
    assert_eq!(object, data, "the object holds the file's bytes");
    // The registered hash is the sha256 of the full content, as Postgres computes it.
    let pg_hash: String = db
        .query_one("SELECT encode(sha256($1), 'hex')", &[&data])
        .unwrap()
        .get(0);
    assert_eq!(row.get::<_, String>(3), pg_hash);

    // Same content again: same uid, nothing written.
    let again = lamin(&cluster, &["save", file.to_str().unwrap()]);
    assert!(again.status.success());
    assert_eq!(stdout(&again), uid, "the uid alone on stdout");
    assert!(
        stderr(&again).contains("nothing uploaded"),
        "{}",
        stderr(&again)
    );
    let objects = std::fs::read_dir(dir.path().join("storage/.lamindb"))
        .unwrap()
        .count();
    assert_eq!(objects, 1, "one object, no leftovers");

    // get writes the same bytes; a tampered object is refused, not written.
    let dest = dir.path().join("back.parquet");
    let got = lamin(&cluster, &["get", &uid, "--to", dest.to_str().unwrap()]);
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    std::fs::write(row.get::<_, String>(4), b"tampered").unwrap();
    let dest2 = dir.path().join("tampered.parquet");
    let bad = lamin(&cluster, &["get", &uid, "--to", dest2.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("not the registered"),
        "{}",
        stderr(&bad)
    );
    assert!(!dest2.exists(), "nothing half-written");
}

#[test]
fn eight_concurrent_saves_of_one_file_make_one_artifact() {
    let (cluster, dir, mut db) = setup();
    let file = dir.path().join("same.csv");
    std::fs::write(&file, "a,b\n1,2\n".repeat(200_000)).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let url = cluster.url();
            let file = file.clone();
            std::thread::spawn(move || {
                std::process::Command::new(lamin_e2e::lamin_bin())
                    .args(["save", file.to_str().unwrap(), "--quiet"])
                    .env("DATABASE_URL", url)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    let uids: Vec<String> = handles
        .into_iter()
        .map(|h| {
            let out = h.join().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            stdout(&out).split_whitespace().next().unwrap().to_string()
        })
        .collect();
    assert!(uids.iter().all(|u| *u == uids[0]), "{uids:?}");
    let n: i64 = db
        .query_one("SELECT count(*) FROM lamin.artifact", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let status: String = db
        .query_one("SELECT status FROM lamin.artifact", &[])
        .unwrap()
        .get(0);
    assert_eq!(status, "ready");
}

#[test]
fn bad_inputs_are_refused_and_register_nothing() {
    let (cluster, dir, mut db) = setup();
    let file = dir.path().join("ok.txt");
    std::fs::write(&file, "content").unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "save".into(),
                dir.path().join("missing.txt").to_str().unwrap().into(),
            ],
            "cannot read",
        ),
        (
            vec![
                "save".into(),
                file.to_str().unwrap().into(),
                "--key".into(),
                "../up.txt".into(),
            ],
            "'..'",
        ),
        (
            vec![
                "save".into(),
                file.to_str().unwrap().into(),
                "--key".into(),
                "/abs/x.txt".into(),
            ],
            "invalid key",
        ),
        (
            vec![
                "save".into(),
                file.to_str().unwrap().into(),
                "--storage".into(),
                "/not/registered".into(),
            ],
            "unknown storage",
        ),
        (
            vec![
                "save".into(),
                dir.path().join("empty").to_str().unwrap().into(),
            ],
            "holds no files",
        ),
        (
            vec!["get".into(), "notauid".into()],
            "no artifact with key \"notauid\"",
        ),
        (
            vec!["get".into(), "AAAAAAAAAAAAAAAAAAAA".into()],
            "no artifact with uid",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lamin(&cluster, &args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let n: i64 = db
        .query_one("SELECT count(*) FROM lamin.artifact", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing registered");
}

#[test]
fn save_and_get_through_a_real_s3_server() {
    let mut s3 = lamin_e2e::S3Server::start();
    s3.create_bucket("lamin-test");
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.execute("SELECT lamin.add_storage('s3://lamin-test/data')", &[])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 20 MB: three multipart parts of 8 MiB.
    let data: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    let file = dir.path().join("big.h5ad");
    std::fs::write(&file, &data).unwrap();
    let env = s3.env();

    let out = lamin_with_env(
        &cluster,
        &env,
        &["save", file.to_str().unwrap(), "--key", "atlas/big.h5ad"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let uid = stdout(&out);
    let (status, size): (String, i64) = {
        let r = db
            .query_one(
                "SELECT status, size FROM lamin.artifact WHERE uid = $1",
                &[&uid],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((status.as_str(), size), ("ready", data.len() as i64));

    let again = lamin_with_env(&cluster, &env, &["save", file.to_str().unwrap()]);
    assert_eq!(stdout(&again), uid, "the uid alone on stdout");
    assert!(
        stderr(&again).contains("nothing uploaded"),
        "{}",
        stderr(&again)
    );

    let dest = dir.path().join("back.h5ad");
    let got = lamin_with_env(
        &cluster,
        &env,
        &["get", &uid, "--to", dest.to_str().unwrap()],
    );
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        data,
        "the bytes came back from S3 unchanged"
    );

    // An unreachable endpoint: a clear error and nothing registered.
    s3.stop();
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "x,y\n").unwrap();
    let out = lamin_with_env(&cluster, &env, &["save", other.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("storage s3://lamin-test/data is not usable"),
        "{}",
        stderr(&out)
    );
    let n: i64 = db
        .query_one("SELECT count(*) FROM lamin.artifact", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "nothing registered for the failed save");
}

#[test]
fn saves_and_gets_are_recorded_in_the_run_given_by_run() {
    let (cluster, dir, mut db) = setup();
    let producer: String = db
        .query_one("SELECT lamin.track('pipelines/make.py')", &[])
        .unwrap()
        .get(0);
    let file = dir.path().join("made.csv");
    std::fs::write(&file, "a\n1\n").unwrap();
    let out = lamin(
        &cluster,
        &["save", file.to_str().unwrap(), "--run", &producer, "-q"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let uid = stdout(&out);
    let creator: String = db
        .query_one(
            "SELECT r.uid FROM lamin.artifact a JOIN lamin.run r ON r.id = a.run_id WHERE a.uid = $1",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(creator, producer, "the artifact's creating run");

    // Another run reads it through the CLI (LAMIN_RUN works as --run).
    let mut other = cluster.connect();
    let consumer: String = other
        .query_one("SELECT lamin.track('pipelines/use.py')", &[])
        .unwrap()
        .get(0);
    let dest = dir.path().join("in.csv");
    let got = std::process::Command::new(lamin_e2e::lamin_bin())
        .args(["get", &uid, "--to", dest.to_str().unwrap()])
        .env("DATABASE_URL", cluster.url())
        .env("LAMIN_RUN", &consumer)
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", stderr(&got));
    let inputs: Vec<String> = db
        .query(
            "SELECT a.uid FROM lamin.run_input_artifact i JOIN lamin.run r ON r.id = i.run_id
             JOIN lamin.artifact a ON a.id = i.artifact_id WHERE r.uid = $1",
            &[&consumer],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(inputs, [uid]);

    // An unknown run: refused before anything is saved.
    let other_file = dir.path().join("other.csv");
    std::fs::write(&other_file, "b\n2\n").unwrap();
    let bad = lamin(
        &cluster,
        &[
            "save",
            other_file.to_str().unwrap(),
            "--run",
            "AAAAAAAAAAAAAAAAAAAA",
        ],
    );
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("no run with uid"), "{}", stderr(&bad));
    let n: i64 = db
        .query_one("SELECT count(*) FROM lamin.artifact", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}
