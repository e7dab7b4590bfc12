//! The agent's registrations in memory: what each allocation runner wants registered, its
//! checks' latest results, and what the servers hold as far as the writer knows. The runners
//! change what is wanted, the check tasks record results, the writer plans its writes from it
//! ([`super::writes::next`]) and records their outcomes. No IO: the handle in `mod.rs` locks it,
//! spawns the check tasks and wakes the writer.
//!
//! A registration of an allocation that is open but has not said what it wants yet (a runner
//! restored after an agent restart, before its first report) is held: found on the servers,
//! it is neither deleted nor adopted until that runner says.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use caravan_runtime::ClientError;
use caravan_schemas::ServiceRegistration;
use caravan_schemas::job::CheckStatus;
use caravan_schemas::service_registration::{ServiceRegistrationSpec, ServiceRegistrationStatus};
use tokio::task::AbortHandle;

use super::AllocKey;
use super::build::Wanted;
use super::writes::{LiveCheck, Next, Write, Written, next};

/// The first wait after a failed write; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two attempts of a failed write.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One registration.
#[derive(Debug)]
pub struct Entry {
    pub alloc: AllocKey,
    pub wanted: Option<Wanted>,
    /// Changes whenever what is wanted does: results of checks started before are dropped.
    pub generation: u64,
    pub checks: Vec<LiveCheck>,
    pub written: Option<Written>,
    retry: Option<(Instant, Duration)>,
    tasks: Vec<AbortHandle>,
}

impl Entry {
    fn new(alloc: AllocKey) -> Entry {
        Entry {
            alloc,
            wanted: None,
            generation: 0,
            checks: Vec::new(),
            written: None,
            retry: None,
            tasks: Vec::new(),
        }
    }

    /// No longer wanted: its check tasks are stopped.
    fn unwant(&mut self, generation: u64) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.wanted = None;
        self.checks.clear();
        self.generation = generation;
    }
}

/// One check of an allocation's registrations, for its deployment health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckHealth {
    /// The task whose service it checks; `None` for a group service.
    pub task: Option<String>,
    pub name: String,
    /// Since when it has been passing, while it is.
    pub passing_since: Option<SystemTime>,
}

/// What a check's result changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    pub status: bool,
    pub output: bool,
}

/// A write the writer is to make.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub name: String,
    pub namespace: String,
    pub write: Write,
}

/// How a write went.
#[derive(Clone, Debug, PartialEq)]
pub enum Done {
    /// The servers hold this.
    Written {
        spec: Box<ServiceRegistrationSpec>,
        status: ServiceRegistrationStatus,
    },
    /// The servers hold this status (the spec unchanged).
    StatusWritten(ServiceRegistrationStatus),
    /// The servers hold nothing (deleted, or found missing).
    Absent,
    Failed(ClientError),
}

/// Starts the check tasks of a wanted registration (its name, generation, definition).
pub type Spawn<'a> = dyn FnMut(&str, u64, &Wanted) -> Vec<AbortHandle> + 'a;

/// Every registration of the node, by object name.
#[derive(Debug, Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
    /// The allocations with a runner, and whether it said what it wants.
    allocs: HashMap<AllocKey, bool>,
    generation: u64,
}

impl Registry {
    /// An allocation whose runner starts: its registrations on the servers are held until the
    /// runner says what it wants.
    pub fn open_alloc(&mut self, key: AllocKey) {
        self.allocs.entry(key).or_insert(false);
    }

    /// The allocation's runner ended: none of its registrations is wanted.
    pub fn close_alloc(&mut self, key: &AllocKey) {
        self.sync_alloc(key, Vec::new(), SystemTime::now(), &mut |_, _, _| {
            Vec::new()
        });
        self.allocs.remove(key);
    }

    /// What the allocation's runner wants now. Registrations it no longer wants stop their
    /// checks; new or changed ones start theirs (through `spawn`) at their initial status;
    /// unchanged ones keep theirs.
    pub fn sync_alloc(
        &mut self,
        key: &AllocKey,
        wanted: Vec<Wanted>,
        now: SystemTime,
        spawn: &mut Spawn<'_>,
    ) {
        self.allocs.insert(key.clone(), true);
        let names: HashSet<&str> = wanted.iter().map(Wanted::name).collect();
        let mut generation = self.generation;
        for (name, entry) in &mut self.entries {
            if entry.alloc == *key && entry.wanted.is_some() && !names.contains(name.as_str()) {
                generation += 1;
                entry.unwant(generation);
            }
        }
        for w in wanted {
            let entry = self
                .entries
                .entry(w.name().to_string())
                .or_insert_with(|| Entry::new(key.clone()));
            if entry.wanted.as_ref() == Some(&w) {
                continue;
            }
            generation += 1;
            entry.unwant(generation);
            entry.alloc = key.clone();
            entry.checks = w
                .checks
                .iter()
                .map(|c| LiveCheck {
                    name: c.name.clone(),
                    type_name: c.kind.type_name(),
                    status: c.initial,
                    output: String::new(),
                    at: None,
                    passing_since: (c.initial == CheckStatus::Passing).then_some(now),
                })
                .collect();
            entry.tasks = spawn(w.name(), generation, &w);
            entry.wanted = Some(w);
        }
        self.generation = generation;
    }

    /// Records a check's status and output after a run at `at`, unless its registration changed
    /// since the check started; what changed.
    pub fn record(
        &mut self,
        name: &str,
        generation: u64,
        index: usize,
        status: CheckStatus,
        output: String,
        at: SystemTime,
    ) -> Recorded {
        let Some(check) = self
            .entries
            .get_mut(name)
            .filter(|e| e.generation == generation && e.wanted.is_some())
            .and_then(|e| e.checks.get_mut(index))
        else {
            return Recorded::default();
        };
        let recorded = Recorded {
            status: check.status != status,
            output: check.output != output,
        };
        check.passing_since = match status {
            CheckStatus::Passing => check.passing_since.or(Some(at)),
            _ => None,
        };
        check.status = status;
        check.output = output;
        check.at = Some(at);
        recorded
    }

    /// The checks of the allocation's wanted registrations.
    pub fn alloc_checks(&self, key: &AllocKey) -> Vec<CheckHealth> {
        self.entries
            .values()
            .filter(|e| e.alloc == *key)
            .filter_map(|e| Some((e.wanted.as_ref()?, &e.checks)))
            .flat_map(|(w, checks)| {
                checks.iter().map(|c| CheckHealth {
                    task: w.task.clone(),
                    name: c.name.clone(),
                    passing_since: c.passing_since,
                })
            })
            .collect()
    }

    /// What the servers hold for this node, as listed: registrations not listed are no longer
    /// written; listed ones nobody wants are deleted (unless held).
    pub fn reconcile(&mut self, existing: Vec<ServiceRegistration>, now: Instant) {
        let listed: HashSet<String> = existing
            .iter()
            .map(|r| r.metadata.name().to_string())
            .collect();
        for (name, entry) in &mut self.entries {
            if !listed.contains(name) {
                entry.written = None;
            }
        }
        for reg in existing {
            let alloc = AllocKey {
                namespace: reg.metadata.namespace().to_string(),
                name: reg.spec.alloc_name.clone(),
            };
            let entry = self
                .entries
                .entry(reg.metadata.name().to_string())
                .or_insert_with(|| Entry::new(alloc));
            entry.retry = None;
            entry.written = Some(Written {
                spec: reg.spec,
                status: reg.status.unwrap_or_default(),
                at: now,
            });
        }
    }

    fn held(&self, alloc: &AllocKey) -> bool {
        self.allocs.get(alloc) == Some(&false)
    }

    /// The writes due at `now`, and when to look again if nothing changes before.
    pub fn plan(&mut self, now: Instant) -> (Vec<Job>, Option<Instant>) {
        let mut jobs = Vec::new();
        let mut wake: Option<Instant> = None;
        let mut forget = Vec::new();
        for (name, entry) in &self.entries {
            if let Some((at, _)) = entry.retry
                && at > now
            {
                wake = Some(wake.map_or(at, |w| w.min(at)));
                continue;
            }
            let wanted = entry.wanted.as_ref().map(|w| &w.registration);
            let held = self.held(&entry.alloc);
            match next(wanted, held, &entry.checks, entry.written.as_ref(), now) {
                Next::Nothing => {}
                Next::Forget => forget.push(name.clone()),
                Next::WaitUntil(at) => wake = Some(wake.map_or(at, |w| w.min(at))),
                Next::Write(write) => jobs.push(Job {
                    name: name.clone(),
                    namespace: entry.alloc.namespace.clone(),
                    write,
                }),
            }
        }
        for name in forget {
            self.entries.remove(&name);
        }
        (jobs, wake)
    }

    /// Records how the write of registration `name` went.
    pub fn finish(&mut self, name: &str, done: Done, now: Instant) {
        let Some(entry) = self.entries.get_mut(name) else {
            return;
        };
        match done {
            Done::Written { spec, status } => {
                entry.retry = None;
                entry.written = Some(Written {
                    spec: *spec,
                    status,
                    at: now,
                });
            }
            Done::StatusWritten(status) => {
                entry.retry = None;
                if let Some(written) = &mut entry.written {
                    written.status = status;
                    written.at = now;
                }
            }
            Done::Absent => {
                entry.retry = None;
                entry.written = None;
            }
            Done::Failed(_) => {
                let delay = entry
                    .retry
                    .map_or(FIRST_BACKOFF, |(_, d)| (d * 2).min(MAX_BACKOFF));
                entry.retry = Some((now + delay, delay));
            }
        }
    }

    /// How many registrations have a write due (output refreshes aside).
    pub fn backlog(&self) -> usize {
        let now = Instant::now();
        self.entries
            .values()
            .filter(|e| {
                let wanted = e.wanted.as_ref().map(|w| &w.registration);
                matches!(
                    next(
                        wanted,
                        self.held(&e.alloc),
                        &e.checks,
                        e.written.as_ref(),
                        now
                    ),
                    Next::Write(_) | Next::Forget
                )
            })
            .count()
    }
}

#[cfg(test)]
#[path = "registry/tests.rs"]
mod tests;
