#!/usr/bin/env bash
set -euo pipefail
SYS=${1:-agora}
HERE=/work/main/benches/ha
KVBENCH=/var/tmp/kvbench-target/release/kvbench
WORK=$(mktemp -d /var/tmp/trace.XXXXXX)
source "$HERE/lib.sh"
cleanup() { agora_stop_all; etcd_stop_cluster; rm -rf "$WORK"; }
trap cleanup EXIT
if [[ $SYS == agora ]]; then
agora_group_init 3
for i in 1 2 3; do agora_start $i; done
leader=$(agora_wait_agreed 60 1 2 3)
f=$(( leader % 3 + 1 ))
eps="127.0.0.1:${AGORA_ETCD[leader]},127.0.0.1:${AGORA_ETCD[f]}"
fpid=${AGORA_PIDS[f]}; lpid=${AGORA_PIDS[leader]}
else
etcd_start_cluster
leader=$(etcd_wait_leader 30)
f=$(( leader % 3 + 1 ))
eps=127.0.0.1:${ETCD_CLIENT[leader]},127.0.0.1:${ETCD_CLIENT[f]}
fpid=${ETCD_PIDS[f]}; lpid=${ETCD_PIDS[leader]}
fi
echo "leader $leader follower $f"
sleep 1
"$KVBENCH" --endpoints "$eps" --mode watch --runs 1 --watch-events 3000 --watch-interval-ms 2 > /var/tmp/trace/$SYS.watch.kvbench &
kb=$!
sleep 3
timeout -s INT 1 perf trace -p "$fpid,$lpid" -e "${EVENTS:-fdatasync,sendto,recvfrom,write,writev,read,futex,epoll_wait,epoll_pwait,nanosleep}" -o /var/tmp/trace/$SYS.watch.trace 2>/dev/null || true
wait $kb
grep "^run" /var/tmp/trace/$SYS.watch.kvbench
echo "fpid $fpid lpid $lpid"
