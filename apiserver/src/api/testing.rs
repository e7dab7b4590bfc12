//! What the tests of the service layer and of the HTTP handlers start from.

use std::sync::Arc;

use caravan_schemas::Kind;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::{Payload, WriteOptions, create};
use crate::context::{ApiConfig, ApiContext};
use crate::raft::{ReplicatedStore, StoreConfig};
use crate::store::StoredObject;

/// A one-server store in a temporary directory with the `default` namespace, and the API
/// context over it; the watch cache keeps `cache_size` events per kind.
pub async fn context(cache_size: usize) -> (TempDir, Arc<ApiContext>) {
    context_with(cache_size, ApiConfig::default()).await
}

/// [`context`] with the API tunables `config`.
pub async fn context_with(cache_size: usize, config: ApiConfig) -> (TempDir, Arc<ApiContext>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store_config = StoreConfig::new(dir.path().join("raft"), "127.0.0.1:0".into());
    store_config.watch_cache_size = cache_size;
    let store = ReplicatedStore::open(store_config)
        .await
        .expect("store opens");
    let ctx = Arc::new(ApiContext::new(store, config));
    let ns = json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": "default"}});
    create(&ctx, Kind::Namespace, "", ns, &WriteOptions::default())
        .await
        .expect("the default namespace");
    (dir, ctx)
}

/// A small valid Job.
pub fn job(name: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"groups": [{"name": "g", "tasks": [{"name": "t", "driver": "mock"}]}]}
    })
}

pub async fn create_job(ctx: &ApiContext, job: Value) -> Arc<StoredObject> {
    let created = create(ctx, Kind::Job, "default", job, &WriteOptions::default())
        .await
        .expect("the job is created");
    match created.object {
        Payload::Stored(object) => object,
        other => panic!("{other:?}"),
    }
}
