//! Networking end to end on a real `caravan agent --dev`: host ports assigned by the scheduler
//! and reserved on the node (`ports.rs`), and the runtime variables and `${…}` interpolation a
//! task sees (`interpolation.rs`), and bridge networking through the CNI plugins (`bridge.rs`,
//! an `oci` task). Tasks are real processes; the only traffic the tests send goes to loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use caravan_e2e::cluster::field;
use caravan_e2e::sandbox::http_status;
use serde_json::{Value, json};

mod bridge;
mod interpolation;
mod ports;
mod services;

/// How long an allocation may take to start answering.
const ANSWER: Duration = Duration::from_secs(60);

/// A service job `name` of `count` allocations of group `g` with `network`, whose raw_exec task
/// `t` is Python's HTTP server on loopback at the port labelled `http`, passed as an
/// interpolated argument (`${NOMAD_PORT_http}`: no shell expands it).
pub(super) fn http_job(name: &str, count: u32, network: Value) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "type": "service",
            "datacenters": ["*"],
            "groups": [{
                "name": "g",
                "count": count,
                "network": network,
                "tasks": [{
                    "name": "t",
                    "driver": "raw_exec",
                    "config": {
                        "command": "/usr/bin/env",
                        "args": ["python3", "-m", "http.server", "${NOMAD_PORT_http}",
                                 "--bind", "127.0.0.1"]
                    },
                    "resources": {"cpu": 20, "memoryMB": 32},
                    "killTimeout": "1s"
                }]
            }]
        }
    })
}

/// The host ports of `alloc`: (label, value).
pub(super) fn ports_of(alloc: &Value) -> Vec<(String, u16)> {
    alloc
        .pointer("/spec/allocatedResources/shared/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            (
                field(p, "/label").to_string(),
                p["value"]
                    .as_u64()
                    .and_then(|v| u16::try_from(v).ok())
                    .unwrap_or(0),
            )
        })
        .collect()
}

/// Whether the node reports `alloc` running.
pub(super) fn running(alloc: &Value) -> bool {
    field(alloc, "/spec/desiredStatus") == "run"
        && field(alloc, "/status/clientStatus") == "running"
}

/// Waits until something answers `GET /` on `127.0.0.1:port` with 200.
pub(super) async fn wait_answers(port: u16) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + ANSWER;
    loop {
        let status = tokio::task::spawn_blocking(move || http_status(addr, "/"))
            .await
            .expect("the probe ran");
        if status == Some(200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing answered on {addr} within {ANSWER:?} (last: {status:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
