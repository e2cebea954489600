"""Drives Agora's Marathon with the unmodified `marathon` client from PyPI
(0.13.0, which builds its objects from the exact keys Marathon 1.x returns
and fails on any other): create, list, tasks, scale, rolling update,
versions, kill with scale, queue, info, leader, deployments, delete.
Run by tests/it/marathon_python.rs with MARATHON_URL set; prints "ok"."""
import os
import sys
import time

from marathon import MarathonClient
from marathon.models import MarathonApp
from marathon.util import to_datetime

c = MarathonClient(os.environ["MARATHON_URL"])


def wait(what, pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except Exception as e:  # noqa: BLE001 - keep polling, report at the end
            last = e
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def settled():
    return not c.list_deployments()


app = c.create_app("pyapp", MarathonApp(cmd="sleep 300", cpus=0.1, mem=16, instances=2))
assert app.id == "/pyapp", app.id
wait("2 running", lambda: c.get_app("pyapp").tasks_running == 2 and settled())
assert any(a.id == "/pyapp" for a in c.list_apps(embed_tasks=True, embed_counts=True))
tasks = c.list_tasks("pyapp")
assert len(tasks) == 2 and all(t.host and t.slave_id and t.started_at for t in tasks), tasks
first = sorted(t.id for t in tasks)

d = c.scale_app("pyapp", instances=3)
assert "deploymentId" in d, d
wait("3 running", lambda: c.get_app("pyapp").tasks_running == 3 and settled())
assert set(first) <= {t.id for t in c.list_tasks("pyapp")}, "a scale restarted tasks"

c.update_app("pyapp", MarathonApp(cmd="sleep 301", cpus=0.1, mem=16, instances=3))


def rolled():
    a = c.get_app("pyapp")
    # The client parses versionInfo into datetimes and leaves task versions
    # as strings: compare in its own terms.
    v = a.version_info.last_config_change_at
    return settled() and a.tasks_running == 3 and all(to_datetime(t.version) == v for t in a.tasks)


wait("the rolling update", rolled)
a = c.get_app("pyapp")
assert a.cmd == "sleep 301"
assert len(c.list_versions("pyapp")) == 3

victim = c.list_tasks("pyapp")[0].id
c.kill_task("pyapp", victim, scale=True)
wait("scaled down by the kill", lambda: c.get_app("pyapp").instances == 2 and settled() and c.get_app("pyapp").tasks_running == 2)
assert victim not in {t.id for t in c.list_tasks("pyapp")}

assert c.list_queue() == []
info = c.get_info()
assert info.name == "marathon" and info.elected, info
assert c.get_leader()
c.delete_app("pyapp")
wait("the app gone", lambda: all(x.id != "/pyapp" for x in c.list_apps()) and settled())
print("ok")
