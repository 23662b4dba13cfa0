"""One node of the multinode suite: a process with its own taskmgr.Manager
on the shared store, steered by the test over stdin/stdout.

usage: node.py CONFIG_JSON

CONFIG: {"node": id, "parent": pid, "store": path or URI, "workers": n,
"options": {"lease_ms": .., "poll_ms": .., "grace_ms": ..}, "log": path,
"names": [{"name": .., "exclusive": bool, "max_attempts": n, ...}]}

Every command is one JSON line on stdin, {"id": n, "op": ..., ...}; every
answer one JSON line on stdout with the same id ("final": true on the last
one).  Commands run on threads of their own, so a blocked one (a barrier, a
call that hangs) does not hold up the others.

The handler of every name writes "start" and "end" events to the node's log
(one os.write per line, O_APPEND: whole lines even when the node is killed):
task, node, pid, attempt, time.monotonic().  What it does comes from the
task's payload: {"hold_on": [node ids]} makes it loop on a node in that
list until job.cancelled(); else it works "work_ms" (default 20) and
completes, stopping early with CANCELLED if asked to.
"""
import ctypes
import json
import os
import signal
import sys
import threading
import time
import traceback

import taskmgr
from taskmgr import _native

CFG = json.loads(sys.argv[1])
NODE = CFG["node"]
_out_lock = threading.Lock()


def say(msg):
    line = json.dumps(msg, separators=(",", ":")) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def die_with_parent():
    # SIGKILL this node when the test process dies, whatever happens to it.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != CFG["parent"]:
        os._exit(99)   # the parent died before prctl took effect


# ---------------------------------------------------------------- the log

_log_fd = os.open(CFG["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def log_event(**ev):
    ev.update(node=NODE, pid=os.getpid())
    os.write(_log_fd, (json.dumps(ev, separators=(",", ":")) + "\n").encode())


def handler(job):
    log_event(ev="start", task=job.task_id, name=job.name, attempt=job.attempt,
              t=time.monotonic())
    p = job.payload
    saw_cancel = False
    if NODE in p.get("hold_on", ()):
        while not job.cancelled():
            time.sleep(0.005)
        saw_cancel = True
        result = "CANCELLED"
    else:
        end = time.monotonic() + p.get("work_ms", 20) / 1000.0
        result = "COMPLETED"
        while time.monotonic() < end:
            if job.cancelled():
                saw_cancel = True
                result = "CANCELLED"
                break
            time.sleep(0.002)
    log_event(ev="end", task=job.task_id, name=job.name, attempt=job.attempt,
              t=time.monotonic(), result=result, saw_cancel=saw_cancel)
    return result


# ---------------------------------------------------------------- opening

def open_manager():
    """taskmgr.Manager with the tm_options the binding does not expose
    (lease_ms, poll_ms, grace_ms, progress_ms): set in the struct on its
    way to tm_open."""
    lib = _native._load()
    real = lib.tm_open
    extra = CFG.get("options", {})

    def tm_open(popts, out):
        o = popts._obj
        for k, v in extra.items():
            setattr(o, k, v)
        return real(popts, out)

    lib.tm_open = tm_open
    try:
        return taskmgr.Manager(CFG["store"], workers=CFG["workers"])
    finally:
        lib.tm_open = real


# ---------------------------------------------------------------- commands

def error_dict(e, t0):
    d = {"ok": False, "elapsed": time.monotonic() - t0}
    if isinstance(e, taskmgr.TaskmgrError):
        d.update(error=e.error_name, message=e.message)
    else:
        d.update(error="EXC:" + type(e).__name__, message=str(e))
    return d


def call(m, method, args):
    t0 = time.monotonic()
    try:
        res = getattr(m, method)(*args)
        return {"ok": True, "result": res, "elapsed": time.monotonic() - t0,
                "t": time.monotonic()}
    except Exception as e:   # noqa: BLE001 - every failure goes back to the test
        return error_dict(e, t0)


class Load:
    """Threads that trigger without pause, each acknowledged id appended to
    a file as "ID T" (T: time.monotonic() when the call returned)."""

    def __init__(self, m, req):
        self.m = m
        self.name = req["name"]
        self.body = req.get("body")
        self.pause = req.get("pause_ms", 10) / 1000.0
        self.ack_fd = os.open(req["ack"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = {}
        self.max_call = 0.0
        self.max_fail = 0.0
        self.slowest = None
        self.fail_times = []
        self.threads = [threading.Thread(target=self.run, daemon=True)
                        for _ in range(req.get("threads", 2))]
        for t in self.threads:
            t.start()

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                tid = self.m.trigger(self.name, self.body)["task_id"]
                t1 = time.monotonic()
                os.write(self.ack_fd, ("%s %.6f\n" % (tid, t1)).encode())
                with self.lock:
                    self.ok += 1
                    if t1 - t0 > self.max_call:
                        self.max_call, self.slowest = t1 - t0, "ok"
            except Exception as e:   # noqa: BLE001
                t1 = time.monotonic()
                name = e.error_name if isinstance(e, taskmgr.TaskmgrError) \
                    else "EXC:" + type(e).__name__
                with self.lock:
                    self.errors[name] = self.errors.get(name, 0) + 1
                    self.fail_times.append((t0, t1))
                    self.max_fail = max(self.max_fail, t1 - t0)
                    if t1 - t0 > self.max_call:
                        self.max_call, self.slowest = t1 - t0, name + ": " + str(e)
                self.stop.wait(0.05)
                continue
            self.stop.wait(self.pause)

    def finish(self, timeout):
        self.stop.set()
        end = time.monotonic() + timeout
        stuck = 0
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
            stuck += t.is_alive()
        os.close(self.ack_fd)
        with self.lock:
            fails = self.fail_times
            return {"ok": True, "acked": self.ok, "errors": self.errors,
                    "max_call": self.max_call, "max_fail": self.max_fail,
                    "slowest": self.slowest, "stuck_threads": stuck,
                    "failures": len(fails),
                    "first_fail": fails[0][0] if fails else None,
                    "last_fail": fails[-1][1] if fails else None}


class Watch:
    """Polls the newest tasks of some names and records, per task, the
    statuses seen in order (consecutive repeats dropped)."""

    def __init__(self, m, req):
        self.m = m
        self.names = req["names"]
        self.interval = req.get("interval_ms", 20) / 1000.0
        self.pages = req.get("pages", 4)
        self.obs = {}
        self.errors = {}
        self.polls = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def see(self, task):
        seq = self.obs.setdefault(task["task_id"], [])
        if not seq or seq[-1] != task["status"]:
            seq.append(task["status"])

    def run(self):
        while not self.stop.is_set():
            for name in self.names:
                try:
                    page = 1
                    for _ in range(self.pages):
                        res = self.m.list_recent(name, page=page, amt=64)
                        for task in res["tasks"]:
                            self.see(task)
                        if not res["has_next"]:
                            break
                        page = res["next_page"]
                except Exception as e:   # noqa: BLE001
                    n = getattr(e, "error_name", type(e).__name__)
                    self.errors[n] = self.errors.get(n, 0) + 1
            self.polls += 1
            self.stop.wait(self.interval)

    def finish(self, timeout):
        self.stop.set()
        self.thread.join(timeout)
        return {"ok": True, "obs": self.obs, "errors": self.errors,
                "polls": self.polls, "stuck": self.thread.is_alive()}


def serve(m):
    loads, watches = {}, {}

    def handle(req):
        rid, op = req["id"], req["op"]
        try:
            if op == "call":
                ans = call(m, req["method"], req.get("args", []))
            elif op == "race":
                # Armed: blocked on the barrier pipe until the test closes
                # its write end; then trigger at once.
                say({"id": rid, "armed": True})
                os.read(req["fd"], 1)
                ans = call(m, "trigger", [req["name"], req.get("body")])
            elif op == "list":
                t0 = time.monotonic()
                try:
                    ans = {"ok": True, "tasks": list(m.iter_recent(req["name"], amt=64))}
                except Exception as e:   # noqa: BLE001
                    ans = error_dict(e, t0)
            elif op == "load":
                loads[req["tag"]] = Load(m, req)
                ans = {"ok": True}
            elif op == "load_stop":
                ans = loads.pop(req["tag"]).finish(req.get("timeout", 40))
            elif op == "watch":
                watches[req["tag"]] = Watch(m, req)
                ans = {"ok": True}
            elif op == "watch_stop":
                ans = watches.pop(req["tag"]).finish(req.get("timeout", 40))
            else:
                ans = {"ok": False, "error": "EXC:unknown op " + op}
        except Exception as e:   # noqa: BLE001
            ans = {"ok": False, "error": "EXC:" + type(e).__name__,
                   "message": traceback.format_exc()}
        ans.update(id=rid, final=True)
        say(ans)

    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "close":
            for w in list(watches.values()):
                w.finish(10)
            for ld in list(loads.values()):
                ld.finish(10)
            t0 = time.monotonic()
            m.close()
            say({"id": req["id"], "final": True, "ok": True,
                 "elapsed": time.monotonic() - t0})
            return
        threading.Thread(target=handle, args=(req,), daemon=True).start()
    # stdin closed: the test is gone or gave up on us.
    m.close()


def main():
    die_with_parent()
    try:
        m = open_manager()
        for spec in CFG["names"]:
            spec = dict(spec)
            name = spec.pop("name")
            m.register(name, run=handler, **spec)
    except Exception as e:   # noqa: BLE001
        say({"event": "open_failed", "error": getattr(e, "error_name", type(e).__name__),
             "message": str(e)})
        return 3
    say({"event": "ready", "pid": os.getpid()})
    serve(m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
