"""Exclusive names across nodes: several node processes, released together
by a barrier, trigger the same exclusive name at once; exactly one gets a
task id, every other one TASK_ALREADY_RUNNING.  Several rounds; between
them the winner's task (held running on its node) is cancelled."""
import os
import sys

import mnlib
from mnlib import check

NODES = 4
ROUNDS = 8
NAME = "mn_exclusive"


def test_exclusive_race(make):
    c = make([{"name": NAME, "exclusive": True}])
    # One barrier per round: a pipe whose read end every node holds; the
    # round starts when the test closes the write end (end of file for all).
    pipes = [os.pipe() for _ in range(ROUNDS)]
    writers = {w for _, w in pipes}

    def close_writers():
        for w in list(writers):
            writers.discard(w)
            os.close(w)
    mnlib._cleanups.append(close_writers)
    try:
        reads = [r for r, _ in pipes]
        obs = c.node("obs", workers=0)
        nodes = [c.node("n%d" % i, workers=1, pass_fds=reads) for i in range(NODES)]
    finally:
        for r, _ in pipes:
            os.close(r)
    watch = obs.request("watch", tag="w", names=[NAME])
    check(watch["ok"], "watch: %s" % watch)
    hold_all = {"context_task": {"hold_on": [n.id for n in nodes]}}
    acked = []
    for rnd, (r, w) in enumerate(pipes):
        qs = [n.send("race", name=NAME, fd=r, body=hold_all) for n in nodes]
        for n, q in zip(nodes, qs):
            check(n.reply(q, what="armed").get("armed"), "node %s not armed" % n.id)
        writers.discard(w)
        os.close(w)   # the barrier falls: every node triggers now
        res = [n.reply(q, what="race result") for n, q in zip(nodes, qs)]
        won = [(n, x) for n, x in zip(nodes, res) if x["ok"]]
        lost = [(n, x) for n, x in zip(nodes, res) if not x["ok"]]
        check(len(won) == 1, "round %d: %d winners: %s" % (rnd, len(won), res))
        for n, x in lost:
            check(x["error"] == "TASK_ALREADY_RUNNING",
                  "round %d: node %s got %s, want TASK_ALREADY_RUNNING"
                  % (rnd, n.id, x))
        tid = won[0][1]["result"]["task_id"]
        acked.append(tid)
        # It runs on one of the nodes (held), then the loser of the next
        # race cancels it.
        mnlib.wait_for(lambda: any(ev["ev"] == "start" and ev["task"] == tid
                                   for ev in c.all_events()),
                       what="task %s to start" % tid)
        r2 = lost[0][0].ok("cancel", NAME, tid)
        check(r2["status"] in ("CANCELLED_REQUESTED", "CANCELLED"), "cancel: %s" % r2)
        t = mnlib.wait_final(obs, NAME, tid)
        check(t["status"] == "CANCELLED", "round %d: task ended %s" % (rnd, t["status"]))
    w = obs.request("watch_stop", tag="w")
    tasks = mnlib.final_history(c, obs, NAME, acked, w["obs"])
    check(len(tasks) == ROUNDS, "%d tasks stored, want %d" % (len(tasks), ROUNDS))
    c.close_all()
    print("# %d rounds of %d nodes; %d status polls" % (ROUNDS, NODES, w["polls"]))


if __name__ == "__main__":
    sys.exit(mnlib.run_tests([test_exclusive_race]))
