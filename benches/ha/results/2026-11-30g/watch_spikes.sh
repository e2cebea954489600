#!/usr/bin/env bash
# watch_spikes.sh — Agora only: kvbench invoked as kv_compare.sh invokes it,
# on a fresh 3-member group, every output line stamped with the time, and the
# members' snapshot debug lines kept, to line up slow runs with snapshots.
#   BIN=/var/tmp/bins/agora-BUILD WORK=/var/tmp/spk-BUILD watch_spikes.sh
# Outputs: $WORK/kvbench.txt, $WORK/agora/m{1,2,3}.log.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)
source "$REPO/benches/ha/lib.sh"
AGORA=${BIN:-/var/tmp/bins/agora-wal}
KVBENCH=${KVBENCH:-/var/tmp/kvbench-target/release/kvbench}
WORK=${WORK:-/var/tmp/spikes}
rm -rf "$WORK"; mkdir -p "$WORK"
AGORA_EXTRA=()
trap agora_stop_all EXIT
export AGORA_LOG="warn,agora_raft::runner=debug"
agora_group_init 3
for i in 1 2 3; do agora_start $i; done
agora_wait_agreed 20 1 2 3 || { echo "no leader"; exit 1; }
L=$(agora_agreed_leader 1 2 3)
eps="127.0.0.1:${AGORA_ETCD[$L]}"
for i in 1 2 3; do [[ $i == "$L" ]] || eps+=",127.0.0.1:${AGORA_ETCD[$i]}"; done
echo "leader m$L endpoints $eps"
"$KVBENCH" --endpoints "$eps" --clients ${CLIENTS:-1,16,64} --duration-secs 10 --warmup-secs 1 --value-size 256 --runs ${RUNS:-3} --watch-events 1000 --watch-interval-ms 2 --json 2>&1 |
  while IFS= read -r line; do printf '%s %s\n' "$(date -u +%H:%M:%S.%3N)" "$line"; done | tee "$WORK/kvbench.txt"
