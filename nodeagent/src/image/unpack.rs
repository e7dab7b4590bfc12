//! Applying image layers (tar, optionally gzip-compressed) onto a root filesystem, with OCI
//! whiteouts (`.wh.NAME` removes NAME from lower layers, `.wh..wh..opq` empties a directory of
//! them). Entries are extracted with tar's `unpack_in`, which refuses `..` and writes through
//! symbolic links that leave the root; whiteouts get the same checks here.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;
use tar::{Archive, EntryType};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Wraps `reader` in a gzip decoder when its first bytes are gzip's magic; refuses zstd.
pub fn decompressed<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(reader)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(invalid(
            "zstd-compressed layers are not supported".to_owned(),
        ))
    } else {
        Ok(Box::new(reader))
    }
}

/// An archive path made relative: `/`, `.` dropped; `..` refused.
fn relative(path: &Path) -> io::Result<PathBuf> {
    let mut rel = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => rel.push(p),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(invalid(format!(
                    "layer entry {} escapes the root",
                    path.display()
                )));
            }
        }
    }
    Ok(rel)
}

/// The real location of `root/rel` (symbolic links resolved), when it exists; an error when it
/// resolves outside `root` (which must be canonical).
fn resolve_in(root: &Path, rel: &Path) -> io::Result<Option<PathBuf>> {
    let path = root.join(rel);
    match path.canonicalize() {
        Ok(real) if real.starts_with(root) => Ok(Some(real)),
        Ok(real) => Err(invalid(format!(
            "{} resolves to {}, outside the image's root",
            rel.display(),
            real.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a file, symbolic link (not its target) or directory tree.
fn remove_any(path: &Path) -> io::Result<()> {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Unpacks one layer (a tar stream, maybe gzip-compressed) onto `rootfs`. Device nodes are
/// skipped; ownership is kept when running as root.
pub fn apply_layer(reader: impl Read, rootfs: &Path) -> io::Result<()> {
    let root = rootfs.canonicalize()?;
    let mut archive = Archive::new(decompressed(reader)?);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    archive.set_preserve_ownerships(nix::unistd::geteuid().is_root());

    // What this layer wrote, which an opaque whiteout of the same layer must keep.
    let mut written: HashSet<PathBuf> = HashSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let rel = relative(&entry.path()?)?;
        let Some(name) = rel.file_name().map(OsStr::to_owned) else {
            continue; // the root itself
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let name_str = name.to_string_lossy();

        if let Some(victim) = name_str.strip_prefix(WHITEOUT_PREFIX) {
            let Some(parent) = resolve_in(&root, parent_rel)? else {
                continue; // nothing below to hide
            };
            if name_str == OPAQUE_WHITEOUT {
                for child in fs::read_dir(&parent)? {
                    let child = child?.path();
                    if !written.contains(&child) {
                        remove_any(&child)?;
                    }
                }
            } else if victim.is_empty() || victim == "." || victim == ".." {
                return Err(invalid(format!("invalid whiteout {}", rel.display())));
            } else {
                remove_any(&parent.join(victim))?;
            }
            continue;
        }

        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::Char | EntryType::Block | EntryType::Fifo) {
            tracing::debug!(path = %rel.display(), "skipping a device node in an image layer");
            continue;
        }
        // A directory replacing a file (or the reverse) across layers.
        if let Some(parent) = resolve_in(&root, parent_rel)? {
            let target = parent.join(&name);
            if let Ok(meta) = target.symlink_metadata() {
                if kind.is_dir() && !meta.is_dir() {
                    fs::remove_file(&target)?;
                } else if !kind.is_dir() && meta.is_dir() {
                    fs::remove_dir_all(&target)?;
                }
            }
        }
        if !entry.unpack_in(&root)? {
            return Err(invalid(format!(
                "layer entry {} escapes the root",
                rel.display()
            )));
        }
        if let Some(parent) = resolve_in(&root, parent_rel)? {
            written.insert(parent.join(&name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn header() -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, content: &[u8]) {
        let mut h = header();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        b.append_data(&mut h, path, content).unwrap();
    }

    fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
        let mut h = header();
        h.set_size(0);
        h.set_mode(0o755);
        h.set_entry_type(EntryType::Directory);
        b.append_data(&mut h, path, io::empty()).unwrap();
    }

    fn symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut h = header();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_entry_type(EntryType::Symlink);
        b.append_link(&mut h, path, target).unwrap();
    }

    /// A raw header with a path that `Builder` would refuse.
    fn raw_file(b: &mut tar::Builder<Vec<u8>>, path: &str) {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn layers_and_whiteouts() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        fs::create_dir(&root).unwrap();

        let base = layer(|b| {
            dir(b, "etc/");
            file(b, "etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
            file(b, "etc/motd", b"hi\n");
            dir(b, "opt/app/");
            file(b, "opt/app/old", b"old");
            dir(b, "var/cache/");
            file(b, "var/cache/a", b"a");
            symlink(b, "bin", "usr/bin");
            dir(b, "usr/bin/");
            file(b, "usr/bin/tool", b"#!");
            file(b, "replaced", b"file");
        });
        apply_layer(&base[..], &root).unwrap();
        assert!(root.join("bin/tool").is_file());

        let top = gzip(&layer(|b| {
            file(b, "etc/.wh.motd", b"");
            dir(b, "opt/app/");
            file(b, "opt/app/.wh..wh..opq", b"");
            file(b, "opt/app/new", b"new");
            file(b, "var/.wh.cache", b"");
            file(b, "bin/extra", b"#!"); // through the relative symlink: fine
            dir(b, "replaced/");
        }));
        apply_layer(&top[..], &root).unwrap();
        assert!(root.join("etc/passwd").is_file());
        assert!(!root.join("etc/motd").exists());
        assert!(!root.join("opt/app/old").exists());
        assert_eq!(fs::read(root.join("opt/app/new")).unwrap(), b"new");
        assert!(!root.join("var/cache").exists());
        assert!(root.join("var").is_dir());
        assert!(root.join("usr/bin/extra").is_file());
        assert!(root.join("replaced").is_dir());
    }

    #[test]
    fn refuses_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("victim"), b"keep").unwrap();
        let root = tmp.path().join("rootfs");
        fs::create_dir(&root).unwrap();

        // `..` in a path.
        let dotdot = layer(|b| raw_file(b, "../outside/evil"));
        assert!(apply_layer(&dotdot[..], &root).is_err());
        assert!(!outside.join("evil").exists());

        // An absolute symlink, then a file written through it.
        let through = layer(|b| {
            symlink(b, "escape", outside.to_str().unwrap());
            file(b, "escape/evil", b"x");
        });
        assert!(apply_layer(&through[..], &root).is_err());
        assert!(!outside.join("evil").exists());

        // A whiteout through the same symlink.
        let whiteout = layer(|b| file(b, "escape/.wh.victim", b""));
        assert!(apply_layer(&whiteout[..], &root).is_err());
        assert!(outside.join("victim").exists());

        // zstd is refused clearly.
        let e = apply_layer(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0][..], &root).unwrap_err();
        assert!(e.to_string().contains("zstd"));
    }
}
