//! ACLs on the server: who a request is (`identity.rs`: a token, a node's secret, the
//! servers themselves, or anonymous) and what it may do (`authorize.rs`, pure), with the
//! tokens and policies compiled from this server's replica of the state (`cache.rs`), so a
//! change takes effect on the next request, on every server.
//!
//! ```text
//! request ─▶ identity::resolve(headers) ─▶ Identity ─▶ authorize::decide(identity, request)
//!              │ tokens and policies (cache.rs,            │ Allow(Access) │ Deny ─▶ 403
//!              │ rebuilt when their maps changed)           ▼
//!              └ 401 for an unknown or expired token     scope (lists, watches), guard (writes)
//! ```

pub mod authorize;
mod cache;
pub mod identity;
pub mod tokens;

use std::path::PathBuf;

pub use cache::AclCache;
pub use identity::Identity;

/// The ACL settings of a server.
#[derive(Clone, Debug, Default)]
pub struct AclConfig {
    /// Whether requests are authenticated and authorized at all (`acl.enabled`).
    pub enabled: bool,
    /// The file an operator writes the bootstrap reset index into to bootstrap again
    /// (`<data-dir>/acl-bootstrap-reset`).
    pub bootstrap_reset_file: Option<PathBuf>,
}

/// The lowercase hex SHA-256 of a secret: what the servers keep of it.
pub fn secret_hash(secret: &str) -> String {
    use sha2::Digest;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_hash_is_sha256_hex() {
        assert_eq!(
            super::secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
