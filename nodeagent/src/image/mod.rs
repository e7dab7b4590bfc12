//! The local OCI image store, shared by `caravan image import` and the agent's `oci` driver.
//!
//! Layout under the image directory (`CARAVAN_IMAGE_DIR`, default `/var/lib/caravan/images`):
//!
//! ```text
//! refs.json                      {"busybox:latest": {"digest": "sha256:…", "dir": "busybox/<hex>"}}
//! <repo>/<manifest hex>/rootfs/  the unpacked layers (shared read-only by containers)
//! <repo>/<manifest hex>/config.json   the ImageConfig (entrypoint, cmd, env, workingDir, user)
//! .lock                          serialises imports
//! ```
//!
//! An image directory appears complete or not at all (unpacked aside, then renamed), and
//! `refs.json` is replaced atomically.

pub mod layout;
pub mod unpack;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::container::ImageConfig;
use layout::Layout;

/// Environment variable naming the image directory.
pub const IMAGE_DIR_ENV: &str = "CARAVAN_IMAGE_DIR";
/// The image directory when [`IMAGE_DIR_ENV`] is unset.
pub const DEFAULT_IMAGE_DIR: &str = "/var/lib/caravan/images";

const REFS_FILE: &str = "refs.json";
const CONFIG_FILE: &str = "config.json";
const ROOTFS_DIR: &str = "rootfs";

/// `$CARAVAN_IMAGE_DIR`, or `/var/lib/caravan/images`.
pub fn default_image_dir() -> PathBuf {
    std::env::var_os(IMAGE_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_IMAGE_DIR))
}

/// An imported image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// `repository:tag`, e.g. `busybox:latest`.
    pub name: String,
    /// Digest of the image's manifest, `sha256:…`.
    pub digest: String,
    /// The image's directory, holding `rootfs/` and `config.json`.
    pub path: PathBuf,
}

impl ImageRef {
    /// The unpacked root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.path.join(ROOTFS_DIR)
    }

    /// Reads the image's configuration.
    pub fn config(&self) -> Result<ImageConfig, String> {
        let path = self.path.join(CONFIG_FILE);
        let bytes = fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("parsing {}: {e}", path.display()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RefEntry {
    digest: String,
    /// Relative to the image directory.
    dir: PathBuf,
}

type Refs = BTreeMap<String, RefEntry>;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub repository: String,
    /// Tag (`latest` when absent); ignored when `digest` is set.
    pub tag: String,
    pub digest: Option<String>,
}

impl Reference {
    /// `repository:tag`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// Parses `repo`, `repo:tag`, `host:port/repo:tag` or `repo@sha256:…`; a missing tag is
/// `latest`, and `docker.io/library/` is dropped (`docker.io/library/busybox` is `busybox`).
pub fn parse_reference(reference: &str) -> Result<Reference, String> {
    let bad = |why: &str| format!("invalid image reference {reference:?}: {why}");
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => {
            layout::hex_of(d).map_err(|e| bad(&e))?;
            (r, Some(d.to_owned()))
        }
        None => (reference, None),
    };
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (repository, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], &rest[last_slash + i + 1..]),
        None => (rest, "latest"),
    };
    let repository = repository
        .strip_prefix("docker.io/library/")
        .or_else(|| repository.strip_prefix("docker.io/"))
        .unwrap_or(repository);
    if repository.is_empty() {
        return Err(bad("empty name"));
    }
    if !repository
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/:".contains(&b))
        || repository
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(bad("bad characters in the name"));
    }
    if tag.is_empty()
        || tag.len() > 128
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(bad("bad tag"));
    }
    Ok(Reference {
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        digest,
    })
}

/// A directory name for a repository.
fn safe_dir_name(repository: &str) -> String {
    let mut s: String = repository
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with('.') {
        s.replace_range(0..1, "_");
    }
    s
}

/// `busybox` from `/x/busybox.tar.gz`, `/x/busybox.oci.tgz` or the directory `/x/busybox/`.
fn file_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stem = name.as_str();
    for suffix in [".gz", ".tgz", ".tar", ".oci"] {
        stem = stem.strip_suffix(suffix).unwrap_or(stem);
    }
    let stem: String = stem
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches(|c| c == '.' || c == '-').to_owned();
    if stem.is_empty() {
        "image".to_owned()
    } else {
        stem
    }
}

/// The name to record: `--name`, else the index's `ref.name` annotation (a bare tag such as
/// `latest` becomes `<file stem>:latest`), else `<file stem>:latest`.
fn import_name(
    path: &Path,
    requested: Option<&Reference>,
    annotation: Option<&str>,
) -> Result<Reference, String> {
    if let Some(r) = requested {
        return Ok(r.clone());
    }
    let stem = file_stem(path);
    match annotation {
        Some(a) if a.contains(':') || a.contains('/') => parse_reference(a),
        Some(tag) => parse_reference(&format!("{stem}:{tag}")),
        None => parse_reference(&format!("{stem}:latest")),
    }
}

/// Holds the store's lock while alive.
struct StoreLock {
    _flock: nix::fcntl::Flock<File>,
}

fn lock(image_dir: &Path) -> Result<StoreLock, String> {
    fs::create_dir_all(image_dir).map_err(|e| format!("creating {}: {e}", image_dir.display()))?;
    let path = image_dir.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map(|flock| StoreLock { _flock: flock })
        .map_err(|(_, e)| format!("locking {}: {e}", path.display()))
}

fn read_refs(image_dir: &Path) -> Result<Refs, String> {
    let path = image_dir.join(REFS_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| format!("parsing {}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Refs::new()),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Writes `path` atomically (temporary file, fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("writing {}: {e}", path.display())
    })
}

fn write_refs(image_dir: &Path, refs: &Refs) -> Result<(), String> {
    let mut json = serde_json::to_vec_pretty(refs).map_err(|e| e.to_string())?;
    json.push(b'\n');
    write_atomic(&image_dir.join(REFS_FILE), &json)
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path, prefix: &str) -> Result<TempDir, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = parent.join(format!(".{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Imports an OCI image layout (a directory, or a tar archive of one, maybe gzip-compressed)
/// into the store under `name` (see `import_name` for the default). Importing an image that
/// is already there only (re)records its name.
pub fn import(image_dir: &Path, path: &Path, name: Option<&str>) -> Result<ImageRef, String> {
    let requested = name.map(parse_reference).transpose()?;
    if requested.as_ref().is_some_and(|r| r.digest.is_some()) {
        return Err("--name takes NAME[:TAG], not a digest".to_owned());
    }
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let image_dir = absolute(image_dir)?;
    let _lock = lock(&image_dir)?;

    let extracted;
    let layout_dir = if meta.is_dir() {
        path.to_path_buf()
    } else {
        extracted = TempDir::new(&image_dir, "import")?;
        extract_archive(path, &extracted.0)?;
        extracted.0.clone()
    };
    let layout = Layout::open(&layout_dir)?;
    let manifest = layout.select_manifest(requested.as_ref().map(|r| r.tag.as_str()))?;
    let reference = import_name(path, requested.as_ref(), manifest.ref_name.as_deref())?;

    let mut refs = read_refs(&image_dir)?;
    // The same image under another name shares its directory.
    let existing = refs
        .values()
        .find(|e| e.digest == manifest.digest && image_dir.join(&e.dir).is_dir())
        .map(|e| e.dir.clone());
    let rel_dir = match existing {
        Some(dir) => dir,
        None => {
            let hex = layout::hex_of(&manifest.digest)?;
            let repo = safe_dir_name(&reference.repository);
            let component = |what, name| {
                crate::paths::component(what, name)
                    .map(PathBuf::from)
                    .map_err(|e| e.to_string())
            };
            component("image directory", &repo)?.join(component("image digest", hex)?)
        }
    };
    let final_dir = image_dir.join(&rel_dir);
    if !final_dir.is_dir() {
        unpack_image(&layout, &manifest, &final_dir)?;
    }

    let entry = RefEntry {
        digest: manifest.digest.clone(),
        dir: rel_dir,
    };
    let name = reference.name();
    if refs.get(&name) != Some(&entry) {
        refs.insert(name.clone(), entry);
        write_refs(&image_dir, &refs)?;
    }
    Ok(ImageRef {
        name,
        digest: manifest.digest,
        path: final_dir,
    })
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Extracts a layout archive (tar, maybe gzip-compressed) into `dest`.
fn extract_archive(path: &Path, dest: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let reader = unpack::decompressed(file).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_preserve_ownerships(false);
    archive
        .unpack(dest)
        .map_err(|e| format!("extracting {}: {e}", path.display()))
}

/// Unpacks the layers and writes the config beside them, in a temporary directory renamed to
/// `final_dir` at the end.
fn unpack_image(
    layout: &Layout,
    manifest: &layout::Manifest,
    final_dir: &Path,
) -> Result<(), String> {
    let parent = final_dir
        .parent()
        .ok_or("an image directory has a parent")?;
    let partial = TempDir::new(parent, "partial")?;
    let rootfs = partial.0.join(ROOTFS_DIR);
    fs::create_dir(&rootfs).map_err(|e| format!("creating {}: {e}", rootfs.display()))?;
    fs::set_permissions(&rootfs, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", rootfs.display()))?;
    for layer in &manifest.layers {
        let mut blob = layout.open_blob(&layer.digest)?;
        unpack::apply_layer(&mut blob, &rootfs)
            .map_err(|e| format!("unpacking layer {}: {e}", layer.digest))?;
        let actual = blob
            .finish()
            .map_err(|e| format!("reading layer {}: {e}", layer.digest))?;
        if actual != layer.digest {
            return Err(format!(
                "layer {} is corrupt (its digest is {actual})",
                layer.digest
            ));
        }
    }
    // Mount points, so containers never have to create them in the shared root filesystem.
    for dir in ["proc", "sys", "dev"] {
        let path = rootfs.join(dir);
        if path.symlink_metadata().is_err() {
            fs::create_dir(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        }
    }
    let config = layout.image_config(&manifest.config_digest)?;
    let json = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
    fs::write(partial.0.join(CONFIG_FILE), json).map_err(|e| format!("writing config: {e}"))?;
    fs::rename(&partial.0, final_dir)
        .map_err(|e| format!("moving the image to {}: {e}", final_dir.display()))?;
    Ok(())
}

/// Every imported image, by name. A record whose directory is not inside the store (`refs.json`
/// edited by hand) is left out.
pub fn list(image_dir: &Path) -> Result<Vec<ImageRef>, String> {
    let refs = read_refs(image_dir)?;
    Ok(refs
        .into_iter()
        .filter(|(name, entry)| {
            let inside = entry.dir.components().next().is_some()
                && entry
                    .dir
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                tracing::warn!(image = %name, dir = %entry.dir.display(), "ignoring an image recorded outside the store");
            }
            inside
        })
        .map(|(name, entry)| ImageRef {
            name,
            digest: entry.digest,
            path: image_dir.join(entry.dir),
        })
        .collect())
}

/// Finds an image by `name`, `name:tag` (a missing tag is `latest`) or `name@sha256:…`; returns
/// its root filesystem and configuration.
pub fn resolve(image_dir: &Path, reference: &str) -> Result<(PathBuf, ImageConfig), String> {
    let image = find(image_dir, reference)?;
    let rootfs = image.rootfs();
    if !rootfs.is_dir() {
        return Err(format!(
            "image {} is recorded but {} is missing; import it again",
            image.name,
            rootfs.display()
        ));
    }
    Ok((rootfs, image.config()?))
}

/// The [`ImageRef`] a reference names.
pub fn find(image_dir: &Path, reference: &str) -> Result<ImageRef, String> {
    let wanted = parse_reference(reference)?;
    let images = list(image_dir)?;
    let found = images.iter().find(|i| match &wanted.digest {
        Some(d) => {
            &i.digest == d
                && parse_reference(&i.name).is_ok_and(|r| r.repository == wanted.repository)
        }
        None => i.name == wanted.name(),
    });
    match found {
        Some(i) => Ok(i.clone()),
        None if images.is_empty() => Err(format!(
            "image {reference:?} not found: no images in {} (import one with `caravan image import`)",
            image_dir.display()
        )),
        None => Err(format!(
            "image {reference:?} not found in {} (it has: {})",
            image_dir.display(),
            images
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = parse_reference("busybox").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_str()),
            ("busybox", "latest")
        );
        assert_eq!(
            parse_reference("busybox:1.36").unwrap().name(),
            "busybox:1.36"
        );
        assert_eq!(
            parse_reference("docker.io/library/busybox:1.36")
                .unwrap()
                .name(),
            "busybox:1.36"
        );
        assert_eq!(
            parse_reference("registry:5000/team/app").unwrap().name(),
            "registry:5000/team/app:latest"
        );
        let digest = layout::digest_of(b"x");
        let r = parse_reference(&format!("app@{digest}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        for bad in ["", ":tag", "a b", "../x", "x:", "x@sha256:zz", "a//b"] {
            assert!(parse_reference(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn names() {
        assert_eq!(file_stem(Path::new("/x/busybox.tar.gz")), "busybox");
        assert_eq!(file_stem(Path::new("/x/Busy Box.oci.tgz")), "busy-box");
        assert_eq!(file_stem(Path::new("/x/layout/")), "layout");
        assert_eq!(
            safe_dir_name("registry:5000/team/app"),
            "registry_5000_team_app"
        );
        assert_eq!(safe_dir_name(".hidden"), "_hidden");
        let p = Path::new("/x/busybox.tar");
        assert_eq!(
            import_name(p, None, Some("latest")).unwrap().name(),
            "busybox:latest"
        );
        assert_eq!(
            import_name(p, None, Some("docker.io/library/alpine:3"))
                .unwrap()
                .name(),
            "alpine:3"
        );
        assert_eq!(import_name(p, None, None).unwrap().name(), "busybox:latest");
        let requested = parse_reference("mine").unwrap();
        assert_eq!(
            import_name(p, Some(&requested), Some("latest"))
                .unwrap()
                .name(),
            "mine:latest"
        );
    }

    #[test]
    fn records_outside_the_store_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |d: &str| RefEntry {
            digest: layout::digest_of(b"x"),
            dir: PathBuf::from(d),
        };
        let refs: Refs = [
            ("good:latest".to_string(), entry("good/abc")),
            ("up:latest".to_string(), entry("../../etc")),
            ("abs:latest".to_string(), entry("/etc")),
            ("empty:latest".to_string(), entry("")),
        ]
        .into_iter()
        .collect();
        write_refs(dir.path(), &refs).unwrap();
        let names: Vec<String> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["good:latest"]);
        assert!(find(dir.path(), "up").is_err());
    }

    #[test]
    fn default_dir() {
        // Only checks the fallback shape; the variable may be set by the environment.
        assert!(default_image_dir().is_absolute() || std::env::var_os(IMAGE_DIR_ENV).is_some());
    }
}
