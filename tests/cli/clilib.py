"""Run taskmgr, the operator's tool, against a store that a real host uses
at the same time.

The tool is $TASKMGR_CLI, the host the example server $TASKMGR_SERVER
(tests/cli/meson.build sets both), started by tests/http/serverlib.py on a
free loopback port with its store in a temporary directory, or under
TM_TEST_BACKEND=pg (meson test --setup pg) in a PostgreSQL schema named
after that directory (tests/tmbackend.py): taskmgr gets the same path.
"""
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import tmbackend
from serverlib import Server, wait_for

CLI = os.environ.get("TASKMGR_CLI", "")
CLI = os.path.abspath(CLI) if CLI else ""
RUN_TIMEOUT = 60.0
FINAL = ("FAILED", "CANCELLED", "COMPLETED")
STATUSES = ("REQUEST_SENT", "RUNNING", "CANCELLED_REQUESTED") + FINAL
ID_RE = re.compile(r"^[A-Za-z0-9]{20}$")


def cli_env(extra=None):
    """The environment of a run: the test's, without NO_COLOR unless given."""
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    env.update(extra or {})
    return env


def run(args, store=None, input=None, env=None):
    """Run taskmgr with args (after --store store, when given): the
    CompletedProcess, text out and err."""
    argv = [CLI] + (["--store", store] if store is not None else []) + list(args)
    stdin = {} if input is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          env=cli_env(env), timeout=RUN_TIMEOUT, **stdin)


def run_pty(args, store, env=None, timeout=RUN_TIMEOUT):
    """Run taskmgr with stdout (and stdin, stderr) on a pseudo-terminal;
    (exit status, every byte it wrote)."""
    master, slave = pty.openpty()
    argv = [CLI, "--store", store] + list(args)
    try:
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                             env=cli_env(env), close_fds=True)
    finally:
        os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("taskmgr %s did not end on the terminal; it "
                                     "wrote %r" % (" ".join(args), out[-2000:]))
            if not select.select([master], [], [], left)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
        return p.wait(timeout=RUN_TIMEOUT), out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


class HostCase(unittest.TestCase):
    """Tests sharing one host (the example server) and its store."""

    workers = 2
    simulate = 1

    @classmethod
    def setUpClass(cls):
        if not CLI or not os.environ.get("TASKMGR_SERVER"):
            raise unittest.SkipTest("TASKMGR_CLI or TASKMGR_SERVER is not set")
        cls.srv = Server(workers=cls.workers, simulate=cls.simulate)
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.cleanup()
            raise
        cls.store = tmbackend.store_path(cls.srv.store)
        cls.tmp = tempfile.mkdtemp(prefix="tmcli-")

    @classmethod
    def tearDownClass(cls):
        log = cls.srv.log_tail()
        try:
            rc = cls.srv.stop()
            log = cls.srv.log_tail()
        finally:
            cls.srv.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError("the host exited with %r%s" % (rc, log))

    # ---- running taskmgr ----------------------------------------------------

    def tm(self, *args, input=None, env=None):
        """A run that must succeed, with nothing on stderr."""
        r = run(args, self.store, input=input, env=env)
        self.assertEqual((r.returncode, r.stderr), (0, ""),
                         "taskmgr %s: %s" % (" ".join(args), r.stdout[-1000:]))
        return r.stdout

    def tm_json(self, *args):
        return json.loads(self.tm("--json", *args))

    def assertFails(self, args, error_name, text=None, store=None):
        """taskmgr args fails with exit status 1, nothing on stdout and one
        line on stderr, "taskmgr: ERROR_NAME: message"."""
        r = run(args, self.store if store is None else store)
        self.assertEqual(r.returncode, 1, (args, r.stdout, r.stderr))
        self.assertEqual(r.stdout, "", args)
        lines = r.stderr.split("\n")
        self.assertEqual(len(lines), 2, (args, r.stderr))
        self.assertEqual(lines[1], "", (args, r.stderr))
        self.assertTrue(lines[0].startswith("taskmgr: %s: " % error_name),
                        (args, r.stderr))
        self.assertGreater(len(lines[0]), len("taskmgr: %s: " % error_name), args)
        if text is not None:
            self.assertIn(text, lines[0], args)
        return lines[0]

    def assertBadUsage(self, args, text=None):
        """taskmgr args is a usage error: exit status 2, nothing on stdout,
        "taskmgr: why" then the usage text on stderr."""
        r = run(args, None if "--store" in args else self.store)
        self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
        self.assertEqual(r.stdout, "", args)
        first, _, rest = r.stderr.partition("\n")
        self.assertTrue(first.startswith("taskmgr: "), (args, r.stderr))
        self.assertIn("usage: taskmgr", rest, args)
        if text is not None:
            self.assertIn(text, first, args)
        return first

    # ---- the store ------------------------------------------------------------

    def trigger(self, name, body=None, *opts):
        args = ["trigger", name] + ([json.dumps(body)] if body is not None else [])
        out = self.tm(*(args + list(opts)))
        task_id = out.strip()
        self.assertRegex(task_id, ID_RE)
        self.assertEqual(out, task_id + "\n")
        return task_id

    def get(self, name, task_id):
        return self.tm_json("show", name, task_id)

    def wait_status(self, name, task_id, statuses, timeout=60):
        def check():
            t = self.get(name, task_id)
            return t if t["status"] in statuses else None
        return wait_for(check, timeout, "%s %s to reach %s" % (
            name, task_id, "/".join(statuses)))

    def all_tasks(self, name):
        """Every task of name, newest first, through ls --json pages."""
        tasks, page = [], 1
        while True:
            doc = self.tm_json("ls", name, "--amt", "64", "--page", str(page))
            tasks += doc["tasks"]
            if not doc["has_next"]:
                return tasks
            page += 1

    def snapshot(self):
        """What the store holds: every name's figures and every task."""
        names = self.tm_json("names")["names"]
        return {"names": names,
                "tasks": {n: self.all_tasks(n) if f["total"] else []
                          for n, f in sorted(names.items())}}

    def quiet(self):
        """Wait until no task is active: the host then changes nothing,
        and a snapshot stays the same unless someone writes."""
        def idle():
            names = self.tm_json("names")["names"]
            return all(f["REQUEST_SENT"] + f["RUNNING"] + f["CANCELLED_REQUESTED"] == 0
                       for f in names.values())
        wait_for(idle, 60, "every task to end")
        return self.snapshot()


def lmdb_only(reason):
    return tmbackend.lmdb_only(reason)


__all__ = ["CLI", "FINAL", "HostCase", "ID_RE", "STATUSES", "run", "run_pty",
           "lmdb_only", "wait_for", "signal", "tmbackend"]
