//! What a task sees: `${attr.*}`, `${meta.*}` and runtime variables interpolated in its
//! arguments and environment, and the `CARAVAN_*` / `NOMAD_*` variables of its allocation.

use caravan_e2e::Sandbox;
use caravan_e2e::cluster::field;
use serde_json::json;

use super::{ports_of, running};
use crate::deployments::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_meta_and_runtime_variables_resolve_in_args_and_env() {
    let server = Sandbox::builder()
        .name("interpolation")
        .client()
        .arg("--meta")
        .arg("rack=r7")
        .start()
        .unwrap_or_else(|e| panic!("failed to start the dev agent: {e:#}"));
    let http = caravan_e2e::http::client();
    let api = Api::new(&server, &http);
    // `sh -c SCRIPT sh A B C D`: the arguments after the script are $1…$4, passed as Caravan
    // interpolated them; the shell expands only `$VAR` forms, never `${…}` (none is left).
    let script = "echo \"args kernel=$1 index=$2 rack=$3 nomad=$4\"; \
                  echo \"env idx=$IDX kernel=$K rack=$R port=$CARAVAN_PORT_http \
                  nport=$NOMAD_PORT_http addr=$NOMAD_ADDR_http name=$NOMAD_ALLOC_NAME \
                  job=$NOMAD_JOB_NAME group=$CARAVAN_GROUP_NAME meta=$NOMAD_META_team\"; \
                  exec sleep 3600";
    let job = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": "interp", "namespace": "default"},
        "spec": {
            "type": "service",
            "datacenters": ["*"],
            "meta": {"team": "blue"},
            "groups": [{
                "name": "g",
                "count": 2,
                "network": {"ports": [{"label": "http"}]},
                "tasks": [{
                    "name": "t",
                    "driver": "raw_exec",
                    "config": {
                        "command": "/bin/sh",
                        "args": ["-c", script, "sh", "${attr.kernel.name}",
                                 "${CARAVAN_ALLOC_INDEX}", "${meta.rack}", "${NOMAD_ALLOC_INDEX}"]
                    },
                    "env": {
                        "IDX": "${NOMAD_ALLOC_INDEX}",
                        "K": "${attr.kernel.name}",
                        "R": "${meta.rack}"
                    },
                    "resources": {"cpu": 20, "memoryMB": 16},
                    "killTimeout": "1s"
                }]
            }]
        }
    });
    api.submit("interp.yaml", &job);
    let allocs = api
        .wait_allocs("interp", "both allocations run", |a| {
            a.iter().filter(|a| running(a)).count() == 2
        })
        .await;
    let mut indexes = Vec::new();
    for alloc in &allocs {
        let name = field(alloc, "/metadata/name");
        // `<job>-<group>-<index>-<hash>`.
        let index: u32 = name
            .rsplit('-')
            .nth(1)
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("{name} carries no index"));
        indexes.push(index);
        let port = ports_of(alloc)[0].1;
        let ip = field(alloc, "/spec/allocatedResources/shared/ports/0/hostIp").to_string();
        let expected_args = format!("args kernel=linux index={index} rack=r7 nomad={index}");
        let expected_env = format!(
            "env idx={index} kernel=linux rack=r7 port={port} nport={port} addr={ip}:{port} \
             name=interp.g[{index}] job=interp group=g meta=blue"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let logs = api.logs(name);
            if logs.contains(&expected_args) && logs.contains(&expected_env) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "allocation {name} printed:\n{logs}\nexpected:\n{expected_args}\n{expected_env}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1]);
}
