//! The agent's TLS (`tls:` in the config file, `--tls-*` flags), as Nomad's `tls` block: the
//! CA, certificate and key files, HTTPS on the API (`http`) and mutual TLS between the servers
//! and clients (`rpc`), `verifyServerHostname`, `verifyHttpsClient`; reloaded on `SIGHUP`.

use std::path::PathBuf;
use std::sync::Arc;

use caravan_tls::{Tls, TlsSettings};

/// What the flags and the config file say.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsArgs {
    /// Serve the API (and a client's API) over HTTPS.
    #[arg(long = "tls-http")]
    #[serde(default)]
    pub http: bool,
    /// Mutual TLS between servers (Raft, forwarding) and between servers and clients. The API
    /// and these share one port, so it goes with --tls-http.
    #[arg(long = "tls-rpc")]
    #[serde(default)]
    pub rpc: bool,
    /// The CA certificate (PEM) every peer's certificate must chain to.
    #[arg(long = "tls-ca-file")]
    pub ca_file: Option<PathBuf>,
    /// This agent's certificate (PEM; `caravan tls cert create`).
    #[arg(long = "tls-cert-file")]
    pub cert_file: Option<PathBuf>,
    /// This agent's private key (PEM).
    #[arg(long = "tls-key-file")]
    pub key_file: Option<PathBuf>,
    /// Check that servers present `server.<region>.caravan` (and clients
    /// `client.<region>.caravan`) whatever address was dialed.
    #[arg(long = "tls-verify-server-hostname")]
    #[serde(default)]
    pub verify_server_hostname: bool,
    /// Require every HTTPS client (CLI, kubectl, agents) to present a certificate from the CA.
    #[arg(long = "tls-verify-https-client")]
    #[serde(default)]
    pub verify_https_client: bool,
}

impl TlsArgs {
    /// The file's settings under the flags': a flag given wins.
    pub fn merged_over(self, file: TlsArgs) -> TlsArgs {
        TlsArgs {
            http: self.http || file.http,
            rpc: self.rpc || file.rpc,
            ca_file: self.ca_file.or(file.ca_file),
            cert_file: self.cert_file.or(file.cert_file),
            key_file: self.key_file.or(file.key_file),
            verify_server_hostname: self.verify_server_hostname || file.verify_server_hostname,
            verify_https_client: self.verify_https_client || file.verify_https_client,
        }
    }

    /// The settings to load, `None` without TLS; refused when they do not make sense.
    pub fn settings(&self) -> anyhow::Result<Option<TlsSettings>> {
        if !self.http && !self.rpc {
            let given = self.ca_file.is_some()
                || self.cert_file.is_some()
                || self.key_file.is_some()
                || self.verify_server_hostname
                || self.verify_https_client;
            anyhow::ensure!(
                !given,
                "TLS files or checks are set but TLS is off: enable tls.http and tls.rpc \
                 (--tls-http --tls-rpc)"
            );
            return Ok(None);
        }
        anyhow::ensure!(
            self.http == self.rpc,
            "tls.http and tls.rpc must be both on or both off: the API and the servers' and \
             clients' traffic share one port"
        );
        let file = |value: &Option<PathBuf>, flag: &str| {
            value
                .clone()
                .ok_or_else(|| anyhow::anyhow!("TLS needs {flag} (tls.{})", config_key(flag)))
        };
        Ok(Some(TlsSettings {
            ca_file: file(&self.ca_file, "--tls-ca-file")?,
            cert_file: Some(file(&self.cert_file, "--tls-cert-file")?),
            key_file: Some(file(&self.key_file, "--tls-key-file")?),
            verify_server_hostname: self.verify_server_hostname,
            verify_https_client: self.verify_https_client,
        }))
    }
}

fn config_key(flag: &str) -> &'static str {
    match flag {
        "--tls-ca-file" => "caFile",
        "--tls-cert-file" => "certFile",
        _ => "keyFile",
    }
}

/// Loads the agent's TLS and reloads it on every `SIGHUP` (new connections use the new files;
/// open ones, and the cluster, carry on).
pub fn start(args: &TlsArgs) -> anyhow::Result<Option<Arc<Tls>>> {
    let Some(settings) = args.settings()? else {
        return Ok(None);
    };
    let tls = Tls::load(settings).map_err(|e| anyhow::anyhow!("invalid TLS settings: {e}"))?;
    let reloading = tls.clone();
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match reloading.reload() {
                Ok(()) => tracing::info!("reloaded the TLS certificates on SIGHUP"),
                Err(e) => tracing::error!(
                    error = %e,
                    "failed to reload the TLS certificates on SIGHUP: keeping the loaded ones"
                ),
            }
        }
    });
    Ok(Some(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_all_or_nothing() {
        assert_eq!(TlsArgs::default().settings().unwrap(), None);
        let files = TlsArgs {
            ca_file: Some("ca.pem".into()),
            ..TlsArgs::default()
        };
        assert!(
            files.settings().is_err(),
            "files without TLS on are refused"
        );
        let half = TlsArgs {
            http: true,
            ca_file: Some("ca.pem".into()),
            cert_file: Some("c.pem".into()),
            key_file: Some("k.pem".into()),
            ..TlsArgs::default()
        };
        assert!(half.settings().unwrap_err().to_string().contains("tls.rpc"));
        let on = TlsArgs { rpc: true, ..half };
        let settings = on.settings().unwrap().unwrap();
        assert_eq!(settings.ca_file, PathBuf::from("ca.pem"));
        let missing = TlsArgs {
            key_file: None,
            ..on
        };
        assert!(
            missing
                .settings()
                .unwrap_err()
                .to_string()
                .contains("keyFile")
        );
    }
}
