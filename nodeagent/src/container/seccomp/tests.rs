use super::*;

/// Runs a classic BPF program over a `seccomp_data` (only the instructions seccomp filters of
/// this module use), returning the action.
fn run(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |offset: u32| -> u32 {
        match offset {
            0 => nr,
            4 => arch,
            16..=63 => {
                let arg = args[((offset - 16) / 8) as usize];
                if offset.is_multiple_of(8) {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            other => panic!("load from offset {other}"),
        }
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = &program[pc];
        pc += 1;
        match i.code {
            0x20 => acc = word(i.k),
            0x54 => acc &= i.k,
            0x05 => pc += i.k as usize,
            0x15 | 0x25 | 0x35 => {
                let taken = match i.code {
                    0x15 => acc == i.k,
                    0x25 => acc > i.k,
                    _ => acc >= i.k,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            0x06 => return i.k,
            other => panic!("unexpected BPF instruction {other:#x}"),
        }
    }
}

fn docker_default() -> HashSet<Capability> {
    crate::container::spec::DEFAULT_CAPABILITIES
        .into_iter()
        .collect()
}

fn nr(name: &str, arch: Arch) -> u32 {
    DENIED
        .iter()
        .find(|d| d.name == name)
        .and_then(|d| d.number(arch))
        .unwrap_or_else(|| panic!("{name} on {arch:?}")) as u32
}

const EPERM_RET: u32 = RET_ERRNO | EPERM;
const ARCHES: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

#[test]
fn the_denied_calls_are_refused_with_eperm_on_both_architectures() {
    for arch in ARCHES {
        let program = program(arch, &docker_default()).unwrap();
        for name in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "pivot_root",
            "keyctl",
            "add_key",
            "request_key",
            "ptrace",
            "kexec_load",
            "init_module",
            "finit_module",
            "delete_module",
            "bpf",
            "perf_event_open",
            "swapon",
            "swapoff",
            "reboot",
            "open_by_handle_at",
            "userfaultfd",
            "fsopen",
            "move_mount",
            "io_uring_setup",
        ] {
            let nr = nr(name, arch);
            assert_eq!(
                run(&program, arch.audit(), nr, [0; 6]),
                EPERM_RET,
                "{name} on {arch:?}"
            );
        }
    }
}

#[test]
fn other_calls_are_allowed() {
    // read, write, execve, openat and exit_group on each architecture.
    let allowed = [
        (Arch::X86_64, [0, 1, 59, 257, 231]),
        (Arch::Aarch64, [63, 64, 221, 56, 94]),
    ];
    for (arch, numbers) in allowed {
        let program = program(arch, &docker_default()).unwrap();
        for nr in numbers {
            assert_eq!(run(&program, arch.audit(), nr, [0; 6]), RET_ALLOW);
        }
    }
}

#[test]
fn clone_is_refused_only_with_namespace_flags() {
    const CLONE_VM: u64 = 0x100;
    const SIGCHLD: u64 = 17;
    const THREAD: u64 = 0x003d_0f00;
    for arch in ARCHES {
        let program = program(arch, &docker_default()).unwrap();
        let clone = nr("clone", arch);
        for flags in [SIGCHLD, CLONE_VM | SIGCHLD, THREAD] {
            let args = [flags, 0, 0, 0, 0, 0];
            assert_eq!(run(&program, arch.audit(), clone, args), RET_ALLOW);
        }
        for flag in CLONE_NAMESPACES {
            let args = [flag | SIGCHLD, 0, 0, 0, 0, 0];
            assert_eq!(
                run(&program, arch.audit(), clone, args),
                EPERM_RET,
                "{flag:#x}"
            );
        }
        // clone3's flags live in memory the filter cannot read: the C library falls back.
        assert_eq!(
            run(&program, arch.audit(), CLONE3, [0; 6]),
            RET_ERRNO | ENOSYS
        );
    }
}

#[test]
fn personality_allows_dockers_personas_only() {
    for arch in ARCHES {
        let program = program(arch, &docker_default()).unwrap();
        let personality = nr("personality", arch);
        for persona in PERSONALITIES {
            let args = [persona, 0, 0, 0, 0, 0];
            assert_eq!(run(&program, arch.audit(), personality, args), RET_ALLOW);
        }
        // READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE.
        for persona in [0x0040_0000, 0x0004_0000] {
            let args = [persona, 0, 0, 0, 0, 0];
            assert_eq!(run(&program, arch.audit(), personality, args), EPERM_RET);
        }
    }
}

#[test]
fn calls_of_another_abi_are_refused_or_kill() {
    let program = program(Arch::X86_64, &docker_default()).unwrap();
    // x32's unshare and its read: the table knows native numbers only.
    let unshare = nr("unshare", Arch::X86_64);
    assert_eq!(
        run(
            &program,
            Arch::X86_64.audit(),
            X32_SYSCALL_BIT | unshare,
            [0; 6]
        ),
        EPERM_RET
    );
    assert_eq!(
        run(&program, Arch::X86_64.audit(), X32_SYSCALL_BIT, [0; 6]),
        EPERM_RET
    );
    // A 32-bit x86 call (AUDIT_ARCH_I386), or a native one of another architecture.
    assert_eq!(run(&program, 0x4000_0003, 310, [0; 6]), RET_KILL_PROCESS);
    assert_eq!(
        run(&program, Arch::Aarch64.audit(), 97, [0; 6]),
        RET_KILL_PROCESS
    );
}

#[test]
fn a_capability_allows_the_calls_it_guards_again() {
    let mut caps = docker_default();
    caps.insert(Capability::SysAdmin);
    caps.insert(Capability::SysPtrace);
    let arch = Arch::X86_64;
    let program = program(arch, &caps).unwrap();
    for name in ["mount", "unshare", "setns", "ptrace", "bpf"] {
        assert_eq!(
            run(&program, arch.audit(), nr(name, arch), [0; 6]),
            RET_ALLOW,
            "{name}"
        );
    }
    let args = [CLONE_NAMESPACES[4], 0, 0, 0, 0, 0];
    assert_eq!(
        run(&program, arch.audit(), nr("clone", arch), args),
        RET_ALLOW
    );
    // Never allowed: the keyring is not namespaced, modules need CAP_SYS_MODULE.
    for name in ["keyctl", "init_module", "kexec_load"] {
        assert_eq!(
            run(&program, arch.audit(), nr(name, arch), [0; 6]),
            EPERM_RET
        );
    }
}

#[test]
fn the_table_is_consistent() {
    for arch in ARCHES {
        let mut seen = HashSet::new();
        for d in DENIED {
            if let Some(nr) = d.number(arch) {
                assert!(seen.insert(nr), "{} twice on {arch:?}", d.name);
                assert!((0..i64::from(X32_SYSCALL_BIT)).contains(&nr));
                assert_ne!(nr, i64::from(CLONE3));
            }
        }
    }
    // x86_64 has every call; aarch64 lacks only the legacy ones.
    assert!(DENIED.iter().all(|d| d.x86_64.is_some()));
    let all: HashSet<Capability> = HashSet::new();
    let fewer = denied(Arch::Aarch64, &all).len();
    assert!(fewer < denied(Arch::X86_64, &all).len());
    assert!(
        denied(Arch::Aarch64, &all)
            .iter()
            .any(|(d, _)| d.name == "mount")
    );
}

#[test]
fn the_host_architecture_is_known() {
    #[cfg(target_arch = "x86_64")]
    assert_eq!(Arch::host(), Some(Arch::X86_64));
    #[cfg(target_arch = "aarch64")]
    assert_eq!(Arch::host(), Some(Arch::Aarch64));
}
