"""Start a real taskmgr-server on a free loopback port and talk HTTP to it.

Used by the end-to-end tests of the `http` suite.  The server binary comes
from $TASKMGR_SERVER (set by tests/http/meson.build).  Every server started
here is killed when the test process exits, whatever happens: by stop(), by
an atexit hook, and, should this process die first, by the kernel
(PR_SET_PDEATHSIG).

The store is the directory <workdir>/tasks, or under TM_TEST_BACKEND=pg
(meson test --setup pg) a PostgreSQL schema of its own named after that
directory (tests/tmbackend.py): servers sharing a workdir share a store,
as they would its directory.
"""
import atexit
import ctypes
import http.client
import json
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import tmbackend

SERVER = os.environ.get("TASKMGR_SERVER", "")
SERVER = os.path.abspath(SERVER) if SERVER else ""
# e.g. "valgrind --error-exitcode=99 --leak-check=full": runs every server
# started here under that command.
WRAPPER = os.environ.get("TASKMGR_SERVER_WRAPPER", "").split()
START_TIMEOUT = 15.0
REQUEST_TIMEOUT = 15.0

ROLES = ("root", "manager", "backend", "frontend")
ML_NAMES = ("ml_model_retrain", "item_popularity_score_recalibrate",
            "ml_new_users", "ml_new_items")
TABLE_NAMES = ("data_import", "reco_export", "user_id_whitelist_export",
               "analytics_report_export")
FINAL = ("FAILED", "CANCELLED", "COMPLETED")

_running = []


def _kill_all():
    for p in list(_running):
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_all)


def _die_with_parent():
    # In the child, before exec: SIGKILL it if the test process dies.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def wait_for(pred, timeout=20.0, what="condition"):
    """Poll pred() until it returns a true value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


def write_private(path, text):
    """Write a file only its owner may read (mode 0600), as the server
    wants of a tokens file, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def make_tokens():
    """One token per role, 32+ characters each."""
    return {role: "tok-%s-%s" % (role, os.urandom(12).hex()) for role in ROLES}


class Server:
    """One taskmgr-server process on its own store and tables directory."""

    def __init__(self, workdir=None, tokens=None, workers=2, simulate=1,
                 extra=()):
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="tmhttp-")
        self.store = os.path.join(self.dir, "tasks")  # the directory naming it
        self.tables = os.path.join(self.dir, "tables")
        self.tokens = tokens
        self.workers = workers
        self.simulate = simulate
        self.extra = list(extra)
        self.proc = None
        self.addr = None
        self.root_token = None
        self.lines = []
        self.log_path = os.path.join(self.dir, "server-%d.log" % os.getpid())

    def argv(self):
        a = [SERVER, "--listen", "127.0.0.1:0",
             "--store", tmbackend.store_path(self.store),
             "--tables", self.tables, "--workers", str(self.workers),
             "--simulate-seconds", str(self.simulate)]
        if self.tokens is not None:
            path = os.path.join(self.dir, "tokens")
            write_private(path, "# role token\n" + "".join(
                "%s %s\n" % (role, tok) for role, tok in self.tokens.items()))
            a += ["--tokens", path]
        return a + self.extra

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(WRAPPER + self.argv(), stdout=subprocess.PIPE,
                                     stderr=self.log, cwd=self.dir,
                                     preexec_fn=_die_with_parent)
        _running.append(self.proc)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT
        buf = b""
        try:
            while self.addr is None:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise AssertionError("server did not print 'listening on'"
                                         + self.log_tail())
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise AssertionError("server exited at start"
                                         + self.log_tail())
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._line(line.decode())
        except BaseException:
            self.kill()
            raise
        finally:
            sel.close()
        return self

    def _line(self, line):
        self.lines.append(line)
        if line.startswith("root token: "):
            self.root_token = line[len("root token: "):]
        elif line.startswith("listening on "):
            host, port = line[len("listening on "):].rsplit(":", 1)
            self.addr = (host, int(port))

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return "\n--- server log ---\n" + f.read()[-4000:].decode(
                    "utf-8", "replace")
        except OSError:
            return ""

    def token(self, role="root"):
        if self.tokens is None:
            return self.root_token if role == "root" else None
        return self.tokens.get(role)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stop gracefully; returns the exit status (killed if it hangs)."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p.stdout.close()
        self.log.close()
        if p in _running:
            _running.remove(p)
        return p.returncode

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.stop()

    def cleanup(self):
        self.kill()
        if self.own_dir:
            tmbackend.drop_under(self.dir)
            shutil.rmtree(self.dir, ignore_errors=True)

    def write_table(self, name, text):
        """Put a LOCAL table (a file) in the server's tables directory."""
        os.makedirs(self.tables, exist_ok=True)
        path = os.path.join(self.tables, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    # ---- HTTP -----------------------------------------------------------

    def request(self, method, path, token=None, body=None, raw=None,
                headers=None):
        """(status, headers dict, parsed JSON or None, raw bytes)."""
        conn = http.client.HTTPConnection(*self.addr, timeout=REQUEST_TIMEOUT)
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            doc = None
        return r.status, hdrs, doc, payload

    def call(self, method, path, body=None, role="root", expect=200, raw=None):
        """A request that must answer `expect`; returns the JSON body."""
        st, _, doc, payload = self.request(method, path, self.token(role),
                                           body=body, raw=raw)
        if st != expect:
            raise AssertionError("%s %s: %d %r, expected %d" % (
                method, path, st, payload[:500], expect))
        return doc

    def serves(self):
        """Whether a request is answered 200 now (not refused, not cut)."""
        try:
            return self.request("GET", "/tasks/ml_new_users/recents/",
                                self.token())[0] == 200
        except OSError:
            return False

    def trigger(self, name, body=None, private=True):
        path = "/tasks/private/%s/" % name if private else "/tasks/%s/" % name
        return self.call("POST", path, body)["task_id"]

    def get(self, name, task_id):
        return self.call("GET", "/tasks/private/%s/%s/" % (name, task_id))

    def settle(self, name="ml_new_items", timeout=30):
        """Wait until `name` has no active task.  Every data_import that
        completes is followed by an ml_new_items (the example's pipeline,
        doc/http.md), which is exclusive: a test that triggers
        ml_new_items, or wants an import without the warning of a busy
        ml_new_items, waits for the one an earlier import made."""
        def idle():
            n = self.call("GET", "/stats/")["names"][name]
            return n["REQUEST_SENT"] + n["RUNNING"] + n["CANCELLED_REQUESTED"] == 0
        wait_for(idle, timeout, "%s to have no active task" % name)

    def wait_status(self, name, task_id, statuses, timeout=30):
        def check():
            t = self.get(name, task_id)
            return t if t["status"] in statuses else None
        return wait_for(check, timeout, "%s %s to reach %s" % (
            name, task_id, "/".join(statuses)))


class ServerTestCase(unittest.TestCase):
    """A test class sharing one server, started in setUpClass."""

    server_args = {}

    @classmethod
    def setUpClass(cls):
        if not SERVER:
            raise unittest.SkipTest("TASKMGR_SERVER is not set")
        cls.srv = Server(**cls.server_args)
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        # A graceful stop must end with status 0: under ASan or Valgrind
        # that also says the server freed everything.
        log = cls.srv.log_tail()
        try:
            rc = cls.srv.stop()
            log = cls.srv.log_tail()
        finally:
            cls.srv.cleanup()
        if rc != 0:
            raise AssertionError("server exited with %r%s" % (rc, log))

    def assertError(self, resp, status, name, code=None, cls_name=None):
        st, _, doc, payload = resp
        self.assertEqual(st, status, payload[:300])
        self.assertIsInstance(doc, dict, payload[:300])
        self.assertEqual(set(doc), {"error_code", "error_name", "message",
                                    "error_data"})
        self.assertEqual(doc["error_data"]["name"], name, doc)
        self.assertIsInstance(doc["message"], str)
        if code is not None:
            self.assertEqual(doc["error_code"], code, doc)
        if cls_name is not None:
            self.assertEqual(doc["error_name"], cls_name, doc)
        return doc


class ServersTestCase(unittest.TestCase):
    """Each test starts its own servers (start()) in one temporary
    directory with a tokens file; every one is killed, the directory and
    its stores removed, when the test ends."""

    def setUp(self):
        if not SERVER:
            raise unittest.SkipTest("TASKMGR_SERVER is not set")
        self.dir = tempfile.mkdtemp(prefix="tmhttp-")
        self.tokens = make_tokens()
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill()
        tmbackend.drop_under(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, **kw):
        s = Server(workdir=self.dir, tokens=self.tokens, **kw)
        self.servers.append(s)
        return s.start()
