"""Writes on the write threads: a request that changes the store waits for
its commit on a thread of --write-threads, not on an HTTP thread, so with
one HTTP thread a read is answered while a write waits for the store.

The test holds the store's writer from outside the server (LMDB: a write
transaction of its own on the store's files, through liblmdb; PostgreSQL:
psql locks the tasks table against writes) and waits until the server's
write is seen waiting for it (LMDB: a thread of the server in futex() on
an address of the store's lock file; PostgreSQL: a backend of the store's
schema waiting on a lock)."""
import ctypes
import ctypes.util
import os
import platform
import shutil
import subprocess
import threading
import unittest

import tmbackend
from serverlib import ServerTestCase, wait_for

NAME = "analytics_report_export"
BODY = {"context_task": {"output_table": {"connection": "LOCAL",
                                          "name": "held.json"}}}
# futex(2)'s number in /proc/PID/task/TID/syscall
SYS_FUTEX = {"x86_64": "202", "aarch64": "98"}.get(platform.machine())


class LmdbWriter:
    """A write transaction on the store's LMDB files: the writer's lock,
    held until release()."""

    def __init__(self, store):
        name = ctypes.util.find_library("lmdb")
        if name is None:
            raise unittest.SkipTest("liblmdb not found")
        if SYS_FUTEX is None:
            raise unittest.SkipTest("futex's number on %s is not known here"
                                    % platform.machine())
        self.lib = ctypes.CDLL(name)
        self.lib.mdb_env_create.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        self.lib.mdb_env_set_maxdbs.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        self.lib.mdb_env_open.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                          ctypes.c_uint, ctypes.c_uint]
        self.lib.mdb_txn_begin.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                           ctypes.c_uint,
                                           ctypes.POINTER(ctypes.c_void_p)]
        self.lib.mdb_txn_abort.argtypes = [ctypes.c_void_p]
        self.lib.mdb_env_close.argtypes = [ctypes.c_void_p]
        self.store = store
        self.env = ctypes.c_void_p()
        self.txn = ctypes.c_void_p()
        self.check(self.lib.mdb_env_create(ctypes.byref(self.env)), "env_create")
        self.check(self.lib.mdb_env_set_maxdbs(self.env, 16), "set_maxdbs")
        self.check(self.lib.mdb_env_open(self.env, store.encode(), 0, 0o600),
                   "env_open")
        self.check(self.lib.mdb_txn_begin(self.env, None, 0, ctypes.byref(self.txn)),
                   "txn_begin")

    @staticmethod
    def check(rc, what):
        if rc != 0:
            raise AssertionError("mdb_%s: %d" % (what, rc))

    def waited_on_by(self, pid):
        """Whether a thread of pid is in futex() on the store's lock file."""
        lock = os.path.realpath(os.path.join(self.store, "lock.mdb"))
        spans = []
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                if line.rstrip("\n").endswith(lock):
                    lo, hi = line.split()[0].split("-")
                    spans.append((int(lo, 16), int(hi, 16)))
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                    fields = f.read().split()
            except OSError:
                continue
            if len(fields) > 1 and fields[0] == SYS_FUTEX:
                addr = int(fields[1], 16)
                if any(lo <= addr < hi for lo, hi in spans):
                    return True
        return False

    def release(self):
        self.lib.mdb_txn_abort(self.txn)
        self.lib.mdb_env_close(self.env)


class PgWriter:
    """psql holds the store's tasks table in EXCLUSIVE mode: reads go on,
    writes wait, until release()."""

    def __init__(self, store):
        psql = shutil.which("psql")
        if psql is None:
            raise unittest.SkipTest("psql not found")
        self.url = tmbackend._url()
        self.schema = tmbackend.schema_of(store)
        self.psql = psql
        self.p = subprocess.Popen([psql, "-X", "-q", "-A", "-t", "-v",
                                   "ON_ERROR_STOP=1", "-d", self.url],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  universal_newlines=True)
        self.p.stdin.write("BEGIN; LOCK TABLE %s.tasks IN EXCLUSIVE MODE;"
                           " SELECT 'locked';\n" % self.schema)
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if line.strip() != "locked":
            raise AssertionError("psql did not take the lock: %r" % line)

    def waited_on_by(self, pid):
        del pid  # the server's sessions are its own backends
        out = subprocess.run(
            [self.psql, "-X", "-q", "-A", "-t", "-d", self.url, "-c",
             "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
             "'Lock' AND query LIKE '%%%s.%%'" % self.schema],
            stdout=subprocess.PIPE, universal_newlines=True, timeout=30,
            check=True).stdout
        return int(out.strip() or 0) > 0

    def release(self):
        self.p.stdin.write("ROLLBACK;\n\\q\n")
        self.p.stdin.flush()
        self.p.wait(timeout=30)


class WritesOffTheHttpThread(ServerTestCase):
    # One HTTP thread: were the write on it, the read below would wait.
    server_args = {"workers": 0, "extra": ["--http-threads", "1",
                                           "--write-threads", "2"]}

    def test_a_read_is_answered_while_a_write_waits_for_the_store(self):
        self.srv.trigger(NAME, BODY)  # the store and the name exist
        held = (PgWriter if tmbackend.PG else LmdbWriter)(self.srv.store)
        answer = {}

        def post():
            answer["post"] = self.srv.request("POST", "/tasks/private/%s/" % NAME,
                                              self.srv.token(), body=BODY)
        t = threading.Thread(target=post)
        try:
            t.start()
            wait_for(lambda: held.waited_on_by(self.srv.proc.pid), 15,
                     "the server's write to wait for the store")
            st, _, doc, _ = self.srv.request(
                "GET", "/tasks/private/%s/recents/?amt=10" % NAME, self.srv.token())
            self.assertEqual(st, 200)
            self.assertEqual(len(doc["tasks"]), 1)
            self.assertTrue(t.is_alive(), "the write did not wait")
        finally:
            held.release()
            t.join(30)
        st, _, doc, _ = answer["post"]
        self.assertEqual(st, 200, doc)
        self.assertEqual(len(self.srv.call(
            "GET", "/tasks/private/%s/recents/?amt=10" % NAME)["tasks"]), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
