//! The reflector: a cache of typed objects fed by a [`watcher`](mod@super::watcher) stream, with one
//! [`Writer`] and any number of cheap, cloneable [`Store`] readers (kube-runtime's
//! `reflector/store.rs`).
//!
//! ```text
//!  watcher ──Event──▶ reflector(writer, stream) ──Event──▶ (the caller)
//!                        │ Init: start a buffer        InitApply: fill it
//!                        │ InitDone: swap it in        Apply / Delete: change the live map
//!                        ▼
//!                      Store (get, state, len, wait_until_ready)
//! ```

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::{Stream, TryStreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use crate::object_ref::{name_of, namespace_of};
use crate::watcher::Event;

/// `(namespace, name)`; the namespace is empty for cluster-scoped kinds.
pub(crate) type Key = (String, String);

type Map<T> = HashMap<Key, Arc<T>>;

/// The read side of the cache. Cheap to clone; clones share the same contents.
pub struct Store<T> {
    objects: Arc<RwLock<Map<T>>>,
    ready: watch::Receiver<bool>,
}

impl<T> Clone for Store<T> {
    fn clone(&self) -> Self {
        Store {
            objects: self.objects.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("len", &self.len())
            .field("ready", &self.is_ready())
            .finish()
    }
}

/// The writer dropped before the first list completed: the store will never be ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the store's writer was dropped before the first list completed")]
pub struct WriterDropped;

impl<T> Store<T> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Map<T>> {
        // Writers replace whole entries or maps, so a poisoned map is still consistent.
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The object `namespace/name` (namespace `""` for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<T>> {
        self.read()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every cached object, in no particular order.
    pub fn state(&self) -> Vec<Arc<T>> {
        self.read().values().cloned().collect()
    }

    /// Every cached object with its `(namespace, name)`.
    pub(crate) fn entries(&self) -> Vec<(Key, Arc<T>)> {
        self.read()
            .iter()
            .map(|(key, object)| (key.clone(), object.clone()))
            .collect()
    }

    /// Number of cached objects.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first list has completed.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first list has completed (`InitDone`).
    pub async fn wait_until_ready(&self) -> Result<(), WriterDropped> {
        let mut ready = self.ready.clone();
        ready
            .wait_for(|ready| *ready)
            .await
            .map(|_| ())
            .map_err(|_| WriterDropped)
    }
}

/// The write side of the cache: applies watcher events. One per store.
pub struct Writer<T> {
    store: Store<T>,
    ready: watch::Sender<bool>,
    /// The contents being built between `Init` and `InitDone`.
    buffer: Option<Map<T>>,
}

impl<T> std::fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("store", &self.store)
            .field("listing", &self.buffer.is_some())
            .finish()
    }
}

/// A new empty, not yet ready, cache.
pub fn store<T>() -> (Store<T>, Writer<T>) {
    let (ready_tx, ready_rx) = watch::channel(false);
    let store = Store {
        objects: Arc::new(RwLock::new(HashMap::new())),
        ready: ready_rx,
    };
    let writer = Writer {
        store: store.clone(),
        ready: ready_tx,
        buffer: None,
    };
    (store, writer)
}

impl<T: DeserializeOwned> Writer<T> {
    /// A reader of this writer's store.
    pub fn as_reader(&self) -> Store<T> {
        self.store.clone()
    }

    /// Applies one event. A re-list (`Init` … `InitDone`) is buffered and swapped in whole, so
    /// readers see either the old contents or the new, never a mix. Objects that do not decode
    /// into `T` are logged and skipped.
    pub fn apply_event(&mut self, event: &Event) {
        match event {
            Event::Init => self.buffer = Some(HashMap::new()),
            Event::InitApply(object) => {
                if let Some((key, typed)) = decode(object) {
                    match &mut self.buffer {
                        Some(buffer) => {
                            buffer.insert(key, typed);
                        }
                        None => {
                            self.write().insert(key, typed);
                        }
                    }
                }
            }
            Event::InitDone => {
                let contents = self.buffer.take().unwrap_or_default();
                *self.write() = contents;
                self.ready.send_replace(true);
            }
            Event::Apply(object) => {
                if let Some((key, typed)) = decode(object) {
                    self.write().insert(key, typed);
                }
            }
            Event::Delete(object) => {
                if let Some(key) = key_of(object) {
                    self.write().remove(&key);
                }
            }
            Event::Progress(_) => {}
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Map<T>> {
        self.store
            .objects
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

fn key_of(object: &Value) -> Option<Key> {
    let name = name_of(object)?;
    Some((namespace_of(object).to_owned(), name.to_owned()))
}

/// The object's key and typed form; `None` (logged) when it has no name or does not decode.
pub(crate) fn decode<T: DeserializeOwned>(object: &Value) -> Option<(Key, Arc<T>)> {
    let Some(key) = key_of(object) else {
        tracing::warn!(object = %object, "skipping an object without metadata.name");
        return None;
    };
    match T::deserialize(object) {
        Ok(typed) => Some((key, Arc::new(typed))),
        Err(e) => {
            tracing::warn!(namespace = %key.0, name = %key.1, error = %e, "skipping an object that does not decode");
            None
        }
    }
}

/// Applies every event of `stream` to `writer`, passing the events (and errors) through.
pub fn reflector<T, S, E>(mut writer: Writer<T>, stream: S) -> impl Stream<Item = Result<Event, E>>
where
    T: DeserializeOwned,
    S: Stream<Item = Result<Event, E>>,
{
    stream.inspect_ok(move |event| writer.apply_event(event))
}

#[cfg(test)]
mod tests;
