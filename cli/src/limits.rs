//! Process limits a server or a load generator needs raised.

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
