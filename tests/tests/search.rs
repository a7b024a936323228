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
