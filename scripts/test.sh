#!/usr/bin/env bash
# Runs every check and test of the workspace, stopping at the first failing step:
#   test dependencies (kubectl, Python client) → rustfmt → clippy → rustdoc → build the binaries →
#   check that the binary needs no Debian package a fresh machine lacks → cargo nextest (unit,
#   integration and end-to-end tests) → schema-driven API fuzzing.
# Extra arguments go to `cargo nextest run`, e.g. `scripts/test.sh -E 'test(kubectl)'`.
# Honours CARGO_TARGET_DIR; the end-to-end tests find `caravan` in that target dir.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

START=$SECONDS
CURRENT_STEP=""
step() {
  CURRENT_STEP="$*"
  printf '\n==> [%4ss] %s\n' "$((SECONDS - START))" "$*"
}
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '\n==> FAILED (exit %s) at step: %s, after %ss\n' "$rc" "$CURRENT_STEP" "$((SECONDS - START))" >&2
  fi
}
trap on_exit EXIT

CARGO_FLAGS=()
if [ "${CI:-}" = "true" ]; then
  # A CI run must build exactly what Cargo.lock pins.
  CARGO_FLAGS+=(--locked)
fi
echo "target dir: ${CARGO_TARGET_DIR:-$REPO_ROOT/target}"

step "install test dependencies (scripts/install-test-deps.sh)"
KUBECTL="$(scripts/install-test-deps.sh </dev/null | tail -n 1)"
export KUBECTL
export PATH="$(dirname "$KUBECTL"):$PATH"

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy "${CARGO_FLAGS[@]}" --workspace --all-targets -- -D warnings

step "cargo doc --workspace --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc "${CARGO_FLAGS[@]}" --workspace --no-deps

step "cargo build --workspace --bins, and the runtime's example controller"
cargo build "${CARGO_FLAGS[@]}" --workspace --bins
cargo build "${CARGO_FLAGS[@]}" -p caravan-runtime --examples

step "the binary builds on a fresh machine (scripts/check-fresh-build.sh)"
scripts/check-fresh-build.sh "${CARGO_FLAGS[@]}"

step "cargo nextest run --workspace"
cargo nextest run "${CARGO_FLAGS[@]}" --workspace --no-fail-fast \
  --tool-config-file "caravan-scripts:$REPO_ROOT/scripts/nextest.toml" "$@"

step "API fuzzing against a real server (scripts/fuzz-api.sh)"
CARAVAN_TEST_VENV="${CARAVAN_TEST_VENV:-$REPO_ROOT/.venv}" scripts/fuzz-api.sh

step "all checks passed"
