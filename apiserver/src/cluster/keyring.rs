//! The gossip keyring: the keys that encrypt the servers' gossip (Nomad's `encrypt` and serf
//! keyring). Gossip is sealed with the primary key and opened with any installed key, so a key
//! is rotated without a restart: install the new key everywhere, `use` it everywhere, remove
//! the old one (`http/keyring.rs` does each step on every server).
//!
//! ```text
//! --encrypt KEY ──seeds (first start)──▶ {data dir}/gossip.keyring ──▶ SharedKeyring ──▶ sealed.rs
//!                                          (JSON, primary first, 0600)    ▲ install/use/remove
//! ```
//!
//! The keyring and its operations are pure ([`Keyring::apply`]); [`SharedKeyring`] keeps one in
//! memory for the gossip socket and in its file for the next start.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use anyhow::Context;

use super::private_file::write_private;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Bytes of a key (AES-256).
pub const KEY_LEN: usize = 32;
/// Most keys a keyring holds (every one is tried on each packet).
pub const MAX_KEYS: usize = 8;
/// The file of the data dir keeping the keyring.
pub const KEYRING_FILE: &str = "gossip.keyring";

/// One gossip key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct GossipKey([u8; KEY_LEN]);

impl std::fmt::Debug for GossipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GossipKey(…)")
    }
}

impl GossipKey {
    /// A key from its base64 text (`caravan operator gossip keyring generate`).
    pub fn parse(text: &str) -> anyhow::Result<GossipKey> {
        let bytes = STANDARD
            .decode(text.trim())
            .context("a gossip key is base64 (`caravan operator gossip keyring generate`)")?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
            anyhow::anyhow!("a gossip key is {KEY_LEN} bytes, got {}", b.len())
        })?;
        Ok(GossipKey(bytes))
    }

    /// A new random key.
    pub fn generate() -> GossipKey {
        let mut bytes = [0u8; KEY_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .expect("the system random generator works");
        GossipKey(bytes)
    }

    /// The key as base64 text.
    pub fn encode(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// A change to a keyring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyringOp {
    /// Add a key that opens packets (not yet sealing them).
    Install(GossipKey),
    /// Seal packets with an installed key from now on.
    Use(GossipKey),
    /// Stop opening packets with a key (not the primary).
    Remove(GossipKey),
}

impl KeyringOp {
    /// The operation named `op` (`install`, `use`, `remove`) on the base64 `key`.
    pub fn parse(op: &str, key: &str) -> anyhow::Result<KeyringOp> {
        let key = GossipKey::parse(key)?;
        match op {
            "install" => Ok(KeyringOp::Install(key)),
            "use" => Ok(KeyringOp::Use(key)),
            "remove" => Ok(KeyringOp::Remove(key)),
            other => anyhow::bail!("unknown keyring operation {other:?}: install, use or remove"),
        }
    }

    /// The name `parse` takes.
    pub fn name(&self) -> &'static str {
        match self {
            KeyringOp::Install(_) => "install",
            KeyringOp::Use(_) => "use",
            KeyringOp::Remove(_) => "remove",
        }
    }

    pub fn key(&self) -> &GossipKey {
        match self {
            KeyringOp::Install(k) | KeyringOp::Use(k) | KeyringOp::Remove(k) => k,
        }
    }
}

/// The installed keys, the primary first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<GossipKey>,
}

impl Keyring {
    pub fn new(primary: GossipKey) -> Keyring {
        Keyring {
            keys: vec![primary],
        }
    }

    /// The key packets are sealed with.
    pub fn primary(&self) -> &GossipKey {
        &self.keys[0]
    }

    /// Every installed key, the primary first.
    pub fn keys(&self) -> &[GossipKey] {
        &self.keys
    }

    /// Applies `op`; an operation that changes nothing (installing an installed key, removing
    /// one that is not) succeeds, so that it can be repeated on every server.
    pub fn apply(&mut self, op: &KeyringOp) -> anyhow::Result<()> {
        let installed = self.keys.iter().position(|k| k == op.key());
        match (op, installed) {
            (KeyringOp::Install(_), Some(_)) | (KeyringOp::Remove(_), None) => {}
            (KeyringOp::Install(key), None) => {
                anyhow::ensure!(
                    self.keys.len() < MAX_KEYS,
                    "the keyring holds {MAX_KEYS} keys already: remove one first"
                );
                self.keys.push(key.clone());
            }
            (KeyringOp::Use(_), None) => {
                anyhow::bail!("the key is not installed: install it first")
            }
            (KeyringOp::Use(_), Some(i)) => self.keys[..=i].rotate_right(1),
            (KeyringOp::Remove(_), Some(0)) => {
                anyhow::bail!("the primary key cannot be removed: use another key first")
            }
            (KeyringOp::Remove(_), Some(i)) => {
                self.keys.remove(i);
            }
        }
        Ok(())
    }

    /// The file text: a JSON array of base64 keys, the primary first (as serf's keyring).
    fn to_file(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(GossipKey::encode).collect();
        serde_json::to_string_pretty(&keys).expect("strings serialize")
    }

    fn from_file(text: &str) -> anyhow::Result<Keyring> {
        let keys: Vec<String> = serde_json::from_str(text).context("not a JSON array of keys")?;
        let keys = keys
            .iter()
            .map(|k| GossipKey::parse(k))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!keys.is_empty(), "no key");
        anyhow::ensure!(keys.len() <= MAX_KEYS, "more than {MAX_KEYS} keys");
        Ok(Keyring { keys })
    }
}

/// The keyring of a running server: read by the gossip socket on every packet, changed by
/// the keyring endpoints, kept in its file (when the server has a data dir).
#[derive(Clone, Debug)]
pub struct SharedKeyring {
    keyring: Arc<RwLock<Keyring>>,
    file: Option<PathBuf>,
    /// Serializes changes (and their file writes).
    changing: Arc<Mutex<()>>,
}

impl SharedKeyring {
    /// The keyring kept in `dir` if there is one (a `seed` not in it is ignored, with a
    /// warning), else one of `seed` alone, kept there; `None` without either: gossip stays
    /// plaintext.
    pub fn open(dir: Option<&Path>, seed: Option<&GossipKey>) -> anyhow::Result<Option<Self>> {
        let file = dir.map(|d| d.join(KEYRING_FILE));
        let kept = match &file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => Some(
                    Keyring::from_file(&text)
                        .with_context(|| format!("{} holds no valid keyring", path.display()))?,
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(e).with_context(|| format!("failed to read {}", path.display()));
                }
            },
            None => None,
        };
        let keyring = match (kept, seed) {
            (Some(kept), Some(seed)) if !kept.keys.contains(seed) => {
                tracing::warn!(
                    "the --encrypt key is not in the gossip keyring kept in the data dir: the \
                     keyring wins (change keys with `caravan operator gossip keyring`)"
                );
                kept
            }
            (Some(kept), _) => kept,
            (None, Some(seed)) => {
                let keyring = Keyring::new(seed.clone());
                if let Some(path) = &file {
                    write_private(path, &keyring.to_file())?;
                }
                keyring
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(SharedKeyring {
            keyring: Arc::new(RwLock::new(keyring)),
            file,
            changing: Arc::default(),
        }))
    }

    /// The keyring now.
    pub fn get(&self) -> Keyring {
        self.keyring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies `op`, in the file first, then in memory; answers the keyring after it.
    pub fn apply(&self, op: &KeyringOp) -> anyhow::Result<Keyring> {
        let _changing = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = self.get();
        next.apply(op)?;
        if let Some(path) = &self.file {
            write_private(path, &next.to_file())?;
        }
        *self.keyring.write().unwrap_or_else(PoisonError::into_inner) = next.clone();
        tracing::info!(
            op = op.name(),
            keys = next.keys.len(),
            "gossip keyring changed"
        );
        Ok(next)
    }
}

/// How a server's gossip is encrypted: the agent's `--encrypt` key and data dir.
#[derive(Clone, Debug, Default)]
pub struct Encryption {
    /// Where the keyring is kept; `None` keeps it in memory only.
    pub keyring_dir: Option<PathBuf>,
    /// The key that seeds a new keyring.
    pub key: Option<GossipKey>,
}

impl Encryption {
    /// The keyring these settings open: the kept one, else one seeded with the key; `None`
    /// without either (plaintext gossip).
    pub(crate) fn open(&self) -> anyhow::Result<Option<SharedKeyring>> {
        SharedKeyring::open(self.keyring_dir.as_deref(), self.key.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> GossipKey {
        GossipKey([byte; KEY_LEN])
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        let generated = GossipKey::generate();
        assert_eq!(GossipKey::parse(&generated.encode()).unwrap(), generated);
        assert_ne!(GossipKey::generate(), generated);
        assert!(GossipKey::parse("not base64!").is_err());
        assert!(GossipKey::parse(&STANDARD.encode([1u8; 16])).is_err());
        assert_eq!(format!("{generated:?}"), "GossipKey(…)");
    }

    #[test]
    fn rotation_installs_uses_then_removes() {
        let mut ring = Keyring::new(key(1));
        ring.apply(&KeyringOp::Install(key(2))).unwrap();
        ring.apply(&KeyringOp::Install(key(2))).unwrap();
        assert_eq!(ring.keys(), [key(1), key(2)]);
        assert!(ring.apply(&KeyringOp::Use(key(3))).is_err());
        assert!(ring.apply(&KeyringOp::Remove(key(1))).is_err());
        ring.apply(&KeyringOp::Use(key(2))).unwrap();
        assert_eq!(ring.primary(), &key(2));
        ring.apply(&KeyringOp::Remove(key(1))).unwrap();
        ring.apply(&KeyringOp::Remove(key(1))).unwrap();
        assert_eq!(ring.keys(), [key(2)]);
        for b in 3..=9 {
            ring.apply(&KeyringOp::Install(key(b))).unwrap();
        }
        assert!(ring.apply(&KeyringOp::Install(key(10))).is_err());
    }

    #[test]
    fn the_keyring_is_kept_private_and_outlives_the_seed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(
            SharedKeyring::open(Some(dir.path()), None)
                .unwrap()
                .is_none()
        );
        let shared = SharedKeyring::open(Some(dir.path()), Some(&key(1)))
            .unwrap()
            .unwrap();
        let path = dir.path().join(KEYRING_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        shared.apply(&KeyringOp::Install(key(2))).unwrap();
        shared.apply(&KeyringOp::Use(key(2))).unwrap();
        // The next start reads the file, whatever key it is given.
        let again = SharedKeyring::open(Some(dir.path()), Some(&key(1)))
            .unwrap()
            .unwrap();
        assert_eq!(again.get().keys(), [key(2), key(1)]);
        std::fs::write(&path, "[]").unwrap();
        assert!(SharedKeyring::open(Some(dir.path()), None).is_err());
    }

    #[test]
    fn operations_are_parsed_by_name() {
        let text = key(7).encode();
        assert_eq!(
            KeyringOp::parse("use", &text).unwrap(),
            KeyringOp::Use(key(7))
        );
        assert!(KeyringOp::parse("rotate", &text).is_err());
        assert!(KeyringOp::parse("install", "short").is_err());
    }
}
