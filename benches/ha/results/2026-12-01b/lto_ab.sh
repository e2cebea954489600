#!/bin/bash
# Alternating base/lto, cpu_probe.sh one run each, 16 and 64 clients, then 1 client.
cd /work/main
for cl in 16 64; do
  for r in 1 2 3 4; do
    for b in base lto; do
      AGORA=/var/tmp/bins/agora-$b RUNS=1 benches/ha/cpu_probe.sh agora $cl 8 2>/dev/null | sed "s/^/$b r$r /"
    done
  done
done
for r in 1 2 3; do
  for b in base lto; do
    AGORA=/var/tmp/bins/agora-$b RUNS=1 benches/ha/cpu_probe.sh agora 1 6 2>/dev/null | sed "s/^/$b r$r /"
  done
done
