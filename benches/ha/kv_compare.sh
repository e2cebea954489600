#!/usr/bin/env bash
# kv_compare.sh — kvbench against a 3-member Agora group and a 3-member etcd,
# both on loopback, same options, alternating which goes first.
#
#   benches/ha/kv_compare.sh            # REPS=2 repetitions (4 kvbench runs)
#   REPS=3 OUT=/var/tmp/kvc benches/ha/kv_compare.sh
#
# Environment:
#   AGORA    release agora binary   (default /var/tmp/h4-target/release/agora)
#   KVBENCH  kvbench binary         (default /var/tmp/kvbench-target/release/kvbench)
#   ETCD     etcd binary            (default /usr/bin/etcd; Debian's etcd-server 3.4)
#   REPS     repetitions; each runs both systems, odd ones Agora first (default 2)
#   OUT      where raw outputs and summary.md go (default: a new dir under /var/tmp)
#   KVBENCH_ARGS  overrides the kvbench options below
#   AGORA_EXTRA_ARGS  extra `agora master` flags (space-separated)
#
# Each system gets a fresh cluster per repetition (data dirs in one temp dir on
# the same disk, /var/tmp), started right before its kvbench run and stopped
# right after, so an idle cluster never competes with the measured one. The
# endpoints are passed leader first for both systems (the 1-client level and
# the watch writer talk to the leader, the watcher to a follower; 2/3 of the
# clients at 16 and 64 go through a follower). Kills only its own PIDs and
# removes its data on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KVBENCH=${KVBENCH:-/var/tmp/kvbench-target/release/kvbench}
REPS=${REPS:-2}
OUT=${OUT:-$(mktemp -d /var/tmp/kv_compare.out.XXXXXX)}
KVBENCH_ARGS=${KVBENCH_ARGS:---clients 1,16,64 --duration-secs 10 --warmup-secs 1 --value-size 256 --runs 3 --watch-events 1000 --watch-interval-ms 2}
WORK=$(mktemp -d /var/tmp/kv_compare.XXXXXX)

# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"
read -r -a AGORA_EXTRA <<<"${AGORA_EXTRA_ARGS:-}"

cleanup() {
  agora_stop_all
  etcd_stop_cluster
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for bin in "$AGORA" "$KVBENCH" "$ETCD"; do
  [[ -x $bin ]] || { echo "missing $bin" >&2; exit 2; }
done
mkdir -p "$OUT"
read -r -a kv_args <<<"$KVBENCH_ARGS"

# rotate ENDPOINTS LEADER_INDEX: the comma list with the leader first.
leader_first() {
  local -a eps
  IFS=, read -r -a eps <<<"$1"
  local l=$(($2 - 1)) i out
  out=${eps[l]}
  for i in "${!eps[@]}"; do
    ((i == l)) || out+=",${eps[i]}"
  done
  printf '%s\n' "$out"
}

run_agora() {
  local rep=$1 leader eps i
  rm -rf "$WORK/agora"
  agora_group_init 3
  agora_start 1; agora_start 2; agora_start 3
  leader=$(agora_wait_agreed 60 1 2 3) || { log "agora group never agreed on a leader"; tail -n 20 "$WORK"/agora/*.log >&2; exit 1; }
  eps=$(leader_first "127.0.0.1:${AGORA_ETCD[1]},127.0.0.1:${AGORA_ETCD[2]},127.0.0.1:${AGORA_ETCD[3]}" "$leader")
  sleep 1
  log "rep $rep agora: leader m$leader, endpoints $eps, load $(load_avg)"
  {
    echo "# system=agora rep=$rep leader=m$leader start=$(date -u +%FT%TZ) load_start=$(load_avg)"
    "$KVBENCH" --endpoints "$eps" "${kv_args[@]}" --json 2>&1 ||
      echo "# kvbench FAILED (exit $?); the runs above are kept"
    echo "# end=$(date -u +%FT%TZ) load_end=$(load_avg)"
  } >"$OUT/rep$rep-agora.txt"
  agora_stop_all
  for i in 1 2 3; do cp "$WORK/agora/m$i.log" "$OUT/rep$rep-agora-m$i.log" 2>/dev/null || true; done
  rm -rf "$WORK/agora"
}

run_etcd() {
  local rep=$1 leader eps
  rm -rf "$WORK/etcd"
  etcd_start_cluster
  leader=$(etcd_wait_leader 60) || { log "etcd never elected a leader"; exit 1; }
  eps=$(leader_first "$(etcd_endpoints)" "$leader")
  sleep 1
  log "rep $rep etcd: leader m$leader, endpoints $eps, load $(load_avg)"
  {
    echo "# system=etcd rep=$rep leader=m$leader start=$(date -u +%FT%TZ) load_start=$(load_avg)"
    "$KVBENCH" --endpoints "$eps" "${kv_args[@]}" --json 2>&1 ||
      echo "# kvbench FAILED (exit $?); the runs above are kept"
    echo "# end=$(date -u +%FT%TZ) load_end=$(load_avg)"
  } >"$OUT/rep$rep-etcd.txt"
  etcd_stop_cluster
  rm -rf "$WORK/etcd"
}

log "outputs in $OUT; agora=$AGORA etcd=$($ETCD --version | head -n1)"
for ((rep = 1; rep <= REPS; rep++)); do
  if ((rep % 2 == 1)); then
    run_agora "$rep"; run_etcd "$rep"
  else
    run_etcd "$rep"; run_agora "$rep"
  fi
done

python3 "$HERE/kv_summary.py" "$OUT" | tee "$OUT/summary.md"
