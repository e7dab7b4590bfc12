use super::*;

#[test]
fn only_a_client_without_a_server_counts_as_client_only() {
    let client = AgentArgs {
        client: true,
        ..Default::default()
    };
    assert!(client_only(&client));
    for not in [
        AgentArgs {
            dev: true,
            ..Default::default()
        },
        AgentArgs {
            client: true,
            server: true,
            ..Default::default()
        },
        AgentArgs::default(),
    ] {
        assert!(!client_only(&not), "{not:?}");
    }
    // A config file can enable the server.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yaml");
    std::fs::write(&path, "server:\n  enabled: true\n").unwrap();
    let with_file = AgentArgs {
        config: Some(path),
        ..client
    };
    assert!(!client_only(&with_file));
}

fn settings() -> Settings {
    Settings {
        dev: false,
        server: false,
        client: true,
        http_addr: "127.0.0.1:4646".parse().unwrap(),
        log_level: "info".into(),
        region: "eu".into(),
        datacenter: "dc2".into(),
        tls: false,
    }
}

fn parse(flags: &[&str]) -> Result<AgentArgs, clap::Error> {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        agent: AgentArgs,
    }
    use clap::Parser;
    Cli::try_parse_from(std::iter::once("caravan-agent").chain(flags.iter().copied()))
        .map(|cli| cli.agent)
}

#[test]
fn raw_exec_is_offered_only_by_dev_agents_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let enabled = |flags: &[&str]| {
        let args = parse(flags).unwrap();
        let config = client_config(&args, &settings(), "s:4646".into(), dir.path(), false).unwrap();
        config.driver_enabled("raw_exec")
    };
    assert!(!enabled(&["--client"]), "a client does not offer raw_exec");
    assert!(enabled(&["--dev"]), "a dev agent does");
    assert!(enabled(&["--client", "--drivers", "raw_exec,exec"]));
    let args = parse(&["--client"]).unwrap();
    let config = client_config(&args, &settings(), "s:4646".into(), dir.path(), false).unwrap();
    for driver in ["exec", "oci", "mock"] {
        assert!(config.driver_enabled(driver), "{driver}");
    }
}

#[test]
fn port_flags_reach_the_client_config() {
    let args = parse(&[
        "--client",
        "--min-dynamic-port",
        "21000",
        "--max-dynamic-port",
        "21999",
        "--reserved-ports",
        "22,8000-8100",
        "--network-interface",
        "lo",
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = client_config(&args, &settings(), "s:4646".into(), dir.path(), false).unwrap();
    assert_eq!(config.min_dynamic_port, 21000);
    assert_eq!(config.max_dynamic_port, 21999);
    assert_eq!(config.reserved_ports.as_deref(), Some("22,8000-8100"));
    assert_eq!(config.network_interface.as_deref(), Some("lo"));
    assert_eq!(config.region, "eu");
    assert_eq!(config.datacenter, "dc2");
    // Defaults: Nomad's range, nothing reserved, the interface chosen by the fingerprint.
    let config = client_config(
        &parse(&["--client"]).unwrap(),
        &settings(),
        "s:4646".into(),
        dir.path(),
        false,
    )
    .unwrap();
    assert_eq!(
        (config.min_dynamic_port, config.max_dynamic_port),
        (20000, 32000)
    );
    assert_eq!(config.reserved_ports, None);
    assert_eq!(config.network_interface, None);
}

#[test]
fn bad_port_settings_are_refused() {
    for flags in [
        &["--min-dynamic-port", "0"][..],
        &["--max-dynamic-port", "65536"],
        &["--min-dynamic-port", "http"],
    ] {
        assert!(parse(flags).is_err(), "{flags:?}");
    }
    let err = |flags: &[&str]| ports(&parse(flags).unwrap()).err().map(|e| e.to_string());
    let inverted = err(&["--min-dynamic-port", "30000", "--max-dynamic-port", "25000"]).unwrap();
    assert!(
        inverted.contains("--min-dynamic-port (30000) is above --max-dynamic-port (25000)"),
        "{inverted}"
    );
    let above_default = err(&["--min-dynamic-port", "40000"]).unwrap();
    assert!(
        above_default.contains("above --max-dynamic-port (32000)"),
        "{above_default}"
    );
    let list = err(&["--reserved-ports", "22,80-"]).unwrap();
    assert!(
        list.contains("invalid --reserved-ports \"22,80-\""),
        "{list}"
    );
    assert!(list.contains("is not a port"), "{list}");
    assert_eq!(err(&["--reserved-ports", "22, 80,8000-8100"]), None);
    // The file's values are checked the same way, after the merge.
    let file: file::FileConfig =
        yaml_serde::from_str("client:\n  reserved: {reservedPorts: \"99999\"}\n").unwrap();
    let merged = file::merge(AgentArgs::default(), file);
    assert!(ports(&merged).is_err());
}

#[test]
fn host_networks_reach_the_client_config() {
    let mut args = parse(&[
        "--client",
        "--host-network",
        "public=eth2",
        "--host-network",
        "local=lo",
    ])
    .unwrap();
    let file: file::FileConfig = yaml_serde::from_str(
        "client:\n  hostNetworks:\n    - {name: public, interface: eth1, reservedPorts: \"22\"}\n    - {name: private, cidr: 10.0.0.0/8, reservedPorts: \"80,443\"}\n",
    )
    .unwrap();
    args = file::merge(args, file);
    let dir = tempfile::tempdir().unwrap();
    let config = client_config(&args, &settings(), "s:4646".into(), dir.path(), false).unwrap();
    let summary: Vec<_> = config
        .host_networks
        .iter()
        .map(|b| {
            (
                b.name.as_str(),
                b.interface.as_deref(),
                b.cidr.as_deref(),
                b.reserved_ports.as_deref(),
            )
        })
        .collect();
    // The flag replaces the file's `public` block, reserved ports included.
    assert_eq!(
        summary,
        [
            ("private", None, Some("10.0.0.0/8"), Some("80,443")),
            ("public", Some("eth2"), None, None),
            ("local", Some("lo"), None, None),
        ]
    );
    assert_eq!(config.check(), Ok(()));
    // None by default.
    let config = client_config(
        &parse(&["--client"]).unwrap(),
        &settings(),
        "s:4646".into(),
        dir.path(),
        false,
    )
    .unwrap();
    assert!(config.host_networks.is_empty());
}

#[test]
fn bad_host_networks_are_refused() {
    let err = |flags: &[&str], yaml: &str| {
        let file: file::FileConfig = yaml_serde::from_str(yaml).unwrap();
        host_networks(&file::merge(parse(flags).unwrap(), file))
            .err()
            .map(|e| e.to_string())
    };
    for bad in ["public", "=eth1", "public="] {
        let e = err(&["--host-network", bad], "{}").unwrap();
        assert!(
            e.contains(&format!(
                "invalid --host-network {bad:?}: expected NAME=INTERFACE"
            )),
            "{e}"
        );
    }
    let e = err(&["--host-network", "Public=eth1"], "{}").unwrap();
    assert!(
        e.contains("invalid host networks (--host-network, config file: client.hostNetworks)"),
        "{e}"
    );
    assert!(e.contains("not a valid DNS-1123 label"), "{e}");
    let e = err(
        &[],
        "client:\n  hostNetworks: [{name: a, interface: eth1}, {name: a, cidr: 10.0.0.0/8}]\n",
    )
    .unwrap();
    assert!(e.contains("host network \"a\" is named twice"), "{e}");
    let e = err(
        &[],
        "client:\n  hostNetworks: [{name: a, cidr: 10.0.0.0/40}]\n",
    )
    .unwrap();
    assert!(e.contains("invalid cidr"), "{e}");
    let e = err(
        &[],
        "client:\n  hostNetworks: [{name: a, interface: eth1, cidr: 10.0.0.0/8}]\n",
    )
    .unwrap();
    assert!(e.contains("both interface and cidr"), "{e}");
    let e = err(
        &[],
        "client:\n  hostNetworks: [{name: a, interface: eth1, reservedPorts: \"22,x\"}]\n",
    )
    .unwrap();
    assert!(e.contains("invalid reservedPorts \"22,x\""), "{e}");
    let e = err(
        &[
            "--network-interface",
            "lo",
            "--host-network",
            "default=eth0",
        ],
        "{}",
    )
    .unwrap();
    assert!(e.contains("both choose the default network"), "{e}");
    // A flag replaces a bad block of the file's.
    assert_eq!(
        err(
            &["--host-network", "a=eth1"],
            "client:\n  hostNetworks: [{name: a}]\n"
        ),
        None
    );
}

#[test]
fn gc_threshold_flags_set_the_leaders_thresholds() {
    let hours = |h: u64| Some(std::time::Duration::from_secs(h * 3600));
    let args = AgentArgs {
        job_gc_threshold: hours(2),
        deployment_gc_threshold: hours(3),
        ..Default::default()
    };
    let thresholds = leader_config(&args).unwrap().gc.thresholds;
    assert_eq!(Some(thresholds.job), hours(2));
    assert_eq!(Some(thresholds.deployment), hours(3));
    let defaults = leader_config(&AgentArgs::default()).unwrap().gc.thresholds;
    assert_eq!(Some(defaults.deployment), hours(1));
    assert_eq!(Some(defaults.node), hours(24));
}
