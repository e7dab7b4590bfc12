//! CPU: `cpu.arch`, `cpu.numcores`, `cpu.frequency`, `cpu.totalcompute`, `cpu.modelname`.

use nix::unistd::{SysconfVar, sysconf};

use super::{Fingerprint, read_text};

/// MHz per core assumed when neither `/proc/cpuinfo` nor cpufreq report a clock.
pub const FALLBACK_MHZ: u64 = 1000;

/// What `/proc/cpuinfo` says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuInfo {
    /// `model name` of the first processor that has one.
    pub model_name: Option<String>,
    /// Highest `cpu MHz` over all processors, rounded.
    pub mhz: Option<u64>,
    /// Number of `processor` entries.
    pub processors: u32,
}

/// Parses the text of `/proc/cpuinfo`.
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => info.processors += 1,
            "model name" if info.model_name.is_none() && !value.is_empty() => {
                info.model_name = Some(value.to_string());
            }
            "cpu MHz" => {
                if let Ok(mhz) = value.parse::<f64>()
                    && mhz.is_finite()
                    && mhz >= 1.0
                {
                    // Clock speeds fit comfortably in u64 after rounding.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let mhz = mhz.round() as u64;
                    info.mhz = Some(info.mhz.map_or(mhz, |m| m.max(mhz)));
                }
            }
            _ => {}
        }
    }
    info
}

/// Parses `cpufreq/cpuinfo_max_freq` (kHz) into MHz.
pub fn parse_max_freq_khz(text: &str) -> Option<u64> {
    let khz: u64 = text.trim().parse().ok()?;
    let mhz = khz / 1000;
    (mhz > 0).then_some(mhz)
}

/// Nomad's `cpu.arch` is Go's `GOARCH`: maps a Rust `std::env::consts::ARCH` to it.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Online logical CPUs: `sysconf(_SC_NPROCESSORS_ONLN)`, else `available_parallelism`.
fn online_cores() -> Option<u32> {
    match sysconf(SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) if n > 0 => return u32::try_from(n).ok(),
        other => tracing::debug!(
            ?other,
            "fingerprint: sysconf(_SC_NPROCESSORS_ONLN) unusable"
        ),
    }
    match std::thread::available_parallelism() {
        Ok(n) => u32::try_from(n.get()).ok(),
        Err(err) => {
            tracing::debug!(%err, "fingerprint: available_parallelism failed");
            None
        }
    }
}

pub(super) fn collect(fp: &mut Fingerprint) {
    fp.set("cpu.arch", go_arch(std::env::consts::ARCH));
    let info = read_text("/proc/cpuinfo")
        .map(|t| parse_cpuinfo(&t))
        .unwrap_or_default();
    let cores = online_cores()
        .or((info.processors > 0).then_some(info.processors))
        .unwrap_or_else(|| {
            tracing::debug!("fingerprint: core count unknown, assuming 1");
            1
        });
    let mhz = info
        .mhz
        .or_else(|| {
            read_text("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
                .and_then(|t| parse_max_freq_khz(&t))
        })
        .unwrap_or_else(|| {
            tracing::debug!("fingerprint: CPU clock unknown, assuming {FALLBACK_MHZ} MHz");
            FALLBACK_MHZ
        });
    if let Some(model) = info.model_name {
        fp.set("cpu.modelname", model);
    } else {
        tracing::debug!("fingerprint: no CPU model name in /proc/cpuinfo");
    }
    let total = mhz * u64::from(cores);
    fp.set("cpu.numcores", cores);
    fp.set("cpu.frequency", mhz);
    fp.set("cpu.totalcompute", total);
    fp.resources.cores = cores;
    fp.resources.cpu = total;
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz\ncpu MHz\t\t: 2299.998\nflags\t\t: fpu vme\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz\ncpu MHz\t\t: 2400.412\n\n";

    // aarch64: no `model name`, no `cpu MHz`.
    const ARM: &str = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n\n";

    #[test]
    fn fingerprint_cpuinfo_x86() {
        let info = parse_cpuinfo(X86);
        assert_eq!(
            info,
            CpuInfo {
                model_name: Some("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz".into()),
                mhz: Some(2400),
                processors: 2,
            }
        );
    }

    #[test]
    fn fingerprint_cpuinfo_without_mhz() {
        let info = parse_cpuinfo(ARM);
        assert_eq!(info.model_name, None);
        assert_eq!(info.mhz, None);
        assert_eq!(info.processors, 2);
    }

    #[test]
    fn fingerprint_cpufreq_max() {
        assert_eq!(parse_max_freq_khz("2600000\n"), Some(2600));
        assert_eq!(parse_max_freq_khz("garbage"), None);
        assert_eq!(parse_max_freq_khz("0"), None);
    }

    #[test]
    fn fingerprint_go_arch() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("riscv64"), "riscv64");
    }
}
