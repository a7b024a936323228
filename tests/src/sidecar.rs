//! The sidecar daemon as a child process, its log captured to a file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::netns::Host;
use crate::system::lamin_bin;

pub struct Sidecar {
    child: Child,
    pub log_path: PathBuf,
}

impl Sidecar {
    /// Start `lamin daemon -v` against the cluster's database.
    pub fn start(cluster: &Cluster, name: &str) -> Sidecar {
        Self::start_with(cluster, name, &[])
    }

    /// Start it with extra daemon options (e.g. `--lease-s 3`).
    pub fn start_with(cluster: &Cluster, name: &str, extra: &[&str]) -> Sidecar {
        Self::start_env(cluster, name, extra, &[])
    }

    /// Start it as users run it, at the default log level (info), for
    /// benchmarks: the tests' debug logging also logs every statement of the driver.
    pub fn start_as_users_do(cluster: &Cluster, name: &str, extra: &[&str]) -> Sidecar {
        Self::start_env(cluster, name, extra, &[("RUST_LOG".into(), "info".into())])
    }

    /// Start it with extra options and environment (storage credentials).
    pub fn start_env(
        cluster: &Cluster,
        name: &str,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Sidecar {
        Self::start_as(cluster, &cluster.url(), name, extra, env)
    }

    /// Start it logged in with `url` (e.g. as the lamin_sidecar role).
    pub fn start_as(
        cluster: &Cluster,
        url: &str,
        name: &str,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Sidecar {
        let log_path = cluster.dir().join(format!("sidecar-{name}.log"));
        Self::spawn(Command::new(lamin_bin()), log_path, url, extra, env)
    }

    /// Start it on a host of a `Network` (its own network namespace),
    /// with `url` (which reaches the servers at the network's gateway); its
    /// log goes into `log_dir`.
    pub fn start_on_host(
        host: &Host,
        log_dir: &Path,
        url: &str,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Sidecar {
        let log_path = log_dir.join(format!("sidecar-{}.log", host.name));
        Self::spawn(host.command(lamin_bin()), log_path, url, extra, env)
    }

    fn spawn(
        mut command: Command,
        log_path: PathBuf,
        url: &str,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Sidecar {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("create sidecar log");
        // A fast sweep unless the test sets its own.
        let sweep: &[&str] = if extra.contains(&"--sweep-interval-s") {
            &[]
        } else {
            &["--sweep-interval-s", "1"]
        };
        let child = command
            .args(["-v", "daemon"])
            .args(sweep)
            .args(extra)
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn the sidecar");
        Sidecar { child, log_path }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Wait until the log contains `needle` at least `count` times.
    pub fn wait_for_log(&self, needle: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.matches(needle).count() >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sidecar log never showed {needle:?} {count} time(s) within {timeout:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the sidecar dies at once, mid-job.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send SIGTERM and wait for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.wait_exit(timeout, "SIGTERM")
    }

    /// Wait for the process to exit on its own (`after` names what should
    /// have made it, for the failure message).
    pub fn wait_exit(&mut self, timeout: Duration, after: &str) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for sidecar") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sidecar did not exit within {timeout:?} of {after}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
