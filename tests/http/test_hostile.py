"""Hostile clients and careless set-ups (doc/reliability.md, "Hostile
clients"):

- crowds: a slowloris (200 connections trickling a header line every 1-2
  s) and a greedy client (500 connections that send nothing) while a
  legitimate client, from another loopback address, is answered within
  1 s every time; the request deadline and the per-address limit;
- a body is not read before its request is known to be refused (no or a
  bad token, or an unknown path);
- request framing two parsers could read two ways (duplicate
  Content-Length, Content-Length with Transfer-Encoding) and a NUL inside
  Authorization are refused;
- what a client sends reaches the access log escaped;
- start-up refuses --tables overlapping --store, a tokens file others may
  read, and plain HTTP off loopback; it removes the temporary files of
  outputs a crash interrupted; HTTPS with --tls-cert and --tls-key.

Everything runs on 127.0.0.0/8: Linux routes the whole block to the
loopback interface, so a socket bound to 127.0.0.2 is another client
address as far as the server's per-address limit is concerned."""
import ctypes
import ctypes.util
import os
import random
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import tmbackend
from serverlib import (SERVER, Server, ServerTestCase, make_tokens, wait_for,
                       write_private)

DEADLINE_S = 10      # the default --request-deadline
PER_IP = 64          # the default --per-ip-connections
BOUND_S = 1.0        # every answer to the legitimate client, connect to end
LEGIT = "127.0.0.2"  # the legitimate client's address
MIB = 1024 * 1024


def mhd_version():
    """The version of the libmicrohttpd the server links, as a tuple."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("microhttpd") or
                          "libmicrohttpd.so.12")
        lib.MHD_get_version.restype = ctypes.c_char_p
        return tuple(int(x) for x in lib.MHD_get_version().decode().split("."))
    except (OSError, AttributeError, ValueError):
        return (0,)


def expected_failure_before_mhd_1(test):
    return unittest.expectedFailure(test) if mhd_version() < (1,) else test


def connect_from(addr, src, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect(addr)
    except BaseException:
        s.close()
        raise
    return s


def read_answer(sock):
    """(status, raw bytes) of one answer; status 0 when the connection ended
    (or timed out) without a whole one."""
    got = b""
    while True:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
            if m and len(body) >= int(m.group(1)):
                break
        try:
            chunk = sock.recv(65536)
        except (ConnectionError, socket.timeout):
            chunk = b""
        if not chunk:
            break
        got += chunk
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", got)
    return (int(m.group(1)) if m else 0), got


def exchange(addr, data, src="127.0.0.1", timeout=10):
    s = connect_from(addr, src, timeout)
    try:
        s.sendall(data)
        return read_answer(s)
    finally:
        s.close()


def closed_by_peer(sock):
    """True once the other end closed (or reset) the connection; never
    blocks."""
    p = select.poll()
    p.register(sock, select.POLLIN)
    try:
        if not p.poll(0):
            return False
        return sock.recv(65536) == b""
    except OSError:
        return True


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Legit(threading.Thread):
    """A client from LEGIT that asks for a list again and again, one
    connection a request, until stop(); .answers holds (status, seconds)."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv = srv
        self.answers = []
        self.halt = threading.Event()
        self.req = ("GET /tasks/ml_new_users/recents/?amt=1 HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer %s\r\n\r\n" % srv.token()).encode()

    def run(self):
        while not self.halt.is_set():
            t0 = time.monotonic()
            try:
                st, _ = exchange(self.srv.addr, self.req, LEGIT, timeout=5)
            except OSError as e:
                st = repr(e)
            self.answers.append((st, time.monotonic() - t0))
            self.halt.wait(0.1)   # the client's pace

    def stop(self):
        self.halt.set()
        self.join(30)
        return self.answers


class Crowds(ServerTestCase):
    """The server with its default limits: 1024 connections, 64 from one
    address, a 10 s deadline for a request's headers and body."""
    server_args = {"workers": 0}

    def setUp(self):
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()

    def assertAlwaysServed(self, answers, at_least):
        if answers:
            print("\n  legitimate client: %d answers, the slowest in %.0f ms"
                  % (len(answers), 1000 * max(a[1] for a in answers)),
                  file=sys.stderr)
        self.assertGreaterEqual(len(answers), at_least, answers)
        late = [a for a in answers if a[0] != 200 or a[1] > BOUND_S]
        self.assertEqual(late, [], "the legitimate client was refused or kept "
                         "waiting (status, seconds), of %d answers" % len(answers))

    def test_slowloris_is_cut_at_the_deadline_while_others_are_served(self):
        # 200 connections from four addresses (50 each, under the
        # per-address limit), each sending its request line and then one
        # header line every 1-2 s (far below the 30 s idle timeout),
        # reconnecting when cut; for the deadline and 3 s more.
        addr, rnd = self.srv.addr, random.Random(1)
        head = b"GET /tasks/ml_new_users/recents/ HTTP/1.1\r\nHost: x\r\n"
        conns, cut = [], []     # [sock, opened, next send, first wave]

        def open_one(first):
            s = connect_from(addr, "127.0.0.%d" % (3 + len(conns) % 4))
            s.sendall(head)
            self.socks.append(s)
            conns.append([s, time.monotonic(), time.monotonic() +
                          rnd.uniform(1, 2), first])

        base = open_fds(self.srv.proc.pid)
        for _ in range(200):
            open_one(True)
        legit = Legit(self.srv)
        legit.start()
        held, n, end = 0, 0, time.monotonic() + DEADLINE_S + 3
        try:
            while time.monotonic() < end:
                now = time.monotonic()
                for c in list(conns):
                    if closed_by_peer(c[0]):
                        cut.append((c[3], now - c[1]))
                        conns.remove(c)
                        self.socks.remove(c[0])
                        c[0].close()
                        open_one(False)
                    elif now >= c[2]:
                        try:
                            c[0].sendall(b"X-Trickle-%d: x\r\n" % n)
                        except OSError:
                            continue   # cut: seen on the next round
                        n += 1
                        c[2] = now + rnd.uniform(1, 2)
                held = max(held, open_fds(self.srv.proc.pid) - base)
                time.sleep(0.05)   # the attacker's pace
        finally:
            answers = legit.stop()
        self.assertAlwaysServed(answers, 50)
        # The server held them all at once, and cut each of the first wave
        # at the deadline: not before, not much after.
        self.assertGreaterEqual(held, 200)
        first = sorted(t for first, t in cut if first)
        self.assertEqual(len(first), 200, "first-wave connections not cut")
        self.assertGreater(first[0], DEADLINE_S - 0.5, first[:5])
        self.assertLess(first[-1], DEADLINE_S + 2, first[-5:])

    def test_greedy_client_is_bounded_per_address_while_others_are_served(self):
        # 500 silent connections from eight addresses (63 each, under the
        # per-address limit): far more than a thread per connection could
        # hold, all held; then one more address opens 100, of which the
        # server keeps 64 and closes the rest at once.
        addr = self.srv.addr
        pid = self.srv.proc.pid
        base = open_fds(pid)
        legit = Legit(self.srv)
        legit.start()
        try:
            t0 = time.monotonic()
            for i in range(500):
                self.socks.append(connect_from(addr, "127.0.0.%d" % (3 + i // 63)))
            wait_for(lambda: open_fds(pid) >= base + 500, 10,
                     "the server to hold 500 connections")
            one = [connect_from(addr, "127.0.0.20") for _ in range(100)]
            self.socks += one
            wait_for(lambda: sum(map(closed_by_peer, one)) >= 100 - PER_IP, 5,
                     "the server to close the connections over the "
                     "per-address limit")
            self.assertEqual(sum(map(closed_by_peer, one)), 100 - PER_IP)
            self.assertLess(time.monotonic() - t0, DEADLINE_S - 2)
            # All of them are cut at the deadline.
            wait_for(lambda: all(map(closed_by_peer, self.socks)), DEADLINE_S + 5,
                     "the deadline to close every silent connection")
        finally:
            answers = legit.stop()
        self.assertAlwaysServed(answers, 30)
        wait_for(lambda: open_fds(pid) <= base + 2, 10,
                 "the server to release the descriptors")


# ---- a body is read only when its request may be served ---------------------------


class EarlyRefusal(ServerTestCase):
    server_args = {"workers": 0, "tokens": make_tokens()}

    def start_chunked(self, path, auth):
        """Headers and the first 64 KiB chunk of a 50 MiB chunked body."""
        s = connect_from(self.srv.addr, "127.0.0.1", timeout=5)
        self.addCleanup(s.close)
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
                   "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                   % (path, auth)).encode())
        s.sendall(b"10000\r\n" + b" " * 65536 + b"\r\n")
        return s

    def assertRefusedUnread(self, s, status):
        st, got = read_answer(s)
        self.assertEqual(st, status, got[:300])
        # ... and the connection is over: the other 799 chunks go nowhere.
        with self.assertRaises(OSError):
            s.settimeout(10)
            for _ in range(799):
                s.sendall(b"10000\r\n" + b" " * 65536 + b"\r\n")

    def test_a_chunked_body_without_a_valid_token_is_refused_before_it_is_read(self):
        for auth in ("", "Authorization: Bearer not-a-token-0123456789\r\n",
                     "Authorization: Basic eDp5\r\n"):
            with self.subTest(auth=auth):
                s = self.start_chunked("/tasks/ml_new_users/", auth)
                self.assertRefusedUnread(s, 401)
        self.assertEqual(self.srv.call("GET", "/tasks/ml_new_users/recents/")
                         ["tasks"], [])

    def test_a_body_the_route_refuses_anyway_is_not_read(self):
        auth = "Authorization: Bearer %s\r\n"
        for path, role, status in [("/nowhere/", "root", 404),
                                   ("/tasks/ml_new_users/recents/", "root", 405),
                                   ("/tasks/ml_new_users/", "frontend", 403)]:
            with self.subTest(path=path, role=role):
                s = self.start_chunked(path, auth % self.srv.token(role))
                self.assertRefusedUnread(s, status)

    def test_an_announced_body_without_a_token_is_refused_before_it_is_sent(self):
        st, got = exchange(self.srv.addr, b"POST /tasks/ml_new_users/ HTTP/1.1\r\n"
                           b"Host: x\r\nContent-Length: 900000\r\n\r\n{")
        self.assertEqual(st, 401, got[:300])

    def test_a_valid_request_still_has_its_body_read(self):
        s = self.start_chunked("/tasks/ml_new_users/", "Authorization: Bearer "
                               "%s\r\n" % self.srv.token())
        s.sendall(b"2\r\n{}\r\n0\r\n\r\n")
        st, got = read_answer(s)
        self.assertEqual(st, 200, got[:300])


# ---- framing and headers ---------------------------------------------------------


class Framing(ServerTestCase):
    server_args = {"workers": 0}

    def auth(self, extra=b""):
        return b"Authorization: Bearer " + self.srv.token().encode() + extra + b"\r\n"

    def tasks(self):
        return self.srv.call("GET", "/tasks/ml_new_users/recents/")["tasks"]

    def test_more_than_one_content_length_is_refused(self):
        smuggled = (b"GET /tasks/ml_new_items/recents/ HTTP/1.1\r\nHost: x\r\n" +
                    self.auth() + b"\r\n")
        cases = [
            (b"Content-Length: 2\r\nContent-Length: 40\r\n", b"{}"),
            (b"Content-Length: 2\r\nContent-length: 2\r\n", b"{}"),
            (b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
             b"2\r\n{}\r\n0\r\n\r\n"),
            (b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
             b"2\r\n{}\r\n0\r\n\r\n"),
            (b"Transfer-Encoding: gzip, chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n"),
            (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
             b"2\r\n{}\r\n0\r\n\r\n"),
        ]
        for framing, body in cases:
            with self.subTest(framing=framing):
                s = connect_from(self.srv.addr, "127.0.0.1")
                self.addCleanup(s.close)
                # A second request behind the body: whichever way the body
                # is read, nothing after it may be served.
                s.sendall(b"POST /tasks/ml_new_users/ HTTP/1.1\r\nHost: x\r\n" +
                          self.auth() + framing + b"\r\n" + body + smuggled)
                st, got = read_answer(s)
                self.assertEqual(st, 400, got[:300])
                self.assertIn(b'"WRONG_DATA_TYPE"', got)
                rest = b""
                while True:
                    try:
                        chunk = s.recv(65536)
                    except ConnectionError:
                        break
                    if not chunk:
                        break
                    rest += chunk
                self.assertEqual(rest, b"", "a second answer on the connection")
        self.assertEqual(self.tasks(), [])
        self.srv.call("POST", "/tasks/ml_new_users/", {})   # one is fine

    def test_two_authorization_headers_are_refused(self):
        get = b"GET /tasks/ml_new_users/recents/ HTTP/1.1\r\nHost: x\r\n"
        st, got = exchange(self.srv.addr, get + self.auth() + self.auth() + b"\r\n")
        self.assertEqual(st, 401, got[:300])
        st, got = exchange(self.srv.addr, get + self.auth() + b"\r\n")
        self.assertEqual(st, 200, got[:300])

    @expected_failure_before_mhd_1
    def test_a_nul_inside_authorization_is_refused(self):
        # libmicrohttpd 1.0 answers 400 itself; 0.9.x hands the server the
        # value cut at the NUL, with no sign of what followed it
        # (doc/reliability.md, "Hostile clients").
        get = b"GET /tasks/ml_new_users/recents/ HTTP/1.1\r\nHost: x\r\n"
        for extra in (b"\0junk", b"\0", b"\0 "):
            with self.subTest(extra=extra):
                st, got = exchange(self.srv.addr, get + self.auth(extra) + b"\r\n")
                self.assertIn(st, (400, 401), got[:300])


# ---- the access log --------------------------------------------------------------


class AccessLog(ServerTestCase):
    server_args = {"workers": 0}

    def test_client_bytes_are_escaped_in_the_access_log(self):
        marker = "m%d" % os.getpid()
        raw = (b"G\x1bE\x08T\x80\xff /tasks/" + marker.encode() +
               b"/\x1b[2J\x07\x7f\xc3\xa9\\x41 HTTP/1.1\r\nHost: x\r\n\r\n")
        st, _ = exchange(self.srv.addr, raw)
        self.assertNotEqual(st, 200)
        self.srv.request("GET", "/tasks/%s/done/" % marker)

        def log():
            with open(self.srv.log_path, "rb") as f:
                data = f.read()
            return data if b"/%s/done/" % marker.encode() in data else None
        data = wait_for(log, 10, "the access log line")
        line = [l for l in data.split(b"\n") if marker.encode() + b"/\\" in l]
        self.assertEqual(len(line), 1, data[-2000:])
        self.assertTrue(line[0].startswith(
            b"G\\x1bE\\x08T\\x80\\xff /tasks/" + marker.encode() +
            b"/\\x1b[2J\\x07\\x7f\\xc3\\xa9\\x5cx41 "), line[0])
        # Nothing but printable ASCII and line ends in the whole log.
        bad = set(data) - set(range(0x20, 0x7f)) - {0x0a}
        self.assertEqual(bad, set(), data[-2000:])


# ---- start-up ----------------------------------------------------------------------


def run_server(args, cwd, timeout=30):
    p = subprocess.run([SERVER, "--listen", "127.0.0.1:0", "--workers", "0"] + args,
                       capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


class Processes(unittest.TestCase):
    """Servers started and stopped by each test, in a directory of its own."""

    def setUp(self):
        if not SERVER:
            raise unittest.SkipTest("TASKMGR_SERVER is not set")
        self.dir = tempfile.mkdtemp(prefix="tmhttp-")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def assertRefused(self, args, *words):
        rc, out, err = run_server(args, self.dir)
        self.assertEqual(rc, 1, err)
        self.assertNotIn("listening", out)
        for w in words:
            self.assertIn(w, err)
        return err

    def starts(self, args, token=None):
        """The server starts with @p args, serves, and stops with 0."""
        srv = Server(workdir=self.dir, workers=0)
        srv.argv = lambda: [SERVER, "--listen", "127.0.0.1:0"] + args
        self.servers.append(srv)
        srv.start()
        srv.addr = (srv.addr[0].strip("[]"), srv.addr[1])
        srv.root_token = token or srv.root_token
        srv.call("GET", "/tasks/ml_new_users/recents/")
        self.assertEqual(srv.stop(), 0)
        return srv


class StartUp(Processes):
    def test_tables_and_store_may_not_overlap(self):
        d = self.path("d")
        # The directories need not exist: the check resolves what does.
        for store, tables in [(d, d), (d, d + "/"), (d, d + "/sub"),
                              (d + "/sub", d), (d + "/./a/../sub", d + "/sub"),
                              ("d", d), (d + "/x/y", "d/x")]:
            with self.subTest(store=store, tables=tables):
                err = self.assertRefused(["--store", store, "--tables", tables],
                                         "overlap", "--tables", "--store")
                self.assertNotIn("cannot", err)
        self.assertFalse(os.path.exists(d), "a refused start created directories")
        # A store and tables side by side are fine, and so is a prefix that
        # is not a parent.
        self.starts(["--store", self.path("d", "tasks"), "--tables",
                     self.path("d", "tasks-tables")])

    def test_overlap_through_a_symlink_is_refused(self):
        os.makedirs(self.path("real", "tasks"))
        os.symlink(self.path("real"), self.path("link"))
        os.symlink(self.path("real", "tasks"), self.path("tasks-link"))
        for store, tables in [
                (self.path("real", "tasks"), self.path("link", "tasks")),
                (self.path("link", "tasks"), self.path("real", "tasks", "t")),
                (self.path("tasks-link"), self.path("real")),
                (self.path("real", "tasks"), self.path("tasks-link", "new", "t"))]:
            with self.subTest(store=store, tables=tables):
                self.assertRefused(["--store", store, "--tables", tables],
                                   "overlap", os.path.realpath(self.path("real")))

    def test_files_read_at_start_may_not_be_in_the_tables(self):
        os.makedirs(self.path("tables"))
        tokens = self.path("tables", "tokens")
        write_private(tokens, "root %s\n" % ("r" * 32))
        self.assertRefused(["--store", self.path("tasks"), "--tables",
                            self.path("tables"), "--tokens", tokens],
                           tokens, "inside --tables")

    @unittest.skipUnless(tmbackend.PG, "needs a PostgreSQL store")
    def test_a_postgresql_store_is_not_a_directory(self):
        self.starts(["--store", tmbackend.store_path(self.path("tasks")),
                     "--tables", self.path("tasks")])

    def test_stale_temporary_outputs_are_removed_at_start(self):
        tables = self.path("tables")
        os.makedirs(tables)
        stale = [".out.csv.0badf00d.tmp", ".r.json.gz.00000000.tmp"]
        kept = [".out.csv.0BADF00D.tmp", ".out.csv.0badf00.tmp", ".hidden",
                "..x.csv.00000000.tmp", "out.csv", ".out.csv.0badf00d.tmp.x",
                "out.csv.0badf00d.tmp"]
        for name in stale + kept:
            with open(os.path.join(tables, name), "w") as f:
                f.write("user_id\nu1\n")
        os.mkdir(os.path.join(tables, ".dir.csv.12345678.tmp"))
        outside = self.path("victim")
        with open(outside, "w") as f:
            f.write("x")
        os.symlink(outside, os.path.join(tables, ".link.csv.12345678.tmp"))
        srv = Server(workdir=self.dir, workers=0)
        self.servers.append(srv)
        srv.start()
        self.assertEqual(srv.stop(), 0)
        left = sorted(os.listdir(tables))
        self.assertEqual(left, sorted(kept + [".dir.csv.12345678.tmp",
                                              ".link.csv.12345678.tmp"]))
        self.assertTrue(os.path.exists(outside))
        self.assertIn("removed 2 unfinished outputs", srv.log_tail())

    def test_a_tokens_file_others_may_read_is_refused(self):
        tokens = self.path("tokens")
        write_private(tokens, "root %s\n" % ("r" * 32))
        for mode in (0o644, 0o640, 0o604, 0o620, 0o602):
            with self.subTest(mode=oct(mode)):
                os.chmod(tokens, mode)
                self.assertRefused(["--store", self.path("tasks"), "--tokens",
                                    tokens],
                                   "tokens file %s is accessible by others "
                                   "(mode %04o); chmod 600 it" % (tokens, mode))
        os.chmod(tokens, 0o600)
        self.starts(["--store", tmbackend.store_path(self.path("tasks")),
                     "--tokens", tokens], token="r" * 32)

    @tmbackend.lmdb_only("the keys file is in the LMDB store's directory")
    def test_the_store_directory_and_its_keys_are_private(self):
        srv = self.starts(["--store", self.path("var", "tasks")])
        st = os.stat(self.path("var", "tasks"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        keys = os.stat(self.path("var", "tasks", "keys"))
        self.assertEqual(stat.S_IMODE(keys.st_mode), 0o600)
        self.assertNotIn("warning", srv.log_tail())
        # A store directory made by someone else, open to others, is
        # used, with a warning.
        os.chmod(self.path("var", "tasks"), 0o755)
        srv = self.starts(["--store", self.path("var", "tasks")])
        self.assertIn("warning: the store directory %s is accessible by "
                      "others (mode 0755); chmod 700 it"
                      % self.path("var", "tasks"), srv.log_tail())


# ---- TLS ---------------------------------------------------------------------------


def make_certificate(d):
    """A self-signed certificate for 127.0.0.1: (cert, key), or None."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    if shutil.which("openssl"):
        cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
               "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
               "-addext", "subjectAltName=IP:127.0.0.1"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    elif shutil.which("certtool"):
        tmpl = os.path.join(d, "cert.cfg")
        with open(tmpl, "w") as f:
            f.write("cn = 127.0.0.1\nip_address = 127.0.0.1\nexpiration_days = 2\n"
                    "tls_www_server\nsigning_key\nencryption_key\n")
        subprocess.run(["certtool", "--generate-privkey", "--key-type", "ecdsa",
                        "--outfile", key], check=True, capture_output=True,
                       timeout=60)
        subprocess.run(["certtool", "--generate-self-signed", "--load-privkey",
                        key, "--template", tmpl, "--outfile", cert], check=True,
                       capture_output=True, timeout=60)
    else:
        return None
    os.chmod(key, 0o600)
    return cert, key


class Tls(Processes):
    def setUp(self):
        super().setUp()
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed (scripts/deps.sh installs it)")
        pair = make_certificate(self.dir)
        if pair is None:
            self.skipTest("neither openssl nor certtool is installed "
                          "(scripts/deps.sh installs openssl)")
        self.cert, self.key = pair

    def curl(self, url, token, *extra):
        p = subprocess.run(["curl", "-sS", "-H", "Authorization: Bearer " + token,
                            "-w", "\n%{http_code}", *extra, url],
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_https_with_a_self_signed_certificate(self):
        tokens = make_tokens()
        srv = Server(workdir=self.dir, workers=0, tokens=tokens,
                     extra=["--tls-cert", self.cert, "--tls-key", self.key])
        self.servers.append(srv)
        srv.start()
        url = "https://%s:%d/tasks/ml_new_users/recents/" % srv.addr
        rc, out, err = self.curl(url, tokens["root"], "--cacert", self.cert)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.endswith("\n200"), out)
        self.assertIn('"tasks":[]', out)
        rc, out, err = self.curl(url, "wrong-token-0123456789", "--cacert", self.cert)
        self.assertTrue(out.endswith("\n401"), out)
        # Without the certificate curl does not trust the server.
        rc, out, err = self.curl(url, tokens["root"])
        self.assertNotEqual(rc, 0, out)
        # Plain HTTP to the TLS port is not served.
        st, got = exchange(srv.addr, b"GET /tasks/ml_new_users/recents/ HTTP/1.1\r\n"
                           b"Host: x\r\nAuthorization: Bearer " +
                           tokens["root"].encode() + b"\r\n\r\n", timeout=10)
        self.assertEqual(st, 0, got[:200])
        self.assertFalse(got.startswith(b"HTTP/"), got[:200])
        self.assertEqual(srv.stop(), 0, srv.log_tail())

    def test_https_on_every_address(self):
        srv = Server(workdir=self.dir, workers=0,
                     extra=["--listen", "0.0.0.0:0", "--tls-cert", self.cert,
                            "--tls-key", self.key])
        self.servers.append(srv)
        srv.start()
        self.assertEqual(srv.addr[0], "0.0.0.0")
        rc, out, err = self.curl("https://127.0.0.1:%d/tasks/ml_new_users/recents/"
                                 % srv.addr[1], srv.token(), "--cacert", self.cert)
        self.assertTrue(out.endswith("\n200"), (out, err))
        self.assertEqual(srv.stop(), 0)

    def test_plain_http_off_loopback_is_refused_unless_insecure(self):
        store = ["--store", tmbackend.store_path(self.path("tasks"))]
        for listen in ("0.0.0.0:0", "[::]:0"):
            with self.subTest(listen=listen):
                self.assertRefused(store + ["--listen", listen],
                                   "not a loopback address", "--tls-cert",
                                   "--insecure-http")
        srv = Server(workdir=self.dir, workers=0,
                     extra=["--listen", "0.0.0.0:0", "--insecure-http"])
        self.servers.append(srv)
        srv.start()
        srv.addr = ("127.0.0.1", srv.addr[1])
        srv.call("GET", "/tasks/ml_new_users/recents/")
        self.assertEqual(srv.stop(), 0)
        for listen in ("127.0.0.5:0", "[::1]:0"):
            with self.subTest(listen=listen):
                self.starts(store + ["--listen", listen])

    def test_bad_tls_files_are_refused(self):
        store = ["--store", tmbackend.store_path(self.path("tasks"))]
        os.chmod(self.key, 0o644)
        self.assertRefused(store + ["--tls-cert", self.cert, "--tls-key", self.key],
                           "TLS key file %s is accessible by others (mode 0644)"
                           % self.key)
        os.chmod(self.key, 0o600)
        garbage = self.path("garbage.pem")
        write_private(garbage, "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                      "-----END PRIVATE KEY-----\n")
        self.assertRefused(store + ["--tls-cert", self.cert, "--tls-key", garbage],
                           "certificate or key")
        self.assertRefused(store + ["--tls-cert", self.path("none"), "--tls-key",
                                    self.key], "No such file")
        rc, _, err = run_server(store + ["--tls-cert", self.cert], self.dir)
        self.assertEqual(rc, 2, err)
        self.assertIn("--tls-cert and --tls-key go together", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
