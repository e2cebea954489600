#!/bin/bash
# A/B: cluster CPU per put, alternating binaries. usage: ab.sh ROUNDS CLIENTS build...
cd "$(dirname "$0")/../../../.."  # the repository root
rounds=$1; clients=$2; shift 2
for i in $(seq 1 $rounds); do
  if ((i % 2)); then order="$*"; else order=$(echo "$@" | tr ' ' '\n' | tac | tr '\n' ' '); fi
  for b in $order; do
  d=/var/tmp/ab/$b-$clients-$i; rm -rf $d; mkdir -p $d
  AGORA=/var/tmp/bins/agora-$b SYSTEMS=agora CLIENTS=$clients SECS=8 OUT=$d benches/ha/profile_leader.sh > $d/log 2>&1
  ops=$(grep -oE "[0-9.]+ ops/s" $d/kvbench-agora.txt | head -1 | cut -d' ' -f1)
  cpu=$(grep total $d/threads-agora.txt | awk '{s+=$4} END {print s}')
  cs=$(grep -E "context-switches|cs " $d/perf-stat-agora.txt | head -1 | awk '{gsub(",","",$1); print $1}')
  python3 -c "print('$b', $clients, $i, $ops, 'ops/s', $cpu, 'cpu-s/8s', round($cpu/($ops*8)*1e6,1), 'us/put', round(float('${cs:-0}')/($ops*8),2), 'leader-cs/put', open('/proc/loadavg').read().split()[0])"
done; done
