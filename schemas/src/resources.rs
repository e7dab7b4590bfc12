//! Comparable resources (Nomad's `ComparableResources`): what a node offers, what its
//! allocations use, and what a task group asks ([`GroupAsk`]), in the dimensions the scheduler
//! packs. Shared by the scheduler and the API server's plan applier, which sum them the same way.

mod ask;

pub use ask::{DeviceAsk, GroupAsk, allocated_resources, device_matches};

use crate::ports::HostPort;
use crate::{Allocation, Node};

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

/// What allocations hold on a node: their resources, the cores they pinned and the host
/// ports they hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub used: Comparable,
    pub core_ids: Vec<u32>,
    pub ports: Vec<HostPort>,
}

impl Held {
    /// What `alloc` holds, from its `allocatedResources`.
    pub fn of(alloc: &Allocation) -> Held {
        Held {
            used: alloc_usage(alloc),
            core_ids: pinned_cores(alloc).collect(),
            ports: HostPort::of_alloc(alloc).collect(),
        }
    }

    /// Adds what another allocation holds.
    pub fn add(&mut self, other: &Held) {
        self.used.add(&other.used);
        self.core_ids.extend(&other.core_ids);
        self.ports.extend(other.ports.iter().cloned());
    }

    /// Takes back what [`Held::add`] added.
    pub fn remove(&mut self, other: &Held) {
        self.used.subtract(&other.used);
        for id in &other.core_ids {
            if let Some(at) = self.core_ids.iter().position(|held| held == id) {
                self.core_ids.swap_remove(at);
            }
        }
        for port in &other.ports {
            if let Some(at) = self.ports.iter().position(|held| held == port) {
                self.ports.swap_remove(at);
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

#[cfg(test)]
mod tests {
    use crate::mock;

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
}
