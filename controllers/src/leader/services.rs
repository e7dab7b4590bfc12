//! The leader's service registration cleanup: a pass over the registrations (a watch of their
//! own) and the caches' allocations and nodes deletes those [`stale_registrations`] finds
//! (pure, [`crate::services`]): of allocations that ended or are gone, and of nodes that went
//! down.
//!
//! ```text
//! watch ServiceRegistrations ─┐ written
//! alloc feed ─────────────────┼ ended, deleted  ─▶ (settle) pass ─▶ delete each, NotFound is done
//! node feed ──────────────────┘ down                   ▲
//!                                every SWEEP_INTERVAL ─┘
//! ```
//!
//! A pass runs shortly after a change that may leave registrations behind, and every
//! [`SWEEP_INTERVAL`] whatever happened, so an event lost in a lagging feed costs a delay,
//! never a leftover. A registration newer than what the caches hold is decided by a later pass
//! ([`RETRY`]), once they caught up.

use std::sync::Arc;
use std::time::Duration;

use caravan_runtime::{Client, ClientError, Event, ListQuery, Store, reflector, store, watcher};
use caravan_schemas::{Kind, ServiceRegistration};
use futures::{StreamExt, stream};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Caches, Shared};
use crate::services::{any_undecided, stale_registrations};
use caravan_runtime::ObjectRef;

/// How long a pass waits after the change that called for it, so that a burst of changes (a
/// node going down with its allocations) costs one pass.
const SETTLE: Duration = Duration::from_millis(100);
/// How soon a pass that left registrations undecided or undeleted runs again.
const RETRY: Duration = Duration::from_secs(1);
/// How often a pass runs even without a change calling for it.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// Deletions in flight at once.
const PARALLEL: usize = 16;

/// Runs the cleanup until the future is dropped (or the caches' feeds close).
pub(crate) async fn run<C: Client>(
    shared: Arc<Shared<C>>,
    mut allocations: broadcast::Receiver<Event>,
    mut nodes: broadcast::Receiver<Event>,
) {
    let (registrations, writer) = store::<ServiceRegistration>();
    let watch = watcher(
        shared.client.clone(),
        Kind::ServiceRegistration,
        None,
        ListQuery::default(),
    );
    let mut events = reflector(writer, watch).boxed();
    shared.caches.wait_until_ready().await;
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // When the next pass is due, if one was called for.
    let mut due: Option<Instant> = None;
    loop {
        let wake = tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => registration_written(&event),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "service registration watch failed; retrying");
                    false
                }
                None => return,
            },
            received = allocations.recv() => match woken(received, allocation_ended) {
                Some(wake) => wake,
                None => return,
            },
            received = nodes.recv() => match woken(received, node_down) {
                Some(wake) => wake,
                None => return,
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                due = None;
                if !pass(&shared.client, &shared.caches, &registrations).await {
                    due = Some(Instant::now() + RETRY);
                }
                false
            }
            _ = sweep.tick() => {
                if !pass(&shared.client, &shared.caches, &registrations).await {
                    due = Some(Instant::now() + RETRY);
                }
                false
            }
        };
        if wake {
            due.get_or_insert_with(|| Instant::now() + SETTLE);
        }
    }
}

/// One pass: deletes the stale registrations. Whether it is done, with none left undecided
/// (newer than the caches) or undeleted.
async fn pass<C: Client>(
    client: &C,
    caches: &Caches,
    registrations: &Store<ServiceRegistration>,
) -> bool {
    let current = registrations.state();
    if current.is_empty() {
        return true;
    }
    let complete = caches.complete_for(&[Kind::Allocation, Kind::Node]);
    let allocation = |namespace: &str, name: &str| caches.allocations.get(namespace, name);
    let node = |name: &str| caches.nodes.get("", name);
    let stale = stale_registrations(&current, &allocation, &node, complete);
    let undecided = any_undecided(&current, complete);
    if stale.is_empty() {
        return !undecided;
    }
    let count = stale.len();
    let failed = stream::iter(stale)
        .map(|registration| delete(client, registration))
        .buffer_unordered(PARALLEL)
        .filter(|deleted| std::future::ready(!deleted))
        .count()
        .await;
    tracing::info!(
        deleted = count - failed,
        failed,
        "deleted the service registrations of ended allocations and down nodes"
    );
    !undecided && failed == 0
}

/// Deletes one registration; one already gone counts as deleted.
async fn delete<C: Client>(client: &C, registration: ObjectRef) -> bool {
    let (namespace, name) = (&registration.namespace, &registration.name);
    match client
        .delete(Kind::ServiceRegistration, namespace, name)
        .await
    {
        Ok(()) | Err(ClientError::NotFound) => {
            tracing::debug!(registration = %registration, "stale service registration deleted");
            true
        }
        Err(e) => {
            tracing::warn!(registration = %registration, error = %e, "could not delete a stale service registration");
            false
        }
    }
}

/// Whether a feed's event calls for a pass (`None` when the feed closed). A feed that lagged
/// lost events: a pass looks at everything.
fn woken(received: Result<Event, RecvError>, calls_for_pass: fn(&Event) -> bool) -> Option<bool> {
    match received {
        Ok(event) => Some(calls_for_pass(&event)),
        Err(RecvError::Lagged(_)) => Some(true),
        Err(RecvError::Closed) => None,
    }
}

/// A registration was written (or all of them listed): it may belong to an allocation that
/// ended meanwhile.
fn registration_written(event: &Event) -> bool {
    matches!(event, Event::Apply(_) | Event::InitDone)
}

/// An allocation was deleted or its node reports it complete, failed or lost.
fn allocation_ended(event: &Event) -> bool {
    match event {
        Event::Delete(_) => true,
        Event::Apply(alloc) | Event::InitApply(alloc) => matches!(
            alloc
                .pointer("/status/clientStatus")
                .and_then(Value::as_str),
            Some("complete" | "failed" | "lost")
        ),
        _ => false,
    }
}

/// A node is down.
fn node_down(event: &Event) -> bool {
    match event {
        Event::Apply(node) | Event::InitApply(node) => {
            node.pointer("/status/status").and_then(Value::as_str) == Some("down")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
