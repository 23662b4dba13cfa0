"""Database restart under load (PostgreSQL only).

Three nodes trigger continuously from two threads each and record every
acknowledged trigger (the call returned an id) in a file; handlers on the
same nodes run the tasks.  Meanwhile the test restarts the server twice
(scripts/pg-cluster restart: once at once, once staying down for a few
seconds, during which a probe call must fail with STORAGE_ERROR).
Throughout, every failed call fails with STORAGE_ERROR and no call takes
longer than CALL_BOUND; afterwards every node's calls succeed again without
reopening its manager.  At the end every acknowledged id exists exactly
once and its task COMPLETED, run by a handler."""
import os
import subprocess
import sys
import time

import mnlib
from mnlib import CALL_BOUND, WAIT, Skip, check

NAME = "mn_restart"
NODES = 3
DOWN = 5   # seconds the server stays down in the second restart


def test_db_restart_under_load(make):
    c = make([{"name": NAME, "max_attempts": 5, "retry_backoff_s": 0.2}])
    if not c.pg:
        raise Skip("LMDB store: there is no database server to restart (PostgreSQL only)")
    d = os.environ.get("TM_TEST_PG_DIR")
    if not d:
        raise Skip("TM_TEST_PG_DIR is not set: the database is not one scripts/pg-cluster "
                   "started, so it cannot be restarted")
    if mnlib.uri_target(c.base) != mnlib.uri_target(os.environ.get("TM_TEST_PG_URL", "")):
        raise Skip("the store's server is not the one in TM_TEST_PG_DIR (TM_TEST_STORE "
                   "names another): it cannot be restarted")
    soft = mnlib.Checks()
    obs = c.node("obs", workers=0)
    nodes = [c.node("n%d" % i, workers=2) for i in range(NODES)]
    check(obs.request("watch", tag="w", names=[NAME], pages=2)["ok"], "watch")
    acks = {n.id: os.path.join(c.dir, "acks-%s" % n.id) for n in nodes}
    for n in nodes:
        r = n.request("load", tag="L", name=NAME, threads=2, pause_ms=100, ack=acks[n.id],
                      body={"context_task": {"work_ms": 5}})
        check(r["ok"], "load on %s: %s" % (n.id, r))

    def count():
        return sum(len(mnlib.read_acks(p)) for p in acks.values())

    def all_acking_after(t):
        return all(any(at > t for _, at in mnlib.read_acks(acks[n.id])) for n in nodes)

    mnlib.wait_for(lambda: count() >= 60, what="60 acknowledged triggers")
    for down in (None, DOWN):
        before = count()
        args = [mnlib.PG_CLUSTER, "restart", d] + ([str(down)] if down else [])
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if down:
            # While it is down, a call fails with the storage error, in
            # bounded time.
            mnlib.wait_for(lambda: not mnlib.pg_ready(c.base) or p.poll() is not None,
                           what="the server to go down")
            if p.poll() is None:
                t0 = time.monotonic()
                r = nodes[0].call("trigger", NAME, {"context_task": {"work_ms": 5}})
                soft(not r["ok"] and r["error"] == "STORAGE_ERROR",
                     "a trigger while the server is down answered %s" % r)
                soft(time.monotonic() - t0 <= CALL_BOUND,
                     "a trigger while the server is down took %.1fs" % (time.monotonic() - t0))
                if r["ok"]:
                    with open(acks[nodes[0].id], "a") as f:
                        f.write("%s %.6f\n" % (r["result"]["task_id"], r["t"]))
        t_restart = time.monotonic()
        out = p.communicate(timeout=120)[0]
        check(p.returncode == 0, "pg-cluster %s exited %s: %s" % (args[1:], p.returncode, out))
        up = time.monotonic()
        # Afterwards every node succeeds again, on the same manager.
        try:
            mnlib.wait_for(lambda: all_acking_after(up), what="every node to trigger again "
                           "after the restart")
        except mnlib.Failed as e:
            soft(False, str(e))
        print("# restart%s: took %.1fs; every node acknowledged again %.1fs later; "
              "%d acknowledged before, %d after"
              % (" with %ds down" % down if down else "", up - t_restart,
                 time.monotonic() - up, before, count()), flush=True)
    stats = {}
    for n in nodes:
        stats[n.id] = st = n.request("load_stop", tag="L", timeout=CALL_BOUND + 30)
        print("# %s: %d acknowledged, failures %s, slowest call %.2fs (%s)"
              % (n.id, st["acked"], st["errors"], st["max_call"], st["slowest"]), flush=True)
        soft(st["stuck_threads"] == 0, "node %s: %d load threads stuck in a call"
             % (n.id, st["stuck_threads"]))
        soft(set(st["errors"]) <= {"STORAGE_ERROR"},
             "node %s: calls failed with other errors than STORAGE_ERROR: %s"
             % (n.id, st["errors"]))
        soft(st["max_call"] <= CALL_BOUND, "node %s: a call took %.1fs (%s)"
             % (n.id, st["max_call"], st["slowest"]))
    acked = [i for p in acks.values() for i, _ in mnlib.read_acks(p)]
    t0 = time.monotonic()
    try:
        mnlib.wait_all_final(obs, NAME, acked, timeout=WAIT + 30)
    except mnlib.Failed as e:
        r = obs.request("list", name=NAME)
        active = [t for t in r.get("tasks", []) if t["status"] not in mnlib.FINAL]
        print("# %d tasks still active, e.g. %s" % (len(active), active[:3]), flush=True)
        raise
    print("# all %d acknowledged tasks ended %.1fs after the load stopped"
          % (len(acked), time.monotonic() - t0), flush=True)
    w = obs.request("watch_stop", tag="w")
    check(w["ok"], "watch_stop: %s" % w)
    tasks = mnlib.final_history(c, obs, NAME, acked, w["obs"])
    not_done = [(i, tasks[i]["status"], tasks[i]["details"].get("error"))
                for i in acked if tasks[i]["status"] != "COMPLETED"]
    soft(not not_done, "%d acknowledged tasks did not complete: %s"
         % (len(not_done), not_done[:5]))
    completed_runs = {ev["task"] for ev in c.all_events()
                      if ev["ev"] == "end" and ev["result"] == "COMPLETED"}
    unrun = [i for i in acked if i not in completed_runs]
    soft(not unrun, "%d acknowledged tasks no handler completed: %s" % (len(unrun), unrun[:5]))
    print("# %d acknowledged triggers, %d tasks stored" % (len(acked), len(tasks)))
    c.close_all()
    soft.done()


if __name__ == "__main__":
    sys.exit(mnlib.run_tests([test_db_restart_under_load]))
