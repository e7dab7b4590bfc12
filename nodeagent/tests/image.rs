//! The local OCI image store: importing layouts (directories and archives), resolving names,
//! and running an imported umoci-built busybox image (root and umoci only, skipped otherwise).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use caravan_nodeagent::container::{self, ContainerRequest, ContainerRoot};
use caravan_nodeagent::driver::TaskResources;
use caravan_nodeagent::image::{self, layout::digest_of};
use serde_json::json;

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(content.len() as u64);
        }
        b.append_data(&mut h, path, *content).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Writes a blob into the layout; returns its digest.
fn blob(layout: &Path, bytes: &[u8]) -> String {
    let digest = digest_of(bytes);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(digest.trim_start_matches("sha256:")), bytes).unwrap();
    digest
}

/// A two-layer image (gzip, then plain tar with a whiteout), tagged `ref_name`.
fn make_layout(layout: &Path, ref_name: &str) -> String {
    fs::create_dir_all(layout).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let base = gzip(&tar_of(&[
        ("etc/", b""),
        ("etc/os-release", b"NAME=demo\n"),
        ("etc/old", b"old\n"),
        ("app/", b""),
        ("app/run.sh", b"echo run\n"),
    ]));
    let top = tar_of(&[("etc/.wh.old", b""), ("app/data", b"data\n")]);
    let base_digest = blob(layout, &base);
    let top_digest = blob(layout, &top);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/app/run.sh"],
            "Cmd": ["--serve"],
            "Env": ["PATH=/usr/bin:/bin", "MODE=demo"],
            "WorkingDir": "/app",
            "User": "1000"
        },
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .unwrap();
    let config_digest = blob(layout, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len()
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             "digest": base_digest, "size": base.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar",
             "digest": top_digest, "size": top.len()}
        ]
    }))
    .unwrap();
    let manifest_digest = blob(layout, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": ref_name}
        }]
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    manifest_digest
}

/// A `.tar.gz` of a layout directory.
fn archive(layout: &Path, out: &Path) {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", layout).unwrap();
    fs::write(out, gzip(&b.into_inner().unwrap())).unwrap();
}

#[test]
fn import_resolve_list() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("images");
    let layout = tmp.path().join("demo");
    let digest = make_layout(&layout, "1.0");

    let imported = image::import(&store, &layout, None).unwrap();
    assert_eq!(imported.name, "demo:1.0");
    assert_eq!(imported.digest, digest);
    let rootfs = imported.rootfs();
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/os-release")).unwrap(),
        "NAME=demo\n"
    );
    assert!(!rootfs.join("etc/old").exists(), "whiteout applied");
    assert_eq!(
        fs::read_to_string(rootfs.join("app/data")).unwrap(),
        "data\n"
    );
    assert!(rootfs.join("proc").is_dir() && rootfs.join("dev").is_dir());

    let (resolved_rootfs, config) = image::resolve(&store, "demo:1.0").unwrap();
    assert_eq!(resolved_rootfs, rootfs);
    assert_eq!(config.entrypoint, vec!["/app/run.sh"]);
    assert_eq!(config.cmd, vec!["--serve"]);
    assert_eq!(config.env, vec!["PATH=/usr/bin:/bin", "MODE=demo"]);
    assert_eq!(config.working_dir.as_deref(), Some("/app"));
    assert_eq!(config.user.as_deref(), Some("1000"));
    assert!(image::resolve(&store, &format!("demo@{digest}")).is_ok());

    let err = image::resolve(&store, "demo").unwrap_err();
    assert!(
        err.contains("\"demo\" not found") && err.contains("demo:1.0"),
        "{err}"
    );
    let empty = image::resolve(&tmp.path().join("nothing"), "busybox").unwrap_err();
    assert!(empty.contains("no images"), "{empty}");

    // Again: a no-op.
    let refs = store.join("refs.json");
    let before = fs::metadata(&refs).unwrap().modified().unwrap();
    let again = image::import(&store, &layout, None).unwrap();
    assert_eq!(again, imported);
    assert_eq!(fs::metadata(&refs).unwrap().modified().unwrap(), before);

    // An archive of it, under another name.
    let tgz = tmp.path().join("demo.tar.gz");
    archive(&layout, &tgz);
    let other = image::import(&store, &tgz, Some("registry:5000/team/app")).unwrap();
    assert_eq!(other.name, "registry:5000/team/app:latest");
    assert_eq!(other.digest, digest);
    assert_eq!(
        other.path, imported.path,
        "the same image shares its directory"
    );
    let names: Vec<String> = image::list(&store)
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, vec!["demo:1.0", "registry:5000/team/app:latest"]);
    assert!(image::resolve(&store, "registry:5000/team/app").is_ok());

    // Nothing temporary is left in the store.
    let leftovers: Vec<_> = fs::read_dir(&store)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".import") || n.starts_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn corrupt_or_invalid_layouts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("images");
    let layout = tmp.path().join("bad");
    make_layout(&layout, "latest");
    // Corrupt the largest blob (a layer).
    let blobs = layout.join("blobs/sha256");
    let biggest = fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    let mut bytes = fs::read(&biggest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&biggest, bytes).unwrap();
    let err = image::import(&store, &layout, None).unwrap_err();
    assert!(
        err.contains("corrupt") || err.contains("unpacking"),
        "{err}"
    );
    assert!(image::list(&store).unwrap().is_empty());
    let dir = store.join("bad");
    let left: Vec<_> = fs::read_dir(&dir)
        .map(|d| d.flatten().count())
        .into_iter()
        .collect();
    assert!(
        left.iter().all(|n| *n == 0),
        "partial image left in {}",
        dir.display()
    );

    let not_layout = tmp.path().join("empty");
    fs::create_dir(&not_layout).unwrap();
    let err = image::import(&store, &not_layout, None).unwrap_err();
    assert!(err.contains("index.json"), "{err}");
    assert!(image::import(&store, &tmp.path().join("missing.tar"), None).is_err());
    assert!(image::import(&store, &layout, Some("bad name")).is_err());
}

fn umoci_available() -> bool {
    Command::new("umoci")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && Path::new("/bin/busybox").is_file()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-image.sh")
}

#[test]
fn umoci_busybox_image_imports_and_runs() {
    if !umoci_available() {
        eprintln!(
            "note: skipped, needs umoci and /bin/busybox (apt-get install umoci busybox-static)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("busybox");
    let status = Command::new("bash")
        .arg(script())
        .arg(&out)
        .arg("latest")
        .arg("--archive")
        .status()
        .unwrap();
    assert!(status.success());
    // Idempotent.
    let status = Command::new("bash")
        .arg(script())
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());

    let store = tmp.path().join("images");
    let imported = image::import(&store, &tmp.path().join("busybox.tar"), None).unwrap();
    assert_eq!(imported.name, "busybox:latest");
    let from_dir = image::import(&store, &out, None).unwrap();
    assert_eq!(from_dir.digest, imported.digest);
    let (rootfs, config) = image::resolve(&store, "busybox").unwrap();
    assert_eq!(config.cmd, vec!["sh"]);
    assert!(config.env.contains(&"PATH=/bin".to_owned()));
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(
        rootfs
            .join("bin/sh")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );

    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not running the image, containers need root");
        return;
    }
    let state_root = tmp.path().join("state");
    let id = format!("image-{}", std::process::id());
    let stdout = tmp.path().join("stdout");
    let req = ContainerRequest {
        id: id.clone(),
        state_root: state_root.clone(),
        bundle_dir: tmp.path().join("bundle"),
        cgroups_path: format!("/caravan-test/{id}"),
        root: ContainerRoot::Rootfs {
            path: rootfs,
            image: Some(config),
            readonly: true,
        },
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo from $(readlink /bin/sh) as $(id -un)".into(),
        ],
        env: BTreeMap::new(),
        cwd: None,
        user: Some("nobody".into()),
        resources: TaskResources {
            cpu_mhz: 100,
            memory_mb: 32,
            memory_max_mb: None,
            pids_limit: 0,
        },
        mounts: Vec::new(),
        netns: None,
        capabilities: caravan_nodeagent::container::spec::DEFAULT_CAPABILITIES.to_vec(),
        stdout: OwnedFd::from(File::create(&stdout).unwrap()),
        stderr: OwnedFd::from(File::create(tmp.path().join("stderr")).unwrap()),
    };
    let pid = container::create_and_start(req).unwrap().pid;
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    container::delete(&state_root, &id).unwrap();
    for c in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = fs::remove_dir(c.path().join("caravan-test"));
    }
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 0)
    );
    assert_eq!(
        fs::read_to_string(stdout).unwrap(),
        "from busybox as nobody\n"
    );
}
