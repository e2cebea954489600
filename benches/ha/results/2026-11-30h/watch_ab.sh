#!/usr/bin/env bash
# watch_ab.sh ROUNDS BUILD... — alternates kvbench --mode watch (3 runs of 1000 events) on fresh 3-member groups.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)
source "$REPO/benches/ha/lib.sh"
KVBENCH=${KVBENCH:-/var/tmp/kvbench-target/release/kvbench}
trap agora_stop_all EXIT
ROUNDS=$1; shift
for ((r=1;r<=ROUNDS;r++)); do for b in "$@"; do
  AGORA=/var/tmp/bins/agora-$b
  WORK=/var/tmp/wab-$b; rm -rf "$WORK"; mkdir -p "$WORK"
  AGORA_EXTRA=()
  agora_group_init 3 >/dev/null 2>&1
  for i in 1 2 3; do agora_start $i; done
  agora_wait_agreed 20 1 2 3 >/dev/null || { echo "no leader"; agora_stop_all; continue; }
  L=$(agora_agreed_leader 1 2 3)
  eps="127.0.0.1:${AGORA_ETCD[$L]}"
  for i in 1 2 3; do [[ $i == "$L" ]] || eps+=",127.0.0.1:${AGORA_ETCD[$i]}"; done
  "$KVBENCH" --endpoints "$eps" --mode watch --runs 3 --watch-events 1000 --watch-interval-ms 2 --json 2>/dev/null | grep '"kind":"watch"' | sed "s/^/$r $b /"
  agora_stop_all
done; done
