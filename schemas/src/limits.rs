//! Every limit the API enforces on what a client sends, in one place. `docs/api.md#limits`
//! lists the same values; a refusal names the limit and, for an object, the field path.
//!
//! The limits exist so that no request, job or slow client can exhaust a server's memory or
//! time: each is far above what a real job needs.

use std::time::Duration;

/// Largest request body read, in bytes (Kubernetes' limit too).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Largest object stored, in bytes of JSON, after decoding and after applying a patch.
pub const MAX_OBJECT_BYTES: usize = 3 * 1024 * 1024;

/// Deepest nesting of arrays and objects in a JSON or YAML body (serde_json's own limit).
pub const MAX_NESTING_DEPTH: usize = 128;

/// Most operations in one JSON patch (Kubernetes' limit).
pub const MAX_JSON_PATCH_OPS: usize = 10_000;

/// Longest name of an object whose name becomes a label value (Jobs, Namespaces).
pub const MAX_LABEL_NAME_LEN: usize = 63;

/// Longest name of any other object (a DNS-1123 subdomain).
pub const MAX_NAME_LEN: usize = 253;

/// Characters the server appends to `metadata.generateName` to make a name (Kubernetes'
/// five); a `generateName` may be at most this much shorter than the kind's longest name.
pub const GENERATED_NAME_SUFFIX_LEN: usize = 5;

/// Longest name of a task group or task: they become directory names on client nodes.
pub const MAX_TASK_NAME_LEN: usize = 128;

/// Most task groups in a job.
pub const MAX_GROUPS: usize = 100;

/// Most tasks in a task group.
pub const MAX_TASKS_PER_GROUP: usize = 100;

/// Most ports in a task group's network.
pub const MAX_PORTS_PER_GROUP: usize = 64;

/// Longest port label: it becomes part of environment variable names.
pub const MAX_PORT_LABEL_LEN: usize = 64;

/// Most services in a task group, its tasks' included.
pub const MAX_SERVICES_PER_GROUP: usize = 64;

/// Most checks of one service.
pub const MAX_CHECKS_PER_SERVICE: usize = 16;

/// Most namespace rules of one ACLPolicy.
pub const MAX_ACL_NAMESPACE_RULES: usize = 256;

/// Most policies one ACLToken is granted.
pub const MAX_ACL_TOKEN_POLICIES: usize = 64;

/// Longest description of an ACLPolicy or display name of an ACLToken, in bytes.
pub const MAX_ACL_DESCRIPTION_LEN: usize = 1024;

/// Longest bearer token a request may carry, in bytes.
pub const MAX_TOKEN_LEN: usize = 256;

/// Most tags of one service.
pub const MAX_SERVICE_TAGS: usize = 64;

/// Longest tag of a service.
pub const MAX_SERVICE_TAG_LEN: usize = 255;

/// Most network addresses a node reports.
pub const MAX_NODE_NETWORKS: usize = 64;

/// Largest `count` of a task group.
pub const MAX_GROUP_COUNT: i64 = 10_000;

/// Largest CPU a task may ask for, in MHz.
pub const MAX_CPU_MHZ: i64 = 10_000_000;

/// Largest memory a task may ask for, in MiB (1 PiB).
pub const MAX_MEMORY_MB: i64 = 1 << 30;

/// Largest disk a group may ask for, in MiB (1 PiB).
pub const MAX_DISK_MB: i64 = 1 << 30;

/// Longest duration any field accepts (ten years).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Longest a node agent waits for a task to stop after its kill signal before SIGKILL,
/// whatever the task's `killTimeout` says (Nomad's client `max_kill_timeout`).
pub const MAX_KILL_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes of encoded events a watch may hold for a client that does not read: events are
/// encoded only when the connection asks for the next batch (at most
/// [`WATCH_BATCH_BYTES`] plus the one object that crossed it), so this bounds one watch's
/// buffer by construction. A watcher the watch cache's window leaves behind gets an `ERROR`
/// event (410 `Expired`) and its stream ends.
pub const MAX_WATCH_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Bytes of events a watch encodes at a time.
pub const WATCH_BATCH_BYTES: usize = 256 * 1024;

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
