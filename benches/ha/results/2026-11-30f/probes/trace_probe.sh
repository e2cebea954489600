#!/usr/bin/env bash
# trace_probe.sh put|watch [agora|etcd] — a 3-member group under one client,
# with `perf trace` of its members' syscalls for a while in the middle:
#   put    kvbench --mode put, 1 client on the leader; all three members
#          traced for 0.5 s (syscalls: EVENTS, default below)
#   watch  kvbench --mode watch (writer on the leader, watcher on a
#          follower, 3,000 events 2 ms apart); leader and watcher's follower
#          traced for 1 s
# Environment: AGORA, ETCD as for kv_compare.sh; KVBENCH; OUT (default
# /var/tmp/trace) gets SYS.MODE.trace and SYS.MODE.kvbench; EVENTS.
set -euo pipefail
MODE=$1 SYS=${2:-agora}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
KVBENCH=${KVBENCH:-/var/tmp/kvbench-target/release/kvbench}
OUT=${OUT:-/var/tmp/trace}
WORK=$(mktemp -d /var/tmp/trace.XXXXXX)
# shellcheck source=../../../lib.sh
source "$HERE/lib.sh"
cleanup() { agora_stop_all; etcd_stop_cluster; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$OUT"

if [[ $SYS == agora ]]; then
  agora_group_init 3
  for i in 1 2 3; do agora_start "$i"; done
  leader=$(agora_wait_agreed 60 1 2 3)
  ports=("" "${AGORA_ETCD[1]}" "${AGORA_ETCD[2]}" "${AGORA_ETCD[3]}")
  pids=("" "${AGORA_PIDS[1]}" "${AGORA_PIDS[2]}" "${AGORA_PIDS[3]}")
else
  etcd_start_cluster
  leader=$(etcd_wait_leader 30)
  ports=("" "${ETCD_CLIENT[1]}" "${ETCD_CLIENT[2]}" "${ETCD_CLIENT[3]}")
  pids=("" "${ETCD_PIDS[1]}" "${ETCD_PIDS[2]}" "${ETCD_PIDS[3]}")
fi
follower=$((leader % 3 + 1))
echo "leader $leader (pid ${pids[leader]}), follower $follower (pid ${pids[follower]})"

case $MODE in
  put)
    load=(--endpoints "127.0.0.1:${ports[leader]}" --mode put --clients 1
      --duration-secs 6 --warmup-secs 1 --value-size 256 --runs 1)
    traced="${pids[1]},${pids[2]},${pids[3]}" window=0.5
    default_events=fdatasync,fsync,sendto,sendmsg,recvfrom,recvmsg,write,writev,read,readv,futex,epoll_wait,epoll_pwait
    ;;
  watch)
    load=(--endpoints "127.0.0.1:${ports[leader]},127.0.0.1:${ports[follower]}" --mode watch
      --runs 1 --watch-events 3000 --watch-interval-ms 2)
    traced="${pids[leader]},${pids[follower]}" window=1
    default_events=fdatasync,sendto,recvfrom,write,writev,read,futex,epoll_wait,epoll_pwait,nanosleep
    ;;
  *) echo "usage: $0 put|watch [agora|etcd]" >&2; exit 2 ;;
esac

sleep 1
"$KVBENCH" "${load[@]}" >"$OUT/$SYS.$MODE.kvbench" &
kb=$!
sleep 3
timeout -s INT "$window" perf trace -p "$traced" -e "${EVENTS:-$default_events}" \
  -o "$OUT/$SYS.$MODE.trace" 2>/dev/null || true
wait "$kb"
grep "^run" "$OUT/$SYS.$MODE.kvbench"
