//! Link settings of the `caravan` binary that keep a node agent and its executors small and
//! quick to start. Each task's executor is a fresh `caravan` process and the node agent runs
//! for as long as the node, so both pay for how the binary is laid out.
//!
//! - **No PIE.** As a PIE the binary carries ~59,000 relative relocations: at every start the
//!   dynamic linker reads 1.4 MB of relocation records and writes ~1 MB of `.data.rel.ro`,
//!   which then stays private memory in every process. Without PIE, a start touches only what
//!   it uses and those pages stay shared with the page cache. The cost: the binary's own code
//!   and data load at a fixed address (shared libraries, heap and stacks stay randomised), as
//!   with Go binaries such as Nomad and runc.
//! - **Function order** (`link-order.txt`, from `scripts/link-order.sh`): the ~3,500
//!   functions a node agent and an executor run are placed first, together, instead of spread
//!   over 26 MB of code (the server, scheduler, benches and CLI share the binary). Only LLD
//!   takes an order file; it is Rust's default linker on x86_64 Linux, and the order is left
//!   out where another linker may be in use.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-no-pie");

    let order =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link-order.txt");
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let default_lld = std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu")
        && std::env::var_os("RUSTC_LINKER").is_none()
        && !rustflags.contains("linker");
    if default_lld && order.exists() {
        // The linker reads a copy in OUT_DIR: the output of a build script that did not rerun
        // is reused by every checkout sharing a target dir, and a path into one checkout would
        // outlive it.
        let out_dir = std::env::var("OUT_DIR").unwrap_or_default();
        let copy = Path::new(&out_dir).join("link-order.txt");
        if std::fs::copy(&order, &copy).is_err() {
            return;
        }
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            copy.display()
        );
        // Names that no longer exist (the file lags behind the code) are not an error.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
