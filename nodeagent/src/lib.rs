//! The Caravan node agent: fingerprints the machine, registers its Node, heartbeats, watches its
//! allocations and runs their tasks through drivers.

pub mod agent;
pub mod container;
pub mod driver;
pub mod executor;
pub mod fingerprint;
pub mod http;
pub mod image;
pub mod logs;
pub mod network;
pub mod paths;
pub mod runner;
pub mod services;
pub mod state;
