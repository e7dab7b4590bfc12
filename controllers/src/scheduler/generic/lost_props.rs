//! Property: an allocation lost with its node is stopped as `lost` and replaced exactly once,
//! however many node-update evaluations run for its job and in whatever order.

use std::collections::{BTreeMap, BTreeSet};

use caravan_schemas::Job;
use caravan_schemas::allocation::ClientStatus;
use caravan_schemas::evaluation::TriggeredBy;
use caravan_schemas::job::JobType;
use caravan_schemas::node::NodeState;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::scheduler::AllocStop;
use crate::scheduler::config::SchedulerAlgorithm;
use crate::scheduler::state::State;
use crate::scheduler::testing::*;

/// CPU of a node of [`cluster`], the only dimension the asks below can exhaust.
const NODE_CPU: u64 = 4000;
const NAMESPACE: &str = "default";
/// Most jobs, allocations per job and evaluations per job of a case.
const MAX_JOBS: usize = 3;
const MAX_COUNT: u32 = 6;
const MAX_EVALS: usize = 4;

#[derive(Clone, Debug)]
struct JobCase {
    batch: bool,
    count: u32,
    /// Node-update evaluations run for the job once its nodes are down.
    evals: usize,
}

#[derive(Clone, Debug)]
struct Case {
    nodes: usize,
    /// CPU asked by every allocation: nodes hold `NODE_CPU / cpu` of them, whatever the job.
    cpu: u64,
    spread: bool,
    jobs: Vec<JobCase>,
    /// Indexes of the nodes that go down.
    down: Vec<usize>,
    /// Per initial allocation (by name): still `pending` rather than `running`.
    pending: Vec<bool>,
    /// Sort keys interleaving the evaluations of all jobs.
    order: Vec<u16>,
}

fn job_case() -> impl Strategy<Value = JobCase> {
    (any::<bool>(), 1..=MAX_COUNT, 1..=MAX_EVALS).prop_map(|(batch, count, evals)| JobCase {
        batch,
        count,
        evals,
    })
}

fn case() -> impl Strategy<Value = Case> {
    (2usize..=8)
        .prop_flat_map(|nodes| {
            (
                Just(nodes),
                prop::sample::select(vec![500u64, 1000, 2000]),
                any::<bool>(),
                prop::collection::vec(job_case(), 1..=MAX_JOBS),
                prop::sample::subsequence((0..nodes).collect::<Vec<_>>(), 1..=nodes),
                prop::collection::vec(any::<bool>(), MAX_JOBS * MAX_COUNT as usize),
                prop::collection::vec(any::<u16>(), MAX_JOBS * MAX_EVALS),
            )
        })
        .prop_map(|(nodes, cpu, spread, jobs, down, pending, order)| Case {
            nodes,
            cpu,
            spread,
            jobs,
            down,
            pending,
            order,
        })
}

fn node_name(index: usize) -> String {
    format!("node-{index:04}")
}

fn make_job(index: usize, case: &JobCase, cpu: u64) -> Job {
    let job_type = if case.batch {
        JobType::Batch
    } else {
        JobType::Service
    };
    let mut job = job_of_type(&format!("job{index}"), job_type, case.count);
    for task in &mut job.spec.groups[0].tasks {
        if let Some(resources) = task.resources.as_mut() {
            resources.cpu = Some(cpu);
        }
    }
    job
}

/// The evaluations to run, as job indexes, interleaved by `case.order`.
fn schedule(case: &Case) -> Vec<usize> {
    let mut evals: Vec<(u16, usize, usize)> = case
        .jobs
        .iter()
        .enumerate()
        .flat_map(|(job, c)| (0..c.evals).map(move |_| job))
        .enumerate()
        .map(|(k, job)| (case.order.get(k).copied().unwrap_or_default(), k, job))
        .collect();
    evals.sort_unstable();
    evals.into_iter().map(|(_, _, job)| job).collect()
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let mut harness = Harness::new(cluster(case.nodes, &["dc1"]));
    if case.spread {
        harness.config.algorithm = SchedulerAlgorithm::Spread;
    }
    let jobs: Vec<Job> = case
        .jobs
        .iter()
        .enumerate()
        .map(|(i, c)| make_job(i, c, case.cpu))
        .collect();
    for (i, job) in jobs.iter().enumerate() {
        harness.state.upsert_job(job.clone());
        harness
            .process(&eval_for(&format!("register-{i}"), job))
            .map_err(|e| TestCaseError::fail(format!("register job{i}: {e}")))?;
    }

    // The nodes report their allocations started (or still starting).
    let mut initial: BTreeMap<String, String> = BTreeMap::new();
    for job in &jobs {
        for alloc in harness.state.allocs_by_job(NAMESPACE, job.metadata.name()) {
            initial.insert(
                alloc.metadata.name().to_string(),
                alloc.spec.node_name.clone(),
            );
        }
    }
    for (k, name) in initial.keys().enumerate() {
        let status = if case.pending.get(k).copied().unwrap_or(false) {
            ClientStatus::Pending
        } else {
            ClientStatus::Running
        };
        set_client_status(&mut harness.state, NAMESPACE, name, status);
    }

    // Some nodes go down: everything live on them is lost.
    let down: BTreeSet<String> = case.down.iter().map(|i| node_name(*i)).collect();
    for name in &down {
        let mut node = (*harness.state.node(name).expect("node of the cluster")).clone();
        node.status.get_or_insert_default().status = NodeState::Down;
        harness.state.upsert_node(node);
    }
    let lost: BTreeMap<String, String> = initial
        .iter()
        .filter(|(_, node)| down.contains(*node))
        .map(|(name, node)| (name.clone(), node.clone()))
        .collect();

    let committed_before = harness.results.len();
    for (k, job) in schedule(case).into_iter().enumerate() {
        let mut eval = eval_for(&format!("node-update-{k}"), &jobs[job]);
        eval.spec.triggered_by = TriggeredBy::NodeUpdate;
        harness
            .process(&eval)
            .map_err(|e| TestCaseError::fail(format!("evaluation {k} of job{job}: {e}")))?;
    }

    // Every allocation fits on any node that has room left, so the up nodes hold all of them
    // exactly when their slots are enough.
    let slots = (case.nodes - down.len()) * (NODE_CPU / case.cpu) as usize;
    let demand: usize = case.jobs.iter().map(|c| c.count as usize).sum();
    let fits = demand <= slots;

    // Stops committed since the nodes went down, by allocation.
    let mut stops: BTreeMap<&str, Vec<(&str, &AllocStop)>> = BTreeMap::new();
    for result in &harness.results[committed_before..] {
        for (node, node_stops) in &result.node_update {
            for stop in node_stops {
                stops
                    .entry(stop.alloc_name.as_str())
                    .or_default()
                    .push((node.as_str(), stop));
            }
        }
    }
    for name in stops.keys() {
        prop_assert!(
            lost.contains_key(*name),
            "{name} was stopped though its node is up"
        );
    }

    let mut replacements: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, job) in jobs.iter().enumerate() {
        let allocs = harness.state.allocs_by_job(NAMESPACE, job.metadata.name());
        for alloc in &allocs {
            let name = alloc.metadata.name();
            if initial.contains_key(name) {
                continue;
            }
            prop_assert!(
                !down.contains(&alloc.spec.node_name),
                "new allocation {name} placed on down node {}",
                alloc.spec.node_name
            );
            match &alloc.spec.previous_allocation {
                Some(previous) => {
                    prop_assert!(
                        lost.contains_key(previous),
                        "{name} replaces {previous}, which was not lost"
                    );
                    replacements
                        .entry(previous.clone())
                        .or_default()
                        .push(format!("{name} on {}", alloc.spec.node_name));
                }
                None => prop_assert!(
                    !fits,
                    "{name} is neither an initial allocation nor a replacement"
                ),
            }
        }
        let count = case.jobs[i].count as usize;
        let live = allocs.iter().filter(|a| !a.is_terminal()).count();
        if fits {
            prop_assert_eq!(live, count, "live allocations of job{}", i);
        } else {
            prop_assert!(live <= count, "job{i}: {live} live for count {count}");
        }
    }

    for (name, node) in &lost {
        let alloc = harness
            .state
            .alloc(NAMESPACE, name)
            .ok_or_else(|| TestCaseError::fail(format!("{name} disappeared")))?;
        prop_assert!(
            alloc.is_server_terminal(),
            "lost {name} still desired to run"
        );
        let stopped = stops.get(name.as_str()).map_or(&[][..], Vec::as_slice);
        prop_assert_eq!(stopped.len(), 1, "stops of lost {}: {:?}", name, stopped);
        let (stop_node, stop) = stopped[0];
        prop_assert_eq!(stop_node, node.as_str());
        prop_assert_eq!(stop.client_status, Some(ClientStatus::Lost), "{}", name);
        let replaced = replacements.get(name).map_or(&[][..], Vec::as_slice);
        if fits {
            prop_assert_eq!(
                replaced.len(),
                1,
                "replacements of {}: {:?}",
                name,
                replaced
            );
        } else {
            prop_assert!(replaced.len() <= 1, "replacements of {name}: {replaced:?}");
        }
    }

    no_node_oversubscribed(&harness.state).map_err(TestCaseError::fail)?;

    // Converged: another evaluation of any job changes nothing.
    if fits {
        let plans = harness.plans.len();
        for (i, job) in jobs.iter().enumerate() {
            let mut eval = eval_for(&format!("again-{i}"), job);
            eval.spec.triggered_by = TriggeredBy::NodeUpdate;
            harness
                .process(&eval)
                .map_err(|e| TestCaseError::fail(format!("again job{i}: {e}")))?;
        }
        prop_assert_eq!(harness.plans.len(), plans, "plans after convergence");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn lost_allocations_are_replaced_exactly_once(case in case()) {
        check(&case)?;
    }
}
