//! Facts about the machine the tests run on.

use std::path::PathBuf;
use std::process::Command;

/// Postgres refuses to run as root; tests run its programs as this OS user then.
pub const UNPRIVILEGED_USER: &str = "postgres";

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Where `initdb`, `pg_ctl` and `postgres` live (Debian's layout for Postgres 15
/// unless `PG_BINDIR` says otherwise).
pub fn pg_bindir() -> PathBuf {
    std::env::var_os("PG_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// A command for a Postgres program, run as the unprivileged user when we are root.
pub fn pg_command(program: &str) -> Command {
    let path = pg_bindir().join(program);
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", UNPRIVILEGED_USER, "--"]).arg(path);
        cmd
    } else {
        Command::new(path)
    }
}

/// Hand a path to the unprivileged user (only needed when we are root).
pub fn give_to_pg_user(path: &std::path::Path) {
    if !is_root() {
        return;
    }
    let status = Command::new("chown")
        .args(["-R", UNPRIVILEGED_USER])
        .arg(path)
        .status()
        .expect("run chown");
    assert!(
        status.success(),
        "chown {} to {UNPRIVILEGED_USER} failed",
        path.display()
    );
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// Wait up to 30 s until something listens on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, what: &str) {
    wait_for_address("127.0.0.1", port, what)
}

/// Wait up to 30 s until something listens on `host`:`port`.
pub fn wait_for_address(host: &str, port: u16, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect((host, port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not listen on {port} within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A random password for a test cluster.
pub fn random_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 24)
}

/// The sidecar binary: `LAMIN_BIN`, else the workspace's debug build.
pub fn lamin_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LAMIN_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/lamin");
    assert!(
        bin.exists(),
        "sidecar binary {} not found: run `cargo build -p lamin-sidecar` or set LAMIN_BIN",
        bin.display()
    );
    bin
}
