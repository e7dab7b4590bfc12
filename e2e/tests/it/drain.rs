//! Node drain end to end: one server and two client agents as real processes. `caravan node
//! drain --enable --monitor` moves a service group off its node at most `migrate.maxParallel`
//! at a time (each next move waits for a healthy replacement), moves the system job last, and
//! ends with the node empty, ineligible and no longer draining. A client agent started with
//! `--leave-on-interrupt` drains itself on SIGINT and exits once its work runs elsewhere.

use std::collections::BTreeMap;
use std::time::Duration;

use caravan_e2e::ClientAgent;
use caravan_e2e::cluster::{Cluster, DEADLINE, field};
use caravan_e2e::http::{WatchStream, collection_path};
use serde_json::{Value, json};

fn sleeping_task() -> Value {
    json!({
        "name": "t",
        "driver": "raw_exec",
        "config": {"command": "/bin/sh", "args": ["-c", "exec sleep 3600"]},
        "resources": {"cpu": 20, "memoryMB": 16},
        "killTimeout": "1s"
    })
}

fn service(name: &str, count: u32) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"groups": [{
            "name": "g",
            "count": count,
            "migrate": {"maxParallel": 1, "minHealthyTime": "1s"},
            "tasks": [sleeping_task()]
        }]}
    })
}

fn system(name: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"type": "system", "groups": [{"name": "g", "tasks": [sleeping_task()]}]}
    })
}

fn running_on(allocs: &[Value], node: &str) -> usize {
    allocs
        .iter()
        .filter(|a| {
            field(a, "/spec/nodeName") == node && field(a, "/status/clientStatus") == "running"
        })
        .count()
}

fn marked(alloc: &Value) -> bool {
    alloc.pointer("/spec/desiredTransition/migrate") == Some(&json!(true))
}

fn client_terminal(alloc: &Value) -> bool {
    matches!(
        field(alloc, "/status/clientStatus"),
        "complete" | "failed" | "lost"
    )
}

/// Checks the drain's pacing after every allocation event, in the order the servers applied
/// them: at most one `web` allocation marked whose replacement is not running yet, and the
/// system allocation marked only once no `web` allocation is left on the node.
struct Pacing {
    allocs: BTreeMap<String, Value>,
    max_in_flight: usize,
    system_marked_early: Option<String>,
}

impl Pacing {
    fn apply(&mut self, event: &Value, node: &str) {
        let object = &event["object"];
        let name = field(object, "/metadata/name").to_string();
        if event["type"] == "DELETED" {
            self.allocs.remove(&name);
        } else {
            self.allocs.insert(name, object.clone());
        }
        let replaced_and_running = |name: &str| {
            self.allocs.values().any(|a| {
                field(a, "/spec/previousAllocation") == name
                    && field(a, "/status/clientStatus") == "running"
            })
        };
        let in_flight = self
            .allocs
            .values()
            .filter(|a| field(a, "/spec/jobName") == "web" && marked(a))
            .filter(|a| !replaced_and_running(field(a, "/metadata/name")))
            .count();
        self.max_in_flight = self.max_in_flight.max(in_flight);
        let web_left = self.allocs.values().any(|a| {
            field(a, "/spec/jobName") == "web"
                && field(a, "/spec/nodeName") == node
                && !client_terminal(a)
        });
        if web_left
            && self.system_marked_early.is_none()
            && let Some(sys) = self
                .allocs
                .values()
                .find(|a| field(a, "/spec/jobName") == "agent" && marked(a))
        {
            self.system_marked_early = Some(format!("{sys:#}"));
        }
    }
}

/// Starts client-a (with `a_args`) and client-b, and runs `jobs` (each with how many
/// allocations it should run) on client-a alone: client-b is ineligible until they run.
async fn start_on_client_a(
    cluster: &Cluster,
    a_args: &[&str],
    jobs: &[(Value, usize)],
) -> [ClientAgent; 2] {
    let clients = [
        ClientAgent::start(&cluster.server, "client-a", a_args).unwrap(),
        ClientAgent::start(&cluster.server, "client-b", &[]).unwrap(),
    ];
    cluster.wait_node("client-a", "ready").await;
    cluster.wait_node("client-b", "ready").await;
    let eligibility = |mode: &str| {
        cluster
            .server
            .caravan(&["node", "eligibility", "client-b", mode])
            .assert_success();
    };
    eligibility("--disable");
    for (job, count) in jobs {
        cluster.apply(job);
        let name = job["metadata"]["name"].as_str().unwrap_or_default();
        cluster
            .wait_allocs(name, "they run on client-a", |a| {
                running_on(a, "client-a") == *count
            })
            .await;
    }
    eligibility("--enable");
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_moves_allocations_max_parallel_at_a_time_and_leaves_the_node_empty() {
    let cluster = Cluster::start("drain", &[]);
    let _clients = start_on_client_a(
        &cluster,
        &[],
        &[(service("web", 3), 3), (system("agent"), 1)],
    )
    .await;

    let list = cluster
        .get_json(&collection_path("default", "allocations"))
        .await;
    let rv = field(&list, "/metadata/resourceVersion").to_string();
    let mut pacing = Pacing {
        allocs: list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| (field(a, "/metadata/name").to_string(), a.clone()))
            .collect(),
        max_in_flight: 0,
        system_marked_early: None,
    };
    let url = cluster.server.url(&format!(
        "{}?watch=true&resourceVersion={rv}",
        collection_path("default", "allocations")
    ));
    let mut watch = WatchStream::open(&cluster.http, &url).await.unwrap();

    let monitor = cluster.server.spawn_caravan(&[
        "node",
        "drain",
        "client-a",
        "--enable",
        "--deadline",
        "5m",
        "--monitor",
    ]);
    let deadline = tokio::time::Instant::now() + DEADLINE * 2;
    while !monitor.stdout().contains("Drain complete") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the drain did not complete\n{}\n{}",
            monitor.report(),
            cluster.server.logs()
        );
        if let Ok(Some(event)) = watch.next_event(Duration::from_millis(200)).await {
            pacing.apply(&event, "client-a");
        }
    }
    // Events up to the end of the drain.
    while let Ok(Some(event)) = watch.next_event(Duration::from_millis(300)).await {
        pacing.apply(&event, "client-a");
    }
    let out = monitor.stdout();
    assert_eq!(
        out.matches("marked for migration").count(),
        4,
        "three web allocations and the system one: {out}"
    );
    assert_eq!(
        pacing.max_in_flight, 1,
        "migrate.maxParallel = 1 was not respected"
    );
    assert!(
        pacing.system_marked_early.is_none(),
        "the system allocation moved before the service ones: {:?}",
        pacing.system_marked_early
    );

    // The node is empty, ineligible and done draining; the service runs on client-b.
    let node = cluster.node("client-a").await;
    assert!(node.pointer("/spec/drain").is_none(), "{node:#}");
    assert_eq!(field(&node, "/spec/schedulingEligibility"), "ineligible");
    for job in ["web", "agent"] {
        let allocs = cluster.allocs(job).await;
        assert!(
            allocs
                .iter()
                .filter(|a| field(a, "/spec/nodeName") == "client-a")
                .all(client_terminal),
            "{allocs:#?}"
        );
    }
    cluster
        .wait_allocs("web", "three run on client-b", |a| {
            running_on(a, "client-b") == 3
        })
        .await;
    let listed = cluster.server.caravan(&["node", "status"]);
    let row: Vec<&str> = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("client-a"))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row[4..],
        ["false", "ineligible", "ready"],
        "{}",
        listed.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_on_interrupt_hands_its_work_over_before_exiting() {
    let cluster = Cluster::start("leave", &[]);
    let [mut leaving, _other] = start_on_client_a(
        &cluster,
        &["--leave-on-interrupt"],
        &[(service("web", 2), 2)],
    )
    .await;

    let status = leaving.signal_and_wait("INT").unwrap();
    assert!(status.success(), "the agent exited with {status}");
    // Handed over before exiting: nothing it ran is lost or still running, and its node says
    // it left.
    let allocs = cluster.allocs("web").await;
    let on_a: Vec<&Value> = allocs
        .iter()
        .filter(|a| field(a, "/spec/nodeName") == "client-a")
        .collect();
    assert_eq!(on_a.len(), 2, "{allocs:#?}");
    assert!(
        on_a.iter()
            .all(|a| field(a, "/status/clientStatus") == "complete"),
        "{allocs:#?}"
    );
    let node = cluster.node("client-a").await;
    assert_eq!(field(&node, "/status/status"), "down", "{node:#}");
    assert_eq!(field(&node, "/status/statusDescription"), "the agent left");
    assert!(leaving.logs().contains("left: every allocation migrated"));
    cluster
        .wait_allocs("web", "two run on client-b", |a| {
            running_on(a, "client-b") == 2
        })
        .await;
}
