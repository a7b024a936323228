//! Search safeguards as a client sees them: the "did you mean" NOTICE.

use std::sync::{Arc, Mutex};

use lamin_e2e::Cluster;

#[test]
fn a_close_name_raises_a_did_you_mean_notice_and_an_exact_duplicate_is_refused() {
    let cluster = Cluster::start();
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&notices);
    let mut config: postgres::Config = cluster.url().parse().unwrap();
    config.notice_callback(move |n| sink.lock().unwrap().push(n.message().to_string()));
    let mut db = config.connect(postgres::NoTls).unwrap();

    db.batch_execute("INSERT INTO lamin.ulabel (name) VALUES ('hepatocyte')")
        .unwrap();
    assert!(
        notices.lock().unwrap().is_empty(),
        "no notice for the first label: {:?}",
        notices.lock().unwrap()
    );
    db.batch_execute("INSERT INTO lamin.ulabel (name) VALUES ('hepatocytes')")
        .unwrap();
    let seen = notices.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|m| m.contains("similar record exists") && m.contains("'hepatocyte'")),
        "expected a did-you-mean notice naming 'hepatocyte', got {seen:?}"
    );

    let err = db
        .batch_execute("INSERT INTO lamin.ulabel (name) VALUES ('HEPATOCYTE')")
        .unwrap_err();
    let message = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(
        message.contains("already exists as the name of record"),
        "{message}"
    );
    let n: i64 = db
        .query_one("SELECT count(*) FROM lamin.ulabel", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "the refused insert left nothing behind");
}

/// Index entries of lamin.search_term fetched so far in this transaction
/// (pg_stat_xact_*: the current transaction's counters, exact, not timing).
fn search_term_fetches(db: &mut impl postgres::GenericClient) -> i64 {
    db.query_one(
        "SELECT coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_all_tables WHERE relid = 'lamin.search_term'::regclass",
        &[],
    )
    .unwrap()
    .get(0)
}

/// Ten statements of 1,000 labels in one transaction (LaminDB's bulk load), on
/// an instance whose search index is dominated by other registries (as with
/// the default ontologies) and whose statistics saw no label yet: the duplicate
/// guard's probe and the index triggers' term lookup must stay index probes
/// (O(log n) a label), never walk every term of lamin.ulabel (quadratic in the
/// load). Measured as the search-term rows fetched through indexes per
/// statement: 0 when probes go by name or record id with the registry (one
/// index each), ~9,000 a label for the tenth statement when they walk the
/// registry. Another registry's terms (the ontology below) share record ids
/// and must not be fetched either.
#[test]
fn bulk_label_loads_probe_the_index_per_label_whatever_the_statistics_say() {
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    db.batch_execute(
        "CREATE TABLE public.onto (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, uid text NOT NULL, name text NOT NULL, synonyms text[]);
         INSERT INTO public.onto (uid, name, synonyms)
         SELECT 'o' || g, 'ontology term ' || g, ARRAY['onto syn ' || g] FROM generate_series(1, 20000) g;
         SELECT lamin.make_searchable('public.onto', 'name', 'synonyms', guard => false);
         ANALYZE lamin.search_term;",
    )
    .unwrap();

    let load = |db: &mut postgres::Client, tag: &str, statements: usize| -> Vec<i64> {
        let mut tx = db.transaction().unwrap();
        let mut per_statement = Vec::new();
        for s in 0..statements {
            let before = search_term_fetches(&mut tx);
            tx.execute(
                "INSERT INTO lamin.ulabel (name) SELECT $1 || ' label ' || $2::int || '-' || g FROM generate_series(1, 1000) g",
                &[&tag, &(s as i32)],
            )
            .unwrap();
            let fetched = search_term_fetches(&mut tx) - before;
            // None is needed (a new label has no terms yet and clashes with
            // nothing); at most 1 a label is allowed. A probe walking the
            // registry fetches one per earlier label (checked here: that walk
            // takes minutes).
            assert!(
                fetched <= 1_000,
                "{tag}: statement {} of 1,000 new labels fetched {fetched} search terms through indexes \
                 after {per_statement:?}",
                s + 1
            );
            per_statement.push(fetched);
        }
        tx.commit().unwrap();
        per_statement
    };
    let fetched = load(&mut db, "bulk", 10);
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM lamin.search_term WHERE registry = 'lamin.ulabel'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 10_000, "every label indexed");
    assert_eq!(fetched.len(), 10);

    // A registry that already holds many labels, statistics up to date.
    db.batch_execute("ANALYZE lamin.search_term").unwrap();
    load(&mut db, "more", 2);
    // The guard still refuses duplicates of labels loaded in bulk, in any case.
    let err = db
        .batch_execute("INSERT INTO lamin.ulabel (name) VALUES ('BULK label 3-77')")
        .unwrap_err();
    assert!(
        lamin_e2e::db_message(&err).contains("already exists as the name of record"),
        "{}",
        lamin_e2e::db_message(&err)
    );
}

/// make_searchable replaces its triggers without a word: no "trigger … does
/// not exist, skipping" NOTICE for the ones a new table does not have yet.
#[test]
fn make_searchable_says_nothing_when_it_succeeds() {
    let cluster = Cluster::start();
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&notices);
    let mut config: postgres::Config = cluster.url().parse().unwrap();
    config.notice_callback(move |n| sink.lock().unwrap().push(n.message().to_string()));
    let mut db = config.connect(postgres::NoTls).unwrap();
    db.batch_execute(
        "CREATE TABLE public.sample (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, uid text NOT NULL, name text);
         INSERT INTO public.sample (uid, name) VALUES ('s1', 'liver biopsy')",
    )
    .unwrap();
    for (what, sql) in [
        (
            "a new table",
            "SELECT lamin.make_searchable('public.sample')",
        ),
        (
            "again (its triggers exist)",
            "SELECT lamin.make_searchable('public.sample')",
        ),
        (
            "again without the guard",
            "SELECT lamin.make_searchable('public.sample', guard => false)",
        ),
        (
            "again with the guard",
            "SELECT lamin.make_searchable('public.sample')",
        ),
    ] {
        db.batch_execute(sql).unwrap();
        let seen = std::mem::take(&mut *notices.lock().unwrap());
        assert!(
            seen.is_empty(),
            "make_searchable on {what} raised notices: {seen:?}"
        );
    }
    let triggers: Vec<String> = db
        .query(
            "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'public.sample'::regclass ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        triggers,
        [
            "search_a_guard_insert",
            "search_a_guard_update",
            "search_b_terms_delete",
            "search_b_terms_insert",
            "search_b_terms_update"
        ]
    );
    let found: String = db
        .query_one(
            "SELECT name FROM lamin.search('liver', 'public.sample')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(found, "liver biopsy");
}

#[test]
fn writers_that_bring_the_same_new_word_do_not_wait_for_each_other() {
    // A unique key on the spelling vocabulary made the second writer wait
    // until the first transaction ended (mouse genes waited 90 s for
    // NCBITaxon's import): its insert of the word had to know whether the
    // other's committed.
    let cluster = Cluster::start();
    let mut first = cluster.connect();
    let mut second = cluster.connect();
    // The user's row exists (its first insert, once per user, is another
    // unique key that a second session of the same new user waits on).
    first
        .batch_execute("SELECT lamin.current_user_id()")
        .unwrap();
    let mut open = first.transaction().unwrap();
    open.batch_execute("INSERT INTO lamin.ulabel (name) VALUES ('qqzzvocab first')")
        .unwrap();
    second
        .batch_execute(
            "SET lock_timeout = '5s';
             INSERT INTO lamin.ulabel (name) VALUES ('qqzzvocab second')",
        )
        .expect("the second writer goes on while the first transaction is open");
    open.commit().unwrap();
    // Both labels are found, by the shared word and by a misspelling of it
    // (spelling correction reads the vocabulary, where the word may now be twice).
    for query in ["qqzzvocab", "qqzzvocap"] {
        let names: Vec<String> = second
            .query(
                "SELECT name FROM lamin.search($1, 'lamin.ulabel') ORDER BY name",
                &[&query],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            names,
            ["qqzzvocab first", "qqzzvocab second"],
            "search {query:?}"
        );
    }
}
