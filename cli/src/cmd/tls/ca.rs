//! `caravan tls ca create`: a new certificate authority, written as `caravan-agent-ca.pem` and
//! `caravan-agent-ca-key.pem` (mode 0600), as `nomad tls ca create` writes
//! `nomad-agent-ca.pem`. With `--name-constraint` the CA may only sign names under `--domain`,
//! `localhost` and each `--additional-domain`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, GeneralSubtree, IsCa, KeyPair,
    KeyUsagePurpose, NameConstraints, PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

use super::{NewFile, Validity, check_domain, out_path, write_new_files};

/// The CA certificate's file name.
pub const CA_CERT_FILE: &str = "caravan-agent-ca.pem";
/// The CA private key's file name.
pub const CA_KEY_FILE: &str = "caravan-agent-ca-key.pem";

/// Arguments of `caravan tls ca`.
#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(subcommand)]
    pub command: CaCommand,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a CA certificate and private key (ECDSA P-256) in `--out-dir`; refuses to
    /// overwrite existing files.
    Create(CaCreateArgs),
}

#[derive(Debug, Args)]
pub struct CaCreateArgs {
    /// How many days the CA certificate is valid.
    #[arg(long, default_value_t = 1825)]
    pub days: u32,
    /// The cluster's domain; with `--name-constraint`, the DNS zone the CA may sign names in.
    #[arg(long, default_value = "caravan")]
    pub domain: String,
    /// The CA's common name (default: `Caravan Agent CA <key id>`).
    #[arg(long)]
    pub common_name: Option<String>,
    /// Only let the CA sign DNS names under `--domain`, `localhost` and each
    /// `--additional-domain` (an X.509 name constraint).
    #[arg(long)]
    pub name_constraint: bool,
    /// Another DNS zone the CA may sign names in (repeat for several; needs
    /// `--name-constraint`).
    #[arg(
        long = "additional-domain",
        value_name = "DOMAIN",
        requires = "name_constraint"
    )]
    pub additional_domains: Vec<String>,
    /// The directory to write the files into.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out_dir: PathBuf,
}

/// The DNS zones a name-constrained CA may sign names in: the domain, `localhost`, then the
/// additional domains, without repeats.
pub fn permitted_domains(domain: &str, additional: &[String]) -> Vec<String> {
    let mut zones: Vec<String> = Vec::new();
    for zone in [domain, "localhost"]
        .into_iter()
        .chain(additional.iter().map(String::as_str))
    {
        if !zones.iter().any(|z| z == zone) {
            zones.push(zone.to_string());
        }
    }
    zones
}

/// The common name when none is given, telling CAs apart by their key: `Caravan Agent CA`
/// and the first eight bytes of the key identifier in hex.
pub fn default_common_name(key_id: &[u8]) -> String {
    let mut name = "Caravan Agent CA ".to_string();
    for b in key_id.iter().take(8) {
        let _ = write!(name, "{b:02x}");
    }
    name
}

/// What goes into a CA certificate: the common name, a certificate authority allowed to sign
/// certificates and revocation lists, and with `permitted` a name constraint to those zones.
pub fn ca_params(
    common_name: &str,
    permitted: Option<&[String]>,
    validity: Validity,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    if let Some(zones) = permitted {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: zones
                .iter()
                .map(|z| GeneralSubtree::DnsName(z.clone()))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
    }
    params
}

/// A new CA: its certificate and private key (PKCS#8), both PEM.
#[derive(Debug)]
pub struct NewCa {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a P-256 key and the self-signed CA certificate `args` describe, valid from `now`.
pub fn create(args: &CaCreateArgs, now: OffsetDateTime) -> anyhow::Result<NewCa> {
    check_domain("--domain", &args.domain)?;
    for zone in &args.additional_domains {
        check_domain("--additional-domain", zone)?;
    }
    let validity = Validity::days_from(now, args.days)?;
    let permitted = permitted_domains(&args.domain, &args.additional_domains);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let common_name = match &args.common_name {
        Some(name) => name.clone(),
        None => default_common_name(&CertificateParams::default().key_identifier(&key)),
    };
    let constraint = args.name_constraint.then_some(permitted.as_slice());
    let params = ca_params(&common_name, constraint, validity);
    let cert = params
        .self_signed(&key)
        .context("signing the CA certificate")?;
    Ok(NewCa {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// What `caravan tls ca create` prints after writing the files.
pub fn report(cert: &Path, key: &Path) -> String {
    format!(
        "==> CA certificate saved to: {}\n==> CA certificate key saved to: {}\n",
        cert.display(),
        key.display()
    )
}

pub fn run(args: CaArgs) -> anyhow::Result<()> {
    match args.command {
        CaCommand::Create(args) => {
            let ca = create(&args, OffsetDateTime::now_utc())?;
            let cert_path = out_path(&args.out_dir, CA_CERT_FILE);
            let key_path = out_path(&args.out_dir, CA_KEY_FILE);
            write_new_files(&[
                NewFile {
                    path: cert_path.clone(),
                    contents: ca.cert_pem,
                    mode: 0o644,
                },
                NewFile {
                    path: key_path.clone(),
                    contents: ca.key_pem,
                    mode: 0o600,
                },
            ])?;
            print!("{}", report(&cert_path, &key_path));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CaCreateArgs,
    }

    pub(crate) fn args(extra: &[&str]) -> CaCreateArgs {
        let argv = std::iter::once("ca-create").chain(extra.iter().copied());
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn the_defaults_are_nomads() {
        let a = args(&[]);
        assert_eq!(a.days, 1825);
        assert_eq!(a.domain, "caravan");
        assert_eq!(a.out_dir, PathBuf::from("."));
        assert!(!a.name_constraint);
        assert!(Cli::try_parse_from(["ca-create", "--additional-domain", "x"]).is_err());
    }

    #[test]
    fn a_ca_may_sign_and_is_named_by_its_key() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let validity = Validity::days_from(now, 10).unwrap();
        let p = ca_params("Test CA", None, validity);
        assert_eq!(p.is_ca, IsCa::Ca(BasicConstraints::Unconstrained));
        assert!(p.key_usages.contains(&KeyUsagePurpose::KeyCertSign));
        assert_eq!(
            (p.not_before, p.not_after),
            (validity.not_before, validity.not_after)
        );
        assert!(p.name_constraints.is_none());
        assert_eq!(
            default_common_name(&[0xab, 0x01, 2, 3, 4, 5, 6, 7, 8, 9]),
            "Caravan Agent CA ab01020304050607"
        );
    }

    #[test]
    fn a_name_constraint_permits_the_domain_localhost_and_the_additional_ones() {
        let zones = permitted_domains("caravan", &["example.com".into(), "caravan".into()]);
        assert_eq!(zones, ["caravan", "localhost", "example.com"]);
        let now = OffsetDateTime::now_utc();
        let p = ca_params("CA", Some(&zones), Validity::days_from(now, 1).unwrap());
        let permitted = p.name_constraints.unwrap().permitted_subtrees;
        assert_eq!(permitted.len(), 3);
        assert_eq!(permitted[0], GeneralSubtree::DnsName("caravan".into()));
    }

    #[test]
    fn create_writes_pem_and_checks_its_flags() {
        let ca = create(&args(&[]), OffsetDateTime::now_utc()).unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(ca.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let bad = create(&args(&["--domain", "no_such"]), OffsetDateTime::now_utc());
        assert!(bad.is_err());
        assert!(create(&args(&["--days", "0"]), OffsetDateTime::now_utc()).is_err());
    }

    #[test]
    fn the_report_names_both_files() {
        let text = report(Path::new("ca.pem"), Path::new("ca-key.pem"));
        assert_eq!(
            text,
            "==> CA certificate saved to: ca.pem\n==> CA certificate key saved to: ca-key.pem\n"
        );
    }

    #[test]
    fn run_writes_both_files_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap();
        let ca_args = || CaArgs {
            command: CaCommand::Create(args(&["--out-dir", out])),
        };
        run(ca_args()).unwrap();
        let key = std::fs::metadata(dir.path().join(CA_KEY_FILE)).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
        assert!(dir.path().join(CA_CERT_FILE).exists());
        let again = run(ca_args()).unwrap_err().to_string();
        assert!(again.contains("refusing to overwrite"), "{again}");
    }
}
