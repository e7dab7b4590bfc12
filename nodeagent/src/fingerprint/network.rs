//! Network: `unique.network.ip-address`, the node's networks and `InternalIP` addresses.
//!
//! The interface is the one of the default IPv4 route (lowest metric) in `/proc/net/route`;
//! when there is none, or it has no IPv4 address, the first interface that is up and has a
//! non-loopback, non-link-local IPv4 address.

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
/// of the first up interface with a usable address.
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

pub(super) fn collect(fp: &mut Fingerprint) {
    let default_iface = read_text("/proc/net/route").and_then(|t| default_route_interface(&t));
    if default_iface.is_none() {
        tracing::debug!("fingerprint: no default IPv4 route");
    }
    let chosen = select_addresses(&interface_addresses(), default_iface.as_deref());
    let Some(first) = chosen.first() else {
        tracing::debug!("fingerprint: no usable IPv4 address");
        return;
    };
    fp.set("unique.network.ip-address", first.ip);
    let mbits =
        read_text(format!("/sys/class/net/{}/speed", first.device)).and_then(|t| parse_speed(&t));
    for addr in &chosen {
        fp.resources.networks.push(NodeNetwork {
            device: addr.device.clone(),
            cidr: format!("{}/32", addr.ip),
            ip: addr.ip.to_string(),
            mbits,
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
    fn fingerprint_link_speed() {
        assert_eq!(parse_speed("10000\n"), Some(10000));
        assert_eq!(parse_speed("-1\n"), None);
    }
}
