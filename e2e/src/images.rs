//! The busybox OCI image the container tests run: built as an image layout with
//! `scripts/make-busybox-image.sh` (busybox-static and umoci) and imported with the real
//! `caravan image import` into a test's image store.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Sandbox;

/// The repository's root (the e2e crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e is a workspace member")
        .to_path_buf()
}

/// Builds busybox in `sandbox`'s directory and imports it as `busybox:latest` into the image
/// store `images`; the import's output.
pub fn import_busybox(sandbox: &Sandbox, images: &Path) -> crate::Output {
    let layout = sandbox.dir().join("busybox-layout");
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/make-busybox-image.sh"))
        .arg(&layout)
        .arg("latest")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "make-busybox-image.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported = sandbox.caravan(&[
        "image",
        "import",
        layout.to_str().expect("a UTF-8 path"),
        "--name",
        "busybox:latest",
        "--image-dir",
        images.to_str().expect("a UTF-8 path"),
    ]);
    imported.assert_success();
    imported
}
