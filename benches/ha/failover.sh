#!/usr/bin/env bash
# failover.sh — time from kill -9 of the leading master to a different member
# leading and serving, in a 3-member Agora group on loopback.
#
#   benches/ha/failover.sh                       # default tick (100 ms), 20 kills
#   KILLS=20 TICK_MS=50 benches/ha/failover.sh   # with --raft-tick-ms 50
#
# Environment:
#   AGORA     release agora binary (default /var/tmp/h4-target/release/agora)
#   KILLS     number of kills (default 20)
#   TICK_MS   pass --raft-tick-ms TICK_MS (default: none, the product default)
#   SETTLE_S  pause after the group agrees again, before the next kill (default 2)
#   AGORA_LOG members' log filter (default info; logs end up in $OUT/logs)
#   OUT       where kills.jsonl and summary.md go (default: a new dir under /var/tmp)
#
# Each kill: find the leader via /members (leader_id, agreed by all three
# members, its /state 200), SIGKILL it (failover_probe.py does the kill and
# the polling, ~5 ms apart, so the clock starts at the signal), measure
#   elected  until another member's /members says it is the leader, and
#   serving  until that member's /state answers 200 (its core runs),
# then restart the killed member on the same ports and data and wait until
# all three agree on a leader again (rejoin). Kills only its own PIDs and
# removes its data on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KILLS=${KILLS:-20}
SETTLE_S=${SETTLE_S:-2}
OUT=${OUT:-$(mktemp -d /var/tmp/failover.out.XXXXXX)}
WORK=$(mktemp -d /var/tmp/failover.XXXXXX)

# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"
# the members' logs (kept in $OUT/logs) show when each core started
export AGORA_LOG=${AGORA_LOG:-info}
if [[ -n ${TICK_MS:-} ]]; then
  AGORA_EXTRA=(--raft-tick-ms "$TICK_MS")
fi

cleanup() {
  agora_stop_all
  mkdir -p "$OUT/logs"
  cp "$WORK"/agora/*.log "$OUT/logs/" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -x $AGORA ]] || { echo "missing $AGORA" >&2; exit 2; }
mkdir -p "$OUT"
: >"$OUT/kills.jsonl"

agora_group_init 3
agora_start 1; agora_start 2; agora_start 3
agora_wait_agreed 60 1 2 3 >/dev/null || { log "the group never agreed on a leader"; exit 1; }
ports="1=${AGORA_API[1]},2=${AGORA_API[2]},3=${AGORA_API[3]}"
log "group up (tick ${TICK_MS:-default}); outputs in $OUT; load $(load_avg)"
sleep "$SETTLE_S"

for ((k = 1; k <= KILLS; k++)); do
  leader=$(agora_wait_agreed 60 1 2 3) || { log "no agreed leader before kill $k"; exit 1; }
  load=$(load_avg)
  pid=${AGORA_PIDS[leader]}
  if ! result=$(python3 "$HERE/failover_probe.py" "$pid" "$leader" "$ports" 30); then
    log "kill $k: no new leader within 30 s: $result"
    exit 1
  fi
  wait "$pid" 2>/dev/null || true
  AGORA_PIDS[leader]=""
  t_restart=$(date +%s%N)
  agora_start "$leader"
  agora_wait_agreed 60 1 2 3 >/dev/null || { log "no agreement after restarting m$leader"; exit 1; }
  rejoin_ms=$((($(date +%s%N) - t_restart) / 1000000))
  line=$(jq -c --arg load "$load" --argjson k "$k" --argjson rejoin "$rejoin_ms" \
    '. + {kill: $k, load: $load, rejoin_ms: $rejoin}' <<<"$result")
  printf '%s\n' "$line" | tee -a "$OUT/kills.jsonl"
  sleep "$SETTLE_S"
done

python3 - "$OUT/kills.jsonl" "${TICK_MS:-default (50)}" <<'EOF' | tee "$OUT/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo = int(k); hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
print(f"\ntick {sys.argv[2]} ms, {len(rows)} kills\n")
print("| kill | load | old → new leader | term | elected ms | serving ms | rejoin ms |")
print("|---:|---|---|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['kill']} | {r['load']} | m{r['old_leader']} → m{r['new_leader']} | {r['term']} | "
          f"{r['elected_ms']:.0f} | {r['serving_ms']:.0f} | {r['rejoin_ms']} |")
for key in ("elected_ms", "serving_ms", "rejoin_ms"):
    xs = [r[key] for r in rows]
    print(f"\n{key}: median {statistics.median(xs):.0f}, p90 {pct(xs, 0.9):.0f}, "
          f"min {min(xs):.0f}, max {max(xs):.0f}", end="")
print()
EOF
