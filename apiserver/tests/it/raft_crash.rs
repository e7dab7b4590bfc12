//! Acknowledged writes survive `kill -9`: a child process (this test binary, running the
//! ignored `crash_child` test) writes jobs and prints each acknowledgement; the parent kills
//! it with SIGKILL mid-stream and reopens the directory.
//!
//! This checks that a write is acknowledged only after its log entry is committed to redb.
//! Power loss is covered by the log store committing every append with
//! `Durability::Immediate` (fsync) before reporting it flushed; the e2e crate runs the same
//! check against a real server process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use caravan_apiserver::raft::{ReplicatedStore, StoreConfig};
use caravan_apiserver::store::{ObjectJson, ObjectKey, Op, Precondition, VersionPut};
use caravan_schemas::Kind;
use serde_json::json;
use tempfile::TempDir;

/// Tells the child process where to write.
const DIR_ENV: &str = "CARAVAN_CRASH_TEST_DIR";
/// Acknowledgements to see before killing the child.
const ACKS_BEFORE_KILL: usize = 400;

fn config(dir: PathBuf) -> StoreConfig {
    StoreConfig::new(dir, "127.0.0.1:1".to_owned())
}

fn put(kind: Kind, name: &str) -> Op {
    let metadata = match kind {
        Kind::Namespace => json!({"name": name}),
        _ => json!({"name": name, "namespace": "default"}),
    };
    // A job is written with its version 0, as the API server proposes it.
    let version = (kind == Kind::Job).then(|| {
        let object = ObjectJson::from_value(json!({
            "apiVersion": "caravan.dev/v1", "kind": "JobVersion",
            "metadata": {"name": format!("{name}-v0"), "namespace": "default"},
            "spec": {"jobName": name, "version": 0, "job": {"groups": []}},
        }));
        Box::new(VersionPut { object, keep: 6 })
    });
    Op::Put {
        kind,
        object: ObjectJson::from_value(
            json!({"apiVersion": "caravan.dev/v1", "kind": kind.name(), "metadata": metadata}),
        ),
        expect: Precondition::Absent,
        version,
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = TempDir::new().expect("temp dir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "raft_crash::crash_child",
            "--ignored",
            "--nocapture",
        ])
        .env(DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acked = BTreeMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child stdout");
        if let Some(ack) = line.strip_prefix("ACK ") {
            let (name, rv) = ack.split_once(' ').expect("ACK name rv");
            acked.insert(name.to_owned(), rv.parse::<u64>().expect("rv"));
            if acked.len() >= ACKS_BEFORE_KILL {
                break;
            }
        }
    }
    // `Child::kill` sends SIGKILL.
    child.kill().expect("kill child");
    child.wait().expect("reap child");
    assert_eq!(acked.len(), ACKS_BEFORE_KILL, "child stopped early");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = ReplicatedStore::open(config(dir.path().to_owned()))
            .await
            .expect("reopen after kill");
        {
            let state = store.state();
            for (name, rv) in &acked {
                let key = ObjectKey {
                    kind: Kind::Job,
                    namespace: "default".to_owned(),
                    name: name.clone(),
                };
                let object = state
                    .get(&key)
                    .unwrap_or_else(|| panic!("acknowledged {name} lost"));
                assert_eq!(object.resource_version, *rv, "{name}");
                let version = ObjectKey {
                    kind: Kind::JobVersion,
                    name: format!("{name}-v0"),
                    ..key
                };
                let version = state
                    .get(&version)
                    .unwrap_or_else(|| panic!("the version of acknowledged {name} lost"));
                assert_eq!(version.resource_version, *rv, "{name}-v0");
            }
        }
        store.shutdown().await.expect("shutdown");
    });
}

/// The writer killed by `acknowledged_writes_survive_kill_9`; does nothing when run alone.
#[test]
#[ignore = "child process of acknowledged_writes_survive_kill_9"]
fn crash_child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = ReplicatedStore::open(config(dir.into()))
            .await
            .expect("open");
        store
            .write(put(Kind::Namespace, "default"))
            .await
            .expect("namespace");
        let writers = (0..32).map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("job-{w}-{i}");
                    let object = store.write(put(Kind::Job, &name)).await.expect("write");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {name} {}", object.resource_version).expect("stdout");
                    out.flush().expect("stdout");
                }
            })
        });
        futures::future::join_all(writers).await;
    });
}
