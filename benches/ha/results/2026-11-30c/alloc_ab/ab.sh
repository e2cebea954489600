#!/bin/bash
# A/B: cluster CPU per put at 64 clients, alternating binaries.
cd /work/main
for i in 1 2 3 4 5; do for b in "$@"; do
  d=/var/tmp/ab/$b-$i; rm -rf $d; mkdir -p $d
  AGORA=/var/tmp/bins/agora-$b SYSTEMS=agora SECS=8 OUT=$d benches/ha/profile_leader.sh > $d/log 2>&1
  ops=$(grep -oE "[0-9.]+ ops/s" $d/kvbench-agora.txt | head -1 | cut -d' ' -f1)
  cpu=$(grep total $d/threads-agora.txt | awk '{s+=$4} END {print s}')
  python3 -c "print('$b', $i, $ops, 'ops/s', $cpu, 'cpu-s/8s', round($cpu/($ops*8)*1e6,1), 'us/put', open('/proc/loadavg').read().split()[0])"
done; done
