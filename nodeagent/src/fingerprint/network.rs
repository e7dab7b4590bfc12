//! Network: `unique.network.ip-address`, the node's networks and `InternalIP` addresses.
//!
//! With `--network-interface` (Nomad's `network_interface`) the addresses are the IPv4
//! addresses of that interface, a loopback one included; the agent refuses to start when it
//! has none. Otherwise the interface is the one of the default IPv4 route (lowest metric) in
//! `/proc/net/route`; when there is none, or it has no IPv4 address, the first interface that
//! is up and has a non-loopback, non-link-local IPv4 address; when no interface has one, the
//! loopback address `127.0.0.1`, so that a machine with nothing else (a sandbox, a laptop
//! offline) can still run jobs with ports. The addresses found form the `default` host network.

use std::net::Ipv4Addr;

use caravan_schemas::node::{NodeAddress, NodeNetwork};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

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
/// an interface (an error when it has none), else [`select_addresses`], else the loopback
/// address. Never empty when `Ok`.
pub fn choose_addresses(
    addrs: &[IfaceAddr],
    default_iface: Option<&str>,
    named: Option<&str>,
) -> Result<Vec<IfaceAddr>, String> {
    if let Some(iface) = named {
        return interface_addresses_of(addrs, iface);
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

/// Reports the addresses of the `default` host network; `interface` is the one the agent
/// names (`--network-interface`). Fails only when that interface has no IPv4 address.
pub(super) fn collect(fp: &mut Fingerprint, interface: Option<&str>) -> Result<(), String> {
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
    let chosen = choose_addresses(&addrs, default_iface.as_deref(), interface)?;
    if interface.is_none() && chosen.iter().all(|a| a.ip.is_loopback()) {
        tracing::info!(
            "no usable IPv4 address on any interface: the node offers the loopback address 127.0.0.1"
        );
    }
    record(fp, &chosen);
    Ok(())
}

/// Writes `chosen` (not empty) into the fingerprint: the attribute, the networks, the
/// addresses.
fn record(fp: &mut Fingerprint, chosen: &[IfaceAddr]) {
    let Some(first) = chosen.first() else {
        return;
    };
    fp.set("unique.network.ip-address", first.ip);
    let mbits =
        read_text(format!("/sys/class/net/{}/speed", first.device)).and_then(|t| parse_speed(&t));
    for addr in chosen {
        fp.resources.networks.push(NodeNetwork {
            device: addr.device.clone(),
            cidr: format!("{}/32", addr.ip),
            ip: addr.ip.to_string(),
            mbits,
            host_network: None,
            reserved_ports: None,
        });
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
            ips(choose_addresses(&addrs, Some("eth0"), Some("lo")).unwrap()),
            ["127.0.0.1"]
        );
        assert_eq!(
            ips(choose_addresses(&addrs, None, Some("eth0")).unwrap()),
            ["192.0.2.10"]
        );
        // One without an IPv4 address (or unknown) is refused, naming those that have one.
        let err = choose_addresses(&addrs, None, Some("eth1")).unwrap_err();
        assert!(err.contains("\"eth1\" has no IPv4 address"), "{err}");
        assert!(err.contains("lo, eth0"), "{err}");
        let err = choose_addresses(&[], None, Some("wg0")).unwrap_err();
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
            ips(choose_addresses(&only_lo, Some("eth0"), None).unwrap()),
            loopback
        );
        assert_eq!(ips(choose_addresses(&[], None, None).unwrap()), loopback);
        // A usable address is still preferred.
        let with_eth = vec![
            addr("lo", [127, 0, 0, 1], true, true),
            addr("eth0", [192, 0, 2, 10], true, false),
        ];
        assert_eq!(
            ips(choose_addresses(&with_eth, None, None).unwrap()),
            [("eth0".to_string(), "192.0.2.10".to_string())]
        );
        // What is recorded: the attribute is the first address, networks and addresses all.
        let mut fp = Fingerprint::default();
        record(&mut fp, &choose_addresses(&only_lo, None, None).unwrap());
        assert_eq!(fp.attributes["unique.network.ip-address"], "127.0.0.1");
        assert_eq!(fp.resources.networks[0].device, "lo");
        assert_eq!(fp.resources.networks[0].cidr, "127.0.0.1/32");
        assert_eq!(fp.resources.networks[0].host_network, None);
        assert_eq!(fp.addresses[0].address, "127.0.0.1");
    }

    #[test]
    fn fingerprint_link_speed() {
        assert_eq!(parse_speed("10000\n"), Some(10000));
        assert_eq!(parse_speed("-1\n"), None);
    }
}
