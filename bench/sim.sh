#!/usr/bin/env bash
# Simulator benchmark: wall time and peak RSS of `aquarium-fish simulate` on
# the year workload and on a 10x file (the year repeated over ten consecutive
# years, 1.75M jobs), generated here. Usage: bench/sim.sh [workloads dir]
set -euo pipefail
cd "$(dirname "$0")/.."
W="${1:-../shared/workloads}"
YEAR="$W/year-2025-mac.csv"
OUT="${TMPDIR:-/tmp}/aquarium-sim-bench"
mkdir -p "$OUT"
go build -o "$OUT/aquarium-fish" ./cmd/aquarium-fish

# 10x: copy k (0..9) shifted by k*365 days; stays sorted by startTime.
if [ ! -s "$OUT/year10x.csv" ]; then
  awk -F, 'NR==1{hdr=$0; next} {rows[++n]=$0} END{
    print hdr
    for (k=0; k<10; k++) { off=k*365*86400
      for (i=1; i<=n; i++) { split(rows[i], f, ","); printf "%d,%d,%s,%s,%s\n", f[1]+off, f[2]+off, f[3], f[4], f[5] } } }' \
    "$YEAR" > "$OUT/year10x.csv"
fi
echo "rows: $(($(wc -l < "$YEAR") - 1)) and $(($(wc -l < "$OUT/year10x.csv") - 1))"

run() {
  local name=$1; shift
  /usr/bin/time -v "$OUT/aquarium-fish" simulate "$@" --progress never > "$OUT/$name.out" 2> "$OUT/$name.time"
  local wall rss user
  wall=$(grep 'Elapsed (wall clock)' "$OUT/$name.time" | awk '{print $NF}')
  user=$(grep 'User time' "$OUT/$name.time" | awk '{print $NF}')
  rss=$(grep 'Maximum resident' "$OUT/$name.time" | awk '{print $NF}')
  echo "$name: wall $wall, user CPU ${user} s, max RSS ${rss} KB, load $(cut -d' ' -f1-3 /proc/loadavg)"
}
run year "$YEAR"
run year10x "$OUT/year10x.csv" --format csv
head -3 "$OUT/year.out"
grep -E '^(Jobs|Host-hours|Cost)' "$OUT/year.out"
