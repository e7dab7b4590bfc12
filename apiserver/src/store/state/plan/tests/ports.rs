//! The plan applier's port checks: no two live allocations on a node ever hold one host port.

use std::collections::BTreeMap;

use caravan_schemas::allocation::AllocatedPort;
use proptest::prelude::*;

use super::*;

/// The address of every node of [`cluster`] (the mock node's).
const IP: &str = "192.168.0.100";

/// An allocation of 10 MHz on `node` holding `ports` on the node's address.
fn with_ports(name: &str, node: &str, ports: &[u16]) -> Allocation {
    let mut alloc = alloc(name, node, 10);
    if let Some(resources) = alloc.spec.allocated_resources.as_mut() {
        resources.shared.ports = ports
            .iter()
            .map(|p| AllocatedPort {
                label: format!("p{p}"),
                value: u32::from(*p),
                to: None,
                host_ip: Some(IP.to_owned()),
            })
            .collect();
    }
    alloc
}

fn committed(result: &PlanResult, node: &str) -> Vec<String> {
    result
        .node_allocation
        .get(node)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_port_held_on_the_node_rejects_the_node_part() {
    let mut state = with_allocs(cluster(), 2, &[with_ports("old", "n1", &[8080])]);
    let mut plan = plan();
    plan.append_alloc(with_ports("a", "n1", &[8080]));
    plan.append_alloc(with_ports("b", "n2", &[8080]));
    let (result, _) = apply(&mut state, 3, plan);
    assert_eq!(result.refresh_index, 3);
    assert!(committed(&result, "n1").is_empty());
    assert_eq!(
        committed(&result, "n2"),
        ["b"],
        "another node's port is free"
    );
}

#[test]
fn a_port_twice_in_one_plan_or_on_an_unknown_address_is_rejected() {
    let mut state = cluster();
    let mut plan = plan();
    plan.append_alloc(with_ports("a", "n1", &[8080]));
    plan.append_alloc(with_ports("b", "n1", &[8080]));
    let mut elsewhere = with_ports("c", "n2", &[9000]);
    if let Some(resources) = elsewhere.spec.allocated_resources.as_mut() {
        resources.shared.ports[0].host_ip = Some("10.9.9.9".to_owned());
    }
    plan.append_alloc(elsewhere);
    let (result, _) = apply(&mut state, 3, plan);
    assert_eq!(result.refresh_index, 3);
    assert!(result.node_allocation.is_empty(), "{result:?}");
}

#[test]
fn a_stop_in_the_same_plan_frees_its_ports_and_an_in_place_update_keeps_them() {
    let mut state = with_allocs(
        cluster(),
        2,
        &[
            with_ports("old", "n1", &[8080]),
            with_ports("kept", "n1", &[9090]),
        ],
    );
    let mut plan = plan();
    plan.append_stop("n1", "old", DesiredStatus::Stop, "replaced");
    plan.append_alloc(with_ports("new", "n1", &[8080]));
    plan.append_alloc(with_ports("kept", "n1", &[9090]));
    let (result, _) = apply(&mut state, 3, plan);
    assert_eq!(result.refresh_index, 0, "{result:?}");
    assert_eq!(committed(&result, "n1"), ["new", "kept"]);
    let held = &state.usage().get("n1").expect("n1 has allocations").ports;
    let held: Vec<u16> = held.keys().map(|p| p.port).collect();
    assert_eq!(held, [8080, 9090]);
}

#[test]
fn a_node_reserved_port_is_refused() {
    let mut state = cluster();
    let mut node = node("n3", NodeState::Ready);
    node["status"]["reserved"] = json!({"reservedPorts": "22,8000-8100"});
    let applied = state.apply(2, vec![create(Kind::Node, node)]);
    assert!(applied.results.iter().all(Result::is_ok));
    let mut plan = plan();
    plan.append_alloc(with_ports("a", "n3", &[8050]));
    let (result, _) = apply(&mut state, 3, plan);
    assert!(result.node_allocation.is_empty());
}

/// One step of a random history: a plan placing allocations with ports on two nodes and
/// stopping some live ones, or a node marking an allocation finished.
#[derive(Clone, Debug)]
enum Step {
    Plan {
        place: Vec<(bool, Vec<u16>)>,
        stop: Vec<usize>,
    },
    Finish(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let ports = prop::collection::vec(8000u16..8006, 0..3);
    let place = prop::collection::vec((any::<bool>(), ports), 0..4);
    let stop = prop::collection::vec(any::<usize>(), 0..2);
    prop_oneof![
        3 => (place, stop).prop_map(|(place, stop)| Step::Plan { place, stop }),
        1 => any::<usize>().prop_map(Step::Finish),
    ]
}

fn live_ports(state: &State, names: &[String]) -> BTreeMap<(String, u16), usize> {
    let mut held = BTreeMap::new();
    for name in names {
        let Some(alloc) = stored(state, name) else {
            continue;
        };
        if alloc.is_terminal() {
            continue;
        }
        for port in HostPort::of_alloc(&alloc) {
            *held
                .entry((alloc.spec.node_name.clone(), port.port))
                .or_insert(0) += 1;
        }
    }
    held
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Plans computed against stale views (each step's ports are random, as from schedulers
    /// that did not see each other) never leave a port held twice on a node, and a placement
    /// is refused only when its node part collides.
    #[test]
    fn no_two_live_allocations_on_a_node_share_a_host_port(
        steps in prop::collection::vec(step(), 1..24)
    ) {
        let mut state = cluster();
        let mut names: Vec<String> = Vec::new();
        let mut index = 2;
        for step in steps {
            index += 1;
            match step {
                Step::Plan { place, stop } => {
                    let mut plan = plan();
                    plan.eval_name = format!("e{index}");
                    for at in stop {
                        if names.is_empty() {
                            break;
                        }
                        let name = &names[at % names.len()];
                        if let Some(alloc) = stored(&state, name) {
                            plan.append_stop(&alloc.spec.node_name, name, DesiredStatus::Stop, "x");
                        }
                    }
                    for (i, (on_n1, ports)) in place.into_iter().enumerate() {
                        let name = format!("a{index}-{i}");
                        let node = if on_n1 { "n1" } else { "n2" };
                        plan.append_alloc(with_ports(&name, node, &ports));
                        names.push(name);
                    }
                    apply(&mut state, index, plan);
                }
                Step::Finish(at) => {
                    if names.is_empty() {
                        continue;
                    }
                    let name = &names[at % names.len()];
                    if let Some(mut alloc) = stored(&state, name) {
                        alloc.status.get_or_insert_default().client_status = ClientStatus::Complete;
                        let op = Op::Put {
                            kind: Kind::Allocation,
                            object: ObjectJson::from_value(alloc_value(&alloc)),
                            expect: Precondition::Exists,
                            version: None,
                        };
                        state.apply(index, vec![op]);
                    }
                }
            }
            let held = live_ports(&state, &names);
            prop_assert!(held.values().all(|count| *count == 1), "{held:?}");
        }
    }
}
