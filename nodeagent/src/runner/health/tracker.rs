//! One allocation's health tracking over its life on this agent: which deployment it follows,
//! whether the agent tracks it (and with which rules) or health is decided elsewhere, the
//! decision once made, and whether that decision still has to be sent. Pure: the allocation
//! runner feeds it the Allocation, the task states and the clock, and writes what it answers.
//!
//! ```text
//!  follow(alloc), for a deployment not followed yet:
//!    no deployment ─────────────────────────────────────────────▶ Off
//!    decided by an earlier agent process ───────────────────────▶ Decided (sent again, once)
//!    health already set on the Allocation ──────────────────────▶ Decided (nothing to send)
//!    no update block, or healthCheck: manual ───────────────────▶ Off
//!    otherwise ─────────────────────────────────────────────────▶ Tracking
//!  follow(alloc), same deployment, health set elsewhere: Tracking ─▶ Decided (nothing to send)
//!  observe(tasks, checks, now): Tracking ─(Healthy | Unhealthy)──▶ Decided (to send)
//!  stop(): the allocation no longer runs ───────────────────────▶ Stopped, for good
//! ```
//!
//! A decision is never made twice for a deployment; a new deployment (an update in place)
//! starts over from `follow`.

use std::time::SystemTime;

use caravan_schemas::Allocation;
use caravan_schemas::allocation::AllocDeploymentStatus;
use caravan_schemas::job::UpdateStrategy;

use super::checks::CheckView;
use super::rules::rules;
use super::{Health, HealthRules, TaskView, decide_with_checks};
use crate::runner::events;
use crate::state::LocalHealth;

/// The health tracking of one allocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Tracker {
    /// The deployment followed (the allocation's `spec.deploymentName`).
    deployment: Option<String>,
    state: State,
    /// Whether the scheduler placed the allocation as a canary: written back as it is.
    canary: bool,
    /// What an earlier agent process decided, until the deployment it is for is followed.
    recovered: Option<LocalHealth>,
    /// A decision not handed to the status writer yet.
    unsent: Option<AllocDeploymentStatus>,
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    /// Nothing to track: no deployment, or health set by the operator.
    Off,
    Tracking {
        rules: HealthRules,
        since: SystemTime,
        /// When the last pending decision asked to be looked at again.
        recheck_at: Option<SystemTime>,
    },
    /// Health is known for the deployment followed.
    Decided,
    /// The allocation stopped running: health no longer matters.
    Stopped,
}

/// A decision just made.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The decision, for the deployment it is for.
    pub health: LocalHealth,
    /// Why the allocation is unhealthy.
    pub reason: Option<String>,
}

impl Tracker {
    /// A tracker following nothing yet; `recovered` is what an earlier agent process decided.
    pub fn new(recovered: Option<LocalHealth>) -> Tracker {
        Tracker {
            deployment: None,
            state: State::Off,
            canary: false,
            recovered,
            unsent: None,
        }
    }

    /// Follows the allocation as it is now, `update` being its group's `update` block in the
    /// job version it runs. A deployment not followed yet is tracked from `since`.
    pub fn follow(
        &mut self,
        alloc: &Allocation,
        update: Option<&UpdateStrategy>,
        since: SystemTime,
    ) {
        if self.state == State::Stopped {
            return;
        }
        let status = alloc
            .status
            .as_ref()
            .and_then(|s| s.deployment_status.as_ref());
        let set_elsewhere = status.is_some_and(|s| s.healthy.is_some());
        let deployment = alloc.spec.deployment_name.clone().filter(|d| !d.is_empty());
        if deployment == self.deployment {
            if let Some(status) = status {
                self.canary = status.canary;
            }
            if set_elsewhere && matches!(self.state, State::Tracking { .. }) {
                self.state = State::Decided;
            }
            return;
        }
        // A decision for the deployment left behind must not land on the new one.
        self.unsent = None;
        self.canary = status.is_some_and(|s| s.canary);
        self.deployment = deployment.clone();
        let Some(deployment) = deployment else {
            self.state = State::Off;
            return;
        };
        match self.recovered.take() {
            Some(recovered) if recovered.deployment == deployment => {
                self.state = State::Decided;
                self.unsent = Some(recovered.status);
                return;
            }
            other => self.recovered = other,
        }
        self.state = if set_elsewhere {
            State::Decided
        } else {
            match update.and_then(rules) {
                Some(rules) => State::Tracking {
                    rules,
                    since,
                    recheck_at: None,
                },
                None => State::Off,
            }
        };
    }

    /// Decides from the tasks as they are at `now`, while tracking; the decision when one is
    /// made (it is then also [`Tracker::take_unsent`]'s).
    pub fn observe(&mut self, tasks: &[TaskView], now: SystemTime) -> Option<Verdict> {
        self.observe_with_checks(tasks, &[], now)
    }

    /// Decides from the tasks and the services' checks as they are at `now`; see
    /// [`Tracker::observe`].
    pub fn observe_with_checks(
        &mut self,
        tasks: &[TaskView],
        checks: &[CheckView],
        now: SystemTime,
    ) -> Option<Verdict> {
        let State::Tracking {
            rules,
            since,
            recheck_at,
        } = &mut self.state
        else {
            return None;
        };
        let (healthy, at, reason) = match decide_with_checks(*rules, *since, tasks, checks, now) {
            Health::Pending { recheck_at: at } => {
                *recheck_at = Some(at);
                return None;
            }
            Health::Healthy { at } => (true, at, None),
            Health::Unhealthy { at, reason } => (false, at, Some(reason)),
        };
        let status = AllocDeploymentStatus {
            healthy: Some(healthy),
            canary: self.canary,
            timestamp: Some(events::timestamp(at)),
        };
        self.state = State::Decided;
        self.unsent = Some(status.clone());
        Some(Verdict {
            health: LocalHealth {
                deployment: self.deployment.clone().unwrap_or_default(),
                status,
            },
            reason,
        })
    }

    /// Whether health is being tracked (not decided, not stopped).
    pub fn is_tracking(&self) -> bool {
        matches!(self.state, State::Tracking { .. })
    }

    /// Whether the services' checks are looked at (`healthCheck: checks`, while tracking).
    pub fn uses_checks(&self) -> bool {
        matches!(self.state, State::Tracking { rules, .. } if rules.checks)
    }

    /// When to decide again even if no task changes (the end of the minimum healthy time or the
    /// healthy deadline), while tracking.
    pub fn recheck_at(&self) -> Option<SystemTime> {
        match self.state {
            State::Tracking { recheck_at, .. } => recheck_at,
            _ => None,
        }
    }

    /// The allocation stopped running: no decision from now on (one already made is still
    /// sent).
    pub fn stop(&mut self) {
        self.state = State::Stopped;
    }

    /// Whether a decision waits to be sent.
    pub fn has_unsent(&self) -> bool {
        self.unsent.is_some()
    }

    /// The decision to send with the next status, once.
    pub fn take_unsent(&mut self) -> Option<AllocDeploymentStatus> {
        self.unsent.take()
    }
}

#[cfg(test)]
mod tests;
