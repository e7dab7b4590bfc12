//! Reading an OCI image layout directory: `index.json` → manifest → config and layers, every
//! blob checked against its sha256 digest.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::container::ImageConfig;

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    /// The `ref.name` (or containerd image name) annotation.
    pub ref_name: Option<String>,
    /// `os/architecture`, when the descriptor has a platform.
    pub platform: Option<String>,
}

impl Descriptor {
    fn from_json(v: &Value) -> Result<Descriptor, String> {
        let digest = v
            .get("digest")
            .and_then(Value::as_str)
            .ok_or("a descriptor without a digest")?
            .to_owned();
        hex_of(&digest)?;
        let annotation = |key: &str| {
            v.get("annotations")
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let platform = v.get("platform").map(|p| {
            format!(
                "{}/{}",
                p.get("os").and_then(Value::as_str).unwrap_or_default(),
                p.get("architecture")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )
        });
        Ok(Descriptor {
            media_type: v
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            digest,
            ref_name: annotation(ANNOTATION_REF_NAME)
                .or_else(|| annotation(ANNOTATION_CONTAINERD_NAME)),
            platform,
        })
    }

    fn is_index(&self) -> bool {
        self.media_type == MEDIA_TYPE_INDEX || self.media_type == MEDIA_TYPE_DOCKER_LIST
    }
}

/// The hex part of a `sha256:<64 hex>` digest (the only algorithm accepted; it also keeps
/// blob paths inside the layout).
pub fn hex_of(digest: &str) -> Result<&str, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("unsupported digest {digest:?} (only sha256 is supported)"))?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(hex)
    } else {
        Err(format!("invalid digest {digest:?}"))
    }
}

/// A reader that hashes what goes through it.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads the rest and returns `sha256:<hex>` of everything read.
    pub fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        let hash = self.hasher.finalize();
        Ok(format!("sha256:{}", hex(&hash)))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// An image to import: its manifest and what it references.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: String,
    pub ref_name: Option<String>,
    pub config_digest: String,
    pub layers: Vec<Descriptor>,
}

/// An OCI image layout directory.
#[derive(Debug)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub fn open(dir: &Path) -> Result<Layout, String> {
        if !dir.join("index.json").is_file() {
            return Err(format!(
                "{} is not an OCI image layout (no index.json)",
                dir.display()
            ));
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, String> {
        Ok(self.dir.join("blobs/sha256").join(hex_of(digest)?))
    }

    /// A small blob (index, manifest, config), checked against its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, String> {
        let path = self.blob_path(digest)?;
        let bytes = std::fs::read(&path).map_err(|e| format!("reading blob {digest}: {e}"))?;
        let actual = digest_of(&bytes);
        if actual != digest {
            return Err(format!("blob {digest} is corrupt (its digest is {actual})"));
        }
        Ok(bytes)
    }

    /// Opens a (large) blob; the caller checks the digest through [`Hashing`].
    pub fn open_blob(&self, digest: &str) -> Result<Hashing<File>, String> {
        let path = self.blob_path(digest)?;
        let file = File::open(&path).map_err(|e| format!("opening blob {digest}: {e}"))?;
        Ok(Hashing::new(file))
    }

    fn descriptors(json: &[u8], what: &str) -> Result<Vec<Descriptor>, String> {
        let index: Value =
            serde_json::from_slice(json).map_err(|e| format!("parsing {what}: {e}"))?;
        index
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{what} has no manifests"))?
            .iter()
            .map(Descriptor::from_json)
            .collect()
    }

    /// Picks the manifest to import. `tag` (from `--name`) selects among several by their
    /// `ref.name` annotation; nested indexes are followed, preferring this machine's platform.
    pub fn select_manifest(&self, tag: Option<&str>) -> Result<Manifest, String> {
        let index = std::fs::read(self.dir.join("index.json"))
            .map_err(|e| format!("reading index.json: {e}"))?;
        let top = Self::descriptors(&index, "index.json")?;
        let chosen = pick(&top, tag)?;
        let ref_name = chosen.ref_name.clone();
        let mut desc = chosen.clone();
        for _ in 0..4 {
            if !desc.is_index() {
                return self.manifest(&desc, ref_name);
            }
            let nested = self.read_blob(&desc.digest)?;
            let list = Self::descriptors(&nested, &format!("index {}", desc.digest))?;
            desc = pick(&list, None)?.clone();
        }
        Err("image indexes nested too deeply".to_owned())
    }

    fn manifest(&self, desc: &Descriptor, ref_name: Option<String>) -> Result<Manifest, String> {
        let bytes = self.read_blob(&desc.digest)?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("parsing manifest {}: {e}", desc.digest))?;
        let config_digest = v
            .get("config")
            .and_then(|c| c.get("digest"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("manifest {} has no config", desc.digest))?
            .to_owned();
        hex_of(&config_digest)?;
        let layers = v
            .get("layers")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(Descriptor::from_json).collect())
            .unwrap_or_else(|| Ok(Vec::new()))?;
        Ok(Manifest {
            digest: desc.digest.clone(),
            ref_name,
            config_digest,
            layers,
        })
    }

    /// The parts of the image configuration a container uses.
    pub fn image_config(&self, digest: &str) -> Result<ImageConfig, String> {
        let bytes = self.read_blob(digest)?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("parsing image config: {e}"))?;
        Ok(image_config_from(&v))
    }
}

/// Extracts entrypoint, cmd, env, working dir and user from an image configuration.
pub fn image_config_from(v: &Value) -> ImageConfig {
    let config = v.get("config").cloned().unwrap_or(Value::Null);
    let strings = |key: &str| -> Vec<String> {
        config
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let string = |key: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    ImageConfig {
        entrypoint: strings("Entrypoint"),
        cmd: strings("Cmd"),
        env: strings("Env"),
        working_dir: string("WorkingDir"),
        user: string("User"),
    }
}

/// This machine's platform in OCI terms.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// One descriptor of a list: the only one, the one named `tag`, or the one for this platform.
fn pick<'a>(list: &'a [Descriptor], tag: Option<&str>) -> Result<&'a Descriptor, String> {
    let names = || {
        list.iter()
            .map(|d| d.ref_name.as_deref().unwrap_or("<unnamed>"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(tag) = tag {
        let named: Vec<&Descriptor> = list
            .iter()
            .filter(|d| {
                d.ref_name
                    .as_deref()
                    .is_some_and(|n| n == tag || n.rsplit_once(':').is_some_and(|(_, t)| t == tag))
            })
            .collect();
        if let [one] = named.as_slice() {
            return Ok(one);
        }
    }
    match list {
        [] => Err("the image index lists no manifests".to_owned()),
        [one] => Ok(one),
        _ => {
            let platform = host_platform();
            let matching: Vec<&Descriptor> = list
                .iter()
                .filter(|d| d.platform.as_deref() == Some(platform.as_str()))
                .collect();
            match matching.as_slice() {
                [one] => Ok(one),
                _ => Err(format!(
                    "the layout holds {} images ({}); choose one with --name NAME:TAG",
                    list.len(),
                    names()
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let d = digest_of(b"hello");
        assert_eq!(
            d,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(hex_of(&d).is_ok());
        assert!(hex_of("sha256:../../etc/passwd").is_err());
        assert!(hex_of("sha512:abcd").is_err());
        assert!(hex_of(&d.to_uppercase().replace("SHA256", "sha256")).is_err());
        let mut h = Hashing::new(&b"hello"[..]);
        let mut first = [0u8; 2];
        h.read_exact(&mut first).unwrap();
        assert_eq!(h.finish().unwrap(), d);
    }

    #[test]
    fn image_config() {
        let v: Value = serde_json::from_str(
            r#"{"architecture":"amd64","config":{"Entrypoint":null,"Cmd":["sh"],
                "Env":["PATH=/bin"],"WorkingDir":"","User":"1000:1000"}}"#,
        )
        .unwrap();
        assert_eq!(
            image_config_from(&v),
            ImageConfig {
                entrypoint: vec![],
                cmd: vec!["sh".into()],
                env: vec!["PATH=/bin".into()],
                working_dir: None,
                user: Some("1000:1000".into()),
            }
        );
    }

    #[test]
    fn picks_manifests() {
        let d = |name: Option<&str>, platform: Option<&str>| Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: digest_of(name.unwrap_or("x").as_bytes()),
            ref_name: name.map(str::to_owned),
            platform: platform.map(str::to_owned),
        };
        let one = [d(Some("latest"), None)];
        assert_eq!(pick(&one, Some("other")).unwrap(), &one[0]);
        let two = [d(Some("latest"), None), d(Some("busybox:1.36"), None)];
        assert_eq!(pick(&two, Some("1.36")).unwrap(), &two[1]);
        assert_eq!(pick(&two, Some("latest")).unwrap(), &two[0]);
        let e = pick(&two, None).unwrap_err();
        assert!(e.contains("--name"), "{e}");
        let platforms = [
            d(None, Some("linux/s390x")),
            d(Some("native"), Some(&host_platform())),
        ];
        assert_eq!(pick(&platforms, None).unwrap(), &platforms[1]);
    }
}
