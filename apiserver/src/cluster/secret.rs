//! The cluster secret: what a server-to-server request carries to prove it comes from a member.
//!
//! Raft RPCs (`/internal/…`), the leader's eval broker (`/v1/eval-broker/…`) and the requests a
//! server forwards all carry it in the `x-caravan-cluster-secret` header; the servers refuse
//! those paths without it (403, `http/mod.rs`). The operator gives every server of a cluster the same secret
//! (`caravan agent --cluster-secret`, `CARAVAN_CLUSTER_SECRET` or `server.clusterSecret`), as
//! Nomad's gossip `encrypt` key; a lone server generates one and keeps it in its data dir.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::private_file::write_private;

/// The header carrying the secret.
pub const SECRET_HEADER: &str = "x-caravan-cluster-secret";
/// The file of the data dir keeping the secret.
const SECRET_FILE: &str = "cluster-secret";
/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret accepted.
pub const MAX_SECRET_LEN: usize = 256;

/// The shared secret of a cluster's servers. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(Arc<str>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(…)")
    }
}

impl ClusterSecret {
    /// A secret from the operator: 16 to 256 visible ASCII characters.
    pub fn new(text: &str) -> anyhow::Result<ClusterSecret> {
        let text = text.trim();
        anyhow::ensure!(
            (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&text.len()),
            "the cluster secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters long, \
             got {}",
            text.len()
        );
        anyhow::ensure!(
            text.bytes().all(|b| b.is_ascii_graphic()),
            "the cluster secret must be visible ASCII characters (no spaces)"
        );
        Ok(ClusterSecret(text.into()))
    }

    /// A new random secret (256 bits, hex).
    pub fn generate() -> ClusterSecret {
        let a = uuid::Uuid::new_v4().simple().to_string();
        let b = uuid::Uuid::new_v4().simple().to_string();
        ClusterSecret(format!("{a}{b}").into())
    }

    /// The secret `given` by the operator (kept in `dir` for later starts), else the one kept
    /// in `dir`, else a new one, kept there. The file is readable by its owner only.
    pub fn load_or_create(dir: &Path, given: Option<&str>) -> anyhow::Result<ClusterSecret> {
        let path = dir.join(SECRET_FILE);
        let secret = match given {
            Some(text) => ClusterSecret::new(text)?,
            None => match std::fs::read_to_string(&path) {
                Ok(text) => {
                    return ClusterSecret::new(&text)
                        .with_context(|| format!("{} holds no valid secret", path.display()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClusterSecret::generate(),
                Err(e) => {
                    return Err(e).with_context(|| format!("failed to read {}", path.display()));
                }
            },
        };
        if std::fs::read_to_string(&path).is_ok_and(|kept| kept.trim() == &*secret.0) {
            return Ok(secret);
        }
        write_private(&path, &secret.0)?;
        Ok(secret)
    }

    /// Whether `dir` keeps a secret already.
    pub fn is_kept_in(dir: &Path) -> bool {
        dir.join(SECRET_FILE).exists()
    }

    /// The secret as text, to send in [`SECRET_HEADER`] (visible ASCII, a valid header value).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `carried` (a [`SECRET_HEADER`] value) is this secret. Compares in constant time.
    pub fn is_carried_by(&self, carried: &[u8]) -> bool {
        constant_time_eq(carried, self.0.as_bytes())
    }
}

/// Equality whose time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_kept_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(!ClusterSecret::is_kept_in(dir.path()));
        let first = ClusterSecret::load_or_create(dir.path(), None).unwrap();
        let again = ClusterSecret::load_or_create(dir.path(), None).unwrap();
        assert_eq!(first, again);
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // One given by the operator wins and is kept for the next start.
        let given = ClusterSecret::load_or_create(dir.path(), Some("0123456789abcdef!")).unwrap();
        assert_eq!(given.expose(), "0123456789abcdef!");
        let kept = ClusterSecret::load_or_create(dir.path(), None).unwrap();
        assert_eq!(kept, given);
    }

    #[test]
    fn weak_or_unprintable_secrets_are_refused() {
        assert!(ClusterSecret::new("short").is_err());
        assert!(ClusterSecret::new("has a space in it!!").is_err());
        assert!(ClusterSecret::new(&"x".repeat(300)).is_err());
    }

    #[test]
    fn only_the_exact_secret_is_accepted() {
        let secret = ClusterSecret::new("0123456789abcdef").unwrap();
        assert!(!secret.is_carried_by(b""));
        assert!(!secret.is_carried_by(b"0123456789abcdeF"));
        assert!(!secret.is_carried_by(b"0123456789abcdef0"));
        assert!(secret.is_carried_by(secret.expose().as_bytes()));
    }
}
