#!/bin/sh
# Reruns every API benchmark recorded in BENCHMARKS.md "## API":
# builds the binary, starts a node with no config (embedded SQLite +
# emulated AWS, TLS), measures Create->ALLOCATED latency for 50 Linux
# applications (which leaves 50 applications for List), then runs the
# 16-connection closed loop for GetMe (bearer, basic) and Application List.
#
#   sh bench/api-load/run.sh [DURATION]      (default 10s per mode)
set -eu
DUR=${1:-10s}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$TMP"' EXIT
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
"$TMP/api-load" -node "$NODE" -dir "$TMP/data" -mode alloc -label "$LABEL" -n 50
for m in getme-bearer getme-basic app-list; do
  "$TMP/api-load" -node "$NODE" -dir "$TMP/data" -mode $m -c 16 -d "$DUR"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
