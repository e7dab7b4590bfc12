//! What one registration needs written next, from what the agent wants, its checks' latest
//! results and what the servers hold as far as the agent knows. Pure.
//!
//! ```text
//!  not wanted, not written ───────────────────────────────▶ forget it
//!  not wanted, written ────────────────▶ delete (held while its allocation's runner, restored
//!                                         after an agent restart, has not said what it wants)
//!  wanted, not written ────────────────▶ create, with the checks' statuses
//!  wanted, written with another spec ──▶ replace (delete, then create)
//!  a check has not run since the registration was (re)wanted ─▶ wait for it (an agent that
//!                                         restarted does not write its checks back to their
//!                                         initial status)
//!  a check's status (or the aggregate) differs from the written one ─▶ patch the status
//!  only outputs differ ────────────────▶ patch the status once OUTPUT_REFRESH has passed
//!                                         since the last write, else wait until then
//! ```

use std::time::{Duration, Instant, SystemTime};

use caravan_schemas::ServiceRegistration;
use caravan_schemas::job::CheckStatus;
use caravan_schemas::service_registration::{
    CheckResult, ServiceRegistrationSpec, ServiceRegistrationStatus,
};

use super::check_state::worst;
use crate::runner::events;

/// The shortest time between two writes of a registration whose checks changed only their
/// output.
pub const OUTPUT_REFRESH: Duration = Duration::from_secs(60);

/// The latest result of one check of a wanted registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveCheck {
    pub name: String,
    /// `http`, `tcp` or `script`.
    pub type_name: &'static str,
    pub status: CheckStatus,
    pub output: String,
    /// When it last ran.
    pub at: Option<SystemTime>,
    /// Since when it has been passing, while it is.
    pub passing_since: Option<SystemTime>,
}

/// What the servers hold, as last written or read.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub spec: ServiceRegistrationSpec,
    pub status: ServiceRegistrationStatus,
    /// When it was written or read.
    pub at: Instant,
}

/// A write to make.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Create the object (its status included).
    Create(Box<ServiceRegistration>),
    /// Delete the object that is there, then create this one.
    Replace(Box<ServiceRegistration>),
    PatchStatus(ServiceRegistrationStatus),
    Delete,
}

/// What to do next about one registration.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    Nothing,
    /// Nothing is wanted nor written: drop the entry.
    Forget,
    Write(Write),
    /// Look again at this time.
    WaitUntil(Instant),
}

/// The status a registration reports for its checks' results.
pub fn status_of(checks: &[LiveCheck]) -> ServiceRegistrationStatus {
    ServiceRegistrationStatus {
        status: worst(checks.iter().map(|c| c.status)),
        checks: checks
            .iter()
            .map(|c| CheckResult {
                name: c.name.clone(),
                r#type: c.type_name.to_string(),
                status: c.status,
                output: c.output.clone(),
                timestamp: c.at.map(events::timestamp),
            })
            .collect(),
    }
}

/// Whether two statuses say the same, outputs and times aside.
fn same_statuses(a: &ServiceRegistrationStatus, b: &ServiceRegistrationStatus) -> bool {
    a.status == b.status
        && a.checks.len() == b.checks.len()
        && a.checks
            .iter()
            .zip(&b.checks)
            .all(|(x, y)| x.name == y.name && x.r#type == y.r#type && x.status == y.status)
}

fn same_outputs(a: &ServiceRegistrationStatus, b: &ServiceRegistrationStatus) -> bool {
    a.checks
        .iter()
        .map(|c| &c.output)
        .eq(b.checks.iter().map(|c| &c.output))
}

/// The next step for a registration: `wanted` is the object the agent wants (none once its task
/// stopped), `held` whether a deletion must wait, `checks` its checks' results.
pub fn next(
    wanted: Option<&ServiceRegistration>,
    held: bool,
    checks: &[LiveCheck],
    written: Option<&Written>,
    now: Instant,
) -> Next {
    let Some(wanted) = wanted else {
        return match written {
            None => Next::Forget,
            Some(_) if held => Next::Nothing,
            Some(_) => Next::Write(Write::Delete),
        };
    };
    let status = status_of(checks);
    let object = || {
        let mut object = Box::new(wanted.clone());
        object.status = Some(status.clone());
        object
    };
    let Some(written) = written else {
        return Next::Write(Write::Create(object()));
    };
    if written.spec != wanted.spec {
        return Next::Write(Write::Replace(object()));
    }
    if checks.iter().any(|c| c.at.is_none()) {
        return Next::Nothing;
    }
    if !same_statuses(&written.status, &status) {
        return Next::Write(Write::PatchStatus(status));
    }
    if same_outputs(&written.status, &status) {
        return Next::Nothing;
    }
    let due = written.at + OUTPUT_REFRESH;
    if now >= due {
        Next::Write(Write::PatchStatus(status))
    } else {
        Next::WaitUntil(due)
    }
}

#[cfg(test)]
#[path = "writes/tests.rs"]
mod tests;
