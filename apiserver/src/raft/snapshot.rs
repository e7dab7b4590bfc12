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
    #[error("the snapshot thread failed: {0}")]
    Background(String),
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
        // A snapshot saved between the listing and the open removes the one listed: list
        // again (an open file stays readable once it is removed).
        let mut attempts = 0;
        let (path, mut file) = loop {
            let Some((path, _)) = self.newest()? else {
                return Ok(None);
            };
            match File::open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 16 => {
                    attempts += 1;
                }
                Err(e) => return Err(SnapshotError::io(&path)(e)),
            }
        };
        let meta = read_meta(&mut file, &path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(SnapshotError::io(&path))?;
        Ok(Some((meta, data)))
    }

    /// Writes a snapshot durably and removes older ones.
    pub fn save(&self, meta: &Meta, data: &[u8]) -> Result<(), SnapshotError> {
        self.save_with(meta, |out| out.write_all(data)).map(|_| ())
    }

    /// Writes a snapshot whose data `body` writes, durably, and removes older ones; the size
    /// of the data.
    pub fn save_with(
        &self,
        meta: &Meta,
        body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<u64, SnapshotError> {
        let meta_json = serde_json::to_vec(meta).map_err(|source| SnapshotError::MetaInvalid {
            path: self.dir.clone(),
            source,
        })?;
        let name = format!("{}.{SUFFIX}", meta.snapshot_id);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let size = File::create(&tmp)
            .and_then(|file| {
                let mut out = std::io::BufWriter::with_capacity(
                    1024 * 1024,
                    Synced {
                        file,
                        unsynced: 0,
                        written: 0,
                    },
                );
                out.write_all(&(meta_json.len() as u64).to_le_bytes())?;
                out.write_all(&meta_json)?;
                body(&mut out)?;
                let synced = out.into_inner().map_err(|e| e.into_error())?;
                synced.file.sync_all()?;
                Ok(synced.written - 8 - meta_json.len() as u64)
            })
            .map_err(SnapshotError::io(&tmp))?;
        fs::rename(&tmp, &path).map_err(SnapshotError::io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(SnapshotError::io(&self.dir))?;
        self.remove_all_but(&path)?;
        Ok(size)
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
        // A snapshot saved meanwhile removes those listed before it was renamed in: when every
        // file listed vanished, list again.
        for _ in 0..16 {
            let (newest, vanished) = self.newest_listed()?;
            if newest.is_some() || !vanished {
                return Ok(newest);
            }
        }
        self.newest_listed().map(|(newest, _)| newest)
    }

    /// The newest snapshot of one listing, and whether a listed file vanished before it was
    /// read.
    fn newest_listed(&self) -> Result<(Option<(PathBuf, Meta)>, bool), SnapshotError> {
        let mut newest: Option<(PathBuf, Meta)> = None;
        let mut vanished = false;
        for path in self.entries()? {
            if path.extension().and_then(|e| e.to_str()) != Some(SUFFIX) {
                continue;
            }
            let mut file = match File::open(&path) {
                Ok(file) => file,
                // Removed since the listing: a newer snapshot replaced it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    vanished = true;
                    continue;
                }
                Err(e) => return Err(SnapshotError::io(&path)(e)),
            };
            let meta = read_meta(&mut file, &path)?;
            if newest
                .as_ref()
                .is_none_or(|(_, m)| m.last_log_id < meta.last_log_id)
            {
                newest = Some((path, meta));
            }
        }
        Ok((newest, vanished))
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

/// Runs `work` on a thread of its own at the lowest CPU priority: encoding and writing a
/// snapshot of a large state takes a core for hundreds of milliseconds, which on a small
/// machine would otherwise be taken from the requests being served.
async fn in_background<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SnapshotError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("snapshot".into())
        .spawn(move || {
            // Linux keeps the nice value per thread; failing to lower it only costs latency.
            let _ = rustix::process::setpriority_process(None, 19);
            let _ = done.send(work());
        })
        .map_err(|e| SnapshotError::Background(e.to_string()))?;
    result
        .await
        .map_err(|e| SnapshotError::Background(e.to_string()))
}

/// Bytes a snapshot write leaves unsynced at most.
const SYNC_EVERY: usize = 4 * 1024 * 1024;

/// A snapshot file that syncs every [`SYNC_EVERY`] bytes: a snapshot of hundreds of megabytes
/// written at once fills the page cache with dirty pages, and the Raft log's fsyncs behind
/// them wait for the whole flush (acknowledged writes stalled for tens of milliseconds).
struct Synced {
    file: File,
    unsynced: usize,
    written: u64,
}

impl Write for Synced {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        self.unsynced += n;
        if self.unsynced >= SYNC_EVERY {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
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
    pub(super) gauge: std::sync::Arc<super::snapshot_policy::SnapshotGauge>,
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
        // Taken, not cloned, so the copy is dropped on the snapshot thread: the nodes of its
        // maps that writes have copied since are the copy's alone, and freeing their keys is
        // work the runtime's threads need not do.
        let state = std::mem::take(&mut self.state);
        let dir = self.dir.clone();
        let saved_meta = meta.clone();
        let started = std::time::Instant::now();
        // Streamed to the file: a copy of a large state in memory would double the server's
        // memory for a moment. openraft keeps only the meta of a built snapshot; a follower
        // that needs one is sent the file (`get_current_snapshot`).
        let size =
            in_background(move || dir.save_with(&saved_meta, |out| state.write_snapshot(out)))
                .await
                .and_then(|r| r);
        self.gauge.snapshot_done(size.as_ref().ok().copied());
        let size = size.map_err(|e| storage_err(e, Some(&meta), true))?;
        tracing::info!(
            last_log_id = ?meta.last_log_id,
            bytes = size,
            took = ?started.elapsed(),
            "built a state machine snapshot"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str) -> Meta {
        Meta {
            last_log_id: None,
            last_membership: StoredMembership::default(),
            snapshot_id: id.into(),
        }
    }

    #[test]
    fn a_streamed_snapshot_reads_back_whole_and_replaces_the_older_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshots = SnapshotDir::open(dir.path().to_owned()).expect("open");
        snapshots.save(&meta("1-1-1-1"), b"old").expect("save");
        // Larger than the sync interval, written in pieces of odd sizes.
        let body: Vec<u8> = (0..SYNC_EVERY * 2 + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        let size = snapshots
            .save_with(&meta("1-1-2-2"), |out| {
                body.chunks(70_001)
                    .try_for_each(|piece| out.write_all(piece))
            })
            .expect("save");
        assert_eq!(size, body.len() as u64);
        let (loaded, data) = snapshots.load_newest().expect("load").expect("a snapshot");
        assert_eq!(loaded.snapshot_id, "1-1-2-2");
        assert!(data == body, "the data read back differs");
        assert_eq!(snapshots.entries().expect("entries").len(), 1);
    }

    /// A snapshot saved while another is being read (a leader sending one to a follower
    /// while it compacts again) never makes the read fail: it reads one or the other.
    #[test]
    fn a_snapshot_saved_during_a_read_does_not_fail_the_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshots = SnapshotDir::open(dir.path().to_owned()).expect("open");
        snapshots.save(&meta("1-1-1-1"), b"first").expect("save");
        let writer = {
            let snapshots = SnapshotDir::open(dir.path().to_owned()).expect("open");
            std::thread::spawn(move || {
                for i in 2..2_000u64 {
                    snapshots
                        .save(&meta(&format!("1-1-{i}-{i}")), b"next")
                        .expect("save");
                }
            })
        };
        while !writer.is_finished() {
            let loaded = snapshots.load_newest().expect("a read during saves");
            assert!(loaded.is_some());
        }
        writer.join().expect("writer");
    }
}
