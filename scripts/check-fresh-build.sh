#!/usr/bin/env bash
# Fails when building or running the `caravan` binary needs a Debian package that a fresh
# Debian 12 Rust image lacks (scripts/fresh-image-packages.txt): the README's first command,
# `cargo run --release -- agent --dev`, must build on a new machine. CI has more installed
# (scripts/install-test-deps.sh, and whatever earlier runs left), so a green build there proves
# nothing by itself; this check names the packages the build actually used.
#
# It relinks only the final binary (the dev profile the tests build; its dependencies and
# features are the release binary's) with `-Wl,--dependency-file`, which makes the linker write
# every file it opened: objects, archives, shared libraries and the linker scripts that
# libfoo.so often is. Then it maps to Debian packages, with `dpkg-query -S`:
#   - every such file outside the target dir, the Rust toolchain and the cargo home, following
#     symlinks hop by hop: /usr/lib/x86_64-linux-gnu/libseccomp.so is libseccomp-dev's symlink
#     to libseccomp2's libseccomp.so.2.5.4, and both packages are needed;
#   - the libraries the binary loads at run time (readelf's NEEDED, resolved with ldd);
#   - what the build scripts of this build (cargo's build-script-executed messages, so no stale
#     build dirs) report: system files in `rerun-if-changed` (bindgen lists the headers it
#     read), the .pc file of every pkg-config probe (the
#     `<NAME>_NO_PKG_CONFIG` variable that the pkg-config crate watches names it), and system
#     link-search dirs (only noted: the libraries found there show up among the linked files);
#   - the C compiler driver and archiver that the link and the cc-based build scripts run.
# Any package not in the fresh image's list fails the check, naming the file and the package.
#
# Not covered: headers that a build script's C compile includes without reporting them (cc
# does not), programs a build script runs other than cc and ar, libraries opened with dlopen
# at run time, and what a cached build script would probe differently on a machine without the
# package (it is only re-run when its inputs change).
#
# Usage: scripts/check-fresh-build.sh [cargo flags, e.g. --locked or --release]
# Honours CARGO_TARGET_DIR. Needs dpkg-query, jq, readelf and ldd (all in the fresh image).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
FRESH_LIST="$REPO_ROOT/scripts/fresh-image-packages.txt"

log() { printf '[check-fresh-build] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 2
}

for tool in cargo rustc jq dpkg-query readelf ldd realpath; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (this check runs on Debian)"
done
[ -r "$FRESH_LIST" ] || die "$FRESH_LIST missing"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/check-fresh-build.XXXXXX")"
# The extra rustc argument gives the relinked binary a unit of its own (deps/caravan-<hash>,
# with its fingerprint), so the normal build's stays fresh; a unique path per run would leave
# one such binary per run behind, so they go at exit.
cleanup() {
  local own hash dir
  if [ -s "$WORK/own-binary" ]; then
    own="$(cat "$WORK/own-binary")"
    hash="${own##*/caravan-}"
    dir="$(dirname "$(dirname "$own")")"
    rm -rf "$own" "$own.d" "$dir/.fingerprint/caravan-$hash"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Files under these roots come from the project, crates.io or the Rust toolchain, not Debian.
TARGET_DIR="${CARGO_TARGET_DIR:-$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)}"
OWN_ROOTS=()
for root in "$TARGET_DIR" "$(rustc --print sysroot)" "${CARGO_HOME:-$HOME/.cargo}" \
  "${RUSTUP_HOME:-$HOME/.rustup}" "$REPO_ROOT" "$WORK"; do
  OWN_ROOTS+=("$(realpath -ms "$root")")
  [ -e "$root" ] && OWN_ROOTS+=("$(realpath -e "$root")")
done
is_own() {
  local path="$1" root
  for root in "${OWN_ROOTS[@]}"; do
    case "$path" in "$root" | "$root"/*) return 0 ;; esac
  done
  return 1
}

# 1. Relink the binary, keeping the linker's list of input files and cargo's messages.
log "relinking caravan: cargo rustc${*:+ $*} -p caravan --bin caravan -- -C link-arg=-Wl,--dependency-file=…"
start=$SECONDS
cargo rustc "$@" -p caravan --bin caravan --message-format=json-render-diagnostics \
  -- -C "link-arg=-Wl,--dependency-file=$WORK/link.d" >"$WORK/cargo.jsonl"
jq -r 'select(.reason == "compiler-artifact" and .fresh == false)
  | "\(.target.name) (\(.target.kind | join(",")))"' "$WORK/cargo.jsonl" >"$WORK/compiled"
log "done in $((SECONDS - start))s; compiled $(wc -l <"$WORK/compiled") unit(s): $(head -n 8 "$WORK/compiled" | paste -sd' ' -)"
[ -s "$WORK/link.d" ] || die "the linker wrote no dependency file (does it support --dependency-file?)"
# The rule's target is what this link wrote: <target dir>/<profile>/deps/caravan-<hash>. It, not
# the uplifted <profile>/caravan that another cargo run may have replaced since, is checked.
BIN="$(sed -n '1s/: .*//p' "$WORK/link.d")"
case "$BIN" in
  */deps/caravan-*) [ -x "$BIN" ] || die "the relinked binary $BIN is missing" ;;
  *) die "unexpected link output in the dependency file: $BIN" ;;
esac
printf '%s\n' "$BIN" >"$WORK/own-binary"

# Each line of $WORK/uses: <path> TAB <why the build or the binary needs it>.
: >"$WORK/uses"
use() { printf '%s\t%s\n' "$1" "$2" >>"$WORK/uses"; }

# 2. Every file the linker opened (a Makefile rule: "output: input \ input ...").
sed -e 's/\\$//' "$WORK/link.d" | tr -s ' \t' '\n' | sed -e 's/:$//' | grep '^/' \
  | sort -u >"$WORK/linked" || true
while IFS= read -r f; do
  is_own "$(realpath -ms "$f")" || use "$f" "opened by the linker"
done <"$WORK/linked"

# 3. The libraries the binary loads at run time.
log "the binary needs (NEEDED): $(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd' ' -)"
if readelf -d "$BIN" | grep -Eq '\((RPATH|RUNPATH)\)'; then
  log "note: the binary has an rpath: $(readelf -d "$BIN" | grep -E '\((RPATH|RUNPATH)\)')"
fi
ldd "$BIN" >"$WORK/ldd" || die "ldd $BIN failed"
if grep -q 'not found' "$WORK/ldd"; then
  die "the binary needs libraries this machine lacks: $(grep 'not found' "$WORK/ldd" | paste -sd';' -)"
fi
while read -r name arrow path _; do
  if [ "$arrow" = "=>" ]; then
    [ "${path:0:1}" = "/" ] && use "$path" "loaded at run time ($name)"
  elif [ "${name:0:1}" = "/" ]; then
    use "$name" "loaded at run time (interpreter)"
  fi
done <"$WORK/ldd"

# 4. What this build's build scripts report (fresh ones are replayed by cargo too).
pc_dirs="${PKG_CONFIG_PATH:-}:$(pkg-config --variable pc_path pkg-config 2>/dev/null || true)"
envify() { printf '%s' "$1" | tr '[:lower:]-' '[:upper:]_'; }
jq -r 'select(.reason == "build-script-executed")
  | [.package_id, .out_dir, (.linked_libs | join(" ")), (.linked_paths | join(" "))] | @tsv' \
  "$WORK/cargo.jsonl" >"$WORK/build-scripts"
: >"$WORK/link-libs"
while IFS=$'\t' read -r id out_dir libs paths; do
  # "registry+…#zstd-sys@2.1.2", "path+file:///…/fakesys#0.1.0" or (old cargo) "zstd-sys 2.1.2 (…)"
  case "$id" in
    *"#"*@*) crate="${id##*#}" ;;
    *"#"*) crate="$(basename "${id%#*}")@${id##*#}" ;;
    *) crate="${id%% *}" ;;
  esac
  for lib in $libs; do
    name="${lib#*=}"
    printf '%s\t%s\n' "${name%%:*}" "$crate" >>"$WORK/link-libs"
  done
  for p in $paths; do
    dir="$(realpath -ms "${p#*=}")"
    is_own "$dir" || log "note: the build script of $crate adds link search dir $dir"
  done
  output="$(dirname "$out_dir")/output"
  [ -r "$output" ] || continue
  sed -n 's/^cargo::\{0,1\}rerun-if-changed=//p' "$output" | while IFS= read -r f; do
    if [ "${f:0:1}" = "/" ] && [ -f "$f" ] && ! is_own "$(realpath -ms "$f")"; then
      use "$f" "read by the build script of $crate"
    fi
  done
  sed -n 's/^cargo::\{0,1\}rerun-if-env-changed=\(.*\)_NO_PKG_CONFIG$/\1/p' "$output" \
    | while IFS= read -r probed; do
      found=""
      IFS=: read -r -a dirs <<<"$pc_dirs"
      for d in "${dirs[@]}"; do
        [ -n "$d" ] || continue
        for pc in "$d"/*.pc; do
          [ -f "$pc" ] || continue
          if [ "$(envify "$(basename "$pc" .pc)")" = "$probed" ]; then
            use "$pc" "found by the pkg-config probe of the build script of $crate"
            found=1
          fi
        done
      done
      [ -n "$found" ] || log "note: the build script of $crate probes pkg-config for $probed (nothing here)"
    done
done <"$WORK/build-scripts"
log "checked the reports of $(wc -l <"$WORK/build-scripts") build scripts; native libraries they link: $(cut -f1 "$WORK/link-libs" | sort -u | paste -sd' ' -)"

# 5. The tools: the link runs cc; cc-based build scripts run cc and ar.
for tool in cc ar; do
  path="$(command -v "$tool")" || die "$tool not found"
  use "$path" "run by the build ($tool)"
done

# 6. Map each file to its packages. A file counts with every hop of its symlink chain (a -dev
# package often ships only the libfoo.so symlink) and its /usr-merged twin (dpkg records the
# path the package ships, e.g. /lib/x86_64-linux-gnu/libc.so.6).
twins() {
  printf '%s\n' "$1"
  case "$1" in
    /usr/lib/* | /usr/lib64/* | /usr/bin/* | /usr/sbin/*) printf '%s\n' "${1#/usr}" ;;
    /lib/* | /lib64/* | /bin/* | /sbin/*) printf '%s\n' "/usr$1" ;;
  esac
}
pair() { while IFS= read -r c; do printf '%s\t%s\n' "$1" "$c"; done; }
cut -f1 "$WORK/uses" | sort -u | while IFS= read -r f; do
  hop="$(realpath -ms "$f")"
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    twins "$hop" | pair "$f"
    [ -L "$hop" ] || break
    target="$(readlink "$hop")"
    [ "${target:0:1}" = "/" ] || target="$(dirname "$hop")/$target"
    hop="$(realpath -ms "$target")"
  done
  twins "$(realpath -m "$f")" | pair "$f"
done | sort -u >"$WORK/candidates"
cut -f2 "$WORK/candidates" | sort -u | xargs -d '\n' dpkg-query -S 2>/dev/null \
  | grep -v '^diversion by' >"$WORK/dpkg" || true
# "pkg1:amd64, pkg2: /path" → /path TAB pkg1 / /path TAB pkg2
awk '{
  i = index($0, ": /"); path = substr($0, i + 2); n = split(substr($0, 1, i - 1), p, ", ")
  for (k = 1; k <= n; k++) { sub(/:.*/, "", p[k]); print path "\t" p[k] }
}' "$WORK/dpkg" | sort -u >"$WORK/owners"
# file TAB package, for every owned candidate of every file.
awk -F'\t' 'NR == FNR { own[$1] = own[$1] " " $2; next }
  ($2 in own) { n = split(own[$2], p, " "); for (k = 1; k <= n; k++) print $1 "\t" p[k] }' \
  "$WORK/owners" "$WORK/candidates" | sort -u >"$WORK/file-packages"

# 7. Judge.
grep -v '^#' "$FRESH_LIST" | sed '/^$/d' | sort -u >"$WORK/fresh"
test_deps="$(scripts/install-test-deps.sh --list-apt-packages 2>/dev/null | paste -sd' ' - || true)"
failures=0
fail() {
  failures=$((failures + 1))
  log "FAIL: $*"
}
why_of() { awk -F'\t' -v f="$1" '$1 == f { print $2 }' "$WORK/uses" | sort -u | paste -sd';' -; }

# The table of what was used, for the log, then the verdicts.
cut -f1 "$WORK/uses" | sort -u | while IFS= read -r f; do
  printf '  %-56s %-28s %s\n' "$f" \
    "$(awk -F'\t' -v f="$f" '$1 == f { print $2 }' "$WORK/file-packages" | paste -sd',' -)" \
    "$(why_of "$f")"
done >&2

while IFS= read -r f; do
  fail "$f ($(why_of "$f")) belongs to no Debian package, so nothing says a fresh image has it"
done < <(comm -23 <(cut -f1 "$WORK/uses" | sort -u) <(cut -f1 "$WORK/file-packages" | sort -u))
while IFS=$'\t' read -r f pkg; do
  grep -qxF "$pkg" "$WORK/fresh" && continue
  why="$(why_of "$f")"
  base="$(basename "$f")"
  by=""
  if [[ "$base" == lib*.so* || "$base" == lib*.a ]]; then
    by="$(awk -F'\t' -v b="${base#lib}" 'index(b, $1 ".") == 1 { print $2 }' "$WORK/link-libs" \
      | sort -u | paste -sd' ' -)"
  fi
  [ -z "$by" ] || why="$why; the build script of $by asks for it"
  extra=""
  case " $test_deps " in
    *" $pkg "*) extra=" (scripts/install-test-deps.sh installs it, which is why CI has it)" ;;
  esac
  fail "$f ($why) comes from Debian package $pkg, which a fresh Debian 12 Rust image lacks$extra"
done <"$WORK/file-packages"

packages="$(cut -f2 "$WORK/file-packages" | sort -u | paste -sd' ' -)"
if [ "$failures" -gt 0 ]; then
  log "$failures problem(s): a new machine cannot build or run caravan as the README says."
  log "Build without that library (turn off the crate feature that links it, or use the crate's"
  log "vendored or static build of it); scripts/fresh-image-packages.txt lists the image, not wishes."
  exit 1
fi
log "ok: $(cut -f1 "$WORK/uses" | sort -u | wc -l) system files used by the build and the binary, all from the fresh image's packages: $packages"
