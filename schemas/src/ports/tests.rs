use super::*;
use crate::mock;
use crate::node::NodeNetwork;

fn ask(label: &str, static_port: Option<u16>) -> PortAsk {
    PortAsk {
        label: label.into(),
        static_port,
        to: None,
        host_network: DEFAULT_HOST_NETWORK.into(),
    }
}

fn held(ip: &str, port: u16) -> HostPort {
    HostPort {
        ip: ip.into(),
        port,
    }
}

fn node_ports(min: u16, max: u16) -> NodePorts {
    NodePorts {
        networks: vec![HostNetwork {
            name: DEFAULT_HOST_NETWORK.into(),
            ip: "10.0.0.1".into(),
            reserved: Vec::new(),
        }],
        reserved: Vec::new(),
        min_dynamic: min,
        max_dynamic: max,
    }
}

#[test]
fn port_lists_parse_nomads_syntax() {
    assert_eq!(
        parse_port_list(" 80, 22,8000-8002 ").unwrap(),
        [
            PortRange {
                first: 22,
                last: 22
            },
            PortRange {
                first: 80,
                last: 80
            },
            PortRange {
                first: 8000,
                last: 8002
            },
        ]
    );
    assert_eq!(parse_port_list("").unwrap(), []);
    for bad in ["0", "65536", "x", "90-80", "1-", "-5"] {
        assert!(parse_port_list(bad).is_err(), "{bad}");
    }
}

#[test]
fn node_ports_come_from_the_status_with_nomads_defaults() {
    let mut node = mock::node("n1");
    let status = node.status.as_mut().unwrap();
    let resources = status.resources.as_mut().unwrap();
    resources.networks = vec![
        NodeNetwork {
            ip: "10.0.0.1".into(),
            reserved_ports: Some("22".into()),
            ..NodeNetwork::default()
        },
        NodeNetwork {
            ip: "192.168.1.1".into(),
            host_network: Some("public".into()),
            ..NodeNetwork::default()
        },
    ];
    status.reserved.get_or_insert_default().reserved_ports = Some("80,443".into());
    let ports = NodePorts::of(&node);
    assert_eq!(ports.min_dynamic, DEFAULT_MIN_DYNAMIC_PORT);
    assert_eq!(ports.max_dynamic, DEFAULT_MAX_DYNAMIC_PORT);
    assert_eq!(ports.networks[0].name, "default");
    assert_eq!(ports.networks[0].reserved.len(), 1);
    assert_eq!(ports.networks[1].name, "public");
    assert_eq!(ports.reserved.len(), 2);
}

#[test]
fn static_ports_are_given_as_asked_and_collide_with_held_and_reserved_ones() {
    let mut node = node_ports(20000, 20010);
    let got = assign(&node, &[], &[ask("http", Some(8080))], 0).unwrap();
    assert_eq!(got[0].value, 8080);
    assert_eq!(got[0].host_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(
        assign(
            &node,
            &[held("10.0.0.1", 8080)],
            &[ask("http", Some(8080))],
            0
        ),
        Err(PORT_COLLISION)
    );
    // Held on another address: no collision.
    assert!(
        assign(
            &node,
            &[held("10.0.0.2", 8080)],
            &[ask("http", Some(8080))],
            0
        )
        .is_ok()
    );
    // Twice in one group.
    assert_eq!(
        assign(&node, &[], &[ask("a", Some(80)), ask("b", Some(80))], 0),
        Err(PORT_COLLISION)
    );
    node.reserved = parse_port_list("8080").unwrap();
    assert_eq!(
        assign(&node, &[], &[ask("http", Some(8080))], 0),
        Err(PORT_COLLISION)
    );
    node.reserved.clear();
    node.networks[0].reserved = parse_port_list("8000-9000").unwrap();
    assert_eq!(
        assign(&node, &[], &[ask("http", Some(8080))], 0),
        Err(PORT_COLLISION)
    );
}

#[test]
fn dynamic_ports_stay_in_the_range_and_skip_taken_reserved_and_static_ones() {
    let mut node = node_ports(20000, 20004);
    node.reserved = parse_port_list("20001").unwrap();
    let asks = [ask("a", None), ask("s", Some(20002)), ask("b", None)];
    for seed in 0..16 {
        let got = assign(&node, &[held("10.0.0.1", 20000)], &asks, seed).unwrap();
        let values: Vec<u32> = got.iter().map(|p| p.value).collect();
        assert_eq!(values[1], 20002, "the static port keeps its place");
        // 20000 is held, 20001 reserved, 20002 static: the dynamic ones get the rest.
        let mut dynamic = [values[0], values[2]];
        dynamic.sort_unstable();
        assert_eq!(dynamic, [20003, 20004], "seed {seed}");
    }
    // One port fewer in the range: not enough.
    node.max_dynamic = 20003;
    assert_eq!(
        assign(&node, &[held("10.0.0.1", 20000)], &asks, 0),
        Err(DYNAMIC_PORTS_EXHAUSTED)
    );
}

#[test]
fn an_exhausted_range_fails_the_node() {
    let node = node_ports(20000, 20001);
    let asks = [ask("a", None), ask("b", None)];
    let got = assign(&node, &[], &asks, 7).unwrap();
    let mut values: Vec<u32> = got.iter().map(|p| p.value).collect();
    values.sort_unstable();
    assert_eq!(values, [20000, 20001]);
    assert_eq!(
        assign(&node, &[held("10.0.0.1", 20000)], &asks, 7),
        Err(DYNAMIC_PORTS_EXHAUSTED)
    );
    let inverted = node_ports(30000, 20000);
    assert_eq!(
        assign(&inverted, &[], &asks, 0),
        Err(DYNAMIC_PORTS_EXHAUSTED)
    );
    assert!(assign(&inverted, &[], &[ask("s", Some(80))], 0).is_ok());
}

#[test]
fn ports_go_to_the_host_network_they_name() {
    let mut node = node_ports(20000, 20010);
    node.networks.push(HostNetwork {
        name: "public".into(),
        ip: "192.168.1.1".into(),
        reserved: Vec::new(),
    });
    let mut public = ask("web", Some(80));
    public.host_network = "public".into();
    let got = assign(&node, &[held("10.0.0.1", 80)], &[public.clone()], 0).unwrap();
    assert_eq!(got[0].host_ip.as_deref(), Some("192.168.1.1"));
    public.host_network = "private".into();
    assert_eq!(assign(&node, &[], &[public], 0), Err(NO_HOST_NETWORK));
}

#[test]
fn the_applier_check_finds_every_collision() {
    let node = node_ports(20000, 20010);
    let kept = [held("10.0.0.1", 80)];
    assert_eq!(collision(&node, &kept, &[held("10.0.0.1", 81)]), None);
    assert_eq!(
        collision(&node, &kept, &[held("10.0.0.1", 80)]),
        Some(PORT_COLLISION)
    );
    assert_eq!(
        collision(&node, &[], &[held("10.0.0.1", 81), held("10.0.0.1", 81)]),
        Some(PORT_COLLISION)
    );
    assert_eq!(
        collision(&node, &[], &[held("10.9.9.9", 81)]),
        Some(NO_HOST_NETWORK)
    );
    let mut reserved = node.clone();
    reserved.reserved = parse_port_list("81").unwrap();
    assert_eq!(
        collision(&reserved, &[], &[held("10.0.0.1", 81)]),
        Some(PORT_COLLISION)
    );
}
