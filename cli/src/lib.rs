//! The `caravan` command line: `agent` runs a server and/or node agent; `apply`, `get`,
//! `describe`, `delete` and `version` talk to a server through `caravan-client`, the way
//! `kubectl` does.

pub mod agent;
pub mod args;
pub mod bench;
pub mod cmd;
pub mod limits;
pub mod manifest;
pub mod merge_patch;
pub mod nodesim;
pub mod output;
pub mod report;
pub mod resource;
