#!/bin/sh
# Reruns every API benchmark recorded in BENCHMARKS.md "## API":
# builds the binary, starts a node with no config (embedded SQLite +
# emulated AWS, TLS), runs the 16-connection closed loop for GetMe (bearer,
# basic) and Application List (empty), measures Create->ALLOCATED latency
# for 50 Linux applications, then List again with those 50 applications.
#
#   sh bench/api-load/run.sh [DURATION]      (default 10s per mode)
set -eu
DUR=${1:-10s}
PID=
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$TMP"' EXIT
cd "$ROOT"
go build -o "$TMP/aquarium-fish" ./cmd/aquarium-fish
go build -o "$TMP/api-load" ./bench/api-load
PORT=${PORT:-18771}
NODE=https://127.0.0.1:$PORT
"$TMP/aquarium-fish" --dir "$TMP/data" --api 127.0.0.1:$PORT --log-level warn >"$TMP/node.log" 2>&1 &
PID=$!
i=0
until curl -sf --cacert "$TMP/data/ca.crt" "$NODE/healthz" >/dev/null 2>&1; do
  i=$((i+1)); [ $i -gt 300 ] && { cat "$TMP/node.log"; exit 1; }; sleep 0.1
done
CLI="$TMP/aquarium-fish --dir $TMP/data --node $NODE"
LABEL=$($CLI label create -f examples/label-linux.yaml -o json | sed -n 's/.*"uid": "\(.*\)".*/\1/p' | head -n1)
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# Server CPU per request (utime+stime of the node, in clock ticks) makes the
# numbers comparable on a busy machine: capacity ~ cores / (CPU per request).
ticks() { awk '{print $14+$15}' /proc/$PID/stat; }
HZ=$(getconf CLK_TCK)
bench() { # bench MODE
  m=$1
  t0=$(ticks)
  OUT=$("$TMP/api-load" -node "$NODE" -dir "$TMP/data" -mode $m -c 16 -d "$DUR")
  t1=$(ticks)
  echo "$OUT"
  REQ=$(echo "$OUT" | sed -n 's/.*total_requests=\([0-9]*\).*/\1/p')
  echo "$t0 $t1 $REQ $HZ" | awk '{printf "server CPU: %.1f us/request\n", ($2-$1)/$4*1e6/$3}'
}
for m in getme-bearer getme-basic app-list; do bench $m; done
echo "# Create -> ALLOCATED, then List again with those 50 (deallocated) applications"
"$TMP/api-load" -node "$NODE" -dir "$TMP/data" -mode alloc -label "$LABEL" -n 50
bench app-list
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
