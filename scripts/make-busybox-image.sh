#!/usr/bin/env bash
# Builds an OCI image layout holding a busybox image, offline, with umoci and the host's static
# busybox (Debian: `apt-get install umoci busybox-static`).
#
#   scripts/make-busybox-image.sh OUT_DIR [TAG] [--archive]
#
# OUT_DIR becomes (or gains) an OCI image layout with the tag TAG (default `latest`); an existing
# tag is left as it is. --archive also writes OUT_DIR.tar, a tar of the layout that
# `caravan image import OUT_DIR.tar` accepts (its name then defaults to `<stem>:TAG`).
# BUSYBOX=/path/to/busybox overrides the binary (it must be statically linked).
set -euo pipefail

usage() {
    echo "usage: $0 OUT_DIR [TAG] [--archive]" >&2
    exit 2
}

out=""
tag="latest"
archive=0
positional=0
for arg in "$@"; do
    case "$arg" in
    --archive) archive=1 ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
        case $positional in
        0) out="$arg" ;;
        1) tag="$arg" ;;
        *) usage ;;
        esac
        positional=$((positional + 1))
        ;;
    esac
done
[ -n "$out" ] || usage

busybox="${BUSYBOX:-/bin/busybox}"
command -v umoci >/dev/null || {
    echo "umoci is not installed (apt-get install umoci)" >&2
    exit 1
}
[ -x "$busybox" ] || {
    echo "$busybox is missing (apt-get install busybox-static)" >&2
    exit 1
}
if ldd "$busybox" >/dev/null 2>&1; then
    echo "$busybox is dynamically linked; a static busybox is needed" >&2
    exit 1
fi

out="$(realpath -m "$out")"
mkdir -p "$(dirname "$out")"

if [ -f "$out/index.json" ] && umoci ls --layout "$out" 2>/dev/null | grep -qxF "$tag"; then
    echo "$out already has $tag"
else
    [ -f "$out/index.json" ] || umoci init --layout "$out"
    umoci new --image "$out:$tag"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    rootless=()
    [ "$(id -u)" = 0 ] || rootless=(--rootless)
    umoci unpack "${rootless[@]}" --image "$out:$tag" "$work/bundle"
    rootfs="$work/bundle/rootfs"
    mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev}
    chmod 1777 "$rootfs/tmp"
    chmod 700 "$rootfs/root"
    cp "$busybox" "$rootfs/bin/busybox"
    chmod 755 "$rootfs/bin/busybox"
    for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
    umoci repack --image "$out:$tag" "$work/bundle"
    umoci config --image "$out:$tag" \
        --config.cmd sh \
        --config.env PATH=/bin \
        --config.workingdir / \
        --architecture "$(dpkg --print-architecture 2>/dev/null || echo amd64)" \
        --os linux
    umoci gc --layout "$out"
    echo "built $out:$tag"
fi

if [ "$archive" = 1 ]; then
    tar -C "$out" -cf "$out.tar.partial" .
    mv "$out.tar.partial" "$out.tar"
    echo "wrote $out.tar"
fi
