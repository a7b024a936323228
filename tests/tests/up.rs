//! `scripts/up` on an instance that an earlier release made: it upgrades the
//! extension in place, says so, keeps every row, and starts a sidecar that
//! speaks the upgraded schema. (Its own test binary: scripts/up reinstalls
//! the extension, which no other test may be using at that moment.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lamin_e2e::fingerprint::{changed, columns, rows_over, rows_where};
use lamin_e2e::releases::{Releases, CURRENT};
use lamin_e2e::{await_job, check, fixture, free_port, stderr_text, stdout_text};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A local instance in a temporary LAMIN_HOME, stopped (scripts/down) when dropped.
struct Instance {
    home: tempfile::TempDir,
    port: u16,
}

impl Instance {
    fn new() -> Instance {
        Instance {
            home: tempfile::Builder::new()
                .prefix("lamin-up-")
                .tempdir()
                .unwrap(),
            port: free_port(),
        }
    }

    fn script(&self, name: &str, args: &[&str]) -> Output {
        self.command(name)
            .args(args)
            .env("LAMIN_SKIP_DEFAULT_SOURCES", "1")
            .output()
            .unwrap_or_else(|e| panic!("run scripts/{name}: {e}"))
    }

    /// scripts/NAME in this instance's LAMIN_HOME, on its port, debug builds.
    fn command(&self, name: &str) -> Command {
        let mut command = Command::new(repo().join("scripts").join(name));
        command
            .env("LAMIN_HOME", self.home.path())
            .env("LAMIN_PORT", self.port.to_string())
            .env("LAMIN_BUILD", "debug");
        command
    }

    /// scripts/up; returns what it said (stderr).
    fn up(&self) -> String {
        let out = self.script("up", &[]);
        check("scripts/up", &out);
        stderr_text(&out)
    }

    fn database_url(&self) -> String {
        let env = std::fs::read_to_string(self.home.path().join("env")).unwrap();
        env.lines()
            .find_map(|l| l.strip_prefix("export DATABASE_URL="))
            .expect("DATABASE_URL in .lamin/env")
            .to_string()
    }

    /// The URL of another database on this instance's server.
    fn database_url_of(&self, database: &str) -> String {
        let url = self.database_url();
        let (server, _) = url.rsplit_once('/').expect("a database in the URL");
        format!("{server}/{database}")
    }

    fn connect(&self) -> postgres::Client {
        postgres::Client::connect(&self.database_url(), postgres::NoTls).unwrap()
    }

    fn psql_file(&self, file: &Path) {
        let out = Command::new(lamin_e2e::pg_bindir().join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.database_url(),
                "-f",
            ])
            .arg(file)
            .output()
            .unwrap();
        check("psql -f", &out);
    }

    fn sidecar_log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("sidecar.log")).unwrap_or_default()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.script("down", &[]);
    }
}

#[test]
fn scripts_up_upgrades_an_instance_made_by_an_earlier_release() {
    let oldest = Releases::load().oldest().to_string();
    assert_ne!(
        oldest, CURRENT,
        "there is an earlier release to upgrade from"
    );
    let instance = Instance::new();
    let said = instance.up();
    assert!(
        said.contains(&format!(
            "creating the lamin extension {CURRENT} in database lamin_template"
        )),
        "{said}"
    );
    assert!(
        said.contains("creating the instance lamin from lamin_template"),
        "{said}"
    );

    // Turn it into an instance as the oldest release left it: its extension,
    // its default storage, a lab's data and a job still queued.
    let out = instance.script("down", &["--sidecar-only"]);
    check("scripts/down --sidecar-only", &out);
    let mut db = instance.connect();
    db.batch_execute(&format!(
        "SET client_min_messages = warning;
         DROP EXTENSION lamin CASCADE;
         CREATE EXTENSION lamin VERSION '{oldest}' CASCADE;
         SELECT lamin.add_storage('{}', 'default local storage of this instance');",
        instance.home.path().join("storage").display()
    ))
    .unwrap();
    instance.psql_file(&fixture(&format!("upgrade/fill-{oldest}.sql")));
    // Jobs that would reach out (an S3 bucket that is not there) fail at their
    // own pace once the new sidecar runs, and failing a register job changes
    // its artifact: out of the way before the rows are counted.
    db.batch_execute(
        "SELECT lamin.cancel_job(id) FROM lamin.job WHERE status = 'queued' AND kind <> 'noop'",
    )
    .unwrap();
    let mut tables = columns(&mut db, &["lamin", "bionty", "public"]);
    // The new sidecar starts working on the queue at once: jobs are compared
    // by id and kind only.
    tables.insert(
        "lamin.job".into(),
        vec!["id".into(), "kind".into(), "args".into()],
    );
    // A release may add job kinds (0.6.0: validate, standardize): the kinds
    // there were stay as they were.
    let kind_columns = tables
        .remove("lamin.job_kind")
        .expect("lamin.job_kind is a table");
    let old_kinds: String = db
        .query_one(
            "SELECT 'WHERE kind IN (' || string_agg(quote_literal(kind), ', ') || ')' FROM lamin.job_kind",
            &[],
        )
        .unwrap()
        .get(0);
    // A release may make new registries searchable (0.7.0: projects,
    // references, records): the registries there were stay as they were.
    let registry_columns = tables
        .remove("lamin.registry")
        .expect("lamin.registry is a table");
    let old_registries: String = db
        .query_one(
            "SELECT 'WHERE name IN (' || string_agg(quote_literal(name), ', ') || ')' FROM lamin.registry",
            &[],
        )
        .unwrap()
        .get(0);
    let mut before = rows_over(&mut db, &tables);
    before.insert(
        "lamin.job_kind".into(),
        rows_where(&mut db, "lamin.job_kind", &kind_columns, &old_kinds),
    );
    before.insert(
        "lamin.registry".into(),
        rows_where(
            &mut db,
            "lamin.registry",
            &registry_columns,
            &old_registries,
        ),
    );
    let queued: i64 = db
        .query_one(
            "SELECT id FROM lamin.job WHERE args ? 'queued_before_the_upgrade'",
            &[],
        )
        .unwrap()
        .get(0);
    drop(db);

    let said = instance.up();
    assert!(
        said.contains(&format!(
            "upgrading the lamin extension in database lamin from {oldest} to {CURRENT}"
        )),
        "scripts/up says it upgrades:\n{said}"
    );
    assert!(
        said.contains(&format!("upgraded: database lamin is at {CURRENT}")),
        "{said}"
    );
    let mut db = instance.connect();
    let mut after = rows_over(&mut db, &tables);
    after.insert(
        "lamin.job_kind".into(),
        rows_where(&mut db, "lamin.job_kind", &kind_columns, &old_kinds),
    );
    after.insert(
        "lamin.registry".into(),
        rows_where(
            &mut db,
            "lamin.registry",
            &registry_columns,
            &old_registries,
        ),
    );
    assert!(
        before == after,
        "rows changed: {:?}",
        changed(&before, &after)
    );
    let row = db
        .query_one("SELECT lamin.version(), lamin.library_version()", &[])
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        (CURRENT.to_string(), CURRENT.to_string())
    );

    // The new sidecar accepted the upgraded schema and runs the old queue.
    let (status, _, error) = await_job(&mut db, queued);
    assert_eq!(status, "done", "{error:?}\n{}", instance.sidecar_log());
    assert!(
        instance
            .sidecar_log()
            .contains(&format!("extension_version={CURRENT}")),
        "{}",
        instance.sidecar_log()
    );
    let status = Command::new(lamin_e2e::lamin_bin())
        .arg("status")
        .env("DATABASE_URL", instance.database_url())
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", stderr_text(&status));
    let shown = stdout_text(&status);
    assert!(shown.contains("upgrade          none pending"), "{shown}");
    assert!(
        shown.contains(&format!("sidecar          {CURRENT} ")),
        "{shown}"
    );

    // Once current, scripts/up says so and changes nothing.
    let said = instance.up();
    assert!(
        said.contains(&format!(
            "database lamin: the lamin extension is at {CURRENT} (current)"
        )),
        "{said}"
    );

    // A second instance on this cluster is a copy of the template scripts/up
    // keeps: made by `lamin init`, listed by `lamin instances`.
    let init = Command::new(lamin_e2e::lamin_bin())
        .args(["init", "lab_two", "--storage"])
        .arg(instance.home.path().join("storage-two"))
        .env("DATABASE_URL", instance.database_url())
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr_text(&init));
    assert!(
        stderr_text(&init).contains("from the template"),
        "{}",
        stderr_text(&init)
    );
    let listed = Command::new(lamin_e2e::lamin_bin())
        .arg("instances")
        .env("DATABASE_URL", instance.database_url())
        .output()
        .unwrap();
    let listed = stdout_text(&listed);
    let names: Vec<&str> = listed
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["lab_two", "lamin", "lamin_template (template)"],
        "{listed}"
    );
}

/// A first start: the instance answers as soon as scripts/up returns, while
/// the default sources are imported in the background, first into `lamin`
/// as sidecar jobs (with the source's attribution), then into the template,
/// which refuses to be copied half-filled.
#[test]
fn a_first_start_is_usable_at_once_and_imports_the_default_sources_in_the_background() {
    let instance = Instance::new();
    // One small ontology, from the wheels scripts/test fetched (the
    // sidecar's import folder is that cache's sources/).
    let cache = repo().join(".lamin").join("cache");
    let out = instance
        .command("up")
        .env("LAMIN_DEFAULT_SOURCES", "cell_type")
        .env("LAMIN_CACHE", &cache)
        .output()
        .unwrap();
    check("scripts/up", &out);
    let said = stderr_text(&out);
    assert!(
        said.contains("importing the default ontologies and genes in the background"),
        "{said}"
    );
    assert!(
        stdout_text(&out).contains("ontologies importing in the background"),
        "{}",
        stdout_text(&out)
    );
    // Usable at once: it saves a file while the import may still run.
    let mut db = instance.connect();
    let uid: String = db
        .query_one(
            "SELECT lamin.save_artifact(encode(sha256('first start'), 'hex'), 11, key => 'first/start.txt')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(uid.len(), 20, "{uid}");

    // Until the template holds them too, lamin init refuses to copy it:
    // while they are imported, and after the import stopped half-way
    // (scripts/down stops it), which the template's comment still says.
    let init_lab = |name: &str| {
        Command::new(lamin_e2e::lamin_bin())
            .args(["init", name, "--storage"])
            .arg(instance.home.path().join(format!("storage-{name}")))
            .env("DATABASE_URL", instance.database_url())
            .output()
            .unwrap()
    };
    let init = init_lab("lab_early");
    assert!(!init.status.success());
    assert!(
        stderr_text(&init).contains("a copy now would hold only some of them"),
        "{}",
        stderr_text(&init)
    );
    let down = instance
        .command("down")
        .arg("--sidecar-only")
        .output()
        .unwrap();
    check("scripts/down --sidecar-only", &down);
    let init = init_lab("lab_stopped");
    assert!(!init.status.success());
    assert!(
        stderr_text(&init).contains("does not hold all the default ontologies yet"),
        "{}",
        stderr_text(&init)
    );
    // The next start resumes the imports.
    let out = instance
        .command("up")
        .env("LAMIN_DEFAULT_SOURCES", "cell_type")
        .env("LAMIN_CACHE", &cache)
        .output()
        .unwrap();
    check("scripts/up", &out);
    assert!(
        stderr_text(&out).contains("in the background"),
        "{}",
        stderr_text(&out)
    );
    let mut db = instance.connect();

    // The background imports end with a marker file.
    let marker = instance.home.path().join("defaults-imported");
    let log =
        || std::fs::read_to_string(instance.home.path().join("imports.log")).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no marker after 300 s:\n{}",
            log()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // Into lamin as a job of the caller, with the source's attribution.
    let job = db
        .query_one(
            "SELECT status, args->>'description' FROM lamin.jobs WHERE kind = 'import_ontology' AND args->>'entity' = 'cell_type'",
            &[],
        )
        .unwrap();
    assert_eq!(job.get::<_, String>(0), "done", "{}", log());
    let attribution: Option<String> = job.get(1);
    let described: Option<String> = db
        .query_one(
            "SELECT description FROM bionty.source WHERE entity = 'bionty.cell_type' AND currently_used",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        attribution.is_some() && attribution == described,
        "{attribution:?} / {described:?}"
    );
    let terms: i64 = db
        .query_one("SELECT count(*) FROM bionty.cell_type", &[])
        .unwrap()
        .get(0);
    assert!(terms > 1000, "{terms} cell types in lamin");
    let status = Command::new(lamin_e2e::lamin_bin())
        .arg("status")
        .env("DATABASE_URL", instance.database_url())
        .output()
        .unwrap();
    let shown = stdout_text(&status);
    assert!(
        shown.contains("jobs             none queued or running (yours)"),
        "{shown}"
    );

    // The template was filled too, and closed again: a new instance copies it.
    let server = instance.database_url_of("postgres");
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    let row = admin
        .query_one(
            "SELECT datistemplate, datallowconn FROM pg_database WHERE datname = 'lamin_template'",
            &[],
        )
        .unwrap();
    assert_eq!(
        (row.get::<_, bool>(0), row.get::<_, bool>(1)),
        (true, false)
    );
    let init = init_lab("lab_first");
    assert!(init.status.success(), "{}", stderr_text(&init));
    let copy_url = instance.database_url_of("lab_first");
    let mut copy = postgres::Client::connect(&copy_url, postgres::NoTls).unwrap();
    let copied: i64 = copy
        .query_one("SELECT count(*) FROM bionty.cell_type", &[])
        .unwrap()
        .get(0);
    assert_eq!(copied, terms, "the template holds what lamin imported");
    drop(copy);

    // While the template is being filled, lamin init says so instead of
    // copying half of it.
    admin
        .batch_execute("ALTER DATABASE lamin_template WITH ALLOW_CONNECTIONS true")
        .unwrap();
    let filling_url = format!(
        "{}?application_name=lamin-template-fill",
        instance.database_url_of("lamin_template")
    );
    let filling = postgres::Client::connect(&filling_url, postgres::NoTls).unwrap();
    let init = init_lab("lab_half");
    assert!(!init.status.success());
    assert!(
        stderr_text(&init).contains("is being filled with the default ontologies"),
        "{}",
        stderr_text(&init)
    );
    drop(filling);
    admin
        .batch_execute(
            "ALTER DATABASE lamin_template WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
        )
        .unwrap();

    // A second start has nothing left to import.
    let out = instance
        .command("up")
        .env("LAMIN_DEFAULT_SOURCES", "cell_type")
        .env("LAMIN_CACHE", &cache)
        .output()
        .unwrap();
    check("scripts/up", &out);
    assert!(
        !stderr_text(&out).contains("in the background"),
        "{}",
        stderr_text(&out)
    );
}
