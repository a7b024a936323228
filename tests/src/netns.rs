//! Hosts of their own on this machine: Linux network namespaces, each with an
//! address on a bridge that this network creates, for tests of sidecars on
//! several hosts. The servers of a test (Postgres, the S3 server) listen on
//! the bridge's address (`gateway`); nothing is routed beyond the bridge, so
//! nothing leaves the machine. Removed when dropped. Needs root (CI runs as
//! root): through sudo the programs would lose the environment the tests
//! give them, and a kill would reach sudo instead of the program.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::system::is_root;

/// One namespace: a host with its own network stack and address.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub addr: String,
}

impl Host {
    /// A command that runs inside this host's namespace (`ip netns exec`
    /// execs the program itself: killing the child kills the program).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

pub struct Network {
    bridge: String,
    /// The bridge's address: where the hosts reach the root namespace's servers.
    pub gateway: String,
    /// The hosts' subnet, for pg_hba.conf.
    pub subnet: String,
    pub hosts: Vec<Host>,
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

static NETWORKS: AtomicU32 = AtomicU32::new(0);

impl Network {
    /// A bridge and `hosts` namespaces attached to it.
    pub fn create(hosts: usize) -> Network {
        assert!(
            is_root(),
            "network namespaces need root: run the tests as root (as CI does)"
        );
        // Names of this process's own (fixed width: no two runs share one),
        // so that tests running at once do not collide, and a subnet that
        // no interface of this machine routes yet.
        let n = NETWORKS.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{:05}{:02}", std::process::id() % 100_000, n % 100);
        let routes = ip(&["-4", "route", "show"]);
        let octet = (0..200)
            .map(|k| 20 + (std::process::id() * 7 + n * 13 + k) % 200)
            .find(|o| !routes.contains(&format!("10.231.{o}.")))
            .expect("a free 10.231.x.0/24 subnet");
        let bridge = format!("lbr{tag}");
        let gateway = format!("10.231.{octet}.1");
        let subnet = format!("10.231.{octet}.0/24");
        ip(&["link", "add", &bridge, "type", "bridge"]);
        let mut network = Network {
            bridge: bridge.clone(),
            gateway: gateway.clone(),
            subnet,
            hosts: Vec::new(),
        };
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        for i in 0..hosts {
            let name = format!("lamin-{tag}-{i}");
            let (outer, inner) = (format!("lv{tag}{i}o"), format!("lv{tag}{i}i"));
            let addr = format!("10.231.{octet}.{}", 10 + i);
            ip(&["netns", "add", &name]);
            network.hosts.push(Host {
                name: name.clone(),
                addr: addr.clone(),
            });
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ]);
            ip(&["link", "set", &outer, "master", &bridge]);
            ip(&["link", "set", &outer, "up"]);
            ip(&["link", "set", &inner, "netns", &name]);
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                &inner,
            ]);
            ip(&["-n", &name, "link", "set", &inner, "up"]);
            ip(&["-n", &name, "link", "set", "lo", "up"]);
        }
        network
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and so the pair.
        for host in &self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &host.name])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}
