#!/usr/bin/env bash
# bench/fleet-all.sh: every fleet-scale number of issue 14 in one command,
# for a quiet machine (./build.sh bench --scenario fleet-all builds first).
#
#   bench/fleet-all.sh [--devices N]
#
# 1. bench/fleet.sh --devices N (default 100,000): the mass command, 1 and
#    2 nginx workers, cold and warm -> bench/fleet.md
# 2. bench/run.sh --scenario idle-fleet --fleet-devices N, with 1 and with
#    2 nginx workers -> bench/results-idle-fleet-1w.md, -2w.md; prints the
#    2-worker / 1-worker throughput ratio (target >= 1.8)
# BENCH_NGINX (e.g. the shared identity cache's directive) applies to all.
# The population is cached in bench/.cache/ (first run: about 10 minutes
# of generation on 2 quiet cores at 100,000 devices).
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
DEVICES=100000
while [ $# -gt 0 ]; do
    case $1 in
        --devices) DEVICES=$2; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

"$BENCH/fleet.sh" --devices "$DEVICES" --out "$BENCH/fleet.md"
for w in 1 2; do
    "$BENCH/run.sh" --scenario idle-fleet --fleet-devices "$DEVICES" --workers "$w" \
        --out "$BENCH/results-idle-fleet-${w}w.md"
done

rps() { awk -F'|' '/^\| signed Idle, .* random order/ { gsub(/ /, "", $3); print $3 }' "$1"; }
R1=$(rps "$BENCH/results-idle-fleet-1w.md")
R2=$(rps "$BENCH/results-idle-fleet-2w.md")
echo
echo "idle-fleet: 1 worker $R1 req/s, 2 workers $R2 req/s:" \
     "$(awk -v a="$R1" -v b="$R2" 'BEGIN { printf "%.2f×", (a > 0) ? b / a : 0 }') (target ≥ 1.8×)"
