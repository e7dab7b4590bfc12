//! Containers through libcontainer, for real: needs root (skipped with a note otherwise) and a
//! static busybox (`/bin/busybox`, Debian's busybox-static).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use caravan_nodeagent::container::{
    self, ContainerRequest, ContainerRoot, ImageConfig, cleanup_orphans, create_and_start, delete,
    oom_killed,
};
use caravan_nodeagent::driver::TaskResources;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

const BUSYBOX: &str = "/bin/busybox";
const CGROUP_PARENT: &str = "caravan-test";

fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: skipped, containers need root");
        return false;
    }
    if !Path::new(BUSYBOX).is_file() {
        eprintln!("note: skipped, {BUSYBOX} is missing (apt-get install busybox-static)");
        return false;
    }
    true
}

/// A busybox root filesystem: /bin/busybox and its applets, /etc/passwd and /etc/group.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "cat", "sleep", "id", "head", "dd", "ls", "tr", "mknod", "mount", "touch",
        "wc", "true",
    ] {
        symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    rootfs
}

struct Outcome {
    status: WaitStatus,
    stdout: String,
    stderr: String,
    oom_killed: bool,
    /// The cgroup v1 memory limit seen from the host after the run (before delete).
    memory_limit: Option<u64>,
}

impl Outcome {
    fn exit_code(&self) -> Option<i32> {
        match self.status {
            WaitStatus::Exited(_, code) => Some(code),
            _ => None,
        }
    }
}

struct Env {
    tmp: tempfile::TempDir,
    state_root: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let state_root = tmp.path().join("state");
        Env { tmp, state_root }
    }

    fn id(name: &str) -> String {
        format!("{name}-{}", std::process::id())
    }

    fn cgroups_path(id: &str) -> String {
        format!("/{CGROUP_PARENT}/{id}")
    }

    fn request(&self, id: &str, root: ContainerRoot, command: &[&str]) -> ContainerRequest {
        let dir = self.tmp.path().join(id);
        fs::create_dir_all(&dir).unwrap();
        let out = File::create(dir.join("stdout")).unwrap();
        let err = File::create(dir.join("stderr")).unwrap();
        ContainerRequest {
            id: id.to_owned(),
            state_root: self.state_root.clone(),
            bundle_dir: dir.join("bundle"),
            cgroups_path: Self::cgroups_path(id),
            root,
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            env: BTreeMap::new(),
            cwd: None,
            user: None,
            resources: TaskResources {
                cpu_mhz: 100,
                memory_mb: 64,
                memory_max_mb: None,
                pids_limit: 64,
            },
            mounts: Vec::new(),
            netns: None,
            capabilities: caravan_nodeagent::container::spec::DEFAULT_CAPABILITIES.to_vec(),
            stdout: OwnedFd::from(out),
            stderr: OwnedFd::from(err),
        }
    }

    /// Starts, waits for, inspects and deletes a container.
    fn run(&self, req: ContainerRequest) -> Outcome {
        let id = req.id.clone();
        let cgroups_path = req.cgroups_path.clone();
        let dir = self.tmp.path().join(&id);
        let started = Instant::now();
        let pid = create_and_start(req).expect("create_and_start").pid;
        let status = waitpid(Pid::from_raw(pid), None).unwrap();
        let ran = started.elapsed();
        let oom = oom_killed(&cgroups_path);
        let memory_limit = fs::read_to_string(
            Path::new("/sys/fs/cgroup/memory")
                .join(cgroups_path.trim_start_matches('/'))
                .join("memory.limit_in_bytes"),
        )
        .ok()
        .and_then(|s| s.trim().parse().ok());
        let deleting = Instant::now();
        delete(&self.state_root, &id).expect("delete");
        eprintln!(
            "{id}: create→exit {:?}, delete {:?}",
            ran,
            deleting.elapsed()
        );
        assert!(!self.state_root.join(&id).exists(), "state left behind");
        Outcome {
            status,
            stdout: fs::read_to_string(dir.join("stdout")).unwrap(),
            stderr: fs::read_to_string(dir.join("stderr")).unwrap(),
            oom_killed: oom,
            memory_limit,
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // delete() removes only the leaf cgroups; the shared parent goes when it is empty.
        if let Ok(controllers) = fs::read_dir("/sys/fs/cgroup") {
            for c in controllers.flatten() {
                let _ = fs::remove_dir(c.path().join(CGROUP_PARENT));
            }
        }
    }
}

fn rootfs_root(path: PathBuf, readonly: bool) -> ContainerRoot {
    ContainerRoot::Rootfs {
        path,
        image: None,
        readonly,
    }
}

#[test]
fn exit_code_and_output() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let rootfs = busybox_rootfs(env.tmp.path());
    let id = Env::id("exit");
    let mut req = env.request(
        &id,
        rootfs_root(rootfs, true),
        &[
            "sh",
            "-c",
            "echo hello; echo oops >&2; echo \"$GREETING\"; exit 3",
        ],
    );
    req.env.insert("GREETING".into(), "hi there".into());
    let out = env.run(req);
    assert_eq!(out.exit_code(), Some(3), "{:?} {}", out.status, out.stderr);
    assert_eq!(out.stdout, "hello\nhi there\n");
    assert_eq!(out.stderr, "oops\n");
    assert!(!out.oom_killed);
}

#[test]
fn sequential_containers_are_fast() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let rootfs = busybox_rootfs(env.tmp.path());
    let started = Instant::now();
    for i in 0..5 {
        let id = Env::id(&format!("seq{i}"));
        let out = env.run(env.request(&id, rootfs_root(rootfs.clone(), true), &["true"]));
        assert_eq!(out.exit_code(), Some(0));
    }
    let each = started.elapsed() / 5;
    eprintln!("create→start→exit→delete of a busybox container: {each:?} on average");
    assert!(each < Duration::from_secs(2));
}

#[test]
fn memory_limit_ooms() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let rootfs = busybox_rootfs(env.tmp.path());
    let id = Env::id("oom");
    let mut req = env.request(
        &id,
        rootfs_root(rootfs, true),
        // A 64 MB shell variable in a 16 MB container.
        &[
            "sh",
            "-c",
            "a=$(head -c 64000000 /dev/zero | tr '\\0' x); echo survived ${#a}",
        ],
    );
    req.resources.memory_mb = 16;
    let out = env.run(req);
    assert!(
        out.oom_killed,
        "not OOM-killed: {:?} {}",
        out.status, out.stdout
    );
    assert!(!out.stdout.contains("survived"), "{}", out.stdout);
    assert_eq!(out.memory_limit, Some(16 * 1024 * 1024));
}

#[test]
fn cgroup_limits_are_not_writable_inside() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let rootfs = busybox_rootfs(env.tmp.path());
    let id = Env::id("cgroupwrite");
    let script = "\
        ls /sys/fs/cgroup/memory >/dev/null 2>&1 && echo CGROUP_VISIBLE; \
        echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null && echo WROTE; \
        mkdir -p /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg 2>/dev/null && echo MOUNTED; \
        echo done";
    let out = env.run(env.request(&id, rootfs_root(rootfs, true), &["sh", "-c", script]));
    assert_eq!(out.exit_code(), Some(0), "{}", out.stderr);
    assert!(!out.stdout.contains("CGROUP_VISIBLE"), "{}", out.stdout);
    assert!(!out.stdout.contains("WROTE"), "{}", out.stdout);
    assert!(!out.stdout.contains("MOUNTED"), "{}", out.stdout);
    assert!(out.stdout.contains("done"));
    assert_eq!(out.memory_limit, Some(64 * 1024 * 1024));
}

#[test]
fn devices_are_denied_by_default() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let rootfs = busybox_rootfs(env.tmp.path());
    let id = Env::id("devices");
    // Character devices that this process can open on the host, outside the allowed list.
    let candidates = [
        ("/dev/net/tun", 10, 200),
        ("/dev/fuse", 10, 229),
        ("/dev/kmsg", 1, 11),
    ];
    let openable: Vec<_> = candidates
        .iter()
        .filter(|(path, _, _)| File::options().read(true).write(true).open(path).is_ok())
        .collect();
    assert!(
        !openable.is_empty(),
        "no control device is openable on the host"
    );
    let mut script = String::new();
    for (i, (_, major, minor)) in openable.iter().enumerate() {
        script.push_str(&format!(
            "mknod /dev/d{i} c {major} {minor} && echo MKNOD; \
             (exec 3<>/dev/d{i}) 2>/dev/null && echo OPENED {major}:{minor}; "
        ));
    }
    script.push_str(
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c",
    );
    let out = env.run(env.request(&id, rootfs_root(rootfs, true), &["sh", "-c", &script]));
    assert_eq!(out.exit_code(), Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("{}4\n4\n", "MKNOD\n".repeat(openable.len()))
    );
}

#[test]
fn image_config_user_and_readonly_root() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let rootfs = busybox_rootfs(env.tmp.path());
    let id = Env::id("image");
    let root = ContainerRoot::Rootfs {
        path: rootfs,
        image: Some(ImageConfig {
            entrypoint: vec!["sh".into(), "-c".into()],
            cmd: vec![
                "id -u; id -g; pwd; echo $MODE; touch /x 2>/dev/null || echo RO; \
                 touch /tmp/y && echo TMP_RW; echo hi > /data/out"
                    .into(),
            ],
            env: vec!["PATH=/bin".into(), "MODE=image".into()],
            working_dir: Some("/tmp".into()),
            user: Some("nobody".into()),
        }),
        readonly: true,
    };
    let data = env.tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    nix::unistd::chown(&data, Some(65534.into()), Some(65534.into())).unwrap();
    let mut req = env.request(&id, root, &[]);
    req.mounts.push((data.clone(), "/data".into(), false));
    let out = env.run(req);
    assert_eq!(out.exit_code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "65534\n65534\n/tmp\nimage\nRO\nTMP_RW\n");
    assert_eq!(fs::read_to_string(data.join("out")).unwrap(), "hi\n");
}

#[test]
fn chroot_of_the_task_directory() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let task_dir = env.tmp.path().join("task");
    fs::create_dir_all(task_dir.join("local")).unwrap();
    fs::write(task_dir.join("local/file"), "from the task dir\n").unwrap();
    let id = Env::id("chroot");
    let mut req = env.request(
        &id,
        ContainerRoot::Chroot {
            task_dir: task_dir.clone(),
        },
        // The host's /bin/sh (dynamically linked): needs the host's /lib, /usr, …
        &[
            "/bin/sh",
            "-c",
            "cat /local/file; id -u; touch /usr/x 2>/dev/null || echo USR_RO",
        ],
    );
    req.user = Some("nobody".into());
    let out = env.run(req);
    assert_eq!(out.exit_code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "from the task dir\n65534\nUSR_RO\n");
    assert!(task_dir.join("usr").is_dir(), "mount point created");
}

#[test]
fn orphans_are_cleaned_up_and_deletes_are_idempotent() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let rootfs = busybox_rootfs(env.tmp.path());
    let orphan = Env::id("orphan");
    let kept = Env::id("kept");
    let orphan_pid = create_and_start(env.request(
        &orphan,
        rootfs_root(rootfs.clone(), true),
        &["sleep", "300"],
    ))
    .unwrap()
    .pid;
    let kept_pid =
        create_and_start(env.request(&kept, rootfs_root(rootfs.clone(), true), &["sleep", "300"]))
            .unwrap()
            .pid;

    // The same id again while it runs is refused.
    let err =
        create_and_start(env.request(&kept, rootfs_root(rootfs, true), &["true"])).unwrap_err();
    assert!(err.contains("already exists"), "{err}");

    let deleted = cleanup_orphans(&env.state_root, std::slice::from_ref(&kept));
    assert_eq!(deleted, vec![orphan.clone()]);
    assert_eq!(
        waitpid(Pid::from_raw(orphan_pid), None).unwrap(),
        WaitStatus::Signaled(Pid::from_raw(orphan_pid), Signal::SIGKILL, false)
    );
    assert!(
        !Path::new("/sys/fs/cgroup/memory")
            .join(Env::cgroups_path(&orphan).trim_start_matches('/'))
            .exists()
    );
    assert!(env.state_root.join(&kept).exists());

    delete(&env.state_root, &kept).unwrap();
    assert!(matches!(
        waitpid(Pid::from_raw(kept_pid), None).unwrap(),
        WaitStatus::Signaled(_, Signal::SIGKILL, _)
    ));
    delete(&env.state_root, &kept).unwrap();
    delete(&env.state_root, "never-existed").unwrap();
    assert!(cleanup_orphans(&env.state_root, &[]).is_empty());
}

#[test]
fn failures_leave_nothing_behind() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let rootfs = busybox_rootfs(env.tmp.path());
    let id = Env::id("missing");
    let err =
        create_and_start(env.request(&id, rootfs_root(rootfs, true), &["/bin/nope"])).unwrap_err();
    eprintln!("expected failure: {err}");
    assert!(!env.state_root.join(&id).exists());
    assert!(
        !Path::new("/sys/fs/cgroup/memory")
            .join(Env::cgroups_path(&id).trim_start_matches('/'))
            .exists()
    );
    // The host's facts are gathered without failing on an odd root.
    let _ = container::host_facts(&rootfs_root(PathBuf::from("/nonexistent"), true));
}
