//! `caravan tls ca create` and `caravan tls cert create`: a private certificate authority and
//! the server, client and CLI certificates it signs for mutual TLS, as `nomad tls …` does.
//! Works on the local machine only (no server). What goes into a certificate is decided by
//! pure functions in [`ca`] and [`cert`]; reading and writing files stays in their `run`.

pub mod ca;
pub mod cert;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use time::{Duration, OffsetDateTime};

/// Arguments of `caravan tls`.
#[derive(Debug, Args)]
pub struct TlsArgs {
    #[command(subcommand)]
    pub command: TlsCommand,
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// The certificate authority that signs the agents' certificates.
    Ca(ca::CaArgs),
    /// Server, client and CLI certificates signed by that authority.
    Cert(cert::CertArgs),
}

/// Runs `caravan tls`; `region` is the global `--region`, the region certificates are for.
pub fn run(args: TlsArgs, region: Option<&str>) -> anyhow::Result<()> {
    match args.command {
        TlsCommand::Ca(args) => ca::run(args),
        TlsCommand::Cert(args) => cert::run(args, region),
    }
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From a minute before `now` (so a clock slightly behind still accepts the certificate) to
    /// `days` days after `now`.
    pub fn days_from(now: OffsetDateTime, days: u32) -> anyhow::Result<Validity> {
        if days == 0 {
            bail!("--days must be at least 1");
        }
        let not_after = now
            .checked_add(Duration::days(days.into()))
            .filter(|t| t.year() <= 9999)
            .ok_or_else(|| anyhow!("--days {days} is too far in the future"))?;
        Ok(Validity {
            not_before: now - Duration::minutes(1),
            not_after,
        })
    }
}

/// Checks a DNS domain such as `caravan` or `caravan.example.com`: dot-separated labels of
/// ASCII letters, digits and inner hyphens, at most 63 characters each.
pub fn check_domain(flag: &str, value: &str) -> anyhow::Result<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if value.len() > 253 || !value.split('.').all(label_ok) {
        bail!("{flag} {value:?} is not a valid DNS name");
    }
    Ok(())
}

/// `dir/name`, or just `name` in the current directory (how the paths are printed).
pub fn out_path(dir: &Path, name: &str) -> PathBuf {
    if dir == Path::new(".") || dir.as_os_str().is_empty() {
        PathBuf::from(name)
    } else {
        dir.join(name)
    }
}

/// A file to write: its path, contents and permission bits.
#[derive(Debug)]
pub struct NewFile {
    pub path: PathBuf,
    pub contents: String,
    pub mode: u32,
}

/// Writes every file, refusing (before writing any) if one of them exists already.
pub fn write_new_files(files: &[NewFile]) -> anyhow::Result<()> {
    for file in files {
        if file.path.symlink_metadata().is_ok() {
            bail!(
                "{} already exists; refusing to overwrite it",
                file.path.display()
            );
        }
    }
    for file in files {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(file.mode)
            .open(&file.path)
            .with_context(|| format!("creating {}", file.path.display()))?;
        out.write_all(file.contents.as_bytes())
            .and_then(|()| out.sync_all())
            .with_context(|| format!("writing {}", file.path.display()))?;
    }
    Ok(())
}

fn roots(ca: &CertificateDer<'_>) -> anyhow::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone().into_owned())
        .map_err(|e| anyhow!("the CA certificate is not usable as a trust anchor: {e}"))?;
    Ok(Arc::new(roots))
}

/// Checks, as a TLS server checks a client, that `cert` chains to `ca` and may authenticate
/// a client at `now` (every certificate these commands issue may).
pub fn verify_as_client(
    ca: &CertificateDer<'_>,
    cert: &CertificateDer<'_>,
    now: UnixTime,
) -> anyhow::Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider).build()?;
    verifier.verify_client_cert(cert, &[], now)?;
    Ok(())
}

/// Checks, as a TLS client checks a server, that `cert` chains to `ca`, may authenticate a
/// server at `now` and carries the DNS name or IP address `name`.
pub fn verify_as_server(
    ca: &CertificateDer<'_>,
    cert: &CertificateDer<'_>,
    name: &str,
    now: UnixTime,
) -> anyhow::Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca)?, provider).build()?;
    let name = ServerName::try_from(name.to_string())?;
    verifier.verify_server_cert(cert, &[], &name, &[], now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_starts_a_minute_early_and_lasts_the_days() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let v = Validity::days_from(now, 365).unwrap();
        assert_eq!(v.not_before, now - Duration::minutes(1));
        assert_eq!(v.not_after, now + Duration::days(365));
        assert!(Validity::days_from(now, 0).is_err());
        assert!(Validity::days_from(now, u32::MAX).is_err());
    }

    #[test]
    fn domains_are_checked() {
        for ok in ["caravan", "caravan.example.com", "eu-west-1", "a1"] {
            check_domain("--domain", ok).unwrap();
        }
        for bad in ["", "a..b", "-a", "a-", "under_score", "dot.", "ü"] {
            assert!(check_domain("--domain", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_in_the_current_directory_are_bare_names() {
        assert_eq!(out_path(Path::new("."), "a.pem"), PathBuf::from("a.pem"));
        assert_eq!(
            out_path(Path::new("/etc/caravan"), "a.pem"),
            PathBuf::from("/etc/caravan/a.pem")
        );
    }

    #[test]
    fn existing_files_are_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, mode| NewFile {
            path: dir.path().join(name),
            contents: format!("{name}\n"),
            mode,
        };
        write_new_files(&[file("a.pem", 0o644), file("a-key.pem", 0o600)]).unwrap();
        let mode = |name: &str| {
            let meta = std::fs::metadata(dir.path().join(name)).unwrap();
            meta.permissions().mode() & 0o777
        };
        assert_eq!(mode("a-key.pem"), 0o600);
        // One of the two exists: neither is written.
        let err = write_new_files(&[file("b.pem", 0o644), file("a-key.pem", 0o600)]);
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("refusing to overwrite")
        );
        assert!(!dir.path().join("b.pem").exists());
    }
}
