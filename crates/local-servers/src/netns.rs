//! A network namespace of the test's own, joined to this machine by a veth pair: a host with
//! an address of its own, for clients and servers that must not look like loopback (a client
//! nginx should see with its own address; a server containers on a Docker network can reach).
//! The namespace `NAME` holds `10.<block>.<index>.2/30`, the host side `10.<block>.<index>.1`,
//! its route to the networks it is given and nowhere else. The host forwards what comes from
//! the namespace to Docker's bridges only (an iptables rule of its own), so nothing leaves
//! this machine even while the network it routes to does not exist. Dropping it undoes all
//! of that. Needs root, iproute2 and iptables.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::Context;

/// The second octet of every test namespace's addresses: a /16 of its own that nothing else on
/// a test machine uses.
const BLOCK: u8 = 254;

pub struct Netns {
    pub name: String,
    /// The namespace's own address.
    pub address: Ipv4Addr,
    /// The host's end of the link.
    pub host_address: Ipv4Addr,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run("ip", args, "iproute2")
}

fn run(program: &str, args: &[&str], package: &str) -> anyhow::Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("run {program} (package {package})"))?;
    anyhow::ensure!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// The host's rule for what the namespace sends through it (`-I` to add it, `-D` to delete):
/// refused unless it goes out on one of Docker's bridges.
fn forward_rule<'a>(action: &'a str, host_end: &'a str) -> [&'a str; 10] {
    [
        "-w", action, "FORWARD", "-i", host_end, "!", "-o", "br-+", "-j", "REJECT",
    ]
}

/// Whether `route` is a private IPv4 network (a Docker network's kind) and not a default.
fn private_network(route: &str) -> bool {
    route.split_once('/').is_some_and(|(address, prefix)| {
        address
            .parse::<Ipv4Addr>()
            .is_ok_and(|address| address.is_private() && address.octets()[..2] != [10, BLOCK])
            && prefix
                .parse::<u8>()
                .is_ok_and(|prefix| (8..=32).contains(&prefix))
    })
}

impl Netns {
    /// Makes namespace `name` as host `index` (1 to 254) of the test block, routed through
    /// this machine to `routes` (CIDR ranges) only, replacing one left by an earlier run that
    /// died. Refuses when the block's addresses are already routed somewhere on this machine.
    pub fn create(name: &str, index: u8, routes: &[&str]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (1..=254).contains(&index) && name.len() <= 11,
            "a test namespace takes an index 1 to 254 and a name of at most 11 characters"
        );
        if let Some(route) = routes.iter().find(|route| !private_network(route)) {
            anyhow::bail!(
                "a test namespace routes only to private networks such as Docker's (172.16.0.0/12, \
                 192.168.0.0/16, 10.0.0.0/8 but 10.{BLOCK}/16) given as CIDR, not {route:?}"
            );
        }
        remove(name);
        let address = Ipv4Addr::new(10, BLOCK, index, 2);
        let routed = Command::new("ip")
            .args(["-4", "route", "show", "match", &address.to_string()])
            .output()
            .context("run ip (package iproute2)")?;
        let routed = String::from_utf8_lossy(&routed.stdout);
        anyhow::ensure!(
            routed.lines().all(|line| line.starts_with("default")),
            "10.{BLOCK}.0.0/16 is routed on this machine already ({}); the test namespaces need it to themselves",
            routed.trim()
        );
        let host_address = Ipv4Addr::new(10, BLOCK, index, 1);
        let (host_end, inner_end) = (format!("{name}-h"), format!("{name}-n"));
        ip(&["netns", "add", name])?;
        let netns = Self {
            name: name.to_owned(),
            address,
            host_address,
        };
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", &inner_end,
        ])?;
        ip(&["link", "set", &inner_end, "netns", name])?;
        ip(&[
            "addr",
            "add",
            &format!("{host_address}/30"),
            "dev",
            &host_end,
        ])?;
        run("iptables", &forward_rule("-I", &host_end), "iptables")?;
        ip(&["link", "set", &host_end, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["addr", "add", &format!("{address}/30"), "dev", &inner_end])?;
        inside(&["link", "set", &inner_end, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        for route in routes {
            inside(&["route", "add", route, "via", &host_address.to_string()])?;
        }
        Ok(netns)
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Gives the namespace's programs `text` as their /etc/hosts (`ip netns exec` mounts
    /// /etc/netns/NAME/hosts over it), removed with the namespace.
    pub fn set_hosts(&self, text: &str) -> anyhow::Result<()> {
        let dir = std::path::Path::new("/etc/netns").join(&self.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::write(dir.join("hosts"), text)
            .with_context(|| format!("write {}/hosts", dir.display()))
    }
}

/// Removes namespace `name`, what runs in it, its link and its forwarding rule, whichever of
/// them exist.
fn remove(name: &str) {
    let pids = Command::new("ip").args(["netns", "pids", name]).output();
    if let Ok(pids) = pids {
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).output();
        }
    }
    let _ = Command::new("ip").args(["netns", "delete", name]).output();
    let _ = std::fs::remove_dir_all(std::path::Path::new("/etc/netns").join(name));
    let host_end = format!("{name}-h");
    let _ = Command::new("ip")
        .args(["link", "delete", &host_end])
        .output();
    while Command::new("iptables")
        .args(forward_rule("-D", &host_end))
        .output()
        .is_ok_and(|output| output.status.success())
    {}
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::private_network;

    #[test]
    fn namespaces_route_only_to_private_networks() {
        for route in ["172.30.201.0/24", "192.168.5.0/24", "10.1.0.0/16"] {
            assert!(private_network(route), "{route}");
        }
        for route in [
            "default",
            "0.0.0.0/0",
            "8.8.8.0/24",
            "172.30.201.0",
            "10.254.1.0/24",
            "172.16.0.0/4",
        ] {
            assert!(!private_network(route), "{route}");
        }
    }
}
