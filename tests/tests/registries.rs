//! Core registries under concurrency, and backups with pg_dump / pg_restore.

use std::sync::{Arc, Barrier};
use std::thread;

use lamin_e2e::fingerprint::backup_rows;
use lamin_e2e::Cluster;

const SESSIONS: usize = 8;

/// Run `work(session_index, client)` in `SESSIONS` sessions that start together.
fn in_parallel<T: Send + 'static>(
    cluster: &Cluster,
    work: impl Fn(usize, &mut postgres::Client) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(SESSIONS));
    let work = Arc::new(work);
    let handles: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let mut client = cluster.connect();
            let barrier = Arc::clone(&barrier);
            let work = Arc::clone(&work);
            thread::spawn(move || {
                barrier.wait();
                work(i, &mut client)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("session thread panicked"))
        .collect()
}

fn setup_storage(cluster: &Cluster) {
    cluster
        .connect()
        .batch_execute("SELECT lamin.add_storage('/tmp/lamin-e2e-storage')")
        .unwrap();
}

#[test]
fn concurrent_saves_of_the_same_content_yield_one_record() {
    let cluster = Cluster::start();
    setup_storage(&cluster);
    let uids = in_parallel(&cluster, |i, client| {
        // Each session in its own transaction, each with its own key: content decides.
        let mut tx = client.transaction().unwrap();
        let uid: String = tx
            .query_one(
                "SELECT lamin.save_artifact(encode(sha256('same bytes'), 'hex'), 10, key => $1)",
                &[&format!("conc/copy-{i}.txt")],
            )
            .unwrap()
            .get(0);
        tx.commit().unwrap();
        uid
    });
    assert!(
        uids.iter().all(|u| u == &uids[0]),
        "sessions got different uids: {uids:?}"
    );
    let mut db = cluster.connect();
    let n: i64 = db
        .query_one("SELECT count(*) FROM lamin.artifact", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        n, 1,
        "8 concurrent saves of one content must make one record"
    );
}

#[test]
fn concurrent_new_versions_keep_exactly_one_head() {
    let cluster = Cluster::start();
    setup_storage(&cluster);
    cluster
        .connect()
        .batch_execute("SELECT lamin.save_artifact(encode(sha256('v-base'), 'hex'), 1, key => 'conc/data.csv')")
        .unwrap();
    let uids = in_parallel(&cluster, |i, client| {
        let mut tx = client.transaction().unwrap();
        let uid: String = tx
            .query_one(
                "SELECT lamin.save_artifact(encode(sha256(convert_to($1::text, 'UTF8')), 'hex'), 1, key => 'conc/data.csv')",
                &[&format!("version content {i}")],
            )
            .unwrap()
            .get(0);
        tx.commit().unwrap();
        uid
    });
    let mut db = cluster.connect();
    let rows = db
        .query("SELECT uid, is_latest FROM lamin.artifact ORDER BY id", &[])
        .unwrap();
    assert_eq!(rows.len(), SESSIONS + 1);
    let stems: std::collections::BTreeSet<String> = rows
        .iter()
        .map(|r| r.get::<_, String>(0)[..16].to_string())
        .collect();
    assert_eq!(stems.len(), 1, "all versions share one family");
    let suffixes: std::collections::BTreeSet<String> = rows
        .iter()
        .map(|r| r.get::<_, String>(0)[16..].to_string())
        .collect();
    assert_eq!(
        suffixes.len(),
        SESSIONS + 1,
        "every version got its own counter"
    );
    let heads: Vec<&postgres::Row> = rows.iter().filter(|r| r.get::<_, bool>(1)).collect();
    assert_eq!(heads.len(), 1, "exactly one head");
    assert_eq!(
        heads[0].get::<_, String>(0),
        rows.last().unwrap().get::<_, String>(0),
        "the head is the newest"
    );
    assert!(uids.contains(&heads[0].get::<_, String>(0)));
}

#[test]
fn pg_dump_and_restore_round_trip_every_record() {
    let cluster = Cluster::start();
    setup_storage(&cluster);
    let mut db = cluster.connect();
    db.batch_execute(
        "SELECT lamin.track('bk/pipe.py', 'code()', params => '{\"k\": 1}');
         SELECT lamin.save_artifact(encode(sha256('bk1'), 'hex'), 3, key => 'bk/a.csv', version => '1');
         SELECT lamin.save_artifact(encode(sha256('bk2'), 'hex'), 3, key => 'bk/a.csv', version => '2');
         SELECT lamin.create_feature('cell_type', 'cat[lamin.ulabel]');
         SELECT lamin.create_feature('n', 'int');
         INSERT INTO lamin.ulabel (name, is_type) VALUES ('CellType', true);
         INSERT INTO lamin.ulabel (name, type_id) SELECT 'T cell', id FROM lamin.ulabel WHERE name = 'CellType';
         INSERT INTO lamin.ulabel_parent (ulabel_id, parent_id)
             SELECT c.id, p.id FROM lamin.ulabel c, lamin.ulabel p WHERE c.name = 'T cell' AND p.name = 'CellType';
         SELECT lamin.annotate(uid, 'cell_type', ARRAY['T cell']) FROM lamin.artifact WHERE is_latest;
         SELECT lamin.annotate(uid, 'n', ARRAY['5']) FROM lamin.artifact WHERE is_latest;
         SELECT lamin.link_schema(a.uid, 'columns', lamin.create_schema(ARRAY['cell_type', 'n'])) FROM lamin.artifact a WHERE a.is_latest;
         SELECT lamin.save_collection('bk/coll', array_agg(uid ORDER BY id)) FROM lamin.artifact;
         SELECT lamin.finish();
         SELECT lamin.track('bk/reader.py');
         SELECT lamin.get(uid) FROM lamin.artifact WHERE version = '1';
         SELECT lamin.save_artifact(encode(sha256('bk1'), 'hex'), 3);
         SELECT lamin.get_collection(uid) FROM lamin.collection;
         SELECT lamin.finish();
         INSERT INTO lamin.space (name) VALUES ('team');",
    )
    .unwrap();
    let before = backup_rows(&mut db, &["lamin", "bionty"]);
    assert!(
        before.values().filter(|(n, _)| *n > 0).count() >= 18,
        "the fixture fills almost every table: {before:?}"
    );

    cluster.dump_and_restore("restored");

    let mut restored = cluster.connect_to("restored");
    let after = backup_rows(&mut restored, &["lamin", "bionty"]);
    if before != after {
        let dump_rows = |c: &mut postgres::Client| -> Vec<String> {
            c.query("SELECT x::text FROM lamin.artifact x ORDER BY id", &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        };
        eprintln!(
            "before: {:#?}\nafter: {:#?}",
            dump_rows(&mut db),
            dump_rows(&mut restored)
        );
    }
    assert_eq!(before, after, "every row of every lamin table comes back");

    // The restored database keeps working: sequences continue, versions continue.
    let uid: String = restored
        .query_one(
            "SELECT lamin.save_artifact(encode(sha256('bk3'), 'hex'), 3, key => 'bk/a.csv')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        uid.ends_with("0002"),
        "the next version after restore is 0002, got {uid}"
    );
    let heads: i64 = restored
        .query_one(
            "SELECT count(*) FROM lamin.artifact WHERE key = 'bk/a.csv' AND is_latest",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(heads, 1);
}
