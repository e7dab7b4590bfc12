//! Property tests of the schedulers against one harness.

use caravan_schemas::node::NodeState;

use crate::scheduler::state::State;
use crate::scheduler::testing::*;
use crate::scheduler::util::Rng;

/// Several schedulers plan from the same stale snapshot; the harness rejects the parts that
/// would oversubscribe a node and the schedulers retry on fresh snapshots.
#[test]
fn no_node_oversubscribed_with_interleaved_schedulers() {
    let mut rejections = 0;
    for seed in 0..30u64 {
        let mut rng = Rng::new(seed);
        let mut harness = Harness::new(cluster(3 + rng.below(5), &["dc1", "dc2"]));
        let stale = harness.snapshot();
        let mut jobs = Vec::new();
        for j in 0..4 {
            let job = service_job(
                &format!("job{j}"),
                1 + rng.below(8) as u32,
                500 + 250 * rng.below(8) as u64,
                256 + 512 * rng.below(6) as u64,
            );
            harness.state.upsert_job(job.clone());
            jobs.push(job);
        }
        // Every job sees the stale snapshot without the others' allocations (but with its job).
        for (j, job) in jobs.iter().enumerate() {
            let mut snapshot = (*harness.state_clone_of(&stale)).clone();
            snapshot.upsert_job(job.clone());
            let eval = eval_for(&format!("e{seed}-{j}"), job);
            let _ = harness.process_with(&eval, std::sync::Arc::new(snapshot));
            no_node_oversubscribed(&harness.state).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        rejections += harness
            .results
            .iter()
            .filter(|r| r.refresh_index != 0)
            .count();
    }
    assert!(rejections > 0, "the stale snapshots never collided");
}

/// After random changes, re-evaluating until nothing changes leaves each group with exactly
/// `count` run-desired allocations, all on ready nodes (capacity is ample).
#[test]
fn convergence_reaches_count_on_feasible_nodes() {
    for seed in 0..30u64 {
        let mut rng = Rng::new(seed);
        let mut harness = Harness::new(cluster(8, &["dc1"]));
        let mut job = service_job("web", 1 + rng.below(6) as u32, 200, 128);
        for step in 0..6 {
            match rng.below(4) {
                0 => {
                    let count = rng.below(8) as u32;
                    job = next_version(&job, |j| j.spec.groups[0].count = Some(count));
                }
                1 => {
                    job = next_version(&job, |j| {
                        j.spec.groups[0].tasks[0]
                            .env
                            .insert("STEP".into(), step.to_string());
                        j.spec.groups[0].update.get_or_insert_default().max_parallel = Some(0);
                    });
                }
                2 => {
                    let victim = format!("node-{:04}", rng.below(8));
                    if let Some(node) = harness.state.node(&victim) {
                        let mut node = (*node).clone();
                        node.status.get_or_insert_default().status = NodeState::Down;
                        harness.state.upsert_node(node);
                    }
                }
                _ => {}
            }
            harness.state.upsert_job(job.clone());
            for round in 0..4 {
                let plans = harness.plans.len();
                harness
                    .process(&eval_for(&format!("e{seed}-{step}-{round}"), &job))
                    .expect("process");
                if harness.plans.len() == plans {
                    break;
                }
            }
            let live = harness.live_allocs("default", "web");
            let count = job.spec.groups[0].count.unwrap_or(1) as usize;
            assert_eq!(live.len(), count, "seed {seed} step {step}");
            for alloc in &live {
                let node = harness.state.node(&alloc.spec.node_name).expect("node");
                assert_eq!(
                    node.status.as_ref().map(|s| s.status),
                    Some(NodeState::Ready),
                    "seed {seed}: {} on {}",
                    alloc.metadata.name(),
                    alloc.spec.node_name
                );
                assert_eq!(alloc.spec.job_version, job.version(), "seed {seed}");
            }
        }
    }
}
