//! The adversarial suite, end to end: attacks that involve bytes (the real
//! sidecar deleting, sweeping and exporting) or concurrency (races between
//! sessions), each tried as a low-privilege role and asserted refused with
//! nothing changed. The SQL-only attacks are in pg_test/90_adversarial.sql.
//!   alice  writer of space lab-x      bob  lamin_writer      carol  lamin_reader

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Barrier};

use lamin_e2e::{await_job, db_message, lamin_bin, stderr_text, Cluster, Sidecar};

struct Lab {
    cluster: Cluster,
    dir: tempfile::TempDir,
    storage: PathBuf,
    _sidecar: Sidecar,
}

impl Lab {
    /// A cluster with alice, bob, carol and an admin (boss), a local storage,
    /// and a sidecar logged in as lamin_sidecar.
    fn start() -> Lab {
        let cluster = Cluster::start();
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        cluster
            .connect()
            .batch_execute(&format!(
                "CREATE ROLE alice LOGIN PASSWORD 'pw-a' IN ROLE lamin_reader;
                 CREATE ROLE bob LOGIN PASSWORD 'pw-b' IN ROLE lamin_writer;
                 CREATE ROLE carol LOGIN PASSWORD 'pw-c' IN ROLE lamin_reader;
                 CREATE ROLE boss LOGIN PASSWORD 'pw-d' IN ROLE lamin_admin;
                 ALTER ROLE lamin_sidecar PASSWORD 'pw-s';
                 SELECT lamin.add_storage('{}');
                 SELECT lamin.create_space('lab-x');
                 SELECT lamin.grant('lab-x', 'alice', 'write');",
                storage.display()
            ))
            .unwrap();
        let sidecar_url = cluster.url_as("lamin_sidecar", "pw-s");
        let sidecar = Sidecar::start_as(
            &cluster,
            &sidecar_url,
            "adversarial",
            &["--lease-s", "5"],
            &[],
        );
        Lab {
            cluster,
            dir,
            storage,
            _sidecar: sidecar,
        }
    }

    fn url(&self, who: &str) -> String {
        let password = match who {
            "alice" => "pw-a",
            "bob" => "pw-b",
            "carol" => "pw-c",
            "boss" => "pw-d",
            other => panic!("no test role {other}"),
        };
        self.cluster.url_as(who, password)
    }

    fn connect(&self, who: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(who), postgres::NoTls).unwrap()
    }

    fn lamin(&self, who: &str, args: &[&str]) -> Output {
        Command::new(lamin_bin())
            .args(args)
            .env("DATABASE_URL", self.url(who))
            .output()
            .unwrap()
    }

    /// Save a small CSV file as `who` (into `space` if given); its uid and object path.
    fn save(&self, who: &str, name: &str, space: Option<&str>) -> (String, PathBuf) {
        let file = self.dir.path().join(name);
        std::fs::write(&file, format!("name,value\n{name},1\n")).unwrap();
        let mut args = vec!["save", file.to_str().unwrap(), "-q"];
        if let Some(space) = space {
            args.extend(["--space", space]);
        }
        let out = self.lamin(who, &args);
        assert!(out.status.success(), "save as {who}: {}", stderr_text(&out));
        let uid = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let object = self.storage.join(".lamindb").join(format!("{uid}.csv"));
        assert!(object.exists(), "{} was written", object.display());
        (uid, object)
    }
}

fn storage_id(db: &mut postgres::Client, root: &Path) -> i64 {
    db.query_one(
        "SELECT id FROM lamin.storage WHERE root = $1",
        &[&root.to_str().unwrap()],
    )
    .unwrap()
    .get(0)
}

#[test]
fn byte_jobs_name_records_and_only_lamin_enqueues_deletes_and_sweeps() {
    let lab = Lab::start();
    let (uid, object) = lab.save("alice", "alice-secret.csv", Some("lab-x"));
    let mut carol = lab.connect("carol");
    let mut root = lab.cluster.connect();
    let sid = storage_id(&mut root, &lab.storage);

    // Carol asks the sidecar to delete alice's object: refused at enqueue.
    let args = serde_json::json!({
        "root": lab.storage.to_str().unwrap(), "object": format!(".lamindb/{uid}.csv"), "folder": false
    });
    let err = carol
        .query_one(
            "SELECT lamin.enqueue('delete_object', $1::text::jsonb)",
            &[&args.to_string()],
        )
        .unwrap_err();
    assert!(
        db_message(&err).contains("enqueued by lamin itself"),
        "{}",
        db_message(&err)
    );
    // …and so is a sweep, which as carol would take alice's object for an orphan.
    let err = carol
        .query_one(
            "SELECT lamin.enqueue('sweep_storage', $1::text::jsonb)",
            &[&serde_json::json!({"storage_id": sid, "grace_s": 0}).to_string()],
        )
        .unwrap_err();
    assert!(
        db_message(&err).contains("enqueued by lamin itself"),
        "{}",
        db_message(&err)
    );

    // Even a job a superuser forges is checked against the database by the
    // sidecar: it never deletes the object of an artifact that exists, nor
    // anything but an artifact's own object, nor for another requester.
    let forged = [
        (
            serde_json::json!({"uid": uid, "storage_id": sid, "object": format!(".lamindb/{uid}.csv")}),
            "lamin_sidecar",
            "the artifact exists",
        ),
        (
            serde_json::json!({"uid": "AAAAAAAAAAAAAAAAAAAA", "storage_id": sid, "object": format!(".lamindb/{uid}.csv")}),
            "lamin_sidecar",
            "not the object of artifact",
        ),
        (
            serde_json::json!({"uid": "AAAAAAAAAAAAAAAAAAAA", "storage_id": sid, "object": ".lamindb/AAAAAAAAAAAAAAAAAAAA.csv"}),
            "carol",
            "lamin's own",
        ),
    ];
    for (args, by, why) in forged {
        let job: i64 = root
            .query_one(
                "INSERT INTO lamin.job (kind, args, requested_by, max_attempts) VALUES ('delete_object', $1::text::jsonb, $2, 1) RETURNING id",
                &[&args.to_string(), &by],
            )
            .unwrap()
            .get(0);
        let (status, _, error) = await_job(&mut root, job);
        assert_eq!(status, "failed", "forged {args}");
        assert!(
            error.clone().unwrap_or_default().contains(why),
            "{error:?} should say {why:?}"
        );
    }
    assert!(object.exists(), "alice's object is still there");

    // An admin's sweep runs as the sidecar, which sees every space: alice's
    // object is not an orphan to it.
    let mut boss = lab.connect("boss");
    let sweep: i64 = boss
        .query_one("SELECT lamin.sweep_storage(NULL, 0)", &[])
        .unwrap()
        .get(0);
    assert_eq!(await_job(&mut boss, sweep).0, "done");
    assert!(
        object.exists(),
        "a sweep leaves the objects of every space alone"
    );

    // Alice's own permanent delete: the job lamin enqueues removes the bytes.
    let mut alice = lab.connect("alice");
    alice
        .query_one("SELECT lamin.delete($1, true)", &[&uid])
        .unwrap();
    let job: i64 = root
        .query_one(
            "SELECT max(id) FROM lamin.job WHERE kind = 'delete_object' AND args ->> 'uid' = $1",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(await_job(&mut root, job).0, "done");
    assert!(!object.exists(), "the deleted artifact's object is gone");
}

#[test]
fn an_export_query_runs_with_exactly_its_requesters_rights() {
    let lab = Lab::start();
    let (alice_uid, _) = lab.save("alice", "alice-only.csv", Some("lab-x"));
    let (bob_uid, _) = lab.save("bob", "bob-public.csv", None);
    let mut bob = lab.connect("bob");

    // The query tries to become alice (the sidecar's session may act as her).
    for query in [
        "SELECT set_config('role', 'alice', false) AS r, (SELECT count(*) FROM lamin.artifact) AS n",
        "SELECT n FROM (SELECT set_config('role', 'lamin_admin', true)) s, LATERAL (SELECT count(*) AS n FROM lamin.artifact) a",
    ] {
        let job: i64 = bob
            .query_one("SELECT lamin.export($1, 'escape.parquet')", &[&query])
            .unwrap()
            .get(0);
        let (status, _, error) = await_job(&mut bob, job);
        assert_eq!(status, "failed", "{query}");
        let error = error.unwrap_or_default();
        assert!(error.contains("security-definer"), "{error}");
    }
    let seen: i64 = lab
        .cluster
        .connect()
        .query_one(
            "SELECT count(*) FROM lamin.artifact WHERE key = 'escape.parquet'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(seen, 0, "no export was saved");

    // An honest export sees what bob sees: his artifact, not alice's.
    let job: i64 = bob
        .query_one(
            "SELECT lamin.export('SELECT uid FROM lamin.artifact ORDER BY uid', 'mine.parquet')",
            &[],
        )
        .unwrap()
        .get(0);
    let (status, result, error) = await_job(&mut bob, job);
    assert_eq!(status, "done", "{error:?}");
    let out = lab.lamin("bob", &["cat", result["uid"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&bob_uid), "{text}");
    assert!(!text.contains(&alice_uid), "{text}");
}

/// Run `statement` as `who` from `n` sessions at once, `rounds` times (each
/// round's statements get `{round}` and `{i}` filled in); the outcomes per round.
fn race(lab: &Lab, who: &str, statements: &[&str], rounds: usize) -> Vec<Vec<Result<(), String>>> {
    let n = statements.len();
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = statements
        .iter()
        .enumerate()
        .map(|(i, statement)| {
            let (url, barrier, statement) =
                (lab.url(who), Arc::clone(&barrier), statement.to_string());
            std::thread::spawn(move || {
                let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                (0..rounds)
                    .map(|round| {
                        let sql = statement
                            .replace("{round}", &round.to_string())
                            .replace("{i}", &i.to_string());
                        barrier.wait();
                        db.batch_execute(&sql).map_err(|e| db_message(&e))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let per_session: Vec<Vec<Result<(), String>>> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    (0..rounds)
        .map(|r| per_session.iter().map(|s| s[r].clone()).collect())
        .collect()
}

#[test]
fn duplicate_names_are_refused_under_concurrency() {
    let lab = Lab::start();
    let rounds = race(
        &lab,
        "bob",
        &[
            "INSERT INTO lamin.ulabel (name) VALUES ('Label-{round}')",
            "INSERT INTO lamin.ulabel (name) VALUES ('label-{round}')",
            "INSERT INTO lamin.ulabel (name) VALUES ('LABEL-{round} ')",
        ],
        30,
    );
    for (round, outcomes) in rounds.iter().enumerate() {
        let ok = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(
            ok, 1,
            "round {round}: exactly one of three spellings is saved: {outcomes:?}"
        );
        for e in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert!(e.contains("already exists"), "round {round}: {e}");
        }
    }
    // Serially, a trailing blank made a fourth spelling.
    let err = lab
        .connect("bob")
        .batch_execute("INSERT INTO lamin.ulabel (name) VALUES (' label-0')")
        .unwrap_err();
    assert!(
        db_message(&err).contains("already exists"),
        "{}",
        db_message(&err)
    );
    let rounds = race(
        &lab,
        "bob",
        &[
            "INSERT INTO lamin.feature (name, dtype) VALUES ('f{round}', 'int')",
            "INSERT INTO lamin.feature (name, dtype) VALUES ('F{round}', 'int')",
        ],
        30,
    );
    for (round, outcomes) in rounds.iter().enumerate() {
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "features, round {round}: {outcomes:?}"
        );
    }
}

#[test]
fn delete_and_restore_in_one_family_do_not_deadlock() {
    let lab = Lab::start();
    let mut root = lab.cluster.connect();
    let sid = storage_id(&mut root, &lab.storage);
    // One family of eight versions in space "all".
    for v in 0..8 {
        root.execute(
            "INSERT INTO lamin.artifact (uid, storage_id, hash, hash_type, size, status, key)
             VALUES ('FamilyDeadlock00' || lpad($1::text, 4, '0'), $2, md5($1::text) || md5($1::text), 'sha256', 1, 'ready', 'family.csv')",
            &[&v.to_string(), &sid],
        )
        .unwrap();
    }
    let statements: Vec<String> = (0..4)
        .map(|i| {
            format!(
                "SELECT lamin.delete('FamilyDeadlock00000{a}'); SELECT lamin.restore('FamilyDeadlock00000{a}');
                 SELECT lamin.delete('FamilyDeadlock00000{b}'); SELECT lamin.restore('FamilyDeadlock00000{b}');",
                a = i,
                b = 7 - i
            )
        })
        .collect();
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    let rounds = race(&lab, "bob", &refs, 60);
    let failures: Vec<&String> = rounds
        .iter()
        .flatten()
        .filter_map(|o| o.as_ref().err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} failed, e.g. {:?}",
        failures.len(),
        4 * 60,
        failures.first()
    );
    let heads: i64 = root
        .query_one(
            "SELECT count(*) FROM lamin.artifact WHERE stem = 'FamilyDeadlock00' AND is_latest",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(heads, 1, "the family keeps one head");
}
