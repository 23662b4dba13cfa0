"""The server process: command line, tokens file, limits on bodies,
headers and connections, the access log, and stopping on signals."""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import tmbackend
from serverlib import (SERVER, Server, ServerTestCase, make_tokens, wait_for,
                       write_private)

MIB = 1024 * 1024


def raw_exchange(addr, data, timeout=10):
    """Send raw bytes, return what the server answers until it closes."""
    s = socket.create_connection(addr, timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                m = re.search(rb"content-length: *(\d+)", head, re.I)
                if m and len(body) >= int(m.group(1)):
                    return out
    finally:
        s.close()


class Limits(ServerTestCase):
    # 64 connections in all, however many from one address.
    server_args = {"workers": 0, "extra": ["--max-connections", "64",
                                           "--per-ip-connections", "0"]}

    def auth(self):
        return "Authorization: Bearer %s\r\n" % self.srv.token()

    def test_announced_oversize_body_is_refused_before_it_is_sent(self):
        head = ("POST /tasks/private/data_import/ HTTP/1.1\r\nHost: x\r\n%s"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % (self.auth(), 2 * MIB)).encode()
        out = raw_exchange(self.srv.addr, head)   # no body sent at all
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:200])
        self.assertIn(b'"WRONG_DATA_TYPE"', out)
        self.assertIn(b"1 MiB", out)

    def test_chunked_oversize_body_is_refused(self):
        conn = http.client.HTTPConnection(*self.srv.addr, timeout=30)
        chunk = b"x" * 65536

        def body():
            for _ in range(17):   # 1 MiB + 64 KiB
                yield chunk
        try:
            conn.request("POST", "/tasks/private/data_import/", body=body(),
                         headers={"Authorization": "Bearer " + self.srv.token()},
                         encode_chunked=True)
            r = conn.getresponse()
            self.assertEqual(r.status, 400)
            self.assertIn(b"1 MiB", r.read())
        finally:
            conn.close()

    def test_body_at_the_limit_is_read(self):
        pad = "x" * (MIB - 100)
        st, _, doc, _ = self.srv.request(
            "POST", "/tasks/private/data_import/", self.srv.token(),
            raw=('{"context_task": {"table_name": "t.csv", "pad": "%s"}}'
                 % pad).encode())
        # read and judged by the job's checks, not refused for its size
        self.assertEqual(st, 400)
        self.assertNotIn("1 MiB", doc["message"])
        self.assertIn("pad", doc["message"])

    def test_huge_headers_are_refused_and_the_server_lives_on(self):
        st, _, _, _ = self.srv.request("GET", "/tasks/ml_new_users/recents/",
                                       self.srv.token(),
                                       headers={"X-Big": "y" * 100000})
        self.assertIn(st, (400, 413, 431))
        self.srv.call("GET", "/tasks/ml_new_users/recents/")

    def test_connection_count_is_bounded(self):
        socks = []
        try:
            for _ in range(70):
                socks.append(socket.create_connection(self.srv.addr, timeout=10))
            # the server keeps at most 64: a request on top is not served
            # (it waits in the listen queue; well before the request
            # deadline frees the slots of the 64 silent ones)
            with self.assertRaises((ConnectionError, http.client.HTTPException,
                                    socket.timeout, OSError)):
                c = socks[-1]
                c.settimeout(3)
                c.sendall(("GET /tasks/ml_new_users/recents/ HTTP/1.1\r\n"
                           "Host: x\r\n%s\r\n" % self.auth()).encode())
                if not c.recv(100):
                    raise ConnectionError("closed")
        finally:
            for s in socks:
                s.close()
        wait_for(self.srv.serves, 20, "the server to serve again")

    def test_access_log_has_one_line_per_request(self):
        marker = "/tasks/ml_new_items/recents/?page=%d&amt=1" % os.getpid()
        self.srv.call("GET", marker)
        self.srv.request("GET", "/nowhere/%d" % os.getpid())

        def logged():
            with open(self.srv.log_path) as f:
                return [l for l in f if str(os.getpid()) in l]
        lines = wait_for(lambda: len(logged()) == 2 and logged(), 10, "log lines")
        self.assertRegex(lines[0], r"^GET %s 200 \d+us$" % re.escape(marker))
        self.assertRegex(lines[1], r"^GET /nowhere/\d+ 401 \d+us$")


class LibraryLimits(ServerTestCase):
    """--max-task-bytes, --max-details-bytes, --max-keys and
    --max-list-bytes reach tm_options: small values refuse what the
    defaults (the Limits server above) take."""
    server_args = {"workers": 0, "extra": [
        "--max-task-bytes", "4096", "--max-details-bytes", "2048",
        "--max-keys=50", "--max-list-bytes", "8192"]}

    def refused(self, method, path, body, limit):
        st, _, doc, payload = self.srv.request(method, path, self.srv.token(),
                                               body=body)
        self.assertEqual(st, 400, payload[:300])
        self.assertEqual(doc["error_data"]["name"], "WRONG_DATA_TYPE", doc)
        self.assertIn("(%s)" % limit, doc["message"])

    def test_the_library_limits_are_options_of_the_server(self):
        big = {"context_task": {"x": "a" * 3000}}
        wide = {"context_task": {"k%d" % i: i for i in range(60)}}
        self.refused("POST", "/tasks/ml_new_users/", big, "max_details_bytes")
        self.refused("POST", "/tasks/ml_new_users/", wide, "max_keys")
        for _ in range(40):
            self.srv.call("POST", "/tasks/private/data_import/", {"context_task": {
                "connection": "LOCAL", "table_name": "input-myfile.csv"}})
        self.refused("GET", "/tasks/private/data_import/recents/?amt=64", None,
                     "max_list_bytes")
        self.assertEqual(len(self.srv.call(
            "GET", "/tasks/private/data_import/recents/?amt=5")["tasks"]), 5)
        # The library's defaults take both.
        srv = Server(workers=0)
        try:
            srv.start()
            srv.call("POST", "/tasks/ml_new_users/", big)
            srv.call("POST", "/tasks/ml_new_items/", wide)
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.cleanup()


class Process(unittest.TestCase):
    def setUp(self):
        if not SERVER:
            raise unittest.SkipTest("TASKMGR_SERVER is not set")
        self.dir = tempfile.mkdtemp(prefix="tmhttp-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_server(self, *args):
        p = subprocess.run([SERVER, "--listen", "127.0.0.1:0", "--store",
                            tmbackend.store_path(os.path.join(self.dir, "s"))]
                           + list(args),
                           capture_output=True, text=True, timeout=30,
                           cwd=self.dir)
        return p.returncode, p.stdout, p.stderr

    def test_bad_command_lines_exit_2(self):
        for args in [["--workers", "x"], ["--workers", "-1"], ["--bogus"],
                     ["--simulate-seconds", "nan"], ["--store"], ["--store="],
                     ["--write-threads", "257"], ["--write-threads", "-1"],
                     ["--http-threads", "0"]]:
            with self.subTest(args=args):
                rc, out, err = self.run_server(*args)
                self.assertEqual(rc, 2, err)
                self.assertIn("usage", err)
                self.assertNotIn("listening", out)
        rc, out, _ = self.run_server("--help")
        self.assertEqual(rc, 0)
        self.assertIn("--simulate-seconds", out)

    def test_bad_tokens_files_exit_1_with_the_reason(self):
        path = os.path.join(self.dir, "tokens")
        for text, where in [("root\n", "tokens:1:"), ("root short\n", "tokens:1:"),
                            ("", "no 'ROLE TOKEN'"),
                            ("root " + "a" * 20 + "\nx " + "a" * 20 + "\n",
                             "tokens:2:")]:
            with self.subTest(text=text):
                write_private(path, text)
                rc, out, err = self.run_server("--tokens", path)
                self.assertEqual(rc, 1)
                self.assertIn(where, err)
                self.assertNotIn("listening", out)
        rc, _, err = self.run_server("--tokens", os.path.join(self.dir, "none"))
        self.assertEqual(rc, 1)
        self.assertIn("No such file", err)

    def test_library_limits_are_checked_by_the_library(self):
        rc, out, err = self.run_server("--max-task-bytes", "4096",
                                       "--max-details-bytes", "2048",
                                       "--max-list-bytes", "5000")
        self.assertEqual(rc, 1, err)
        self.assertIn("max_list_bytes", err)
        self.assertNotIn("listening", out)
        for args in (["--max-keys", "1.5"], ["--max-task-bytes", "-1"],
                     ["--max-list-bytes", "x"]):
            with self.subTest(args=args):
                rc, out, err = self.run_server(*args)
                self.assertEqual(rc, 2, err)
        rc, out, _ = self.run_server("--help")
        for opt in ("--max-task-bytes", "--max-details-bytes", "--max-keys",
                    "--max-list-bytes", "--request-deadline", "--max-connections",
                    "--per-ip-connections", "--http-threads", "--write-threads",
                    "--tls-cert",
                    "--tls-key", "--insecure-http"):
            self.assertIn(opt, out)

    def test_unusable_listen_address_exits_1(self):
        for listen in ["nohost", "127.0.0.1:99999", "1.2.3.4:80", "127.0.0.1:",
                       "[::1:80"]:
            with self.subTest(listen=listen):
                rc, out, err = self.run_server("--listen", listen)
                self.assertEqual(rc, 1, err)
                self.assertIn("listen", err)

    def test_generated_root_token_is_printed_once_and_works(self):
        tokens = []
        for _ in range(2):
            srv = Server(workdir=self.dir, workers=0)
            try:
                srv.start()
                self.assertEqual(len(srv.lines), 2)
                self.assertTrue(srv.lines[0].startswith("root token: "))
                self.assertTrue(srv.lines[1].startswith("listening on 127.0.0.1:"))
                self.assertRegex(srv.root_token, r"^[A-Za-z0-9_-]{43}$")
                srv.call("GET", "/tasks/ml_new_users/recents/")
                tokens.append(srv.root_token)
                self.assertEqual(srv.stop(signal.SIGINT), 0)
            finally:
                srv.kill()
        self.assertNotEqual(tokens[0], tokens[1])

    def test_sigint_and_sigterm_stop_with_status_0(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(sig=sig):
                srv = Server(workdir=self.dir, tokens=make_tokens(), workers=2)
                try:
                    srv.start()
                    self.assertIsNone(srv.root_token)
                    srv.call("GET", "/tasks/ml_new_users/recents/")
                    self.assertEqual(srv.stop(sig), 0)
                finally:
                    srv.kill()

    def test_default_directories_are_created(self):
        srv = Server(workdir=self.dir, workers=0)
        srv.argv = lambda: [SERVER, "--listen", "127.0.0.1:0"]
        try:
            srv.start()
            self.assertTrue(os.path.isdir(os.path.join(self.dir, "var", "tasks")))
            self.assertTrue(os.path.isdir(os.path.join(self.dir, "var", "tables")))
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.kill()


if __name__ == "__main__":
    unittest.main(verbosity=2)
