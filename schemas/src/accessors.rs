//! Accessors with the defaults every reader applies (in the spirit of kube's `ResourceExt`):
//! a name that is empty when unset, the `default` namespace, a job's version and priority, an
//! allocation's states, a node's datacenter, pool and class.

use crate::allocation::{ClientStatus, DesiredStatus};
use crate::job::defaults;
use crate::{Allocation, Job, Node, ObjectMeta};

impl ObjectMeta {
    /// Name of the object, empty when unset.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// Namespace of the object, `default` when unset.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(defaults::NAMESPACE)
    }
}

impl Job {
    /// Version of the job: its spec generation minus one (the server bumps `generation` on every
    /// spec change, so versions start at 0 like Nomad's); `status.version` for a job without one.
    pub fn version(&self) -> i64 {
        match self.metadata.generation {
            Some(generation) if generation > 0 => generation - 1,
            _ => self.status.as_ref().map_or(0, |s| s.version),
        }
    }

    /// Priority of the job, Nomad's 50 when unset.
    pub fn priority(&self) -> i32 {
        self.spec.priority.unwrap_or(defaults::PRIORITY)
    }
}

impl Allocation {
    /// What the servers want of the allocation, `run` when unset.
    pub fn desired_status(&self) -> DesiredStatus {
        self.spec.desired_status.unwrap_or_default()
    }

    /// What the node reports of the allocation, `pending` when unset.
    pub fn client_status(&self) -> ClientStatus {
        self.status
            .as_ref()
            .map_or(ClientStatus::Pending, |s| s.client_status)
    }

    /// Whether the node reports the allocation as finished: complete, failed or lost.
    pub fn is_client_terminal(&self) -> bool {
        matches!(
            self.client_status(),
            ClientStatus::Complete | ClientStatus::Failed | ClientStatus::Lost
        )
    }

    /// Whether the servers asked the allocation to stop or be evicted.
    pub fn is_server_terminal(&self) -> bool {
        self.desired_status() != DesiredStatus::Run
    }

    /// Whether the allocation holds no resources any more (Nomad's `TerminalStatus`).
    pub fn is_terminal(&self) -> bool {
        self.is_server_terminal() || self.is_client_terminal()
    }
}

impl Node {
    /// Datacenter of the node, `dc1` when unset.
    pub fn datacenter(&self) -> &str {
        self.spec.datacenter.as_deref().unwrap_or("dc1")
    }

    /// Node pool of the node, `default` when unset.
    pub fn pool(&self) -> &str {
        self.spec
            .node_pool
            .as_deref()
            .unwrap_or(defaults::NODE_POOL)
    }

    /// Class of the node, empty when unset.
    pub fn class(&self) -> &str {
        self.spec.node_class.as_deref().unwrap_or_default()
    }
}
