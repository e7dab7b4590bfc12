//! One check's task: runs the check every `interval` (the first run at once), turns each
//! result into the check's status (`check_state.rs`), records it in the registry, tells the
//! allocation runner when a status changed, and asks it to restart the task when
//! `checkRestart` says so. It runs until its registration is no longer wanted (aborted).

use std::time::{Instant, SystemTime};

use caravan_schemas::job::CheckStatus;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

use super::build::{CheckDef, CheckKind};
use super::check_state::{CheckMachine, RestartCounter};
use super::probe::{self, HttpRequest, Outcome};
use super::{ServiceEvent, Services, script};

/// A check to run for registration `registration` (at `generation`), `index` in its list.
pub(super) struct Checker {
    pub services: Services,
    pub registration: String,
    pub generation: u64,
    pub index: usize,
    pub def: CheckDef,
    /// The task to restart (`None`: every running task of the allocation) and its run.
    pub task: Option<String>,
    pub run: Option<String>,
    pub events: UnboundedSender<ServiceEvent>,
}

impl Checker {
    pub(super) fn spawn(self) -> AbortHandle {
        tokio::spawn(self.run()).abort_handle()
    }

    async fn run(self) {
        let def = &self.def;
        let mut machine = CheckMachine::new(
            def.initial,
            def.success_before_passing,
            def.failures_before_critical,
        );
        let mut restart = def.restart.map(|r| RestartCounter::new(r, Instant::now()));
        let mut next = tokio::time::Instant::now();
        loop {
            tokio::time::sleep_until(next).await;
            next = tokio::time::Instant::now() + def.interval;
            let outcome = once(def).await;
            let status = machine.observe(outcome.status);
            let changed = self.services.record(
                &self.registration,
                self.generation,
                self.index,
                status,
                outcome.output,
                SystemTime::now(),
            );
            if changed {
                tracing::debug!(registration = %self.registration, check = %def.name, ?status, "check status changed");
                let _ = self.events.send(ServiceEvent::ChecksChanged);
            }
            if let Some(counter) = &mut restart
                && counter.observe(status, Instant::now())
            {
                tracing::info!(registration = %self.registration, check = %def.name, "check unhealthy; restarting its task");
                let _ = self.events.send(ServiceEvent::Restart {
                    task: self.task.clone(),
                    run: self.run.clone(),
                    reason: format!("healthcheck: check {:?} unhealthy", def.name),
                });
            }
        }
    }
}

/// One run of the check.
async fn once(def: &CheckDef) -> Outcome {
    match &def.kind {
        CheckKind::Http {
            address,
            port,
            path,
            method,
            headers,
            expected_status,
        } => {
            probe::http(HttpRequest {
                address,
                port: *port,
                path,
                method,
                headers,
                expected_status: *expected_status,
                timeout: def.timeout,
            })
            .await
        }
        CheckKind::Tcp { address, port } => probe::tcp(address, *port, def.timeout).await,
        CheckKind::Script {
            command,
            args,
            context: Some(context),
        } => script::run(command, args, context, def.timeout).await,
        CheckKind::Script { context: None, .. } => Outcome::new(
            CheckStatus::Critical,
            "the task the script runs in is not part of the allocation",
        ),
    }
}
