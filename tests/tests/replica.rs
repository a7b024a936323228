//! Read replicas (issue 21): every read path answers on a hot standby (made
//! with `pg_basebackup` from a primary on loopback) exactly as on the
//! primary, for the superuser and for a reader under row-level security;
//! what needs a write says so clearly there; and `lamin get --read-url`
//! reads from the standby, records its input on the primary and sees the
//! caller's own writes.
//!
//! The read-side checks are a table of queries run on both servers and
//! compared, not a pgTAP file: pgTAP's `plan()` creates a temporary table
//! and sequence, which a hot standby refuses.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lamin_e2e::{db_message, import_cl_cut, lamin, ok, stderr_text, stdout_text, Cluster};

/// `lamin ARGS…` with DATABASE_URL (and more environment) as given.
fn lamin_at(url: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(lamin_e2e::lamin_bin())
        .args(args)
        .env("DATABASE_URL", url)
        .envs(env.iter().copied())
        .output()
        .expect("run lamin")
}

/// The primary and its data: a cell-type ontology, labels, features, a run
/// with an input and an output, and artifacts in two spaces, of which the
/// reader `alice` may read one.
struct Lab {
    primary: Cluster,
    dir: tempfile::TempDir,
    /// raw/t.csv in space "all", annotated; the input of `run`.
    input: String,
    /// out/u.csv, the output of `run`.
    output: String,
    /// An artifact in space lab_b, which alice cannot read.
    hidden: String,
    /// A run that is not finished, for the write refusals.
    open_run: String,
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn lab() -> Lab {
    let primary = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let mut db = primary.connect();
    db.batch_execute(&format!(
        "SELECT lamin.add_storage('{}');
         SELECT lamin.create_space('lab_a');
         SELECT lamin.create_space('lab_b');
         CREATE ROLE alice LOGIN PASSWORD 'pw-a' IN ROLE lamin_reader;
         SELECT lamin.grant('lab_a', 'alice', 'read');
         INSERT INTO lamin.ulabel (name) VALUES ('treated'), ('control');
         SELECT lamin.create_feature('perturbation', 'cat');
         SELECT lamin.create_feature('celltype', 'cat[bionty.cell_type]');",
        dir.path().join("storage").display()
    ))
    .unwrap_or_else(|e| panic!("{}", db_message(&e)));
    import_cl_cut(&primary);
    let run = ok(&lamin(&primary, &["track", "--key", "pipelines/qc.sh"]));
    let t = write(&dir, "t.csv", "cell,n\nT cell,1\nB cell,2\n");
    let input = ok(&lamin(&primary, &["save", &t, "--key", "raw/t.csv", "-q"]));
    let u = write(&dir, "u.csv", "cell,n\nT cell,3\n");
    let output = ok(&lamin(
        &primary,
        &["save", &u, "--key", "out/u.csv", "--run", &run, "-q"],
    ));
    let to = format!("{}/", dir.path().join("got").display());
    ok(&lamin(
        &primary,
        &["get", &input, "--run", &run, "--to", &to, "-q"],
    ));
    ok(&lamin(&primary, &["finish", &run]));
    let h = write(&dir, "h.csv", "secret,1\n");
    let hidden = ok(&lamin(
        &primary,
        &[
            "save",
            &h,
            "--key",
            "private/h.csv",
            "--space",
            "lab_b",
            "-q",
        ],
    ));
    let a = write(&dir, "a.csv", "x\n1\n");
    ok(&lamin(
        &primary,
        &["save", &a, "--key", "lab_a/a.csv", "--space", "lab_a", "-q"],
    ));
    db.batch_execute(&format!(
        "SELECT lamin.annotate('{input}', 'perturbation', ARRAY['treated']);
         SELECT lamin.annotate('{input}', 'celltype', ARRAY['T cell', 'B cell']);"
    ))
    .unwrap_or_else(|e| panic!("{}", db_message(&e)));
    let open_run = ok(&lamin(&primary, &["track", "--key", "pipelines/read.sh"]));
    Lab {
        primary,
        dir,
        input,
        output,
        hidden,
        open_run,
    }
}

/// The read paths of the issue, as queries whose whole answer is one text.
fn read_queries(lab: &Lab) -> Vec<(&'static str, String)> {
    let (input, output) = (&lab.input, &lab.output);
    let rows =
        |from: &str| format!("SELECT string_agg(r::text, ' | ' ORDER BY r::text) FROM {from} r");
    vec![
        ("search in a registry", rows("lamin.search('T cell', 'bionty.cell_type')")),
        ("search every registry", rows("lamin.search('treatd')")),
        ("search under a term", rows("lamin.search('cell', 'bionty.cell_type', under => 'CL:0000084')")),
        ("validate", "SELECT lamin.validate('bionty.cell_type', ARRAY['T cell', 'B cell', 'no such cell'])::text".into()),
        ("standardize", "SELECT lamin.standardize('bionty.cell_type', ARRAY['T-cell', 't cell', 'B cell'])::text".into()),
        ("inspect", rows("lamin.inspect('bionty.cell_type', ARRAY['T cel', 'B cell', 'T-cell'])")),
        ("did you mean", "SELECT lamin.did_you_mean('lamin.ulabel', ARRAY['treatd'])::text".into()),
        ("describe", format!("SELECT lamin.describe('{input}')::text")),
        ("describe a run's output", format!("SELECT lamin.describe('{output}')::text")),
        ("lineage", rows(&format!("lamin.lineage('{output}')"))),
        ("lineage_dot", format!("SELECT lamin.lineage_dot('{output}')")),
        ("ancestors", rows("bionty.ancestors('CL:0000084')")),
        ("descendants", rows("bionty.descendants('CL:0000084')")),
        ("find artifacts by label", rows("lamin.find_artifacts('{\"perturbation\": \"treated\"}')")),
        ("find artifacts by cell type", rows("lamin.find_artifacts('{\"celltype\": \"T cell\"}')")),
        ("get without a run", format!("SELECT (lamin.get('{input}')).uid")),
        ("get the latest by stem", format!("SELECT (lamin.get('{}')).uid", &input[..16])),
        ("access", rows("lamin.access()")),
        ("version", "SELECT lamin.version()".into()),
        ("instance", "SELECT (lamin.instance()).uid".into()),
        ("artifacts visible", "SELECT count(*)::text FROM lamin.artifact".into()),
    ]
}

/// Every view of lamin and bionty, each as a digest of all its rows.
fn view_queries(db: &mut postgres::Client) -> Vec<(String, String)> {
    db.query(
        "SELECT schemaname || '.' || viewname FROM pg_views
         WHERE schemaname IN ('lamin', 'bionty') ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| {
        let view: String = r.get(0);
        let sql = format!(
            "SELECT count(*) || ' rows, ' || md5(coalesce(string_agg(v::text, '|' ORDER BY v::text), '')) FROM {view} v"
        );
        (view, sql)
    })
    .collect()
}

/// One query's answer, or its error as SQLSTATE and message.
fn answer(db: &mut postgres::Client, sql: &str) -> Result<Option<String>, String> {
    db.query_one(sql, &[])
        .map(|r| r.get::<_, Option<String>>(0))
        .map_err(|e| format!("{:?}: {}", e.code(), db_message(&e)))
}

/// The error of a statement that must fail: (SQLSTATE, message with hint).
fn refusal(db: &mut postgres::Client, sql: &str) -> (String, String) {
    let e = db.batch_execute(sql).expect_err(sql);
    let d = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
    (
        d.code().code().to_string(),
        format!("{} {}", d.message(), d.hint().unwrap_or_default()),
    )
}

#[test]
fn every_read_path_answers_on_a_standby_as_on_the_primary() {
    let lab = lab();
    // The instance's identity is made on first use, on the primary.
    let mut boss = lab.primary.connect();
    boss.query_one("SELECT lamin.instance()", &[]).unwrap();
    let standby = lab.primary.start_standby();
    lab.primary.wait_for_replay(&standby);
    let mut on_standby = standby.connect();
    assert!(
        on_standby
            .query_one("SELECT pg_is_in_recovery()", &[])
            .unwrap()
            .get::<_, bool>(0),
        "the standby is in recovery"
    );

    for (who, primary_url, standby_url) in [
        ("lamin", lab.primary.url(), standby.url()),
        (
            "alice",
            lab.primary.url_as("alice", "pw-a"),
            standby.url_as("alice", "pw-a"),
        ),
    ] {
        let mut p = postgres::Client::connect(&primary_url, postgres::NoTls).unwrap();
        let mut s = postgres::Client::connect(&standby_url, postgres::NoTls).unwrap();
        let mut queries: Vec<(String, String)> = read_queries(&lab)
            .into_iter()
            .map(|(what, sql)| (what.to_string(), sql))
            .collect();
        queries.extend(view_queries(&mut p));
        assert!(queries.len() > 40, "{} queries", queries.len());
        for (what, sql) in &queries {
            // The standby first: a read that wrote on the primary would
            // otherwise pass there and reach the standby by replay.
            let there = answer(&mut s, sql);
            let here = answer(&mut p, sql);
            if !what.contains('.') {
                // The functions answer on the primary for both roles.
                assert!(
                    here.is_ok(),
                    "{who}: {what} failed on the primary: {here:?}"
                );
            }
            assert_eq!(there, here, "{who}: {what} differs on the standby\n{sql}");
        }
    }

    // What the two roles see is not the same: the standby keeps
    // row-level security (alice reads "all" and lab_a, not lab_b).
    let mut alice =
        postgres::Client::connect(&standby.url_as("alice", "pw-a"), postgres::NoTls).unwrap();
    let seen = |db: &mut postgres::Client| -> Vec<String> {
        db.query("SELECT uid FROM lamin.artifact ORDER BY uid", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let all = seen(&mut on_standby);
    let hers = seen(&mut alice);
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(hers.len(), 3, "{hers:?}");
    assert!(!hers.contains(&lab.hidden));
    assert!(answer(
        &mut alice,
        &format!("SELECT lamin.describe('{}')::text", lab.hidden)
    )
    .unwrap_err()
    .contains("no "));
    // The answers are real ones, not two equal errors or empty results.
    let top = answer(
        &mut on_standby,
        "SELECT name FROM lamin.search('T cel', 'bionty.cell_type') LIMIT 1",
    );
    assert_eq!(top, Ok(Some("T cell".into())));
    let valid = answer(
        &mut on_standby,
        "SELECT lamin.validate('bionty.cell_type', ARRAY['T cell', 'no such cell'])::text",
    );
    assert_eq!(valid, Ok(Some("{t,f}".into())));
}

#[test]
fn writes_on_a_standby_say_what_needs_the_primary() {
    let lab = lab();
    let standby = lab.primary.start_standby();
    lab.primary.wait_for_replay(&standby);
    let mut s = standby.connect();

    // lamin.get while a run is current would record an input: refused by
    // name before the INSERT.
    s.query_one("SELECT lamin.use_run($1)", &[&lab.open_run])
        .unwrap();
    let (code, message) = refusal(&mut s, &format!("SELECT lamin.get('{}')", lab.input));
    assert_eq!(code, "25006", "{message}");
    assert!(
        message.contains(&format!(
            "recording artifact {} as an input of the current run needs a writable server, and this one is a read-only standby",
            lab.input
        )) && message.contains("target_session_attrs=read-write"),
        "{message}"
    );

    // Work asked of the standby (here: a verify job) says where to queue it.
    let (code, message) = refusal(&mut s, &format!("SELECT lamin.verify('{}')", lab.input));
    assert_eq!(code, "25006", "{message}");
    assert!(
        message.contains(
            "queuing a verify job needs a writable server, and this one is a read-only standby"
        ),
        "{message}"
    );

    // The instance's identity is made on the primary only.
    let (code, message) = refusal(&mut s, "SELECT lamin.instance()");
    assert_eq!(code, "25006", "{message}");
    assert!(message.contains("its identity"), "{message}");

    // A role that never wrote has no lamin user; on a standby one is not
    // made, and the error says why, not "cannot execute INSERT".
    let mut alice =
        postgres::Client::connect(&standby.url_as("alice", "pw-a"), postgres::NoTls).unwrap();
    let (code, message) = refusal(&mut alice, "SELECT lamin.current_user_id()");
    assert_eq!(code, "25006", "{message}");
    assert!(message.contains("no lamin user yet"), "{message}");
    // Reads never needed it.
    assert_eq!(
        answer(
            &mut alice,
            "SELECT count(*)::text FROM lamin.search('T cell')"
        )
        .map(|n| n.is_some()),
        Ok(true)
    );

    // The CLI: a save against the standby fails with what to do, and
    // stores nothing.
    let storage = lab.dir.path().join("storage");
    let objects = || walk_files(&storage);
    let before = objects();
    let f = write(&lab.dir, "new.csv", "n\n7\n");
    let out = lamin_at(
        &standby.url(),
        &[],
        &["save", &f, "--key", "raw/new.csv", "-q"],
    );
    assert!(!out.status.success());
    let err = stderr_text(&out);
    assert!(
        err.contains("read-only") && err.contains("target_session_attrs=read-write"),
        "{err}"
    );
    assert_eq!(stdout_text(&out), "");
    assert_eq!(objects(), before, "the failed save left objects in storage");
}

fn walk_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_files(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_cli_reads_from_a_standby_and_records_inputs_on_the_primary() {
    let lab = lab();
    let standby = lab.primary.start_standby();
    lab.primary.wait_for_replay(&standby);
    let (p, s) = (lab.primary.url(), standby.url());

    let status = ok(&lamin_at(&s, &[], &["status"]));
    assert!(status.contains("hot standby (read-only"), "{status}");
    let status = ok(&lamin_at(&p, &[], &["status"]));
    assert!(status.contains("primary (read-write)"), "{status}");

    // The reading verbs print the same on both servers.
    for args in [
        vec!["cat", lab.input.as_str()],
        vec!["ls", "raw/"],
        vec!["search", "T cel", "--registry", "bionty.cell_type"],
        vec!["describe", lab.output.as_str()],
    ] {
        let there = ok(&lamin_at(&s, &[], &args));
        assert_eq!(there, ok(&lamin_at(&p, &[], &args)), "lamin {args:?}");
        assert!(!there.is_empty(), "lamin {args:?}");
    }
    let to = |name: &str| format!("{}/", lab.dir.path().join(name).display());
    let got = ok(&lamin_at(
        &s,
        &[],
        &["get", &lab.input, "--to", &to("g1"), "-q"],
    ));
    assert_eq!(
        std::fs::read_to_string(got).unwrap(),
        "cell,n\nT cell,1\nB cell,2\n"
    );

    // With --run, the input must be recorded: DATABASE_URL at the standby
    // is refused before a byte is written.
    let out = lamin_at(
        &s,
        &[],
        &[
            "get",
            &lab.input,
            "--run",
            &lab.open_run,
            "--to",
            &to("g2"),
            "-q",
        ],
    );
    assert!(!out.status.success());
    let err = stderr_text(&out);
    assert!(
        err.contains("--read-url") && err.contains("nothing was done"),
        "{err}"
    );
    assert!(!lab.dir.path().join("g2").exists(), "a file was written");

    // The split: DATABASE_URL the primary, --read-url the standby.
    let got = ok(&lamin_at(
        &p,
        &[("LAMIN_READ_URL", &s)],
        &[
            "get",
            &lab.input,
            "--run",
            &lab.open_run,
            "--to",
            &to("g3"),
            "-q",
        ],
    ));
    assert!(got.ends_with("g3/t.csv"), "{got}");
    let inputs: i64 = lab
        .primary
        .connect()
        .query_one(
            "SELECT count(*) FROM lamin.run_input_artifact i
             JOIN lamin.run r ON r.id = i.run_id JOIN lamin.artifact a ON a.id = i.artifact_id
             WHERE r.uid = $1 AND a.uid = $2",
            &[&lab.open_run, &lab.input],
        )
        .unwrap()
        .get(0);
    assert_eq!(inputs, 1);

    // With DATABASE_URL the primary and LAMIN_READ_URL the standby, every
    // reading verb reads on the standby: with every statement logged on
    // both servers, only the standby's log has their queries.
    let logged = |url: &str| format!("{url}?options=-c%20log_statement%3Dall");
    let (lp, ls) = (logged(&p), logged(&s));
    let split = [("LAMIN_READ_URL", ls.as_str())];
    for args in [
        vec!["cat", lab.input.as_str()],
        vec!["ls", "raw/"],
        vec!["search", "T cel", "--registry", "bionty.cell_type"],
        vec!["describe", lab.output.as_str()],
        vec!["get", lab.input.as_str(), "--to", &to("g5"), "-q"],
    ] {
        let there = ok(&lamin_at(&lp, &split, &args));
        if args[0] != "get" {
            assert_eq!(there, ok(&lamin_at(&p, &[], &args)), "lamin {args:?}");
        }
    }
    let log = |c: &Cluster| std::fs::read_to_string(c.dir().join("postgres.log")).unwrap();
    for query in [
        "WHERE a.id = lamin.artifact_id($1)",
        "FROM lamin.artifacts v",
        "FROM lamin.search($1",
        "lamin.describe(",
    ] {
        assert!(
            log(&standby).contains(query),
            "the standby did not run {query}"
        );
        assert!(
            !log(&lab.primary).contains(query),
            "the primary ran {query}"
        );
    }
    assert!(
        log(&lab.primary).contains("pg_current_wal_insert_lsn"),
        "the primary's log has the statements of its connection"
    );

    // Read-your-writes: with the standby's replay paused, a file saved on
    // the primary is not on the standby; `get --read-url` waits until the
    // standby has replayed it instead of answering "no artifact".
    let mut sb = standby.connect();
    sb.batch_execute("SELECT pg_wal_replay_pause()").unwrap();
    let f = write(&lab.dir, "fresh.csv", "fresh\n1\n");
    let fresh = ok(&lamin_at(
        &p,
        &[],
        &["save", &f, "--key", "raw/fresh.csv", "-q"],
    ));
    let on_standby: i64 = sb
        .query_one(
            "SELECT count(*) FROM lamin.artifact WHERE uid = $1",
            &[&fresh],
        )
        .unwrap()
        .get(0);
    assert_eq!(on_standby, 0, "replay was paused");
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        sb.batch_execute("SELECT pg_wal_replay_resume()").unwrap();
    });
    let started = Instant::now();
    let got = ok(&lamin_at(
        &p,
        &[("LAMIN_READ_URL", &s)],
        &["get", &fresh, "--to", &to("g4"), "-q"],
    ));
    let waited = started.elapsed();
    resume.join().unwrap();
    assert_eq!(std::fs::read_to_string(got).unwrap(), "fresh\n1\n");
    assert!(
        waited >= Duration::from_millis(1000),
        "did not wait: {waited:?}"
    );
}
