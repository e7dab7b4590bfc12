#!/usr/bin/env bash
# Schema-driven fuzzing of the API: schemathesis (from the test virtualenv) generates requests
# for every operation of the served OpenAPI document against a real server and fails on any
# 5xx answer, on an answer whose status code the document does not list for that operation,
# and on a request that hangs.
#
#   scripts/fuzz-api.sh [MAX_EXAMPLES]     # 3 examples per operation and phase by default
#
# CARAVAN (default: $CARGO_TARGET_DIR or target, /debug/caravan) is the binary; the server
# runs with its state in a temporary directory, removed at exit. Watches and log follows are
# left out of the document given to the fuzzer: they stream until the client goes away.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CARAVAN_TEST_VENV:-$REPO_ROOT/.venv}"
CARAVAN="${CARAVAN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/caravan}"
MAX_EXAMPLES="${1:-3}"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
"$CARAVAN" agent --server --data-dir "$work/data" --http-addr "127.0.0.1:$port" \
  --log-level warn >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  curl -sf "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$base/readyz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

curl -sf "$base/openapi/v3/apis/caravan.dev/v1" | python3 -c '
import json, sys
streaming = {"watch", "follow", "timeoutSeconds"}
doc = json.load(sys.stdin)
for item in doc["paths"].values():
    for op in item.values():
        if isinstance(op, dict) and "parameters" in op:
            op["parameters"] = [p for p in op["parameters"] if p.get("name") not in streaming]
json.dump(doc, sys.stdout)
' >"$work/openapi.json"

status=0
# Run from the scratch dir: the fuzzer keeps its example database in the working directory.
(cd "$work" && timeout 900 "$VENV/bin/st" run "$work/openapi.json" --url "$base" \
  --checks not_a_server_error,status_code_conformance \
  --max-examples "$MAX_EXAMPLES" --request-timeout 20 --workers 2 \
  --generation-deterministic --suppress-health-check all \
  >"$work/fuzz.log" 2>&1) || status=$?
# Failures of a check are what count; errors inside the fuzzer itself (its own recursion
# limits, schemas it finds slow to generate for) are reported but do not fail the run.
summary="$(sed -n '/= SUMMARY =/,$p' "$work/fuzz.log")"
echo "$summary"
if [ "$status" -eq 124 ]; then
  echo "fuzz-api: the fuzzer did not finish within 900 s (a hanging request?)" >&2
  exit 1
fi
if grep -qE '^Failures:|Server error|Undocumented HTTP status code' "$work/fuzz.log"; then
  sed -n '/= FAILURES =/,/= SUMMARY =/p' "$work/fuzz.log" | head -200 >&2
  echo "fuzz-api: the server failed a check" >&2
  exit 1
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "fuzz-api: the server died under fuzzing" >&2
  tail -50 "$work/server.log" >&2
  exit 1
fi
echo "fuzz-api: no server error, no undocumented status, no crash"
