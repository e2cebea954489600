#!/usr/bin/env bash
# profile_leader.sh — where the leader's time goes during a 64-client put run,
# for Agora and for etcd (same kvbench load, one after the other).
#
#   benches/ha/profile_leader.sh
#
# Environment: AGORA, KVBENCH, ETCD as in kv_compare.sh; CLIENTS (64),
# SECS (measurement window, 10), OUT (default: a new dir under /var/tmp),
# SYSTEMS ("agora etcd"), CALLGRAPH=1 to record DWARF call graphs too
# (perf-children-<sys>.txt: inclusive time per function; heavier),
# KEEP_DATA=1 to keep perf-<sys>.data in OUT for `perf report -i`.
#
# For each system: a fresh 3-member cluster, kvbench --mode put at CLIENTS
# clients for SECS+6 s, and during SECS seconds of it, on the leader's PID:
#   * perf stat: fsync/fdatasync/sync_file_range/write/sendmsg/recvfrom/
#     epoll_wait/futex syscall counts, context switches, task-clock
#     (perf-stat-<sys>.txt);
#   * per-thread CPU (utime+stime from /proc/PID/task/*/stat), also for the
#     two followers (threads-<sys>.txt);
#   * perf record -F 999 (no call graphs: the release build has no frame
#     pointers) -> perf-report-<sys>.txt sorted by thread and by symbol.
# Only its own PIDs are signalled; its data dir is removed on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KVBENCH=${KVBENCH:-/var/tmp/kvbench-target/release/kvbench}
CLIENTS=${CLIENTS:-64}
SECS=${SECS:-10}
OUT=${OUT:-$(mktemp -d /var/tmp/profile_leader.out.XXXXXX)}
WORK=$(mktemp -d /var/tmp/profile_leader.XXXXXX)

# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"

KV_PID=""
cleanup() {
  [[ -n $KV_PID ]] && kill "$KV_PID" 2>/dev/null
  agora_stop_all
  etcd_stop_cluster
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

# thread_cpu PID...: "pid tid comm ticks" for every thread of each PID.
thread_cpu() {
  local pid f
  for pid in "$@"; do
    for f in /proc/"$pid"/task/*/stat; do
      python3 -c '
import sys
s = open(sys.argv[1]).read()
comm = s[s.index("(") + 1:s.rindex(")")]
rest = s[s.rindex(")") + 2:].split()
print(sys.argv[2], sys.argv[1].split("/")[4], comm.replace(" ", "_"), int(rest[11]) + int(rest[12]))
' "$f" "$pid" 2>/dev/null || true
    done
  done
}

# thread_delta BEFORE AFTER: CPU seconds per process and thread name over the window.
thread_delta() {
  python3 - "$1" "$2" "$SECS" <<'EOF'
import collections, os, sys
hz = os.sysconf("SC_CLK_TCK")
def load(p):
    d = {}
    for line in open(p):
        pid, tid, comm, t = line.split()
        d[(pid, tid, comm)] = int(t)
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
per = collections.Counter()
for k, t in b.items():
    per[(k[0], k[2])] += t - a.get(k, 0)
secs = float(sys.argv[3])
tot = collections.Counter()
for (pid, comm), t in sorted(per.items()):
    tot[pid] += t
    if t:
        print(f"pid {pid} thread {comm:24s} {t / hz:6.2f} s CPU = {100 * t / hz / secs:5.1f} % of one core")
for pid, t in tot.items():
    print(f"pid {pid} total {t / hz:6.2f} s CPU = {100 * t / hz / secs:5.1f} % of one core")
EOF
}

measure() { # SYSTEM LEADER_PID ENDPOINTS ALL_PIDS...
  local sys=$1 lpid=$2 eps=$3
  shift 3
  log "$sys: leader pid $lpid, load $(load_avg)"
  "$KVBENCH" --endpoints "$eps" --mode put --clients "$CLIENTS" --duration-secs $((SECS + 6)) \
    --warmup-secs 1 --runs 1 --value-size 256 >"$OUT/kvbench-$sys.txt" 2>&1 &
  KV_PID=$!
  sleep 3
  thread_cpu "$@" >"$WORK/before"
  perf stat -e 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_sync_file_range,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,context-switches,task-clock' \
    -p "$lpid" -o "$OUT/perf-stat-$sys.txt" -- sleep "$SECS" &
  local stat_pid=$!
  local -a cg=(-F 999)
  [[ ${CALLGRAPH:-} == 1 ]] && cg=(-F 199 --call-graph "dwarf,16384")
  perf record "${cg[@]}" -p "$lpid" -o "$WORK/perf-$sys.data" -- sleep "$SECS" >/dev/null 2>&1
  wait "$stat_pid" || true
  thread_cpu "$@" >"$WORK/after"
  thread_delta "$WORK/before" "$WORK/after" >"$OUT/threads-$sys.txt"
  wait "$KV_PID" || true
  KV_PID=""
  {
    set +o pipefail
    echo "## by thread"
    perf report -i "$WORK/perf-$sys.data" --sort comm --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20
    echo "## by shared object"
    perf report -i "$WORK/perf-$sys.data" --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20
    echo "## by symbol"
    perf report -i "$WORK/perf-$sys.data" --sort comm,sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -150
    set -o pipefail
  } >"$OUT/perf-report-$sys.txt"
  if [[ ${CALLGRAPH:-} == 1 ]]; then
    perf report -i "$WORK/perf-$sys.data" --children --sort sym --stdio -g none --percent-limit 1.5 \
      2>/dev/null | grep -v '^#' | grep -v '^$' >"$OUT/perf-children-$sys.txt" || true
  fi
  [[ ${KEEP_DATA:-} == 1 ]] && cp "$WORK/perf-$sys.data" "$OUT/"
  log "$sys done: $(grep -E '^run' "$OUT/kvbench-$sys.txt" || true)"
}

SYSTEMS=${SYSTEMS:-agora etcd}
if [[ " $SYSTEMS " == *" agora "* ]]; then
agora_group_init 3
agora_start 1; agora_start 2; agora_start 3
leader=$(agora_wait_agreed 60 1 2 3)
eps="127.0.0.1:${AGORA_ETCD[leader]}"
for i in 1 2 3; do ((i == leader)) || eps+=",127.0.0.1:${AGORA_ETCD[i]}"; done
sleep 1
measure agora "${AGORA_PIDS[leader]}" "$eps" "${AGORA_PIDS[1]}" "${AGORA_PIDS[2]}" "${AGORA_PIDS[3]}"
agora_stop_all
fi

if [[ " $SYSTEMS " == *" etcd "* ]]; then
etcd_start_cluster
leader=$(etcd_wait_leader 60)
IFS=, read -r -a e <<<"$(etcd_endpoints)"
eps=${e[leader - 1]}
for i in 0 1 2; do ((i == leader - 1)) || eps+=",${e[i]}"; done
sleep 1
measure etcd "${ETCD_PIDS[leader]}" "$eps" "${ETCD_PIDS[1]}" "${ETCD_PIDS[2]}" "${ETCD_PIDS[3]}"
etcd_stop_cluster
fi
log "outputs in $OUT"
