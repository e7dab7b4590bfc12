//! Task isolation against the real kernel: an `oci` busybox task and an `exec` task run a probe
//! script on a real dev agent and print what they may do; the test reads it back with
//! `caravan logs`. Each gets the default seccomp filter (no user namespace through `unshare`,
//! no keyring, no mount), Docker's default capabilities, `no_new_privs`, a read-only `/proc/sys`
//! and `/sys` without a cgroup mount, masked `/proc` files, and its own PID, mount, IPC and UTS
//! namespaces (it sees none of the host's processes). Needs root.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use caravan_e2e::Sandbox;
use caravan_e2e::http::{self, collection_path};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

/// Docker's default capability set, as `CapEff` in `/proc/<pid>/status` shows it.
const DOCKER_CAPS: &str = "00000000a80425fb";

/// `keyctl` on this architecture.
#[cfg(target_arch = "x86_64")]
const SYS_KEYCTL: u32 = 250;
#[cfg(target_arch = "aarch64")]
const SYS_KEYCTL: u32 = 219;

/// Prints `name=<exit code> <output>` per probe and the facts the test checks, in POSIX `sh`
/// (busybox's and the host's alike).
const PROBE: &str = r#"
probe() { name=$1; shift; out=$("$@" 2>&1); echo "$name=$? $out" | tr '\n' ' '; echo; }
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
probe unshare_user unshare -U true
probe unshare_mount unshare -m true
mkdir -p /tmp/m
probe mount mount -t tmpfs none /tmp/m
probe proc_sys sh -c 'echo x > /proc/sys/kernel/domainname'
probe sysfs mkdir /sys/fs/escape
echo "cgroup_mounts=$(grep -c cgroup /proc/self/mountinfo)"
echo "kcore=$(head -c 16 /proc/kcore | wc -c)"
echo "pid1=$(tr '\0' ' ' < /proc/1/cmdline | head -c 20)"
echo "pids=$(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')"
for ns in pid mnt ipc uts; do echo "ns_$ns=$(readlink /proc/self/ns/$ns)"; done
if [ -x /usr/bin/perl ]; then
  echo "keyctl=$(/usr/bin/perl -e 'my $r = syscall(KEYCTL, 0, -3, 1); print "$r ", $!+0')"
fi
exit 0
"#;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
    })
}

/// A dev agent whose image store (`images`) holds busybox.
fn start(images: &Path, extra: &[&str]) -> Sandbox {
    let mut builder = Sandbox::builder()
        .name("isolation")
        .client()
        .env("CARAVAN_IMAGE_DIR", images.to_str().unwrap());
    for arg in extra {
        builder = builder.arg(arg);
    }
    let node = builder
        .start()
        .unwrap_or_else(|e| panic!("failed to start the dev agent: {e:#}"));
    caravan_e2e::images::import_busybox(&node, images);
    node
}

/// A batch job running [`PROBE`] once with `driver` and `config`.
fn probe_job(name: &str, driver: &str, mut config: Value) -> Value {
    let script = PROBE.replace("KEYCTL", &SYS_KEYCTL.to_string());
    config["command"] = json!("/bin/sh");
    config["args"] = json!(["-c", script]);
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "type": "batch",
            "groups": [{
                "name": "g",
                "restart": {"attempts": 0},
                "tasks": [{
                    "name": "probe",
                    "driver": driver,
                    "config": config,
                    "resources": {"cpu": 50, "memoryMB": 32}
                }]
            }]
        }
    })
}

/// The allocation listed at `url` that has ended, if one has.
async fn ended(client: &reqwest::Client, url: &str) -> Option<Value> {
    let resp = client.get(url).send().await.ok()?;
    let list: Value = resp.json().await.ok()?;
    list["items"].as_array()?.iter().find_map(|a| {
        let status = a["status"]["clientStatus"].as_str().unwrap_or("");
        (status == "complete" || status == "failed").then(|| a.clone())
    })
}

/// Waits until the job's allocation completed and returns the probe's output.
async fn run(node: &Sandbox, job: &Value) -> String {
    let alloc = run_to_end(node, job).await;
    assert_eq!(
        alloc["status"]["clientStatus"],
        "complete",
        "{alloc:#}\n{}",
        node.logs()
    );
    let out = node.caravan(&["logs", alloc["metadata"]["name"].as_str().unwrap()]);
    out.assert_success();
    out.stdout.clone()
}

/// Applies `job` and waits until its allocation ended; the allocation.
async fn run_to_end(node: &Sandbox, job: &Value) -> Value {
    let name = job["metadata"]["name"].as_str().unwrap();
    let path = node.write_file(
        &format!("{name}.yaml"),
        &caravan_e2e::fixtures::to_yaml(job),
    );
    node.caravan(&["apply", "-f", path.to_str().unwrap()])
        .assert_success();
    let client = http::client();
    let url = node.url(&format!(
        "{}?fieldSelector=spec.jobName={name}",
        collection_path("default", "allocations")
    ));
    let (c, u) = (&client, &url);
    let done = caravan_e2e::wait_until_async(DEADLINE, &format!("{name} ended"), || async move {
        ended(c, u).await.is_some()
    })
    .await;
    done.unwrap_or_else(|e| panic!("{e:#}\n{}", node.logs()));
    ended(&client, &url).await.unwrap()
}

/// `key=value` lines of the probe's output.
fn facts(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// A probe that failed (non-zero exit code) saying `why`.
fn refused(facts: &BTreeMap<String, String>, probe: &str, why: &str, out: &str) {
    let line = facts
        .get(probe)
        .unwrap_or_else(|| panic!("no {probe} in {out}"));
    assert!(
        !line.starts_with("0 ") && line.contains(why),
        "{probe} should fail with {why:?}: {line}\n{out}"
    );
}

/// What every contained task must show, whatever its driver.
fn assert_isolated(out: &str) {
    eprintln!("{out}");
    let facts = facts(out);
    // Creating a user namespace needs no capability: only the seccomp filter refuses it.
    refused(&facts, "unshare_user", "Operation not permitted", out);
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains(&format!("CapEff:\t{DOCKER_CAPS}")), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    refused(&facts, "unshare_mount", "Operation not permitted", out);
    refused(&facts, "mount", "ermission denied", out);
    refused(&facts, "proc_sys", "Read-only file system", out);
    refused(&facts, "sysfs", "Read-only file system", out);
    assert_eq!(facts["cgroup_mounts"], "0", "{out}");
    assert_eq!(
        facts["kcore"], "0",
        "a masked /proc/kcore reads empty: {out}"
    );
    // Its own PID namespace: pid 1 is the probe's shell and no host process shows.
    assert!(facts["pid1"].contains("sh"), "{out}");
    let pids: Vec<u32> = facts["pids"]
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(pids.contains(&1) && pids.len() < 10, "{out}");
    for ns in ["pid", "mnt", "ipc", "uts"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let inside = &facts[&format!("ns_{ns}")];
        assert!(inside.starts_with(&format!("{ns}:[")), "{out}");
        assert_ne!(inside, &host.display().to_string(), "{ns} namespace shared");
    }
    if let Some(keyctl) = facts.get("keyctl") {
        assert_eq!(keyctl, "-1 1", "keyctl must fail with EPERM: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_and_exec_tasks_are_isolated_by_default() {
    if !is_root() {
        eprintln!("skipped: the oci and exec drivers need root");
        return;
    }
    let images = tempfile::Builder::new()
        .prefix("caravan-e2e-images-")
        .tempdir()
        .unwrap();
    let node = start(images.path(), &[]);

    let out = run(
        &node,
        &probe_job("oci-probe", "oci", json!({"image": "busybox"})),
    )
    .await;
    assert_isolated(&out);

    let out = run(&node, &probe_job("exec-probe", "exec", json!({}))).await;
    assert_isolated(&out);
    // The host's perl is in the chroot: the keyring call was really made, and refused.
    if Path::new("/usr/bin/perl").exists() {
        assert!(out.contains("keyctl=-1 1"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_follow_cap_add_cap_drop_and_the_clients_allow_list() {
    if !is_root() {
        eprintln!("skipped: the oci driver needs root");
        return;
    }
    let images = tempfile::Builder::new()
        .prefix("caravan-e2e-images-")
        .tempdir()
        .unwrap();
    // The client allows Docker's default set and NET_ADMIN.
    let allowed = "CHOWN,DAC_OVERRIDE,FSETID,FOWNER,MKNOD,NET_RAW,SETGID,SETUID,SETFCAP,SETPCAP,\
                   NET_BIND_SERVICE,SYS_CHROOT,KILL,AUDIT_WRITE,NET_ADMIN";
    let node = start(images.path(), &["--allow-caps", allowed]);
    let busybox = |extra: Value| {
        let mut config = json!({"image": "busybox"});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        config
    };
    let out = run(
        &node,
        &probe_job("drop-all", "oci", busybox(json!({"capDrop": ["all"]}))),
    )
    .await;
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    let out = run(
        &node,
        &probe_job(
            "add-net-admin",
            "oci",
            busybox(json!({"capAdd": ["NET_ADMIN"]})),
        ),
    )
    .await;
    // Docker's set plus CAP_NET_ADMIN (bit 12); the seccomp filter still refuses mounts.
    assert!(out.contains("CapEff:\t00000000a80435fb"), "{out}");
    refused(&facts(&out), "mount", "ermission denied", &out);
    // A capability the client does not allow: the task does not start, and says why.
    let alloc = run_to_end(
        &node,
        &probe_job(
            "add-sys-admin",
            "oci",
            busybox(json!({"capAdd": ["CAP_SYS_ADMIN"]})),
        ),
    )
    .await;
    assert_eq!(alloc["status"]["clientStatus"], "failed", "{alloc:#}");
    let text = alloc.to_string();
    assert!(
        text.contains("does not allow the capabilities SYS_ADMIN"),
        "{alloc:#}"
    );
}
