//! Services and their health checks (Nomad's native service discovery): the node agent
//! registers a `ServiceRegistration` for each service of a running task (a group's services
//! once the allocation's first main task runs), runs the services' checks, writes their
//! results, and deletes the registrations when the task or the allocation stops.
//!
//! ```text
//!  allocation runner ──sync_alloc(wanted)──▶ Registry ◀──record── check tasks (one per check)
//!        ▲                                     │  plan / finish          │
//!        └──── ServiceEvent (status changed, ──┼─────────────────────────┘
//!              restart the task)               ▼
//!                                     writer ──▶ create / delete / PATCH …/status
//!                                        └─ list spec.nodeName=<node>: reconcile at start
//!                                           and every RECONCILE_EVERY
//! ```
//!
//! `build.rs` makes the wanted registrations (pure), `check_state.rs` counts a check's results
//! (pure), `probe.rs` and `script.rs` run one check, `checker.rs` is a check's task,
//! `registry.rs` the shared state (pure), `writes.rs` what to write next (pure), `writer.rs`
//! the writes.

pub mod build;
pub mod check_state;
mod checker;
pub mod probe;
pub mod registry;
mod script;
mod writer;
pub mod writes;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use caravan_schemas::job::CheckStatus;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

pub use self::build::Wanted;
pub use self::registry::CheckHealth;
use self::registry::Registry;
pub use self::writer::RECONCILE_EVERY;

/// The allocation registrations belong to: its namespace and object name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocKey {
    pub namespace: String,
    pub name: String,
}

/// What a service's checks tell its allocation runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceEvent {
    /// A check's status changed.
    ChecksChanged,
    /// A check stayed unhealthy past its `checkRestart` limit: restart `task` (every running
    /// task, for a group service) if it still runs `run`.
    Restart {
        task: Option<String>,
        run: Option<String>,
        reason: String,
    },
}

/// The node's registrations: what runners want, what checks say, what the writer sends.
#[derive(Clone, Default)]
pub struct Services {
    registry: Arc<Mutex<Registry>>,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Services")
    }
}

impl Services {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An allocation whose runner starts (or is restored): what it registered before is kept
    /// until the runner says what it wants.
    pub fn open_alloc(&self, key: AllocKey) {
        self.lock().open_alloc(key);
    }

    /// The allocation's runner ended: its registrations are deleted.
    pub fn close_alloc(&self, key: &AllocKey) {
        self.lock().close_alloc(key);
        self.notify.notify_one();
    }

    /// Everything the allocation wants registered now; the checks of new or changed
    /// registrations start, and report to `events`.
    pub fn sync_alloc(
        &self,
        key: &AllocKey,
        wanted: Vec<Wanted>,
        events: &UnboundedSender<ServiceEvent>,
    ) {
        let mut spawn = |name: &str, generation: u64, w: &Wanted| {
            w.checks
                .iter()
                .enumerate()
                .map(|(index, def)| {
                    checker::Checker {
                        services: self.clone(),
                        registration: name.to_string(),
                        generation,
                        index,
                        def: def.clone(),
                        task: w.task.clone(),
                        run: w.run.clone(),
                        events: events.clone(),
                    }
                    .spawn()
                })
                .collect()
        };
        self.lock()
            .sync_alloc(key, wanted, SystemTime::now(), &mut spawn);
        self.notify.notify_one();
    }

    /// The checks of the allocation's registrations.
    pub fn alloc_checks(&self, key: &AllocKey) -> Vec<CheckHealth> {
        self.lock().alloc_checks(key)
    }

    /// How many registrations have a write due.
    pub fn backlog(&self) -> usize {
        self.lock().backlog()
    }

    /// A check's result; whether its status changed. The writer is woken when the status or
    /// the output changed.
    fn record(
        &self,
        name: &str,
        generation: u64,
        index: usize,
        status: CheckStatus,
        output: String,
        at: SystemTime,
    ) -> bool {
        let recorded = self
            .lock()
            .record(name, generation, index, status, output, at);
        if recorded.status || recorded.output {
            self.notify.notify_one();
        }
        recorded.status
    }
}

#[cfg(test)]
mod tests;
