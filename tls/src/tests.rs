//! Real handshakes in memory between configurations made from files a test CA issued.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use super::*;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate for `names` (and 127.0.0.1) issued by `ca`, as PEM (cert, key).
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn settings(dir: &Path, ca: &Ca, leaf: Option<(String, String)>, tag: &str) -> TlsSettings {
    let ca_file = write(dir, &format!("{tag}-ca.pem"), &ca.pem);
    let (cert_file, key_file) = match leaf {
        Some((cert, key)) => (
            Some(write(dir, &format!("{tag}.pem"), &cert)),
            Some(write(dir, &format!("{tag}-key.pem"), &key)),
        ),
        None => (None, None),
    };
    TlsSettings {
        ca_file,
        cert_file,
        key_file,
        verify_server_hostname: true,
        verify_https_client: true,
    }
}

/// Whether a client with `client` reaches a server with `server`, dialing `dialed`.
async fn handshake(server: &Arc<Tls>, client: &Arc<Tls>, peer: Peer, dialed: &str) -> bool {
    let acceptor = TlsAcceptor::from(server.server_config().unwrap());
    let connector = TlsConnector::from(Arc::new(client.client_config(peer)));
    let (a, b) = tokio::io::duplex(64 * 1024);
    let serve = tokio::spawn(async move {
        let mut stream = acceptor.accept(a).await.ok()?;
        stream.write_all(b"ok").await.ok()?;
        stream.shutdown().await.ok()
    });
    let name = ServerName::try_from(dialed.to_string()).unwrap();
    let answer = async {
        let mut stream = connector.connect(name, b).await.ok()?;
        let mut buf = [0u8; 2];
        stream.read_exact(&mut buf).await.ok()?;
        Some(buf == *b"ok")
    }
    .await;
    let _ = serve.await;
    answer == Some(true)
}

#[tokio::test]
async fn mutual_tls_needs_certificates_from_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca();
    let ca2 = ca();
    let server = Tls::load(settings(
        dir.path(),
        &ca1,
        Some(leaf(&ca1, &["server.global.caravan", "localhost"])),
        "server",
    ))
    .unwrap();
    let client = Tls::load(settings(
        dir.path(),
        &ca1,
        Some(leaf(&ca1, &["client.global.caravan"])),
        "client",
    ))
    .unwrap();
    let peer = || Peer::Server {
        region: "global".into(),
    };
    assert!(handshake(&server, &client, peer(), "127.0.0.1").await);
    // No client certificate: refused under verifyHttpsClient.
    let anonymous = Tls::load(settings(dir.path(), &ca1, None, "cli")).unwrap();
    assert!(!handshake(&server, &anonymous, peer(), "127.0.0.1").await);
    // A certificate from another CA: refused, both ways.
    let stranger = Tls::load(settings(
        dir.path(),
        &ca2,
        Some(leaf(&ca2, &["client.global.caravan"])),
        "stranger",
    ))
    .unwrap();
    assert!(!handshake(&server, &stranger, peer(), "127.0.0.1").await);
    // A server whose certificate does not name server.global.caravan: refused under
    // verifyServerHostname, whatever address was dialed.
    let impostor = Tls::load(settings(
        dir.path(),
        &ca1,
        Some(leaf(&ca1, &["client.global.caravan"])),
        "impostor",
    ))
    .unwrap();
    assert!(!handshake(&impostor, &client, peer(), "127.0.0.1").await);
    // Without verifyServerHostname, the chain is what counts.
    let mut relaxed = client.settings().clone();
    relaxed.verify_server_hostname = false;
    let relaxed = Tls::load(relaxed).unwrap();
    assert!(handshake(&impostor, &relaxed, peer(), "127.0.0.1").await);
}

#[tokio::test]
async fn a_reload_takes_new_files_for_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let old = ca();
    let new = ca();
    let server = Tls::load(settings(
        dir.path(),
        &old,
        Some(leaf(&old, &["server.global.caravan"])),
        "server",
    ))
    .unwrap();
    let client_of = |ca: &Ca, tag: &str| {
        Tls::load(settings(
            dir.path(),
            ca,
            Some(leaf(ca, &["client.global.caravan"])),
            tag,
        ))
        .unwrap()
    };
    let old_client = client_of(&old, "old-client");
    let new_client = client_of(&new, "new-client");
    let peer = || Peer::Server {
        region: "global".into(),
    };
    assert!(handshake(&server, &old_client, peer(), "localhost").await);
    assert!(!handshake(&server, &new_client, peer(), "localhost").await);
    // The server's files are replaced by the new CA's; a bad file is refused and the loaded
    // material stays.
    std::fs::write(dir.path().join("server-ca.pem"), "not a certificate").unwrap();
    assert!(server.reload().is_err());
    assert!(handshake(&server, &old_client, peer(), "localhost").await);
    let (cert, key) = leaf(&new, &["server.global.caravan"]);
    write(dir.path(), "server-ca.pem", &new.pem);
    write(dir.path(), "server.pem", &cert);
    write(dir.path(), "server-key.pem", &key);
    server.reload().unwrap();
    assert!(handshake(&server, &new_client, peer(), "localhost").await);
    assert!(!handshake(&server, &old_client, peer(), "localhost").await);
}

#[test]
fn a_certificate_without_its_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let mut half = settings(dir.path(), &ca, Some(leaf(&ca, &["x"])), "half");
    half.key_file = None;
    let error = Tls::load(half).unwrap_err();
    assert!(error.to_string().contains("key"), "{error}");
    let mut missing = settings(dir.path(), &ca, None, "missing");
    missing.ca_file = dir.path().join("nope.pem");
    assert!(Tls::load(missing).is_err());
}
