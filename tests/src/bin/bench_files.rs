//! Save and get throughput of a large file (default 1 GiB) through the
//! release `lamin save` / `lamin get`, to local storage and to an S3 server on
//! loopback (moto_server), with baselines beside them in the same run: `cp`
//! for local disk, and a plain object_store put/get of the same bytes (no
//! hashing, no registration) for S3.
//!
//!     scripts/bench files        (BENCH_FILE_MB, default 1024)

use std::process::Command;
use std::time::Instant;

use lamin_e2e::{lamin_bin, Cluster, S3Server};

fn timed(mut cmd: Command) -> f64 {
    let start = Instant::now();
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

fn lamin(cluster: &Cluster, env: &[(String, String)], args: &[&str]) -> Command {
    let mut c = Command::new(lamin_bin());
    c.args(args)
        .arg("--quiet")
        .env("DATABASE_URL", cluster.url());
    c.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    c
}

/// Flush dirty pages so one case's writes do not slow the next.
fn settle() {
    let _ = Command::new("sync").status();
}

fn row(label: &str, mb: f64, secs: f64, baseline: Option<f64>) {
    let ratio = baseline
        .map(|b| format!("{:.2}× the baseline's speed", b / secs))
        .unwrap_or_default();
    println!("{label:<52} {secs:>8.2} {:>9.0}  {ratio}", mb / secs);
}

fn main() {
    let mb: usize = std::env::var("BENCH_FILE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let work =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into())).unwrap();
    let file = work.path().join("big.bin");
    {
        // Incompressible bytes, written once.
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..mb {
            for b in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&block).unwrap();
        }
    }
    let size_mb = mb as f64 * 1.048576;
    let cluster = Cluster::start();
    let mut db = cluster.connect();
    let local_root = work.path().join("storage");
    db.execute(
        "SELECT lamin.add_storage($1)",
        &[&local_root.to_str().unwrap()],
    )
    .unwrap();
    let mut s3 = S3Server::start();
    s3.create_bucket("bench");
    db.execute("SELECT lamin.add_storage('s3://bench/data')", &[])
        .unwrap();
    let env = s3.env();
    println!("{mb} MiB file; release lamin CLI; sha256 of the full content on every save and get; 2 cores\n");
    println!("{:<52} {:>8} {:>9}", "case", "seconds", "MB/s");

    // Local disk. Every case starts with no dirty pages (`sync`), so earlier
    // writes do not throttle it. lamin save flushes the object before marking
    // it ready, so its fair baseline is cp followed by a flush of the copy;
    // lamin get does not flush, like plain cp.
    let cp = |to: &std::path::Path, flush: bool| {
        let mut c = Command::new("sh");
        let script = if flush {
            "cp \"$0\" \"$1\" && sync \"$1\""
        } else {
            "cp \"$0\" \"$1\""
        };
        c.arg("-c").arg(script).arg(&file).arg(to);
        c
    };
    let copy = work.path().join("cp.bin");
    settle();
    let cp_sync_secs = timed(cp(&copy, true));
    std::fs::remove_file(&copy).unwrap();
    settle();
    let cp_secs = timed(cp(&copy, false));
    std::fs::remove_file(&copy).unwrap();
    settle();
    let save_secs = timed(lamin(
        &cluster,
        &[],
        &["save", file.to_str().unwrap(), "--key", "bench/local.bin"],
    ));
    row(
        "lamin save → local storage (flushed)",
        size_mb,
        save_secs,
        Some(cp_sync_secs),
    );
    row(
        "  baseline: cp + sync of the copy",
        size_mb,
        cp_sync_secs,
        None,
    );
    let uid: String = db
        .query_one(
            "SELECT uid FROM lamin.artifact WHERE key = 'bench/local.bin'",
            &[],
        )
        .unwrap()
        .get(0);
    let back = work.path().join("back.bin");
    settle();
    let get_secs = timed(lamin(
        &cluster,
        &[],
        &["get", &uid, "--to", back.to_str().unwrap()],
    ));
    row(
        "lamin get ← local storage",
        size_mb,
        get_secs,
        Some(cp_secs),
    );
    row(
        "  baseline: cp (page cache, no flush)",
        size_mb,
        cp_secs,
        None,
    );
    std::fs::remove_file(&back).unwrap();
    settle();

    // S3 server on loopback.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (store, _) = object_store::parse_url_opts(
        &url::Url::parse("s3://bench/baseline").unwrap(),
        env.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
    )
    .unwrap();
    let put_secs = rt.block_on(async {
        use object_store::{ObjectStore, WriteMultipart};
        use tokio::io::AsyncReadExt;
        let start = Instant::now();
        let path = object_store::path::Path::from("baseline/big.bin");
        let mut w =
            WriteMultipart::new_with_chunk_size(store.put_multipart(&path).await.unwrap(), 8 << 20);
        let mut f = tokio::fs::File::open(&file).await.unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4).await.unwrap();
            w.write(&buf[..n]);
        }
        w.finish().await.unwrap();
        start.elapsed().as_secs_f64()
    });
    let get_base_secs = rt.block_on(async {
        use futures_util::StreamExt;
        use object_store::ObjectStore;
        use std::io::Write;
        let start = Instant::now();
        let path = object_store::path::Path::from("baseline/big.bin");
        let mut stream = store.get(&path).await.unwrap().into_stream();
        let mut out = std::fs::File::create(work.path().join("base.bin")).unwrap();
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk.unwrap()).unwrap();
        }
        start.elapsed().as_secs_f64()
    });
    settle();
    let s3_save = timed(lamin(
        &cluster,
        &env,
        &[
            "save",
            file.to_str().unwrap(),
            "--key",
            "bench/s3.bin",
            "--storage",
            "s3://bench/data",
        ],
    ));
    row(
        "lamin save → S3 (moto_server)",
        size_mb,
        s3_save,
        Some(put_secs),
    );
    row(
        "  baseline: object_store multipart put",
        size_mb,
        put_secs,
        None,
    );
    let uid: String = db
        .query_one(
            "SELECT uid FROM lamin.artifact WHERE key = 'bench/s3.bin'",
            &[],
        )
        .unwrap()
        .get(0);
    settle();
    let s3_get = timed(lamin(
        &cluster,
        &env,
        &["get", &uid, "--to", back.to_str().unwrap()],
    ));
    row(
        "lamin get ← S3 (moto_server)",
        size_mb,
        s3_get,
        Some(get_base_secs),
    );
    row("  baseline: object_store get", size_mb, get_base_secs, None);
    s3.stop();
}
