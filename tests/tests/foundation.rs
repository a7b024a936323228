//! The walking skeleton: extension, authentication and sidecar life cycle.

use std::time::Duration;

use lamin_e2e::{Cluster, Sidecar};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn extension_reports_its_version() {
    let cluster = Cluster::start();
    let row = cluster
        .connect()
        .query_one("SELECT lamin.version()", &[])
        .unwrap();
    assert_eq!(row.get::<_, String>(0), env!("CARGO_PKG_VERSION"));
}

#[test]
fn wrong_password_is_refused() {
    let cluster = Cluster::start();
    let url = format!(
        "postgresql://{}:wrong@127.0.0.1:{}/{}",
        cluster.user, cluster.port, cluster.dbname
    );
    let err = postgres::Client::connect(&url, postgres::NoTls)
        .err()
        .expect("login with a wrong password must fail");
    let db_error = err
        .as_db_error()
        .unwrap_or_else(|| panic!("expected a server error, got {err:?}"));
    assert_eq!(
        db_error.code(),
        &postgres::error::SqlState::INVALID_PASSWORD,
        "{db_error:?}"
    );
    assert!(
        db_error
            .message()
            .contains("password authentication failed"),
        "{db_error:?}"
    );
}

#[test]
fn sidecar_listens_receives_notifications_and_stops_on_sigterm() {
    let cluster = Cluster::start();
    let mut sidecar = Sidecar::start(&cluster, "main");
    sidecar.wait_for_log("listening for jobs", 1, WAIT);

    // A NOTIFY reaches the sidecar, and a committed job is run.
    let mut db = cluster.connect();
    db.batch_execute("NOTIFY lamin_job, 'job-4711'").unwrap();
    sidecar.wait_for_log("job-4711", 1, WAIT);
    let id: i64 = db
        .query_one("SELECT lamin.enqueue('noop')", &[])
        .unwrap()
        .get(0);
    let status: String = db
        .query_one("SELECT lamin.await_job($1, 30)", &[&id])
        .unwrap()
        .get(0);
    assert_eq!(status, "done", "{}", sidecar.log());

    let status = sidecar.terminate(WAIT);
    assert!(
        status.success(),
        "sidecar exit status after SIGTERM: {status}\n{}",
        sidecar.log()
    );
    assert!(
        sidecar.log().contains("sidecar stopped"),
        "{}",
        sidecar.log()
    );
}

#[test]
fn sidecar_reconnects_after_postgres_restart() {
    let cluster = Cluster::start();
    let mut sidecar = Sidecar::start(&cluster, "restart");
    sidecar.wait_for_log("listening for jobs", 1, WAIT);
    cluster.restart();
    // The loss shows as a closed connection or as a failed query (a claim
    // in flight), depending on timing; either way the sidecar reconnects.
    sidecar.wait_for_log("reconnecting", 1, WAIT);
    sidecar.wait_for_log("listening for jobs", 2, WAIT);
    // Listening again for real: a notification after the restart arrives.
    cluster
        .connect()
        .batch_execute("NOTIFY lamin_job, 'after-restart'")
        .unwrap();
    sidecar.wait_for_log("after-restart", 1, WAIT);
    assert!(sidecar.terminate(WAIT).success());
}

#[test]
fn cli_status_reports_versions_and_stub_verbs_fail_clearly() {
    let cluster = Cluster::start();
    let bin = lamin_e2e::lamin_bin();
    let out = std::process::Command::new(&bin)
        .arg("status")
        .env("DATABASE_URL", cluster.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("lamin extension  {}", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&cluster.password),
        "status must not print the password"
    );
    assert!(
        stdout.contains("jobs             none queued or running (yours)"),
        "{stdout}"
    );

    // Unfinished jobs are listed with what they work on (no sidecar runs
    // here, so they stay queued).
    let mut db = cluster.connect();
    let id: i64 = db
        .query_one(
            "SELECT lamin.enqueue('sleep', '{\"seconds\": 1, \"entity\": \"cell_type\"}')",
            &[],
        )
        .unwrap()
        .get(0);
    let out = std::process::Command::new(&bin)
        .arg("status")
        .env("DATABASE_URL", cluster.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("jobs             1 not finished (yours; 0 running)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("  job {id:<10}   sleep cell_type: queued")),
        "{stdout}"
    );
    db.execute("SELECT lamin.cancel_job($1)", &[&id]).unwrap();

    let out = std::process::Command::new(&bin)
        .args(["cat", "x"])
        .env("DATABASE_URL", cluster.url())
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Not a uid: a key (0.5.0), which no artifact has.
    assert!(String::from_utf8_lossy(&out.stderr).contains("no artifact with key \"x\""));
}

/// lamin.current_user_id() remembers each role's user id for the session
/// (extension/src/users.rs); a lamin.user table made anew in that session
/// (the extension dropped and created again) must not get the old ids.
#[test]
fn a_remembered_user_id_is_forgotten_with_its_table() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.batch_execute("CREATE ROLE t_first IN ROLE lamin_writer")
        .unwrap();
    let me = |db: &mut postgres::Client| -> i64 {
        db.query_one("SELECT lamin.current_user_id()", &[])
            .unwrap()
            .get(0)
    };
    let before = me(&mut db);
    assert_eq!(me(&mut db), before, "the same id again (now remembered)");
    db.batch_execute(
        "SET client_min_messages = warning;
         DROP EXTENSION lamin CASCADE;
         CREATE EXTENSION lamin CASCADE;
         SET ROLE t_first",
    )
    .unwrap();
    // Another role takes the first id of the new table.
    let first = me(&mut db);
    db.batch_execute("RESET ROLE").unwrap();
    let after = me(&mut db);
    assert_ne!(after, first, "an id of the old table was given out again");
    let handle: String = db
        .query_one("SELECT handle FROM lamin.\"user\" WHERE id = $1", &[&after])
        .unwrap()
        .get(0);
    let current: String = db
        .query_one("SELECT current_user::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(handle, current);
}
