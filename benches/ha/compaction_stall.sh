#!/usr/bin/env bash
# compaction_stall.sh — what compacting a long keyspace history costs a
# 3-member Agora group (or etcd): fill the history with kvbench (64 clients,
# FILL_SECS seconds of puts, no compaction), then, while a 1-client kvbench
# measures put latency, compact at the current revision with
# `etcdctl compaction --physical` through the leader and time it.
#
#   benches/ha/compaction_stall.sh                 # agora, 3 repetitions
#   SYSTEM=etcd benches/ha/compaction_stall.sh     # the same against etcd 3.4
#   AGORA=/var/tmp/bins/agora-base REPS=5 benches/ha/compaction_stall.sh
#
# Prints one line per repetition: revisions compacted, the Compact call's
# time, and the probe's put p50/p99/max during the window around it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KVBENCH=${KVBENCH:-/var/tmp/kvbench-target/release/kvbench}
SYSTEM=${SYSTEM:-agora} REPS=${REPS:-3} FILL_SECS=${FILL_SECS:-10}
WORK=$(mktemp -d /var/tmp/compaction_stall.XXXXXX)
# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"
trap bench_cleanup EXIT

start_cluster() {
  if [[ $SYSTEM == agora ]]; then
    agora_group_init 3
    for i in 1 2 3; do agora_start "$i"; done
    leader=$(agora_wait_agreed 60 1 2 3)
    endpoint=127.0.0.1:${AGORA_ETCD[leader]}
  else
    etcd_start_cluster
    leader=$(etcd_wait_leader 30)
    endpoint=127.0.0.1:${ETCD_CLIENT[leader]}
  fi
}

revision() {
  etcdctl --endpoints "$endpoint" endpoint status -w json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])'
}

now_ms() { date +%s%3N; }

for ((rep = 1; rep <= REPS; rep++)); do
  start_cluster
  "$KVBENCH" --endpoints "$endpoint" --mode put --clients 64 --duration-secs "$FILL_SECS" \
    --warmup-secs 0 --value-size 256 --runs 1 --no-compact >/dev/null
  rev=$(revision)
  probe="$WORK/probe-$rep.json"
  "$KVBENCH" --endpoints "$endpoint" --mode put --clients 1 --duration-secs 4 \
    --warmup-secs 0 --value-size 256 --runs 1 --no-compact --json >"$probe" 2>&1 &
  probe_pid=$!
  sleep 1.5
  t0=$(now_ms)
  etcdctl --endpoints "$endpoint" compaction --physical "$rev" >/dev/null
  t1=$(now_ms)
  wait "$probe_pid"
  python3 - "$probe" "$rev" "$((t1 - t0))" "$SYSTEM" "$(load_avg)" <<'EOF'
import json, sys
path, rev, ms, system, load = sys.argv[1:6]
runs = [json.loads(l) for l in open(path) if l.startswith("{")]
put = next(r for r in runs if r.get("kind") == "put")
print(f"{system}: compacted {int(rev) - 1} revisions in {ms} ms; probe put "
      f"p50 {put['p50_ms']:.2f} ms, p99 {put['p99_ms']:.2f} ms, "
      f"max {put['max_ms']:.1f} ms; load {load}")
EOF
  agora_stop_all
  etcd_stop_cluster
  rm -rf "$WORK/agora" "$WORK/etcd"
done
