//! Ontology and gene import throughput and client memory, through the
//! release `lamin import` CLI into a throw-away cluster (tuned like the local
//! instance), with a baseline beside each: the same file decoded whole and
//! COPYed as plain text into a table with no index, trigger or search index
//! (the floor for "getting the terms into Postgres"). Then hierarchy query
//! timings on the imported UBERON and NCBITaxon.
//!
//!     scripts/bench import      (needs scripts/import-defaults --fetch; BENCH_SOURCES=cl,uberon,mondo,ncbitaxon,human,mouse to pick)

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use lamin_e2e::{lamin_bin, real_source, Cluster};

/// Run a child and return (seconds, its peak RSS in MB, stdout).
fn run_measured(mut cmd: Command) -> (f64, f64, String) {
    let start = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 fills the rusage we own; the child is ours and unwaited.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    let secs = start.elapsed().as_secs_f64();
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    child.stdout.unwrap().read_to_string(&mut out).ok();
    child.stderr.unwrap().read_to_string(&mut err).ok();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "import failed: {err}"
    );
    (secs, usage.ru_maxrss as f64 / 1024.0, out)
}

/// Baseline: decode the whole file in memory, COPY id/name/synonyms as text.
fn baseline_ontology(db: &mut postgres::Client, file: &PathBuf) -> (f64, usize) {
    let start = Instant::now();
    let raw = zstd::decode_all(std::fs::File::open(file).unwrap()).unwrap();
    let terms: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&raw).unwrap();
    db.batch_execute("DROP TABLE IF EXISTS plain_term; CREATE TABLE plain_term (ontology_id text, name text, synonyms text)")
        .unwrap();
    let mut w = db.copy_in("COPY plain_term FROM STDIN").unwrap();
    let clean = |s: &str| s.replace(['\t', '\n', '\\', '\r'], " ");
    for (id, t) in &terms {
        let name = t["label"].as_str().unwrap_or("");
        let syn: Vec<String> = t["synonyms"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str()).map(clean).collect())
            .unwrap_or_default();
        writeln!(w, "{}\t{}\t{}", clean(id), clean(name), syn.join("|")).unwrap();
    }
    w.finish().unwrap();
    (start.elapsed().as_secs_f64(), terms.len())
}

fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let start = Instant::now();
    let v = f();
    (start.elapsed().as_secs_f64() * 1000.0, v)
}

fn main() {
    let wanted = std::env::var("BENCH_SOURCES")
        .unwrap_or_else(|_| "cl,uberon,mondo,ncbitaxon,human,mouse".into());
    let wanted: Vec<&str> = wanted.split(',').collect();
    let cluster = Cluster::start_tuned();
    let mut db = cluster.connect();
    let version: String = db.query_one("SELECT lamin.version()", &[]).unwrap().get(0);
    println!("lamin {version}; release `lamin import` into a fresh cluster (shared_buffers 512MB, max_wal_size 4GB), 1 client\n");
    println!(
        "{:<52} {:>10} {:>9} {:>12} {:>10}",
        "import", "records", "seconds", "records/s", "peak MB"
    );

    let ontologies = [
        ("cl", "cell_type", "CL-ontology-v2026-03-26.json.zst"),
        ("uberon", "tissue", "UBERON-ontology-v2026-04-01.json.zst"),
        ("mondo", "disease", "MONDO-ontology-v2026-05-05.json.zst"),
        (
            "ncbitaxon",
            "organism",
            "NCBITaxon-ontology-v2026-05-13.json.zst",
        ),
    ];
    // Every import first, baselines after: a child's peak RSS counts the pages
    // it shares with this process until exec, and the baselines grow it.
    let mut rows: Vec<(String, i64, f64, f64, Option<PathBuf>)> = Vec::new();
    for (name, entity, file) in ontologies {
        if !wanted.contains(&name) {
            continue;
        }
        let path = real_source(file);
        let mut cmd = Command::new(lamin_bin());
        cmd.args(["import", "ontology", "--quiet", "--entity", entity])
            .arg(&path)
            .env("DATABASE_URL", cluster.url());
        let (secs, rss, _) = run_measured(cmd);
        let n: i64 = db
            .query_one(&format!("SELECT count(*) FROM bionty.{entity}"), &[])
            .unwrap()
            .get(0);
        rows.push((
            format!("{name} → bionty.{entity}"),
            n,
            secs,
            rss,
            Some(path),
        ));
    }
    // Genes of each organism (records counted per organism: the table holds both).
    let organisms = [
        (
            "human",
            "gencode+hgnc",
            "v48",
            "genes_homo_sapiens.csv.gz",
            "hgnc_entries.tsv",
            "human genes (GENCODE v48 + HGNC) → bionty.gene",
        ),
        (
            "mouse",
            "gencode+mgi",
            "M37",
            "genes_mus_musculus.csv.gz",
            "mgi_entries.tsv",
            "mouse genes (GENCODE M37 + MGI) → bionty.gene",
        ),
    ];
    for (organism, source, version, genes, names, label) in organisms {
        if !wanted.contains(&organism) {
            continue;
        }
        let mut cmd = Command::new(lamin_bin());
        cmd.args([
            "import",
            "genes",
            "--organism",
            organism,
            "--source",
            source,
            "--version",
            version,
        ])
        .arg(real_source(genes))
        .arg(real_source(names))
        .env("DATABASE_URL", cluster.url());
        let (secs, rss, _) = run_measured(cmd);
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM bionty.gene WHERE organism = $1",
                &[&organism],
            )
            .unwrap()
            .get(0);
        rows.push((label.into(), n, secs, rss, None));
    }
    for (label, n, secs, rss, path) in rows {
        println!(
            "{label:<52} {n:>10} {secs:>9.1} {:>12.0} {rss:>10.0}",
            n as f64 / secs
        );
        if let Some(path) = path {
            let (bsecs, bn) = baseline_ontology(&mut db, &path);
            println!(
                "{:<52} {bn:>10} {bsecs:>9.1} {:>12.0} {:>10}   (lamin import = {:.1}× the baseline's time)",
                "  baseline: decode whole + plain text COPY",
                bn as f64 / bsecs,
                "",
                secs / bsecs
            );
        }
    }

    println!(
        "\n{:<60} {:>10} {:>10}",
        "hierarchy query (warm, median of 5)", "rows", "ms"
    );
    let queries = [
        (
            "uberon",
            "descendants of UBERON:0000061 (anatomical structure)",
            "SELECT count(*) FROM bionty.descendants('UBERON:0000061')",
        ),
        (
            "uberon",
            "ancestors of UBERON:0002048 (lung)",
            "SELECT count(*) FROM bionty.ancestors('UBERON:0002048')",
        ),
        (
            "cl",
            "descendants of CL:0000084 (T cell)",
            "SELECT count(*) FROM bionty.descendants('CL:0000084')",
        ),
        (
            "ncbitaxon",
            "descendants of NCBITaxon:7742 (Vertebrata)",
            "SELECT count(*) FROM bionty.descendants('NCBITaxon:7742')",
        ),
        (
            "ncbitaxon",
            "descendants of NCBITaxon:40674 (Mammalia)",
            "SELECT count(*) FROM bionty.descendants('NCBITaxon:40674')",
        ),
        (
            "ncbitaxon",
            "ancestors of NCBITaxon:9606 (Homo sapiens)",
            "SELECT count(*) FROM bionty.ancestors('NCBITaxon:9606')",
        ),
        (
            "cl",
            "search 'CD8' under CL:0000084",
            "SELECT count(*) FROM lamin.search('CD8', 'bionty.cell_type', under => 'CL:0000084')",
        ),
    ];
    for (source, label, sql) in queries {
        if !wanted.contains(&source) {
            continue;
        }
        let mut times = Vec::new();
        let mut rows = 0i64;
        for _ in 0..6 {
            let (ms, n) = timed(|| db.query_one(sql, &[]).map(|r| r.get::<_, i64>(0)));
            match n {
                Ok(n) => rows = n,
                Err(e) => {
                    println!(
                        "{label:<60} (not run: {})",
                        e.as_db_error().map(|d| d.message()).unwrap_or("error")
                    );
                    break;
                }
            }
            times.push(ms);
        }
        if times.len() < 6 {
            continue;
        }
        times.remove(0);
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("{label:<60} {rows:>10} {:>10.1}", times[2]);
    }
}
