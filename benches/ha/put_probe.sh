#!/usr/bin/env bash
# put_probe.sh — one system, one cluster size, puts only: the quick probe
# behind the diagnostic figures in BENCHMARKS.md (single member vs three,
# every client on the leader vs spread, snapshots on or off).
#
#   benches/ha/put_probe.sh agora 3 1,16,64          # 3 runs of 5 s per level
#   benches/ha/put_probe.sh etcd 1 1 10              # a 1-member etcd, 10 s runs
#   LEADER_ONLY=1 benches/ha/put_probe.sh agora 3 16 # every client on the leader
#   AGORA_EXTRA_ARGS="--raft-snapshot-entries 0" benches/ha/put_probe.sh agora 3 64
#
# Arguments: SYSTEM (agora|etcd) MEMBERS (1 or 3; etcd: 1 or 3) CLIENTS [SECS]
# Environment: AGORA, KVBENCH, ETCD as for kv_compare.sh; RUNS (default 3);
# LEADER_ONLY; AGORA_EXTRA_ARGS; KEEP_LOGS=DIR copies the members' logs there.
set -euo pipefail
SYS=$1 N=$2 CL=$3 SECS=${4:-5}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KVBENCH=${KVBENCH:-/var/tmp/kvbench-target/release/kvbench}
WORK=$(mktemp -d /var/tmp/put_probe.XXXXXX)
# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"
read -r -a AGORA_EXTRA <<<"${AGORA_EXTRA_ARGS:-}"
cleanup() {
  agora_stop_all
  [[ -n ${KEEP_LOGS:-} ]] && cp "$WORK"/agora/*.log "$KEEP_LOGS"/ 2>/dev/null
  etcd_stop_cluster
  rm -rf "$WORK"
}
trap cleanup EXIT

for bin in "$KVBENCH" "$([[ $SYS == agora ]] && echo "$AGORA" || echo "$ETCD")"; do
  [[ -x $bin ]] || { echo "missing $bin" >&2; exit 2; }
done
if [[ $SYS == agora ]]; then
  agora_group_init "$N"
  ids=()
  for ((i = 1; i <= N; i++)); do agora_start "$i"; ids+=("$i"); done
  leader=$(agora_wait_agreed 60 "${ids[@]}")
  eps="127.0.0.1:${AGORA_ETCD[leader]}"
  for ((i = 1; i <= N; i++)); do ((i == leader)) || eps+=",127.0.0.1:${AGORA_ETCD[i]}"; done
elif ((N == 1)); then
  read -r p pp <<<"$(free_ports 2)"
  mkdir -p "$WORK/etcd"
  "$ETCD" --name m1 --data-dir "$WORK/etcd/m1" \
    --listen-client-urls "http://127.0.0.1:$p" --advertise-client-urls "http://127.0.0.1:$p" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "m1=http://127.0.0.1:$pp" \
    --logger zap --log-level warn </dev/null >/dev/null 2>>"$WORK/etcd/m1.log" &
  ETCD_PIDS[1]=$!
  eps="127.0.0.1:$p"
  sleep 2
else
  etcd_start_cluster
  leader=$(etcd_wait_leader 30)
  eps=127.0.0.1:${ETCD_CLIENT[leader]}
  for i in 1 2 3; do ((i == leader)) || eps+=",127.0.0.1:${ETCD_CLIENT[i]}"; done
fi
sleep 1
[[ -n ${LEADER_ONLY:-} ]] && eps=${eps%%,*}
log "$SYS x$N: endpoints $eps, load $(load_avg)"
"$KVBENCH" --endpoints "$eps" --mode put --clients "$CL" --duration-secs "$SECS" \
  --warmup-secs 1 --value-size 256 --runs "${RUNS:-3}"
