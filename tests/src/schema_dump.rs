//! What an upgraded database must equal: the extension's objects as
//! `pg_dump --schema-only --binary-upgrade` prints them (the one pg_dump mode
//! that prints an extension's member objects rather than a bare CREATE
//! EXTENSION), normalised so that only what a user could notice remains;
//! the tables it marks for pg_dump; and the roles it creates.

use std::collections::BTreeMap;

use crate::Cluster;

/// The dump's objects, keyed by pg_dump's header (`Name: …; Type: …; Schema:
/// …`), each normalised: object ids, relfilenodes, transaction ids, the
/// storage of dropped columns and "missing values" of added ones (physical
/// details a fresh install cannot share) are left out. Column order, names,
/// defaults, constraints, function bodies, comments, grants and policies stay.
pub fn schema_objects(cluster: &Cluster, dbname: &str) -> BTreeMap<String, String> {
    let out = cluster
        .client_command("pg_dump")
        .args(["--schema-only", "--binary-upgrade", "-d", dbname])
        .output()
        .expect("run pg_dump");
    crate::check("pg_dump --schema-only --binary-upgrade", &out);
    objects_of(&normalise(&String::from_utf8_lossy(&out.stdout)))
}

/// Drop what differs between two databases with the same objects.
pub fn normalise(dump: &str) -> String {
    let lines: Vec<&str> = dump.lines().collect();
    let mut kept: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        // Blocks: a comment line and the statement lines that belong to it.
        let block = if line.starts_with("-- For binary upgrade, set heap's relfrozenxid")
            || line.starts_with("-- For binary upgrade, set toast's relfrozenxid")
        {
            4 // UPDATE pg_class / SET relfrozenxid … / WHERE oid = …;
        } else if line.starts_with("-- For binary upgrade, recreate dropped column") {
            5 // UPDATE pg_attribute / SET attlen … / WHERE attname … / AND attrelid …;
        } else {
            0
        };
        if block > 0 {
            i += block;
            continue;
        }
        let skip = line.starts_with("SELECT pg_catalog.binary_upgrade_set_next_")
            || line.starts_with("SELECT pg_catalog.binary_upgrade_set_missing_value")
            || line == "-- set missing value."
            || line.starts_with("-- For binary upgrade, must preserve")
            // pg_dump's per-run random key (15.14+).
            || line.starts_with("\\restrict ")
            || line.starts_with("\\unrestrict ")
            // Placeholders keeping a dropped column's place, and its DROP.
            || line.contains("........pg.dropped.");
        if !skip {
            // The member list of the extension is a list of object ids: the
            // tables it marks for pg_dump are compared by name instead.
            kept.push(replace_oid_array(line));
        }
        i += 1;
    }
    // A dropped last column leaves the column before it with a comma.
    let mut text = kept.join("\n");
    while let Some(at) = text.find(",\n);") {
        text.replace_range(at..at + 1, "");
    }
    text
}

fn replace_oid_array(line: &str) -> String {
    const CALL: &str = "binary_upgrade_create_empty_extension(";
    if !line.contains(CALL) {
        return line.to_string();
    }
    match (line.find("'{"), line.find("}'")) {
        (Some(a), Some(b)) if b > a => format!("{}'{{…}}'{}", &line[..a], &line[b + 2..]),
        _ => line.to_string(),
    }
}

/// Split a dump into its objects, keyed by their headers.
pub fn objects_of(dump: &str) -> BTreeMap<String, String> {
    let mut objects = BTreeMap::new();
    let mut key = "(preamble)".to_string();
    let mut body: Vec<&str> = Vec::new();
    let flush = |key: &str, body: &mut Vec<&str>, objects: &mut BTreeMap<String, String>| {
        let text = body
            .iter()
            .filter(|l| l.trim() != "--" && !l.trim().is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
        body.clear();
        let mut k = key.to_string();
        let mut n = 2;
        while objects.contains_key(&k) {
            k = format!("{key} (#{n})");
            n += 1;
        }
        objects.insert(k, text);
    };
    for line in dump.lines() {
        if let Some(header) = line.strip_prefix("-- Name: ") {
            flush(&key, &mut body, &mut objects);
            key = header.to_string();
        } else {
            body.push(line);
        }
    }
    flush(&key, &mut body, &mut objects);
    objects
}

/// The tables (and sequences) the extension marks for pg_dump, with their
/// conditions.
pub fn dumped_tables(client: &mut postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) || coalesce(' ' || nullif(x.cond, ''), '')
             FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(oid, cond)
             JOIN pg_class c ON c.oid = x.oid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE e.extname = 'lamin' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The lamin roles of the cluster: attributes, memberships, comments
/// (`pg_dumpall --roles-only`, passwords left out).
pub fn lamin_roles(cluster: &Cluster) -> Vec<String> {
    let out = cluster
        .client_command("pg_dumpall")
        .args(["--roles-only", "--no-role-passwords"])
        .output()
        .expect("run pg_dumpall");
    crate::check("pg_dumpall --roles-only", &out);
    let mut roles: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("lamin_"))
        // "GRANTED BY" names the installing superuser, whoever that was.
        .map(|l| match l.find(" GRANTED BY ") {
            Some(at) => format!("{};", &l[..at]),
            None => l.to_string(),
        })
        .collect();
    roles.sort();
    roles
}

/// A report of how `upgraded` differs from `fresh` (None when equal): the
/// objects the upgrade lacks, those it leaves behind, and per differing object
/// the lines only one side has.
pub fn differences(
    fresh: &BTreeMap<String, String>,
    upgraded: &BTreeMap<String, String>,
) -> Option<String> {
    let mut report = String::new();
    for (name, body) in fresh {
        match upgraded.get(name) {
            None => report.push_str(&format!("missing after the upgrade: {name}\n{body}\n\n")),
            Some(other) if other != body => {
                report.push_str(&format!("differs: {name}\n"));
                let theirs: Vec<&str> = other.lines().collect();
                let ours: Vec<&str> = body.lines().collect();
                for l in &ours {
                    if !theirs.contains(l) {
                        report.push_str(&format!("  fresh:    {l}\n"));
                    }
                }
                for l in &theirs {
                    if !ours.contains(l) {
                        report.push_str(&format!("  upgraded: {l}\n"));
                    }
                }
                if ours.iter().all(|l| theirs.contains(l))
                    && theirs.iter().all(|l| ours.contains(l))
                {
                    report.push_str("  (same lines in another order)\n");
                }
                report.push('\n');
            }
            Some(_) => {}
        }
    }
    for (name, body) in upgraded {
        if !fresh.contains_key(name) {
            report.push_str(&format!(
                "left behind by the upgrade (not in a fresh install): {name}\n{body}\n\n"
            ));
        }
    }
    (!report.is_empty()).then_some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_details_are_left_out() {
        let a = "\\restrict abc
-- Name: t; Type: TABLE; Schema: lamin; Owner: lamin
--

-- For binary upgrade, must preserve pg_class oids and relfilenodes
SELECT pg_catalog.binary_upgrade_set_next_heap_pg_class_oid('16494'::pg_catalog.oid);
CREATE TABLE lamin.t (
    a integer,
    \"........pg.dropped.2........\" integer
);

-- For binary upgrade, recreate dropped column.
UPDATE pg_catalog.pg_attribute
SET attlen = 4, attalign = 'i', attbyval = false
WHERE attname = '........pg.dropped.2........'
  AND attrelid = 'lamin.t'::pg_catalog.regclass;
ALTER TABLE ONLY lamin.t DROP COLUMN \"........pg.dropped.2........\";

-- For binary upgrade, set heap's relfrozenxid and relminmxid
UPDATE pg_catalog.pg_class
SET relfrozenxid = '727', relminmxid = '1'
WHERE oid = 'lamin.t'::pg_catalog.regclass;
SELECT pg_catalog.binary_upgrade_create_empty_extension('lamin', 'lamin', false, '0.2.0', '{16494,16532}', '{\"\",\"WHERE id > 0\"}', ARRAY[]::pg_catalog.text[]);
";
        let b = "\\restrict xyz
-- Name: t; Type: TABLE; Schema: lamin; Owner: lamin
--

SELECT pg_catalog.binary_upgrade_set_next_heap_pg_class_oid('20000'::pg_catalog.oid);
CREATE TABLE lamin.t (
    a integer
);

-- For binary upgrade, set heap's relfrozenxid and relminmxid
UPDATE pg_catalog.pg_class
SET relfrozenxid = '900', relminmxid = '1'
WHERE oid = 'lamin.t'::pg_catalog.regclass;
SELECT pg_catalog.binary_upgrade_create_empty_extension('lamin', 'lamin', false, '0.2.0', '{20000,20001}', '{\"\",\"WHERE id > 0\"}', ARRAY[]::pg_catalog.text[]);
";
        let (a, b) = (objects_of(&normalise(a)), objects_of(&normalise(b)));
        assert_eq!(differences(&a, &b), None, "{a:#?}\n{b:#?}");
    }

    #[test]
    fn a_real_difference_is_reported_by_object() {
        let fresh = objects_of(
            "-- Name: FUNCTION f(); Type: COMMENT; Schema: lamin; Owner: lamin\nCOMMENT ON FUNCTION lamin.f() IS 'new';\n\
             -- Name: g(); Type: FUNCTION; Schema: lamin; Owner: lamin\nCREATE FUNCTION lamin.g() …;\n",
        );
        let upgraded = objects_of(
            "-- Name: FUNCTION f(); Type: COMMENT; Schema: lamin; Owner: lamin\nCOMMENT ON FUNCTION lamin.f() IS 'old';\n\
             -- Name: h(); Type: FUNCTION; Schema: lamin; Owner: lamin\nCREATE FUNCTION lamin.h() …;\n",
        );
        let report = differences(&fresh, &upgraded).expect("they differ");
        assert!(
            report.contains("differs: FUNCTION f(); Type: COMMENT"),
            "{report}"
        );
        assert!(
            report.contains("fresh:    COMMENT ON FUNCTION lamin.f() IS 'new';"),
            "{report}"
        );
        assert!(
            report.contains("missing after the upgrade: g(); Type: FUNCTION"),
            "{report}"
        );
        assert!(
            report.contains(
                "left behind by the upgrade (not in a fresh install): h(); Type: FUNCTION"
            ),
            "{report}"
        );
    }
}
