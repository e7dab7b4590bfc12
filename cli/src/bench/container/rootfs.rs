//! The benchmark's root filesystem: a static busybox and its applets.

use super::*;

/// The effective uid, from `/proc/self/status`.
pub(super) fn effective_uid() -> anyhow::Result<u32> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
        .context("no effective uid in /proc/self/status")
}

/// A busybox root filesystem: the static binary, one symbolic link per applet, `/etc/passwd`
/// and `/etc/group`. Returns the number of applets.
pub(super) fn build_rootfs(rootfs: &Path) -> anyhow::Result<usize> {
    let busybox = Path::new(BUSYBOX);
    ensure!(
        busybox.is_file(),
        "{BUSYBOX} is missing (apt-get install busybox-static)"
    );
    ensure!(
        is_static_elf(busybox)?,
        "{BUSYBOX} is dynamically linked; a static busybox is needed (apt-get install busybox-static)"
    );
    for dir in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox"))
        .with_context(|| format!("copying {BUSYBOX}"))?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .with_context(|| format!("{BUSYBOX} --list"))?;
    let mut applets = 0;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))?;
        applets += 1;
    }
    ensure!(rootfs.join("bin/sh").exists(), "{BUSYBOX} has no sh applet");
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(applets)
}

/// Whether an ELF file has no program interpreter (`PT_INTERP`), i.e. is statically linked.
pub(super) fn is_static_elf(path: &Path) -> anyhow::Result<bool> {
    let mut head = vec![0u8; 64 * 1024];
    let n = File::open(path)?.read(&mut head)?;
    head.truncate(n);
    elf_is_static(&head).with_context(|| format!("{} is not a 64-bit ELF file", path.display()))
}

/// `Some(true)` for a little-endian 64-bit ELF image without `PT_INTERP` in its program
/// headers (which must lie in `head`); `None` when it is not one.
pub(super) fn elf_is_static(head: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    if head.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(head.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(head.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(head.get(o..o + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        if u32_at(phoff + i * phentsize)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}
