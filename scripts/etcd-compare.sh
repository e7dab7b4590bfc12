#!/usr/bin/env bash
# Caravan and etcd side by side, with the same load generator (`caravan bench api` and
# `caravan bench watch`, which drive etcd through its v3 JSON gateway with `--etcd`), the
# same documents, the same concurrency and the same durability (both fsync every
# acknowledged write; neither is tuned), one member and three members on loopback.
#
#   scripts/etcd-compare.sh [api|watch|all] [1|3|both]
#
# Environment (defaults in brackets): CARAVAN [target/release/caravan], CLIENTS [256],
# SIZE [1KiB], DURATION [15s], OPS [create,update,get,list], WATCHERS [10000],
# EVENTS [200], RATE [20], DIR [/tmp/caravan-etcd-compare].
#
# It installs Debian's etcd-server (3.4) when `etcd` is missing (root), runs each system
# alone on the machine in turn, and prints every figure and the ratio Caravan/etcd.
set -euo pipefail

WHAT="${1:-all}"
MEMBERS="${2:-both}"
CARAVAN="${CARAVAN:-target/release/caravan}"
CLIENTS="${CLIENTS:-256}"
SIZE="${SIZE:-1KiB}"
DURATION="${DURATION:-15s}"
OPS="${OPS:-create,update,get,list}"
WATCHERS="${WATCHERS:-10000}"
EVENTS="${EVENTS:-200}"
RATE="${RATE:-20}"
DIR="${DIR:-/tmp/caravan-etcd-compare}"
SCRIPTS="$(cd "$(dirname "$0")" && pwd)"

if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
  echo "installing etcd-server and etcd-client (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server etcd-client >/dev/null
fi
# The Debian package may start its own member on the default ports; these runs use others.
[ -x "$CARAVAN" ] || { echo "no Caravan binary at $CARAVAN (cargo build --release -p caravan)" >&2; exit 1; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
rm -rf "$DIR"
mkdir -p "$DIR"
RESULTS="$DIR/results"
: >"$RESULTS"

wait_for() { # url
  for _ in $(seq 1 150); do
    curl -sf "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "nothing answered at $1" >&2
  return 1
}

kill_all() {
  for pid in "$DIR"/*.pid; do
    [ -e "$pid" ] || continue
    kill "$(cat "$pid")" 2>/dev/null || true
    while kill -0 "$(cat "$pid")" 2>/dev/null; do sleep 0.1; done
    rm -f "$pid"
  done
}
trap kill_all EXIT

# etcd member i: client port 23790+i, peer port 23890+i, data on disk in $DIR/data-etcd-i.
start_etcd() { # members
  local n="$1" cluster="" i
  rm -rf "$DIR"/data-etcd-*
  for i in $(seq 1 "$n"); do
    cluster="${cluster:+$cluster,}e$i=http://127.0.0.1:$((23890 + i))"
  done
  for i in $(seq 1 "$n"); do
    etcd --name "e$i" --data-dir "$DIR/data-etcd-$i" \
      --listen-client-urls "http://127.0.0.1:$((23790 + i))" \
      --advertise-client-urls "http://127.0.0.1:$((23790 + i))" \
      --listen-peer-urls "http://127.0.0.1:$((23890 + i))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((23890 + i))" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --log-level warn >"$DIR/etcd-$i.log" 2>&1 &
    echo $! >"$DIR/etcd-$i.pid"
  done
  local endpoints
  endpoints="$(seq 1 "$n" | sed 's/^/http:\/\/127.0.0.1:2379/' | paste -sd,)"
  for _ in $(seq 1 150); do
    local leader
    leader="$(ETCDCTL_API=3 etcdctl --endpoints="$endpoints" endpoint status -w json 2>/dev/null |
      python3 -c 'import json,sys
status = json.load(sys.stdin)
leaders = {e["Status"]["leader"] for e in status}
if len(status) == int(sys.argv[1]) and len(leaders) == 1 and 0 not in leaders:
    for e in status:
        if e["Status"]["header"]["member_id"] in leaders:
            print(e["Endpoint"])' "$n" 2>/dev/null || true)"
    if [ -n "$leader" ]; then
      echo "$leader"
      return 0
    fi
    sleep 0.2
  done
  echo "etcd has no leader; see $DIR/etcd-*.log" >&2
  return 1
}

# Caravan server i: HTTP port 24700+i, gossip 24800+i, data on disk in $DIR/data-caravan-i, the
# controllers off (etcd has none: both measure the store and its API).
start_caravan() { # members
  local n="$1" i
  rm -rf "$DIR"/data-caravan-*
  # The servers of a cluster share one secret.
  export CARAVAN_CLUSTER_SECRET="${CARAVAN_CLUSTER_SECRET:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
  for i in $(seq 1 "$n"); do
    "$CARAVAN" agent --server --name "s$i" --no-controllers --log-level warn \
      --http-addr "127.0.0.1:$((24700 + i))" --gossip-addr "127.0.0.1:$((24800 + i))" \
      --join "127.0.0.1:24801" --bootstrap-expect "$n" --data-dir "$DIR/data-caravan-$i" \
      >"$DIR/caravan-$i.log" 2>&1 &
    echo $! >"$DIR/caravan-$i.pid"
  done
  wait_for "http://127.0.0.1:24701/readyz"
  # Every request goes to the leader, as the etcd runs do.
  if [ "$n" -gt 1 ]; then
    "$CARAVAN" --address http://127.0.0.1:24701 operator raft transfer-leadership --to s1 >/dev/null 2>&1 || true
    wait_for "http://127.0.0.1:24701/readyz"
  fi
  echo "http://127.0.0.1:24701"
}

record() { # system members log
  grep '^summary ' "$3" | sed "s/^summary /system=$1 members=$2 /" >>"$RESULTS"
}

# One bench (api or watch) against etcd, then against Caravan, with the same arguments.
run() { # bench members
  local bench="$1" n="$2" url args
  case "$bench" in
    api) args=(--clients "$CLIENTS" --size "$SIZE" --duration "$DURATION" --ops "$OPS") ;;
    watch) args=(--watchers "$WATCHERS" --events "$EVENTS" --rate "$RATE" --size "$SIZE") ;;
  esac
  url="$(start_etcd "$n")"
  echo "== etcd $bench, $n member(s), leader $url"
  "$CARAVAN" bench "$bench" --etcd "$url" "${args[@]}" | tee "$DIR/$bench-etcd-$n.out"
  record etcd "$n" "$DIR/$bench-etcd-$n.out"
  kill_all
  url="$(start_caravan "$n")"
  echo "== Caravan $bench, $n server(s), leader $url"
  "$CARAVAN" --address "$url" bench "$bench" "${args[@]}" | tee "$DIR/$bench-caravan-$n.out"
  record caravan "$n" "$DIR/$bench-caravan-$n.out"
  kill_all
}

case "$MEMBERS" in
  1) sizes="1" ;;
  3) sizes="3" ;;
  both) sizes="1 3" ;;
  *) echo "members: 1, 3 or both" >&2; exit 2 ;;
esac
for n in $sizes; do
  case "$WHAT" in
    api | watch) run "$WHAT" "$n" ;;
    all) run api "$n"; run watch "$n" ;;
    *) echo "usage: $0 [api|watch|all] [1|3|both]" >&2; exit 2 ;;
  esac
done

echo
echo "== Caravan / etcd, $CLIENTS clients, $SIZE documents ($(nproc) CPUs)"
python3 "$SCRIPTS/etcd-compare-table.py" "$RESULTS"
