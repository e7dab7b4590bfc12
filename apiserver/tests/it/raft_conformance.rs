//! openraft's storage conformance suite against the redb log store and the state machine.

use caravan_apiserver::raft::{LogStore, NodeId, StateMachine, TypeConfig};
use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

/// Builds a log store and state machine in a fresh temporary directory, kept alive by the
/// returned guard.
struct TempStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for TempStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = TempDir::new().expect("temp dir");
        let log_store = LogStore::open(&dir.path().join("raft.redb")).expect("open log store");
        let state_machine =
            StateMachine::open(dir.path().join("snapshots"), 100).expect("open state machine");
        Ok((dir, log_store, state_machine))
    }
}

#[test]
fn redb_log_store_and_state_machine_pass_openraft_suite() {
    Suite::test_all(TempStoreBuilder).expect("openraft storage suite");
}
