//! A throw-away Postgres cluster on a random port in a temporary folder.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::system::{free_port, give_to_pg_user, pg_command, random_password};

pub struct Cluster {
    dir: tempfile::TempDir,
    pub port: u16,
    /// listen_addresses: 127.0.0.1, and a network's gateway for a cluster
    /// that hosts of a `Network` reach.
    listen: String,
    pub user: String,
    pub password: String,
    pub dbname: String,
}

impl Cluster {
    /// initdb, start, and create database `lamin_test` with the extension.
    pub fn start() -> Cluster {
        Self::start_with("")
    }

    /// Like start, with the extension installed at an earlier release
    /// (`CREATE EXTENSION lamin VERSION …`, from its frozen script).
    pub fn start_at(version: &str) -> Cluster {
        Self::start_full(
            "",
            &format!("CREATE EXTENSION lamin VERSION '{version}' CASCADE"),
        )
    }

    /// Like start, with the memory and WAL settings of the local instance
    /// (scripts/lib.sh cluster_start), for benchmarks of bulk loads.
    pub fn start_tuned() -> Cluster {
        Self::start_with(
            "shared_buffers = '512MB'\nmax_wal_size = '4GB'\nmaintenance_work_mem = '256MB'\n",
        )
    }

    fn start_with(settings: &str) -> Cluster {
        Self::start_full(settings, "CREATE EXTENSION lamin CASCADE")
    }

    /// Like start, listening also on `gateway` (a `Network`'s bridge) and
    /// letting the hosts of `subnet` in (password, and replication).
    pub fn start_reachable(gateway: &str, subnet: &str) -> Cluster {
        Self::start_at_addresses(
            "",
            "CREATE EXTENSION lamin CASCADE",
            &format!("127.0.0.1,{gateway}"),
            &format!(
                "host all all {subnet} scram-sha-256\nhost replication all {subnet} scram-sha-256\n"
            ),
        )
    }

    fn start_full(settings: &str, create_extension: &str) -> Cluster {
        Self::start_at_addresses(settings, create_extension, "127.0.0.1", "")
    }

    /// A node of a cluster of servers (Citus): `settings` in
    /// postgresql.conf, `setup` run in the database, and the superuser's
    /// password shared with the other nodes, which log in to each other.
    pub fn start_node(settings: &str, setup: &str, password: &str) -> Cluster {
        Self::start_configured(settings, setup, "127.0.0.1", "", password.to_string())
    }

    fn start_at_addresses(
        settings: &str,
        create_extension: &str,
        listen: &str,
        hba: &str,
    ) -> Cluster {
        Self::start_configured(settings, create_extension, listen, hba, random_password())
    }

    fn start_configured(
        settings: &str,
        create_extension: &str,
        listen: &str,
        hba: &str,
        password: String,
    ) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("lamin-e2e-")
            .tempdir()
            .expect("create temp dir");
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password).expect("write pwfile");
        give_to_pg_user(dir.path());
        let cluster = Cluster {
            port: free_port(),
            listen: listen.to_string(),
            user: "lamin".into(),
            password,
            dbname: "lamin_test".into(),
            dir,
        };
        let out = pg_command("initdb")
            .arg("-D")
            .arg(cluster.data_dir())
            .args([
                "-U",
                &cluster.user,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        check("initdb", &out);
        std::fs::remove_file(&pwfile).ok();
        for (file, lines) in [("postgresql.conf", settings), ("pg_hba.conf", hba)] {
            if !lines.is_empty() {
                use std::io::Write;
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(cluster.data_dir().join(file))
                    .and_then(|mut f| f.write_all(lines.as_bytes()))
                    .unwrap_or_else(|e| panic!("append to {file}: {e}"));
            }
        }
        cluster.pg_ctl_start();
        let mut admin = cluster.connect_to("postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE {}", cluster.dbname))
            .expect("create database");
        cluster
            .connect()
            .batch_execute(create_extension)
            .unwrap_or_else(|e| panic!("{create_extension}: {}", crate::db_message(&e)));
        cluster
    }

    /// A hot standby of this cluster, as an operator makes one: a base
    /// backup with `pg_basebackup -R` (streaming replication as the
    /// superuser over 127.0.0.1, which initdb's pg_hba.conf allows), started
    /// on a port of its own. It replays everything this cluster writes;
    /// `wait_for_replay` waits until it has.
    pub fn start_standby(&self) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("lamin-e2e-standby-")
            .tempdir()
            .expect("create temp dir");
        give_to_pg_user(dir.path());
        let standby = Cluster {
            port: free_port(),
            listen: self.listen.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            dbname: self.dbname.clone(),
            dir,
        };
        let out = pg_command("pg_basebackup")
            .env("PGPASSWORD", &self.password)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                &self.user,
            ])
            .arg("-D")
            .arg(standby.data_dir())
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"])
            .output()
            .expect("run pg_basebackup");
        check("pg_basebackup", &out);
        standby.pg_ctl_start();
        standby
    }

    /// Wait (at most 60 s) until `standby` has replayed all that this
    /// cluster had written when this was called.
    pub fn wait_for_replay(&self, standby: &Cluster) {
        let target: String = self
            .connect_to("postgres")
            .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
            .expect("read the primary's WAL position")
            .get(0);
        let mut replica = standby.connect_to("postgres");
        crate::wait_until(
            "the standby to replay the primary's WAL",
            std::time::Duration::from_secs(60),
            std::time::Duration::from_millis(20),
            || {
                replica
                    .query_one(
                        "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
                        &[&target],
                    )
                    .expect("read the standby's replay position")
                    .get::<_, bool>(0)
            },
        );
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("pgdata")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        self.url_for(&self.dbname)
    }

    /// The URL of this cluster's database for another login role.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!(
            "postgresql://{user}:{password}@127.0.0.1:{}/{}",
            self.port, self.dbname
        )
    }

    fn url_for(&self, dbname: &str) -> String {
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/{}",
            self.user, self.password, self.port, dbname
        )
    }

    pub fn connect(&self) -> postgres::Client {
        self.connect_to(&self.dbname)
    }

    /// Connect to another database of this cluster.
    pub fn connect_to(&self, dbname: &str) -> postgres::Client {
        postgres::Client::connect(&self.url_for(dbname), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to test cluster on port {}: {e}", self.port))
    }

    /// Run a SQL file with psql (ON_ERROR_STOP, one transaction per
    /// statement) against a database of this cluster; panics with its output.
    pub fn psql_file(&self, dbname: &str, file: &Path) -> Output {
        let out = self
            .client_command("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dbname, "-f"])
            .arg(file)
            .output()
            .expect("run psql");
        check(&format!("psql -f {}", file.display()), &out);
        out
    }

    /// `pg_dump -Fc` of the test database restored with `pg_restore` into a new
    /// database `into` of this cluster, as a user would back up and restore.
    pub fn dump_and_restore(&self, into: &str) {
        let dump = self.dir().join(format!("{}.dump", self.dbname));
        let out = self
            .client_command("pg_dump")
            .args(["-Fc", "-d", &self.dbname, "-f"])
            .arg(&dump)
            .output()
            .expect("run pg_dump");
        check("pg_dump", &out);
        self.create_database(into);
        let out = self
            .client_command("pg_restore")
            .args(["--exit-on-error", "-d", into])
            .arg(&dump)
            .output()
            .expect("run pg_restore");
        check("pg_restore", &out);
    }

    /// Create an empty database (no extension).
    pub fn create_database(&self, name: &str) {
        self.connect_to("postgres")
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("create database");
    }

    /// A Postgres client program (pg_dump, pg_restore, psql) preset to reach this
    /// cluster; clients may run as any OS user.
    pub fn client_command(&self, program: &str) -> std::process::Command {
        self.command(crate::system::pg_bindir().join(program))
    }

    /// Any program, with the libpq environment (PGHOST, PGPORT, PGUSER,
    /// PGPASSWORD) of this cluster: pg_prove, the lamin CLI.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGPASSWORD", &self.password);
        cmd
    }

    fn pg_ctl_start(&self) {
        let out = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .arg("-o")
            .arg(format!(
                "-p {} -c listen_addresses={} -c unix_socket_directories=''",
                self.port, self.listen
            ))
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("run pg_ctl start");
        check("pg_ctl start", &out);
    }

    fn pg_ctl_stop(&self, mode: &str) -> Output {
        pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", "60", "stop"])
            .output()
            .expect("run pg_ctl stop")
    }

    /// Stop the server at once, as a crash or a power cut would (its data
    /// stays, and so does this handle).
    pub fn stop_now(&self) {
        check("pg_ctl stop -m immediate", &self.pg_ctl_stop("immediate"));
    }

    /// Promote a standby to a primary (`pg_ctl promote`, waiting until it is).
    pub fn promote(&self) {
        let out = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60", "promote"])
            .output()
            .expect("run pg_ctl promote");
        check("pg_ctl promote", &out);
    }

    /// Stop the server (fast shutdown) and start it again on the same port.
    pub fn restart(&self) {
        check("pg_ctl stop", &self.pg_ctl_stop("fast"));
        self.pg_ctl_start();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Immediate: the data is thrown away anyway.
        let _ = self.pg_ctl_stop("immediate");
    }
}

/// Panic with the program's output unless it succeeded.
pub fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
