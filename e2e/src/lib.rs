//! End-to-end test harness: starts real `caravan` processes and drives them with real clients.
//!
//! ```text
//!  test ──▶ Sandbox::builder().start()
//!             │  picks a free loopback port, spawns
//!             │  `caravan agent --server (or --dev with .client()) --http-addr 127.0.0.1:PORT --data-dir <tmp>/data`
//!             │  and polls GET /readyz until 200 (or the deadline, or the process exits)
//!             ▼
//!           Sandbox ──▶ caravan(&[..])   the CLI with --address
//!                   ──▶ kubectl(&[..])   the real kubectl, own kubeconfig and --cache-dir
//!                   ──▶ http()/url(..)   raw HTTP (reqwest) and watch streams
//!                   ──▶ kill_9(), restart()  same port, same data dir
//! ```
//!
//! On drop the server is killed; if the test is panicking its logs are printed.

pub mod client;
pub mod cluster;
pub mod command;
pub mod fixtures;
pub mod http;
pub mod images;
pub mod netns;
pub mod paths;
pub mod sandbox;
pub mod stream;
pub mod tasks;
pub mod tls;
pub mod wait;

pub use client::ClientAgent;
pub use command::Output;
pub use sandbox::{Sandbox, SandboxBuilder};
pub use stream::StreamingChild;
pub use wait::{wait_until, wait_until_async};
