//! Network: `unique.network.ip-address`, the node's networks and `InternalIP` addresses.
//!
//! With `--network-interface` (Nomad's `network_interface`) the addresses are the IPv4
//! addresses of that interface, a loopback one included; the agent refuses to start when it
//! has none. Otherwise the interface is the one of the default IPv4 route (lowest metric) in
//! `/proc/net/route`; when there is none, or it has no IPv4 address, the first interface that
//! is up and has a non-loopback, non-link-local IPv4 address; when no interface has one, the
//! loopback address `127.0.0.1`, so that a machine with nothing else (a sandbox, a laptop
//! offline) can still run jobs with ports. The addresses found form the `default` host network.
//!
//! Named host networks (Nomad's client `host_network` blocks, [`HostNetworkConfig`]) add more:
//! a block selects the IPv4 addresses of one `interface`, or every IPv4 address of an up
//! interface within a `cidr`, and the node reports each with `host_network` set to the block's
//! name and the block's reserved ports. A block named `default` replaces the choice above for
//! the `default` network. A block that matches no address contributes nothing; the agent logs a
//! warning (a `default` block that matches nothing leaves the usual choice in place).

use std::net::Ipv4Addr;

use caravan_schemas::node::{NodeAddress, NodeNetwork};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

pub use super::host_networks::{
    HostNetworkConfig, check_host_networks, host_network_addresses, node_networks,
};
use super::{Fingerprint, read_text};

/// An IPv4 address of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceAddr {
    /// Interface name, e.g. `eth0`.
    pub device: String,
    /// The address.
    pub ip: Ipv4Addr,
    /// Whether the interface is up.
    pub up: bool,
    /// Whether the interface is a loopback.
    pub loopback: bool,
}

/// The interface of the default IPv4 route in `/proc/net/route` (the lowest metric wins).
pub fn default_route_interface(route: &str) -> Option<String> {
    const RTF_UP: u32 = 0x1;
    route
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            let metric: u32 = f[6].parse().ok()?;
            (f[1] == "00000000" && f[7] == "00000000" && flags & RTF_UP != 0)
                .then(|| (metric, f[0].to_string()))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, iface)| iface)
}

fn usable(addr: &IfaceAddr) -> bool {
    !addr.loopback
        && !addr.ip.is_loopback()
        && !addr.ip.is_link_local()
        && !addr.ip.is_unspecified()
}

/// The addresses to report: those of `default_iface` when it has any usable one, else those
/// of the first up interface with a usable address. Empty when no interface has one.
pub fn select_addresses(addrs: &[IfaceAddr], default_iface: Option<&str>) -> Vec<IfaceAddr> {
    let of = |device: &str| -> Vec<IfaceAddr> {
        addrs
            .iter()
            .filter(|a| a.device == device && usable(a))
            .cloned()
            .collect()
    };
    if let Some(found) = default_iface.map(of).filter(|v| !v.is_empty()) {
        return found;
    }
    addrs
        .iter()
        .find(|a| a.up && usable(a))
        .map(|a| of(&a.device))
        .unwrap_or_default()
}

/// The IPv4 addresses of the interface named `iface` (Nomad's `network_interface`): every
/// address but `0.0.0.0`, loopback ones included. An error naming the interfaces that have an
/// address when it has none.
pub fn interface_addresses_of(addrs: &[IfaceAddr], iface: &str) -> Result<Vec<IfaceAddr>, String> {
    let found: Vec<IfaceAddr> = addrs
        .iter()
        .filter(|a| a.device == iface && !a.ip.is_unspecified())
        .cloned()
        .collect();
    if !found.is_empty() {
        return Ok(found);
    }
    let mut known: Vec<&str> = Vec::new();
    for a in addrs.iter().filter(|a| !a.ip.is_unspecified()) {
        if !known.contains(&a.device.as_str()) {
            known.push(&a.device);
        }
    }
    Err(if known.is_empty() {
        format!("network interface {iface:?} has no IPv4 address (no interface has one)")
    } else {
        format!(
            "network interface {iface:?} has no IPv4 address (interfaces with one: {})",
            known.join(", ")
        )
    })
}

/// The loopback address a node without any usable address reports: `127.0.0.1` on the
/// loopback interface that holds it (`lo` when none is listed).
pub fn loopback_fallback(addrs: &[IfaceAddr]) -> IfaceAddr {
    addrs
        .iter()
        .find(|a| a.ip == Ipv4Addr::LOCALHOST)
        .cloned()
        .unwrap_or_else(|| IfaceAddr {
            device: "lo".into(),
            ip: Ipv4Addr::LOCALHOST,
            up: true,
            loopback: true,
        })
}

/// The addresses of the node's `default` host network: those of `named` when the agent names
/// an interface (an error when it has none), else those a host network block named `default`
/// selects when it selects any, else [`select_addresses`], else the loopback address. Never
/// empty when `Ok`.
pub fn choose_addresses(
    addrs: &[IfaceAddr],
    default_iface: Option<&str>,
    named: Option<&str>,
    blocks: &[HostNetworkConfig],
) -> Result<Vec<IfaceAddr>, String> {
    if let Some(iface) = named {
        return interface_addresses_of(addrs, iface);
    }
    if let Some(block) = blocks
        .iter()
        .find(|b| b.name == caravan_schemas::ports::DEFAULT_HOST_NETWORK)
    {
        let found = host_network_addresses(addrs, block);
        if !found.is_empty() {
            return Ok(found);
        }
    }
    let chosen = select_addresses(addrs, default_iface);
    if chosen.is_empty() {
        return Ok(vec![loopback_fallback(addrs)]);
    }
    Ok(chosen)
}

/// Parses `/sys/class/net/<dev>/speed` (Mbit/s); `-1` or garbage means unknown.
pub fn parse_speed(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|s| *s > 0)
}

fn interface_addresses() -> Vec<IfaceAddr> {
    let iter = match getifaddrs() {
        Ok(iter) => iter,
        Err(err) => {
            tracing::debug!(%err, "fingerprint: getifaddrs failed");
            return Vec::new();
        }
    };
    iter.filter_map(|ifa| {
        let ip = ifa.address?.as_sockaddr_in()?.ip();
        Some(IfaceAddr {
            device: ifa.interface_name,
            ip,
            up: ifa.flags.contains(InterfaceFlags::IFF_UP),
            loopback: ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK),
        })
    })
    .collect()
}

/// Checks that the interface `iface` has an IPv4 address, as [`collect`] will need; for the
/// agent to refuse a bad `--network-interface` before it starts anything.
pub fn check_interface(iface: &str) -> Result<(), String> {
    interface_addresses_of(&interface_addresses(), iface).map(|_| ())
}

/// Reports the addresses of the `default` host network and of the named host networks;
/// `interface` is the one the agent names (`--network-interface`). Fails only when that
/// interface has no IPv4 address; a host network block that matches nothing is logged.
pub(super) fn collect(
    fp: &mut Fingerprint,
    interface: Option<&str>,
    blocks: &[HostNetworkConfig],
) -> Result<(), String> {
    let default_iface = match interface {
        Some(_) => None,
        None => {
            let found = read_text("/proc/net/route").and_then(|t| default_route_interface(&t));
            if found.is_none() {
                tracing::debug!("fingerprint: no default IPv4 route");
            }
            found
        }
    };
    let addrs = interface_addresses();
    let chosen = choose_addresses(&addrs, default_iface.as_deref(), interface, blocks)?;
    if interface.is_none() && chosen.iter().all(|a| a.ip.is_loopback()) {
        tracing::info!(
            "no usable IPv4 address on any interface: the node offers the loopback address 127.0.0.1"
        );
    }
    let speed = |device: &str| {
        read_text(format!("/sys/class/net/{device}/speed")).and_then(|t| parse_speed(&t))
    };
    let (networks, unmatched) = node_networks(&addrs, &chosen, blocks, &speed);
    for name in unmatched {
        tracing::warn!(
            host_network = %name,
            "host network matches no IPv4 address on this machine: the node does not offer it"
        );
    }
    record(fp, &chosen, networks);
    Ok(())
}

/// Writes the `default` network's addresses `chosen` (not empty) and the node's `networks` into
/// the fingerprint: the attribute, the networks, the addresses.
fn record(fp: &mut Fingerprint, chosen: &[IfaceAddr], networks: Vec<NodeNetwork>) {
    let Some(first) = chosen.first() else {
        return;
    };
    fp.set("unique.network.ip-address", first.ip);
    fp.resources.networks.extend(networks);
    for addr in chosen {
        fp.addresses.push(NodeAddress {
            r#type: "InternalIP".into(),
            address: addr.ip.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";

    fn addr(device: &str, ip: [u8; 4], up: bool, loopback: bool) -> IfaceAddr {
        IfaceAddr {
            device: device.into(),
            ip: Ipv4Addr::from(ip),
            up,
            loopback,
        }
    }

    #[test]
    fn fingerprint_default_route() {
        assert_eq!(default_route_interface(ROUTE).as_deref(), Some("eth0"));
        let no_default = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
        assert_eq!(default_route_interface(no_default), None);
    }

    #[test]
    fn fingerprint_select_addresses() {
        let addrs = vec![
            addr("lo", [127, 0, 0, 1], true, true),
            addr("docker0", [172, 17, 0, 1], true, false),
            addr("eth0", [169, 254, 1, 1], true, false),
            addr("eth0", [192, 0, 2, 10], true, false),
            addr("eth0", [192, 0, 2, 11], true, false),
        ];
        let ips = |v: Vec<IfaceAddr>| v.into_iter().map(|a| a.ip.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ips(select_addresses(&addrs, Some("eth0"))),
            ["192.0.2.10", "192.0.2.11"]
        );
        // Without a default route (or with one on an address-less interface): first usable.
        assert_eq!(ips(select_addresses(&addrs, None)), ["172.17.0.1"]);
        assert_eq!(ips(select_addresses(&addrs, Some("tun0"))), ["172.17.0.1"]);
        assert!(select_addresses(&addrs[..1], None).is_empty());
    }

    #[test]
    fn fingerprint_named_interface() {
        let addrs = vec![
            addr("lo", [127, 0, 0, 1], true, true),
            addr("eth0", [192, 0, 2, 10], true, false),
            addr("eth1", [0, 0, 0, 0], false, false),
        ];
        let ips = |v: Vec<IfaceAddr>| v.into_iter().map(|a| a.ip.to_string()).collect::<Vec<_>>();
        // A named interface wins over the default route, loopback included.
        assert_eq!(
            ips(choose_addresses(&addrs, Some("eth0"), Some("lo"), &[]).unwrap()),
            ["127.0.0.1"]
        );
        assert_eq!(
            ips(choose_addresses(&addrs, None, Some("eth0"), &[]).unwrap()),
            ["192.0.2.10"]
        );
        // One without an IPv4 address (or unknown) is refused, naming those that have one.
        let err = choose_addresses(&addrs, None, Some("eth1"), &[]).unwrap_err();
        assert!(err.contains("\"eth1\" has no IPv4 address"), "{err}");
        assert!(err.contains("lo, eth0"), "{err}");
        let err = choose_addresses(&[], None, Some("wg0"), &[]).unwrap_err();
        assert!(err.contains("no interface has one"), "{err}");
    }

    #[test]
    fn fingerprint_falls_back_to_loopback() {
        let ips = |v: Vec<IfaceAddr>| {
            v.into_iter()
                .map(|a| (a.device, a.ip.to_string()))
                .collect::<Vec<_>>()
        };
        let only_lo = vec![
            addr("lo", [127, 0, 0, 1], true, true),
            addr("eth0", [169, 254, 0, 9], true, false),
        ];
        let loopback = [("lo".to_string(), "127.0.0.1".to_string())];
        assert_eq!(
            ips(choose_addresses(&only_lo, Some("eth0"), None, &[]).unwrap()),
            loopback
        );
        assert_eq!(
            ips(choose_addresses(&[], None, None, &[]).unwrap()),
            loopback
        );
        // A usable address is still preferred.
        let with_eth = vec![
            addr("lo", [127, 0, 0, 1], true, true),
            addr("eth0", [192, 0, 2, 10], true, false),
        ];
        assert_eq!(
            ips(choose_addresses(&with_eth, None, None, &[]).unwrap()),
            [("eth0".to_string(), "192.0.2.10".to_string())]
        );
        // What is recorded: the attribute is the first address, networks and addresses all.
        let mut fp = Fingerprint::default();
        let chosen = choose_addresses(&only_lo, None, None, &[]).unwrap();
        let (networks, _) = node_networks(&only_lo, &chosen, &[], &|_| None);
        record(&mut fp, &chosen, networks);
        assert_eq!(fp.attributes["unique.network.ip-address"], "127.0.0.1");
        assert_eq!(fp.resources.networks[0].device, "lo");
        assert_eq!(fp.resources.networks[0].cidr, "127.0.0.1/32");
        assert_eq!(fp.resources.networks[0].host_network, None);
        assert_eq!(fp.addresses[0].address, "127.0.0.1");
    }

    fn block(name: &str, interface: Option<&str>, cidr: Option<&str>) -> HostNetworkConfig {
        HostNetworkConfig {
            name: name.into(),
            interface: interface.map(str::to_string),
            cidr: cidr.map(str::to_string),
            reserved_ports: None,
        }
    }

    fn machine() -> Vec<IfaceAddr> {
        vec![
            addr("lo", [127, 0, 0, 1], true, true),
            addr("eth0", [192, 0, 2, 10], true, false),
            addr("eth1", [10, 1, 0, 5], true, false),
            addr("eth1", [10, 1, 0, 6], true, false),
            addr("eth2", [10, 200, 3, 4], true, false),
            addr("eth3", [10, 9, 9, 9], false, false),
            addr("wg0", [172, 16, 0, 1], true, false),
        ]
    }

    /// `(host network, device, ip, reserved ports)` of each network.
    fn summary(networks: &[NodeNetwork]) -> Vec<(Option<&str>, &str, &str, Option<&str>)> {
        networks
            .iter()
            .map(|n| {
                (
                    n.host_network.as_deref(),
                    n.device.as_str(),
                    n.ip.as_str(),
                    n.reserved_ports.as_deref(),
                )
            })
            .collect()
    }

    #[test]
    fn fingerprint_host_network_by_interface() {
        let addrs = machine();
        let ips = |v: Vec<IfaceAddr>| v.into_iter().map(|a| a.ip.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ips(host_network_addresses(
                &addrs,
                &block("public", Some("eth1"), None)
            )),
            ["10.1.0.5", "10.1.0.6"]
        );
        // The loopback interface may be named, like --network-interface.
        assert_eq!(
            ips(host_network_addresses(
                &addrs,
                &block("local", Some("lo"), None)
            )),
            ["127.0.0.1"]
        );
        assert!(host_network_addresses(&addrs, &block("x", Some("eth9"), None)).is_empty());

        let mut public = block("public", Some("eth1"), None);
        public.reserved_ports = Some(" 22 ".into());
        let default = &addrs[1..2];
        let (networks, unmatched) = node_networks(&addrs, default, &[public], &|dev| {
            (dev == "eth1").then_some(10000)
        });
        assert_eq!(
            summary(&networks),
            [
                (None, "eth0", "192.0.2.10", None),
                (Some("public"), "eth1", "10.1.0.5", Some("22")),
                (Some("public"), "eth1", "10.1.0.6", Some("22")),
            ]
        );
        assert_eq!(networks[1].cidr, "10.1.0.5/32");
        assert_eq!((networks[0].mbits, networks[1].mbits), (None, Some(10000)));
        assert!(unmatched.is_empty());
    }

    #[test]
    fn fingerprint_host_network_by_cidr() {
        let addrs = machine();
        let private = block("private", None, Some("10.0.0.0/8"));
        // Every address of an up interface within the CIDR (eth3 is down).
        let ips = |v: Vec<IfaceAddr>| v.into_iter().map(|a| a.ip.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ips(host_network_addresses(&addrs, &private)),
            ["10.1.0.5", "10.1.0.6", "10.200.3.4"]
        );
        // Host bits of the CIDR are ignored; /32 is one address, /0 every one.
        assert_eq!(
            ips(host_network_addresses(
                &addrs,
                &block("one", None, Some("10.200.3.4/32"))
            )),
            ["10.200.3.4"]
        );
        assert_eq!(
            ips(host_network_addresses(
                &addrs,
                &block("sub", None, Some("10.1.7.7/16"))
            )),
            ["10.1.0.5", "10.1.0.6"]
        );
        assert_eq!(
            host_network_addresses(&addrs, &block("all", None, Some("0.0.0.0/0"))).len(),
            6
        );
        // A block matching nothing contributes nothing and is reported.
        let mut nothing = block("nothing", None, Some("198.51.100.0/24"));
        nothing.reserved_ports = Some("80".into());
        let mut vpn = block("vpn", None, Some("172.16.0.0/12"));
        vpn.reserved_ports = Some("".into());
        let (networks, unmatched) =
            node_networks(&addrs, &addrs[1..2], &[private, nothing, vpn], &|_| None);
        assert_eq!(
            summary(&networks),
            [
                (None, "eth0", "192.0.2.10", None),
                (Some("private"), "eth1", "10.1.0.5", None),
                (Some("private"), "eth1", "10.1.0.6", None),
                (Some("private"), "eth2", "10.200.3.4", None),
                (Some("vpn"), "wg0", "172.16.0.1", None),
            ]
        );
        assert_eq!(unmatched, ["nothing"]);
    }

    #[test]
    fn fingerprint_default_host_network_block() {
        let addrs = machine();
        let mut default = block("default", None, Some("10.200.0.0/16"));
        default.reserved_ports = Some("22".into());
        let blocks = [default];
        // The block replaces the default route's interface; its reserved ports come along.
        let chosen = choose_addresses(&addrs, Some("eth0"), None, &blocks).unwrap();
        let (networks, unmatched) = node_networks(&addrs, &chosen, &blocks, &|_| None);
        assert_eq!(
            summary(&networks),
            [(None, "eth2", "10.200.3.4", Some("22"))]
        );
        assert!(unmatched.is_empty());
        // Matching nothing, it leaves the usual choice in place, and is reported.
        let blocks = [block("default", Some("eth9"), None)];
        let chosen = choose_addresses(&addrs, Some("eth0"), None, &blocks).unwrap();
        let (networks, unmatched) = node_networks(&addrs, &chosen, &blocks, &|_| None);
        assert_eq!(summary(&networks), [(None, "eth0", "192.0.2.10", None)]);
        assert_eq!(unmatched, ["default"]);
    }

    #[test]
    fn host_networks_are_checked() {
        let ok = [
            block("public", Some("eth1"), None),
            block("private", None, Some("10.0.0.0/8")),
            block("default", Some("eth0"), None),
        ];
        assert_eq!(check_host_networks(&ok, None), Ok(()));
        assert_eq!(check_host_networks(&[], Some("eth0")), Ok(()));
        let err = |blocks: &[HostNetworkConfig]| check_host_networks(blocks, None).unwrap_err();
        let e = err(&[block("Public", Some("eth1"), None)]);
        assert!(
            e.contains("name \"Public\" is not a valid DNS-1123 label"),
            "{e}"
        );
        assert!(err(&[block("", Some("eth1"), None)]).contains("is not a valid DNS-1123 label"));
        assert!(
            err(&[block(&"a".repeat(64), Some("eth1"), None)])
                .contains("must be no more than 63 characters")
        );
        let e = err(&[
            block("a", Some("eth1"), None),
            block("a", Some("eth2"), None),
        ]);
        assert!(e.contains("host network \"a\" is named twice"), "{e}");
        let e = err(&[block("a", Some("eth1"), Some("10.0.0.0/8"))]);
        assert!(e.contains("both interface and cidr"), "{e}");
        let e = err(&[block("a", None, None)]);
        assert!(e.contains("needs an interface or a cidr"), "{e}");
        let e = err(&[block("a", Some(" "), None)]);
        assert!(e.contains("empty interface"), "{e}");
        for cidr in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "fd00::/8"] {
            let e = err(&[block("a", None, Some(cidr))]);
            assert!(e.contains("host network \"a\": invalid cidr"), "{e}");
        }
        let mut bad_ports = block("a", Some("eth1"), None);
        bad_ports.reserved_ports = Some("22,http".into());
        let e = err(&[bad_ports]);
        assert!(
            e.contains("host network \"a\": invalid reservedPorts \"22,http\""),
            "{e}"
        );
        let e = check_host_networks(&ok, Some("eth0")).unwrap_err();
        assert!(e.contains("both choose the default network"), "{e}");
        assert_eq!(
            super::super::host_networks::parse_cidr("10.1.2.3/8"),
            Ok(ipnet::Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 8).unwrap())
        );
    }

    #[test]
    fn fingerprint_link_speed() {
        assert_eq!(parse_speed("10000\n"), Some(10000));
        assert_eq!(parse_speed("-1\n"), None);
    }
}
