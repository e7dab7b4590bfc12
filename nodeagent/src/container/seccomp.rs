//! The default seccomp filter of `exec` and `oci` containers, after Docker's default profile.
//!
//! Docker's profile allows a list of system calls and refuses the rest; this one is the
//! reverse, a denylist with default-allow: it refuses, with `EPERM`, the calls Docker's profile
//! leaves out (kernel modules, kexec and reboot, mounts and the new mount API, namespaces
//! through `unshare`, `setns` and `clone`'s namespace flags, the kernel keyring, `ptrace` and
//! cross-process memory access, `bpf`, `perf_event_open`, swap, quotas, time setting,
//! `open_by_handle_at`, `userfaultfd`, NUMA policy, `io_uring`, obsolete calls, …) and lets
//! everything else through. As in Docker, a call guarded by a capability is allowed again when
//! the container holds that capability (e.g. `mount` with `CAP_SYS_ADMIN`). `clone3` fails with
//! `ENOSYS` (its flags cannot be inspected), so that the C library falls back to `clone`;
//! system calls of another ABI than the native one (x86's 32-bit and x32 calls) are refused
//! too, since the table only knows the native numbers.
//!
//! [`program`] is pure: it builds the BPF program from [`DENIED`] for an architecture and a
//! capability set; [`install`] loads it into the calling process (the container's init, right
//! before it executes the task's command: see `super::workload`).

use std::collections::{BTreeMap, HashSet};

use oci_spec::runtime::Capability;
use oci_spec::runtime::Capability as C;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

/// The architectures the filter knows the system call numbers of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture this binary runs on, when the filter supports it.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// `AUDIT_ARCH_*`: the `arch` field of `seccomp_data` for native calls.
    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => 0xc000_003e,
            Arch::Aarch64 => 0xc000_00b7,
        }
    }

    fn target(self) -> TargetArch {
        match self {
            Arch::X86_64 => TargetArch::x86_64,
            Arch::Aarch64 => TargetArch::aarch64,
        }
    }
}

/// Which calls of a system call are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// `clone` with one of [`CLONE_NAMESPACES`] in its flags (the first argument).
    NamespaceFlags,
    /// `personality` with another persona than [`PERSONALITIES`].
    OtherPersonality,
}

/// One refused system call: its number per architecture (`None`: the architecture has no such
/// call), and the capabilities any of which allows it again.
#[derive(Debug, Clone, Copy)]
pub struct Denied {
    pub name: &'static str,
    pub x86_64: Option<i64>,
    pub aarch64: Option<i64>,
    pub unless: &'static [Capability],
    pub when: When,
}

impl Denied {
    pub fn number(&self, arch: Arch) -> Option<i64> {
        match arch {
            Arch::X86_64 => self.x86_64,
            Arch::Aarch64 => self.aarch64,
        }
    }
}

const fn deny(
    name: &'static str,
    x86_64: i64,
    aarch64: Option<i64>,
    unless: &'static [Capability],
) -> Denied {
    Denied {
        name,
        x86_64: Some(x86_64),
        aarch64,
        unless,
        when: When::Always,
    }
}

const SYS_ADMIN: &[Capability] = &[C::SysAdmin];
const NONE: &[Capability] = &[];

/// The refused system calls (numbers from the kernel's tables as of Linux 6.12).
pub const DENIED: &[Denied] = &[
    // Namespaces and mounts.
    deny("unshare", 272, Some(97), SYS_ADMIN),
    deny("setns", 308, Some(268), SYS_ADMIN),
    Denied {
        name: "clone",
        x86_64: Some(56),
        aarch64: Some(220),
        unless: SYS_ADMIN,
        when: When::NamespaceFlags,
    },
    deny("mount", 165, Some(40), SYS_ADMIN),
    deny("umount2", 166, Some(39), SYS_ADMIN),
    deny("pivot_root", 155, Some(41), SYS_ADMIN),
    deny("open_tree", 428, Some(428), SYS_ADMIN),
    deny("move_mount", 429, Some(429), SYS_ADMIN),
    deny("fsopen", 430, Some(430), SYS_ADMIN),
    deny("fsconfig", 431, Some(431), SYS_ADMIN),
    deny("fsmount", 432, Some(432), SYS_ADMIN),
    deny("fspick", 433, Some(433), SYS_ADMIN),
    deny("mount_setattr", 442, Some(442), SYS_ADMIN),
    // The kernel keyring (not namespaced).
    deny("add_key", 248, Some(217), NONE),
    deny("request_key", 249, Some(218), NONE),
    deny("keyctl", 250, Some(219), NONE),
    // Kernel modules, kexec, reboot.
    deny("create_module", 174, None, &[C::SysModule]),
    deny("init_module", 175, Some(105), &[C::SysModule]),
    deny("delete_module", 176, Some(106), &[C::SysModule]),
    deny("get_kernel_syms", 177, None, &[C::SysModule]),
    deny("query_module", 178, None, &[C::SysModule]),
    deny("finit_module", 313, Some(273), &[C::SysModule]),
    deny("kexec_load", 246, Some(104), &[C::SysBoot]),
    deny("kexec_file_load", 320, Some(294), &[C::SysBoot]),
    deny("reboot", 169, Some(142), &[C::SysBoot]),
    // Other processes' memory.
    deny("ptrace", 101, Some(117), &[C::SysPtrace]),
    deny("process_vm_readv", 310, Some(270), &[C::SysPtrace]),
    deny("process_vm_writev", 311, Some(271), &[C::SysPtrace]),
    deny("kcmp", 312, Some(272), &[C::SysPtrace]),
    deny("pidfd_getfd", 438, Some(438), &[C::SysPtrace]),
    // Kernel tracing and programs.
    deny("bpf", 321, Some(280), &[C::SysAdmin, C::Bpf]),
    deny(
        "perf_event_open",
        298,
        Some(241),
        &[C::SysAdmin, C::Perfmon],
    ),
    deny("lookup_dcookie", 212, Some(18), SYS_ADMIN),
    deny("fanotify_init", 300, Some(262), SYS_ADMIN),
    deny("syslog", 103, Some(116), &[C::Syslog]),
    // Swap, quotas, accounting, time.
    deny("swapon", 167, Some(224), SYS_ADMIN),
    deny("swapoff", 168, Some(225), SYS_ADMIN),
    deny("quotactl", 179, Some(60), SYS_ADMIN),
    deny("quotactl_fd", 443, Some(443), SYS_ADMIN),
    deny("acct", 163, Some(89), &[C::SysPacct]),
    deny("settimeofday", 164, Some(170), &[C::SysTime]),
    deny("clock_settime", 227, Some(112), &[C::SysTime]),
    deny("clock_adjtime", 305, Some(266), &[C::SysTime]),
    // File handles (escape a bind mount), I/O ports, terminals.
    deny("name_to_handle_at", 303, Some(264), &[C::DacReadSearch]),
    deny("open_by_handle_at", 304, Some(265), &[C::DacReadSearch]),
    deny("iopl", 172, None, &[C::SysRawio]),
    deny("ioperm", 173, None, &[C::SysRawio]),
    deny("vhangup", 153, Some(58), &[C::SysTtyConfig]),
    // NUMA memory policy.
    deny("mbind", 237, Some(235), &[C::SysNice]),
    deny("set_mempolicy", 238, Some(237), &[C::SysNice]),
    deny("get_mempolicy", 239, Some(236), &[C::SysNice]),
    deny("move_pages", 279, Some(239), &[C::SysNice]),
    // Kernel attack surface Docker's profile leaves out.
    deny("userfaultfd", 323, Some(282), NONE),
    deny("io_uring_setup", 425, Some(425), NONE),
    deny("io_uring_enter", 426, Some(426), NONE),
    deny("io_uring_register", 427, Some(427), NONE),
    Denied {
        name: "personality",
        x86_64: Some(135),
        aarch64: Some(92),
        unless: NONE,
        when: When::OtherPersonality,
    },
    // Obsolete or unimplemented.
    deny("uselib", 134, None, NONE),
    deny("ustat", 136, None, NONE),
    deny("sysfs", 139, None, NONE),
    deny("_sysctl", 156, None, NONE),
    deny("nfsservctl", 180, Some(42), NONE),
    deny("afs_syscall", 183, None, NONE),
    deny("tuxcall", 184, None, NONE),
    deny("security", 185, None, NONE),
    deny("vserver", 236, None, NONE),
];

/// `clone3`'s number (the same on both architectures): answered `ENOSYS`.
pub const CLONE3: u32 = 435;

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
/// | CLONE_NEWNET`.
pub const CLONE_NAMESPACES: [u64; 7] = [
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// The personas Docker allows: `PER_LINUX`, `PER_LINUX32`, `UNAME26`, `UNAME26|PER_LINUX32`
/// and the query `0xffffffff`.
pub const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Calls at or above this number are x32 calls on x86_64 (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const EPERM: u32 = 1;
pub const ENOSYS: u32 = 38;
pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;

/// The entries of [`DENIED`] that apply on `arch` to a container holding `caps`, with their
/// numbers.
pub fn denied(arch: Arch, caps: &HashSet<Capability>) -> Vec<(&'static Denied, i64)> {
    DENIED
        .iter()
        .filter(|d| !d.unless.iter().any(|c| caps.contains(c)))
        .filter_map(|d| d.number(arch).map(|nr| (d, nr)))
        .collect()
}

fn condition(op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(0, SeccompCmpArgLen::Dword, op, value).map_err(err)
}

/// The rules under which a call is refused (none: every call).
fn rules(when: When) -> Result<Vec<SeccompRule>, String> {
    match when {
        When::Always => Ok(Vec::new()),
        // Any of the flags set: one rule each (rules are alternatives).
        When::NamespaceFlags => CLONE_NAMESPACES
            .iter()
            .map(|&flag| {
                SeccompRule::new(vec![condition(SeccompCmpOp::MaskedEq(flag), flag)?]).map_err(err)
            })
            .collect(),
        // None of the allowed personas (conditions are conjunctions).
        When::OtherPersonality => Ok(vec![
            SeccompRule::new(
                PERSONALITIES
                    .iter()
                    .map(|&p| condition(SeccompCmpOp::Ne, p))
                    .collect::<Result<_, _>>()?,
            )
            .map_err(err)?,
        ]),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    format!("building the seccomp filter: {e}")
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

/// Builds the filter for a container holding `caps` (its bounding set) on `arch`.
///
/// The program: for a native call, a number with the x32 bit is refused (`EPERM`) and
/// `clone3` answers `ENOSYS`; then seccompiler's part kills a process making a call of another
/// architecture, refuses the [`denied`] calls with `EPERM` and allows the rest.
pub fn program(arch: Arch, caps: &HashSet<Capability>) -> Result<BpfProgram, String> {
    let mut table: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (entry, nr) in denied(arch, caps) {
        table.insert(nr, rules(entry.when)?);
    }
    let filter = SeccompFilter::new(
        table,
        SeccompAction::Allow,
        SeccompAction::Errno(EPERM),
        arch.target(),
    )
    .map_err(err)?;
    let main: BpfProgram = filter.try_into().map_err(err)?;
    // Offsets are relative to the next instruction; the prefix falls through into `main`.
    let mut program = vec![
        stmt(LD_W_ABS, 4), // seccomp_data.arch
        jump(JEQ_K, arch.audit(), 0, 5),
        stmt(LD_W_ABS, 0), // seccomp_data.nr
        jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(RET_K, RET_ERRNO | EPERM),
        jump(JEQ_K, CLONE3, 0, 1),
        stmt(RET_K, RET_ERRNO | ENOSYS),
    ];
    program.extend(main);
    Ok(program)
}

/// Loads `program` into the calling thread (which must have `no_new_privs` set or hold
/// `CAP_SYS_ADMIN`); it applies to everything the thread executes and forks from then on.
pub fn install(program: &BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter(program).map_err(|e| format!("installing the seccomp filter: {e}"))
}

#[cfg(test)]
mod tests;
