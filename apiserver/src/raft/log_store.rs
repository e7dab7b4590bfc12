//! The Raft log, vote and committed log id in redb (`raft.redb`).
//!
//! Every `append` writes all its entries in one write transaction committed with
//! [`Durability::Immediate`] (one fsync) and only then reports the entries flushed, so an
//! acknowledged write is on disk. Writes run on the blocking pool; reads are short and run
//! inline.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, StorageError, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::type_config::{NodeId, TypeConfig};

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

/// The Raft log store. Cloning shares the database (the clone is the log reader).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

/// Page cache of the log database.
const LOG_CACHE_BYTES: usize = 64 * 1024 * 1024;

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
        Ok(LogStore { db: Arc::new(db) })
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
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOGS)?;
        let mut entries = Vec::new();
        for item in
            table.range::<u64>((range.start_bound().cloned(), range.end_bound().cloned()))?
        {
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
        self.write_blocking(Durability::Immediate, move |txn| {
            txn.open_table(LOGS)?
                .retain_in::<u64, _>(range, |_, _| false)?;
            Ok(())
        })
        .await
    }
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
        let last = self.last_entry().map_err(read_err)?.map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
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
        let encoded = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, serde_json::to_vec(&e)?)))
            .collect::<Result<Vec<_>, LogStoreError>>()
            .map_err(write_err)?;
        let started = std::time::Instant::now();
        let bytes: usize = encoded.iter().map(|(_, b)| b.len()).sum();
        let result = self
            .write_blocking(Durability::Immediate, move |txn| {
                let mut table = txn.open_table(LOGS)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice())?;
                }
                Ok(())
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
        self.write_blocking(Durability::Immediate, move |txn| {
            txn.open_table(META)?
                .insert(LAST_PURGED, bytes.as_slice())?;
            txn.open_table(LOGS)?
                .retain_in::<u64, _>(..=upto, |_, _| false)?;
            Ok(())
        })
        .await
        .map_err(write_err)
    }
}
