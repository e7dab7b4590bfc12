//! State machine snapshots on disk (`snapshots/<id>.snap`) and the snapshot builder.
//!
//! A file is `u64 LE meta length | meta JSON | State::to_snapshot bytes`. It is written to a
//! temporary file, fsynced and renamed into place (then the directory is fsynced), and only
//! the newest snapshot is kept.

use std::fs::{self, File};
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::{RaftSnapshotBuilder, Snapshot, SnapshotMeta};
use openraft::{BasicNode, LogId, StorageError, StorageIOError, StoredMembership};

use super::type_config::{NodeId, TypeConfig};
use crate::store::State;

/// Snapshot metadata as openraft defines it.
pub type Meta = SnapshotMeta<NodeId, BasicNode>;

const SUFFIX: &str = "snap";

/// A failed snapshot step.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot file io failed at {path}")]
    IoFailed {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot metadata is invalid in {path}")]
    MetaInvalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("snapshot state is invalid")]
    StateInvalid(#[source] serde_json::Error),
    #[error("the blocking snapshot task failed")]
    TaskFailed(#[from] tokio::task::JoinError),
}

impl SnapshotError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
        move |source| SnapshotError::IoFailed {
            path: path.to_owned(),
            source,
        }
    }
}

/// Converts a snapshot failure for openraft.
pub fn storage_err(e: SnapshotError, meta: Option<&Meta>, write: bool) -> StorageError<NodeId> {
    let sig = meta.map(|m| m.signature());
    if write {
        StorageIOError::write_snapshot(sig, &e).into()
    } else {
        StorageIOError::read_snapshot(sig, &e).into()
    }
}

/// The directory holding the newest snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotDir {
    dir: PathBuf,
}

impl SnapshotDir {
    /// Uses (and creates) `dir`.
    pub fn open(dir: PathBuf) -> Result<SnapshotDir, SnapshotError> {
        fs::create_dir_all(&dir).map_err(SnapshotError::io(&dir))?;
        Ok(SnapshotDir { dir })
    }

    /// The newest snapshot's metadata and state bytes, if there is one.
    pub fn load_newest(&self) -> Result<Option<(Meta, Vec<u8>)>, SnapshotError> {
        let Some((path, _)) = self.newest()? else {
            return Ok(None);
        };
        let mut file = File::open(&path).map_err(SnapshotError::io(&path))?;
        let meta = read_meta(&mut file, &path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(SnapshotError::io(&path))?;
        Ok(Some((meta, data)))
    }

    /// Writes a snapshot durably and removes older ones.
    pub fn save(&self, meta: &Meta, data: &[u8]) -> Result<(), SnapshotError> {
        let meta_json = serde_json::to_vec(meta).map_err(|source| SnapshotError::MetaInvalid {
            path: self.dir.clone(),
            source,
        })?;
        let name = format!("{}.{SUFFIX}", meta.snapshot_id);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        {
            let mut file = File::create(&tmp).map_err(SnapshotError::io(&tmp))?;
            file.write_all(&(meta_json.len() as u64).to_le_bytes())
                .and_then(|()| file.write_all(&meta_json))
                .and_then(|()| file.write_all(data))
                .and_then(|()| file.sync_all())
                .map_err(SnapshotError::io(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(SnapshotError::io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(SnapshotError::io(&self.dir))?;
        self.remove_all_but(&path)
    }

    /// Paths of snapshot files (and leftover temporary files).
    fn entries(&self) -> Result<Vec<PathBuf>, SnapshotError> {
        let mut paths = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(SnapshotError::io(&self.dir))? {
            let entry = entry.map_err(SnapshotError::io(&self.dir))?;
            paths.push(entry.path());
        }
        Ok(paths)
    }

    /// The snapshot file with the greatest last log id.
    fn newest(&self) -> Result<Option<(PathBuf, Meta)>, SnapshotError> {
        let mut newest: Option<(PathBuf, Meta)> = None;
        for path in self.entries()? {
            if path.extension().and_then(|e| e.to_str()) != Some(SUFFIX) {
                continue;
            }
            let mut file = File::open(&path).map_err(SnapshotError::io(&path))?;
            let meta = read_meta(&mut file, &path)?;
            if newest
                .as_ref()
                .is_none_or(|(_, m)| m.last_log_id < meta.last_log_id)
            {
                newest = Some((path, meta));
            }
        }
        Ok(newest)
    }

    fn remove_all_but(&self, keep: &Path) -> Result<(), SnapshotError> {
        for path in self.entries()? {
            if path != keep
                && let Err(e) = fs::remove_file(&path)
            {
                tracing::warn!(path = %path.display(), error = %e, "removing an old snapshot failed");
            }
        }
        Ok(())
    }
}

fn read_meta(file: &mut File, path: &Path) -> Result<Meta, SnapshotError> {
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(SnapshotError::io(path))?;
    let len = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
    let mut meta = Vec::new();
    file.take(len as u64)
        .read_to_end(&mut meta)
        .map_err(SnapshotError::io(path))?;
    serde_json::from_slice(&meta).map_err(|source| SnapshotError::MetaInvalid {
        path: path.to_owned(),
        source,
    })
}

/// A point-in-time copy of the state machine, serialized and saved by `build_snapshot`.
pub struct SnapshotBuilder {
    pub(super) state: State,
    pub(super) last_applied: Option<LogId<NodeId>>,
    pub(super) last_membership: StoredMembership<NodeId, BasicNode>,
    pub(super) dir: SnapshotDir,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let snapshot_id = match &self.last_applied {
            Some(id) => format!(
                "{}-{}-{}-{millis}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => format!("0-0-0-{millis}"),
        };
        let meta = Meta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id,
        };
        let state = self.state.clone();
        let dir = self.dir.clone();
        let saved_meta = meta.clone();
        let data = tokio::task::spawn_blocking(move || {
            let data = state.to_snapshot();
            dir.save(&saved_meta, &data).map(|()| data)
        })
        .await
        .map_err(SnapshotError::from)
        .and_then(|r| r)
        .map_err(|e| storage_err(e, Some(&meta), true))?;
        tracing::info!(
            last_log_id = ?meta.last_log_id,
            bytes = data.len(),
            "built a state machine snapshot"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
