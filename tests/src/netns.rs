//! Hosts of their own on this machine: Linux network namespaces, each with an
//! address on a bridge that this network creates, for tests of sidecars on
//! several hosts. The servers of a test (Postgres, the S3 server) listen on
//! the bridge's address (`gateway`); nothing is routed beyond the bridge, so
//! nothing leaves the machine. Removed when dropped. Needs root (or sudo -n).

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
    /// A command that runs inside this host's namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = privileged("ip");
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

/// `program` as root: directly when we are root, else through `sudo -n`.
fn privileged(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut cmd = Command::new("sudo");
        cmd.args(["-n", program]);
        cmd
    }
}

fn ip(args: &[&str]) {
    let out = privileged("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {} failed (network namespaces need root or sudo -n): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

static NETWORKS: AtomicU32 = AtomicU32::new(0);

impl Network {
    /// A bridge and `hosts` namespaces attached to it.
    pub fn create(hosts: usize) -> Network {
        // Names and a subnet of this process's own, so that tests running at
        // once (and a crashed earlier run's leftovers) do not collide.
        let n = NETWORKS.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{}", std::process::id() % 100_000, n);
        let octet = 20 + (std::process::id() * 7 + n * 13) % 200;
        let bridge = format!("lbr{tag}");
        let gateway = format!("10.231.{octet}.1");
        let subnet = format!("10.231.{octet}.0/24");
        // (A leftover of the same name from a killed run goes first.)
        let _ = privileged("ip").args(["link", "del", &bridge]).output();
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
            let _ = privileged("ip").args(["netns", "del", &name]).output();
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
            let _ = privileged("ip").args(["netns", "del", &host.name]).output();
        }
        let _ = privileged("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}
