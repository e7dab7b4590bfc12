//! A small LAN of network namespaces on a bridge, for tests that need real partitions: each
//! namespace has one address on the bridge's subnet; cutting a namespace's link isolates it
//! from the others (and from the test, which still reaches it with `ip netns exec`).
//!
//! ```text
//!  root ns: bridge 10.X.Y.254 ── veth ── ns-1 (10.X.Y.1)
//!                             ├─ veth ── ns-2 (10.X.Y.2)
//!                             └─ veth ── ns-3 (10.X.Y.3)
//! ```

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{Context, bail};

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("failed to run ip")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Namespaces on a bridge. Deleted on drop.
#[derive(Debug)]
pub struct Lan {
    id: u32,
    subnet: [u8; 2],
    size: usize,
}

impl Lan {
    /// Creates a bridge and `size` namespaces on it (needs root).
    pub fn create(size: usize) -> anyhow::Result<Lan> {
        let id = std::process::id() % 10_000;
        let subnet = [(100 + id % 100) as u8, (id / 100 % 250) as u8];
        let lan = Lan { id, subnet, size };
        // Leftovers of an earlier run of this pid would make creation fail.
        lan.remove();
        let bridge = lan.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["link", "set", &bridge, "up"])?;
        let gateway = format!("{}/24", lan.addr(254));
        ip(&["addr", "add", &gateway, "dev", &bridge])?;
        for i in 0..size {
            let (ns, host, inner) = (lan.netns(i), lan.host_veth(i), lan.inner_veth(i));
            ip(&["netns", "add", &ns])?;
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &host, "master", &bridge])?;
            ip(&["link", "set", &host, "up"])?;
            let addr = format!("{}/24", lan.ip(i));
            ip(&[
                "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &inner,
            ])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", &inner, "up"])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
        }
        Ok(lan)
    }

    fn addr(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet[0], self.subnet[1], host)
    }

    fn bridge(&self) -> String {
        format!("cvb{}", self.id)
    }

    fn host_veth(&self, i: usize) -> String {
        format!("cvh{}x{i}", self.id)
    }

    fn inner_veth(&self, i: usize) -> String {
        format!("cvn{}x{i}", self.id)
    }

    /// Name of the `i`-th namespace.
    pub fn netns(&self, i: usize) -> String {
        format!("caravan-e2e-{}-{i}", self.id)
    }

    /// Address of the `i`-th namespace.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        self.addr(i as u8 + 1)
    }

    /// Cuts the `i`-th namespace off the LAN.
    pub fn cut(&self, i: usize) -> anyhow::Result<()> {
        ip(&["link", "set", &self.host_veth(i), "down"])
    }

    /// Connects the `i`-th namespace again.
    pub fn heal(&self, i: usize) -> anyhow::Result<()> {
        ip(&["link", "set", &self.host_veth(i), "up"])
    }

    fn remove(&self) {
        for i in 0..self.size {
            let _ = ip(&["netns", "del", &self.netns(i)]);
            let _ = ip(&["link", "del", &self.host_veth(i)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        self.remove();
    }
}
