"""SIGKILL of a node mid-job: node A runs a handler that holds the task;
once the handler has started (its start event is in A's log), A gets
kill -9.  Node B, with the same name registered and workers of its own,
takes over when A's lease lapses:

- max_attempts 3: the task runs again on B (attempt 2) and COMPLETES;
- max_attempts 1: the task ends FAILED with the error "worker lost", and
  never runs on B.
"""
import sys

import mnlib
from mnlib import check

NAME = "mn_sigkill"


def sigkill_case(make, attempts):
    c = make([{"name": NAME, "max_attempts": attempts, "retry_backoff_s": 0.1}])
    obs = c.node("obs", workers=0)
    a = c.node("A", workers=1)
    watch = obs.request("watch", tag="w", names=[NAME])
    check(watch["ok"], "watch: %s" % watch)
    tid = a.ok("trigger", NAME, {"context_task": {"hold_on": ["A"], "work_ms": 50}})["task_id"]
    mnlib.wait_event(a, lambda ev: ev["ev"] == "start" and ev["task"] == tid,
                     what="the start of %s" % tid)
    b = c.node("B", workers=1)
    t = obs.ok("get", NAME, tid)
    check(t["status"] == "RUNNING", "before the kill: %s" % t["status"])
    a.kill()   # its run stays open in the log: it ends at the kill (mnlib.run_intervals)
    t = mnlib.wait_final(obs, NAME, tid)
    w = obs.request("watch_stop", tag="w")
    check(w["ok"], "watch_stop: %s" % w)
    b_runs = [ev for ev in b.events() if ev["task"] == tid]
    if attempts > 1:
        check(t["status"] == "COMPLETED", "task ended %s, want COMPLETED: %s" % (t["status"], t))
        ends = [ev for ev in b_runs if ev["ev"] == "end"]
        check(len(ends) == 1 and ends[0]["result"] == "COMPLETED" and ends[0]["attempt"] == 2,
              "B's runs of the task: %s" % b_runs)
        check(t["details"]["attempts"] == 2, "attempts %s, want 2" % t["details"]["attempts"])
        # doc/runtime.md, Crash recovery: the requeue says why ("worker
        # lost during attempt 1 of 3; retrying").
        check("worker lost" in t["progress"] or any("worker lost" in x for x in t["warnings"]),
              "no word of the lost worker: progress %r, warnings %s"
              % (t["progress"], t["warnings"]))
    else:
        check(t["status"] == "FAILED", "task ended %s, want FAILED: %s" % (t["status"], t))
        check(t["details"].get("error") == "worker lost",
              "error %r, want 'worker lost'" % t["details"].get("error"))
        check(not b_runs, "the task ran on B although no attempt was left: %s" % b_runs)
    # A's run is open: it ends at the kill; B's run must start after it.
    a_runs = [ev for ev in a.events() if ev["task"] == tid]
    check([ev["ev"] for ev in a_runs] == ["start"], "A's events: %s" % a_runs)
    mnlib.final_history(c, obs, NAME, [tid], w["obs"])
    c.close_all()


def test_sigkill_retried_on_other_node(make):
    sigkill_case(make, 3)


def test_sigkill_last_attempt_fails(make):
    sigkill_case(make, 1)


if __name__ == "__main__":
    sys.exit(mnlib.run_tests([test_sigkill_retried_on_other_node,
                              test_sigkill_last_attempt_fails]))
