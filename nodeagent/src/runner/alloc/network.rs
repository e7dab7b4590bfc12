//! The allocation runner's side of allocation networks (`crate::network`): the namespace is
//! made before any task starts, and torn down once the runner ends with no task running.

use std::path::PathBuf;
use std::time::SystemTime;

use caravan_schemas::allocation::TaskState;
use caravan_schemas::job::TaskGroup;
use caravan_schemas::{Allocation, NameMap};

use super::{AllocRunner, refused};
use crate::network::{self, Mode};
use crate::runner::status::alloc_status;

impl AllocRunner {
    /// Makes the allocation's network when its group asks for one: `Ok(Some(namespace))`, or
    /// `Ok(None)` for host networking. `Err` with the final task states (each failed with a
    /// `Setup Failure`) when it cannot be made, its failed status reported.
    pub(super) async fn network_up(
        &mut self,
        alloc: &Allocation,
        group: &TaskGroup,
    ) -> Result<Option<PathBuf>, NameMap<TaskState>> {
        let Some(mode) = Mode::of(group) else {
            return Ok(None);
        };
        let ports = alloc
            .spec
            .allocated_resources
            .as_ref()
            .map(|r| r.shared.ports.as_slice())
            .unwrap_or_default();
        let made = network::up(
            &self.settings.network,
            &self.local,
            &self.alloc_id,
            mode,
            ports,
        )
        .await;
        match made {
            Ok(netns) => Ok(Some(netns)),
            Err(e) => {
                let name = alloc.metadata.name();
                tracing::error!(alloc = %name, error = %e, "failed to set up the allocation network");
                let message = format!("failed to set up the allocation network: {e}");
                let states = refused(group, &message, SystemTime::now());
                let mut status = alloc_status(&states);
                status.client_description = Some(message);
                status.deployment_status = self.refused_health(alloc, group, &states);
                self.status.update(alloc.metadata.namespace(), name, status);
                Err(states)
            }
        }
    }

    /// Tears the allocation's network down when no task of `states` runs any more.
    pub(super) async fn network_down(&self, states: &NameMap<TaskState>) {
        if network::release::on_runner_exit(states) {
            network::down(&self.settings.network, &self.local, &self.alloc_id).await;
        }
    }
}
