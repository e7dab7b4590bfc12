//! NVIDIA GPUs through `nvidia-smi`: `gpu.count`, `gpu.<i>.model`, `gpu.<i>.memory` (MiB)
//! and the scheduler's device inventory `devices.nvidia/gpu/<model>` = count.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Fingerprint;

/// How long `nvidia-smi` may take before it is killed.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One GPU as `nvidia-smi` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpu {
    /// Product name, e.g. `NVIDIA A100-SXM4-40GB`.
    pub model: String,
    /// Total memory in MiB.
    pub memory_mib: u64,
}

/// Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`; lines
/// that do not parse are skipped.
pub fn parse_nvidia_smi(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let (name, memory) = line.rsplit_once(',')?;
            let model = name.trim();
            let memory_mib = memory.trim().parse().ok()?;
            (!model.is_empty()).then(|| Gpu {
                model: model.to_string(),
                memory_mib,
            })
        })
        .collect()
}

/// The executable `name` in the directories of a `PATH`-style list.
pub fn find_in_path(name: &str, path_var: &str) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `program args`, returning its stdout when it exits successfully within `timeout`.
fn run_with_timeout(program: &Path, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .inspect_err(|err| tracing::debug!(%err, "fingerprint: cannot start nvidia-smi"))
        .ok()?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                tracing::debug!("fingerprint: nvidia-smi timed out");
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Err(err) => {
                tracing::debug!(%err, "fingerprint: waiting for nvidia-smi failed");
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    if !status.success() {
        tracing::debug!(%status, "fingerprint: nvidia-smi failed");
        return None;
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Adds the GPU attributes for `gpus`.
fn record(fp: &mut Fingerprint, gpus: &[Gpu]) {
    fp.set("gpu.count", gpus.len());
    let mut per_model: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, gpu) in gpus.iter().enumerate() {
        fp.set(format!("gpu.{i}.model"), &gpu.model);
        fp.set(format!("gpu.{i}.memory"), gpu.memory_mib);
        *per_model.entry(&gpu.model).or_default() += 1;
    }
    for (model, count) in per_model {
        fp.set(format!("devices.nvidia/gpu/{model}"), count);
    }
}

pub(super) fn collect(fp: &mut Fingerprint) {
    let path_var = std::env::var("PATH").unwrap_or_default();
    let Some(smi) = find_in_path("nvidia-smi", &path_var) else {
        tracing::debug!("fingerprint: nvidia-smi not on PATH, no GPUs");
        return;
    };
    let args = [
        "--query-gpu=name,memory.total",
        "--format=csv,noheader,nounits",
    ];
    if let Some(out) = run_with_timeout(&smi, &args, TIMEOUT) {
        record(fp, &parse_nvidia_smi(&out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_nvidia_smi_output() {
        let out = "NVIDIA A100-SXM4-40GB, 40960\nNVIDIA A100-SXM4-40GB, 40960\nTesla T4, 15360\nbad line\n";
        let gpus = parse_nvidia_smi(out);
        assert_eq!(gpus.len(), 3);
        assert_eq!(
            gpus[2],
            Gpu {
                model: "Tesla T4".into(),
                memory_mib: 15360
            }
        );
        let mut fp = Fingerprint::default();
        record(&mut fp, &gpus);
        let attr = |k: &str| fp.attributes.get(k).map(String::as_str);
        assert_eq!(attr("gpu.count"), Some("3"));
        assert_eq!(attr("gpu.0.model"), Some("NVIDIA A100-SXM4-40GB"));
        assert_eq!(attr("gpu.2.memory"), Some("15360"));
        assert_eq!(attr("devices.nvidia/gpu/NVIDIA A100-SXM4-40GB"), Some("2"));
        assert_eq!(attr("devices.nvidia/gpu/Tesla T4"), Some("1"));
    }

    #[test]
    fn fingerprint_find_in_path() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let path_var = format!("/nonexistent:{}", dir.path().display());
        assert_eq!(find_in_path("tool", &path_var), None, "not executable yet");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_in_path("tool", &path_var), Some(tool));
    }

    #[test]
    fn fingerprint_run_with_timeout() {
        let sh = Path::new("/bin/sh");
        let out = run_with_timeout(sh, &["-c", "echo 'Tesla T4, 15360'"], TIMEOUT).unwrap();
        assert_eq!(parse_nvidia_smi(&out).len(), 1);
        assert_eq!(run_with_timeout(sh, &["-c", "exit 3"], TIMEOUT), None);
        let started = Instant::now();
        let slow = run_with_timeout(sh, &["-c", "sleep 10"], Duration::from_millis(100));
        assert_eq!(slow, None);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
