use super::*;

fn port(label: &str, value: u32, to: Option<u32>, host_ip: Option<&str>) -> AllocatedPort {
    AllocatedPort {
        label: label.into(),
        value,
        to,
        host_ip: host_ip.map(str::to_string),
    }
}

#[test]
fn the_bridge_list_is_nomads_on_the_given_subnet() {
    let list = bridge_conflist("10.88.0.0/16");
    assert_eq!(list["cniVersion"], CNI_VERSION);
    assert_eq!(list["name"], "caravan");
    assert_eq!(
        plugin_types(&list).unwrap(),
        ["bridge", "firewall", "portmap"]
    );
    let bridge = &list["plugins"][0];
    assert_eq!(bridge["bridge"], "caravan");
    assert_eq!(bridge["isGateway"], true);
    assert_eq!(bridge["ipMasq"], true);
    assert_eq!(bridge["ipam"]["type"], "host-local");
    assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.88.0.0/16");
    assert_eq!(list["plugins"][2]["capabilities"]["portMappings"], true);
    assert_eq!(plugin_types(&loopback_conflist()).unwrap(), ["loopback"]);
}

#[test]
fn each_plugin_gets_the_lists_version_and_name_its_previous_result_and_its_capabilities() {
    let list = bridge_conflist(DEFAULT_BRIDGE_SUBNET);
    let mappings = port_mappings(&[port("http", 23456, Some(8080), None)]);
    let first = plugin_config(&list, 0, None, &mappings).unwrap();
    assert_eq!(first["type"], "bridge");
    assert_eq!(first["cniVersion"], CNI_VERSION);
    assert_eq!(first["name"], "caravan");
    assert!(first.get("prevResult").is_none());
    assert!(
        first.get("runtimeConfig").is_none(),
        "the bridge does not ask for port mappings"
    );

    let prev = json!({"cniVersion": CNI_VERSION, "ips": [{"address": "172.26.64.2/20"}]});
    let last = plugin_config(&list, 2, Some(&prev), &mappings).unwrap();
    assert_eq!(last["type"], "portmap");
    assert_eq!(last["prevResult"], prev);
    assert_eq!(
        last["runtimeConfig"]["portMappings"],
        json!([
            {"hostPort": 23456, "containerPort": 8080, "protocol": "tcp"},
            {"hostPort": 23456, "containerPort": 8080, "protocol": "udp"},
        ])
    );
    let no_ports = plugin_config(&list, 2, Some(&prev), &[]).unwrap();
    assert!(no_ports.get("runtimeConfig").is_none());
    assert_eq!(plugin_config(&list, 3, None, &mappings), None);
}

#[test]
fn ports_map_to_their_to_or_the_same_number_on_their_host_address() {
    let mappings = port_mappings(&[
        port("http", 20001, Some(8080), Some("10.0.0.5")),
        port("admin", 20002, None, Some("")),
        port("zero-to", 20003, Some(0), None),
        port("huge", 70000, None, None),
    ]);
    let summary: Vec<_> = mappings
        .iter()
        .map(|m| {
            (
                m.host_port,
                m.container_port,
                m.protocol.as_str(),
                m.host_ip.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (20001, 8080, "tcp", Some("10.0.0.5")),
            (20001, 8080, "udp", Some("10.0.0.5")),
            (20002, 20002, "tcp", None),
            (20002, 20002, "udp", None),
            (20003, 20003, "tcp", None),
            (20003, 20003, "udp", None),
        ]
    );
    assert_eq!(
        serde_json::to_value(&mappings[0]).unwrap(),
        json!({"hostPort": 20001, "containerPort": 8080, "protocol": "tcp", "hostIP": "10.0.0.5"})
    );
}

#[test]
fn results_and_errors_are_read() {
    let result = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "caravan"}, {"name": "eth0", "sandbox": "/run/caravan/netns/x"}],
        "ips": [
            {"address": "fd00::2/64", "interface": 1},
            {"address": "172.26.64.7/20", "gateway": "172.26.64.1", "interface": 1}
        ]
    });
    assert_eq!(result_ipv4(&result), Some(Ipv4Addr::new(172, 26, 64, 7)));
    assert_eq!(result_ipv4(&json!({})), None);

    let err =
        br#"{"cniVersion":"1.0.0","code":7,"msg":"failed to allocate","details":"no IP left"}"#;
    assert_eq!(error_message(err, b""), "failed to allocate: no IP left");
    assert_eq!(error_message(b"", b"  boom \n"), "boom");
}

#[test]
fn plugin_types_and_subnets_are_checked() {
    let bad = json!({"plugins": [{"type": "../../bin/sh"}]});
    assert!(plugin_types(&bad).is_err());
    assert!(plugin_types(&json!({})).is_err());
    assert!(check_subnet("172.26.64.0/20").is_ok());
    for bad in ["172.26.64.0", "172.26.64.0/33", "x/20", "172.26.64.0/4", ""] {
        assert!(check_subnet(bad).is_err(), "{bad}");
    }
}
