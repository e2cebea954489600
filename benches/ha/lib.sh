# shellcheck shell=bash
# Helpers shared by the HA benches (sourced, not run): start/stop a group of
# release `agora master` processes or a 3-member etcd on loopback, each
# member with its own free ports and its data dir under "$WORK".
#
# The caller sets WORK (a temp dir it owns and removes) and AGORA (the
# binary). Every PID started here is recorded in the arrays AGORA_PIDS /
# ETCD_PIDS and only those PIDs are ever signalled.

AGORA=${AGORA:-/var/tmp/h4-target/release/agora}
ETCD=${ETCD:-/usr/bin/etcd}

declare -a AGORA_PIDS=() AGORA_API=() AGORA_ETCD=() ETCD_PIDS=() ETCD_CLIENT=()
AGORA_PEERS=""
AGORA_EXTRA=()

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# N distinct TCP ports nobody listens on now (ephemeral ones the kernel
# hands out), on one line. All N sockets are held open together: asked one
# at a time, the kernel may hand the same port out twice (it did: two
# members of one group on one port).
free_ports() {
  python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

load_avg() { cut -d' ' -f1-3 /proc/loadavg; }

# Stops every member this script started (Agora and etcd) and removes
# "$WORK": the EXIT trap of the benches (`trap bench_cleanup EXIT`).
bench_cleanup() {
  agora_stop_all
  etcd_stop_cluster
  rm -rf "$WORK"
}

# ---------------------------------------------------------------- agora ----

# agora_group_init N: picks ports for members 1..N (does not start them).
agora_group_init() {
  local n=$1 i peers="" ports
  AGORA_PIDS=() AGORA_API=() AGORA_ETCD=()
  read -r -a ports <<<"$(free_ports $((2 * n)))"
  for ((i = 1; i <= n; i++)); do
    AGORA_API[i]=${ports[2 * i - 2]}
    AGORA_ETCD[i]=${ports[2 * i - 1]}
    peers+="${peers:+,}$i=127.0.0.1:${AGORA_API[i]}/${AGORA_ETCD[i]}"
  done
  AGORA_PEERS=$peers
}

# agora_start ID: starts (or restarts) member ID on its ports and data dir.
agora_start() {
  local id=$1
  mkdir -p "$WORK/agora"
  # AGORA_ENV: extra NAME=VALUE words for the members' environment only
  # (e.g. TOKIO_WORKER_THREADS=1), so kvbench and etcd do not inherit them.
  # shellcheck disable=SC2086
  env ${AGORA_ENV:-} AGORA_LOG="${AGORA_LOG:-warn}" "$AGORA" master --id "$id" --peers "$AGORA_PEERS" \
    --listen "127.0.0.1:${AGORA_API[id]}" \
    --etcd-listen "127.0.0.1:${AGORA_ETCD[id]}" \
    --data-dir "$WORK/agora/m$id" "${AGORA_EXTRA[@]}" \
    </dev/null >/dev/null 2>>"$WORK/agora/m$id.log" &
  AGORA_PIDS[id]=$!
}

# agora_kill9 ID: SIGKILL member ID (our own PID only) and reap it.
agora_kill9() {
  local id=$1 pid=${AGORA_PIDS[$1]:-}
  [[ -n $pid ]] || return 0
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  AGORA_PIDS[id]=""
}

# agora_stop_all: SIGTERM every member we started, SIGKILL after 5 s.
agora_stop_all() {
  local id pid
  for id in "${!AGORA_PIDS[@]}"; do
    pid=${AGORA_PIDS[id]}
    [[ -n $pid ]] && kill "$pid" 2>/dev/null
  done
  for id in "${!AGORA_PIDS[@]}"; do
    pid=${AGORA_PIDS[id]}
    [[ -n $pid ]] || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    AGORA_PIDS[id]=""
  done
}

# agora_leader_of ID: the leader_id member ID reports in /members ("" if none/unreachable).
agora_leader_of() {
  curl -s --max-time 1 "http://127.0.0.1:${AGORA_API[$1]}/members" 2>/dev/null |
    jq -r '.leader_id // empty' 2>/dev/null || true
}

# agora_state_ok ID: true if member ID's /state answers 200 (its core runs).
agora_state_ok() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
    "http://127.0.0.1:${AGORA_API[$1]}/state" 2>/dev/null || true)
  [[ $code == 200 ]]
}

# agora_agreed_leader IDS...: prints the leader every listed member agrees
# on, if that leader's /state answers 200; fails otherwise.
agora_agreed_leader() {
  local id seen leader=""
  for id in "$@"; do
    seen=$(agora_leader_of "$id")
    [[ -n $seen ]] || return 1
    [[ -z $leader || $leader == "$seen" ]] || return 1
    leader=$seen
  done
  agora_state_ok "$leader" || return 1
  printf '%s\n' "$leader"
}

# agora_wait_agreed TIMEOUT_S IDS...: waits for agora_agreed_leader.
agora_wait_agreed() {
  local timeout=$1 end
  shift
  end=$(($(date +%s) + timeout))
  while (($(date +%s) < end)); do
    agora_agreed_leader "$@" && return 0
    sleep 0.05
  done
  return 1
}

# ----------------------------------------------------------------- etcd ----

# etcd_start_cluster: a fresh 3-member etcd (Debian's 3.4, default flags as in
# reliability.md B2) with its data under "$WORK/etcd".
etcd_start_cluster() {
  local i cl="" cp pp
  local -a peer=() ports
  ETCD_PIDS=() ETCD_CLIENT=()
  read -r -a ports <<<"$(free_ports 6)"
  for i in 1 2 3; do
    ETCD_CLIENT[i]=${ports[2 * i - 2]}
    peer[i]=${ports[2 * i - 1]}
    cl+="${cl:+,}m$i=http://127.0.0.1:${peer[i]}"
  done
  mkdir -p "$WORK/etcd"
  for i in 1 2 3; do
    cp=${ETCD_CLIENT[i]} pp=${peer[i]}
    "$ETCD" --name "m$i" --data-dir "$WORK/etcd/m$i" \
      --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
      --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
      --initial-cluster "$cl" --initial-cluster-token kvcompare --initial-cluster-state new \
      --logger zap --log-level warn </dev/null >/dev/null 2>>"$WORK/etcd/m$i.log" &
    ETCD_PIDS[i]=$!
  done
}

etcd_endpoints() { printf '127.0.0.1:%s,127.0.0.1:%s,127.0.0.1:%s' "${ETCD_CLIENT[1]}" "${ETCD_CLIENT[2]}" "${ETCD_CLIENT[3]}"; }

# etcd_leader: index 1..3 of the member that is leader ("" if unknown).
etcd_leader() {
  ETCDCTL_API=3 etcdctl --endpoints="$(etcd_endpoints)" endpoint status -w json 2>/dev/null |
    jq -r 'to_entries[] | select(.value.Status.header.member_id == .value.Status.leader) | .key + 1' 2>/dev/null |
    head -n1 || true
}

etcd_wait_leader() {
  local end=$(($(date +%s) + $1)) l
  while (($(date +%s) < end)); do
    l=$(etcd_leader)
    [[ -n $l ]] && { printf '%s\n' "$l"; return 0; }
    sleep 0.1
  done
  return 1
}

etcd_stop_cluster() {
  local i pid
  for i in "${!ETCD_PIDS[@]}"; do
    pid=${ETCD_PIDS[i]}
    [[ -n $pid ]] && kill "$pid" 2>/dev/null
  done
  for i in "${!ETCD_PIDS[@]}"; do
    pid=${ETCD_PIDS[i]}
    [[ -n $pid ]] || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ETCD_PIDS[i]=""
  done
}
