//! Releases and in-place upgrades. Released scripts stay as released; every
//! release upgrades, step by step through `ALTER EXTENSION lamin UPDATE`, to
//! exactly the objects a fresh install of the current release has; a database
//! filled at the oldest release keeps every row, keeps working, and backs up
//! and restores after the upgrade; the CLI and the sidecar refuse a schema
//! they do not speak.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use lamin_e2e::fingerprint::{backup_rows, changed, columns, rows_over, rows_where};
use lamin_e2e::releases::{version_order, Releases, CURRENT};
use lamin_e2e::schema_dump::{differences, dumped_tables, lamin_roles, schema_objects};
use lamin_e2e::{
    await_job, check, db_message, fixture, job_status, lamin, stderr_text, stdout_text, wait_until,
    Cluster, Sidecar,
};
use sha2::{Digest, Sha256};

fn pg_config(arg: &str) -> PathBuf {
    let bindir = std::env::var_os("PG_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    let out = Command::new(bindir.join("pg_config"))
        .arg(arg)
        .output()
        .expect("run pg_config");
    check("pg_config", &out);
    PathBuf::from(stdout_text(&out))
}

/// The script pgrx generated for the current release, as installed.
fn installed_script(name: &str) -> PathBuf {
    pg_config("--sharedir").join("extension").join(name)
}

/// A script without pgrx's source-location comments (`-- extension/src/x.rs:12`),
/// which move whenever Rust code moves, SQL or not.
fn without_source_lines(script: &str) -> String {
    script
        .lines()
        .filter(|l| !l.starts_with("-- extension/src/"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn released_scripts_are_never_edited() {
    let releases = Releases::load();
    assert!(
        releases
            .released
            .contains_key(&format!("lamin--{}.sql", releases.oldest())),
        "released.sha256 lists the oldest release's install script"
    );
    for (file, hash) in &releases.released {
        let bytes = std::fs::read(releases.dir.join(file))
            .unwrap_or_else(|e| panic!("released script extension/sql/{file} is gone: {e}"));
        let actual = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(
            &actual, hash,
            "extension/sql/{file} was edited after its release. Released scripts are never edited: \
             put the change into the next release's upgrade script (lamin--{CURRENT}--NEXT.sql, after a version bump)"
        );
    }
    for version in &releases.frozen {
        let file = format!("lamin--{version}.sql");
        assert!(
            releases.released.contains_key(&file),
            "extension/sql/{file} is not in released.sha256: install scripts are frozen when their release is made"
        );
    }
    for (from, to) in &releases.steps {
        let file = format!("lamin--{from}--{to}.sql");
        if to != CURRENT {
            assert!(
                releases.released.contains_key(&file),
                "extension/sql/{file} leads to release {to}, which is out, but is not in released.sha256: add its sha256"
            );
        }
        let text = std::fs::read_to_string(releases.dir.join(&file)).unwrap();
        assert!(
            text.lines().any(|l| l.starts_with("\\echo Use \"ALTER EXTENSION lamin UPDATE")),
            "{file} lacks the guard line `\\echo Use \"ALTER EXTENSION lamin UPDATE TO '{to}'\" to load this file. \\quit`"
        );
    }
    // SQL changed after a release without a version bump: the release's frozen
    // script no longer matches what the code generates.
    if releases.frozen.iter().any(|v| v == CURRENT) {
        let frozen =
            std::fs::read_to_string(releases.dir.join(format!("lamin--{CURRENT}.sql"))).unwrap();
        let generated = std::fs::read_to_string(installed_script(&format!("lamin--{CURRENT}.sql")))
            .expect(
                "the extension is installed (scripts/test installs it before the end-to-end tests)",
            );
        assert!(
            without_source_lines(&frozen) == without_source_lines(&generated),
            "the SQL objects changed after release {CURRENT} was made: bump the workspace version and \
             put the change into extension/sql/lamin--{CURRENT}--NEXT.sql (README \"Releases\")"
        );
    }
}

#[test]
fn the_library_keeps_every_function_an_installable_script_names() {
    let releases = Releases::load();
    let lib = pg_config("--pkglibdir").join("lamin.so");
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("run nm");
    check("nm", &out);
    let exported: BTreeSet<String> = stdout_text(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(String::from))
        .collect();
    let mut scripts: Vec<PathBuf> = releases
        .frozen
        .iter()
        .map(|v| releases.dir.join(format!("lamin--{v}.sql")))
        .collect();
    scripts.extend(
        releases
            .steps
            .iter()
            .map(|(a, b)| releases.dir.join(format!("lamin--{a}--{b}.sql"))),
    );
    scripts.push(installed_script(&format!("lamin--{CURRENT}.sql")));
    let mut checked = 0;
    for script in scripts {
        let text = std::fs::read_to_string(&script).unwrap();
        for (at, _) in text.match_indices("'MODULE_PATHNAME', '") {
            let rest = &text[at + "'MODULE_PATHNAME', '".len()..];
            let symbol = &rest[..rest.find('\'').unwrap()];
            assert!(
                exported.contains(symbol),
                "{} names {symbol}, which {} no longer exports: keep the Rust function (or a #[pg_extern] \
                 under that name) until no supported script names it",
                script.display(),
                lib.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked > 30,
        "found the C functions of the scripts ({checked})"
    );
}

/// Walk `cluster`'s database from its release to the current one, one
/// `ALTER EXTENSION lamin UPDATE TO` per release, checking each step lands.
fn walk_upgrades(cluster: &Cluster, from: &str) {
    let mut db = cluster.connect();
    for version in Releases::load().walk_from(from) {
        db.batch_execute(&format!("ALTER EXTENSION lamin UPDATE TO '{version}'"))
            .unwrap_or_else(|e| {
                panic!(
                    "ALTER EXTENSION lamin UPDATE TO '{version}': {}",
                    db_message(&e)
                )
            });
        let now: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
        assert_eq!(now, version, "lamin.version() after the step to {version}");
    }
}

/// pg_prove over pg_test/ against a database of the cluster.
fn run_pgtap(cluster: &Cluster, dbname: &str) {
    let mut db = cluster.connect_to(dbname);
    db.batch_execute(&format!(
        "CREATE EXTENSION IF NOT EXISTS pgtap SCHEMA public; ALTER DATABASE \"{dbname}\" SET search_path = public"
    ))
    .unwrap();
    let pg_test = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pg_test");
    let out = cluster
        .command("pg_prove")
        .env("PGDATABASE", dbname)
        .args(["--ext", ".sql", "-r"])
        .arg(&pg_test)
        .output()
        .expect("run pg_prove");
    check("pg_prove on the upgraded database", &out);
}

#[test]
fn every_release_upgrades_to_the_objects_of_a_fresh_install() {
    let releases = Releases::load();
    let fresh = Cluster::start();
    let fresh_objects = schema_objects(&fresh, &fresh.dbname);
    let fresh_dumped = dumped_tables(&mut fresh.connect());
    let fresh_roles = lamin_roles(&fresh);
    assert!(
        fresh_objects.len() > 1000,
        "the dump lists the extension's objects ({})",
        fresh_objects.len()
    );
    let mut walked = 0;
    for base in releases.frozen.iter().filter(|v| *v != CURRENT) {
        let old = Cluster::start_at(base);
        walk_upgrades(&old, base);
        if let Some(report) = differences(&fresh_objects, &schema_objects(&old, &old.dbname)) {
            panic!(
                "after upgrading from {base}, the database differs from a fresh {CURRENT} install \
                 (pg_dump --schema-only --binary-upgrade, normalised). An SQL change lacks its step \
                 in an upgrade script:\n{report}"
            );
        }
        assert_eq!(
            dumped_tables(&mut old.connect()),
            fresh_dumped,
            "the tables marked for pg_dump (pg_extension_config_dump) after upgrading from {base}"
        );
        assert_eq!(
            lamin_roles(&old),
            fresh_roles,
            "the lamin roles after upgrading from {base}"
        );
        run_pgtap(&old, &old.dbname);
        walked += 1;
    }
    assert!(
        walked >= 1 || releases.frozen == [CURRENT],
        "at least one earlier release was upgraded"
    );
}

/// Run SQL as a role (SET ROLE in a transaction that is rolled back).
fn as_role<T>(
    db: &mut postgres::Client,
    role: &str,
    f: impl FnOnce(&mut postgres::Transaction) -> T,
) -> T {
    let mut tx = db.transaction().unwrap();
    tx.batch_execute(&format!("SET LOCAL ROLE {role}")).unwrap();
    let out = f(&mut tx);
    tx.rollback().unwrap();
    out
}

fn one<T: for<'a> postgres::types::FromSql<'a>>(
    db: &mut impl postgres::GenericClient,
    sql: &str,
) -> T {
    db.query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", db_message(&e)))
        .get(0)
}

/// The fill's data works after the upgrade: search (built-in, ontology and a
/// user's own table), curation, lineage, versions, annotations, access.
fn check_the_fill_works(db: &mut postgres::Client) {
    let first = |db: &mut postgres::Client, q: &str, reg: &str| -> String {
        one(
            db,
            &format!("SELECT name FROM lamin.search('{q}', '{reg}') LIMIT 1"),
        )
    };
    assert_eq!(first(db, "T lymphocyte", "lamin.ulabel"), "T cell");
    assert_eq!(
        first(db, "CD8", "bionty.cell_type"),
        "CD8-positive, alpha-beta T cell"
    );
    assert_eq!(
        first(db, "PBMC-1", "public.sample"),
        "blood draw 1",
        "the user's table made searchable at 0.1.0"
    );
    assert_eq!(
        first(db, "raw/cells", "lamin.artifact"),
        "raw/cells.parquet",
        "artifacts made searchable at 0.1.0"
    );
    let standardized: Vec<String> = one(
        db,
        "SELECT lamin.standardize('bionty.cell_type', ARRAY['T-cell', 'B lymphocyte'])",
    );
    assert_eq!(standardized, ["T cell", "B cell"]);
    let below: i64 = one(db, "SELECT count(*) FROM bionty.descendants('CL:0000542')");
    assert_eq!(below, 3);
    let genes: Vec<bool> = one(
        db,
        "SELECT lamin.validate('bionty.gene', ARRAY['CD8A', 'CD9'], field => 'symbol')",
    );
    assert_eq!(genes, [true, false]);
    let report: i64 = one(db, "SELECT count(*) FROM lamin.curation_report((SELECT uid FROM lamin.artifact WHERE key = 'raw/cells.parquet' AND is_latest))");
    assert_eq!(report, 3, "the curation report made at 0.1.0");
    let lineage: i64 = one(db, "SELECT count(*) FROM lamin.lineage((SELECT uid FROM lamin.artifact WHERE key = 'results/umap.png'))");
    assert!(
        lineage >= 3,
        "lineage of the result reaches its run, transform and inputs ({lineage})"
    );
    // Values stored as jsonb at 0.1.0 got their typed copy (0.6.0) and are
    // found through the typed views.
    let typed: Vec<String> = db
        .query(
            "SELECT feature || '=' || coalesce(value_number::text, value_text, value_boolean::text, value_date::text)
             FROM lamin.artifact_values ORDER BY feature",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        typed,
        [
            "assay=10x 3' v3",
            "measured_on=2026-10-01",
            "n_cells=1250",
            "ok=true",
            "temperature=36.6"
        ],
        "the typed columns of values made at 0.1.0"
    );
    let warm: String = one(
        db,
        "SELECT key FROM lamin.artifact_values WHERE feature = 'temperature' AND value_number > 36",
    );
    assert_eq!(warm, "raw/cells.parquet");
    let text: String = one(db, "SELECT lamin.describe(uid)::text FROM lamin.artifact WHERE key = 'raw/cells.parquet' AND is_latest");

    assert!(
        text.contains("T cell") && text.contains("1250"),
        "describe shows labels and values: {text}"
    );

    // Work goes on: the version family continues, annotation, a new run.
    db.batch_execute(
        "SELECT lamin.track('pipelines/after-upgrade.py', 'new()');
         SELECT lamin.save_artifact(encode(sha256('cells v4'), 'hex'), 8, key => 'raw/cells.parquet');
         SELECT lamin.annotate(uid, 'cell_type', ARRAY['CD8 T cell']) FROM lamin.artifact WHERE key = 'raw/cells.parquet' AND is_latest;
         SELECT lamin.finish();",
    )
    .unwrap();
    let head: String = one(
        db,
        "SELECT uid FROM lamin.artifact WHERE key = 'raw/cells.parquet' AND is_latest",
    );
    assert!(
        head.ends_with("0003"),
        "the fourth version continues the family's counter: {head}"
    );
    let heads: i64 = one(
        db,
        "SELECT count(*) FROM lamin.artifact WHERE key = 'raw/cells.parquet' AND is_latest",
    );
    assert_eq!(heads, 1);
    let dup = db
        .batch_execute("INSERT INTO lamin.ulabel (name) VALUES ('t cell')")
        .unwrap_err();
    assert!(
        db_message(&dup).contains("already exists"),
        "the typo guard still guards: {}",
        db_message(&dup)
    );

    // Access as granted at 0.1.0: lab-x is alice's (write) and bob's (read).
    let sees = |db: &mut postgres::Client, role: &str| -> i64 {
        as_role(db, role, |tx| {
            one(
                tx,
                "SELECT count(*) FROM lamin.artifact WHERE key = 'private/secret.csv'",
            )
        })
    };
    assert_eq!(sees(db, "upgrade_alice"), 1);
    assert_eq!(sees(db, "upgrade_bob"), 1);
    assert_eq!(
        sees(db, "upgrade_carol"),
        0,
        "a role without lab-x does not see its records"
    );
    let hits: i64 = as_role(db, "upgrade_carol", |tx| {
        one(tx, "SELECT count(*) FROM lamin.search('lab-x only label')")
    });
    assert_eq!(hits, 0, "nor find them");
    let locked = as_role(db, "upgrade_bob", |tx| {
        tx.batch_execute(
            "UPDATE lamin.transform SET description = 'x' WHERE key = 'pipelines/ingest.py'",
        )
        .map_err(|e| db_message(&e))
    });
    assert!(
        locked.unwrap_err().contains("locked"),
        "the record locked at 0.1.0 stays locked"
    );
}

/// The first release with registries of one's own (lamin.create_registry).
const OWN_REGISTRIES_SINCE: &str = "0.7.0";

/// A registry of one's own made at each release that has them keeps working
/// through the upgrades after it: records, spaces, search, annotations and
/// migrations. (From a release made at CURRENT there is no step yet: then it
/// checks the fill itself; each later release adds an upgrade to the walk.)
#[test]
fn a_registry_of_ones_own_survives_the_upgrades_after_it() {
    let releases = Releases::load();
    let mut bases: Vec<String> = releases
        .frozen
        .iter()
        .filter(|v| version_order(v, OWN_REGISTRIES_SINCE) != std::cmp::Ordering::Less)
        .cloned()
        .collect();
    if !bases.iter().any(|v| v == CURRENT) {
        bases.push(CURRENT.to_string());
    }
    for base in &bases {
        let cluster = if base == CURRENT {
            Cluster::start()
        } else {
            Cluster::start_at(base)
        };
        cluster.psql_file(&cluster.dbname, &fixture("upgrade/fill-own-registry.sql"));
        walk_upgrades(&cluster, base);
        let mut db = cluster.connect();
        assert_eq!(one::<String>(&mut db, "SELECT lamin.version()"), CURRENT);
        assert_eq!(
            one::<String>(
                &mut db,
                "SELECT name_field FROM lamin.registry WHERE name = 'lab.sample'"
            ),
            "label",
            "from {base}: the renamed name column is still the registry's"
        );
        assert_eq!(
            one::<String>(
                &mut db,
                "SELECT name FROM lamin.search('lung', 'lab.sample') LIMIT 1"
            ),
            "S-002 lung",
            "from {base}: its records are searchable"
        );
        let seen = as_role(&mut db, "own_upgrade_member", |t| {
            one::<i64>(t, "SELECT count(*) FROM lab.sample")
        });
        assert_eq!(
            seen, 2,
            "from {base}: a member of the lab's space sees both records"
        );
        let seen = as_role(&mut db, "lamin_writer", |t| {
            one::<i64>(t, "SELECT count(*) FROM lab.artifact_sample")
        });
        assert_eq!(
            seen, 0,
            "from {base}: the link to a record of the lab's space is not seen without it"
        );
        db.batch_execute(
            "ALTER TABLE lab.sample RENAME COLUMN tissue TO organ;
             INSERT INTO lab.sample (label, organ) VALUES ('S-003 kidney', 'kidney');",
        )
        .unwrap_or_else(|e| panic!("from {base}: migrating the registry: {}", db_message(&e)));
        assert_eq!(
            one::<i32>(
                &mut db,
                "SELECT lamin.annotate(uid, 'sample', ARRAY['S-003 kidney']) FROM lamin.artifact WHERE key = 'lab/measured.csv'"
            ),
            1,
            "from {base}: a new record annotates"
        );
        assert!(
            one::<i64>(&mut db, "SELECT count(*) FROM lamin.audit WHERE registry = 'lab.sample' AND operation = 'insert'") == 3,
            "from {base}: every insert is audited"
        );
    }
}

#[test]
fn data_made_at_the_oldest_release_survives_every_upgrade() {
    let releases = Releases::load();
    let oldest = releases.oldest().to_string();
    let cluster = Cluster::start_at(&oldest);
    cluster.psql_file(
        &cluster.dbname,
        &fixture(&format!("upgrade/fill-{oldest}.sql")),
    );
    let mut db = cluster.connect();
    let before_columns = columns(&mut db, &["lamin", "bionty", "public"]);
    let mut before = rows_over(&mut db, &before_columns);
    // Queued jobs of the internal kinds are the one documented change (0.3.0:
    // they become the sidecar's and name their storage): compared apart.
    let job_columns = before_columns["lamin.job"].clone();
    const USER_JOBS: &str = "WHERE kind NOT IN ('delete_object', 'sweep_storage')";
    before.insert(
        "lamin.job".into(),
        rows_where(&mut db, "lamin.job", &job_columns, USER_JOBS),
    );
    let internal_jobs: i64 = one(&mut db, "SELECT count(*) FROM lamin.job WHERE kind IN ('delete_object', 'sweep_storage') AND status = 'queued'");
    // A release may add job kinds (0.6.0: validate): the kinds there were stay as they were.
    let kind_columns = before_columns["lamin.job_kind"].clone();
    let old_kinds: String = one(
        &mut db,
        "SELECT 'WHERE kind IN (' || string_agg(quote_literal(kind), ', ') || ')' FROM lamin.job_kind",
    );
    before.insert(
        "lamin.job_kind".into(),
        rows_where(&mut db, "lamin.job_kind", &kind_columns, &old_kinds),
    );
    // A release may make new registries searchable (0.7.0: projects,
    // references, records): the registries there were stay as they were.
    let registry_columns = before_columns["lamin.registry"].clone();
    let old_registries: String = one(
        &mut db,
        "SELECT 'WHERE name IN (' || string_agg(quote_literal(name), ', ') || ')' FROM lamin.registry",
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
    let empty: Vec<&String> = before
        .iter()
        .filter(|(t, (n, _))| t.starts_with("lamin.") && *n == 0)
        .map(|(t, _)| t)
        .collect();
    assert!(
        empty.is_empty(),
        "the fill puts rows in every lamin table; empty: {empty:?}"
    );

    // As users do it: one ALTER EXTENSION, Postgres walks the steps.
    let started = std::time::Instant::now();
    db.batch_execute("ALTER EXTENSION lamin UPDATE")
        .unwrap_or_else(|e| panic!("ALTER EXTENSION lamin UPDATE: {}", db_message(&e)));
    eprintln!(
        "ALTER EXTENSION lamin UPDATE {oldest} -> {CURRENT}: {:?}",
        started.elapsed()
    );
    assert_eq!(one::<String>(&mut db, "SELECT lamin.version()"), CURRENT);
    let after_columns = columns(&mut db, &["lamin", "bionty", "public"]);
    for (table, cols) in &before_columns {
        let now = after_columns
            .get(table)
            .unwrap_or_else(|| panic!("{table} is gone after the upgrade"));
        assert!(
            now.starts_with(cols),
            "{table}: the upgrade changed its existing columns {cols:?} into {now:?} (new columns go at the end)"
        );
    }
    let mut after = rows_over(&mut db, &before_columns);
    after.insert(
        "lamin.job".into(),
        rows_where(&mut db, "lamin.job", &job_columns, USER_JOBS),
    );
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
        one::<i64>(
            &mut db,
            "SELECT count(*) FROM lamin.job WHERE kind IN ('delete_object', 'sweep_storage') AND status = 'queued'
               AND requested_by = 'lamin_sidecar' AND NOT args ? 'root' AND args ? 'storage_id'"
        ) == internal_jobs,
        "queued internal jobs became the sidecar's, naming their storage"
    );
    assert!(
        before == after,
        "rows changed in the upgrade from {oldest}: {:?}",
        changed(&before, &after)
    );
    let guards: Vec<(String, bool)> = db
        .query(
            "SELECT name, guard FROM lamin.registry WHERE name IN ('lamin.artifact', 'lamin.ulabel', 'public.sample') ORDER BY name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        guards,
        [
            ("lamin.artifact".to_string(), false),
            ("lamin.ulabel".into(), true),
            ("public.sample".into(), true)
        ],
        "the upgrade reads each registry's guard setting off its triggers"
    );

    // A backup of the upgraded database restores every row.
    cluster.dump_and_restore("restored");
    let schemas = ["lamin", "bionty", "public"];
    let saved = backup_rows(&mut db, &schemas);
    let mut restored = cluster.connect_to("restored");
    let back = backup_rows(&mut restored, &schemas);
    assert!(
        saved == back,
        "rows lost or changed by pg_dump / pg_restore: {:?}",
        changed(&saved, &back)
    );

    // A role made after the upgrade, without lab-x.
    db.batch_execute("CREATE ROLE upgrade_carol IN ROLE lamin_reader")
        .unwrap();
    check_the_fill_works(&mut db);
    check_the_fill_works(&mut restored);

    // The user's table of 0.1.0 becomes a registry of its own (0.7.0): its
    // rows get uids and keep their search terms, and a feature annotates with it.
    db.batch_execute(
        "SELECT lamin.create_registry('public.sample', synonyms_field => 'synonyms');
         SELECT lamin.create_feature('sample', 'cat[public.sample]');",
    )
    .unwrap();
    assert_eq!(
        one::<i64>(&mut db, "SELECT count(DISTINCT uid) FROM public.sample"),
        3,
        "each row of the table made at 0.1.0 got a uid"
    );
    assert_eq!(
        one::<String>(
            &mut db,
            "SELECT name FROM lamin.search('PBMC-1', 'public.sample') LIMIT 1"
        ),
        "blood draw 1",
        "its synonyms stay searchable"
    );
    let artifact: String = one(
        &mut db,
        "SELECT uid FROM lamin.artifact WHERE is_latest ORDER BY id LIMIT 1",
    );
    assert_eq!(
        one::<i32>(
            &mut db,
            &format!("SELECT lamin.annotate('{artifact}', 'sample', ARRAY['lymph node biopsy'])")
        ),
        1,
        "an artifact is annotated with one of its records"
    );

    // Work queued at the old release is done by a sidecar of the new one.
    let queued: i64 = one(
        &mut db,
        "SELECT id FROM lamin.job WHERE args ? 'queued_before_the_upgrade'",
    );
    let _sidecar = Sidecar::start(&cluster, "after-upgrade");
    let (status, _, error) = await_job(&mut db, queued);
    assert_eq!(status, "done", "{error:?}");
}

#[test]
fn clients_refuse_a_schema_they_do_not_speak() {
    let releases = Releases::load();
    let oldest = releases.oldest().to_string();
    assert_ne!(
        oldest, CURRENT,
        "there is an earlier release to test against"
    );
    let cluster = Cluster::start_at(&oldest);
    let mut db = cluster.connect();
    db.batch_execute("SELECT lamin.add_storage('/tmp/lamin-upgrade-refusal')")
        .unwrap();
    let uid: String = one(
        &mut db,
        "SELECT lamin.save_artifact(encode(sha256('x'), 'hex'), 1, key => 'x.txt')",
    );

    let status = lamin(&cluster, &["status"]);
    assert!(
        !status.status.success(),
        "lamin status fails on a schema it does not speak"
    );
    let shown = stdout_text(&status);
    assert!(
        shown.contains(&format!(
            "lamin extension  {oldest} (server offers {CURRENT}"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("upgrade          pending: {oldest} -> {CURRENT}")),
        "{shown}"
    );
    let expected =
        format!("has lamin extension {oldest}, but this lamin {CURRENT} speaks only {CURRENT}");
    assert!(
        stderr_text(&status).contains(&expected),
        "{}",
        stderr_text(&status)
    );

    let get = lamin(
        &cluster,
        &[
            "get",
            &uid,
            "--to",
            cluster.dir().join("x.txt").to_str().unwrap(),
        ],
    );
    assert!(!get.status.success());
    let msg = stderr_text(&get);
    assert!(
        msg.contains(&expected) && msg.contains("ALTER EXTENSION lamin UPDATE"),
        "{msg}"
    );
    assert_eq!(stdout_text(&get), "", "nothing on stdout");

    let mut sidecar = Sidecar::start(&cluster, "too-new");
    let exit = sidecar.wait_exit(Duration::from_secs(30), "meeting a 0.1.0 schema");
    assert!(!exit.success());
    assert!(sidecar.log().contains(&expected), "{}", sidecar.log());

    // After the upgrade both work; status lists the running sidecar.
    db.batch_execute("ALTER EXTENSION lamin UPDATE").unwrap();
    let sidecar = Sidecar::start(&cluster, "current");
    sidecar.wait_for_log("listening for jobs", 1, Duration::from_secs(30));
    let status = lamin(&cluster, &["status"]);
    assert!(status.status.success(), "{}", stderr_text(&status));
    let shown = stdout_text(&status);
    assert!(shown.contains("upgrade          none pending"), "{shown}");
    assert!(
        shown.contains(&format!("sidecar          {CURRENT} ")),
        "{shown}"
    );

    // A later release's schema under the running sidecar (ALTER EXTENSION of a
    // release that does not exist yet, stood in for by its catalog row): its
    // next claim is refused in the database, it takes no job and stops.
    let mut sidecar = sidecar;
    let long: i64 = one(
        &mut db,
        "SELECT lamin.enqueue('sleep', '{\"seconds\": 120}')",
    );
    wait_until(
        "the sleep job to start",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || job_status(&mut db, long) == "running",
    );
    db.batch_execute("UPDATE pg_extension SET extversion = '99.0.0' WHERE extname = 'lamin'")
        .unwrap();
    let job: i64 = one(&mut db, "SELECT lamin.enqueue('noop')");
    let exit = sidecar.wait_exit(Duration::from_secs(30), "the schema moving on to 99.0.0");
    assert!(!exit.success());
    assert!(
        sidecar
            .log()
            .contains("has lamin extension 99.0.0, but this lamin")
            && sidecar
                .log()
                .contains("use the lamin binary of release 99.0.0"),
        "{}",
        sidecar.log()
    );
    let attempts: i32 = db
        .query_one("SELECT attempts FROM lamin.job WHERE id = $1", &[&job])
        .unwrap()
        .get(0);
    assert_eq!(
        attempts, 0,
        "the job enqueued under the newer schema was never claimed"
    );
    let status = job_status(&mut db, long);
    assert_eq!(
        status, "queued",
        "the job it was running went back to the queue at once"
    );
    db.batch_execute(&format!(
        "UPDATE pg_extension SET extversion = '{CURRENT}' WHERE extname = 'lamin'"
    ))
    .unwrap();
}
