#!/usr/bin/env bash
# A local cluster of N Caravan servers on loopback, for trying clustering out and for
# benchmarks: server i listens on 127.0.0.1:(4700+i) (HTTP) and 127.0.0.1:(4800+i) (gossip),
# keeps its data in $DIR/s$i and logs to $DIR/s$i.log.
#
#   scripts/local-cluster.sh start [N]    # N = 3 by default; waits until a leader is known
#   scripts/local-cluster.sh stop
#
# CARAVAN (the binary, default target/release/caravan) and DIR (default /tmp/caravan-cluster)
# can be set in the environment.
set -euo pipefail

CARAVAN="${CARAVAN:-target/release/caravan}"
DIR="${DIR:-/tmp/caravan-cluster}"
# The servers of a cluster share one secret (their Raft RPCs, forwarding and broker carry it).
export CARAVAN_CLUSTER_SECRET="${CARAVAN_CLUSTER_SECRET:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"

start() {
  local n="${1:-3}"
  mkdir -p "$DIR"
  for i in $(seq 1 "$n"); do
    "$CARAVAN" agent --server --name "s$i" \
      --http-addr "127.0.0.1:$((4700 + i))" --gossip-addr "127.0.0.1:$((4800 + i))" \
      --join "127.0.0.1:4801" --bootstrap-expect "$n" --data-dir "$DIR/s$i" \
      >"$DIR/s$i.log" 2>&1 &
    echo $! >"$DIR/s$i.pid"
  done
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:4701/readyz" >/dev/null; then
      "$CARAVAN" --address http://127.0.0.1:4701 operator raft list-peers
      return 0
    fi
    sleep 0.2
  done
  echo "no leader after 20 s; see $DIR/s*.log" >&2
  return 1
}

stop() {
  for pid in "$DIR"/s*.pid; do
    [ -e "$pid" ] || continue
    kill "$(cat "$pid")" 2>/dev/null || true
    rm -f "$pid"
  done
}

case "${1:-}" in
  start) start "${2:-3}" ;;
  stop) stop ;;
  *) echo "usage: $0 start [N] | stop" >&2; exit 2 ;;
esac
