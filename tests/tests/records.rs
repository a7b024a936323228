//! Records (sheets) and registries of one's own, end to end: record types
//! imported from and exported to files written and read by pandas
//! (tests/fixtures/records, script beside them), and a lab's own table made a
//! registry, migrated with plain SQL files, used to validate and annotate a
//! dataset, guarded by spaces, audited, dumped and restored.

use lamin_e2e::{fixture, lamin, lamin_with_env, stderr_text, stdout_text, Cluster};

fn python() -> String {
    std::env::var("LAMIN_PYARROW_PYTHON")
        .expect("LAMIN_PYARROW_PYTHON: a Python with pandas and pyarrow (scripts/test installs it)")
}

/// Run Python code with the reference libraries; its stdout, trimmed. (The
/// interpreter leaves with os._exit once done: pyarrow's thread pools have
/// been seen to abort a normal teardown, "terminate called without an
/// active exception", under load.)
fn pandas(code: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(format!(
            "{code}\nimport os, sys; sys.stdout.flush(); os._exit(0)"
        ))
        .args(args)
        .env("ARROW_DEFAULT_MEMORY_POOL", "system")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn file(name: &str) -> String {
    fixture(&format!("records/{name}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// A cluster with the donors' features, labels and the Donor record type.
fn donors_cluster() -> (Cluster, postgres::Client) {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.batch_execute(
        "SELECT lamin.create_feature('donor_age', 'int'), lamin.create_feature('sex', 'cat'),
                lamin.create_feature('sampled_on', 'date'), lamin.create_feature('weight_kg', 'float'),
                lamin.create_feature('notes', 'str');
         INSERT INTO lamin.ulabel (name) VALUES ('female'), ('male');
         SELECT lamin.create_schema(ARRAY['donor_age', 'sex', 'sampled_on', 'weight_kg', 'notes'],
                                    name => 'donor sheet', optionals => ARRAY['notes']);
         INSERT INTO lamin.record (name, is_type, schema_id) VALUES ('Donor', true, lamin.schema_id('donor sheet'));",
    )
    .unwrap();
    (cluster, db)
}

fn donor_values(db: &mut postgres::Client) -> Vec<String> {
    db.query(
        "SELECT record_name || ' ' || feature || '=' || value::text FROM lamin.record_values
         WHERE record_type = 'Donor' ORDER BY record_name, feature",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn a_sheet_round_trips_through_csv_and_parquet_written_by_pandas() {
    let (cluster, mut db) = donors_cluster();

    // Import the CSV pandas wrote: three donors, typed, the empty cell left out.
    let out = lamin(
        &cluster,
        &["records", "import", "Donor", &file("donors.csv")],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uids: Vec<String> = stdout_text(&out).lines().map(String::from).collect();
    assert_eq!(uids.len(), 3, "one uid per row on stdout");
    assert!(
        stderr_text(&out).contains("3 new records, 0 updated"),
        "{}",
        stderr_text(&out)
    );
    let values = donor_values(&mut db);
    assert_eq!(
        values.len(),
        14,
        "5 values per donor, D0002 without notes: {values:?}"
    );
    assert!(
        values.contains(&"D0001 donor_age=54".to_string()),
        "{values:?}"
    );
    assert!(
        values.contains(&"D0002 sampled_on=\"2024-06-02\"".to_string()),
        "{values:?}"
    );
    assert!(
        values.contains(&"D0002 weight_kg=80.25".to_string()),
        "{values:?}"
    );
    assert!(
        !values.iter().any(|v| v.starts_with("D0002 notes")),
        "{values:?}"
    );

    // The same sheet in parquet (pandas' nullable Int64 and categorical) updates the same records.
    let out = lamin(
        &cluster,
        &["records", "import", "Donor", &file("donors.parquet")],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        stdout_text(&out).lines().collect::<Vec<_>>(),
        uids,
        "the same records, by name"
    );
    assert!(
        stderr_text(&out).contains("0 new records, 3 updated"),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(
        donor_values(&mut db),
        values,
        "importing the same sheet again changes nothing"
    );

    // Export to parquet; pandas reads it typed, with the uids.
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("donors.parquet");
    let out = lamin(
        &cluster,
        &["records", "export", "Donor", exported.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(stdout_text(&out), exported.to_str().unwrap());
    let read = pandas(
        "import sys, pandas as pd; df = pd.read_parquet(sys.argv[1]); \
         print(list(df.columns)); print(df.dtypes['donor_age'], df.dtypes['weight_kg'], df.dtypes['sampled_on']); \
         print(df.loc[df.name == 'D0002', 'weight_kg'].item(), df['notes'].isna().sum(), sorted(df['uid']))",
        &[exported.to_str().unwrap()],
    );
    let mut sorted = uids.clone();
    sorted.sort();
    assert_eq!(
        read,
        format!(
            "['name', 'donor_age', 'sex', 'sampled_on', 'weight_kg', 'notes', 'uid']\nint64 float64 object\n80.25 1 [{}]",
            sorted.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(", ")
        )
    );

    // Edited in pandas and written as CSV, it imports back as an update: the
    // uid column says which record a row is, also under a new name.
    let edited = dir.path().join("edited.csv");
    pandas(
        "import sys, pandas as pd; df = pd.read_parquet(sys.argv[1]); \
         df.loc[df.name == 'D0002', 'weight_kg'] = 79.0; df.loc[df.name == 'D0003', 'name'] = 'D0003-b'; \
         df.to_csv(sys.argv[2], index=False)",
        &[exported.to_str().unwrap(), edited.to_str().unwrap()],
    );
    let out = lamin(
        &cluster,
        &["records", "import", "Donor", edited.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("0 new records, 3 updated"),
        "{}",
        stderr_text(&out)
    );
    let after = donor_values(&mut db);
    assert!(
        after.contains(&"D0002 weight_kg=79.0".to_string())
            || after.contains(&"D0002 weight_kg=79".to_string()),
        "{after:?}"
    );
    assert!(
        after.iter().any(|v| v.starts_with("D0003-b ")),
        "renamed through its uid: {after:?}"
    );
    assert_eq!(after.len(), 14);

    // CSV export, read by pandas.
    let csv = dir.path().join("donors.csv");
    let out = lamin(
        &cluster,
        &["records", "export", "Donor", csv.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        pandas(
            "import sys, pandas as pd; df = pd.read_csv(sys.argv[1]); print(len(df), list(df['name']))",
            &[csv.to_str().unwrap()]
        ),
        "3 ['D0001', 'D0002', 'D0003-b']"
    );
}

#[test]
fn a_sheet_that_does_not_fit_is_refused_whole() {
    let (cluster, mut db) = donors_cluster();
    let count = |db: &mut postgres::Client| -> i64 {
        db.query_one("SELECT count(*) FROM lamin.record WHERE NOT is_type", &[])
            .unwrap()
            .get(0)
    };
    let out = lamin(
        &cluster,
        &[
            "records",
            "import",
            "Donor",
            &file("donors_unknown_column.csv"),
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("columns that name no feature: 'height'"),
        "{}",
        stderr_text(&out)
    );
    assert!(
        stdout_text(&out).is_empty(),
        "nothing on stdout when it fails"
    );

    let out = lamin(
        &cluster,
        &["records", "import", "Donor", &file("donors_bad_age.csv")],
    );
    assert!(!out.status.success());
    assert!(
        stderr_text(&out)
            .contains("row 2: feature 'donor_age' (dtype int): \"sixty-one\" is not an integer"),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(count(&mut db), 0, "nothing of a refused file is stored");

    // A required feature missing from the file: refused at commit, nothing stored.
    let dir = tempfile::tempdir().unwrap();
    let partial = dir.path().join("partial.csv");
    pandas(
        "import sys, pandas as pd; df = pd.read_csv(sys.argv[1]).drop(columns=['sex']); df.to_csv(sys.argv[2], index=False)",
        &[&file("donors.csv"), partial.to_str().unwrap()],
    );
    let out = lamin(
        &cluster,
        &["records", "import", "Donor", partial.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("lacks required feature(s) sex"),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(count(&mut db), 0);

    let out = lamin(
        &cluster,
        &["records", "import", "Donor", "/tmp/donors.xlsx"],
    );
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains(".csv, .tsv or .parquet"),
        "{}",
        stderr_text(&out)
    );
}

#[test]
fn a_registry_of_ones_own_end_to_end() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let storage = tempfile::tempdir().unwrap();
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&storage.path().to_str().unwrap()],
    )
    .unwrap();
    db.batch_execute(
        "CREATE ROLE lab_owner LOGIN PASSWORD 'owner' IN ROLE lamin_writer;
         CREATE ROLE lab_member LOGIN PASSWORD 'member' IN ROLE lamin_writer;
         CREATE ROLE lab_guest LOGIN PASSWORD 'guest' IN ROLE lamin_writer;
         CREATE SCHEMA lab AUTHORIZATION lab_owner;
         SELECT lamin.create_space('lab');
         SELECT lamin.grant('lab', 'lab_member', 'write');",
    )
    .unwrap();

    // Migrations as plain SQL files applied in order, by the table's owner.
    let migrations = tempfile::tempdir().unwrap();
    let steps = [
        (
            "V001__sample_registry.sql",
            "SELECT lamin.create_registry('lab.sample');",
        ),
        (
            "V002__sample_tissue.sql",
            "ALTER TABLE lab.sample ADD COLUMN tissue text;",
        ),
        (
            "V003__sample_label.sql",
            "ALTER TABLE lab.sample RENAME COLUMN name TO label;",
        ),
    ];
    let owner_url = cluster.url_as("lab_owner", "owner");
    for (name, sql) in steps {
        let path = migrations.path().join(name);
        std::fs::write(&path, sql).unwrap();
        let out = cluster
            .client_command("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-d",
                &owner_url,
                "-f",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Records: one in space all, two in the lab's space.
    let mut member =
        postgres::Client::connect(&cluster.url_as("lab_member", "member"), postgres::NoTls)
            .unwrap();
    member
        .batch_execute(
            "INSERT INTO lab.sample (label, tissue) VALUES ('S-001 liver', 'liver');
             SELECT lamin.use_space('lab');
             INSERT INTO lab.sample (label, tissue) VALUES ('S-002 lung', 'lung'), ('S-003 kidney', 'kidney');",
        )
        .unwrap();
    let audited: i64 = db
        .query_one("SELECT count(*) FROM lamin.audit WHERE registry = 'lab.sample' AND role_name = 'lab_member'", &[])
        .unwrap()
        .get(0);
    assert_eq!(audited, 3, "every insert is audited with its role");

    // Search from the CLI, as the member and as a guest without the space.
    let member_env = [(
        "DATABASE_URL".to_string(),
        cluster.url_as("lab_member", "member"),
    )];
    let guest_env = [(
        "DATABASE_URL".to_string(),
        cluster.url_as("lab_guest", "guest"),
    )];
    let out = lamin_with_env(
        &cluster,
        &member_env,
        &["search", "lung", "--registry", "lab.sample"],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stdout_text(&out).contains("S-002 lung"),
        "{}",
        stdout_text(&out)
    );
    let out = lamin_with_env(
        &cluster,
        &guest_env,
        &["search", "lung", "--registry", "lab.sample"],
    );
    assert!(
        !stdout_text(&out).contains("S-002"),
        "a guest finds nothing of the lab's space: {}",
        stdout_text(&out)
    );

    // A dataset validated against it: the member saves, the schema's categorical names lab.sample.
    db.batch_execute(
        "SELECT lamin.create_feature('sample', 'cat[lab.sample]'), lamin.create_feature('reads', 'int');
         SELECT lamin.create_schema(ARRAY['sample', 'reads'], name => 'measured');",
    )
    .unwrap();
    let out = lamin_with_env(
        &cluster,
        &member_env,
        &[
            "save",
            &file("samples_measured.parquet"),
            "--key",
            "lab/measured.parquet",
            "--schema",
            "measured",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uid = stdout_text(&out);
    let linked: Vec<String> = member
        .query(
            "SELECT s.label FROM lab.artifact_sample l JOIN lab.sample s ON s.id = l.sample_id
             JOIN lamin.artifact a ON a.id = l.artifact_id WHERE a.uid = $1 ORDER BY 1",
            &[&uid],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        linked,
        ["S-001 liver", "S-002 lung"],
        "a passing dataset is annotated with its samples"
    );
    let out = lamin_with_env(
        &cluster,
        &member_env,
        &[
            "save",
            &file("samples_typo.parquet"),
            "--key",
            "lab/typo.parquet",
            "--schema",
            "measured",
            "--strict",
            "-q",
        ],
    );
    assert!(
        !out.status.success(),
        "--strict refuses a dataset with a sample the registry lacks"
    );
    assert!(
        stdout_text(&out).contains("S-002 lnug") || stderr_text(&out).contains("S-002 lnug"),
        "{}{}",
        stdout_text(&out),
        stderr_text(&out)
    );
    let guest_links: i64 =
        postgres::Client::connect(&cluster.url_as("lab_guest", "guest"), postgres::NoTls)
            .unwrap()
            .query_one("SELECT count(*) FROM lab.artifact_sample", &[])
            .unwrap()
            .get(0);
    assert_eq!(
        guest_links, 1,
        "of the two links, the one to a record of a space the guest cannot read is not seen"
    );

    // What would break it is refused.
    let mut owner = postgres::Client::connect(&owner_url, postgres::NoTls).unwrap();
    let err = owner
        .batch_execute("ALTER TABLE lab.sample DROP COLUMN label")
        .unwrap_err();
    assert!(
        lamin_e2e::db_message(&err).contains("cannot be dropped"),
        "{}",
        lamin_e2e::db_message(&err)
    );
    let seen: i64 = owner
        .query_one("SELECT count(*) FROM lab.sample", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        seen, 1,
        "its owner sees only the records of spaces granted to it"
    );

    // pg_dump / pg_restore: rows, search, annotations and the registry's record come back.
    cluster.dump_and_restore("restored");
    let mut restored = cluster.connect_to("restored");
    let row: (i64, String, i64) = {
        let r = restored
            .query_one(
                "SELECT (SELECT count(*) FROM lab.sample),
                        (SELECT name_field FROM lamin.registry WHERE name = 'lab.sample'),
                        (SELECT count(*) FROM lab.artifact_sample)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(row, (3, "label".to_string(), 2));
    let found: String = restored
        .query_one(
            "SELECT name FROM lamin.search('kidney', 'lab.sample') LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(found, "S-003 kidney", "the restored registry is searchable");
    restored
        .batch_execute("ALTER TABLE lab.sample RENAME COLUMN tissue TO organ; INSERT INTO lab.sample (label) VALUES ('S-004 heart')")
        .unwrap();
    let found: String = restored
        .query_one(
            "SELECT name FROM lamin.search('heart', 'lab.sample') LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(found, "S-004 heart", "and keeps following migrations");
}

#[test]
fn projects_and_references_hold_what_a_run_saves() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let storage = tempfile::tempdir().unwrap();
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&storage.path().to_str().unwrap()],
    )
    .unwrap();
    db.batch_execute(
        "INSERT INTO lamin.project (name, abbr) VALUES ('Cell Atlas', 'ATL');
         INSERT INTO lamin.reference (name, doi) VALUES ('A cell atlas of the lung', 'doi:10.1038/s41586-024-0001-x');
         SELECT lamin.create_space('hidden');
         SELECT lamin.use_space('hidden');
         INSERT INTO lamin.project (name) VALUES ('Hidden project');
         SELECT lamin.use_space('all');
         CREATE ROLE atlas_reader LOGIN PASSWORD 'reader' IN ROLE lamin_reader;",
    )
    .unwrap();

    // A pipeline's run in the project, from the CLI: the run, its transform and its outputs belong to it.
    let out = lamin(
        &cluster,
        &[
            "track",
            "--key",
            "pipelines/atlas.sh",
            "--project",
            "Cell Atlas",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let run = stdout_text(&out);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("counts.csv");
    std::fs::write(&data, "cell,count\na,1\nb,2\n").unwrap();
    let out = lamin(
        &cluster,
        &[
            "save",
            data.to_str().unwrap(),
            "--key",
            "atlas/counts.csv",
            "--run",
            &run,
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let artifact = stdout_text(&out);
    let out = lamin(&cluster, &["finish", &run]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    let members: Vec<String> = db
        .query(
            "SELECT 'artifact ' || a.uid FROM lamin.artifact_project l JOIN lamin.artifact a ON a.id = l.artifact_id
             UNION ALL SELECT 'run ' || r.uid FROM lamin.run_project l JOIN lamin.run r ON r.id = l.run_id
             UNION ALL SELECT 'transform ' || t.key FROM lamin.transform_project l JOIN lamin.transform t ON t.id = l.transform_id
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        members,
        [
            format!("artifact {artifact}"),
            format!("run {run}"),
            "transform pipelines/atlas.sh".to_string()
        ]
    );

    // The project cites a reference; the DOI is kept bare and found by search.
    db.batch_execute(
        "SELECT lamin.link('project', ARRAY[(SELECT uid FROM lamin.project WHERE name = 'Cell Atlas')], 'reference', 'A cell atlas of the lung')",
    )
    .unwrap();
    let doi: String = db
        .query_one("SELECT doi FROM lamin.reference", &[])
        .unwrap()
        .get(0);
    assert_eq!(doi, "10.1038/s41586-024-0001-x");
    let out = lamin(&cluster, &["search", "ATL", "--registry", "lamin.project"]);
    assert!(
        stdout_text(&out).contains("Cell Atlas"),
        "{}",
        stdout_text(&out)
    );

    // A reader of space all sees the project, not the hidden one, nor links to it.
    db.batch_execute(&format!(
        "SELECT lamin.link('artifact', ARRAY['{artifact}'], 'project', 'Hidden project')"
    ))
    .unwrap();
    let mut reader =
        postgres::Client::connect(&cluster.url_as("atlas_reader", "reader"), postgres::NoTls)
            .unwrap();
    let seen: (i64, i64) = {
        let r = reader
            .query_one("SELECT (SELECT count(*) FROM lamin.project), (SELECT count(*) FROM lamin.artifact_project)", &[])
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(
        seen,
        (1, 1),
        "the reader sees Cell Atlas and its link, nothing of the hidden project"
    );

    // A backup brings the links back.
    cluster.dump_and_restore("restored");
    let mut restored = cluster.connect_to("restored");
    let counts: (i64, i64, i64) = {
        let r = restored
            .query_one(
                "SELECT (SELECT count(*) FROM lamin.artifact_project), (SELECT count(*) FROM lamin.project_reference),
                        (SELECT count(*) FROM lamin.search('ATL', 'lamin.project'))",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(counts, (2, 1, 1));
}
