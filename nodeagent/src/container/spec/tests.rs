use super::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
    app:x:1000:1000::/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nwheel:x:10:app,other\napp:x:1000:\nnogroup:x:65534:\n";

fn params<'a>(
    root: &'a ContainerRoot,
    command: &'a [String],
    env: &'a BTreeMap<String, String>,
    resources: &'a TaskResources,
    mounts: &'a [(PathBuf, String, bool)],
) -> SpecParams<'a> {
    SpecParams {
        root,
        command,
        env,
        cwd: None,
        user: None,
        resources,
        mounts,
        cgroups_path: "/caravan/a1/web",
        netns: None,
        capabilities: &DEFAULT_CAPABILITIES,
    }
}

fn host() -> HostFacts {
    HostFacts {
        passwd: Some(PASSWD.to_owned()),
        group: Some(GROUP.to_owned()),
        chroot_dirs: vec!["/bin".into(), "/usr".into(), "/etc".into()],
        network_files: vec!["/etc/resolv.conf".into()],
        swap_limit: true,
    }
}

fn image_root(readonly: bool) -> ContainerRoot {
    ContainerRoot::Rootfs {
        path: "/var/lib/caravan/images/busybox/abc/rootfs".into(),
        image: Some(ImageConfig {
            entrypoint: vec!["/bin/entry".into()],
            cmd: vec!["serve".into(), "--port=80".into()],
            env: vec!["PATH=/bin:/usr/bin".into(), "LANG=C".into()],
            working_dir: Some("/srv".into()),
            user: Some("app".into()),
        }),
        readonly,
    }
}

fn destinations(spec: &Spec) -> Vec<String> {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect()
}

#[test]
fn chroot_spec() {
    let root = ContainerRoot::Chroot {
        task_dir: "/data/alloc/a1/web".into(),
    };
    let command = vec!["/bin/sh".to_owned(), "-c".to_owned(), "echo hi".to_owned()];
    let env = BTreeMap::from([("FOO".to_owned(), "bar".to_owned())]);
    let resources = TaskResources {
        cpu_mhz: 500,
        memory_mb: 64,
        memory_max_mb: Some(128),
        pids_limit: 100,
    };
    let mounts = vec![(
        PathBuf::from("/data/alloc/a1/alloc"),
        "/alloc".to_owned(),
        false,
    )];
    let spec = build(&params(&root, &command, &env, &resources, &mounts), &host()).unwrap();

    let root = spec.root().as_ref().unwrap();
    assert_eq!(root.path(), Path::new("/data/alloc/a1/web"));
    assert_eq!(root.readonly(), Some(false));

    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.args().as_ref().unwrap(), &command);
    assert_eq!(process.cwd(), Path::new("/"));
    assert_eq!(process.user().uid(), 0);
    assert_eq!(process.no_new_privileges(), Some(true));
    assert_eq!(process.oom_score_adj(), None);
    let env = process.env().as_ref().unwrap();
    assert!(env.contains(&format!("PATH={DEFAULT_PATH}")));
    assert!(env.contains(&"FOO=bar".to_owned()));
    assert!(env.contains(&"HOME=/".to_owned()));
    let caps = process.capabilities().as_ref().unwrap();
    assert!(
        caps.bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::Chown)
    );
    assert!(
        !caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin)
    );

    let dest = destinations(&spec);
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
    ] {
        assert!(dest.contains(&d.to_owned()), "{d} missing in {dest:?}");
    }
    assert!(!dest.iter().any(|d| d.starts_with("/sys/fs/cgroup")));
    for d in ["/bin", "/usr", "/etc", "/alloc"] {
        assert!(dest.contains(&d.to_owned()), "{d} missing in {dest:?}");
    }
    assert!(!dest.contains(&"/etc/resolv.conf".to_owned()));
    assert!(!dest.contains(&"/tmp".to_owned()));
    let usr = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/usr"))
        .unwrap();
    assert_eq!(usr.source().as_deref(), Some(Path::new("/usr")));
    assert!(usr.options().as_ref().unwrap().contains(&"ro".to_owned()));
    let alloc = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/alloc"))
        .unwrap();
    assert!(alloc.options().as_ref().unwrap().contains(&"rw".to_owned()));

    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/caravan/a1/web"))
    );
    let ns: Vec<_> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert_eq!(ns.len(), 4);
    assert!(!ns.contains(&LinuxNamespaceType::Network));
    assert!(!ns.contains(&LinuxNamespaceType::Cgroup));
    assert!(
        linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_owned())
    );
    assert!(
        linux
            .readonly_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/sys".to_owned())
    );

    let res = linux.resources().as_ref().unwrap();
    let devices = res.devices().as_ref().unwrap();
    assert!(!devices[0].allow());
    assert_eq!(devices[0].to_string(), "a *:* rwm");
    assert!(devices[1..].iter().all(|d| d.allow()));
    assert!(devices.iter().any(|d| d.to_string() == "c 1:3 rwm"));
    assert!(devices.iter().any(|d| d.to_string() == "c 136:* rwm"));
    let memory = res.memory().as_ref().unwrap();
    assert_eq!(memory.limit(), Some(128 * MB));
    assert_eq!(memory.reservation(), Some(64 * MB));
    assert_eq!(memory.swap(), Some(128 * MB));
    assert_eq!(res.cpu().as_ref().unwrap().shares(), Some(500));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 100);

    // And it serialises as runtimes expect.
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["ociVersion"], OCI_VERSION);
    assert_eq!(json["linux"]["cgroupsPath"], "/caravan/a1/web");
    assert!(json["process"].get("oomScoreAdj").is_none());
}

#[test]
fn image_spec_uses_the_image_config() {
    let root = image_root(true);
    let env = BTreeMap::from([("LANG".to_owned(), "C.UTF-8".to_owned())]);
    let resources = TaskResources {
        cpu_mhz: 0,
        memory_mb: 16,
        memory_max_mb: None,
        pids_limit: 0,
    };
    let mut h = host();
    h.swap_limit = false;
    let spec = build(&params(&root, &[], &env, &resources, &[]), &h).unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!(
        process.args().as_ref().unwrap(),
        &["/bin/entry", "serve", "--port=80"]
    );
    assert_eq!(process.cwd(), Path::new("/srv"));
    assert_eq!(process.user().uid(), 1000);
    assert_eq!(process.user().gid(), 1000);
    assert_eq!(process.user().additional_gids().as_deref(), Some(&[10][..]));
    assert_eq!(
        process.env().as_ref().unwrap(),
        &["PATH=/bin:/usr/bin", "LANG=C.UTF-8", "HOME=/home/app"]
    );
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    let dest = destinations(&spec);
    assert!(dest.contains(&"/etc/resolv.conf".to_owned()));
    assert!(dest.contains(&"/tmp".to_owned()));
    assert!(!dest.contains(&"/usr".to_owned()));
    let res = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    let memory = res.memory().as_ref().unwrap();
    assert_eq!(memory.limit(), Some(16 * MB));
    assert_eq!(memory.reservation(), None);
    assert_eq!(memory.swap(), None);
    assert_eq!(res.cpu().as_ref().unwrap().shares(), Some(2));
    assert!(res.pids().is_none());
}

#[test]
fn a_network_namespace_is_joined_by_path_and_the_host_network_shared_without_one() {
    use oci_spec::runtime::LinuxNamespaceType;
    let root = image_root(true);
    let command = vec!["httpd".to_owned()];
    let env = BTreeMap::new();
    let resources = TaskResources::default();
    let network = |spec: &Spec| {
        spec.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .map(|n| n.path().clone())
    };
    let mut p = params(&root, &command, &env, &resources, &[]);
    assert_eq!(network(&build(&p, &host()).unwrap()), None);
    let netns = PathBuf::from("/run/caravan/netns/a1");
    p.netns = Some(&netns);
    assert_eq!(
        network(&build(&p, &host()).unwrap()),
        Some(Some(netns.clone()))
    );
    let relative = PathBuf::from("netns/a1");
    p.netns = Some(&relative);
    assert!(build(&p, &host()).is_err());
}

#[test]
fn task_settings_override_the_image() {
    let root = image_root(false);
    let command = vec!["sleep".to_owned(), "5".to_owned()];
    let env = BTreeMap::new();
    let resources = TaskResources::default();
    let mut p = params(&root, &command, &env, &resources, &[]);
    p.cwd = Some("/work");
    p.user = Some("65534:0");
    let spec = build(&p, &host()).unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.args().as_ref().unwrap(), &command);
    assert_eq!(process.cwd(), Path::new("/work"));
    assert_eq!(process.user().uid(), 65534);
    assert_eq!(process.user().gid(), 0);
    assert!(!destinations(&spec).contains(&"/tmp".to_owned()));
    let res = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    assert!(res.memory().is_none());
}

#[test]
fn errors() {
    let root = ContainerRoot::Rootfs {
        path: "/images/x/rootfs".into(),
        image: None,
        readonly: true,
    };
    let env = BTreeMap::new();
    let resources = TaskResources::default();
    let e = build(&params(&root, &[], &env, &resources, &[]), &host()).unwrap_err();
    assert!(e.contains("no command"), "{e}");

    let command = vec!["sh".to_owned()];
    let mut p = params(&root, &command, &env, &resources, &[]);
    p.user = Some("ghost");
    let e = build(&p, &host()).unwrap_err();
    assert!(e.contains("\"ghost\" not found"), "{e}");

    let bad = vec![(PathBuf::from("/x"), "/a/../etc".to_owned(), true)];
    let e = build(&params(&root, &command, &env, &resources, &bad), &host()).unwrap_err();
    assert!(e.contains(".."), "{e}");
    let bad = vec![(PathBuf::from("relative"), "/a".to_owned(), true)];
    assert!(build(&params(&root, &command, &env, &resources, &bad), &host()).is_err());

    let relative = ContainerRoot::Chroot {
        task_dir: "task".into(),
    };
    assert!(build(&params(&relative, &command, &env, &resources, &[]), &host()).is_err());
}

#[test]
fn users() {
    let (u, home) = resolve_user("root", Some(PASSWD), Some(GROUP)).unwrap();
    assert_eq!((u.uid(), u.gid()), (0, 0));
    assert_eq!(home.as_deref(), Some("/root"));
    let (u, _) = resolve_user("1000", Some(PASSWD), Some(GROUP)).unwrap();
    assert_eq!((u.uid(), u.gid()), (1000, 1000));
    assert_eq!(u.username().as_deref(), Some("app"));
    let (u, home) = resolve_user("4242", None, None).unwrap();
    assert_eq!((u.uid(), u.gid(), home), (4242, 0, None));
    let (u, _) = resolve_user("app:nogroup", Some(PASSWD), Some(GROUP)).unwrap();
    assert_eq!((u.uid(), u.gid()), (1000, 65534));
    assert_eq!(u.additional_gids().as_deref(), Some(&[10][..]));
    assert!(resolve_user("app:nope", Some(PASSWD), Some(GROUP)).is_err());
    assert!(resolve_user(":1", Some(PASSWD), Some(GROUP)).is_err());
    assert!(resolve_user("nobody", None, None).is_err());
}

/// The capability's bit in `CapEff` (`include/uapi/linux/capability.h`).
fn cap_bit(cap: &Capability) -> u32 {
    match cap {
        Capability::Chown => 0,
        Capability::DacOverride => 1,
        Capability::Fowner => 3,
        Capability::Fsetid => 4,
        Capability::Kill => 5,
        Capability::Setgid => 6,
        Capability::Setuid => 7,
        Capability::Setpcap => 8,
        Capability::NetBindService => 10,
        Capability::NetRaw => 13,
        Capability::SysChroot => 18,
        Capability::Mknod => 27,
        Capability::AuditWrite => 29,
        Capability::Setfcap => 31,
        other => panic!("{other:?} is not in Docker's default set"),
    }
}

#[test]
fn exec_and_oci_containers_get_the_same_isolation() {
    let command = vec!["sh".to_owned()];
    let env = BTreeMap::new();
    let resources = TaskResources::default();
    let alloc = vec![(PathBuf::from("/data/a1/alloc"), "/alloc".to_owned(), false)];
    let chroot = ContainerRoot::Chroot {
        task_dir: "/data/a1/t".into(),
    };
    for root in [chroot, image_root(true), image_root(false)] {
        let spec = build(&params(&root, &command, &env, &resources, &alloc), &host()).unwrap();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.no_new_privileges(), Some(true));

        // Docker's default capabilities, nothing inheritable or ambient: CapEff 0xa80425fb.
        let caps = process.capabilities().as_ref().unwrap();
        let default: Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            assert_eq!(set.as_ref(), Some(&default));
        }
        assert_eq!(caps.inheritable().as_ref(), Some(&Capabilities::new()));
        assert_eq!(caps.ambient().as_ref(), Some(&Capabilities::new()));
        let mask = default.iter().fold(0u64, |m, c| m | 1 << cap_bit(c));
        assert_eq!(mask, 0xa804_25fb);

        // Own PID, mount, IPC and UTS namespaces; no cgroup or user namespace.
        let linux = spec.linux().as_ref().unwrap();
        let mut ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| (n.typ(), n.path().clone()))
            .collect();
        ns.sort_by_key(|(t, _)| format!("{t:?}"));
        assert_eq!(
            ns,
            [
                (LinuxNamespaceType::Ipc, None),
                (LinuxNamespaceType::Mount, None),
                (LinuxNamespaceType::Pid, None),
                (LinuxNamespaceType::Uts, None),
            ]
        );

        // runc's masked and read-only paths.
        assert_eq!(
            linux.masked_paths().as_deref(),
            Some(&MASKED_PATHS.map(str::to_owned)[..])
        );
        assert_eq!(
            linux.readonly_paths().as_deref(),
            Some(&READONLY_PATHS.map(str::to_owned)[..])
        );
        // No seccomp section: the filter is installed by the init itself (`super::seccomp`).
        assert!(linux.seccomp().is_none());

        // A read-only /sys, no cgroup filesystem at all, /proc without setuid or devices.
        let mounts = spec.mounts().as_ref().unwrap();
        let sys = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/sys"))
            .unwrap();
        assert!(sys.options().as_ref().unwrap().contains(&"ro".to_owned()));
        assert!(mounts.iter().all(|m| {
            m.typ().as_deref() != Some("cgroup")
                && m.typ().as_deref() != Some("cgroup2")
                && !m.destination().starts_with("/sys/fs/cgroup")
        }));
        let proc = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/proc"))
            .unwrap();
        for opt in ["nosuid", "noexec", "nodev"] {
            assert!(proc.options().as_ref().unwrap().contains(&opt.to_owned()));
        }
        // Only the standard character devices.
        let devices = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert_eq!(devices, &device_rules());
    }
}
