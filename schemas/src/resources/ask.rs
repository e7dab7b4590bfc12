//! What a task group asks of a node ([`GroupAsk`]), and the `allocatedResources` of an
//! allocation placed for it.

use super::{Comparable, mhz_per_core};
use crate::Node;
use crate::allocation::{
    AllocatedDevice, AllocatedPort, AllocatedResources, AllocatedTaskResources,
};
use crate::job::{TaskGroup, defaults};
use crate::ports::PortAsk;

/// A device request of a group: the request name and how many instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAsk {
    /// Task asking.
    pub task: String,
    /// `<type>`, `<vendor>/<type>` or `<vendor>/<type>/<model>`.
    pub name: String,
    /// Instances.
    pub count: u32,
}

/// What one allocation of a task group asks of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupAsk {
    /// MHz asked by tasks that do not reserve cores.
    pub cpu: u64,
    /// Whole cores.
    pub cores: u32,
    /// Memory in MB.
    pub memory_mb: u64,
    /// Ephemeral disk in MB.
    pub disk_mb: u64,
    /// Device requests.
    pub devices: Vec<DeviceAsk>,
    /// Host ports, static and dynamic.
    pub ports: Vec<PortAsk>,
}

impl GroupAsk {
    /// Sums the resources of every task of `group`, with Nomad's defaults for unset values;
    /// the sums saturate (see [`Comparable`]).
    pub fn of(group: &TaskGroup) -> Self {
        let mut ask = GroupAsk {
            disk_mb: group
                .ephemeral_disk
                .as_ref()
                .and_then(|d| d.size_mb)
                .unwrap_or(defaults::DISK_MB),
            ports: PortAsk::of_group(group),
            ..GroupAsk::default()
        };
        for task in &group.tasks {
            let resources = task.resources.clone().unwrap_or_default();
            match resources.cores {
                Some(cores) if cores > 0 => ask.cores = ask.cores.saturating_add(cores),
                _ => {
                    let cpu = resources.cpu.unwrap_or(defaults::CPU_MHZ);
                    ask.cpu = ask.cpu.saturating_add(cpu);
                }
            }
            let memory_mb = resources.memory_mb.unwrap_or(defaults::MEMORY_MB);
            ask.memory_mb = ask.memory_mb.saturating_add(memory_mb);
            for device in &resources.devices {
                ask.devices.push(DeviceAsk {
                    task: task.name.clone(),
                    name: device.name.clone(),
                    count: device.count.unwrap_or(1),
                });
            }
        }
        ask
    }

    /// The ask in comparable form on `node` (cores become MHz of that node), with each device
    /// request resolved to a device `node` offers, or `None` when a device cannot be matched.
    pub fn on_node(&self, node: &Node, capacity: &Comparable) -> Option<Comparable> {
        let cores_mhz = u64::from(self.cores).saturating_mul(mhz_per_core(node));
        let mut ask = Comparable {
            cpu: self.cpu.saturating_add(cores_mhz),
            cores: self.cores,
            memory_mb: self.memory_mb,
            disk_mb: self.disk_mb,
            devices: Vec::new(),
        };
        for device in &self.devices {
            let (name, _) = capacity
                .devices
                .iter()
                .find(|(name, _)| device_matches(&device.name, name))?;
            ask.add(&Comparable {
                devices: vec![(name.clone(), device.count)],
                ..Comparable::default()
            });
        }
        Some(ask)
    }

    /// Whether the ask is only CPU, memory and disk (the fast path).
    pub fn is_simple(&self) -> bool {
        self.cores == 0 && self.devices.is_empty()
    }
}

/// Whether a device request (`gpu`, `nvidia/gpu`, `nvidia/gpu/1080ti`) matches a device
/// `<vendor>/<type>/<model>`.
pub fn device_matches(request: &str, device: &str) -> bool {
    let parts: Vec<&str> = device.split('/').collect();
    let asked: Vec<&str> = request.split('/').collect();
    match (asked.as_slice(), parts.as_slice()) {
        ([kind], [_, dkind, ..]) => kind == dkind,
        ([vendor, kind], [dvendor, dkind, ..]) => vendor == dvendor && kind == dkind,
        _ => request == device,
    }
}

/// The `allocatedResources` of a new allocation of `group` on `node`, given the core ids it
/// reserves and the host ports assigned to it.
pub fn allocated_resources(
    group: &TaskGroup,
    ask: &GroupAsk,
    node: &Node,
    capacity: &Comparable,
    mut free_cores: impl Iterator<Item = u32>,
    ports: Vec<AllocatedPort>,
) -> AllocatedResources {
    let per_core = mhz_per_core(node);
    let tasks = group.tasks.iter().map(|task| {
        let resources = task.resources.clone().unwrap_or_default();
        let mut allocated = AllocatedTaskResources {
            memory_mb: resources.memory_mb.unwrap_or(defaults::MEMORY_MB),
            memory_max_mb: resources.memory_max_mb,
            ..AllocatedTaskResources::default()
        };
        match resources.cores {
            Some(cores) if cores > 0 => {
                allocated.cores = free_cores.by_ref().take(cores as usize).collect();
                allocated.cpu = u64::from(cores).saturating_mul(per_core);
            }
            _ => allocated.cpu = resources.cpu.unwrap_or(defaults::CPU_MHZ),
        }
        for device in ask.devices.iter().filter(|d| d.task == task.name) {
            if let Some((name, _)) = capacity
                .devices
                .iter()
                .find(|(name, _)| device_matches(&device.name, name))
            {
                allocated.devices.push(AllocatedDevice {
                    name: name.clone(),
                    device_ids: (0..device.count).map(|i| format!("{name}#{i}")).collect(),
                });
            }
        }
        (task.name.clone(), allocated)
    });
    let mut resources = AllocatedResources {
        tasks: tasks.collect(),
        ..AllocatedResources::default()
    };
    resources.shared.disk_mb = ask.disk_mb;
    resources.shared.ports = ports;
    resources
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock;
    use crate::resources::{Comparable, alloc_usage, node_capacity};

    #[test]
    fn group_ask_and_alloc_usage_agree() {
        let job = mock::job("web");
        let node = mock::node("n1");
        let group = &job.spec.groups[0];
        let ask = GroupAsk::of(group);
        let capacity = node_capacity(&node);
        let resources = allocated_resources(group, &ask, &node, &capacity, 0.., Vec::new());
        let mut alloc = mock::allocation("a", &job, &node);
        alloc.spec.allocated_resources = Some(resources);
        assert_eq!(ask.on_node(&node, &capacity), Some(alloc_usage(&alloc)));
    }

    #[test]
    fn group_asks_and_usage_saturate_instead_of_wrapping() {
        let mut job = mock::job("web");
        let group = &mut job.spec.groups[0];
        let mut task = group.tasks[0].clone();
        task.resources = Some(crate::job::Resources {
            cpu: Some(u64::MAX),
            memory_mb: Some(1 << 63),
            ..Default::default()
        });
        group.tasks = vec![task.clone(), task.clone()];
        group.tasks[1].name = "twin".into();
        let group = &job.spec.groups[0];
        let ask = GroupAsk::of(group);
        assert_eq!((ask.cpu, ask.memory_mb), (u64::MAX, u64::MAX));
        let node = mock::node("n1");
        let capacity = node_capacity(&node);
        let on_node = ask.on_node(&node, &capacity).expect("no devices");
        assert_eq!(capacity.exceeded_by(&on_node), Some("cpu"));
        let resources = allocated_resources(group, &ask, &node, &capacity, 0.., Vec::new());
        let mut alloc = mock::allocation("a", &job, &node);
        alloc.spec.allocated_resources = Some(resources);
        let used = alloc_usage(&alloc);
        assert_eq!((used.cpu, used.memory_mb), (u64::MAX, u64::MAX));
        // Even a capacity at the largest value does not hold an overflowed sum.
        let everything = Comparable {
            cpu: u64::MAX,
            cores: u32::MAX,
            memory_mb: u64::MAX,
            disk_mb: u64::MAX,
            devices: Vec::new(),
        };
        assert_eq!(everything.exceeded_by(&used), Some("cpu"));

        // Cores of a node with a huge clock.
        let mut fast = mock::node("n2");
        let status = fast.status.as_mut().expect("status");
        let node_resources = status.resources.as_mut().expect("resources");
        node_resources.cpu = u64::MAX;
        node_resources.cores = 1;
        let cores = GroupAsk {
            cores: 4,
            ..GroupAsk::default()
        };
        let on_node = cores.on_node(&fast, &everything).expect("no devices");
        assert_eq!(on_node.cpu, u64::MAX);
        assert_eq!(everything.exceeded_by(&on_node), Some("cpu"));
    }

    #[test]
    fn device_requests_match_by_type_vendor_or_model() {
        assert!(device_matches("gpu", "nvidia/gpu/1080ti"));
        assert!(device_matches("nvidia/gpu", "nvidia/gpu/1080ti"));
        assert!(device_matches("nvidia/gpu/1080ti", "nvidia/gpu/1080ti"));
        assert!(!device_matches("amd/gpu", "nvidia/gpu/1080ti"));
    }
}
