#!/usr/bin/env python3
"""Summarise kv_compare.sh outputs (rep*-agora.txt / rep*-etcd.txt, kvbench --json).

Prints markdown: every run, per-repetition medians with the Agora/etcd ratio
of that repetition (the two systems ran back to back), and over all
repetitions the median of every run and the median of the per-repetition
ratios.
"""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]
runs = {}  # (system, rep) -> {"meta":..., "put": [...], "watch": [...]}
for path in sorted(glob.glob(os.path.join(out, "rep*-*.txt"))):
    m = re.search(r"rep(\d+)-(\w+)\.txt$", path)
    rep, system = int(m.group(1)), m.group(2)
    d = {"meta": "", "end": "", "put": [], "watch": []}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("# system="):
                d["meta"] = line
            elif line.startswith("# end="):
                d["end"] = line
            else:
                # one object per line; tolerate lines run together
                for obj in re.findall(r'\{"kind":[^{}]*\}', line):
                    j = json.loads(obj)
                    d[j["kind"]].append(j)
    runs[(system, rep)] = d

reps = sorted({r for _, r in runs})
systems = ["agora", "etcd"]
med = statistics.median


def field(meta, key):
    pat = r"=(\S+ \S+ \S+)" if key.startswith("load") else r"=(\S+)"
    m = re.search(key + pat, meta)
    return m.group(1) if m else "?"


print("## Every run\n")
print("| rep | system | leader | start (UTC) | load at start | load at end | run | clients | ops/s | p50 ms | p99 ms | max ms | errors |")
print("|---:|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
for rep in reps:
    for s in systems:
        d = runs.get((s, rep))
        if not d:
            continue
        for p in d["put"]:
            print(f"| {rep} | {s} | {field(d['meta'], 'leader')} | {field(d['meta'], 'start')} | "
                  f"{field(d['meta'], 'load_start')} | {field(d['end'], 'load_end')} | {p['run']} | {p['clients']} | "
                  f"{p['ops_per_sec']:.0f} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {p['max_ms']:.2f} | {p['errors']} |")
print()
print("| rep | system | run | sent | received | lost | out-of-order | dup | put→event p50 ms | p99 ms | ack→event p50 ms | p99 ms |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for rep in reps:
    for s in systems:
        d = runs.get((s, rep))
        if not d:
            continue
        for w in d["watch"]:
            print(f"| {rep} | {s} | {w['run']} | {w['sent']} | {w['received']} | {w['lost']} | {w['out_of_order']} | "
                  f"{w['duplicates']} | {w['from_send_p50_ms']:.3f} | {w['from_send_p99_ms']:.3f} | "
                  f"{w['from_ack_p50_ms']:.3f} | {w['from_ack_p99_ms']:.3f} |")

levels = sorted({p["clients"] for d in runs.values() for p in d["put"]})


def put_med(d, c, key):
    xs = [p[key] for p in d["put"] if p["clients"] == c]
    return med(xs) if xs else float("nan")


def watch_med(d, key):
    xs = [w[key] for w in d["watch"]]
    return med(xs) if xs else float("nan")


print("\n## Per repetition (median of its kvbench runs) and Agora/etcd ratio of that repetition\n")
print("| rep | clients | Agora ops/s | etcd ops/s | ratio | Agora p50/p99 ms | etcd p50/p99 ms | p99 ratio |")
print("|---:|---:|---:|---:|---:|---|---|---:|")
ratios = {c: {"ops": [], "p99": [], "p50": []} for c in levels}
wratios = {"p50": [], "p99": []}
for rep in reps:
    a, e = runs.get(("agora", rep)), runs.get(("etcd", rep))
    if not (a and e):
        continue
    for c in levels:
        ao, eo = put_med(a, c, "ops_per_sec"), put_med(e, c, "ops_per_sec")
        a50, a99 = put_med(a, c, "p50_ms"), put_med(a, c, "p99_ms")
        e50, e99 = put_med(e, c, "p50_ms"), put_med(e, c, "p99_ms")
        ratios[c]["ops"].append(ao / eo)
        ratios[c]["p99"].append(a99 / e99)
        ratios[c]["p50"].append(a50 / e50)
        print(f"| {rep} | {c} | {ao:.0f} | {eo:.0f} | {ao / eo:.2f}x | {a50:.2f} / {a99:.2f} | "
              f"{e50:.2f} / {e99:.2f} | {a99 / e99:.2f}x |")
    aw50, aw99 = watch_med(a, "from_send_p50_ms"), watch_med(a, "from_send_p99_ms")
    ew50, ew99 = watch_med(e, "from_send_p50_ms"), watch_med(e, "from_send_p99_ms")
    wratios["p50"].append(aw50 / ew50)
    wratios["p99"].append(aw99 / ew99)
    print(f"| {rep} | watch | — | — | — | {aw50:.3f} / {aw99:.3f} | {ew50:.3f} / {ew99:.3f} | {aw99 / ew99:.2f}x |")

print("\n## Over all repetitions: median of every run; median of the per-repetition ratios\n")
print("| clients | Agora ops/s | etcd ops/s | ops ratio | Agora p50 / p99 ms | etcd p50 / p99 ms | p50 ratio | p99 ratio |")
print("|---:|---:|---:|---:|---|---|---:|---:|")
for c in levels:
    def allv(s, key):
        return med([p[key] for (sy, _), d in runs.items() if sy == s for p in d["put"] if p["clients"] == c])
    r = ratios[c]
    print(f"| {c} | {allv('agora', 'ops_per_sec'):.0f} | {allv('etcd', 'ops_per_sec'):.0f} | "
          f"{med(r['ops']) if r['ops'] else float('nan'):.2f}x | "
          f"{allv('agora', 'p50_ms'):.2f} / {allv('agora', 'p99_ms'):.2f} | "
          f"{allv('etcd', 'p50_ms'):.2f} / {allv('etcd', 'p99_ms'):.2f} | "
          f"{med(r['p50']) if r['p50'] else float('nan'):.2f}x | {med(r['p99']) if r['p99'] else float('nan'):.2f}x |")


def wall(s, key):
    xs = [w[key] for (sy, _), d in runs.items() if sy == s for w in d["watch"]]
    return med(xs) if xs else float("nan")


def wsum(s, key):
    return sum(w[key] for (sy, _), d in runs.items() if sy == s for w in d["watch"])


print(f"| watch put→event | — | — | — | {wall('agora', 'from_send_p50_ms'):.3f} / {wall('agora', 'from_send_p99_ms'):.3f} | "
      f"{wall('etcd', 'from_send_p50_ms'):.3f} / {wall('etcd', 'from_send_p99_ms'):.3f} | "
      f"{med(wratios['p50']) if wratios['p50'] else float('nan'):.2f}x | "
      f"{med(wratios['p99']) if wratios['p99'] else float('nan'):.2f}x |")
print(f"\nwatch correctness (sums over all runs): Agora lost {wsum('agora', 'lost')}, out-of-order "
      f"{wsum('agora', 'out_of_order')}, dup {wsum('agora', 'duplicates')}; etcd lost {wsum('etcd', 'lost')}, "
      f"out-of-order {wsum('etcd', 'out_of_order')}, dup {wsum('etcd', 'duplicates')}")
errs = {s: sum(p["errors"] for (sy, _), d in runs.items() if sy == s for p in d["put"]) for s in systems}
print(f"put errors (sums): Agora {errs['agora']}, etcd {errs['etcd']}")

# Leader changes inside the Agora runs (the members' logs, kept by kv_compare.sh).
for rep in reps:
    logs = sorted(glob.glob(os.path.join(out, f"rep{rep}-agora-m*.log")))
    if not logs:
        continue
    down = 0
    for p in logs:
        with open(p, errors="replace") as f:
            down += sum("stepped down to follower since quorum is not active" in line for line in f)
    print(f"rep {rep}: Agora leader stepped down (check-quorum) {down} time(s) during the run")
