//! Moving in from LaminDB, end to end: a real LaminDB instance, made by the
//! pinned `lamindb` and `bionty` from PyPI (tests/fixtures/lamindb/
//! make_instance.py; scripts/test installs them), in SQLite and in
//! Postgres, imported by `lamin import-lamindb` and compared record by
//! record; the sidecar hashes the bytes LaminDB stored; importing again
//! takes nothing.

use std::path::Path;

use lamin_e2e::{fixture, import_cl_cut, lamin, stderr_text, stdout_text, Cluster, Sidecar};
use serde_json::Value;

fn python() -> String {
    std::env::var("LAMIN_LAMINDB_PYTHON")
        .expect("LAMIN_LAMINDB_PYTHON: a Python with the pinned lamindb and bionty (scripts/test installs it)")
}

/// Make a LaminDB instance with LaminDB itself (its storage at
/// dir/storage; its database there in SQLite, or at `db`); what it made.
fn make_instance(dir: &Path, db: Option<&str>) -> Value {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = std::process::Command::new(python())
        .arg(fixture("lamindb/make_instance.py"))
        .arg(dir.join("storage"))
        .args(db)
        // LaminDB keeps its settings in ~/.lamin and ./.lamin: this test's own.
        .env("HOME", &home)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(dir.join("made.json")).unwrap()).unwrap()
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// The instance holds what LaminDB made, record by record (`broken`: the
/// artifacts whose bytes changed after LaminDB saved them: failed).
fn compare(db: &mut postgres::Client, made: &Value, broken: &[&str]) {
    for a in made["artifacts"].as_array().unwrap() {
        let uid = a["uid"].as_str().unwrap();
        let r = db
            .query_one(
                "SELECT a.key, a.suffix, a.size, a.legacy_hash, a.legacy_hash_type, a.n_files, a.is_latest, a.status,
                        a.hash, r.uid, a.key_is_virtual, a.description
                 FROM lamin.artifact a LEFT JOIN lamin.run r ON r.id = a.run_id WHERE a.uid = $1",
                &[&uid],
            )
            .unwrap_or_else(|e| panic!("artifact {uid}: {e}"));
        assert_eq!(r.get::<_, Option<String>>(0), s(&a["key"]), "{uid} key");
        assert_eq!(
            r.get::<_, String>(1),
            a["suffix"].as_str().unwrap(),
            "{uid} suffix"
        );
        assert_eq!(r.get::<_, Option<i64>>(2), a["size"].as_i64(), "{uid} size");
        assert_eq!(
            r.get::<_, Option<String>>(3),
            s(&a["hash"]),
            "{uid} LaminDB's hash, kept"
        );
        assert_eq!(
            r.get::<_, Option<String>>(4),
            s(&a["hash_type"]),
            "{uid} hash type"
        );
        assert_eq!(
            r.get::<_, Option<i64>>(5),
            a["n_files"].as_i64(),
            "{uid} n_files"
        );
        assert_eq!(
            r.get::<_, bool>(6),
            a["is_latest"].as_bool().unwrap(),
            "{uid} is_latest"
        );
        if broken.contains(&uid) {
            assert_eq!(r.get::<_, String>(7), "failed", "{uid}: its bytes changed");
            continue;
        }
        assert_eq!(
            r.get::<_, String>(7),
            "ready",
            "{uid}: hashed by the sidecar"
        );
        assert_eq!(r.get::<_, Option<String>>(9), s(&a["run"]), "{uid} run");
        assert_eq!(
            r.get::<_, bool>(10),
            a["key_is_virtual"].as_bool().unwrap(),
            "{uid} virtual key"
        );
        assert_eq!(
            r.get::<_, Option<String>>(11),
            s(&a["description"]),
            "{uid} description"
        );
        // The full sha256 of the bytes LaminDB stored (files; folders hash their files).
        if a["n_files"].is_null() {
            let bytes = std::fs::read(a["path"].as_str().unwrap()).unwrap();
            assert_eq!(
                r.get::<_, String>(8),
                lamin_core::content::sha256_hex(&bytes),
                "{uid} sha256"
            );
        }
    }
    // Versions: one family under one key, the newer the latest.
    let family: i64 = db
        .query_one(
            "SELECT count(DISTINCT stem) FROM lamin.artifact WHERE key = 'screens/cells.csv'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(family, 1);

    // Lineage: the transform, both runs, what the second read.
    let t = &made["transform"];
    let key: String = db
        .query_one(
            "SELECT key FROM lamin.transform WHERE uid = $1",
            &[&t["uid"].as_str().unwrap()],
        )
        .unwrap()
        .get(0);
    assert_eq!(key, t["key"].as_str().unwrap());
    let result = &made["result"];
    let inputs: Vec<String> = db
        .query(
            "SELECT a.uid FROM lamin.run_input_artifact i JOIN lamin.run r ON r.id = i.run_id
             JOIN lamin.artifact a ON a.id = i.artifact_id WHERE r.uid = $1 ORDER BY 1",
            &[&result["run"].as_str().unwrap()],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<String> = result["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| s(v).unwrap())
        .collect();
    assert_eq!(inputs, expected);
    assert!(!inputs.is_empty(), "LaminDB recorded an input");

    // Labels with their uids, type and parent.
    for (name, l) in made["ulabels"].as_object().unwrap() {
        let r = db
            .query_one(
                "SELECT u.name, t.name, (SELECT array_agg(p.name) FROM lamin.ulabel_parent x JOIN lamin.ulabel p ON p.id = x.parent_id WHERE x.ulabel_id = u.id)
                 FROM lamin.ulabel u LEFT JOIN lamin.ulabel t ON t.id = u.type_id WHERE u.uid = $1",
                &[&l["uid"].as_str().unwrap()],
            )
            .unwrap();
        assert_eq!(&r.get::<_, String>(0), name);
        assert_eq!(r.get::<_, Option<String>>(1), s(&l["type"]));
        let parents: Vec<String> = r.get::<_, Option<Vec<String>>>(2).unwrap_or_default();
        let expected: Vec<String> = l["parents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| s(v).unwrap())
            .collect();
        assert_eq!(parents, expected, "parents of {name}");
    }
    // Features by name with lamin's dtypes.
    let dtypes: Vec<(String, String)> = db
        .query("SELECT name, dtype FROM lamin.feature WHERE name IN ('temperature', 'perturbation', 'cell_type') ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        dtypes,
        [
            ("cell_type".to_string(), "cat[bionty.cell_type]".to_string()),
            ("perturbation".to_string(), "cat".to_string()),
            ("temperature".to_string(), "float".to_string())
        ]
    );
    // The newer version's annotations: a value, a typed label, two cell types by ontology id.
    let v2 = made["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "screens/cells.csv" && a["is_latest"] == true)
        .unwrap()["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let annotations: Vec<String> = db
        .query(
            "SELECT feature || ' ' || registry || ' ' || name || ' ' || coalesce(ontology_id, '') FROM lamin.annotations
             WHERE artifact_uid = $1
             UNION ALL SELECT feature || ' = ' || value::text FROM lamin.feature_values WHERE artifact_uid = $1 AND registry IS NULL
             ORDER BY 1",
            &[&v2],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        annotations,
        [
            "cell_type bionty.cell_type T cell CL:0000084",
            "cell_type bionty.cell_type alpha-beta T cell CL:0000789",
            "perturbation lamin.ulabel DMSO ",
            "temperature = 37.5",
        ]
    );
    // The collection with its members in order.
    let c = &made["collection"];
    let members: Vec<String> = db
        .query(
            "SELECT a.uid FROM lamin.collection c JOIN lamin.collection_artifact ca ON ca.collection_id = c.id
             JOIN lamin.artifact a ON a.id = ca.artifact_id WHERE c.uid = $1 ORDER BY ca.position",
            &[&c["uid"].as_str().unwrap()],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<String> = c["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| s(v).unwrap())
        .collect();
    assert_eq!(members, expected);
    // The cell types LaminDB held, by ontology id (the hierarchy with them).
    let parent: String = db
        .query_one(
            "SELECT p.ontology_id FROM bionty.cell_type_parent x JOIN bionty.cell_type c ON c.id = x.child_id
             JOIN bionty.cell_type p ON p.id = x.parent_id WHERE c.ontology_id = 'CL:0000789' AND p.ontology_id = 'CL:0000084'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(parent, "CL:0000084");
}

fn import(cluster: &Cluster, from: &str) -> Vec<(String, i64, i64)> {
    let out = lamin(
        cluster,
        &[
            "import-lamindb",
            "--from",
            from,
            "--wait",
            "-q",
            "--timeout-s",
            "120",
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    stdout_text(&out)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_lamindb_instance_in_sqlite_moves_in_record_by_record() {
    let dir = tempfile::tempdir().unwrap();
    let made = make_instance(dir.path(), None);
    let cluster = Cluster::start();
    import_cl_cut(&cluster);
    let _sidecar = Sidecar::start(&cluster, "lamindb");
    let storage = dir.path().join("storage");
    // A file changed after LaminDB saved it (same size): LaminDB's own md5 catches it.
    let notes = made["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "raw/notes.txt")
        .unwrap();
    let notes_uid = notes["uid"].as_str().unwrap().to_string();
    std::fs::write(notes["path"].as_str().unwrap(), "lab NOTES\n").unwrap();
    let out = lamin(
        &cluster,
        &[
            "import-lamindb",
            "--from",
            storage.to_str().unwrap(),
            "--wait",
            "-q",
            "--timeout-s",
            "120",
        ],
    );
    assert!(!out.status.success(), "an artifact could not be hashed");
    let said = stderr_text(&out);
    assert!(said.contains("1 artifacts could not be hashed"), "{said}");
    assert!(
        said.contains(&format!("artifact {notes_uid}")) && said.contains("not those LaminDB saved"),
        "{said}"
    );
    let counts: Vec<(String, i64, i64)> = stdout_text(&out)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    let artifacts = made["artifacts"].as_array().unwrap().len() as i64;
    assert!(
        counts.contains(&("artifact".to_string(), artifacts, 0)),
        "{counts:?}"
    );
    assert!(counts.contains(&("run".to_string(), 2, 0)), "{counts:?}");
    let mut db = cluster.connect();
    compare(&mut db, &made, &[&notes_uid]);

    // Again: only what is new, which is nothing.
    let again = import(
        &cluster,
        storage.join(".lamindb/lamin.db").to_str().unwrap(),
    );
    assert!(again.iter().all(|(_, new, _)| *new == 0), "{again:?}");
    assert!(
        again.contains(&("artifact".to_string(), 0, artifacts)),
        "{again:?}"
    );

    // The bytes stay where LaminDB keeps them, read through lamin (hash-checked).
    let v1 = made["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "screens/cells.csv" && a["is_latest"] == false)
        .unwrap();
    let got = dir.path().join("got.csv");
    let out = lamin(
        &cluster,
        &[
            "get",
            v1["uid"].as_str().unwrap(),
            "--to",
            got.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read(v1["path"].as_str().unwrap()).unwrap()
    );
    // LaminDB manages that root: lamin never sweeps it.
    let (root, manager): (String, Option<String>) = {
        let r = db
            .query_one("SELECT root, instance_uid FROM lamin.storage", &[])
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(root, storage.to_str().unwrap());
    assert!(manager.is_some());
    let swept: i64 = db
        .query_one("SELECT count(*) FROM lamin.sweep_storage()", &[])
        .unwrap()
        .get(0);
    assert_eq!(swept, 0);
    // A bad source is refused, naming it.
    let out = lamin(
        &cluster,
        &[
            "import-lamindb",
            "--from",
            dir.path().join("nothing").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("no LaminDB SQLite file"),
        "{}",
        stderr_text(&out)
    );
}

#[test]
fn a_lamindb_instance_in_postgres_moves_in_too() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start();
    cluster.create_database("lamindb_lab");
    let url = cluster.url().rsplit_once('/').unwrap().0.to_string() + "/lamindb_lab";
    let made = make_instance(dir.path(), Some(&url));
    import_cl_cut(&cluster);
    let _sidecar = Sidecar::start(&cluster, "lamindb-pg");
    let counts = import(&cluster, &url);
    assert!(
        counts.contains(&("collection".to_string(), 1, 0)),
        "{counts:?}"
    );
    compare(&mut cluster.connect(), &made, &[]);
}
