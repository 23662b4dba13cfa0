"""Cancel across nodes: a handler running on node B loops until its job is
asked to stop; node A (no workers) calls cancel; the task ends CANCELLED and
B's handler saw the stop (job.cancelled())."""
import sys

import mnlib
from mnlib import check

NAME = "mn_cancel"
ROUNDS = 3


def test_cancel_from_other_node(make):
    c = make([{"name": NAME}])
    obs = c.node("obs", workers=0)
    a = c.node("A", workers=0)
    b = c.node("B", workers=1)
    watch = obs.request("watch", tag="w", names=[NAME])
    check(watch["ok"], "watch: %s" % watch)
    acked = []
    for rnd in range(ROUNDS):
        tid = a.ok("trigger", NAME, {"context_task": {"hold_on": ["B"]}})["task_id"]
        acked.append(tid)
        mnlib.wait_event(b, lambda ev: ev["ev"] == "start" and ev["task"] == tid,
                         what="the start of %s" % tid)
        t = a.ok("cancel", NAME, tid)
        check(t["status"] == "CANCELLED_REQUESTED",
              "cancel of a running task answered %s" % t["status"])
        end = mnlib.wait_event(b, lambda ev: ev["ev"] == "end" and ev["task"] == tid,
                               what="the end of %s" % tid)
        check(end["saw_cancel"] and end["result"] == "CANCELLED",
              "B's handler did not see the stop: %s" % end)
        t = mnlib.wait_final(obs, NAME, tid)
        check(t["status"] == "CANCELLED", "round %d: task ended %s" % (rnd, t["status"]))
        check(not [ev for ev in a.events() if ev["task"] == tid], "the task ran on A")
    w = obs.request("watch_stop", tag="w")
    check(w["ok"], "watch_stop: %s" % w)
    mnlib.final_history(c, obs, NAME, acked, w["obs"])
    c.close_all()


if __name__ == "__main__":
    sys.exit(mnlib.run_tests([test_cancel_from_other_node]))
