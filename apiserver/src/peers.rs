//! How this server reaches the others (Raft RPCs, forwarded requests, leadership transfer,
//! keyring changes) and the node agents (logs): plain HTTP, or HTTPS with this server's
//! certificate and the cluster's CA when it runs with TLS (`caravan_tls`), set once when the
//! server starts.

use std::sync::{Arc, OnceLock};

use caravan_tls::{Peer, Tls};

/// This process's TLS and region, once set.
static PEERS: OnceLock<Peers> = OnceLock::new();

struct Peers {
    tls: Option<Arc<Tls>>,
    region: String,
}

/// Sets this server's TLS (`None`: plain HTTP) and region, once per process.
pub fn configure(tls: Option<Arc<Tls>>, region: &str) {
    let configured = PEERS.set(Peers {
        tls,
        region: region.to_string(),
    });
    if configured.is_err() {
        tracing::debug!("the servers' transport was configured already in this process");
    }
}

fn tls() -> Option<&'static Arc<Tls>> {
    PEERS.get().and_then(|p| p.tls.as_ref())
}

/// Whom a connection goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    /// Another server (its certificate names `server.<region>.caravan`).
    Server,
    /// A node agent (`client.<region>.caravan`).
    Agent,
}

/// The base URL of the server or agent at `addr` (`host:port`).
pub fn url(addr: &str) -> String {
    let scheme = if tls().is_some() { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

/// `builder` set up to reach `to`: with TLS, this server's certificate and the CA, checking
/// the peer's name under `verifyServerHostname`.
pub fn client_builder(builder: reqwest::ClientBuilder, to: To) -> reqwest::ClientBuilder {
    // reqwest refuses to build a client until a rustls crypto provider is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(tls) = tls() else {
        return builder;
    };
    let region = PEERS.get().map(|p| p.region.clone()).unwrap_or_default();
    let peer = match to {
        To::Server => Peer::Server { region },
        To::Agent => Peer::Client { region },
    };
    builder.use_preconfigured_tls(tls.client_config(peer))
}
