//! Certificates for tests, made by the real `caravan tls` commands: a CA, a server, a client
//! and a CLI certificate in a directory, and the settings a test's own HTTPS clients use.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::command::{self, DEFAULT_COMMAND_TIMEOUT};
use crate::paths;

/// A CA's directory and the certificates `caravan tls` made in it (region `global`).
#[derive(Clone, Debug)]
pub struct Certs {
    pub dir: PathBuf,
    /// Require client certificates (`--tls-verify-https-client`).
    pub verify_https_client: bool,
}

fn tls(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new(paths::caravan_bin());
    cmd.arg("tls").args(args).current_dir(dir);
    match command::run(cmd, DEFAULT_COMMAND_TIMEOUT) {
        Ok(out) => {
            out.assert_success();
        }
        Err(e) => panic!("{e:#}"),
    }
}

impl Certs {
    /// A new CA with a server, a client and a CLI certificate, in `dir`.
    pub fn create(dir: &Path) -> Certs {
        Certs::create_for(dir, &[])
    }

    /// The same, the server certificate also naming the addresses `ips` (servers in network
    /// namespaces, reached by address).
    pub fn create_for(dir: &Path, ips: &[std::net::IpAddr]) -> Certs {
        std::fs::create_dir_all(dir).expect("a certificate dir");
        tls(dir, &["ca", "create"]);
        let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
        let mut server = vec!["cert", "create", "--server"];
        for ip in &ips {
            server.extend(["--additional-ipaddress", ip.as_str()]);
        }
        tls(dir, &server);
        for role in ["--client", "--cli"] {
            tls(dir, &["cert", "create", role]);
        }
        Certs {
            dir: dir.to_path_buf(),
            verify_https_client: true,
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("caravan-agent-ca.pem")
    }

    /// The certificate and key of `role` (`server`, `client` or `cli`).
    pub fn pair(&self, role: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("global-{role}-caravan.pem")),
            self.dir.join(format!("global-{role}-caravan-key.pem")),
        )
    }

    /// The agent flags of `role` (`server` or `client`): mutual TLS, server names checked.
    pub fn agent_args(&self, role: &str) -> Vec<String> {
        let (cert, key) = self.pair(role);
        let mut args = vec![
            "--tls-http".to_string(),
            "--tls-rpc".into(),
            "--tls-verify-server-hostname".into(),
            "--tls-ca-file".into(),
            self.ca().display().to_string(),
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
        ];
        if self.verify_https_client {
            args.push("--tls-verify-https-client".into());
        }
        args
    }

    /// The CLI flags: the CA, the CLI certificate, and the server name to check.
    pub fn cli_args(&self) -> Vec<String> {
        let (cert, key) = self.pair("cli");
        vec![
            "--ca-cert".to_string(),
            self.ca().display().to_string(),
            "--client-cert".into(),
            cert.display().to_string(),
            "--client-key".into(),
            key.display().to_string(),
            "--tls-server-name".into(),
            "server.global.caravan".into(),
        ]
    }

    /// The CLI's TLS, loaded, for a test's own clients: `role`'s certificate (`None`: none).
    pub fn client_tls(&self, role: Option<&str>) -> Arc<caravan_tls::Tls> {
        let pair = role.map(|r| self.pair(r));
        caravan_tls::Tls::load(caravan_tls::TlsSettings {
            ca_file: self.ca(),
            cert_file: pair.as_ref().map(|p| p.0.clone()),
            key_file: pair.map(|p| p.1),
            verify_server_hostname: true,
            verify_https_client: false,
        })
        .expect("the test certificates load")
    }

    /// A reqwest client presenting `role`'s certificate (`None`: none), checking that the
    /// server is `server.global.caravan`.
    pub fn reqwest(&self, role: Option<&str>) -> reqwest::Client {
        let _ = crate::http::client();
        let config = self
            .client_tls(role)
            .client_config(caravan_tls::Peer::Named(Some(
                "server.global.caravan".into(),
            )));
        reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("an HTTPS client")
    }
}

/// `GET path` over TLS with the CLI's certificate; the status code, or `None`.
pub fn https_status(certs: &Certs, addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    let config = certs
        .client_tls(Some("cli"))
        .client_config(caravan_tls::Peer::Named(Some(
            "server.global.caravan".into(),
        )));
    let name = rustls::pki_types::ServerName::try_from("server.global.caravan").ok()?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let timeout = std::time::Duration::from_secs(2);
    let tcp = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    tcp.set_read_timeout(Some(timeout)).ok()?;
    tcp.set_write_timeout(Some(timeout)).ok()?;
    crate::sandbox::get_status(rustls::StreamOwned::new(conn, tcp), addr, path)
}
