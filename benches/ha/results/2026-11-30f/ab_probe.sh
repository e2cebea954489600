#!/usr/bin/env bash
# ab_probe.sh ROUNDS CLIENTS BUILD... — alternates put_probe.sh (3 members,
# clients spread as in kv_compare) between builds /var/tmp/bins/agora-BUILD,
# ROUNDS times; prints one line per run: round build clients ops/s p50 p99 (ms).
set -euo pipefail
ROUNDS=$1 CL=$2; shift 2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
for ((r = 1; r <= ROUNDS; r++)); do
  for b in "$@"; do
    AGORA=/var/tmp/bins/agora-$b RUNS=${RUNS:-3} "$HERE/put_probe.sh" agora 3 "$CL" "${SECS:-5}" 2>/dev/null |
      awk -v r="$r" -v b="$b" -v c="$CL" '/^run/ {
        # kvbench pads its numbers ("p50=  0.830"), so find each by its label
        for (i = 1; i < NF; i++) {
          if ($(i + 1) == "ops/s") ops = $i
          if ($i ~ /^p50=/) p50 = ($i == "p50=") ? $(i + 1) : substr($i, 5)
          if ($i ~ /^p99=/) p99 = ($i == "p99=") ? $(i + 1) : substr($i, 5)
        }
        print r, b, c, ops, p50, p99
      }'
  done
done
