//! Caravan's TLS: the CA, certificate and key of an agent or CLI, read from PEM files and
//! reloadable (`SIGHUP`), turned into rustls configurations for the servers' API (HTTPS,
//! optionally requiring client certificates: `verifyHttpsClient`), the node agents' API, and
//! every client: the CLI, node agents, servers calling each other (Raft, forwarding, the
//! broker) and calling node agents.
//!
//! A server's certificate names `server.<region>.caravan`, a client's `client.<region>.caravan`
//! (`caravan tls cert create`); with `verifyServerHostname` a connection to a server (or a node
//! agent) checks that name whatever address it dialed, as Nomad's `verify_server_hostname`
//! does; without it, the chain to the CA is checked and the name is not.
//!
//! ```text
//! files ─▶ Tls::load ─▶ Material (roots, certified key, server config) ─┬▶ server_config() per accepted connection
//!   ▲                                   │ swapped whole by reload()       └▶ client_config(): a verifier and a client
//!   └──── SIGHUP: reload() ─────────────┘                                    certificate that read the current material
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

pub use tokio_rustls::TlsAcceptor;

/// The domain certificates are named in: `server.<region>.caravan`.
pub const DOMAIN: &str = "caravan";

/// The name a server's certificate carries in `region`.
pub fn server_name(region: &str) -> String {
    format!("server.{region}.{DOMAIN}")
}

/// The name a client's (node agent's) certificate carries in `region`.
pub fn client_name(region: &str) -> String {
    format!("client.{region}.{DOMAIN}")
}

/// What an agent or the CLI is configured with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// The CA every peer's certificate must chain to.
    pub ca_file: PathBuf,
    /// This process's certificate (PEM, leaf first) and key; a CLI may have none.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Check that servers (and node agents) present `server.<region>.caravan`
    /// (`client.<region>.caravan`), whatever address was dialed.
    pub verify_server_hostname: bool,
    /// Require a certificate from the CA of every HTTPS client.
    pub verify_https_client: bool,
}

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// Whom a client connection is for: what name the peer's certificate must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A server: `server.<region>.caravan` under `verifyServerHostname`.
    Server { region: String },
    /// A node agent: `client.<region>.caravan` under `verifyServerHostname`.
    Client { region: String },
    /// The name in the URL (the CLI, kubectl-style), or this one when given.
    Named(Option<String>),
}

/// The loaded files.
struct Material {
    roots: Arc<RootCertStore>,
    certified: Option<Arc<CertifiedKey>>,
    server: Option<Arc<rustls::ServerConfig>>,
    verifier: Arc<WebPkiServerVerifier>,
}

/// An agent's or CLI's TLS, reloadable.
pub struct Tls {
    settings: TlsSettings,
    material: RwLock<Arc<Material>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("{}: not PEM certificates: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{}: no certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

fn load(settings: &TlsSettings) -> Result<Material, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(&settings.ca_file)? {
        roots
            .add(cert)
            .map_err(|e| TlsError(format!("{}: {e}", settings.ca_file.display())))?;
    }
    let roots = Arc::new(roots);
    let certified = match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| TlsError(format!("{}: no usable private key: {e}", key.display())))?;
            let certified = CertifiedKey::from_der(chain, key_der, &provider()).map_err(|e| {
                TlsError(format!(
                    "{} and {} do not make a usable certificate: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            Some(Arc::new(certified))
        }
        (None, None) => None,
        _ => {
            return Err(TlsError(
                "a certificate needs both its file and its key file".into(),
            ));
        }
    };
    let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| TlsError(format!("the CA cannot verify servers: {e}")))?;
    let server = match &certified {
        Some(certified) => Some(Arc::new(server_config(
            settings,
            roots.clone(),
            certified.clone(),
        )?)),
        None => None,
    };
    Ok(Material {
        roots,
        certified,
        server,
        verifier,
    })
}

/// A fixed certificate for a server configuration (a new configuration is built on reload).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn server_config(
    settings: &TlsSettings,
    roots: Arc<RootCertStore>,
    certified: Arc<CertifiedKey>,
) -> Result<rustls::ServerConfig, TlsError> {
    let builder = WebPkiClientVerifier::builder_with_provider(roots, provider());
    let builder = if settings.verify_https_client {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    let verifier = builder
        .build()
        .map_err(|e| TlsError(format!("the CA cannot verify clients: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(Fixed(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl Tls {
    /// Reads the files named by `settings`.
    pub fn load(settings: TlsSettings) -> Result<Arc<Tls>, TlsError> {
        let material = load(&settings)?;
        Ok(Arc::new(Tls {
            settings,
            material: RwLock::new(Arc::new(material)),
        }))
    }

    /// What this was configured with.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    fn current(&self) -> Arc<Material> {
        self.material
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the files again; on an error the loaded material stays. New connections use the
    /// new material; open ones keep theirs.
    pub fn reload(&self) -> Result<(), TlsError> {
        let material = load(&self.settings)?;
        *self
            .material
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(material);
        Ok(())
    }

    /// The server configuration for the next accepted connection; `None` without a
    /// certificate (a CLI's).
    pub fn server_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.current().server.clone()
    }

    /// A client configuration checking a peer as `peer` says and presenting this process's
    /// certificate, both as of the latest reload.
    pub fn client_config(self: &Arc<Self>, peer: Peer) -> rustls::ClientConfig {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                tls: self.clone(),
                peer,
            }))
            .with_client_cert_resolver(Arc::new(ClientCert(self.clone())));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }
}

/// Checks a server's certificate against the current CA, for the name its [`Peer`] expects.
struct Verifier {
    tls: Arc<Tls>,
    peer: Peer,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("peer", &self.peer)
            .finish()
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        dialed: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verifier = self.tls.current().verifier.clone();
        let hostname = self.tls.settings.verify_server_hostname;
        let expected = match &self.peer {
            Peer::Server { region } if hostname => Some(server_name(region)),
            Peer::Client { region } if hostname => Some(client_name(region)),
            Peer::Named(Some(name)) => Some(name.clone()),
            _ => None,
        };
        let expected = match expected {
            Some(name) => Some(
                ServerName::try_from(name)
                    .map_err(|e| rustls::Error::General(format!("invalid server name: {e}")))?,
            ),
            None => None,
        };
        let name = expected.as_ref().unwrap_or(dialed);
        let result =
            verifier.verify_server_cert(end_entity, intermediates, name, ocsp_response, now);
        let checks_name = hostname || matches!(self.peer, Peer::Named(_));
        match result {
            // Without verifyServerHostname, the chain is what counts (Nomad's default).
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !checks_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls
            .current()
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls
            .current()
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.tls.current().verifier.supported_verify_schemes()
    }
}

/// This process's certificate, as of the latest reload, for servers that ask for one.
struct ClientCert(Arc<Tls>);

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientCert")
    }
}

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0.current().certified.clone()
    }

    fn has_certs(&self) -> bool {
        self.0.current().certified.is_some()
    }
}

/// The roots, for tests and callers that build their own verifiers.
pub fn roots(tls: &Tls) -> Arc<RootCertStore> {
    tls.current().roots.clone()
}

pub mod serve;
#[cfg(test)]
mod tests;
