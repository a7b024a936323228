//! A real S3-speaking server on loopback for tests: moto_server (PyPI
//! `moto[server]`), started on a free port and killed when dropped; or, for
//! benchmarks reading big objects by ranges, s3s-fs (crates.io), which
//! serves an object's ranges from a file where moto copies the whole object
//! for each ranged GET (1 GB: 0.6 s a request).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use crate::system::free_port;

pub struct S3Server {
    child: Child,
    pub port: u16,
    /// The address it listens on (127.0.0.1, or a `Network`'s gateway).
    pub host: String,
    /// s3s-fs's folder (a bucket is a folder in it); None for moto.
    root: Option<tempfile::TempDir>,
}

impl S3Server {
    /// `LAMIN_MOTO_SERVER` (scripts/test installs it in target/tools), else `moto_server` on PATH.
    pub fn start() -> S3Server {
        Self::start_on("127.0.0.1")
    }

    /// Listening on `host` (a `Network`'s gateway, for sidecars on its hosts).
    pub fn start_on(host: &str) -> S3Server {
        let bin = std::env::var("LAMIN_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", host, "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} (set LAMIN_MOTO_SERVER; scripts/test installs it): {e}")
            });
        let server = S3Server {
            child,
            port,
            host: host.to_string(),
            root: None,
        };
        crate::system::wait_for_address(host, port, "moto_server");
        server
    }

    /// s3s-fs on 127.0.0.1 over a new folder: `LAMIN_S3S_FS` (scripts/bench
    /// installs it in target/tools), else `s3s-fs` on PATH. Same keys and
    /// environment as moto.
    pub fn start_fs() -> S3Server {
        let bin = std::env::var("LAMIN_S3S_FS").unwrap_or_else(|_| "s3s-fs".into());
        let root = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "testing", "--secret-key", "testing"])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} (set LAMIN_S3S_FS; scripts/bench installs it): {e}")
            });
        let server = S3Server {
            child,
            port,
            host: "127.0.0.1".into(),
            root: Some(root),
        };
        crate::system::wait_for_address("127.0.0.1", port, "s3s-fs");
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// Create a bucket (moto accepts an unsigned PUT; s3s-fs's buckets are
    /// its folders).
    pub fn create_bucket(&self, name: &str) {
        if let Some(root) = &self.root {
            std::fs::create_dir(root.path().join(name)).unwrap();
            return;
        }
        let mut stream =
            TcpStream::connect((self.host.as_str(), self.port)).expect("connect to moto");
        write!(
            stream,
            "PUT /{name} HTTP/1.1\r\nHost: {}:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.host, self.port
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "create bucket {name}: {response}"
        );
    }

    /// The environment object_store reads to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("AWS_ENDPOINT".into(), self.endpoint()),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
        ]
    }

    /// object_store for a bucket of this server (for tests to put, list and
    /// damage objects behind lamin's back).
    pub fn bucket(&self, name: &str) -> Box<dyn object_store::ObjectStore> {
        let url = url::Url::parse(&format!("s3://{name}")).unwrap();
        object_store::parse_url_opts(
            &url,
            self.env()
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v)),
        )
        .unwrap()
        .0
    }

    /// Write an object.
    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        put_object(self.bucket(bucket).as_ref(), key, bytes);
    }

    /// The keys under a prefix, sorted.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        list_keys(self.bucket(bucket).as_ref(), prefix)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Write an object, blocking (tests are synchronous).
pub(crate) fn put_object(store: &dyn object_store::ObjectStore, key: &str, bytes: Vec<u8>) {
    block_on(store.put(&key.into(), bytes.into())).unwrap();
}

/// The keys under a prefix, sorted.
pub(crate) fn list_keys(store: &dyn object_store::ObjectStore, prefix: &str) -> Vec<String> {
    use futures_util::TryStreamExt;
    let prefix = object_store::path::Path::from(prefix);
    let mut keys: Vec<String> = block_on(store.list(Some(&prefix)).try_collect::<Vec<_>>())
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    keys.sort();
    keys
}
