"""Security of the example server beyond the auth matrix (test_api.py) and
the basic limits (test_limits.py):

- the refresh token leaves the store files once its task is final;
- slow clients (silent, trickling, stalled mid-header or mid-body) are cut
  off by the idle timeout, and served when they keep sending, while other
  clients are served meanwhile;
- oversize request lines, header sets and bodies on every body endpoint
  are refused and change nothing;
- the server stays up through all of it, and stops with status 0.

Each class starts its own server in its own temporary directory; every
server is stopped (killed if need be) when its class ends."""
import os
import socket
import threading
import time
import unittest

import tmbackend
from serverlib import FINAL, ServerTestCase, make_tokens, wait_for

MIB = 1024 * 1024
IDLE_S = 2          # --idle-timeout of the slow-client servers
PACE_S = 0.25       # a trickling client's pause between bytes: well below it
DEADLINE = 30.0     # for anything that must happen "after the idle timeout"


def secret(tag):
    return "rt-%s-%s" % (tag, os.urandom(16).hex())


def files_holding(root, needle):
    """Every file under root whose bytes contain needle."""
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            try:
                with open(p, "rb") as f:
                    if needle in f.read():
                        found.append(os.path.relpath(p, root))
            except OSError:
                pass
    return sorted(found)


class Alive:
    """Checks shared by every class: the server process is still running
    and answers a valid request."""

    def assertServes(self):
        self.assertIsNone(self.srv.proc.poll(), "the server died" +
                          self.srv.log_tail())
        self.srv.call("GET", "/tasks/ml_new_users/recents/?amt=1")


# ---- the refresh token in the store ------------------------------------------


@tmbackend.lmdb_only("its control finds the payload in LMDB's data.mdb")
class StoredSecretsNoWorkers(Alive, ServerTestCase):
    """Tasks moved by requests only: PATCH to a final status, DELETE of a
    waiting task, and one task left active as the control."""
    server_args = {"workers": 0}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv.write_table("users.csv", "user_id\nu1\n")

    def trigger(self, rt):
        return self.srv.trigger("data_import", {
            "context_task": {"connection": "LOCAL", "table_name": "users.csv"},
            "refresh_token": rt})

    def path(self, tid):
        return "/tasks/private/data_import/%s/" % tid

    def test_refresh_token_leaves_the_store_files_once_final(self):
        active, completed, cancelled, failed = (secret(t) for t in
                                                ("active", "completed",
                                                 "cancelled", "failed"))
        self.trigger(active)
        t1 = self.trigger(completed)
        t2 = self.trigger(cancelled)
        t3 = self.trigger(failed)
        # The control: the search reads the store's files (the payload is
        # stored in plain text).  Tokens never are: LMDB keeps them
        # encrypted under per-task keys that are zeroed at a final status.
        store = self.srv.store
        self.assertIn("data.mdb", files_holding(store, b"users.csv"))
        self.assertEqual(files_holding(self.srv.dir, completed.encode()), [])
        self.srv.call("PATCH", self.path(t1), {"status": "RUNNING"})
        doc = self.srv.call("PATCH", self.path(t1), {"completed": True})
        self.assertEqual(doc["status"], "COMPLETED")
        doc = self.srv.call("DELETE", self.path(t2))
        self.assertEqual(doc["status"], "CANCELLED")
        self.srv.call("PATCH", self.path(t3), {"status": "RUNNING"})
        self.srv.call("PATCH", self.path(t3), {"status": "CANCELLED_REQUESTED"})
        doc = self.srv.call("PATCH", self.path(t3), {"failed": True})
        self.assertEqual(doc["status"], "FAILED")
        for rt in (completed, cancelled, failed):
            with self.subTest(task=rt[:12]):
                self.assertEqual(files_holding(self.srv.dir, rt.encode()), [],
                                 "the refresh token of a final task is still "
                                 "in these files")
        self.assertEqual(files_holding(self.srv.dir, active.encode()), [])
        self.assertServes()


class StoredSecretsWorkers(Alive, ServerTestCase):
    """Tasks run to their end by the example jobs."""
    server_args = {"workers": 2, "simulate": 0}

    def test_refresh_token_leaves_the_store_files_after_a_run(self):
        os.makedirs(self.srv.tables, exist_ok=True)
        runs = [
            ("ml_new_users", False, {"context_task": {},
                                     "refresh_token": secret("ml")}),
            ("analytics_report_export", True, {
                "context_task": {"output_table": {"connection": "LOCAL",
                                                  "name": "report.json"}},
                "refresh_token": secret("report")}),
        ]
        for name, private, body in runs:
            tid = self.srv.trigger(name, body, private=private)
            t = self.srv.wait_status(name, tid, FINAL)
            self.assertEqual(t["status"], "COMPLETED", t)
        for name, _, body in runs:
            with self.subTest(name=name):
                self.assertEqual(
                    files_holding(self.srv.dir, body["refresh_token"].encode()),
                    [], "the refresh token of a finished run is still in "
                    "these files")
        self.assertServes()


# ---- slow clients ---------------------------------------------------------------


def closed_by_server(sock):
    """True once the server closed the connection; the bytes it sent before
    closing are kept in sock.got."""
    sock.settimeout(0.05)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        return False
    except OSError:          # reset
        return True
    if data:
        sock.got = getattr(sock, "got", b"") + data
        return False
    return True


class SlowClients(Alive, ServerTestCase):
    # The idle timeout alone: a request deadline (test_hostile.py) far
    # beyond the slowest trickle here.
    server_args = {"workers": 0, "extra": ["--idle-timeout", str(IDLE_S),
                                           "--request-deadline", "120"]}

    def setUp(self):
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()

    def connect(self):
        s = socket.create_connection(self.srv.addr, timeout=10)
        self.socks.append(s)
        return s

    def head(self, method="GET", path="/tasks/ml_new_users/recents/", extra=""):
        return ("%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s"
                % (method, path, self.srv.token(), extra)).encode()

    def assertCutOff(self, sock, what):
        wait_for(lambda: closed_by_server(sock), DEADLINE,
                 "the server to close %s" % what)
        # Cut off, not answered: no status line of a served request.
        self.assertFalse(getattr(sock, "got", b"").startswith(b"HTTP/1.1 200"),
                         sock.got[:200] if hasattr(sock, "got") else b"")

    def trickle(self, sock, data):
        """Send data in 20 pieces, pausing PACE_S between them (2.5 idle
        timeouts in all), while another client makes requests; returns
        how many of those were served, and fails unless every one was."""
        served, failed, stop = [], [], threading.Event()

        def other():
            while not stop.is_set():
                try:
                    st = self.srv.request("GET", "/tasks/ml_new_items/recents/"
                                          "?amt=1", self.srv.token())[0]
                except OSError as e:
                    st = repr(e)
                (served if st == 200 else failed).append(st)
        t = threading.Thread(target=other)
        t.start()
        try:
            step = max(len(data) // 20, 1)
            for i in range(0, len(data), step):
                sock.sendall(data[i:i + step])
                time.sleep(PACE_S)   # the client's pace, not a wait
            wait_for(lambda: len(served) >= 3, DEADLINE, "other requests")
        finally:
            stop.set()
            t.join(60)
        self.assertEqual(failed, [])
        return len(served)

    def test_silent_connections_are_closed_by_the_idle_timeout(self):
        silent = [self.connect() for _ in range(16)]
        for _ in range(5):
            self.assertServes()
        for i, s in enumerate(silent):
            self.assertCutOff(s, "silent connection %d" % i)
        self.assertServes()

    def test_a_client_that_keeps_sending_is_served_however_slow(self):
        sock = self.connect()
        self.trickle(sock, self.head() + b"X-Slow: " + b"s" * 40 + b"\r\n")
        sock.sendall(b"\r\n")
        sock.settimeout(10)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, "closed before answering")
            got += chunk
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:200])

    def test_a_stalled_header_is_cut_off_while_others_are_served(self):
        sock = self.connect()
        self.trickle(sock, self.head() + b"X-Slow: " + b"s" * 40)
        # Stalled mid-header: nothing more is coming.
        self.assertCutOff(sock, "a connection stalled in its headers")
        self.assertServes()

    def test_a_stalled_body_is_cut_off_and_stores_nothing(self):
        path = "/tasks/private/analytics_report_export/"
        before = self.srv.call("GET", path + "recents/?amt=64")["tasks"]
        body = (b'{"context_task": {"output_table": {"connection": "LOCAL", '
                b'"name": "r.json"}}}')
        sock = self.connect()
        sock.sendall(self.head("POST", path, "Content-Type: application/json\r\n"
                               "Content-Length: %d\r\n\r\n" % len(body)))
        self.trickle(sock, body[:-1])
        self.assertCutOff(sock, "a connection stalled in its body")
        after = self.srv.call("GET", path + "recents/?amt=64")["tasks"]
        self.assertEqual(after, before)
        self.assertServes()

    def test_the_idle_timeout_frees_every_connection_slot(self):
        # As many silent clients as the server takes from one address
        # (64): once the timeout has closed them, everyone is served again.
        silent = []
        for _ in range(64):
            try:
                silent.append(self.connect())
            except OSError:
                break
        self.assertGreaterEqual(len(silent), 60)
        wait_for(self.srv.serves, DEADLINE, "the server to serve once the idle "
                 "connections were closed")
        for i, s in enumerate(silent):
            self.assertCutOff(s, "silent connection %d" % i)
        self.assertServes()


# ---- oversize requests --------------------------------------------------------


def raw_status(addr, data, timeout=20):
    """Send raw bytes; return the status code of the answer (0 when the
    server closed without one)."""
    s = socket.create_connection(addr, timeout=timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass   # the server may refuse before reading everything
        got = b""
        try:
            while b"\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
    finally:
        s.close()
    if not got.startswith(b"HTTP/1."):
        return 0
    return int(got.split(b" ", 2)[1])


class Oversize(Alive, ServerTestCase):
    server_args = {"workers": 0}

    def auth(self):
        return "Authorization: Bearer %s\r\n" % self.srv.token()

    def test_oversize_request_line_is_refused(self):
        # Over the 32 KiB of a connection: libmicrohttpd answers 414 (or
        # 431) and closes.  Far over it, the client may still be sending
        # when the connection closes and miss the answer (0).
        for n, allowed in ((40 * 1024, (414, 431)), (400 * 1024, (0, 414, 431))):
            with self.subTest(path_bytes=n):
                req = ("GET /tasks/ml_new_users/recents/?pad=%s HTTP/1.1\r\n"
                       "Host: x\r\n%s\r\n" % ("p" * n, self.auth())).encode()
                self.assertIn(raw_status(self.srv.addr, req), allowed)
                self.assertServes()

    def test_many_small_headers_over_the_limit_are_refused(self):
        many = "".join("X-H%d: v\r\n" % i for i in range(5000))   # ~50 KiB
        req = ("GET /tasks/ml_new_users/recents/ HTTP/1.1\r\nHost: x\r\n%s%s"
               "\r\n" % (self.auth(), many)).encode()
        self.assertEqual(raw_status(self.srv.addr, req), 431)
        self.assertServes()

    def test_oversize_bodies_are_refused_on_every_body_endpoint(self):
        self.srv.write_table("users.csv", "user_id\nu1\n")
        tid = self.srv.trigger("data_import", {"context_task": {
            "connection": "LOCAL", "table_name": "users.csv"}})
        task = self.srv.get("data_import", tid)
        body = b'{"details": {"pad": "' + b"x" * MIB + b'"}}'
        for method, path in [("POST", "/tasks/ml_new_users/"),
                             ("POST", "/tasks/private/data_import/"),
                             ("PATCH", "/tasks/private/data_import/%s/" % tid)]:
            for sent in ("announced", "sent"):
                with self.subTest(method=method, path=path, body=sent):
                    head = ("%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
                            "application/json\r\nContent-Length: %d\r\n\r\n"
                            % (method, path, self.auth(), len(body))).encode()
                    # "announced": the header only; "sent": the body too.
                    st = raw_status(self.srv.addr,
                                    head + (body if sent == "sent" else b""))
                    self.assertEqual(st, 400)
        # Nothing changed: the task, and the number of tasks of each name.
        self.assertEqual(self.srv.get("data_import", tid), task)
        self.assertEqual(len(self.srv.call(
            "GET", "/tasks/private/data_import/recents/")["tasks"]), 1)
        self.assertEqual(self.srv.call(
            "GET", "/tasks/ml_new_users/recents/")["tasks"], [])
        self.assertServes()


# ---- all of it at once -----------------------------------------------------------


class Barrage(Alive, ServerTestCase):
    """Hostile requests from several threads at once while a well-behaved
    client works: it is always served, and the server lives on."""
    server_args = {"workers": 0, "tokens": make_tokens(),
                   "extra": ["--idle-timeout", str(IDLE_S)]}

    def hostile(self):
        tok = self.srv.token("root")
        auth = "Authorization: Bearer %s\r\n" % tok
        return [
            b"\x00\xff\xfe garbage \r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
            b"GET\r\n\r\n",
            ("GET /tasks/private/%%2e%%2e/recents/ HTTP/1.1\r\nHost: x\r\n%s\r\n"
             % auth).encode(),
            ("GET /tasks/ml_new_users/recents/?%s HTTP/1.1\r\nHost: x\r\n%s\r\n"
             % ("q" * 60000, auth)).encode(),
            ("GET /tasks/ml_new_users/recents/ HTTP/1.1\r\nHost: x\r\n%sX-Big: %s"
             "\r\n\r\n" % (auth, "b" * 60000)).encode(),
            ("POST /tasks/ml_new_users/ HTTP/1.1\r\nHost: x\r\n%sContent-Length: "
             "%d\r\n\r\n" % (auth, 2 * MIB)).encode() + b"{" * 4096,
            ("POST /tasks/ml_new_users/ HTTP/1.1\r\nHost: x\r\n%s"
             "Transfer-Encoding: chunked\r\n\r\nzz\r\n" % auth).encode(),
            ("POST /tasks/private/data_import/ HTTP/1.1\r\nHost: x\r\n%s"
             "Content-Length: 5\r\n\r\n\xff\xfe\x00\x01\x02" % auth).encode("latin-1"),
            b"GET /tasks/ml_new_users/recents/ HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + b"t" * 20000 + b"\r\n\r\n",
            ("GET /tasks/ml_new_users/recents/ HTTP/1.1\r\nHost: x\r\n%s"
             % auth).encode(),                           # never finished
        ]

    def test_the_server_stays_up_under_hostile_requests(self):
        stop = threading.Event()
        errors = []

        def attack(k):
            reqs = self.hostile()
            i = k
            while not stop.is_set():
                try:
                    raw_status(self.srv.addr, reqs[i % len(reqs)], timeout=5)
                except OSError:
                    pass
                except Exception as e:   # noqa: BLE001 - reported below
                    errors.append(repr(e))
                i += 1

        threads = [threading.Thread(target=attack, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            tid = self.srv.trigger("ml_new_items", private=False)
            for _ in range(40):
                st, _, doc, payload = self.srv.request(
                    "GET", "/tasks/ml_new_items/recents/?amt=1", self.srv.token())
                self.assertEqual(st, 200, payload[:200])
                self.assertEqual(doc["tasks"][0]["task_id"], tid)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual(errors, [])
        self.assertServes()


if __name__ == "__main__":
    unittest.main(verbosity=2)
