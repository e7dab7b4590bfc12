//! The Raft log, vote and committed log id in redb (`raft.redb`).
//!
//! Every `append` writes all its entries in one write transaction committed with
//! [`Durability::Immediate`] (one fsync) and only then reports the entries flushed, so an
//! acknowledged write is on disk. Writes run on the blocking pool; reads are short and run
//! inline.
//!
//! Appended entries also stay in memory, decoded, until the state machine applies them (the
//! `Tail`): applying an entry then costs no database read and no JSON decoding.
//!
//! A purge (after each snapshot) records the purged log id durably and hides the entries at
//! or below it at once; deleting them from the database (ten thousand entries take tens of
//! milliseconds, during which no append could run) is spread over the following appends,
//! [`PURGE_CHUNK`] entries in each append's transaction.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, StorageError, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::type_config::{NodeId, TypeConfig};

mod tail;

use tail::{Tail, bounded};

/// Log entries by index, JSON-encoded.
const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
/// Small records: [`VOTE`], [`COMMITTED`], [`LAST_PURGED`], JSON-encoded.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// A failed log store step.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("opening the log database failed")]
    OpenFailed(#[from] redb::DatabaseError),
    #[error("beginning a transaction failed")]
    TransactionFailed(#[from] redb::TransactionError),
    #[error("opening a table failed")]
    TableFailed(#[from] redb::TableError),
    #[error("reading or writing a table failed")]
    StorageFailed(#[from] redb::StorageError),
    #[error("setting the durability failed")]
    DurabilityFailed(#[from] redb::SetDurabilityError),
    #[error("committing the transaction failed")]
    CommitFailed(#[from] redb::CommitError),
    #[error("encoding or decoding a record failed")]
    EncodingFailed(#[from] serde_json::Error),
    #[error("the blocking log task failed")]
    TaskFailed(#[from] tokio::task::JoinError),
}

/// The Raft log store. Cloning shares the database and the tail.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    tail: Arc<Mutex<Tail>>,
    /// Entries at or below this index are purged: never read, and deleted from the database a
    /// chunk per append.
    purged: Arc<Mutex<Option<u64>>>,
    /// Whether reads take entries out of the tail: true for the store Raft applies from,
    /// false for the log readers replication uses (they read entries before they are applied).
    takes: bool,
}

/// Page cache of the log database.
const LOG_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Purged entries an append deletes from the database at most.
const PURGE_CHUNK: u64 = 64;
impl LogStore {
    /// Opens or creates `path` and its tables.
    pub fn open(path: &Path) -> Result<LogStore, LogStoreError> {
        // The log is read back only for replication and replay: a small cache is enough, and
        // redb's default (1 GiB) grows the server's memory with every write.
        let db = Database::builder()
            .set_cache_size(LOG_CACHE_BYTES)
            .create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(LOGS)?;
        txn.open_table(META)?;
        txn.commit()?;
        let store = LogStore {
            db: Arc::new(db),
            tail: Arc::default(),
            purged: Arc::default(),
            takes: true,
        };
        // Entries a purge hid before a restart may still be in the database.
        let last_purged = store.read_meta::<Option<LogId<NodeId>>>(LAST_PURGED)?;
        *store.purged() = last_purged.flatten().map(|id| id.index);
        Ok(store)
    }

    fn purged(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.purged.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        // The tail holds only copies of what the database has: a poisoned lock loses nothing.
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, LogStoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        match table.get(key)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// Writes `key` in its own transaction on the blocking pool.
    async fn write_meta<T: Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durability: Durability,
    ) -> Result<(), LogStoreError> {
        let bytes = serde_json::to_vec(value)?;
        self.write_blocking(durability, move |txn| {
            txn.open_table(META)?.insert(key, bytes.as_slice())?;
            Ok(())
        })
        .await
    }

    /// Runs `f` in one write transaction on the blocking pool and commits it.
    async fn write_blocking<F>(&self, durability: Durability, f: F) -> Result<(), LogStoreError>
    where
        F: FnOnce(&redb::WriteTransaction) -> Result<(), LogStoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut txn = db.begin_write()?;
            txn.set_durability(durability)?;
            f(&txn)?;
            txn.commit()?;
            Ok(())
        })
        .await?
    }

    fn read_entries<RB: RangeBounds<u64>>(
        &self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, LogStoreError> {
        let Some((start, end)) = bounded(&range) else {
            return self.read_database(range);
        };
        if let Some(entries) = self.tail().get(start, end, self.takes) {
            return Ok(entries);
        }
        let entries = self.read_database(range)?;
        if self.takes {
            // Part of the range was dropped from the tail: the rest is read now, not kept.
            self.tail()
                .remove((Bound::Included(start), Bound::Excluded(end)));
        }
        Ok(entries)
    }

    fn read_database<RB: RangeBounds<u64>>(
        &self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, LogStoreError> {
        let mut start = range.start_bound().cloned();
        if let Some(purged) = *self.purged() {
            let visible = Bound::Excluded(purged);
            let hidden = match start {
                Bound::Unbounded => true,
                Bound::Included(i) => i <= purged,
                Bound::Excluded(i) => i < purged,
            };
            if hidden {
                start = visible;
            }
            let ends_hidden = match range.end_bound() {
                Bound::Unbounded => false,
                Bound::Included(&i) => i <= purged,
                Bound::Excluded(&i) => i <= purged.saturating_add(1),
            };
            if ends_hidden {
                return Ok(Vec::new());
            }
        }
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOGS)?;
        let mut entries = Vec::new();
        for item in table.range::<u64>((start, range.end_bound().cloned()))? {
            let (_, v) = item?;
            entries.push(serde_json::from_slice(v.value())?);
        }
        Ok(entries)
    }

    fn last_entry(&self) -> Result<Option<Entry<TypeConfig>>, LogStoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOGS)?;
        match table.last()? {
            Some((_, v)) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// Deletes every entry with an index in `range`, durably.
    async fn delete_range(&self, range: (Bound<u64>, Bound<u64>)) -> Result<(), LogStoreError> {
        self.tail().remove(range);
        self.write_blocking(Durability::Immediate, move |txn| {
            txn.open_table(LOGS)?
                .retain_in::<u64, _>(range, |_, _| false)?;
            Ok(())
        })
        .await
    }
}

/// Deletes the oldest [`PURGE_CHUNK`] entries at or below `purged`, if there are any left.
fn delete_purged_chunk(
    table: &mut redb::Table<'_, u64, &[u8]>,
    purged: Option<u64>,
) -> Result<(), LogStoreError> {
    let Some(upto) = purged else {
        return Ok(());
    };
    let first = table.first()?.map(|(index, _)| index.value());
    if let Some(first) = first.filter(|first| *first <= upto) {
        let last = upto.min(first.saturating_add(PURGE_CHUNK - 1));
        table.retain_in::<u64, _>(first..=last, |_, _| false)?;
    }
    Ok(())
}

fn read_err(e: LogStoreError) -> StorageError<NodeId> {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: LogStoreError) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        self.read_entries(range).map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged: Option<LogId<NodeId>> = self.read_meta(LAST_PURGED).map_err(read_err)?;
        let last = self
            .last_entry()
            .map_err(read_err)?
            .map(|e| e.log_id)
            .filter(|id| last_purged.is_none_or(|purged| id.index > purged.index));
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogStore {
            takes: false,
            ..self.clone()
        }
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write_meta(VOTE, vote, Durability::Immediate)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read_meta(VOTE)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Losing the committed id in a crash is harmless (it is only an optimisation for
        // re-applying on restart), so it rides along with the next fsynced commit.
        self.write_meta(COMMITTED, &committed, Durability::None)
            .await
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .read_meta::<Option<LogId<NodeId>>>(COMMITTED)
            .map_err(read_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut decoded = Vec::new();
        let encoded = entries
            .into_iter()
            .map(|e| {
                let bytes = serde_json::to_vec(&e)?;
                let index = e.log_id.index;
                decoded.push((index, e, bytes.len()));
                Ok((index, bytes))
            })
            .collect::<Result<Vec<_>, LogStoreError>>()
            .map_err(write_err)?;
        {
            let mut tail = self.tail();
            for (index, entry, size) in decoded {
                tail.insert(index, entry, size);
            }
        }
        let started = std::time::Instant::now();
        let bytes: usize = encoded.iter().map(|(_, b)| b.len()).sum();
        let appended = (
            Bound::Included(encoded.first().map_or(0, |(i, _)| *i)),
            Bound::Included(encoded.last().map_or(0, |(i, _)| *i)),
        );
        let purged = *self.purged();
        let result = self
            .write_blocking(Durability::Immediate, move |txn| {
                let mut table = txn.open_table(LOGS)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice())?;
                }
                delete_purged_chunk(&mut table, purged)
            })
            .await;
        let took = started.elapsed();
        if took > std::time::Duration::from_millis(100) {
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                bytes,
                "slow raft log append"
            );
        }
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "appending to the raft log failed");
                self.tail().remove(appended);
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.delete_range((Bound::Included(log_id.index), Bound::Unbounded))
            .await
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec(&Some(log_id)).map_err(|e| write_err(e.into()))?;
        let upto = log_id.index;
        self.tail()
            .remove((Bound::Unbounded, Bound::Included(upto)));
        self.write_blocking(Durability::Immediate, move |txn| {
            txn.open_table(META)?
                .insert(LAST_PURGED, bytes.as_slice())?;
            delete_purged_chunk(&mut txn.open_table(LOGS)?, Some(upto))
        })
        .await
        .map_err(write_err)?;
        // Hidden from reads from now on; the following appends delete the rest.
        *self.purged() = Some(upto);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;
    use redb::ReadableTableMetadata;

    use super::tail::tests::{entry, indexes};
    use super::*;

    /// Writes entries `0..n` straight into the database, as appends would have.
    fn fill(store: &LogStore, n: u64) {
        let txn = store.db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(LOGS).expect("table");
            for i in 0..n {
                let bytes = serde_json::to_vec(&entry(i)).expect("encode");
                table.insert(i, bytes.as_slice()).expect("insert");
            }
        }
        txn.commit().expect("commit");
    }

    fn stored(store: &LogStore) -> (u64, Option<u64>) {
        let txn = store.db.begin_read().expect("txn");
        let table = txn.open_table(LOGS).expect("table");
        let first = table.first().expect("first").map(|(k, _)| k.value());
        (table.len().expect("len"), first)
    }

    #[tokio::test]
    async fn a_purge_hides_entries_at_once_and_deletes_them_a_chunk_per_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("raft.redb");
        let mut store = LogStore::open(&path).expect("open");
        fill(&store, 200);
        store
            .purge(LogId::new(CommittedLeaderId::new(1, 0), 150))
            .await
            .expect("purge");
        let visible = store.try_get_log_entries(0..200).await.expect("read");
        assert_eq!(indexes(&visible), (151..200).collect::<Vec<_>>());
        assert!(
            store
                .try_get_log_entries(..=150)
                .await
                .expect("read")
                .is_empty()
        );
        // The purge's own transaction deleted the first chunk only.
        assert_eq!(stored(&store), (200 - PURGE_CHUNK, Some(PURGE_CHUNK)));

        // Reopened, the purged entries stay hidden and are still deleted chunk by chunk.
        drop(store);
        let mut store = LogStore::open(&path).expect("reopen");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id.map(|id| id.index), Some(150));
        assert_eq!(state.last_log_id.map(|id| id.index), Some(199));
        let visible = store.try_get_log_entries(100..160).await.expect("read");
        assert_eq!(indexes(&visible), (151..160).collect::<Vec<_>>());
        for _ in 0..3 {
            let txn = store.db.begin_write().expect("txn");
            delete_purged_chunk(&mut txn.open_table(LOGS).expect("table"), Some(150))
                .expect("delete");
            txn.commit().expect("commit");
        }
        assert_eq!(
            stored(&store),
            (49, Some(151)),
            "entries above the purge are kept"
        );
    }

    #[tokio::test]
    async fn a_purge_past_the_last_entry_leaves_the_purged_id_as_the_last() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = LogStore::open(&dir.path().join("raft.redb")).expect("open");
        fill(&store, 10);
        // A follower that installed a snapshot ahead of its log purges past its last entry.
        store
            .purge(LogId::new(CommittedLeaderId::new(1, 0), 500))
            .await
            .expect("purge");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id.map(|id| id.index), Some(500));
        assert!(
            store
                .try_get_log_entries(0..600)
                .await
                .expect("read")
                .is_empty()
        );
    }
}
