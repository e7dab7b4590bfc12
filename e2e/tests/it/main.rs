//! End-to-end tests: each starts its own `caravan agent --dev` on a free port.

mod acl;
mod api_errors;
mod bench;
mod c1m;
mod cli;
mod custom_controller;
mod deployments;
mod drain;
mod durability;
mod gc;
mod hostile;
mod isolation;
mod job_plan;
mod kubectl;
mod networking;
mod node_agent;
mod node_lifecycle;
mod scheduling;
mod servers;
mod watch;
mod websocket;
