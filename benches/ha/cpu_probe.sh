#!/usr/bin/env bash
# cpu_probe.sh — CPU a put costs a 3-member group: the members' user+system
# CPU time (from /proc) over one kvbench put run, divided by the puts it
# made. On these 2-vCPU machines the members and the client share the
# cores at 16 and 64 clients, so throughput there follows CPU per put.
#
#   benches/ha/cpu_probe.sh agora 16          # 3 runs of 8 s, one group each
#   AGORA=/var/tmp/bins/agora-x benches/ha/cpu_probe.sh agora 64 10
#   benches/ha/cpu_probe.sh etcd 16
#
# Arguments: SYSTEM (agora|etcd) CLIENTS [SECS]. Environment: AGORA,
# KVBENCH, ETCD as for kv_compare.sh; RUNS (default 3). Prints one line per
# run: system clients puts/s errors cpu-seconds µs-per-put load. The CPU
# also covers kvbench's connecting and its clean-up delete, the same for
# both systems.
set -euo pipefail
SYS=$1 CL=$2 SECS=${3:-8}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KVBENCH=${KVBENCH:-/var/tmp/kvbench-target/release/kvbench}
WORK=$(mktemp -d /var/tmp/cpu_probe.XXXXXX)
# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"
trap bench_cleanup EXIT
TICKS=$(getconf CLK_TCK)

# Sum of utime+stime (fields 14, 15 of /proc/PID/stat) of the given PIDs,
# in clock ticks. The command name (field 2) has no spaces here.
cpu_ticks() {
  local total=0 pid f
  for pid in "$@"; do
    read -r -a f <"/proc/$pid/stat"
    total=$((total + f[13] + f[14]))
  done
  echo "$total"
}

one_run() {
  local eps pids=()
  if [[ $SYS == agora ]]; then
    agora_group_init 3
    local i leader
    for i in 1 2 3; do agora_start "$i"; done
    leader=$(agora_wait_agreed 60 1 2 3)
    eps="127.0.0.1:${AGORA_ETCD[leader]}"
    for i in 1 2 3; do ((i == leader)) || eps+=",127.0.0.1:${AGORA_ETCD[i]}"; done
    pids=("${AGORA_PIDS[1]}" "${AGORA_PIDS[2]}" "${AGORA_PIDS[3]}")
  else
    etcd_start_cluster
    local leader i
    leader=$(etcd_wait_leader 30)
    eps=127.0.0.1:${ETCD_CLIENT[leader]}
    for i in 1 2 3; do ((i == leader)) || eps+=",127.0.0.1:${ETCD_CLIENT[i]}"; done
    pids=("${ETCD_PIDS[1]}" "${ETCD_PIDS[2]}" "${ETCD_PIDS[3]}")
  fi
  sleep 1
  local load before after out
  load=$(cut -d' ' -f1 /proc/loadavg)
  before=$(cpu_ticks "${pids[@]}")
  out=$("$KVBENCH" --endpoints "$eps" --mode put --clients "$CL" --duration-secs "$SECS" \
    --warmup-secs 0 --value-size 256 --runs 1 --json 2>/dev/null | grep '"kind":"put"')
  after=$(cpu_ticks "${pids[@]}")
  CPU_TICKS=$((after - before)) RUN=$out python3 -c "
import json, os
run = json.loads(os.environ['RUN'])
cpu = int(os.environ['CPU_TICKS']) / $TICKS
print('$SYS', $CL, round(run['ops_per_sec']), run['errors'], round(cpu, 2),
      round(cpu / run['ok'] * 1e6, 1), '$load')"
  agora_stop_all
  etcd_stop_cluster
}

for ((r = 1; r <= ${RUNS:-3}; r++)); do one_run; done
