//! lamin on a Citus cluster (issue 21): a coordinator and two workers on
//! loopback, Citus 13.2.2 built from its vendored source. These tests need
//! Citus installed, so the main test command skips them; `scripts/test
//! citus` builds it (once) and runs them.
//!
//! What they establish so far (README "Scaling out: Citus"):
//! - lamin installs on a Citus coordinator, Citus carries the extension to
//!   the workers, and lamin works there with its tables local to the
//!   coordinator;
//! - Citus refuses to distribute lamin's tables, for three reasons, each
//!   shown below with the error it gives.

use lamin_e2e::citus::CitusCluster;
use lamin_e2e::db_message;

/// The error of a statement that must fail: its message and detail.
fn error_of(db: &mut postgres::Client, sql: &str) -> String {
    match db.batch_execute(sql) {
        Ok(()) => panic!("{sql} succeeded"),
        Err(e) => match e.as_db_error() {
            Some(d) => format!("{} ({})", d.message(), d.detail().unwrap_or_default()),
            None => e.to_string(),
        },
    }
}

/// How many of lamin's and bionty's tables Citus has distributed (or made
/// reference tables).
fn distributed_lamin_tables(db: &mut postgres::Client) -> i64 {
    db.query_one(
        "SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('lamin', 'bionty')",
        &[],
    )
    .unwrap()
    .get(0)
}

#[test]
#[ignore = "needs Citus: scripts/test citus"]
fn lamin_installs_on_a_citus_coordinator_and_reaches_the_workers() {
    let cluster = CitusCluster::start(2, "CREATE EXTENSION lamin CASCADE");
    let mut db = cluster.coordinator.connect();
    let nodes: i64 = db
        .query_one("SELECT count(*) FROM citus_get_active_worker_nodes()", &[])
        .unwrap()
        .get(0);
    assert_eq!(nodes, 2);
    // Citus propagates the extension (and pg_trgm) to every worker.
    for worker in &cluster.workers {
        let version: String = worker
            .connect()
            .query_one(
                "SELECT extversion FROM pg_extension WHERE extname = 'lamin'",
                &[],
            )
            .expect("lamin on the worker")
            .get(0);
        assert_eq!(version, lamin_e2e::releases::CURRENT);
    }
    // A Citus cluster is real: a reference table reaches every worker.
    db.batch_execute(
        "CREATE TABLE public.probe (id int PRIMARY KEY, name text);
         SELECT create_reference_table('public.probe');
         INSERT INTO public.probe VALUES (1, 'on every node');",
    )
    .unwrap();
    for worker in &cluster.workers {
        let mut w = worker.connect();
        // (Citus hides the shards from pg_class; it shows them to itself.)
        w.batch_execute("SET citus.override_table_visibility = off")
            .unwrap();
        let shards: i64 = w
            .query_one(
                "SELECT count(*) FROM pg_class WHERE relname LIKE 'probe\\_%' AND relkind = 'r'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(shards, 1, "the reference table's shard on the worker");
        let name: String = w
            .query_one("SELECT name FROM public.probe WHERE id = 1", &[])
            .unwrap()
            .get(0);
        assert_eq!(name, "on every node");
    }
    // lamin works on the coordinator, its tables local there: labels with
    // their search index and guard, artifacts with versions, search and
    // validate.
    db.batch_execute(
        "INSERT INTO lamin.ulabel (name) VALUES ('treated'), ('control');
         SELECT lamin.add_storage('/tmp/lamin-citus-storage');
         SELECT lamin.save_artifact(repeat('a', 64), 10, key => 'raw/a.csv');
         SELECT lamin.save_artifact(repeat('b', 64), 10, key => 'raw/a.csv');",
    )
    .unwrap_or_else(|e| panic!("{}", db_message(&e)));
    let top: String = db
        .query_one("SELECT name FROM lamin.search('treatd') LIMIT 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(top, "treated");
    let versions: i64 = db
        .query_one(
            "SELECT count(*) FROM lamin.artifact WHERE key = 'raw/a.csv'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(versions, 2);
    let distributed = distributed_lamin_tables(&mut db);
    assert_eq!(
        distributed, 0,
        "lamin's tables stay local to the coordinator"
    );
}

#[test]
#[ignore = "needs Citus: scripts/test citus"]
fn citus_refuses_to_distribute_lamins_tables_and_says_why() {
    let cluster = CitusCluster::start(2, "CREATE EXTENSION lamin CASCADE");
    let mut db = cluster.coordinator.connect();

    // 1. Triggers: every registry keeps its search index, audit log, locks
    //    and system fields with triggers, which Citus refuses by default.
    let e = error_of(&mut db, "SELECT create_reference_table('bionty.cell_type')");
    assert!(e.contains("because it has triggers"), "{e}");

    // 2. With citus.enable_unsafe_triggers on (the triggers then run on
    //    every placement), the row-level security policies stop it: their
    //    `(SELECT lamin.writable_spaces())` sub-selects, there so that
    //    Postgres evaluates the space list once per statement.
    let e = error_of(
        &mut db,
        "SET citus.enable_unsafe_triggers = on;
         SELECT create_reference_table('bionty.cell_type')",
    );
    assert!(
        e.contains("Subqueries are not supported in policies on distributed tables"),
        "{e}"
    );

    // 3. With the policies written without sub-selects, the foreign keys do:
    //    every registry refers to lamin.user and lamin.space, so a reference
    //    table there makes Citus convert every connected table, which drops
    //    and re-creates their sequences and views, and those belong to the
    //    extension.
    let e = error_of(
        &mut db,
        "BEGIN;
         SET LOCAL citus.enable_unsafe_triggers = on;
         ALTER POLICY space_read ON lamin.space
             USING (id = ANY (lamin.readable_spaces()) OR lamin.is_instance_admin());
         ALTER POLICY space_change ON lamin.space
             USING ((id = ANY (lamin.admin_spaces()) OR lamin.is_instance_admin()) AND id > 1);
         ALTER POLICY space_drop ON lamin.space
             USING ((id = ANY (lamin.admin_spaces()) OR lamin.is_instance_admin()) AND id > 1);
         SELECT create_reference_table('lamin.user');",
    );
    db.batch_execute("ROLLBACK").unwrap();
    assert!(e.contains("because extension lamin requires it"), "{e}");

    // Nothing was distributed, and lamin still works.
    let distributed = distributed_lamin_tables(&mut db);
    assert_eq!(distributed, 0);
    db.batch_execute("INSERT INTO lamin.ulabel (name) VALUES ('after')")
        .unwrap_or_else(|e| panic!("{}", db_message(&e)));
}
