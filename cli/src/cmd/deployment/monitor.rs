//! The deployment monitor of `job run`, `job revert` and `job scale`, as a pure state machine:
//! fed each state of the Deployment as it is seen, it answers the lines to print and, once the
//! deployment is no longer active, how it ended. The watching itself is in `follow.rs`.
//!
//! ```text
//! ==> 2026-01-02T15:04:06Z: Monitoring deployment "web-v3"
//!     2026-01-02T15:04:06Z: Task group "web": 1/3 placed, 0 healthy, 0 unhealthy
//!     2026-01-02T15:04:06Z: Deployment status changed: "pending" -> "running" (Deployment is running)
//!     2026-01-02T15:04:19Z: Task group "web": 3/3 placed, 3 healthy, 0 unhealthy
//!     2026-01-02T15:04:19Z: Deployment status changed: "running" -> "successful" (Deployment completed successfully)
//! ==> 2026-01-02T15:04:19Z: Deployment "web-v3" successful
//! ```

use caravan_schemas::Deployment;
use caravan_schemas::deployment::{DeploymentGroupState, DeploymentState, descriptions};

use super::format::{deployment_status, description};
use super::operate::reverts;
use crate::cmd::job::monitor::Line;

/// How a deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `successful`, `failed` or `cancelled`.
    pub state: DeploymentState,
    /// The status description, e.g. `Failed due to progress deadline`.
    pub description: String,
}

impl Outcome {
    /// Whether the deployment succeeded.
    pub fn succeeded(&self) -> bool {
        self.state == DeploymentState::Successful
    }
}

/// How the deployment ended, `None` while it is active (pending, running or paused).
pub fn outcome(deployment: &Deployment) -> Option<Outcome> {
    let state = deployment.state();
    (!state.is_active()).then(|| Outcome {
        state,
        description: description(deployment).to_owned(),
    })
}

/// The monitor's state: the deployment as last reported.
#[derive(Debug, Clone)]
pub struct Monitor {
    name: String,
    last: Option<Deployment>,
    hinted_promotion: bool,
}

impl Monitor {
    /// Follows the deployment named `name`.
    pub fn new(name: &str) -> Monitor {
        Monitor {
            name: name.to_owned(),
            last: None,
            hinted_promotion: false,
        }
    }

    /// Whether the deployment was seen at all.
    pub fn seen(&self) -> bool {
        self.last.is_some()
    }

    /// How the deployment ended, once it did.
    pub fn outcome(&self) -> Option<Outcome> {
        self.last.as_ref().and_then(outcome)
    }

    /// Whether to stop following: the deployment is no longer active.
    pub fn done(&self) -> bool {
        self.outcome().is_some()
    }

    /// Takes in a state of the deployment; answers the lines that changed since the last one.
    /// States after the end are ignored.
    pub fn observe(&mut self, deployment: &Deployment) -> Vec<Line> {
        if deployment.metadata.name() != self.name || self.done() {
            return Vec::new();
        }
        let mut lines = Vec::new();
        if self.last.is_none() {
            lines.push(Line::Header(format!(
                "Monitoring deployment {:?}",
                self.name
            )));
        }
        // The groups' progress first: it is what moved the status.
        let before = self.last.as_ref().and_then(|d| d.status.as_ref());
        for (group, g) in deployment.status.iter().flat_map(|s| &s.groups) {
            let previous = before.and_then(|s| s.groups.get(group));
            if previous.is_none_or(|p| progress(p) != progress(g)) {
                lines.push(Line::Info(group_line(group, g)));
            }
        }
        let (state, text) = (deployment.state(), description(deployment));
        let (was, was_text) = match &self.last {
            Some(last) => (last.state(), description(last)),
            None => (DeploymentState::Pending, ""),
        };
        if was != state || was_text != text {
            lines.push(status_line(was, state, text));
        }
        if text == descriptions::NEEDS_PROMOTION && !self.hinted_promotion && state.is_active() {
            self.hinted_promotion = true;
            lines.push(Line::Info(format!(
                "Promote the canaries once healthy: caravan deployment promote {}",
                self.name
            )));
        }
        self.last = Some(deployment.clone());
        if let Some(end) = self.outcome() {
            lines.extend(closing(deployment, &end));
        }
        lines
    }
}

/// What a group line shows; a new line is printed when it changes.
fn progress(g: &DeploymentGroupState) -> (u32, u32, u32, u32, usize, u32, bool) {
    (
        g.desired_total,
        g.placed_allocs,
        g.healthy_allocs,
        g.unhealthy_allocs,
        g.placed_canaries.len(),
        g.desired_canaries,
        g.promoted,
    )
}

/// `Task group "web": 2/3 placed, 1 healthy, 0 unhealthy[, canaries 1/1 (promoted)]`.
pub fn group_line(group: &str, g: &DeploymentGroupState) -> String {
    let mut line = format!(
        "Task group {group:?}: {}/{} placed, {} healthy, {} unhealthy",
        g.placed_allocs, g.desired_total, g.healthy_allocs, g.unhealthy_allocs
    );
    if g.desired_canaries > 0 {
        let promoted = if g.promoted {
            "promoted"
        } else {
            "not promoted"
        };
        line.push_str(&format!(
            ", canaries {}/{} ({promoted})",
            g.placed_canaries.len(),
            g.desired_canaries
        ));
    }
    line
}

/// `Deployment status changed: "running" -> "paused" (Deployment is paused)`; the new
/// description alone when only it changed (`Deployment is running` after a promotion).
fn status_line(from: DeploymentState, to: DeploymentState, description: &str) -> Line {
    if from == to && !description.is_empty() {
        return Line::Info(description.to_owned());
    }
    let mut text = format!(
        "Deployment status changed: {:?} -> {:?}",
        from.as_str(),
        to.as_str()
    );
    if !description.is_empty() {
        text.push_str(&format!(" ({description})"));
    }
    Line::Info(text)
}

/// The end: `Deployment "web-v3" successful` (or failed, with its description), a note when
/// the job reverts, then the deployment in `deployment status`'s layout.
fn closing(deployment: &Deployment, end: &Outcome) -> Vec<Line> {
    let name = deployment.metadata.name();
    let state = end.state.as_str();
    let mut lines = vec![if end.succeeded() || end.description.is_empty() {
        Line::Header(format!("Deployment {name:?} {state}"))
    } else {
        Line::Header(format!("Deployment {name:?} {state}: {}", end.description))
    }];
    if end.state == DeploymentState::Failed && reverts(deployment) {
        lines.push(Line::Info(
            "The job reverts to its latest stable version (autoRevert), which starts its own \
             deployment"
                .into(),
        ));
    }
    lines.push(Line::Detail(String::new()));
    lines.extend(
        deployment_status(deployment)
            .lines()
            .map(|l| Line::Detail(l.to_owned())),
    );
    lines
}

#[cfg(test)]
mod tests;
