//! The daily loop's seams, end to end through the CLI and a sidecar: known
//! content and spaces, runs across sessions, a failed job's error in one
//! step, AnnData columns against existing features.

use lamin_e2e::{db_message, fixture, lamin_with_env, stderr_text, stdout_text, Cluster, Sidecar};

fn as_role(cluster: &Cluster, user: &str, args: &[&str]) -> std::process::Output {
    lamin_with_env(
        cluster,
        &[("DATABASE_URL".to_string(), cluster.url_as(user, "pw"))],
        args,
    )
}

fn setup() -> (Cluster, tempfile::TempDir) {
    let cluster = Cluster::start();
    let storage = tempfile::tempdir().unwrap();
    let mut db = cluster.connect();
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&storage.path().to_str().unwrap()],
    )
    .unwrap();
    db.batch_execute(
        "CREATE ROLE lab_member LOGIN PASSWORD 'pw' IN ROLE lamin_writer;
         CREATE ROLE outsider LOGIN PASSWORD 'pw' IN ROLE lamin_writer;
         SELECT lamin.create_space('lab');
         SELECT lamin.grant('lab', 'lab_member', 'write');",
    )
    .unwrap();
    (cluster, storage)
}

#[test]
fn known_content_is_found_only_where_the_caller_can_read_and_the_run_is_recorded() {
    let (cluster, _storage) = setup();
    let file = fixture("tabular/cells.csv");
    let file = file.to_str().unwrap();

    // Saved in the lab space by a member.
    let out = as_role(
        &cluster,
        "lab_member",
        &["save", file, "--key", "lab/cells.csv", "--space", "lab"],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let lab_uid = stdout_text(&out);

    // Someone who cannot read the lab saves the same bytes: a record of
    // their own, and not a word about the lab's.
    let out = as_role(
        &cluster,
        "outsider",
        &["save", file, "--key", "mine/cells.csv"],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let own_uid = stdout_text(&out);
    assert_ne!(own_uid, lab_uid);
    let said = stderr_text(&out);
    assert!(
        !said.contains(&lab_uid) && !said.contains("lab/") && !said.contains("same content"),
        "{said}"
    );

    // A run started in another session (committed), then known content
    // saved under a new key with --run: the existing artifact comes back
    // (uid alone on stdout), stderr names its key and space, and the run is
    // recorded as re-creating it.
    let mut member =
        postgres::Client::connect(&cluster.url_as("lab_member", "pw"), postgres::NoTls).unwrap();
    let run: String = member
        .query_one("SELECT lamin.track('pipelines/again.py')", &[])
        .unwrap()
        .get(0);
    let out = as_role(
        &cluster,
        "lab_member",
        &[
            "save",
            file,
            "--key",
            "lab/other.csv",
            "--run",
            &run,
            "--space",
            "lab",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(stdout_text(&out), lab_uid, "stdout holds the uid alone");
    let said = stderr_text(&out);
    assert!(
        said.contains(&format!("same content already saved as artifact {lab_uid} (key \"lab/cells.csv\", space \"lab\")"))
            && said.contains("\"lab/other.csv\" is not recorded"),
        "{said}"
    );
    let recreating: i64 = member
        .query_one(
            "SELECT count(*) FROM lamin.run_artifacts WHERE run_uid = $1 AND artifact_uid = $2 AND direction = 'recreated'",
            &[&run, &lab_uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        recreating, 1,
        "the run is recorded as re-creating the artifact"
    );
}

#[test]
fn a_run_not_yet_committed_is_explained_and_a_reader_is_told_which_grant_is_missing() {
    let (cluster, _storage) = setup();
    let file = fixture("tabular/cells.tsv");
    let file = file.to_str().unwrap();
    let mut db =
        postgres::Client::connect(&cluster.url_as("lab_member", "pw"), postgres::NoTls).unwrap();
    let mut tx = db.transaction().unwrap();
    let run: String = tx
        .query_one("SELECT lamin.track('pipelines/open.py')", &[])
        .unwrap()
        .get(0);
    let out = as_role(&cluster, "lab_member", &["save", file, "--run", &run]);
    assert!(!out.status.success());
    let said = stderr_text(&out);
    assert!(said.contains(&format!("no run with uid '{run}'")), "{said}");
    assert!(
        said.contains("commit") && said.contains("lamin track"),
        "says why and what to do: {said}"
    );
    tx.rollback().unwrap();

    // A reader of "all" saving new content there.
    cluster
        .connect()
        .batch_execute("CREATE ROLE viewer LOGIN PASSWORD 'pw' IN ROLE lamin_reader")
        .unwrap();
    let out = as_role(&cluster, "viewer", &["save", file]);
    assert!(!out.status.success());
    let said = stderr_text(&out);
    assert!(
        said.contains(
            "saving an artifact needs write in space 'all', and role viewer can only read there"
        ) && said.contains("lamin.grant('all', 'viewer', 'write')"),
        "{said}"
    );
    assert!(!said.contains("row-level security"), "{said}");
}

#[test]
fn await_job_gives_a_failed_jobs_error_in_one_step() {
    let (cluster, _storage) = setup();
    let _sidecar = Sidecar::start(&cluster, "daily");
    let out = lamin_with_env(
        &cluster,
        &[],
        &["save", fixture("tabular/cells.parquet").to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let uid = stdout_text(&out);
    let mut db = cluster.connect();
    let job: i64 = db
        .query_one(
            "SELECT lamin.curate($1, 'no_such_column', 'lamin.ulabel')",
            &[&uid],
        )
        .unwrap()
        .get(0);
    let err = db
        .query_one("SELECT lamin.await_job($1, 60)", &[&job])
        .expect_err("a failed job raises");
    let message = db_message(&err);
    assert!(
        message.starts_with(&format!("job {job} (curate) failed: "))
            && message.contains("no_such_column"),
        "{message}"
    );
    let row = db
        .query_one(
            "SELECT status, error FROM lamin.await_job_outcome($1, 0)",
            &[&job],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "failed");
    assert!(row.get::<_, String>(1).contains("no_such_column"));
}

#[test]
fn anndata_categoricals_fit_existing_text_features() {
    let (cluster, _storage) = setup();
    let mut db = cluster.connect();
    db.batch_execute("SELECT lamin.create_feature('cell_type', 'str'); SELECT lamin.create_feature('pct_mito', 'str')")
        .unwrap();
    let out = lamin_with_env(
        &cluster,
        &[],
        &["save", fixture("anndata/pbmc.h5ad").to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    let said = stderr_text(&out);
    // cell_type (categorical) fits str; pct_mito (float) does not, and is
    // said in a sentence naming both dtypes, not as JSON.
    assert!(!said.contains("cell_type"), "{said}");
    assert!(
        said.contains("pct_mito") && said.contains("float") && said.contains("str"),
        "{said}"
    );
    assert!(!said.contains("{\""), "no JSON in the warning: {said}");
}
