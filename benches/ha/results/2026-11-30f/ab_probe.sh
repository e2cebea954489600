#!/usr/bin/env bash
# ab_probe.sh ROUNDS CLIENTS BUILD... — alternates put_probe.sh (3 members,
# clients spread as in kv_compare) between builds /var/tmp/bins/agora-BUILD,
# ROUNDS times; prints one line per run: round build clients ops/s p50 p99.
set -euo pipefail
ROUNDS=$1 CL=$2; shift 2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
for ((r = 1; r <= ROUNDS; r++)); do
  for b in "$@"; do
    AGORA=/var/tmp/bins/agora-$b RUNS=${RUNS:-3} "$HERE/put_probe.sh" agora 3 "$CL" "${SECS:-5}" 2>/dev/null |
      awk -v r="$r" -v b="$b" -v c="$CL" '/^run/ {print r, b, c, $12, $14, $16}'
  done
done
