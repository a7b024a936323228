//! A mesh of instances, end to end: `lamin init` clones a template database
//! with its ontologies, `lamin instances` and `lamin connect` find them,
//! `lamin transfer` copies records between two instances with their
//! annotations mapped by meaning (same storage, and --copy into S3, hash-
//! checked), idempotently, as the calling roles; lamin.attach_instance reads
//! another instance through postgres_fdw without copying.

use lamin_e2e::{
    import_cl_cut, lamin, lamin_with_env, stderr_text, stdout_text, Cluster, S3Server,
};

fn env(cluster: &Cluster, db: &str) -> Vec<(String, String)> {
    vec![("DATABASE_URL".into(), url_of(cluster, db))]
}

fn url_of(cluster: &Cluster, db: &str) -> String {
    cluster.url().rsplit_once('/').unwrap().0.to_string() + "/" + db
}

/// A database with the extension (and the Cell Ontology cut), made an
/// instance of its own name.
fn instance(cluster: &Cluster, name: &str) -> postgres::Client {
    cluster.create_database(name);
    let mut db = cluster.connect_to(name);
    db.batch_execute(&format!(
        "SET client_min_messages = warning; CREATE EXTENSION lamin CASCADE; SELECT lamin.init_instance('{name}')"
    ))
    .unwrap();
    let out = import_cl_cut_into(cluster, name);
    assert!(out.status.success(), "{}", stderr_text(&out));
    db
}

fn import_cl_cut_into(cluster: &Cluster, db: &str) -> std::process::Output {
    let cl = lamin_e2e::fixture("bionty/cl-cut.json.zst");
    lamin_with_env(
        cluster,
        &env(cluster, db),
        &[
            "import",
            "ontology",
            "--entity",
            "cell_type",
            "--source",
            "cl",
            "--version",
            "cut",
            cl.to_str().unwrap(),
        ],
    )
}

fn count(db: &mut postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn a_new_instance_is_a_copy_of_the_template_with_its_ontologies() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    // The template as scripts/up keeps it: the extension and an ontology, no connections.
    cluster.create_database("lamin_template");
    cluster
        .connect_to("lamin_template")
        .batch_execute("SET client_min_messages = warning; CREATE EXTENSION lamin CASCADE")
        .unwrap();
    let out = import_cl_cut_into(&cluster, "lamin_template");
    assert!(out.status.success(), "{}", stderr_text(&out));
    cluster
        .connect_to("postgres")
        .batch_execute(
            "ALTER DATABASE lamin_template WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
        )
        .unwrap();

    let storage = dir.path().join("lab_b");
    let out = lamin(
        &cluster,
        &["init", "lab_b", "--storage", storage.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("from the template"),
        "{}",
        stderr_text(&out)
    );
    // The URL alone on stdout, without the password.
    let printed = stdout_text(&out);
    assert!(
        printed.ends_with("/lab_b") && !printed.contains(&cluster.password),
        "{printed}"
    );

    // The new instance answers a search of the template's ontology, with an identity of its own.
    let mut lab_b = cluster.connect_to("lab_b");
    let hit: String = lab_b
        .query_one(
            "SELECT name FROM lamin.search('T cell', 'bionty.cell_type') LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(hit, "T cell");
    let (name, uid): (String, String) = {
        let r = lab_b
            .query_one("SELECT name, uid FROM lamin.instance()", &[])
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(name, "lab_b");
    assert_eq!(uid.len(), 12);
    let root: String = lab_b
        .query_one("SELECT root FROM lamin.storage WHERE is_default", &[])
        .unwrap()
        .get(0);
    assert_eq!(root, storage.to_str().unwrap());

    // lamin status names it.
    let out = lamin_with_env(&cluster, &env(&cluster, "lab_b"), &["status"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stdout_text(&out).contains(&format!("instance         lab_b (uid {uid})")),
        "{}",
        stdout_text(&out)
    );

    // A second instance gets another uid.
    let out = lamin(&cluster, &["init", "lab_c"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uid_c: String = cluster
        .connect_to("lab_c")
        .query_one("SELECT uid FROM lamin.instance()", &[])
        .unwrap()
        .get(0);
    assert_ne!(uid, uid_c);

    // Bad names and taken names are refused, and nothing is left behind by a failed init.
    let out = lamin(&cluster, &["init", "lab_b"]);
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("exists on this server already"),
        "{}",
        stderr_text(&out)
    );
    let out = lamin(&cluster, &["init", "Lab-D"]);
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("invalid instance name"),
        "{}",
        stderr_text(&out)
    );
    let out = lamin(&cluster, &["init", "lab_d", "--storage", "relative/path"]);
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("relative/path"),
        "{}",
        stderr_text(&out)
    );
    let mut postgres = cluster.connect_to("postgres");
    assert_eq!(
        count(
            &mut postgres,
            "SELECT count(*) FROM pg_database WHERE datname = 'lab_d'"
        ),
        0
    );

    // Without a template: the extension alone, said so.
    let out = lamin(
        &cluster,
        &["init", "lab_e", "--template", "no_such_template"],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("without ontologies"),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(
        count(
            &mut cluster.connect_to("lab_e"),
            "SELECT count(*) FROM bionty.cell_type"
        ),
        0
    );

    // lamin.init_instance never re-makes an instance that holds records.
    let mut main = cluster.connect();
    main.query_one(
        "SELECT lamin.add_storage($1)",
        &[&dir.path().join("main").to_str().unwrap()],
    )
    .unwrap();
    main.query_one("SELECT lamin.save_artifact(repeat('a', 64), 1)", &[])
        .unwrap();
    let err = main
        .query_one("SELECT lamin.init_instance('other')", &[])
        .unwrap_err();
    assert!(
        lamin_e2e::db_message(&err).contains("already holds an instance with records"),
        "{err}"
    );

    // lamin instances: every instance of the server, the template last.
    let out = lamin(&cluster, &["instances"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    let listed = stdout_text(&out);
    let names: Vec<&str> = listed
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "lab_b",
            "lab_c",
            "lab_e",
            "lamin_test",
            "lamin_template (template)"
        ],
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("lab_b\t{uid}\t"))),
        "{listed}"
    );

    // lamin connect: the environment of an instance, on stdout or into a file.
    let out = lamin(&cluster, &["connect", "lab_b"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(stdout_text(&out).contains(&format!(
        "export DATABASE_URL='{}'",
        url_of(&cluster, "lab_b")
    )));
    let file = dir.path().join("lab_b.env");
    let out = lamin(
        &cluster,
        &["connect", "lab_b", "--env-file", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = lamin(&cluster, &["connect", "postgres"]);
    assert!(!out.status.success(), "postgres is no lamin instance");
}

/// The source instance: two versions of a file under one key, annotated
/// with a value, an ontology term and a typed label, in a collection.
struct Source {
    v1: String,
    v2: String,
    collection: String,
    storage: std::path::PathBuf,
}

fn fill_source(cluster: &Cluster, dir: &std::path::Path) -> Source {
    let storage = dir.join("s1");
    let mut db = cluster.connect();
    db.batch_execute(&format!(
        "SELECT lamin.init_instance('lab_a');
         SELECT lamin.add_storage('{}');
         SELECT lamin.create_feature('temperature', 'float'), lamin.create_feature('cell_type', 'cat[bionty.cell_type]'),
                lamin.create_feature('perturbation', 'cat');
         INSERT INTO lamin.ulabel (name, is_type) VALUES ('Perturbation', true);
         INSERT INTO lamin.ulabel (name, type_id) SELECT 'DMSO', id FROM lamin.ulabel WHERE name = 'Perturbation';",
        storage.display()
    ))
    .unwrap();
    import_cl_cut(cluster);
    let file = dir.join("cells.csv");
    let mut uids = Vec::new();
    for content in [
        "cell,type\nc1,T cell\n",
        "cell,type\nc1,T cell\nc2,B cell\n",
    ] {
        std::fs::write(&file, content).unwrap();
        let out = lamin(
            cluster,
            &[
                "save",
                file.to_str().unwrap(),
                "--key",
                "screens/cells.csv",
                "-q",
            ],
        );
        assert!(out.status.success(), "{}", stderr_text(&out));
        uids.push(stdout_text(&out));
    }
    db.batch_execute(&format!(
        "SELECT lamin.annotate('{v2}', 'temperature', ARRAY['37.5']);
         SELECT lamin.annotate('{v2}', 'cell_type', ARRAY['T cell']);
         SELECT lamin.annotate('{v2}', 'perturbation', ARRAY['DMSO']);",
        v2 = uids[1]
    ))
    .unwrap();
    let collection: String = db
        .query_one("SELECT lamin.save_collection('screens', $1)", &[&uids])
        .unwrap()
        .get(0);
    Source {
        v1: uids[0].clone(),
        v2: uids[1].clone(),
        collection,
        storage,
    }
}

/// What the target holds: every row of the records and links a transfer makes.
fn holdings(db: &mut postgres::Client) -> Vec<String> {
    db.query(
        "SELECT 'artifact ' || uid || ' ' || hash || ' ' || coalesce(key, '') || ' latest=' || is_latest FROM lamin.artifact
         UNION ALL SELECT 'annotation ' || artifact_uid || ' ' || coalesce(feature, '') || ' ' || registry || ' ' || name || ' ' || coalesce(ontology_id, '') FROM lamin.annotations
         UNION ALL SELECT 'value ' || artifact_uid || ' ' || feature || ' ' || value::text FROM lamin.feature_values WHERE registry IS NULL
         UNION ALL SELECT 'member ' || c.uid || ' ' || a.uid || ' ' || ca.position FROM lamin.collection_artifact ca
                   JOIN lamin.collection c ON c.id = ca.collection_id JOIN lamin.artifact a ON a.id = ca.artifact_id
         UNION ALL SELECT 'run ' || t.key || ' ' || r.params::text FROM lamin.run r JOIN lamin.transform t ON t.id = r.transform_id
         UNION ALL SELECT 'label ' || u.name || ' type=' || coalesce(t.name, '') FROM lamin.ulabel u LEFT JOIN lamin.ulabel t ON t.id = u.type_id
         UNION ALL SELECT 'feature ' || name || ' ' || dtype FROM lamin.feature
         ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn a_transfer_maps_annotations_by_meaning_and_is_idempotent() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let src = fill_source(&cluster, dir.path());
    let mut lab_b = instance(&cluster, "lab_b");

    // The collection brings its two members; instance names resolve on DATABASE_URL's server.
    let out = lamin(
        &cluster,
        &[
            "transfer",
            &src.collection,
            "--from",
            "lamin_test",
            "--to",
            "lab_b",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        stdout_text(&out),
        format!(
            "artifact\t{v1}\t{v1}\tcreated\nartifact\t{v2}\t{v2}\tcreated\ncollection\t{c}\t{c}\tcreated",
            v1 = src.v1,
            v2 = src.v2,
            c = src.collection
        )
    );
    let held = holdings(&mut lab_b);
    let expect = [
        format!(
            "annotation {} cell_type bionty.cell_type T cell CL:0000084",
            src.v2
        ),
        format!("annotation {} perturbation lamin.ulabel DMSO ", src.v2),
        format!("value {} temperature 37.5", src.v2),
        format!("member {} {} 0", src.collection, src.v1),
        format!("member {} {} 1", src.collection, src.v2),
        "label DMSO type=Perturbation".to_string(),
        "feature temperature float".to_string(),
    ];
    for line in &expect {
        assert!(held.contains(line), "{line} missing from {held:#?}");
    }
    // The version family travels: the newer version is the latest here too.
    assert!(
        held.iter()
            .any(|l| l.starts_with(&format!("artifact {} ", src.v2)) && l.ends_with("latest=true")),
        "{held:#?}"
    );
    assert!(held.iter().any(|l| l.starts_with(&format!("artifact {} ", src.v1)) && l.ends_with("latest=false")), "{held:#?}");
    // The lineage: one run of the transfer transform naming the source and its uids.
    let run = held
        .iter()
        .find(|l| l.starts_with("run __lamin_transfer__/lab_a "))
        .expect("a transfer run");
    for uid in [&src.v1, &src.v2, &src.collection] {
        assert!(run.contains(uid.as_str()), "{run}");
    }
    // The same storage: the target reads the source's bytes (checked by lamin get).
    let got = dir.path().join("got.csv");
    let out = lamin_with_env(
        &cluster,
        &env(&cluster, "lab_b"),
        &["get", &src.v2, "--to", got.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        std::fs::read_to_string(&got).unwrap(),
        "cell,type\nc1,T cell\nc2,B cell\n"
    );

    // Again: nothing changes.
    let out = lamin(
        &cluster,
        &[
            "transfer",
            &src.collection,
            "--from",
            "lamin_test",
            "--to",
            "lab_b",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stdout_text(&out).lines().all(|l| l.ends_with("\texists")),
        "{}",
        stdout_text(&out)
    );
    assert_eq!(holdings(&mut lab_b), held);

    // The same content already in a target is linked, not duplicated: it gains the annotations.
    let mut lab_c = instance(&cluster, "lab_c");
    lab_c
        .query_one(
            "SELECT lamin.add_storage($1)",
            &[&src.storage.to_str().unwrap()],
        )
        .unwrap();
    std::fs::write(
        dir.path().join("same.csv"),
        "cell,type\nc1,T cell\nc2,B cell\n",
    )
    .unwrap();
    let out = lamin_with_env(
        &cluster,
        &env(&cluster, "lab_c"),
        &[
            "save",
            dir.path().join("same.csv").to_str().unwrap(),
            "--key",
            "mine.csv",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let mine = stdout_text(&out);
    let out = lamin(
        &cluster,
        &["transfer", &src.v2, "--from", "lamin_test", "--to", "lab_c"],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        stdout_text(&out),
        format!("artifact\t{}\t{mine}\tlinked", src.v2)
    );
    assert_eq!(count(&mut lab_c, "SELECT count(*) FROM lamin.artifact"), 1);
    assert_eq!(
        count(
            &mut lab_c,
            &format!("SELECT count(*) FROM lamin.annotations WHERE artifact_uid = '{mine}'")
        ),
        2
    );

    // Conflicting definitions are listed, and nothing is transferred.
    let mut lab_d = instance(&cluster, "lab_d");
    lab_d
        .batch_execute(
            "SELECT lamin.create_feature('temperature', 'int');
             DELETE FROM bionty.cell_type WHERE ontology_id = 'CL:0000084'",
        )
        .unwrap();
    let out = lamin(
        &cluster,
        &["transfer", &src.v2, "--from", "lamin_test", "--to", "lab_d"],
    );
    assert!(!out.status.success());
    let said = stderr_text(&out);
    assert!(
        said.contains("feature 'temperature': dtype int here, float in the source"),
        "{said}"
    );
    assert!(
        said.contains("bionty.cell_type has no record with ontology_id 'CL:0000084'"),
        "{said}"
    );
    assert_eq!(count(&mut lab_d, "SELECT count(*) FROM lamin.artifact"), 0);
    assert_eq!(count(&mut lab_d, "SELECT count(*) FROM lamin.run"), 0);

    // By query, and from stdin.
    let mut lab_e = instance(&cluster, "lab_e");
    // From stdin: what `lamin ls` lists (its header skipped), the latest: v2.
    let listed = lamin(&cluster, &["ls", "screens/"]);
    assert!(listed.status.success(), "{}", stderr_text(&listed));
    let mut child = std::process::Command::new(lamin_e2e::lamin_bin())
        .args(["transfer", "-", "--from", "lamin_test", "--to", "lab_e"])
        .env("DATABASE_URL", cluster.url())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&listed.stdout)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        stdout_text(&out),
        format!("artifact\t{v2}\t{v2}\tcreated", v2 = src.v2)
    );
    // By query: the older version, after the newer one, does not become the latest.
    let out = lamin(
        &cluster,
        &[
            "transfer",
            "--from",
            "lamin_test",
            "--to",
            "lab_e",
            "--query",
            "SELECT uid FROM lamin.artifact WHERE NOT is_latest",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        stdout_text(&out),
        format!("artifact\t{v1}\t{v1}\tcreated", v1 = src.v1)
    );
    assert_eq!(
        count(
            &mut lab_e,
            "SELECT count(*) FROM lamin.artifact WHERE is_latest"
        ),
        1
    );
    let latest: String = lab_e
        .query_one("SELECT uid FROM lamin.artifact WHERE is_latest", &[])
        .unwrap()
        .get(0);
    assert_eq!(latest, src.v2);
}

#[test]
fn a_transfer_with_copy_moves_the_bytes_into_s3_checked_by_hash() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let src = fill_source(&cluster, dir.path());
    let s3 = S3Server::start();
    s3.create_bucket("lab-b");
    let mut lab_b = instance(&cluster, "lab_b");
    lab_b
        .query_one("SELECT lamin.add_storage('s3://lab-b/data')", &[])
        .unwrap();

    let out = lamin_with_env(
        &cluster,
        &s3.env(),
        &[
            "transfer",
            &src.v2,
            &src.v1,
            "--from",
            "lamin_test",
            "--to",
            "lab_b",
            "--copy",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("2 objects copied"),
        "{}",
        stderr_text(&out)
    );
    let mut keys = s3.keys("lab-b", "data/.lamindb");
    keys.sort();
    let mut expect = vec![
        format!("data/.lamindb/{}.csv", src.v1),
        format!("data/.lamindb/{}.csv", src.v2),
    ];
    expect.sort();
    assert_eq!(keys, expect);
    let root: String = lab_b
        .query_one("SELECT s.root FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id WHERE a.uid = $1", &[&src.v2])
        .unwrap()
        .get(0);
    assert_eq!(root, "s3://lab-b/data");
    // Read back through the target, hash-checked.
    let got = dir.path().join("got.csv");
    let mut e = env(&cluster, "lab_b");
    e.extend(s3.env());
    let out = lamin_with_env(
        &cluster,
        &e,
        &["get", &src.v2, "--to", got.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        std::fs::read_to_string(&got).unwrap(),
        "cell,type\nc1,T cell\nc2,B cell\n"
    );

    // Again: nothing copied, nothing changed.
    let before = holdings(&mut lab_b);
    let out = lamin_with_env(
        &cluster,
        &s3.env(),
        &[
            "transfer",
            &src.v2,
            "--from",
            "lamin_test",
            "--to",
            "lab_b",
            "--copy",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("0 objects copied"),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(holdings(&mut lab_b), before);

    // Bytes changed behind the source's back are caught by the hash, and nothing is transferred.
    let mut lab_c = instance(&cluster, "lab_c");
    lab_c
        .query_one("SELECT lamin.add_storage('s3://lab-b/c')", &[])
        .unwrap();
    std::fs::write(
        src.storage.join(format!(".lamindb/{}.csv", src.v1)),
        "cell,type\nforged\n",
    )
    .unwrap();
    let out = lamin_with_env(
        &cluster,
        &s3.env(),
        &[
            "transfer",
            &src.v1,
            "--from",
            "lamin_test",
            "--to",
            "lab_c",
            "--copy",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("not to the recorded"),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(count(&mut lab_c, "SELECT count(*) FROM lamin.artifact"), 0);
    assert!(
        s3.keys("lab-b", "c/").is_empty(),
        "{:?}",
        s3.keys("lab-b", "c/")
    );

    // A conflict found once the bytes are copied: the copies go again.
    let mut lab_d = instance(&cluster, "lab_d");
    lab_d
        .batch_execute("SELECT lamin.add_storage('s3://lab-b/d'); SELECT lamin.create_feature('temperature', 'int')")
        .unwrap();
    let out = lamin_with_env(
        &cluster,
        &s3.env(),
        &[
            "transfer",
            &src.v2,
            "--from",
            "lamin_test",
            "--to",
            "lab_d",
            "--copy",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("dtype int here"),
        "{}",
        stderr_text(&out)
    );
    assert!(
        s3.keys("lab-b", "d/").is_empty(),
        "{:?}",
        s3.keys("lab-b", "d/")
    );
}

#[test]
fn a_transfer_runs_as_the_caller_on_both_sides() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let src = fill_source(&cluster, dir.path());
    let mut lab_b = instance(&cluster, "lab_b");
    let mut root = cluster.connect();
    // Roles are the cluster's: alice writes in both, bob only reads the target.
    root.batch_execute(
        "CREATE ROLE alice LOGIN PASSWORD 'pw-a' IN ROLE lamin_writer;
         CREATE ROLE bob LOGIN PASSWORD 'pw-b' IN ROLE lamin_reader;
         SELECT lamin.create_space('secret');
         SELECT lamin.use_space('secret');",
    )
    .unwrap();
    std::fs::write(dir.path().join("secret.csv"), "compound\nX-42\n").unwrap();
    let out = lamin(
        &cluster,
        &[
            "save",
            dir.path().join("secret.csv").to_str().unwrap(),
            "--space",
            "secret",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let secret = stdout_text(&out);
    // The source's storage is registered in the target by its admin (a writer may not register storages).
    lab_b
        .query_one(
            "SELECT lamin.add_storage($1)",
            &[&src.storage.to_str().unwrap()],
        )
        .unwrap();
    lab_b
        .batch_execute("SELECT lamin.create_space('lab'); SELECT lamin.grant('lab', 'alice', 'write'); SELECT lamin.create_space('hidden');")
        .unwrap();
    let as_role = |user: &str, pw: &str, db: &str| -> String {
        format!("postgresql://{user}:{pw}@127.0.0.1:{}/{db}", cluster.port)
    };

    // A record alice cannot read in the source is unknown to her, word for word as a uid that does not exist.
    let transfer = |user: &str, pw: &str, uid: &str, extra: &[&str]| {
        let from = as_role(user, pw, "lamin_test");
        let to = as_role(user, pw, "lab_b");
        let mut args = vec![
            "transfer",
            uid,
            "--from",
            from.as_str(),
            "--to",
            to.as_str(),
        ];
        args.extend_from_slice(extra);
        lamin(&cluster, &args)
    };
    let hidden = transfer("alice", "pw-a", &secret, &[]);
    let missing = transfer("alice", "pw-a", "0000000000000000zzzz", &[]);
    assert!(!hidden.status.success() && !missing.status.success());
    assert_eq!(
        stderr_text(&hidden).replace(&secret, "UID"),
        stderr_text(&missing).replace("0000000000000000zzzz", "UID")
    );

    // Alice's transfer lands in her space of the target, made by her; bob may not write there.
    let out = transfer("bob", "pw-b", &src.v2, &[]);
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("permission denied"),
        "{}",
        stderr_text(&out)
    );
    let out = transfer("alice", "pw-a", &src.v2, &["--space", "lab"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    let (space, by): (String, String) = {
        let r = lab_b
            .query_one(
                "SELECT s.name, u.handle FROM lamin.artifact a JOIN lamin.space s ON s.id = a.space_id
                 JOIN lamin.\"user\" u ON u.id = a.created_by WHERE a.uid = $1",
                &[&src.v2],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((space.as_str(), by.as_str()), ("lab", "alice"));
    // Bob, without the lab space, does not see it in the target.
    let mut bob =
        postgres::Client::connect(&as_role("bob", "pw-b", "lab_b"), postgres::NoTls).unwrap();
    assert_eq!(count(&mut bob, "SELECT count(*) FROM lamin.artifact"), 0);

    // A copy of the record in a target space alice cannot read: her transfer says only that its uid is taken.
    lab_b
        .batch_execute("SELECT lamin.use_space('hidden')")
        .unwrap();
    let out = lamin(
        &cluster,
        &[
            "transfer",
            &src.v1,
            "--from",
            "lamin_test",
            "--to",
            "lab_b",
            "--space",
            "hidden",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let out = transfer("alice", "pw-a", &src.v1, &["--space", "lab"]);
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("taken by a record in a space you cannot read"),
        "{}",
        stderr_text(&out)
    );
}

#[test]
fn another_instance_is_read_through_foreign_tables_without_copying() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let src = fill_source(&cluster, dir.path());
    let mut lab_b = instance(&cluster, "lab_b");
    let mut root = cluster.connect();
    root.batch_execute(
        "CREATE ROLE alice LOGIN PASSWORD 'pw-a' IN ROLE lamin_reader;
         SELECT lamin.create_space('secret');",
    )
    .unwrap();
    std::fs::write(dir.path().join("secret.csv"), "compound\nX-42\n").unwrap();
    let out = lamin(
        &cluster,
        &[
            "save",
            dir.path().join("secret.csv").to_str().unwrap(),
            "--space",
            "secret",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));

    let n: i32 = lab_b
        .query_one(
            "SELECT lamin.attach_instance('lab_a', '127.0.0.1', $1, 'lamin_test', 'lamin', $2)",
            &[&(cluster.port as i32), &cluster.password],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 13);
    // Its artifacts joined with this instance's ontology, in plain SQL.
    let rows: Vec<(String, String)> = lab_b
        .query(
            "SELECT a.artifact_uid, c.name FROM lab_a.annotations a JOIN bionty.cell_type c ON c.ontology_id = a.ontology_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [(src.v2.clone(), "T cell".to_string())]);
    assert_eq!(count(&mut lab_b, "SELECT count(*) FROM lab_a.artifacts"), 3);
    // Read-only.
    let err = lab_b
        .batch_execute("DELETE FROM lab_a.artifacts")
        .unwrap_err();
    assert!(lamin_e2e::db_message(&err).contains("not allow"), "{err}");
    let listed: String = lab_b
        .query_one(
            "SELECT name || ' ' || dbname FROM lamin.attached_instances",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(listed, "lab_a lamin_test");

    // Alice reads through her own mapping, as her remote role: the other side's spaces hold.
    lab_b
        .batch_execute(
            "GRANT USAGE ON SCHEMA lab_a TO alice; GRANT SELECT ON ALL TABLES IN SCHEMA lab_a TO alice;
             CREATE USER MAPPING FOR alice SERVER lamin_instance_lab_a OPTIONS (user 'alice', password 'pw-a');",
        )
        .unwrap();
    let mut alice = postgres::Client::connect(
        &format!("postgresql://alice:pw-a@127.0.0.1:{}/lab_b", cluster.port),
        postgres::NoTls,
    )
    .unwrap();
    assert_eq!(count(&mut alice, "SELECT count(*) FROM lab_a.artifacts"), 2);

    // Refusals: a name in use, a wrong password, a database that is no instance.
    let err = lab_b
        .query_one(
            "SELECT lamin.attach_instance('lab_a', '127.0.0.1', 1, 'x')",
            &[],
        )
        .unwrap_err();
    assert!(
        lamin_e2e::db_message(&err).contains("exists already"),
        "{err}"
    );
    let err = lab_b
        .query_one(
            "SELECT lamin.attach_instance('wrong', '127.0.0.1', $1, 'lamin_test', 'lamin', 'not-the-password')",
            &[&(cluster.port as i32)],
        )
        .unwrap_err();
    assert!(lamin_e2e::db_message(&err).contains("password"), "{err}");
    let err = lab_b
        .query_one(
            "SELECT lamin.attach_instance('plain', '127.0.0.1', $1, 'postgres', 'lamin', $2)",
            &[&(cluster.port as i32), &cluster.password],
        )
        .unwrap_err();
    assert!(
        lamin_e2e::db_message(&err).contains("is not a lamin instance"),
        "{err}"
    );
    assert_eq!(
        count(
            &mut lab_b,
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('wrong', 'plain')"
        ),
        0
    );

    // Detached: gone from here, the other instance untouched.
    lab_b
        .batch_execute("SELECT lamin.detach_instance('lab_a')")
        .unwrap();
    assert_eq!(
        count(&mut lab_b, "SELECT count(*) FROM lamin.attached_instances"),
        0
    );
    assert_eq!(count(&mut root, "SELECT count(*) FROM lamin.artifact"), 3);
}
