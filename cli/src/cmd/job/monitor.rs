//! The evaluation monitor of `job run` and `job stop` (Nomad's `monitor.go`), as a pure state
//! machine: it is fed the job's evaluations and allocations as they are seen and answers the
//! lines to print. The watching itself is in `wait.rs`.
//!
//! ```text
//! ==> 2026-01-02T15:04:05Z: Monitoring evaluation "web-5d1e…"
//!     2026-01-02T15:04:05Z: Evaluation triggered by job "web"
//!     2026-01-02T15:04:06Z: Allocation "web-web-0-1a2b3c4d" created: node "n1", group "web"
//!     2026-01-02T15:04:06Z: Evaluation status changed: "pending" -> "complete"
//! ==> 2026-01-02T15:04:06Z: Evaluation "web-5d1e…" finished with status "complete"
//! ```

use std::collections::{BTreeMap, BTreeSet};

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::evaluation::{EvaluationState, TriggeredBy};
use caravan_schemas::{Allocation, Evaluation};

use super::format::{alloc_metrics, failed_group_header, revision, wire};

/// One line of monitor output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `==> TIME: text`.
    Header(String),
    /// `    TIME: text`.
    Info(String),
    /// `    text`, e.g. the placement metrics under a failed group.
    Detail(String),
}

impl Line {
    /// The line as printed at `now`.
    pub fn render(&self, now: &str) -> String {
        match self {
            Line::Header(text) => format!("==> {now}: {text}"),
            Line::Info(text) => format!("    {now}: {text}"),
            Line::Detail(text) if text.is_empty() => String::new(),
            Line::Detail(text) => format!("    {text}"),
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Line::Header(t) | Line::Info(t) | Line::Detail(t) => t,
        }
    }
}

/// Which evaluation to follow: the first of the job written at or after `after` (the
/// revision of the job write), for at least `min_version`, triggered by one of `triggers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub job: String,
    pub after: u64,
    pub min_version: i64,
    pub triggers: Vec<TriggeredBy>,
}

impl Target {
    /// Whether `eval` is the one the job write produced.
    pub fn matches(&self, eval: &Evaluation) -> bool {
        eval.spec.job_name == self.job
            && revision(&eval.metadata) >= self.after
            && eval.spec.job_version >= self.min_version
            && self.triggers.contains(&eval.spec.triggered_by)
    }
}

/// How the monitored evaluation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub status: EvaluationState,
    /// Some allocations could not be placed.
    pub failed_placements: bool,
}

/// `nomad job run`'s exit code: 0 when everything was placed, 2 on scheduling failures.
pub fn exit_code(outcome: &Outcome) -> i32 {
    let scheduling_failed = outcome.failed_placements
        || matches!(
            outcome.status,
            EvaluationState::Failed | EvaluationState::Blocked
        );
    if scheduling_failed { 2 } else { 0 }
}

/// Whether an evaluation is done from the monitor's point of view.
pub fn is_final(state: EvaluationState) -> bool {
    !matches!(state, EvaluationState::Pending)
}

fn state_of(eval: &Evaluation) -> EvaluationState {
    eval.status.as_ref().map(|s| s.status).unwrap_or_default()
}

/// The monitor's state.
#[derive(Debug, Clone)]
pub struct Monitor {
    target: Target,
    /// Allocations of the job that existed before the write: seen again, they were modified.
    existed: BTreeSet<String>,
    /// The evaluation followed, once found, as last seen.
    eval: Option<Evaluation>,
    /// The status last printed.
    reported: EvaluationState,
    /// Allocations of the evaluation printed so far, with their client status.
    allocs: BTreeMap<String, ClientStatus>,
    /// Allocations written before the evaluation was found, replayed when it is.
    early: BTreeMap<String, Allocation>,
}

impl Monitor {
    pub fn new(target: Target, existed: BTreeSet<String>) -> Monitor {
        Monitor {
            target,
            existed,
            eval: None,
            reported: EvaluationState::Pending,
            allocs: BTreeMap::new(),
            early: BTreeMap::new(),
        }
    }

    /// The name of the evaluation followed, once found.
    pub fn eval_name(&self) -> Option<&str> {
        self.eval.as_ref().and_then(|e| e.metadata.name.as_deref())
    }

    /// Whether the followed evaluation reached a final status.
    pub fn done(&self) -> bool {
        self.eval.as_ref().is_some_and(|e| is_final(state_of(e)))
    }

    /// Takes in an evaluation of the job.
    pub fn observe_eval(&mut self, eval: &Evaluation) -> Vec<Line> {
        let mut lines = Vec::new();
        match self.eval_name().map(str::to_owned) {
            None if self.target.matches(eval) => {
                let name = eval.metadata.name().to_string();
                lines.push(Line::Header(format!("Monitoring evaluation {name:?}")));
                lines.push(Line::Info(trigger_line(eval)));
                self.eval = Some(eval.clone());
                let early = std::mem::take(&mut self.early);
                for alloc in early.values() {
                    lines.extend(self.observe_alloc(alloc));
                }
            }
            Some(name) if eval.metadata.name.as_deref() == Some(name.as_str()) => {
                self.eval = Some(eval.clone());
            }
            _ => return lines,
        }
        // A final status is reported by `finish`, after the allocations it created.
        let state = state_of(eval);
        if state != self.reported && !is_final(state) {
            lines.push(status_change(self.reported, state));
            self.reported = state;
        }
        lines
    }

    /// Takes in an allocation of the job.
    pub fn observe_alloc(&mut self, alloc: &Allocation) -> Vec<Line> {
        let name = alloc.metadata.name().to_string();
        let Some(eval) = self.eval_name().map(str::to_owned) else {
            if revision(&alloc.metadata) >= self.target.after {
                self.early.insert(name, alloc.clone());
            }
            return Vec::new();
        };
        let client = alloc
            .status
            .as_ref()
            .map(|s| s.client_status)
            .unwrap_or_default();
        if let Some(previous) = self.allocs.get(&name).copied() {
            if previous == client {
                return Vec::new();
            }
            self.allocs.insert(name.clone(), client);
            let description = alloc
                .status
                .as_ref()
                .and_then(|s| s.client_description.as_deref())
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            return vec![Line::Info(format!(
                "Allocation {name:?} status changed: {:?} -> {:?}{description}",
                wire(&previous),
                wire(&client)
            ))];
        }
        if alloc.spec.eval_name.as_deref() != Some(eval.as_str()) {
            return Vec::new();
        }
        let (node, group) = (&alloc.spec.node_name, &alloc.spec.group);
        let verb = if self.existed.contains(&name) {
            "modified"
        } else if alloc.spec.desired_status.unwrap_or_default() == DesiredStatus::Run {
            "created"
        } else {
            return Vec::new();
        };
        self.allocs.insert(name.clone(), client);
        vec![Line::Info(format!(
            "Allocation {name:?} {verb}: node {node:?}, group {group:?}"
        ))]
    }

    /// The closing lines and the outcome, once [`Monitor::done`].
    pub fn finish(&self) -> (Vec<Line>, Outcome) {
        let mut lines = Vec::new();
        let Some(eval) = &self.eval else {
            let outcome = Outcome {
                status: EvaluationState::Pending,
                failed_placements: false,
            };
            return (lines, outcome);
        };
        let name = eval.metadata.name().to_string();
        let state = state_of(eval);
        if state != self.reported {
            lines.push(status_change(self.reported, state));
        }
        let status = eval.status.clone().unwrap_or_default();
        let state_text = wire(&state);
        if let Some(description) = status
            .status_description
            .as_deref()
            .filter(|_| matches!(state, EvaluationState::Failed | EvaluationState::Canceled))
        {
            lines.push(Line::Info(format!(
                "Evaluation {name:?} {state_text}: {description}"
            )));
        }
        if status.failed_group_allocs.is_empty() {
            lines.push(Line::Header(format!(
                "Evaluation {name:?} finished with status {state_text:?}"
            )));
        } else {
            lines.push(Line::Header(format!(
                "Evaluation {name:?} finished with status {state_text:?} but failed to place all allocations:"
            )));
            for (group, metrics) in &status.failed_group_allocs {
                lines.push(Line::Info(failed_group_header(group, metrics)));
                lines.extend(alloc_metrics(metrics, "  ").into_iter().map(Line::Detail));
            }
            if let Some(blocked) = &status.blocked_eval {
                lines.push(Line::Info(format!(
                    "Evaluation {blocked:?} waiting for additional capacity to place remainder"
                )));
            }
        }
        let outcome = Outcome {
            status: state,
            failed_placements: !status.failed_group_allocs.is_empty(),
        };
        (lines, outcome)
    }
}

/// `Evaluation triggered by job "web"` (or by node, for node changes).
fn trigger_line(eval: &Evaluation) -> String {
    match (&eval.spec.node_name, eval.spec.triggered_by) {
        (Some(node), TriggeredBy::NodeUpdate | TriggeredBy::NodeDrain) => {
            format!("Evaluation triggered by node {node:?}")
        }
        _ => format!("Evaluation triggered by job {:?}", eval.spec.job_name),
    }
}

fn status_change(from: EvaluationState, to: EvaluationState) -> Line {
    Line::Info(format!(
        "Evaluation status changed: {:?} -> {:?}",
        wire(&from),
        wire(&to)
    ))
}

#[cfg(test)]
mod tests;
