//! Tests of `caravan tls cert create`: the names and usages of each role, and chains that
//! verify (or not) with rustls' WebPKI verifiers.

use super::*;
use crate::cmd::tls::ca;
use crate::cmd::tls::verify_as_server;

fn parse(argv: &[&str]) -> Result<CertCreateArgs, clap::Error> {
    use clap::Parser;
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CertCreateArgs,
    }
    let argv = std::iter::once("create").chain(argv.iter().copied());
    Cli::try_parse_from(argv).map(|cli| cli.args)
}

fn validity() -> Validity {
    Validity::days_from(OffsetDateTime::now_utc(), 30).unwrap()
}

fn new_ca(extra: &[&str]) -> ca::NewCa {
    use clap::Parser;
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ca::CaCreateArgs,
    }
    let argv = std::iter::once("ca-create").chain(extra.iter().copied());
    let args = Cli::try_parse_from(argv).unwrap().args;
    ca::create(&args, OffsetDateTime::now_utc()).unwrap()
}

fn issue_for(ca: &ca::NewCa, role: Role, extra_dns: &[String]) -> anyhow::Result<NewCert> {
    let dns = dns_names(role, "global", "caravan", extra_dns);
    let ips = ip_addresses(role, &[]);
    let params = cert_params(role, "global", "caravan", &dns, &ips, validity())?;
    issue(&params, &ca.cert_pem, &ca.key_pem)
}

#[track_caller]
fn fails_with(result: anyhow::Result<()>, needle: &str) {
    let err = format!("{:#}", result.unwrap_err());
    assert!(err.contains(needle), "{err}");
}

fn der(ca: &ca::NewCa) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap()
}

#[test]
fn each_role_carries_its_names() {
    let extra = vec!["caravan.example.com".to_string(), "localhost".to_string()];
    assert_eq!(
        dns_names(Role::Server, "global", "caravan", &extra),
        ["server.global.caravan", "localhost", "caravan.example.com"]
    );
    assert_eq!(
        dns_names(Role::Client, "eu", "corp", &[]),
        ["client.eu.corp", "localhost"]
    );
    assert_eq!(
        dns_names(Role::Cli, "global", "caravan", &[]),
        ["cli.global.caravan"]
    );
    let ip: IpAddr = "10.0.0.5".parse().unwrap();
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(ip_addresses(Role::Server, &[ip, local]), [local, ip]);
    assert!(ip_addresses(Role::Cli, &[]).is_empty());
}

#[test]
fn servers_and_clients_authenticate_both_ways_the_cli_as_a_client() {
    use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    assert_eq!(extended_key_usages(Role::Server), [ServerAuth, ClientAuth]);
    assert_eq!(extended_key_usages(Role::Client), [ServerAuth, ClientAuth]);
    assert_eq!(extended_key_usages(Role::Cli), [ClientAuth]);
}

#[test]
fn files_are_named_like_nomads() {
    assert_eq!(
        file_names(Role::Server, "global", "caravan"),
        (
            "global-server-caravan.pem".into(),
            "global-server-caravan-key.pem".into()
        )
    );
    assert_eq!(file_names(Role::Cli, "eu", "corp").0, "eu-cli-corp.pem");
}

#[test]
fn params_hold_the_names_usages_and_validity() {
    let v = validity();
    let dns = dns_names(Role::Server, "global", "caravan", &[]);
    let ips = ip_addresses(Role::Server, &[]);
    let p = cert_params(Role::Server, "global", "caravan", &dns, &ips, v).unwrap();
    assert_eq!(p.subject_alt_names.len(), 3);
    assert_eq!(p.is_ca, IsCa::ExplicitNoCa);
    assert_eq!((p.not_before, p.not_after), (v.not_before, v.not_after));
    let bad = cert_params(
        Role::Server,
        "global",
        "caravan",
        &["ü.example".into()],
        &[],
        v,
    );
    assert!(bad.is_err());
}

#[test]
fn a_server_certificate_verifies_against_its_ca_only() {
    let ca = new_ca(&[]);
    let cert = issue_for(&ca, Role::Server, &[]).unwrap();
    let now = UnixTime::now();
    for name in ["server.global.caravan", "localhost", "127.0.0.1"] {
        verify_as_server(&der(&ca), &cert.cert_der, name, now).unwrap();
    }
    verify_as_client(&der(&ca), &cert.cert_der, now).unwrap();
    fails_with(
        verify_as_server(&der(&ca), &cert.cert_der, "server.eu.caravan", now),
        "not valid for name",
    );

    let other = new_ca(&[]);
    fails_with(
        verify_as_server(&der(&other), &cert.cert_der, "server.global.caravan", now),
        "UnknownIssuer",
    );
    fails_with(
        verify_as_client(&der(&other), &cert.cert_der, now),
        "UnknownIssuer",
    );
    // The right name but the wrong key: nothing verifies.
    let mixed = ca::NewCa {
        cert_pem: ca.cert_pem.clone(),
        key_pem: other.key_pem.clone(),
    };
    let forged = issue_for(&mixed, Role::Server, &[]).unwrap();
    fails_with(
        verify_as_client(&der(&ca), &forged.cert_der, now),
        "BadSignature",
    );
}

#[test]
fn client_and_cli_certificates_authenticate_as_what_they_are() {
    let ca = new_ca(&[]);
    let now = UnixTime::now();
    let client = issue_for(&ca, Role::Client, &[]).unwrap();
    verify_as_client(&der(&ca), &client.cert_der, now).unwrap();
    verify_as_server(&der(&ca), &client.cert_der, "client.global.caravan", now).unwrap();
    let cli = issue_for(&ca, Role::Cli, &[]).unwrap();
    verify_as_client(&der(&ca), &cli.cert_der, now).unwrap();
    fails_with(
        verify_as_server(&der(&ca), &cli.cert_der, "cli.global.caravan", now),
        "extended key usage",
    );
}

#[test]
fn a_name_constrained_ca_signs_only_its_zones() {
    let ca = new_ca(&["--name-constraint"]);
    let now = UnixTime::now();
    let inside = issue_for(&ca, Role::Server, &[]).unwrap();
    verify_as_server(&der(&ca), &inside.cert_der, "server.global.caravan", now).unwrap();
    let outside = issue_for(&ca, Role::Server, &["caravan.example.com".into()]).unwrap();
    fails_with(
        verify_as_client(&der(&ca), &outside.cert_der, now),
        "NameConstraintViolation",
    );
}

#[test]
fn run_reads_the_ca_and_writes_the_pair_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(&[]);
    std::fs::write(dir.path().join(CA_CERT_FILE), &ca.cert_pem).unwrap();
    std::fs::write(dir.path().join(CA_KEY_FILE), &ca.key_pem).unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (ca_file, key_file, out) = (path(CA_CERT_FILE), path(CA_KEY_FILE), path(""));
    let args = || CertArgs {
        command: CertCommand::Create(
            parse(&[
                "--client",
                "--ca",
                &ca_file,
                "--key",
                &key_file,
                "--out-dir",
                &out,
            ])
            .unwrap(),
        ),
    };
    run(args(), None).unwrap();
    let key = std::fs::metadata(dir.path().join("global-client-caravan-key.pem")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let pem = std::fs::read(dir.path().join("global-client-caravan.pem")).unwrap();
    let cert = CertificateDer::from_pem_slice(&pem).unwrap();
    verify_as_client(&der(&ca), &cert, UnixTime::now()).unwrap();
    assert!(
        run(args(), Some("global"))
            .unwrap_err()
            .to_string()
            .contains("refusing to overwrite")
    );
}

#[test]
fn exactly_one_role_is_required() {
    assert!(parse(&[]).is_err());
    assert!(parse(&["--server", "--cli"]).is_err());
    let a = parse(&["--cli"]).unwrap();
    assert_eq!(Role::from_flags(&a.role), Role::Cli);
    assert_eq!((a.domain.as_str(), a.days), ("caravan", 365));
    assert_eq!(a.ca, PathBuf::from(CA_CERT_FILE));
    assert_eq!(a.key, PathBuf::from(CA_KEY_FILE));
}

#[test]
fn the_report_warns_about_server_certificates_only() {
    let args = parse(&["--server"]).unwrap();
    let (cert, key) = (PathBuf::from("a.pem"), PathBuf::from("a-key.pem"));
    let server = report(Role::Server, &args, &cert, &key);
    assert!(
        server.starts_with("==> WARNING: Server certificates"),
        "{server}"
    );
    let client = report(Role::Client, &args, &cert, &key);
    assert_eq!(
        client,
        "==> Using CA file caravan-agent-ca.pem and CA key caravan-agent-ca-key.pem\n\
         ==> Client certificate saved to: a.pem\n\
         ==> Client certificate key saved to: a-key.pem\n"
    );
}
