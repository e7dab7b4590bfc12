//! The Raft state machine: applies committed entries to [`State`] and feeds the watch cache.
//!
//! The applied log id and membership are kept beside the state and persisted only inside
//! snapshots; on open the newest snapshot is loaded and openraft re-applies the log after it.

use std::io::Cursor;
use std::sync::{Arc, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, StorageError, StorageIOError,
    StoredMembership,
};

use super::snapshot::{Meta, SnapshotBuilder, SnapshotDir, SnapshotError, storage_err};
use super::snapshot_policy::SnapshotGauge;
use super::type_config::{NodeId, OpResult, Request, Response, TypeConfig};
use crate::store::{State, WatchCache};

/// The state machine over the shared [`State`] and [`WatchCache`].
pub struct StateMachine {
    state: Arc<RwLock<State>>,
    cache: Arc<WatchCache>,
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    snapshots: SnapshotDir,
    gauge: Arc<SnapshotGauge>,
}

#[derive(Debug, thiserror::Error)]
#[error("the state lock is poisoned")]
struct Poisoned;

impl StateMachine {
    /// Opens the state machine in `dir` from the newest snapshot there (or empty), with a watch
    /// cache of `cache_size` events per kind starting at the snapshot's revision.
    pub fn open(dir: std::path::PathBuf, cache_size: usize) -> Result<StateMachine, SnapshotError> {
        let snapshots = SnapshotDir::open(dir)?;
        let mut snapshot_size = 0;
        let (state, last_applied, last_membership) = match snapshots.load_newest()? {
            Some((meta, data)) => {
                snapshot_size = data.len();
                let state = State::from_snapshot(&data).map_err(SnapshotError::StateInvalid)?;
                tracing::info!(
                    last_log_id = ?meta.last_log_id,
                    revision = state.revision(),
                    "loaded the state machine snapshot"
                );
                (state, meta.last_log_id, meta.last_membership)
            }
            None => (State::default(), None, StoredMembership::default()),
        };
        let cache = Arc::new(WatchCache::new(cache_size, state.revision()));
        Ok(StateMachine {
            state: Arc::new(RwLock::new(state)),
            cache,
            last_applied,
            last_membership,
            snapshots,
            gauge: SnapshotGauge::new(snapshot_size),
        })
    }

    pub fn state(&self) -> &Arc<RwLock<State>> {
        &self.state
    }

    pub fn cache(&self) -> &Arc<WatchCache> {
        &self.cache
    }

    /// What the snapshot policy reads: bytes written since the last snapshot, and its size.
    pub fn gauge(&self) -> &Arc<SnapshotGauge> {
        &self.gauge
    }

    /// Applies one entry under the write lock; the watch cache is fed under the same lock so a
    /// reader never sees a revision whose events are not in the cache yet.
    fn apply_entry(&mut self, entry: Entry<TypeConfig>) -> Result<Response, Poisoned> {
        let log_id = entry.log_id;
        let index = log_id.index;
        let mut state = self.state.write().map_err(|_| Poisoned)?;
        let response = match entry.payload {
            EntryPayload::Normal(Request(ops)) => {
                let applied = state.apply(index, ops);
                self.gauge
                    .written(applied.events.iter().map(|e| e.object.json.len()).sum());
                self.cache.push(index, &applied.events);
                Response(applied.results.into_iter().map(OpResult).collect())
            }
            EntryPayload::Blank => {
                state.advance(index);
                self.cache.push(index, &[]);
                Response::default()
            }
            EntryPayload::Membership(membership) => {
                state.advance(index);
                self.cache.push(index, &[]);
                self.last_membership = StoredMembership::new(Some(log_id), membership);
                Response::default()
            }
        };
        self.last_applied = Some(log_id);
        Ok(response)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries = entries.into_iter();
        let mut responses = Vec::with_capacity(entries.size_hint().0);
        for entry in entries {
            let log_id = entry.log_id;
            let response = self
                .apply_entry(entry)
                .map_err(|e| StorageIOError::apply(log_id, &e))?;
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // Called between applies, so the copy, applied id and membership agree. The clone is
        // cheap (persistent maps, objects shared); serialization happens in the builder,
        // outside the lock.
        self.gauge.snapshot_started();
        let state = match self.state.read() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        SnapshotBuilder {
            state,
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            dir: self.snapshots.clone(),
            gauge: self.gauge.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        self.gauge.installed(data.len());
        let dir = self.snapshots.clone();
        let saved_meta = meta.clone();
        let state = tokio::task::spawn_blocking(move || {
            let state = State::from_snapshot(&data).map_err(SnapshotError::StateInvalid)?;
            dir.save(&saved_meta, &data)?;
            Ok(state)
        })
        .await
        .map_err(SnapshotError::from)
        .and_then(|r| r)
        .map_err(|e| storage_err(e, Some(meta), true))?;

        let revision = state.revision();
        let mut current = self
            .state
            .write()
            .map_err(|_| StorageIOError::write_state_machine(&Poisoned))?;
        *current = state;
        self.cache.reset(revision);
        drop(current);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        tracing::info!(last_log_id = ?meta.last_log_id, revision, "installed a snapshot");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let dir = self.snapshots.clone();
        let loaded = tokio::task::spawn_blocking(move || dir.load_newest())
            .await
            .map_err(SnapshotError::from)
            .and_then(|r| r)
            .map_err(|e| storage_err(e, None, false))?;
        Ok(loaded.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
