"""The multinode suite's harness: node processes on one store, a TCP proxy
that can cut one of them off, and the history checks every test ends with.

The store: $TM_TEST_STORE, else $TM_TEST_PG_URL, else "lmdb".
  - "lmdb" or a directory: a fresh LMDB store in a new temporary directory
    (under that directory, or under $TMPDIR for "lmdb"), removed at the end;
  - a postgresql:// or postgres:// URI: that database, with a fresh schema
    taskmgr_schema=mn_<random hex> per store, dropped at the end (psql).
Every process started here dies with the test process (PR_SET_PDEATHSIG in
node.py, an atexit hook here), and a SIGTERM (meson's timeout) unwinds
through the same clean-up.
"""
import atexit
import collections
import glob
import json
import os
import queue
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_PY = os.path.join(HERE, "node.py")
SKIP = 77

# Small leases so that recovery takes seconds; poll_ms well under them.
# keep_count: retention must not prune the final tasks a test still checks.
# $TM_TEST_LEASE_MS overrides the lease (e.g. 30000, the library's default).
OPTIONS = {"lease_ms": int(os.environ.get("TM_TEST_LEASE_MS") or 1500), "poll_ms": 100,
           "grace_ms": 5000, "keep_count": 1000000}
# What a call may take at most, whatever the store is going through.
CALL_BOUND = 30.0
# How long a test waits for a condition that must come (generous: these
# are deadlines against hangs, not timing requirements).
WAIT = 60.0

RANK = {"REQUEST_SENT": 0, "RUNNING": 1, "CANCELLED_REQUESTED": 2,
        "FAILED": 3, "CANCELLED": 3, "COMPLETED": 3}
FINAL = ("FAILED", "CANCELLED", "COMPLETED")
PG_SCHEMES = ("postgresql://", "postgres://")


class Skip(Exception):
    pass


class Failed(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def wait_for(pred, timeout=WAIT, what="condition", interval=0.01):
    """Poll pred() until it returns a true value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failed("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------- the store

def store_base():
    s = os.environ.get("TM_TEST_STORE", "")
    if not s:
        s = os.environ.get("TM_TEST_PG_URL", "") or "lmdb"
    return s


def is_pg(s):
    return s.startswith(PG_SCHEMES)


def uri_without(uri, key):
    u = urllib.parse.urlsplit(uri)
    q = [(k, v) for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True)
         if k != key]
    return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))


def libpq_uri(uri):
    """uri without the library's own parameters (taskmgr_*), for psql."""
    u = urllib.parse.urlsplit(uri)
    q = [(k, v) for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True)
         if not k.startswith("taskmgr_")]
    return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))


def uri_with(uri, key, value):
    """uri with ?key=value, or &key=value when it has a query already."""
    uri = uri_without(uri, key)
    u = urllib.parse.urlsplit(uri)
    sep = "&" if u.query else "?"
    frag = ""
    if "#" in uri:
        uri, frag = uri.split("#", 1)
        frag = "#" + frag
    return uri + sep + urllib.parse.urlencode({key: value}) + frag


def uri_via(uri, host, port):
    """uri with its host and port replaced (through the proxy)."""
    u = urllib.parse.urlsplit(uri)
    if "," in u.netloc or not u.hostname:
        raise Skip("the proxy test needs a URI with one TCP host: %s" % uri)
    q = dict(urllib.parse.parse_qsl(u.query))
    if "host" in q or "hostaddr" in q or "port" in q:
        raise Skip("the proxy test needs host and port in the URI's authority")
    userinfo = u.netloc.rsplit("@", 1)[0] + "@" if "@" in u.netloc else ""
    return urllib.parse.urlunsplit(u._replace(netloc="%s%s:%d" % (userinfo, host, port)))


def uri_target(uri):
    u = urllib.parse.urlsplit(uri)
    return u.hostname, u.port or 5432


def psql_path():
    found = shutil.which("psql")
    if found:
        return found
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    return cands[-1] if cands else None


def psql(uri, sql):
    exe = psql_path()
    if exe is None:
        raise RuntimeError("no psql")
    out = subprocess.run([exe, libpq_uri(uri), "-X", "-A", "-t", "-q",
                          "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("psql %r: %s" % (sql, out.stderr.strip()))
    return out.stdout.strip()


# ---------------------------------------------------------------- clean-up

_cleanups = []   # run last-in first-out at exit and after each test
_children = []   # every node process ever started


def _kill_children():
    for p in list(_children):
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
            p.wait()


def _run_cleanups():
    _kill_children()
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception:   # noqa: BLE001
            traceback.print_exc()


atexit.register(_run_cleanups)


def _on_term(signum, frame):
    sys.exit(128 + signum)   # unwind: finally blocks and atexit clean up


# ---------------------------------------------------------------- nodes

class NodeDied(Failed):
    pass


class Node:
    """A node process (node.py) with its own Manager on the cluster's store."""

    def __init__(self, cluster, node_id, store=None, workers=1, names=None,
                 options=None, pass_fds=()):
        self.cluster = cluster
        self.id = node_id
        self.log = os.path.join(cluster.dir, "events-%s.log" % node_id)
        self.stderr_path = os.path.join(cluster.dir, "stderr-%s.log" % node_id)
        self.store = store or cluster.store
        cfg = {"node": node_id, "parent": os.getpid(), "store": self.store,
               "workers": workers, "options": dict(OPTIONS, **(options or {})),
               "log": self.log, "names": names if names is not None else cluster.names}
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([sys.executable, NODE_PY, json.dumps(cfg)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, env=env, pass_fds=pass_fds,
                                     close_fds=True)
        _children.append(self.proc)
        cluster.nodes.append(self)
        self.dead_at = None       # time.monotonic() once we know it is gone
        self.killed = False
        self._lock = threading.Lock()
        self._next = 0
        self._replies = {}
        self._events = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ev = self._event(WAIT)
        if ev.get("event") != "ready":
            raise Failed("node %s did not open %s: %s" % (node_id, self.store, ev))
        self.pid = ev["pid"]

    def _read(self):
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "id" in msg:
                with self._lock:
                    q = self._replies.get(msg["id"])
                if q is not None:
                    q.put(msg)
            else:
                self._events.put(msg)
        self._events.put({"event": "eof"})
        with self._lock:
            for q in self._replies.values():
                q.put({"eof": True})

    def _event(self, timeout):
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            raise Failed("node %s: no word after %gs" % (self.id, timeout))

    def send(self, op, **kw):
        """Send a command; returns its reply queue."""
        with self._lock:
            self._next += 1
            rid = self._next
            q = self._replies[rid] = queue.Queue()
        req = dict(kw, id=rid, op=op)
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise NodeDied("node %s is gone (command %s)" % (self.id, op))
        return q

    def reply(self, q, timeout=CALL_BOUND + 10, what="reply"):
        try:
            msg = q.get(timeout=timeout)
        except queue.Empty:
            raise Failed("node %s: no %s after %gs (a call hangs)" % (self.id, what, timeout))
        if msg.get("eof"):
            raise NodeDied("node %s died before its %s" % (self.id, what))
        return msg

    def request(self, op, timeout=CALL_BOUND + 10, **kw):
        q = self.send(op, **kw)
        while True:
            msg = self.reply(q, timeout, op)
            if msg.get("final"):
                return msg

    def call(self, method, *args, timeout=CALL_BOUND + 10):
        """A Manager method on the node: {"ok": True, "result": ...} or
        {"ok": False, "error": ERROR_NAME, "message": ...}; "elapsed"."""
        return self.request("call", timeout=timeout, method=method, args=list(args))

    def ok(self, method, *args):
        r = self.call(method, *args)
        check(r["ok"], "node %s: %s%r failed: %s" % (self.id, method, args, r))
        return r["result"]

    def kill(self):
        """SIGKILL; returns the time by which the process was surely dead."""
        self.proc.kill()
        self.proc.wait()
        self.killed = True
        self.dead_at = time.monotonic()
        return self.dead_at

    def close(self, timeout=WAIT):
        if self.proc.poll() is None:
            try:
                r = self.request("close", timeout=timeout)
                check(r.get("ok"), "node %s: close: %s" % (self.id, r))
            except Failed:
                self.proc.kill()
                raise
            finally:
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self.dead_at is None:
            self.dead_at = time.monotonic()
        code = self.proc.returncode
        check(self.killed or code == 0, "node %s exited with status %s" % (self.id, code))

    def events(self):
        return read_events(self.log)

    def stderr_tail(self, n=40):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def read_events(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                if line.endswith("\n"):
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


# ---------------------------------------------------------------- a proxy

class Proxy:
    """A TCP proxy from 127.0.0.1:<port> to (host, port), one selector thread.

    forward(): pass bytes both ways.  stall(): stop passing them, keep every
    socket open (new connections are accepted and held).  drop(): close both
    sides of every connection, and close new ones at once.  forward() again
    heals: held connections carry on where they stopped.
    """

    FORWARD, STALL, DROP = "forward", "stall", "drop"

    def __init__(self, target):
        self.target = target
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.mode = self.FORWARD
        self.pairs = []            # [client, upstream]
        self.accepted = 0
        self.dropped = 0
        self._sel = selectors.DefaultSelector()
        self._wr, self._ww = socket.socketpair()
        self._wr.setblocking(False)
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        _cleanups.append(self.close)

    def _set(self, mode):
        with self._lock:
            self.mode = mode
        self._ww.send(b"x")

    def forward(self):
        self._set(self.FORWARD)

    def stall(self):
        self._set(self.STALL)

    def drop(self):
        self._set(self.DROP)

    def close(self):
        if self._stop:
            return
        self._stop = True
        self._ww.send(b"x")
        self._thread.join(10)
        for pair in self.pairs:
            for s in pair:
                s.close()
        self.pairs = []
        self.lsock.close()
        self._wr.close()
        self._ww.close()

    def _kill_pair(self, pair):
        if pair in self.pairs:
            self.pairs.remove(pair)
            self.dropped += 1
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _loop(self):
        while not self._stop:
            with self._lock:
                mode = self.mode
            if mode == self.DROP:
                for pair in list(self.pairs):
                    self._kill_pair(pair)
            # Interest: the listener and the wake-up always; the pairs only
            # while forwarding.
            self._sel = selectors.DefaultSelector()
            self._sel.register(self.lsock, selectors.EVENT_READ, "listen")
            self._sel.register(self._wr, selectors.EVENT_READ, "wake")
            if mode == self.FORWARD:
                for pair in self.pairs:
                    self._sel.register(pair[0], selectors.EVENT_READ, (pair, 1))
                    self._sel.register(pair[1], selectors.EVENT_READ, (pair, 0))
            for key, _ in self._sel.select(1.0):
                if key.data == "wake":
                    try:
                        self._wr.recv(64)
                    except BlockingIOError:
                        pass
                elif key.data == "listen":
                    self._accept(mode)
                else:
                    pair, other = key.data
                    if pair not in self.pairs:
                        continue
                    try:
                        data = key.fileobj.recv(65536)
                        if not data:
                            raise OSError("closed")
                        pair[other].sendall(data)
                    except OSError:
                        self._kill_pair(pair)
            self._sel.close()

    def _accept(self, mode):
        try:
            c, _ = self.lsock.accept()
        except BlockingIOError:
            return
        self.accepted += 1
        if mode == self.DROP:
            c.close()
            return
        try:
            u = socket.create_connection(self.target, timeout=10)
        except OSError:
            c.close()
            return
        c.setblocking(True)
        u.setblocking(True)
        # sendall() to a peer that does not read would block the loop: a
        # bound, after which the pair is dropped.
        c.settimeout(10)
        u.settimeout(10)
        self.pairs.append([c, u])


# ---------------------------------------------------------------- a cluster

class Cluster:
    """One test's world: a fresh store, a work directory, the nodes."""

    def __init__(self, names):
        self.base = store_base()
        self.pg = is_pg(self.base)
        self.names = names
        self.nodes = []
        self.kill_times = {}
        self.dir = tempfile.mkdtemp(prefix="mn-work.")
        if self.pg:
            self.schema = "mn_" + os.urandom(8).hex()
            self.store = uri_with(self.base, "taskmgr_schema", self.schema)
            base = self.base

            def drop(schema=self.schema):
                psql(base, "DROP SCHEMA IF EXISTS %s CASCADE" % schema)
            _cleanups.append(drop)
        else:
            parent = None if self.base == "lmdb" else self.base
            d = tempfile.mkdtemp(prefix="mn-store.", dir=parent)
            _cleanups.append(lambda d=d: shutil.rmtree(d, ignore_errors=True))
            self.store = os.path.join(d, "store")
        # Last in, first out: the quick local clean-up before the schema's
        # drop, which may wait on the server (meson's SIGKILL follows its
        # SIGTERM closely).
        _cleanups.append(lambda d=self.dir: shutil.rmtree(d, ignore_errors=True))

    def node(self, node_id, **kw):
        return Node(self, node_id, **kw)

    def close_all(self):
        errors = []
        for n in self.nodes:
            try:
                n.close()
            except Failed as e:
                errors.append(str(e))
        check(not errors, "; ".join(errors))

    def all_events(self):
        ev = []
        for n in self.nodes:
            ev.extend(n.events())
        return ev

    def dump(self):
        for n in self.nodes:
            tail = n.stderr_tail()
            if tail.strip():
                print("---- stderr of node %s (last lines) ----\n%s----" % (n.id, tail),
                      flush=True)


# ---------------------------------------------------------------- history

def run_intervals(cluster):
    """Per task, the run intervals [(node, start, end, start_event, end_event)].
    A run with no end event ends when its node was seen dead (killed, or
    closed); a run on a node still alive has no end (infinity)."""
    nodes = {n.id: n for n in cluster.nodes}
    starts = {}
    runs = collections.defaultdict(list)
    for ev in cluster.all_events():
        key = (ev["node"], ev["pid"], ev["task"], ev["attempt"])
        if ev["ev"] == "start":
            check(key not in starts, "two start events for %s" % (key,))
            starts[key] = ev
        else:
            s = starts.pop(key, None)
            check(s is not None, "end without start: %s" % ev)
            runs[ev["task"]].append((ev["node"], s["t"], ev["t"], s, ev))
    for key, s in starts.items():
        n = nodes[key[0]]
        end = n.dead_at if n.dead_at is not None else float("inf")
        runs[key[2]].append((key[0], s["t"], end, s, None))
    return runs


def check_no_overlap(cluster):
    """No two runs of one task overlap in time (on different nodes or not)."""
    runs = run_intervals(cluster)
    for task, rs in runs.items():
        rs = sorted(rs, key=lambda r: r[1])
        for a, b in zip(rs, rs[1:]):
            check(a[2] <= b[1],
                  "task %s ran twice at once: on %s from %.3f to %.3f (%s) and on %s "
                  "from %.3f (attempt %s); overlap %.3fs"
                  % (task, a[0], a[1], a[2], "open" if a[4] is None else "ended",
                     b[0], b[1], b[3]["attempt"], a[2] - b[1]))
    return runs


def check_order(observations, finals=None):
    """Each task's observed statuses never go back (doc/contract.md)."""
    for task, seq in observations.items():
        seq = list(seq)
        if finals and task in finals:
            seq.append(finals[task])
        for a, b in zip(seq, seq[1:]):
            check(a == b or RANK[b] > RANK[a],
                  "task %s went from %s to %s (seen: %s)" % (task, a, b, seq))


def check_acknowledged(acked, tasks):
    """Every acknowledged id exists exactly once in the listing; no id is
    listed twice."""
    count = collections.Counter(t["task_id"] for t in tasks)
    dup = [i for i, c in count.items() if c > 1]
    check(not dup, "ids listed more than once: %s" % dup[:10])
    missing = [i for i in acked if i not in count]
    check(not missing, "%d acknowledged triggers are lost: %s" % (len(missing), missing[:10]))
    twice = [i for i, c in collections.Counter(acked).items() if c > 1]
    check(not twice, "ids acknowledged twice: %s" % twice[:10])


def final_history(cluster, observer, name, acked, observations=None):
    """The checks every test ends with: acknowledged triggers exist exactly
    once, statuses never went back, no task ran twice at once.  Returns
    {task_id: task} of the listing."""
    r = observer.request("list", name=name)
    check(r["ok"], "list %s: %s" % (name, r))
    tasks = {t["task_id"]: t for t in r["tasks"]}
    missing = [i for i in acked if i not in tasks]
    if missing:
        # Lost, or only left out of the listing?  Ask for each.
        got = collections.Counter()
        for i in missing[:50]:
            g = observer.call("get", name, i)
            got[g["result"]["status"] if g["ok"] else g["error"]] += 1
        print("# %d acknowledged ids not listed; get() of %d of them: %s"
              % (len(missing), min(50, len(missing)), dict(got)), flush=True)
    check_acknowledged(acked, r["tasks"])
    check_order(observations or {}, {i: t["status"] for i, t in tasks.items()})
    check_no_overlap(cluster)
    return tasks


def wait_final(observer, name, task_id, timeout=WAIT):
    def done():
        r = observer.call("get", name, task_id)
        return r["ok"] and r["result"]["status"] in FINAL and r["result"]
    return wait_for(done, timeout, "task %s to end" % task_id, interval=0.05)


def wait_all_final(observer, name, ids, timeout=WAIT):
    """Wait until no task of `name` is active (tm_stats' per-name counts:
    cheap, however many tasks there are), then check that every task in ids
    is final.  Returns the listing, {task_id: task}."""
    ids = set(ids)
    state = {}

    def idle():
        r = observer.call("stats")
        if not r["ok"]:
            return False
        fig = r["result"]["names"].get(name, {})
        state["fig"] = fig
        return sum(fig.get(s, 0) for s in ("REQUEST_SENT", "RUNNING",
                                             "CANCELLED_REQUESTED")) == 0
    try:
        wait_for(idle, timeout, "the %d tasks of %s to end" % (len(ids), name), interval=0.2)
    except Failed as e:
        raise Failed("%s; counts: %s" % (e, state.get("fig")))
    r = observer.request("list", name=name)
    check(r["ok"], "list %s: %s" % (name, r))
    tasks = {t["task_id"]: t for t in r["tasks"]}
    left = [i for i in ids if i in tasks and tasks[i]["status"] not in FINAL]
    check(not left, "tasks still active: %s" % left[:10])
    return tasks


def read_acks(path):
    """The "ID T" lines a load wrote: [(id, t)]."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                if line.endswith("\n"):
                    i, t = line.split()
                    out.append((i, float(t)))
    except FileNotFoundError:
        pass
    return out


class Checks:
    """Failures collected so that one run reports all of them; raise()
    at the end."""

    def __init__(self):
        self.failures = []

    def __call__(self, cond, msg):
        if not cond:
            print("# FAILED CHECK: %s" % msg, flush=True)
            self.failures.append(msg)
        return cond

    def done(self):
        if self.failures:
            raise Failed("%d check(s) failed: %s" % (len(self.failures),
                                                     " | ".join(self.failures)))


def pg_ready(uri):
    """pg_isready: True when the server at uri accepts connections."""
    exe = psql_path()
    exe = os.path.join(os.path.dirname(exe), "pg_isready") if exe else "pg_isready"
    if not os.path.exists(exe):
        exe = shutil.which("pg_isready") or exe
    return subprocess.run([exe, "-q", "-d", libpq_uri(uri), "-t", "1"],
                          timeout=30).returncode == 0


PG_CLUSTER = os.environ.get("TM_PG_CLUSTER") or os.path.join(
    HERE, "..", "..", "scripts", "pg-cluster")


def wait_event(node, pred, timeout=WAIT, what="an event"):
    def found():
        for ev in node.events():
            if pred(ev):
                return ev
        return None
    return wait_for(found, timeout, "%s in the log of node %s" % (what, node.id), 0.01)


# ---------------------------------------------------------------- running

def run_tests(tests):
    """Run each test(cluster_factory) in turn; print TAP-like lines; exit
    0, 1 (a failure) or 77 (all skipped)."""
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    print("store: %s" % ("PostgreSQL " + store_base()
                         if is_pg(store_base()) else "LMDB (%s)" % store_base()), flush=True)
    only = sys.argv[1:]   # names (or parts of names) of the tests to run
    if only:
        tests = [t for t in tests if any(o in t.__name__ for o in only)]
    failed = skipped = 0
    for i, test in enumerate(tests, 1):
        clusters = []

        def make(names):
            c = Cluster(names)
            clusters.append(c)
            return c

        t0 = time.monotonic()
        try:
            test(make)
            print("ok %d - %s (%.1fs)" % (i, test.__name__, time.monotonic() - t0), flush=True)
        except Skip as e:
            skipped += 1
            print("ok %d - %s # SKIP %s" % (i, test.__name__, e), flush=True)
        except BaseException as e:   # noqa: BLE001
            failed += 1
            print("not ok %d - %s: %s" % (i, test.__name__, e), flush=True)
            if not isinstance(e, (Failed, KeyboardInterrupt, SystemExit)):
                traceback.print_exc()
            for c in clusters:
                c.dump()
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            _run_cleanups()
    if failed:
        return 1
    return SKIP if skipped == len(tests) else 0
