//! Where the binaries under test live: the `caravan` build, the workspace's example programs and
//! the real `kubectl`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The oldest kubectl minor version the wire reference was written against.
pub const KUBECTL_MIN_MINOR: u32 = 37;

/// The cargo workspace root (the folder holding `e2e/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent folder")
        .to_path_buf()
}

/// The build directories binaries may be in, in order: the one beside this test binary, then
/// `$CARGO_TARGET_DIR/debug`, then `<workspace>/target/debug`.
fn candidate_profile_dirs() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    // The test binary lives in <target>/<profile>/deps/; binaries are built in <target>/<profile>/.
    if let Ok(exe) = env::current_exe()
        && let Some(profile_dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(profile_dir.to_path_buf());
    }
    if let Some(target) = env::var_os("CARGO_TARGET_DIR") {
        let target = PathBuf::from(target);
        let target = if target.is_absolute() {
            target
        } else {
            workspace_root().join(target)
        };
        candidates.push(target.join("debug"));
    }
    candidates.push(workspace_root().join("target").join("debug"));
    candidates
}

fn candidate_caravan_bins() -> Vec<PathBuf> {
    candidate_profile_dirs()
        .into_iter()
        .map(|dir| dir.join("caravan"))
        .collect()
}

/// The Cargo example `name` of a workspace crate (e.g. `node_labeler` of caravan-runtime), as
/// `cargo build --examples` leaves it in `<profile>/examples/`: looked for beside this test
/// binary, then in `$CARGO_TARGET_DIR/debug/examples`, then in `<workspace>/target/debug/examples`.
///
/// Panics with instructions when it was not built: `cargo nextest run` does not build examples.
pub fn example_bin(name: &str) -> PathBuf {
    let candidates: Vec<PathBuf> = candidate_profile_dirs()
        .into_iter()
        .map(|dir| dir.join("examples").join(name))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the example binary {name:?} was not found (looked at {candidates:?}); build it \
                 first with `cargo build --workspace --examples` (scripts/test.sh does), with the \
                 same CARGO_TARGET_DIR as the tests"
            )
        })
}

/// The `caravan` binary: `$CARAVAN_BIN`, else the one cargo built beside this test binary,
/// else `$CARGO_TARGET_DIR/debug/caravan`, else `<workspace>/target/debug/caravan`.
///
/// Panics with instructions when none exists.
pub fn caravan_bin() -> PathBuf {
    if let Some(bin) = env::var_os("CARAVAN_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "CARAVAN_BIN={} does not exist",
            bin.display()
        );
        return bin;
    }
    let candidates = candidate_caravan_bins();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the caravan binary was not found (looked at {candidates:?}); build it first with \
             `cargo build -p caravan` (scripts/test.sh does), or set CARAVAN_BIN"
            )
        })
}

fn kubectl_candidates() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(k) = env::var_os("KUBECTL") {
        candidates.push(PathBuf::from(k));
    }
    if let Some(venv) = env::var_os("CARAVAN_TEST_VENV") {
        candidates.push(PathBuf::from(venv).join("bin").join("kubectl"));
    }
    candidates.push(workspace_root().join(".venv").join("bin").join("kubectl"));
    if let Some(path) = env::var_os("PATH") {
        candidates.extend(env::split_paths(&path).map(|dir| dir.join("kubectl")));
    }
    candidates
}

/// The client minor version that `kubectl version --client -o json` reports.
fn kubectl_minor(bin: &Path) -> Option<u32> {
    let out = Command::new(bin)
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let minor = v.pointer("/clientVersion/minor")?.as_str()?;
    minor.trim_end_matches('+').parse().ok()
}

/// The real kubectl, version 1.37 or newer: `$KUBECTL`, else `$CARAVAN_TEST_VENV/bin/kubectl`,
/// else `<workspace>/.venv/bin/kubectl`, else the first suitable `kubectl` on `PATH`.
///
/// Panics (so kubectl tests fail, never pass silently) when none is found.
pub fn kubectl_bin() -> PathBuf {
    static KUBECTL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = KUBECTL.get_or_init(|| {
        let mut seen = Vec::new();
        for candidate in kubectl_candidates() {
            if !candidate.is_file() {
                continue;
            }
            match kubectl_minor(&candidate) {
                Some(minor) if minor >= KUBECTL_MIN_MINOR => return Ok(candidate),
                minor => seen.push(format!("{} (minor version {minor:?})", candidate.display())),
            }
        }
        Err(format!(
            "kubectl 1.{KUBECTL_MIN_MINOR}+ not found (unsuitable: {seen:?}); run \
             scripts/install-test-deps.sh, which installs the real kubectl into .venv/bin, or set \
             KUBECTL to its path"
        ))
    });
    match found {
        Ok(path) => path.clone(),
        Err(msg) => panic!("{msg}"),
    }
}
