//! Access end to end: real login roles, a space, the CLI and a sidecar that
//! logs in as lamin_sidecar (no superuser, no BYPASSRLS) and runs each job as
//! the role that enqueued it.

use std::process::{Command, Output};

use lamin_e2e::{await_job, db_message, lamin_bin, stderr_text, Cluster, Sidecar};

fn run_as(url: &str, args: &[&str]) -> Output {
    Command::new(lamin_bin())
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap()
}

#[test]
fn a_space_hides_its_artifacts_until_access_is_granted() {
    let cluster = Cluster::start();
    let mut root = cluster.connect();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    root.batch_execute(&format!(
        "CREATE ROLE alice LOGIN PASSWORD 'pw-a' IN ROLE lamin_reader;
         CREATE ROLE bob LOGIN PASSWORD 'pw-b' IN ROLE lamin_reader;
         CREATE ROLE boss LOGIN PASSWORD 'pw-c' IN ROLE lamin_admin;
         ALTER ROLE lamin_sidecar PASSWORD 'pw-s';
         SELECT lamin.add_storage('{}');",
        storage.display()
    ))
    .unwrap();
    let (alice_url, bob_url, boss_url) = (
        cluster.url_as("alice", "pw-a"),
        cluster.url_as("bob", "pw-b"),
        cluster.url_as("boss", "pw-c"),
    );
    let mut boss = postgres::Client::connect(&boss_url, postgres::NoTls).unwrap();
    boss.query_one("SELECT lamin.create_space('lab-x')", &[])
        .unwrap();
    boss.query_one("SELECT lamin.grant('lab-x', 'alice', 'write')", &[])
        .unwrap();
    let sidecar_url = cluster.url_as("lamin_sidecar", "pw-s");
    let _sidecar = Sidecar::start_as(
        &cluster,
        &sidecar_url,
        "as-sidecar",
        &["--lease-s", "5"],
        &[],
    );

    // Alice saves a file into space lab-x and names a label there.
    let file = dir.path().join("secret.csv");
    std::fs::write(&file, "compound,dose\nX-42,3\n").unwrap();
    let out = run_as(
        &alice_url,
        &["save", file.to_str().unwrap(), "--space", "lab-x", "-q"],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uid = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut alice = postgres::Client::connect(&alice_url, postgres::NoTls).unwrap();
    alice
        .batch_execute("SELECT lamin.use_space('lab-x'); INSERT INTO lamin.ulabel (name) VALUES ('compound X-42')")
        .unwrap();
    let space: String = alice
        .query_one(
            "SELECT s.name FROM lamin.artifact a JOIN lamin.space s ON s.id = a.space_id WHERE a.uid = $1",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(space, "lab-x");
    // Her stage job runs as her: the sidecar sees what she sees.
    let job: i64 = alice
        .query_one("SELECT lamin.stage($1)", &[&uid])
        .unwrap()
        .get(0);
    assert_eq!(await_job(&mut alice, job).0, "done");

    // Bob has no access to lab-x: no rows, no search hits, no stage, no get.
    let mut bob = postgres::Client::connect(&bob_url, postgres::NoTls).unwrap();
    let seen: i64 = bob
        .query_one(
            "SELECT count(*) FROM lamin.artifact WHERE uid = $1",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(seen, 0);
    let hits: i64 = bob
        .query_one("SELECT count(*) FROM lamin.search('X-42')", &[])
        .unwrap()
        .get(0);
    assert_eq!(hits, 0, "search does not show what bob cannot read");
    let err = bob
        .query_one("SELECT lamin.stage($1)", &[&uid])
        .unwrap_err();
    assert!(
        db_message(&err).contains("no artifact with uid"),
        "{}",
        db_message(&err)
    );
    // describe answers for any record kind (0.5.0): an unreadable uid is no record at all.
    let err = bob
        .query_one("SELECT lamin.describe($1)", &[&uid])
        .unwrap_err();
    assert!(
        db_message(&err).contains("no record with uid"),
        "{}",
        db_message(&err)
    );
    let got = run_as(
        &bob_url,
        &[
            "get",
            &uid,
            "--to",
            dir.path().join("b.csv").to_str().unwrap(),
        ],
    );
    assert!(!got.status.success());
    // A job he enqueues by hand runs as him, so the sidecar refuses it too.
    let job: i64 = bob
        .query_one(
            "SELECT lamin.enqueue('stage', jsonb_build_object('uid', $1::text))",
            &[&uid],
        )
        .unwrap()
        .get(0);
    let (status, _, error) = await_job(&mut bob, job);
    assert_eq!(status, "failed");
    assert!(error.unwrap().contains("no artifact with uid"));
    // Bob cannot grant himself access either: to him the space does not exist.
    let err = bob
        .query_one("SELECT lamin.grant('lab-x', 'bob', 'read')", &[])
        .unwrap_err();
    assert!(
        db_message(&err).contains("no space named 'lab-x'"),
        "{}",
        db_message(&err)
    );

    // After the admin grants read, bob sees it, finds it, stages and gets it.
    boss.query_one("SELECT lamin.grant('lab-x', 'bob', 'read')", &[])
        .unwrap();
    let hits: i64 = bob
        .query_one("SELECT count(*) FROM lamin.search('X-42')", &[])
        .unwrap()
        .get(0);
    assert_eq!(hits, 1);
    let job: i64 = bob
        .query_one("SELECT lamin.stage($1)", &[&uid])
        .unwrap()
        .get(0);
    assert_eq!(await_job(&mut bob, job).0, "done");
    let dest = dir.path().join("bob.csv");
    let got = run_as(&bob_url, &["get", &uid, "--to", dest.to_str().unwrap()]);
    assert!(got.status.success(), "{}", stderr_text(&got));
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&file).unwrap());
    // … but read is not write.
    let changed = bob
        .execute(
            "UPDATE lamin.artifact SET description = 'mine' WHERE uid = $1",
            &[&uid],
        )
        .unwrap();
    assert_eq!(changed, 0);
    // The audit log says who did what, readable now that bob reads lab-x.
    let who: String = bob
        .query_one(
            "SELECT role_name FROM lamin.audit WHERE uid = $1 AND operation = 'insert'",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(who, "alice");

    // The sidecar never acts as a superuser: a superuser's job is refused.
    let job: i64 = root
        .query_one("SELECT lamin.stage($1)", &[&uid])
        .unwrap()
        .get(0);
    let (status, _, error) = await_job(&mut root, job);
    assert_eq!(status, "failed");
    assert!(
        error
            .as_deref()
            .unwrap_or("")
            .contains("cannot act as role"),
        "{error:?}"
    );
}

#[test]
fn hostile_files_and_job_arguments_fail_alone() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let dir = tempfile::tempdir().unwrap();
    let obo = |name: &str| {
        format!("format-version: 1.2\ndata-version: t/2025\nontology: t\n\n[Term]\nid: HP:0000001\nname: {name}\n\n[Term]\nid: HP:0000002\nname: fine\nis_a: HP:0000001\n")
    };
    // Invalid UTF-8 and a NUL byte in a term name: refused, nothing imported.
    let mut bad_utf8 = obo("All").into_bytes();
    bad_utf8.extend_from_slice(b"\n[Term]\nid: HP:0000003\nname: bad \xff\xfe bytes\n");
    let mut with_nul = obo("All").into_bytes();
    with_nul.extend_from_slice(b"\n[Term]\nid: HP:0000004\nname: nul \x00 byte\n");
    for (name, bytes) in [("bad-utf8.obo", bad_utf8), ("nul.obo", with_nul)] {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let out = Command::new(lamin_bin())
            .args([
                "import",
                "ontology",
                "--entity",
                "phenotype",
                file.to_str().unwrap(),
            ])
            .env("DATABASE_URL", cluster.url())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name} was imported");
        assert!(
            stderr_text(&out).contains("nothing was imported"),
            "{name}: {}",
            stderr_text(&out)
        );
    }
    let n: i64 = db
        .query_one("SELECT count(*) FROM bionty.phenotype", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0);

    // A folder holding a file whose name is not UTF-8 is refused by lamin save.
    use std::os::unix::ffi::OsStrExt;
    let folder = dir.path().join("odd");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(
        folder.join(std::ffi::OsStr::from_bytes(b"bad\xffname")),
        "x",
    )
    .unwrap();
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&dir.path().join("storage").to_str().unwrap()],
    )
    .unwrap();
    let out = run_as(&cluster.url(), &["save", folder.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("must be UTF-8"),
        "{}",
        stderr_text(&out)
    );

    // Job arguments nested deeper than the sidecar reads fail that job only.
    let deep = format!("{{\"a\": {}1{}}}", "[".repeat(300), "]".repeat(300));
    let bad: i64 = db
        .query_one("SELECT lamin.enqueue('noop', $1::text::jsonb)", &[&deep])
        .unwrap()
        .get(0);
    let good: i64 = db
        .query_one("SELECT lamin.enqueue('noop')", &[])
        .unwrap()
        .get(0);
    let _sidecar = Sidecar::start(&cluster, "hostile");
    let (status, _, error) = await_job(&mut db, bad);
    assert_eq!(status, "failed");
    assert!(
        error
            .as_deref()
            .unwrap_or("")
            .contains("job arguments cannot be read"),
        "{error:?}"
    );
    assert_eq!(await_job(&mut db, good).0, "done", "the queue goes on");
}
