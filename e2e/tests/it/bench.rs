//! The load generators behind docs/benchmarks.md, at a small scale against a real server:
//! each must finish, report its figures and pass its own count check, since every recorded
//! figure relies on that check.

use caravan_e2e::Sandbox;
use caravan_e2e::command::run;
use caravan_e2e::paths::caravan_bin;
use std::process::Command;
use std::time::Duration;

fn store_only(name: &str) -> Sandbox {
    Sandbox::builder()
        .name(name)
        .arg("--no-controllers")
        .start()
        .unwrap_or_else(|e| panic!("failed to start the caravan sandbox: {e:#}"))
}

#[test]
fn the_api_bench_checks_that_the_server_holds_every_acknowledged_write() {
    let sandbox = store_only("bench-api");
    let out = sandbox.caravan(&[
        "bench",
        "api",
        "--ops",
        "create,update,get,list",
        "--clients",
        "8",
        "--size",
        "1KiB",
        "--duration",
        "1s",
    ]);
    out.assert_success();
    for op in ["create", "update", "get", "list"] {
        out.assert_stdout_contains(&format!("{op}: "));
    }
    out.assert_stdout_contains(", 0 failed in ")
        .assert_stdout_contains("check: the server holds exactly the ")
        .assert_stdout_contains("summary op=create rate=");
}

#[test]
fn the_watch_bench_sees_every_write_once_on_every_watcher_over_both_protocols() {
    let sandbox = store_only("bench-watch");
    for streams in ["1", "5"] {
        let out = sandbox.caravan(&[
            "bench",
            "watch",
            "--watchers",
            "20",
            "--events",
            "30",
            "--rate",
            "100",
            "--streams-per-connection",
            streams,
        ]);
        out.assert_success()
            .assert_stdout_contains("check: every watcher saw exactly 30 created objects");
    }
}

#[test]
fn the_placement_bench_waits_for_every_allocation() {
    let sandbox = Sandbox::start("bench-placement");
    let out = sandbox.caravan(&[
        "bench",
        "placement",
        "--nodes",
        "20",
        "--jobs",
        "3",
        "--count",
        "10",
        "--timeout-secs",
        "60",
    ]);
    out.assert_success()
        .assert_stdout_contains("placed: 30 allocations in ")
        .assert_stdout_contains("evaluation latency: ");
}

#[test]
fn the_scheduler_bench_times_the_scheduler_and_the_applied_plan() {
    let mut cmd = Command::new(caravan_bin());
    cmd.args([
        "bench",
        "scheduler",
        "--nodes",
        "50",
        "--count",
        "20",
        "--runs",
        "2",
    ]);
    let out = run(cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e:#}"));
    out.assert_success()
        .assert_stdout_contains("run 2: placed 20, scheduler ")
        .assert_stdout_contains("with the plan applied");

    // A cluster too small for the job is an error, not a figure.
    let mut cmd = Command::new(caravan_bin());
    cmd.args([
        "bench",
        "scheduler",
        "--nodes",
        "1",
        "--count",
        "500",
        "--runs",
        "1",
    ]);
    let out = run(cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!out.status.success(), "{out}");
}
