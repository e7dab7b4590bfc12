//! `caravan tls cert create --server|--client|--cli`: a certificate and private key signed by
//! the CA of `caravan tls ca create`, written as `<region>-server-<domain>.pem` and
//! `<region>-server-<domain>-key.pem` (mode 0600), as `nomad tls cert create` writes
//! `global-server-nomad.pem`.
//!
//! Server certificates carry `server.<region>.<domain>` (the name checked when
//! `verifyServerHostname` is on), `localhost` and 127.0.0.1; client certificates
//! `client.<region>.<domain>`, `localhost` and 127.0.0.1; CLI certificates
//! `cli.<region>.<domain>`. Servers and clients authenticate both ways (serverAuth and
//! clientAuth); the CLI only as a client. The region is the global `--region`
//! (`CARAVAN_REGION`), `global` when not given.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use rcgen::string::Ia5String;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;

use super::ca::{CA_CERT_FILE, CA_KEY_FILE};
use super::{NewFile, Validity, check_domain, out_path, verify_as_client, write_new_files};

/// Arguments of `caravan tls cert`.
#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(subcommand)]
    pub command: CertCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CertCommand {
    /// Create a server, client or CLI certificate and private key (ECDSA P-256) signed by the
    /// CA, in `--out-dir`; refuses to overwrite existing files.
    ///
    /// The region is the global `--region` (`CARAVAN_REGION`), `global` when not given: a
    /// server certificate for region `eu` carries `server.eu.<domain>`.
    Create(CertCreateArgs),
}

/// Which kind of certificate: exactly one of the three.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RoleFlags {
    /// A certificate for servers.
    #[arg(long)]
    pub server: bool,
    /// A certificate for client nodes.
    #[arg(long)]
    pub client: bool,
    /// A certificate for the command-line client.
    #[arg(long)]
    pub cli: bool,
}

#[derive(Debug, Args)]
pub struct CertCreateArgs {
    #[command(flatten)]
    pub role: RoleFlags,
    /// The cluster's domain.
    #[arg(long, default_value = "caravan")]
    pub domain: String,
    /// How many days the certificate is valid.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// The CA certificate.
    #[arg(long, default_value = CA_CERT_FILE, value_name = "FILE")]
    pub ca: PathBuf,
    /// The CA private key (PKCS#8 PEM).
    #[arg(long, default_value = CA_KEY_FILE, value_name = "FILE")]
    pub key: PathBuf,
    /// Another DNS name the certificate carries (repeat for several).
    #[arg(long = "additional-dnsname", value_name = "NAME")]
    pub additional_dnsnames: Vec<String>,
    /// Another IP address the certificate carries (repeat for several).
    #[arg(long = "additional-ipaddress", value_name = "IP")]
    pub additional_ipaddresses: Vec<IpAddr>,
    /// The directory to write the files into.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
    Cli,
}

impl Role {
    fn from_flags(flags: &RoleFlags) -> Role {
        match (flags.server, flags.client) {
            (true, _) => Role::Server,
            (_, true) => Role::Client,
            _ => Role::Cli,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Cli => "cli",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Role::Server => "Server",
            Role::Client => "Client",
            Role::Cli => "CLI",
        }
    }
}

/// The name a certificate is issued to, e.g. `server.global.caravan`: its common name and
/// first DNS name.
pub fn primary_name(role: Role, region: &str, domain: &str) -> String {
    format!("{}.{region}.{domain}", role.as_str())
}

/// The DNS names a certificate carries: the primary name, `localhost` for servers and
/// clients, then the additional names, without repeats.
pub fn dns_names(role: Role, region: &str, domain: &str, additional: &[String]) -> Vec<String> {
    let mut names = vec![primary_name(role, region, domain)];
    if role != Role::Cli {
        names.push("localhost".to_string());
    }
    for name in additional {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The IP addresses a certificate carries: 127.0.0.1 for servers and clients, then the
/// additional addresses, without repeats.
pub fn ip_addresses(role: Role, additional: &[IpAddr]) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    if role != Role::Cli {
        ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    for ip in additional {
        if !ips.contains(ip) {
            ips.push(*ip);
        }
    }
    ips
}

/// Servers and clients talk mutual TLS both ways; the CLI is only ever a client.
pub fn extended_key_usages(role: Role) -> Vec<ExtendedKeyUsagePurpose> {
    match role {
        Role::Server | Role::Client => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Cli => vec![ExtendedKeyUsagePurpose::ClientAuth],
    }
}

/// The certificate's and the key's file names, e.g. `global-server-caravan.pem` and
/// `global-server-caravan-key.pem`.
pub fn file_names(role: Role, region: &str, domain: &str) -> (String, String) {
    let stem = format!("{region}-{}-{domain}", role.as_str());
    (format!("{stem}.pem"), format!("{stem}-key.pem"))
}

/// What goes into a certificate for `role`: its names, usages and validity.
pub fn cert_params(
    role: Role,
    region: &str,
    domain: &str,
    dns: &[String],
    ips: &[IpAddr],
    validity: Validity,
) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, primary_name(role, region, domain));
    params.distinguished_name = dn;
    params.subject_alt_names = dns
        .iter()
        .map(|name| {
            Ia5String::try_from(name.as_str())
                .map(SanType::DnsName)
                .map_err(|_| anyhow!("{name:?} is not a valid DNS name"))
        })
        .chain(ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
        .collect::<anyhow::Result<_>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = extended_key_usages(role);
    params.use_authority_key_identifier_extension = true;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    Ok(params)
}

/// A new certificate and its private key (PKCS#8), both PEM.
#[derive(Debug)]
pub struct NewCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
}

/// Generates a P-256 key and signs a certificate with `params` by the CA (both PEM).
pub fn issue(
    params: &CertificateParams,
    ca_pem: &str,
    ca_key_pem: &str,
) -> anyhow::Result<NewCert> {
    let ca_key = KeyPair::from_pem(ca_key_pem)
        .map_err(|e| anyhow!("reading the CA key (PKCS#8 PEM, BEGIN PRIVATE KEY): {e}"))?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)
        .map_err(|e| anyhow!("reading the CA certificate: {e}"))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params
        .signed_by(&key, &issuer)
        .context("signing the certificate")?;
    Ok(NewCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().clone(),
    })
}

/// What `caravan tls cert create` prints: for servers a warning, then the paths.
pub fn report(role: Role, args: &CertCreateArgs, cert: &Path, key: &Path) -> String {
    let mut out = String::new();
    if role == Role::Server {
        out.push_str(
            "==> WARNING: Server certificates let their holder pose as a server to clients, \
             node agents and the CLI\n    (it sees their tokens and what they send). Only put \
             them on server machines and keep them as safe as the CA key.\n",
        );
    }
    let title = role.title();
    out.push_str(&format!(
        "==> Using CA file {} and CA key {}\n==> {title} certificate saved to: {}\n\
         ==> {title} certificate key saved to: {}\n",
        args.ca.display(),
        args.key.display(),
        cert.display(),
        key.display()
    ));
    out
}

/// The region certificates are for when the global `--region` is not given.
pub const DEFAULT_REGION: &str = "global";

/// Runs `caravan tls cert create`; `region` is the global `--region` (`CARAVAN_REGION`).
pub fn run(args: CertArgs, region: Option<&str>) -> anyhow::Result<()> {
    let CertCommand::Create(args) = args.command;
    let role = Role::from_flags(&args.role);
    let region = region.unwrap_or(DEFAULT_REGION);
    check_domain("--region", region)?;
    if region.contains('.') {
        bail!("--region {region:?} must be a single DNS label");
    }
    check_domain("--domain", &args.domain)?;
    let validity = Validity::days_from(OffsetDateTime::now_utc(), args.days)?;
    let dns = dns_names(role, region, &args.domain, &args.additional_dnsnames);
    let ips = ip_addresses(role, &args.additional_ipaddresses);
    let params = cert_params(role, region, &args.domain, &dns, &ips, validity)?;

    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let ca_pem = read(&args.ca)?;
    let ca_key_pem = read(&args.key)?;
    let cert = issue(&params, &ca_pem, &ca_key_pem)?;
    // A key that does not belong to the CA certificate, or a name outside the CA's name
    // constraint, gives a certificate nobody accepts: refuse to write it.
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| anyhow!("reading {}: {e}", args.ca.display()))?;
    verify_as_client(&ca_der, &cert.cert_der, UnixTime::now()).with_context(|| {
        format!(
            "the new certificate does not verify against {}: is {} that CA's key, and are \
             the names within its name constraint?",
            args.ca.display(),
            args.key.display()
        )
    })?;

    let (cert_name, key_name) = file_names(role, region, &args.domain);
    let cert_path = out_path(&args.out_dir, &cert_name);
    let key_path = out_path(&args.out_dir, &key_name);
    write_new_files(&[
        NewFile {
            path: cert_path.clone(),
            contents: cert.cert_pem,
            mode: 0o644,
        },
        NewFile {
            path: key_path.clone(),
            contents: cert.key_pem,
            mode: 0o600,
        },
    ])?;
    print!("{}", report(role, &args, &cert_path, &key_path));
    Ok(())
}

#[cfg(test)]
mod tests;
