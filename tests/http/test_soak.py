"""A soak of the example server: SOAK_SECONDS (default 20; 600 for the long
run) of mixed load from 64 connections at once -- triggers, lists, reads,
patches and cancels of public and private tasks, with jobs running -- while
the server's memory and descriptors are sampled every second from /proc.

It fails on any answer but 200 and the intended refusals
(TASK_ALREADY_RUNNING, LOWER_STATUS_NOT_ALLOWED), on any connection error,
on anonymous memory (the heap: RssAnon) of the last third of the run more
than SOAK_GROWTH (default 25%) above the first third, after a warm-up of
a quarter of the run, and on descriptors that grow or are not released
when the clients leave.  VmRSS is reported beside it: it also counts the
pages of the LMDB map, which grows with the store, and is no measure of a
leak.  (glibc's per-thread arenas make the heap creep up by a few percent a
minute, slower and slower, under this load; with MALLOC_ARENA_MAX=1 it is
flat.  A leak of 4 bytes a request fails the 600 s run.)

SOAK_REQUESTS bounds the number of requests (default: none but time).
Prints a summary: requests by status, requests/s, memory and descriptors."""
import collections
import http.client
import json
import os
import random
import sys
import threading
import time
import unittest

import tmbackend
from serverlib import ML_NAMES, ServerTestCase, wait_for

PG_POOL_MAX = 32  # TM__PG_POOL_MAX: sessions a PostgreSQL store may keep

SECONDS = float(os.environ.get("SOAK_SECONDS") or 20)
MAX_REQUESTS = int(os.environ.get("SOAK_REQUESTS") or 0)
GROWTH = float(os.environ.get("SOAK_GROWTH") or 0.25)
CLIENTS = 64
WARMUP = max(2.0, SECONDS / 4)
INTENDED = {(400, "TASK_ALREADY_RUNNING"), (400, "LOWER_STATUS_NOT_ALLOWED")}


def proc_status(pid):
    """{field: kB} of /proc/PID/status for the memory fields."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []      # (seconds, VmRSS kB, RssAnon kB, fds)
        self.halt = threading.Event()
        self.t0 = time.monotonic()

    def run(self):
        while not self.halt.is_set():
            m = proc_status(self.pid)
            fds = len(os.listdir("/proc/%d/fd" % self.pid))
            self.samples.append((time.monotonic() - self.t0, m["VmRSS"],
                                 m["RssAnon"], fds))
            self.halt.wait(1.0)   # the sampling period

    def stop(self):
        self.halt.set()
        self.join(10)


class Client(threading.Thread):
    """One keep-alive connection making a random mix of requests."""

    def __init__(self, soak, seed):
        super().__init__(daemon=True)
        self.soak = soak
        self.rnd = random.Random(seed)
        self.conn = None
        self.auth = {"Authorization": "Bearer " + soak.srv.token()}

    def send(self, method, path, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(*self.soak.srv.addr, timeout=30)
        data = json.dumps(body).encode() if body is not None else None
        try:
            self.conn.request(method, path, body=data, headers=self.auth)
            r = self.conn.getresponse()
            payload = r.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = None
            self.soak.count(("error", type(e).__name__), "%s %s" % (method, path))
            return None
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = None
        name = doc.get("error_data", {}).get("name") if r.status != 200 and \
            isinstance(doc, dict) else None
        why = ": " + str(doc.get("message")) if name else ""
        self.soak.count((r.status, name), "%s %s%s" % (method, path, why))
        return doc if r.status == 200 else None

    def one(self):
        rnd, soak = self.rnd, self.soak
        x = rnd.random()
        ml = rnd.choice(ML_NAMES)
        known = soak.pick(rnd)
        if x < 0.25:
            doc = self.send("POST", "/tasks/%s/" % ml,
                            {"context_task": {"n": rnd.randrange(1000)}})
            if doc:
                soak.remember(ml, doc["task_id"])
        elif x < 0.40:
            doc = self.send("POST", "/tasks/private/data_import/",
                            {"context_task": {"connection": "LOCAL",
                                              "table_name": "users.csv"},
                             "refresh_token": "rt-%d" % rnd.randrange(10 ** 9)})
            if doc:
                soak.remember("data_import", doc["task_id"])
        elif x < 0.65:
            name = rnd.choice(ML_NAMES + ("data_import",))
            path = ("/tasks/private/%s/recents/" if rnd.random() < 0.5 else
                    "/tasks/%s/recents/") % name
            if name == "data_import":
                path = "/tasks/private/data_import/recents/"
            self.send("GET", path + "?page=%d&amt=%d" % (rnd.randint(1, 3),
                                                         rnd.randint(1, 64)))
        elif known and x < 0.75:
            self.send("GET", "/tasks/private/%s/%s/" % known)
        elif known and x < 0.90:
            body = rnd.choice([{"status": "RUNNING"},
                               {"details": {"progress": {"message": "soak"}}},
                               {"details": {"soak": rnd.randrange(100)}},
                               {"completed": True}, {"failed": True}])
            self.send("PATCH", "/tasks/private/%s/%s/" % known, body)
        elif known:
            self.send("DELETE", "/tasks/private/%s/%s/" % known)
        else:
            self.send("GET", "/tasks/%s/recents/" % ml)

    def run(self):
        while self.soak.go():
            self.one()
        if self.conn:
            self.conn.close()


class Soak(ServerTestCase):
    server_args = {"workers": 2, "simulate": 0.5,
                   # 64 clients from one address, and their reconnections
                   "extra": ["--per-ip-connections", "0"]}

    def setUp(self):
        self.lock = threading.Lock()
        self.by_status = collections.Counter()
        self.bad = []
        self.tasks = collections.deque(maxlen=256)
        self.requests = 0
        self.end = time.monotonic() + SECONDS
        self.srv.write_table("users.csv", "user_id\n" + "".join(
            "u%d\n" % i for i in range(200)))

    def go(self):
        with self.lock:
            if MAX_REQUESTS and self.requests >= MAX_REQUESTS:
                return False
        return time.monotonic() < self.end

    def count(self, key, what):
        with self.lock:
            self.requests += 1
            self.by_status[key] += 1
            if key[0] != 200 and key not in INTENDED and len(self.bad) < 20:
                self.bad.append((key, what))

    def remember(self, name, tid):
        with self.lock:
            self.tasks.append((name, tid))

    def pick(self, rnd):
        with self.lock:
            return rnd.choice(self.tasks) if self.tasks else None

    def test_memory_and_descriptors_stay_flat_under_mixed_load(self):
        pid = self.srv.proc.pid
        idle_fds = len(os.listdir("/proc/%d/fd" % pid))
        sampler = Sampler(pid)
        sampler.start()
        clients = [Client(self, seed) for seed in range(CLIENTS)]
        t0 = time.monotonic()
        for c in clients:
            c.start()
        for c in clients:
            c.join(SECONDS + 120)
        elapsed = time.monotonic() - t0
        # Every client closed its connection: the server lets them go.  A
        # PostgreSQL store keeps the sessions its pool opened under load
        # (at most 32, lib/store_pg_shared.h): they are not the clients'.
        keep = idle_fds + (PG_POOL_MAX if tmbackend.PG else 0)
        wait_for(lambda: len(os.listdir("/proc/%d/fd" % pid)) <= keep, 30,
                 "the server to close the clients' connections")
        sampler.stop()

        s = [x for x in sampler.samples if x[0] >= WARMUP and x[0] <= elapsed]
        third = max(len(s) // 3, 1)
        first, last = s[:third], s[-third:]

        def mean(rows, i):
            return sum(r[i] for r in rows) / len(rows)
        report = {
            "seconds": round(elapsed, 1),
            "requests": self.requests,
            "requests_per_s": round(self.requests / elapsed, 1),
            "by_status": {"%s %s" % k: n for k, n in sorted(
                self.by_status.items(), key=str)},
            "VmRSS_kB_first_third": round(mean(first, 1)),
            "VmRSS_kB_last_third": round(mean(last, 1)),
            "RssAnon_kB_first_third": round(mean(first, 2)),
            "RssAnon_kB_last_third": round(mean(last, 2)),
            "VmHWM_kB": proc_status(pid)["VmHWM"],
            "fds_idle": idle_fds,
            "fds_max_first_third": max(r[3] for r in first),
            "fds_max_last_third": max(r[3] for r in last),
            "fds_after": len(os.listdir("/proc/%d/fd" % pid)),
            "samples": len(sampler.samples),
        }
        print("soak: " + json.dumps(report, indent=1), file=sys.stderr)
        if os.environ.get("SOAK_SAMPLES"):
            for x in sampler.samples:
                print("sample %6.1f s  VmRSS %7d kB  RssAnon %7d kB  fds %5d"
                      % x, file=sys.stderr)
        self.assertEqual(self.bad, [], "unexpected answers (first 20)")
        self.assertGreater(self.requests, 0)
        self.assertGreaterEqual(len(s), 6, "too few samples")
        self.assertLessEqual(mean(last, 2), mean(first, 2) * (1 + GROWTH),
                             "the heap grew: %r" % report)
        self.assertLessEqual(report["fds_max_last_third"],
                             report["fds_max_first_third"] + 4 +
                             (PG_POOL_MAX if tmbackend.PG else 0),
                             "descriptors grew: %r" % report)


if __name__ == "__main__":
    unittest.main(verbosity=2)
