//! A Citus cluster on loopback (issue 21): a coordinator and workers, each a
//! throw-away Postgres with Citus preloaded, sharing the superuser's
//! password (the nodes log in to each other with it, from
//! `pg_dist_authinfo`). Citus is built by `scripts/test citus`
//! (scripts/lib.sh install_citus).

use crate::cluster::Cluster;
use crate::system::random_password;

pub struct CitusCluster {
    pub coordinator: Cluster,
    pub workers: Vec<Cluster>,
}

/// Every node's settings: Citus preloaded, room for its connections.
pub const SETTINGS: &str = "shared_preload_libraries = 'citus'\nmax_connections = 200\n";

impl CitusCluster {
    /// A coordinator with `workers` workers, `CREATE EXTENSION citus` on
    /// each and then `setup` on the coordinator (e.g. CREATE EXTENSION lamin,
    /// which Citus propagates to the workers).
    pub fn start(workers: usize, setup: &str) -> CitusCluster {
        Self::start_with(workers, "", setup)
    }

    /// Like start, with `settings` added to every node's postgresql.conf.
    pub fn start_with(workers: usize, settings: &str, setup: &str) -> CitusCluster {
        let password = random_password();
        let settings = format!("{SETTINGS}{settings}");
        let workers: Vec<Cluster> = (0..workers)
            .map(|_| Cluster::start_node(&settings, "CREATE EXTENSION citus", &password))
            .collect();
        let coordinator = Cluster::start_node(&settings, "CREATE EXTENSION citus", &password);
        let mut db = coordinator.connect();
        db.execute(
            "INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, $1, $2)",
            &[&coordinator.user, &format!("password={password}")],
        )
        .expect("store the nodes' password in pg_dist_authinfo");
        db.execute(
            "SELECT citus_set_coordinator_host('127.0.0.1', $1)",
            &[&(coordinator.port as i32)],
        )
        .expect("citus_set_coordinator_host");
        for worker in &workers {
            db.execute(
                "SELECT citus_add_node('127.0.0.1', $1)",
                &[&(worker.port as i32)],
            )
            .unwrap_or_else(|e| panic!("citus_add_node: {}", crate::db_message(&e)));
        }
        if !setup.is_empty() {
            db.batch_execute(setup)
                .unwrap_or_else(|e| panic!("{setup}: {}", crate::db_message(&e)));
        }
        CitusCluster {
            coordinator,
            workers,
        }
    }
}
