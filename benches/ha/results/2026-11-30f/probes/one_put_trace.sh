#!/usr/bin/env bash
# Start a 3-member agora (or etcd), 1 client puts, perf trace 0.3 s of syscalls on all members.
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
eps="127.0.0.1:${AGORA_ETCD[leader]}"
pids="${AGORA_PIDS[1]},${AGORA_PIDS[2]},${AGORA_PIDS[3]}"
echo "leader $leader pids ${AGORA_PIDS[*]}"
else
etcd_start_cluster
leader=$(etcd_wait_leader 30)
eps=127.0.0.1:${ETCD_CLIENT[leader]}
pids="${ETCD_PIDS[1]},${ETCD_PIDS[2]},${ETCD_PIDS[3]}"
echo "leader $leader pids ${ETCD_PIDS[*]}"
fi
sleep 1
"$KVBENCH" --endpoints "$eps" --mode put --clients 1 --duration-secs 6 --warmup-secs 1 --value-size 256 --runs 1 > /var/tmp/trace/$SYS.kvbench &
kb=$!
sleep 3
timeout -s INT 0.5 perf trace -p "$pids" -e "${EVENTS:-fdatasync,fsync,sendto,sendmsg,recvfrom,recvmsg,write,writev,read,readv,futex,epoll_wait,epoll_pwait}" -o /var/tmp/trace/$SYS.trace 2>/dev/null || true
wait $kb
cat /var/tmp/trace/$SYS.kvbench
