//! [`MemState`]: an in-memory [`State`] of `Arc`ed objects, for tests, the harness and the
//! workers' snapshots. Its maps are persistent (`imbl`): a clone shares everything with the
//! original and costs O(1), and an update copies only the path to what it changes, so the
//! leader keeps one state current from its watches and hands every evaluation a clone.

use std::sync::Arc;

use imbl::OrdMap as BTreeMap;

use crate::scheduler::hash::PersistentMap as HashMap;

use caravan_schemas::resources::Held;
use caravan_schemas::{Allocation, Deployment, Job, Node};

use super::State;

type AllocKey = (String, String);

/// An in-memory snapshot. Cloning it is O(1): maps and objects are shared.
#[derive(Clone, Debug, Default)]
pub struct MemState {
    index: u64,
    nodes: BTreeMap<String, Arc<Node>>,
    /// namespace → job name → current version.
    jobs: HashMap<String, BTreeMap<String, Arc<Job>>>,
    /// (namespace, job name) → version → job.
    job_versions: HashMap<AllocKey, BTreeMap<i64, Arc<Job>>>,
    /// namespace → allocation name → allocation.
    allocs: HashMap<String, BTreeMap<String, Arc<Allocation>>>,
    /// node → (namespace, allocation name) → allocation.
    by_node: HashMap<String, BTreeMap<AllocKey, Arc<Allocation>>>,
    /// namespace → job → allocation name → allocation.
    by_job: HashMap<String, HashMap<String, BTreeMap<String, Arc<Allocation>>>>,
    /// node → what its live (non-terminal) allocations hold together.
    held: HashMap<String, Held>,
    /// (namespace, deployment name) → deployment.
    deployments: HashMap<AllocKey, Arc<Deployment>>,
}

impl MemState {
    /// An empty state at index 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the store index reported by [`State::index`].
    pub fn set_index(&mut self, index: u64) {
        self.index = index;
    }

    /// Inserts or replaces a node, with its computed class worked out when it is missing or
    /// stale (nodes written through the API carry it already).
    pub fn upsert_node(&mut self, node: impl Into<Arc<Node>>) {
        let mut node = node.into();
        if !node.class_is_current() {
            Arc::make_mut(&mut node).compute_class();
        }
        self.nodes.insert(node.metadata.name().to_owned(), node);
    }

    /// Removes a node; its allocations stay, as in the real store.
    pub fn delete_node(&mut self, name: &str) -> Option<Arc<Node>> {
        self.nodes.remove(name)
    }

    /// Inserts or replaces the current version of a job, keeping older versions.
    pub fn upsert_job(&mut self, job: impl Into<Arc<Job>>) {
        let job = job.into();
        let namespace = job.metadata.namespace().to_owned();
        let name = job.metadata.name().to_owned();
        self.job_versions
            .entry((namespace.clone(), name.clone()))
            .or_default()
            .insert(job.version(), job.clone());
        self.jobs.entry(namespace).or_default().insert(name, job);
    }

    /// Keeps only the `keep` newest versions of a job.
    pub fn trim_job_versions(&mut self, namespace: &str, name: &str, keep: usize) {
        let key = (namespace.to_string(), name.to_string());
        if let Some(versions) = self.job_versions.get_mut(&key) {
            while versions.len() > keep.max(1) {
                let (_, rest) = versions.without_min();
                *versions = rest;
            }
        }
    }

    /// Removes a job and its version history.
    pub fn delete_job(&mut self, namespace: &str, name: &str) -> Option<Arc<Job>> {
        self.job_versions
            .remove(&(namespace.to_string(), name.to_string()));
        self.jobs.get_mut(namespace)?.remove(name)
    }

    /// Inserts or replaces an allocation, keeping the node and job indexes in step.
    pub fn upsert_alloc(&mut self, alloc: impl Into<Arc<Allocation>>) {
        let alloc = alloc.into();
        let namespace = alloc.metadata.namespace().to_owned();
        let name = alloc.metadata.name().to_owned();
        self.delete_alloc(&namespace, &name);
        if !alloc.is_terminal() {
            self.held
                .entry(alloc.spec.node_name.clone())
                .or_default()
                .add(&Held::of(&alloc));
        }
        self.by_node
            .entry(alloc.spec.node_name.clone())
            .or_default()
            .insert((namespace.clone(), name.clone()), alloc.clone());
        self.by_job
            .entry(namespace.clone())
            .or_default()
            .entry(alloc.spec.job_name.clone())
            .or_default()
            .insert(name.clone(), alloc.clone());
        self.allocs
            .entry(namespace)
            .or_default()
            .insert(name, alloc);
    }

    /// Removes an allocation.
    pub fn delete_alloc(&mut self, namespace: &str, name: &str) -> Option<Arc<Allocation>> {
        let old = self.allocs.get_mut(namespace)?.remove(name)?;
        if !old.is_terminal()
            && let Some(held) = self.held.get_mut(&old.spec.node_name)
        {
            held.remove(&Held::of(&old));
        }
        if let Some(on_node) = self.by_node.get_mut(&old.spec.node_name) {
            on_node.remove(&(namespace.to_string(), name.to_string()));
        }
        if let Some(of_job) = self
            .by_job
            .get_mut(namespace)
            .and_then(|jobs| jobs.get_mut(&old.spec.job_name))
        {
            of_job.remove(name);
        }
        Some(old)
    }

    /// Inserts or replaces a deployment.
    pub fn upsert_deployment(&mut self, deployment: impl Into<Arc<Deployment>>) {
        let deployment = deployment.into();
        let key = (
            deployment.metadata.namespace().to_owned(),
            deployment.metadata.name().to_owned(),
        );
        self.deployments.insert(key, deployment);
    }

    /// Removes a deployment.
    pub fn delete_deployment(&mut self, namespace: &str, name: &str) -> Option<Arc<Deployment>> {
        self.deployments
            .remove(&(namespace.to_string(), name.to_string()))
    }

    /// Every deployment.
    pub fn deployments(&self) -> Vec<Arc<Deployment>> {
        self.deployments.values().cloned().collect()
    }

    /// One allocation by namespace and name.
    pub fn alloc(&self, namespace: &str, name: &str) -> Option<Arc<Allocation>> {
        self.allocs.get(namespace)?.get(name).cloned()
    }

    /// Every allocation, ordered by namespace then name.
    pub fn allocs(&self) -> Vec<Arc<Allocation>> {
        let mut namespaces: Vec<_> = self.allocs.iter().collect();
        namespaces.sort_by(|a, b| a.0.cmp(b.0));
        namespaces
            .into_iter()
            .flat_map(|(_, allocs)| allocs.values().cloned())
            .collect()
    }

    /// Every job (current versions), ordered by namespace then name.
    pub fn jobs(&self) -> Vec<Arc<Job>> {
        let mut namespaces: Vec<_> = self.jobs.iter().collect();
        namespaces.sort_by(|a, b| a.0.cmp(b.0));
        namespaces
            .into_iter()
            .flat_map(|(_, jobs)| jobs.values().cloned())
            .collect()
    }
}

impl State for MemState {
    fn index(&self) -> u64 {
        self.index
    }

    fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.values().cloned().collect()
    }

    fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.get(name).cloned()
    }

    fn job(&self, namespace: &str, name: &str) -> Option<Arc<Job>> {
        self.jobs.get(namespace)?.get(name).cloned()
    }

    fn job_by_version(&self, namespace: &str, name: &str, version: i64) -> Option<Arc<Job>> {
        self.job_versions
            .get(&(namespace.to_string(), name.to_string()))?
            .get(&version)
            .cloned()
    }

    fn deployment(&self, namespace: &str, name: &str) -> Option<Arc<Deployment>> {
        self.deployments
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn allocs_by_job(&self, namespace: &str, job: &str) -> Vec<Arc<Allocation>> {
        self.by_job
            .get(namespace)
            .and_then(|jobs| jobs.get(job))
            .map(|allocs| allocs.values().cloned().collect())
            .unwrap_or_default()
    }

    fn allocs_by_node(&self, node: &str) -> Vec<Arc<Allocation>> {
        self.by_node
            .get(node)
            .map(|allocs| allocs.values().cloned().collect())
            .unwrap_or_default()
    }

    fn held_on_node(&self, node: &str) -> Option<Held> {
        Some(self.held.get(node).cloned().unwrap_or_default())
    }

    fn alloc_on_node(&self, node: &str, namespace: &str, name: &str) -> Option<Arc<Allocation>> {
        self.by_node
            .get(node)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::allocation::DesiredStatus;
    use caravan_schemas::fit::{proposed_usage, proposed_usage_from};
    use caravan_schemas::mock;

    use super::*;
    use crate::scheduler::Plan;

    #[test]
    fn mem_state_indexes_allocations_by_node_and_job() {
        let mut state = MemState::new();
        let job = mock::job("web");
        let node = mock::node("n1");
        state.upsert_node(node.clone());
        state.upsert_job(job.clone());
        state.upsert_alloc(mock::allocation("a1", &job, &node));
        assert_eq!(state.allocs_by_node("n1").len(), 1);
        assert_eq!(state.allocs_by_job("default", "web").len(), 1);

        let mut moved = mock::allocation("a1", &job, &node);
        moved.spec.node_name = "n2".into();
        state.upsert_alloc(moved);
        assert!(state.allocs_by_node("n1").is_empty());
        assert_eq!(state.allocs_by_node("n2").len(), 1);
        assert_eq!(state.allocs_by_job("default", "web").len(), 1);

        state.delete_alloc("default", "a1");
        assert!(state.allocs_by_job("default", "web").is_empty());
    }

    #[test]
    fn mem_state_keeps_job_versions() {
        let mut state = MemState::new();
        let mut job = mock::job("web");
        state.upsert_job(job.clone());
        job.status.get_or_insert_default().version = 1;
        job.spec.groups[0].count = Some(3);
        state.upsert_job(job);
        let v0 = state.job_by_version("default", "web", 0);
        assert_eq!(v0.and_then(|j| j.spec.groups[0].count), Some(10));
        let current = state.job("default", "web");
        assert_eq!(current.and_then(|j| j.spec.groups[0].count), Some(3));
    }

    /// What the state keeps per node ([`State::held_on_node`]) gives the same proposed usage
    /// as adding up the node's allocations, whatever a plan stops, replaces or places.
    #[test]
    fn the_kept_sum_gives_the_same_usage_as_adding_up_the_node() {
        let job = mock::job("web");
        let node = mock::node("n1");
        let other = mock::node("n2");
        let mut state = MemState::new();
        let mut pinned = mock::allocation("a", &job, &node);
        if let Some(task) = pinned
            .spec
            .allocated_resources
            .as_mut()
            .and_then(|r| r.tasks.values_mut().next())
        {
            task.cores = vec![0, 1];
        }
        let mut done = mock::allocation("c", &job, &node);
        done.spec.desired_status = Some(DesiredStatus::Stop);
        for alloc in [
            pinned,
            mock::allocation("b", &job, &node),
            done,
            mock::allocation("elsewhere", &job, &other),
        ] {
            state.upsert_alloc(alloc);
        }
        let compare = |state: &MemState, plan: &Plan| {
            let summed = proposed_usage(&node, &state.allocs_by_node("n1"), plan);
            let kept = proposed_usage_from(&node, state.held_on_node("n1").unwrap(), plan, |n| {
                state.alloc_on_node("n1", &plan.namespace, n)
            });
            let sorted = |mut ids: Vec<u32>| {
                ids.sort_unstable();
                ids
            };
            assert_eq!(kept.held.used, summed.held.used);
            assert_eq!(kept.capacity, summed.capacity);
            assert_eq!(sorted(kept.held.core_ids), sorted(summed.held.core_ids));
            summed.held.used.cpu
        };
        let mut plan = Plan {
            namespace: "default".into(),
            ..Plan::default()
        };
        assert_eq!(compare(&state, &plan), 1000);
        // A stop, a replacement of an existing allocation, a new one, and a stop of the
        // replaced one too: each existing allocation is taken out once.
        plan.append_stop("n1", "a", DesiredStatus::Stop, "test");
        plan.append_stop("n1", "b", DesiredStatus::Stop, "test");
        plan.append_alloc(mock::allocation("b", &job, &node));
        plan.append_alloc(mock::allocation("d", &job, &node));
        assert_eq!(compare(&state, &plan), 1000);
        // Allocations that end or go away leave the sum.
        let mut ended = mock::allocation("b", &job, &node);
        ended.spec.desired_status = Some(DesiredStatus::Stop);
        state.upsert_alloc(ended);
        state.delete_alloc("default", "a");
        compare(&state, &Plan::default());
        assert_eq!(state.held_on_node("n1").unwrap(), Held::default());
    }
}
