#!/usr/bin/env python3
"""One failover measurement for failover.sh.

usage: failover_probe.py PID OLD_ID ID=PORT,ID=PORT,... TIMEOUT_S

Sends SIGKILL to PID (the leader's process, started by the caller), then
polls the other members' /members and /state over loopback every ~5 ms.
Prints one JSON line:
  elected_ms  kill -> first time a member other than OLD_ID reports itself
              leader (/members leader_id == its member_id)
  serving_ms  kill -> that member's /state answers 200 (its core runs)
  new_leader, term
Exits 1 on timeout.
"""
import http.client
import json
import os
import signal
import sys
import time

pid, old = int(sys.argv[1]), int(sys.argv[2])
ports = {int(k): int(v) for k, v in (x.split("=") for x in sys.argv[3].split(","))}
timeout = float(sys.argv[4])
others = [i for i in ports if i != old]


def get(port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body
    except OSError:
        return None, None


# warm the import/connection paths before the clock starts
get(ports[others[0]], "/members")

t0 = time.monotonic()
os.kill(pid, signal.SIGKILL)
elected = None
new_leader = None
term = None
while time.monotonic() - t0 < timeout:
    for i in others:
        if elected is not None and i != new_leader:
            continue
        code, body = get(ports[i], "/members")
        if code != 200:
            continue
        try:
            view = json.loads(body)
        except ValueError:
            continue
        if view.get("leader_id") == i and view.get("member_id") == i:
            if elected is None:
                elected = time.monotonic() - t0
                new_leader = i
                term = view.get("term")
            code, _ = get(ports[i], "/state")
            if code == 200:
                serving = time.monotonic() - t0
                print(json.dumps({
                    "old_leader": old, "new_leader": new_leader, "term": term,
                    "elected_ms": round(elected * 1000, 1),
                    "serving_ms": round(serving * 1000, 1),
                }))
                sys.exit(0)
        elif elected is not None and i == new_leader:
            # it lost leadership again before serving: start over
            elected = None
            new_leader = None
    time.sleep(0.005)
print(json.dumps({"old_leader": old, "timeout_s": timeout}))
sys.exit(1)
