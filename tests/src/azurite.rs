//! A real Azure Blob Storage server on loopback for tests: Azurite (npm
//! `azurite`), started on a free port with its data in a temporary folder,
//! killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use base64::Engine;

use crate::system::free_port;

/// Azurite's well-known development account.
pub const ACCOUNT: &str = "devstoreaccount1";
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    child: Child,
    pub port: u16,
    _data: tempfile::TempDir,
}

impl Azurite {
    /// `LAMIN_AZURITE` (scripts/test installs it in target/tools), else `azurite-blob` on PATH.
    pub fn start() -> Azurite {
        let bin = std::env::var("LAMIN_AZURITE").unwrap_or_else(|_| "azurite-blob".into());
        let port = free_port();
        let data = tempfile::tempdir().unwrap();
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--location", data.path().to_str().unwrap()])
            .args(["--silent", "--skipApiVersionCheck"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} (set LAMIN_AZURITE; scripts/test installs it): {e}")
            });
        let server = Azurite {
            child,
            port,
            _data: data,
        };
        crate::system::wait_for_port(port, "azurite");
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Create a container: a PUT signed with the account's shared key
    /// (object_store has no container API).
    pub fn create_container(&self, name: &str) {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &b64.decode(ACCOUNT_KEY).unwrap());
        let signature = b64.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to azurite");
        write!(
            stream,
            "PUT /{ACCOUNT}/{name}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             x-ms-date: {date}\r\nx-ms-version: {version}\r\n\
             Authorization: SharedKey {ACCOUNT}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 201"),
            "create container {name}: {response}"
        );
    }

    /// The environment object_store reads to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_with_key(ACCOUNT_KEY)
    }

    /// The same with another account key (refused by the server). The
    /// endpoint is the account's path-style URL, as for any Azure-compatible
    /// server (no emulator mode, no process-wide settings).
    pub fn env_with_key(&self, key: &str) -> Vec<(String, String)> {
        vec![
            ("AZURE_STORAGE_ACCOUNT_NAME".into(), ACCOUNT.into()),
            ("AZURE_STORAGE_ACCOUNT_KEY".into(), key.into()),
            (
                "AZURE_STORAGE_ENDPOINT".into(),
                format!("{}/{ACCOUNT}", self.endpoint()),
            ),
            ("AZURE_ALLOW_HTTP".into(), "true".into()),
        ]
    }

    /// object_store for a container of this server.
    pub fn container(&self, name: &str) -> Box<dyn object_store::ObjectStore> {
        let url = url::Url::parse(&format!("az://{name}")).unwrap();
        object_store::parse_url_opts(
            &url,
            self.env()
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v)),
        )
        .unwrap()
        .0
    }

    pub fn put(&self, container: &str, key: &str, bytes: Vec<u8>) {
        crate::s3::put_object(self.container(container).as_ref(), key, bytes);
    }

    /// The keys under a prefix, sorted.
    pub fn keys(&self, container: &str, prefix: &str) -> Vec<String> {
        crate::s3::list_keys(self.container(container).as_ref(), prefix)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
