//! Comparable resources (Nomad's `ComparableResources`): what a node offers, what its
//! allocations use, and what a task group asks, in the dimensions the scheduler packs.

use caravan_schemas::allocation::{AllocatedResources, AllocatedTaskResources};
use caravan_schemas::job::{TaskGroup, defaults};
use caravan_schemas::{Allocation, Node};

/// Prefix of node attributes that advertise devices until nodes report a device inventory:
/// `devices.<vendor>/<type>/<model>` = count.
pub const DEVICE_ATTRIBUTE_PREFIX: &str = "devices.";

/// Resources in the dimensions the scheduler packs.
///
/// Sums saturate instead of wrapping: a sum that reaches the largest value of its type is
/// taken as overflowed and exceeds any capacity ([`Comparable::exceeded_by`]), and stays
/// overflowed when something is taken back from it ([`Comparable::subtract`]). Admission
/// keeps every amount far below that; this makes sure that even one that got past it can
/// never wrap into fitting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparable {
    /// CPU in MHz, including reserved cores.
    pub cpu: u64,
    /// Whole cores.
    pub cores: u32,
    /// Memory in MB.
    pub memory_mb: u64,
    /// Disk in MB.
    pub disk_mb: u64,
    /// Device instances per device name; usually empty.
    pub devices: Vec<(String, u32)>,
}

impl Comparable {
    /// Adds `other` to `self`, saturating (see [`Comparable`]).
    pub fn add(&mut self, other: &Comparable) {
        self.cpu = self.cpu.saturating_add(other.cpu);
        self.cores = self.cores.saturating_add(other.cores);
        self.memory_mb = self.memory_mb.saturating_add(other.memory_mb);
        self.disk_mb = self.disk_mb.saturating_add(other.disk_mb);
        for (name, count) in &other.devices {
            match self.devices.iter_mut().find(|(n, _)| n == name) {
                Some((_, c)) => *c = c.saturating_add(*count),
                None => self.devices.push((name.clone(), *count)),
            }
        }
    }

    /// Subtracts `other` from `self`, saturating at zero; an overflowed sum stays overflowed
    /// (what it held is unknown).
    pub fn subtract(&mut self, other: &Comparable) {
        self.cpu = take_back(self.cpu, other.cpu);
        self.cores = take_back(self.cores, other.cores);
        self.memory_mb = take_back(self.memory_mb, other.memory_mb);
        self.disk_mb = take_back(self.disk_mb, other.disk_mb);
        for (name, count) in &other.devices {
            if let Some((_, c)) = self.devices.iter_mut().find(|(n, _)| n == name) {
                *c = take_back(*c, *count);
            }
        }
    }

    /// The first dimension in which `used` exceeds `self`, Nomad's `Superset` naming:
    /// `cpu`, `cores`, `memory`, `disk` or `devices`. An overflowed sum in `used` exceeds
    /// any capacity.
    pub fn exceeded_by(&self, used: &Comparable) -> Option<&'static str> {
        if exceeds(used.cpu, self.cpu) {
            return Some("cpu");
        }
        if exceeds(used.cores, self.cores) {
            return Some("cores");
        }
        if exceeds(used.memory_mb, self.memory_mb) {
            return Some("memory");
        }
        if exceeds(used.disk_mb, self.disk_mb) {
            return Some("disk");
        }
        let devices_exceeded = used.devices.iter().any(|(name, count)| {
            let offered = self
                .devices
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, c)| *c);
            exceeds(*count, offered)
        });
        devices_exceeded.then_some("devices")
    }
}

/// An amount that saturating sums add up: `MAX` marks a sum that overflowed.
trait Amount: Copy + Ord {
    const OVERFLOWED: Self;
    fn saturating_sub(self, other: Self) -> Self;
}

impl Amount for u64 {
    const OVERFLOWED: Self = u64::MAX;
    fn saturating_sub(self, other: Self) -> Self {
        u64::saturating_sub(self, other)
    }
}

impl Amount for u32 {
    const OVERFLOWED: Self = u32::MAX;
    fn saturating_sub(self, other: Self) -> Self {
        u32::saturating_sub(self, other)
    }
}

/// `sum - amount`, at least zero; an overflowed sum stays overflowed.
fn take_back<T: Amount>(sum: T, amount: T) -> T {
    if sum == T::OVERFLOWED {
        sum
    } else {
        sum.saturating_sub(amount)
    }
}

/// Whether `used` does not fit in `offered`: more than it, or an overflowed sum.
fn exceeds<T: Amount>(used: T, offered: T) -> bool {
    used > offered || used == T::OVERFLOWED
}

/// What a node offers to allocations: its total resources minus what it reserves.
pub fn node_capacity(node: &Node) -> Comparable {
    let Some(status) = node.status.as_ref() else {
        return Comparable::default();
    };
    let mut capacity = status
        .resources
        .as_ref()
        .map(|r| Comparable {
            cpu: r.cpu,
            cores: r.cores,
            memory_mb: r.memory_mb,
            disk_mb: r.disk_mb,
            devices: Vec::new(),
        })
        .unwrap_or_default();
    if let Some(reserved) = &status.reserved {
        capacity.subtract(&Comparable {
            cpu: reserved.cpu,
            memory_mb: reserved.memory_mb,
            disk_mb: reserved.disk_mb,
            ..Comparable::default()
        });
    }
    // Attributes are ordered: the device ones sit together from the prefix on. Walking from
    // the first key beats a range search here (this runs for every node an evaluation looks
    // at): few keys sort before `devices.`, and most of those are passed on their first byte.
    let devices = status
        .attributes
        .iter()
        .skip_while(|(key, _)| sorts_before_devices(key))
        .map_while(|(key, value)| Some((key.strip_prefix(DEVICE_ATTRIBUTE_PREFIX)?, value)));
    for (device, value) in devices {
        if let Ok(count) = value.parse::<u32>() {
            capacity.devices.push((device.to_string(), count));
        }
    }
    capacity
}

/// Whether `key` sorts before every device attribute.
fn sorts_before_devices(key: &str) -> bool {
    match key.as_bytes().first() {
        Some(&first) if first != b'd' => first < b'd',
        _ => key < DEVICE_ATTRIBUTE_PREFIX,
    }
}

/// MHz of one core of `node` (total MHz / cores), 0 when unknown.
pub fn mhz_per_core(node: &Node) -> u64 {
    node.status
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .filter(|r| r.cores > 0)
        .map_or(0, |r| r.cpu / u64::from(r.cores))
}

/// What allocations hold on a node: their resources and the cores they pinned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub used: Comparable,
    pub core_ids: Vec<u32>,
}

impl Held {
    /// What `alloc` holds, from its `allocatedResources`.
    pub fn of(alloc: &Allocation) -> Held {
        Held {
            used: alloc_usage(alloc),
            core_ids: pinned_cores(alloc).collect(),
        }
    }

    /// Adds what another allocation holds.
    pub fn add(&mut self, other: &Held) {
        self.used.add(&other.used);
        self.core_ids.extend(&other.core_ids);
    }

    /// Takes back what [`Held::add`] added.
    pub fn remove(&mut self, other: &Held) {
        self.used.subtract(&other.used);
        for id in &other.core_ids {
            if let Some(at) = self.core_ids.iter().position(|held| held == id) {
                self.core_ids.swap_remove(at);
            }
        }
    }
}

/// The core ids an allocation's tasks pinned.
pub fn pinned_cores(alloc: &Allocation) -> impl Iterator<Item = u32> + '_ {
    alloc
        .spec
        .allocated_resources
        .iter()
        .flat_map(|r| r.tasks.values())
        .flat_map(|task| task.cores.iter().copied())
}

/// What an allocation holds on its node, from its `allocatedResources`.
pub fn alloc_usage(alloc: &Allocation) -> Comparable {
    let mut used = Comparable::default();
    let Some(resources) = &alloc.spec.allocated_resources else {
        return used;
    };
    for task in resources.tasks.values() {
        used.cpu = used.cpu.saturating_add(task.cpu);
        used.memory_mb = used.memory_mb.saturating_add(task.memory_mb);
        let cores = u32::try_from(task.cores.len()).unwrap_or(u32::MAX);
        used.cores = used.cores.saturating_add(cores);
        for device in &task.devices {
            let count = u32::try_from(device.device_ids.len().max(1)).unwrap_or(u32::MAX);
            used.add(&Comparable {
                devices: vec![(device.name.clone(), count)],
                ..Comparable::default()
            });
        }
    }
    used.disk_mb = resources.shared.disk_mb;
    used
}

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
/// reserves.
pub fn allocated_resources(
    group: &TaskGroup,
    ask: &GroupAsk,
    node: &Node,
    capacity: &Comparable,
    mut free_cores: impl Iterator<Item = u32>,
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
                allocated
                    .devices
                    .push(caravan_schemas::allocation::AllocatedDevice {
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
    resources
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;

    use super::*;

    #[test]
    fn node_capacity_subtracts_reserved() {
        let capacity = node_capacity(&mock::node("n1"));
        assert_eq!(capacity.cpu, 3900);
        assert_eq!(capacity.memory_mb, 8192 - 256);
    }

    #[test]
    fn node_capacity_counts_the_device_attributes() {
        let mut node = mock::node("n1");
        let attributes = &mut node.status.as_mut().expect("status").attributes;
        for (key, value) in [
            ("a.first", "1"),
            ("devices", "9"),
            ("devices-x", "9"),
            ("devices.nvidia/gpu/t4", "2"),
            ("devices.xilinx/fpga/u250", "1"),
            ("devices.broken", "many"),
            ("dz", "9"),
        ] {
            attributes.insert(key.into(), value.into());
        }
        let capacity = node_capacity(&node);
        assert_eq!(
            capacity.devices,
            [
                ("nvidia/gpu/t4".to_string(), 2),
                ("xilinx/fpga/u250".to_string(), 1)
            ]
        );
        assert!(node_capacity(&mock::node("n2")).devices.is_empty());
    }

    #[test]
    fn group_ask_and_alloc_usage_agree() {
        let job = mock::job("web");
        let node = mock::node("n1");
        let group = &job.spec.groups[0];
        let ask = GroupAsk::of(group);
        let capacity = node_capacity(&node);
        let resources = allocated_resources(group, &ask, &node, &capacity, 0..);
        let mut alloc = mock::allocation("a", &job, &node);
        alloc.spec.allocated_resources = Some(resources);
        assert_eq!(ask.on_node(&node, &capacity), Some(alloc_usage(&alloc)));
    }

    #[test]
    fn exceeded_dimension_is_named() {
        let capacity = Comparable {
            cpu: 1000,
            memory_mb: 1000,
            disk_mb: 1000,
            ..Comparable::default()
        };
        let used = Comparable {
            cpu: 500,
            memory_mb: 2000,
            ..Comparable::default()
        };
        assert_eq!(capacity.exceeded_by(&used), Some("memory"));
        assert_eq!(capacity.exceeded_by(&Comparable::default()), None);
    }

    #[test]
    fn group_asks_and_usage_saturate_instead_of_wrapping() {
        let mut job = mock::job("web");
        let group = &mut job.spec.groups[0];
        let mut task = group.tasks[0].clone();
        task.resources = Some(caravan_schemas::job::Resources {
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
        let resources = allocated_resources(group, &ask, &node, &capacity, 0..);
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
