//! Process-wide settings: the limits a server or a load generator needs raised, and the
//! allocator setting that keeps a node agent small.

/// A server keeps transparent huge pages off. mimalloc asks for them on its arenas, and the
/// kernel then zeroes 2 MiB at every first touch: with a server's churn of short-lived
/// buffers (decoded watch events, plans) that was 13 % of the server's CPU while it placed
/// 100,000 allocations, and 9 % more memory at the end (docs/benchmarks.md). The node
/// simulator (`caravan nodesim`, `caravan bench c1m`) keeps them off for the same reason. Tasks
/// do not inherit the setting: the executor gives them the machine's default back.
pub fn disable_transparent_huge_pages() {
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("warning: transparent huge pages stay on: {e}");
    }
}

/// A server holds a connection per watch and per node agent, and `caravan bench watch` or
/// `caravan nodesim` one per watcher or node: lift the soft limit on open files to the hard one
/// (Debian's default soft limit is 1,024), as Go programs such as etcd do. Not for a node
/// agent: its tasks would inherit the raised limit.
pub fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The environment variable that turns off mimalloc's eager arena commit.
const ARENA_EAGER_COMMIT: &str = "MIMALLOC_ARENA_EAGER_COMMIT";

/// A node agent without a server runs next to the workloads for as long as the node does, so
/// it should stay small. mimalloc commits its first arena eagerly and asks for transparent huge
/// pages on it, which makes ~10 MiB resident in an otherwise idle agent. The allocator reads
/// that option at its first allocation, before `main` runs, so the process starts itself again
/// with the option off (executors get it from the agent the same way). Returns only when that
/// is not needed or the `exec` failed.
pub fn exec_with_lean_allocator() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(ARENA_EAGER_COMMIT).is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "caravan".into());
    // `/proc/self/exe` is this very binary, even when its file was replaced since.
    let error = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env(ARENA_EAGER_COMMIT, "0")
        .exec();
    eprintln!("warning: running on with the default allocator settings: {error}");
}
