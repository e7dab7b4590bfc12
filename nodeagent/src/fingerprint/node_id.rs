//! The node's persistent identity: a UUID v4 kept in `<data_dir>/client/node-id`, and its
//! secret id (Nomad's `Node.SecretID`), another kept in `<data_dir>/client/secret-id`, with
//! which its agent authenticates when the servers enforce ACLs.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use uuid::Uuid;

/// Returns the node id stored in `<data_dir>/client/node-id`, creating it (a fresh UUID v4,
/// written atomically, mode 0600) on first use, so it stays the same across restarts.
/// A file whose content is not a UUID is an `InvalidData` error rather than silently
/// replaced, since that would make the node a different node.
pub fn load_or_create_node_id(data_dir: &Path) -> io::Result<String> {
    load_or_create(data_dir, "node-id")
}

/// Returns the node's secret id, kept in `<data_dir>/client/secret-id` as the node id is.
pub fn load_or_create_secret_id(data_dir: &Path) -> io::Result<String> {
    load_or_create(data_dir, "secret-id")
}

fn load_or_create(data_dir: &Path, file: &str) -> io::Result<String> {
    let dir = data_dir.join("client");
    let path = dir.join(file);
    if let Some(id) = read_id(&path)? {
        return Ok(id);
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let id = Uuid::new_v4().to_string();
    let tmp = dir.join(format!(".{file}.{}", Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(format!("{id}\n").as_bytes())?;
        file.sync_all()
    })();
    // A hard link never replaces an existing file: a concurrent creator wins cleanly.
    let result = written.and_then(|()| match fs::hard_link(&tmp, &path) {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => match read_id(&path)? {
            Some(existing) => Ok(existing),
            // An empty file left by someone else: replace it.
            None => fs::rename(&tmp, &path).map(|()| id.clone()),
        },
        other => other.map(|()| id.clone()),
    });
    let _ = fs::remove_file(&tmp);
    result
}

/// The id in `path`: `None` when the file is missing or empty (an interrupted first write).
fn read_id(path: &Path) -> io::Result<Option<String>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match Uuid::parse_str(text) {
        Ok(uuid) => Ok(Some(uuid.hyphenated().to_string())),
        Err(err) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a UUID: {err}", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_node_id_is_stable_per_dir() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let first = load_or_create_node_id(a.path()).unwrap();
        let second = load_or_create_node_id(a.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(Uuid::parse_str(&first).unwrap().get_version_num(), 4);
        let other = load_or_create_node_id(b.path()).unwrap();
        assert_ne!(first, other);
        let stored = fs::read_to_string(a.path().join("client/node-id")).unwrap();
        assert_eq!(stored.trim(), first);
    }

    #[test]
    fn fingerprint_node_id_rejects_garbage_and_replaces_empty() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("client")).unwrap();
        let path = dir.path().join("client/node-id");
        fs::write(&path, "not-a-uuid\n").unwrap();
        let err = load_or_create_node_id(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        fs::write(&path, "").unwrap();
        let id = load_or_create_node_id(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), id);
        assert_eq!(load_or_create_node_id(dir.path()).unwrap(), id);
    }
}
