//! Blocked evaluations (Nomad's `nomad/blocked_evals.go`): evaluations whose placements failed
//! for lack of capacity, held on the leader until capacity may have appeared.
//!
//! ```text
//!  scheduler ──creates/updates eval status=blocked──▶ store ──feed──▶ BlockedEvals::block
//!                                                                     │ one per job (newer wins,
//!                                                                     │ older → cancel)
//!   node registered / ready / eligible,                               ▼
//!   allocation terminal (capacity freed) ──▶ unblock(class, index) ──▶ evals to re-enqueue
//!                                                                     (status pending)
//! ```
//!
//! An evaluation is *captured* when the scheduler recorded which computed node classes it was
//! eligible for (`status.classEligibility`): it is unblocked only by a change on a class it was
//! not found ineligible for. It has *escaped* when a constraint escaped the computed class
//! (`status.escapedComputedClass`) or no classes were recorded: any change unblocks it.
//!
//! Unblocking follows Nomad: the blocked evaluation itself is re-enqueued. The returned copies
//! carry status `pending`; the caller writes that status (the broker feed then enqueues it) and
//! cancels the evaluations in [`BlockOutcome::cancel`]. Everything here is pure and synchronous;
//! the leader keeps one [`BlockedEvals`] behind a mutex.

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use caravan_schemas::Evaluation;
use caravan_schemas::evaluation::{EvaluationState, TriggeredBy};
use tracing::debug;

/// (namespace, name).
type Key = (String, String);

/// What [`BlockedEvals::block`] decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockOutcome {
    /// Evaluations superseded by a newer blocked evaluation of their job: mark them canceled.
    pub cancel: Vec<Evaluation>,
    /// The evaluation missed an unblock that happened after its snapshot: re-enqueue it now
    /// (status already set to `pending`).
    pub enqueue: Option<Evaluation>,
}

/// Counters of the tracker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockedStats {
    /// Evaluations tracked.
    pub total_blocked: usize,
    /// Of which escaped their computed class.
    pub total_escaped: usize,
}

#[derive(Clone, Debug)]
struct Tracked {
    eval: Evaluation,
    escaped: bool,
    seq: u64,
}

/// The leader's set of blocked evaluations, at most one per job.
#[derive(Debug)]
pub struct BlockedEvals {
    enabled: bool,
    next_seq: u64,
    evals: HashMap<Key, Tracked>,
    /// (namespace, job) → the job's blocked evaluation.
    jobs: HashMap<Key, Key>,
    /// Node class → store index of its last unblock.
    unblock_indexes: HashMap<String, u64>,
    /// Store index of the last unblock of every class.
    any_unblock_index: u64,
}

impl Default for BlockedEvals {
    fn default() -> Self {
        Self::new()
    }
}

fn key(eval: &Evaluation) -> Key {
    (
        eval.metadata.namespace().to_owned(),
        eval.metadata.name().to_owned(),
    )
}

fn job_key(eval: &Evaluation) -> Key {
    (
        eval.metadata.namespace().to_owned(),
        eval.spec.job_name.clone(),
    )
}

fn resource_version(eval: &Evaluation) -> u64 {
    eval.metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_default()
}

fn snapshot_index(eval: &Evaluation) -> u64 {
    eval.status.as_ref().map_or(0, |s| s.snapshot_index)
}

/// Whether a constraint escaped the computed class, or no class was recorded.
fn escaped(eval: &Evaluation) -> bool {
    eval.status
        .as_ref()
        .is_none_or(|s| s.escaped_computed_class || s.class_eligibility.is_empty())
}

/// Whether the scheduler found `class` ineligible for the evaluation.
fn ineligible(eval: &Evaluation, class: &str) -> bool {
    eval.status
        .as_ref()
        .and_then(|s| s.class_eligibility.get(class))
        .is_some_and(|eligible| !eligible)
}

/// The copy of a blocked evaluation that goes back to the broker.
fn as_pending(mut eval: Evaluation) -> Evaluation {
    let status = eval.status.get_or_insert_default();
    status.status = EvaluationState::Pending;
    status.status_description = Some("unblocked: capacity may be available".to_string());
    eval
}

impl BlockedEvals {
    /// An empty, enabled tracker.
    pub fn new() -> Self {
        Self {
            enabled: true,
            next_seq: 0,
            evals: HashMap::new(),
            jobs: HashMap::new(),
            unblock_indexes: HashMap::new(),
            any_unblock_index: 0,
        }
    }

    /// Whether the tracker accepts evaluations.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Enables the tracker on gaining leadership; disabling (losing it) forgets everything.
    pub fn set_enabled(&mut self, enabled: bool) {
        if !enabled {
            self.evals.clear();
            self.jobs.clear();
            self.unblock_indexes.clear();
            self.any_unblock_index = 0;
        }
        self.enabled = enabled;
    }

    /// Tracks a blocked evaluation. Evaluations not blocked, or offered to a disabled tracker,
    /// are ignored. Re-offering a tracked evaluation replaces the stored copy.
    pub fn block(&mut self, eval: Evaluation) -> BlockOutcome {
        let mut outcome = BlockOutcome::default();
        let blocked = eval
            .status
            .as_ref()
            .is_some_and(|s| s.status == EvaluationState::Blocked);
        if !self.enabled || !blocked {
            return outcome;
        }
        let key = key(&eval);
        self.remove(&key);
        self.next_seq += 1;
        let seq = self.next_seq;
        let job = job_key(&eval);
        if let Some(existing_key) = self.jobs.get(&job).cloned()
            && let Some(existing) = self.evals.get(&existing_key)
        {
            let incoming_rank = (resource_version(&eval), seq);
            let existing_rank = (resource_version(&existing.eval), existing.seq);
            if existing_rank > incoming_rank {
                debug!(eval = %key.1, kept = %existing_key.1, "older blocked evaluation superseded");
                outcome.cancel.push(eval);
                return outcome;
            }
            if let Some(old) = self.remove(&existing_key) {
                debug!(eval = %existing_key.1, by = %key.1, "blocked evaluation superseded");
                outcome.cancel.push(old);
            }
        }
        if self.missed_unblock(&eval) {
            debug!(eval = %key.1, "blocked evaluation missed an unblock; re-enqueued");
            outcome.enqueue = Some(as_pending(eval));
            return outcome;
        }
        self.jobs.insert(job, key.clone());
        let escaped = escaped(&eval);
        self.evals.insert(key, Tracked { eval, escaped, seq });
        outcome
    }

    /// Whether capacity changed on a class the evaluation could use after its snapshot.
    fn missed_unblock(&self, eval: &Evaluation) -> bool {
        let snapshot = snapshot_index(eval);
        if self.any_unblock_index > snapshot {
            return true;
        }
        if escaped(eval) {
            return self.unblock_indexes.values().any(|index| *index > snapshot);
        }
        self.unblock_indexes
            .iter()
            .any(|(class, index)| *index > snapshot && !ineligible(eval, class))
    }

    fn remove(&mut self, key: &Key) -> Option<Evaluation> {
        let tracked = self.evals.remove(key)?;
        let job = job_key(&tracked.eval);
        if self.jobs.get(&job) == Some(key) {
            self.jobs.remove(&job);
        }
        Some(tracked.eval)
    }

    fn take_where(&mut self, unblock: impl Fn(&Tracked) -> bool) -> Vec<Evaluation> {
        let keys: Vec<Key> = self
            .evals
            .iter()
            .filter(|(_, tracked)| unblock(tracked))
            .map(|(key, _)| key.clone())
            .collect();
        let mut evals: Vec<(u64, Evaluation)> = keys
            .iter()
            .filter_map(|key| {
                let seq = self.evals.get(key)?.seq;
                Some((seq, as_pending(self.remove(key)?)))
            })
            .collect();
        evals.sort_by_key(|(seq, _)| *seq);
        evals.into_iter().map(|(_, eval)| eval).collect()
    }

    /// Capacity changed on nodes of `class` (`None`: on a node of unknown class, or on every
    /// class) at store index `index`: returns the evaluations to re-enqueue, oldest first.
    pub fn unblock(&mut self, class: Option<&str>, index: u64) -> Vec<Evaluation> {
        if !self.enabled {
            return Vec::new();
        }
        match class {
            Some(class) => {
                let at = self.unblock_indexes.entry(class.to_string()).or_default();
                *at = (*at).max(index);
                self.take_where(|t| t.escaped || !ineligible(&t.eval, class))
            }
            None => {
                self.any_unblock_index = self.any_unblock_index.max(index);
                self.take_where(|_| true)
            }
        }
    }

    /// Capacity changed on node `node` of `class`: unblocks what [`Self::unblock`] does, plus
    /// system evaluations blocked on that very node.
    pub fn unblock_node(&mut self, node: &str, class: Option<&str>, index: u64) -> Vec<Evaluation> {
        let mut evals = self.take_where(|t| t.eval.spec.node_name.as_deref() == Some(node));
        evals.extend(self.unblock(class, index));
        evals
    }

    /// Evaluations blocked after too many partial plans (`max-plan-attempts`), which the leader
    /// retries periodically whatever the capacity.
    pub fn unblock_failed(&mut self) -> Vec<Evaluation> {
        self.take_where(|t| t.eval.spec.triggered_by == TriggeredBy::MaxPlanAttempts)
    }

    /// Stops tracking the blocked evaluation of a job: the job was stopped or deleted, or one
    /// of its evaluations completed with every placement made. Returns it for the caller to
    /// cancel.
    pub fn untrack(&mut self, namespace: &str, job: &str) -> Option<Evaluation> {
        let key = self
            .jobs
            .get(&(namespace.to_string(), job.to_string()))?
            .clone();
        self.remove(&key)
    }

    /// The blocked evaluation of a job, if any.
    pub fn get(&self, namespace: &str, job: &str) -> Option<&Evaluation> {
        let key = self.jobs.get(&(namespace.to_string(), job.to_string()))?;
        self.evals.get(key).map(|t| &t.eval)
    }

    /// Counters.
    pub fn stats(&self) -> BlockedStats {
        BlockedStats {
            total_blocked: self.evals.len(),
            total_escaped: self.evals.values().filter(|t| t.escaped).count(),
        }
    }
}
