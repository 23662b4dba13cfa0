"""Signed download URLs of LOCAL tables, end to end (doc/http.md,
"Downloads"): a report exported by analytics_report_export, and other
outputs, downloaded byte for byte through a signed URL; expired, tampered
and foreign signatures; path traversal, encoded or not, and links out of
the tables directory; tokens and roles on the signing endpoint; the
signature absent from the access log; the key file, kept across a
restart, and its start-up checks.

Each class starts its own server(s) in a temporary directory of its own;
every server is stopped (killed if need be) when its test or class ends."""
import gzip
import hashlib
import hmac
import json
import os
import stat
import subprocess
import time
import unittest
import urllib.parse

import tmbackend
from serverlib import (FINAL, Server, ServersTestCase, ServerTestCase, make_tokens,
                       wait_for)

SIGN = "/storage-signed-urls/local-tables/%s/download/"
FILE = "/storage-signed-urls/local-tables/%s/file/"
MARKER = b"outside-the-tables-" + os.urandom(8).hex().encode()


def default_key(srv):
    """Where the server keeps its signing key when not told: in an LMDB
    store's directory, else beside the tables directory."""
    if tmbackend.PG:
        return os.path.join(os.path.dirname(srv.tables), "signing.key")
    return os.path.join(srv.store, "signing.key")


def signature(key, resource, expires):
    """The documented signature, computed independently of the server."""
    text = b"local-tables\n" + resource.encode() + b"\n" + str(expires).encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


class Client:
    """Requests of the download endpoints, for a class with self.srv."""

    def sign(self, resource, query="", role="root", expect=200):
        path = SIGN % urllib.parse.quote(resource, safe="") + query
        st, _, doc, raw = self.srv.request("GET", path, self.srv.token(role))
        self.assertEqual(st, expect, raw[:300])
        return doc

    def fetch(self, url, token=None):
        """GET a signed URL (no token): (status, headers, bytes)."""
        st, hdrs, _, raw = self.srv.request("GET", url, token)
        return st, hdrs, raw

    def table(self, name):
        with open(os.path.join(self.srv.tables, name), "rb") as f:
            return f.read()

    def export(self, task, body):
        tid = self.srv.trigger(task, body)
        t = self.srv.wait_status(task, tid, FINAL)
        self.assertEqual(t["status"], "COMPLETED", t)


class Downloads(Client, ServerTestCase):
    server_args = {"workers": 2, "simulate": 0, "tokens": make_tokens()}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A file beside the tables directory, that no URL may reach.
        with open(os.path.join(cls.srv.dir, "secret.txt"), "wb") as f:
            f.write(MARKER)

    def test_an_exported_report_downloads_byte_for_byte(self):
        for name, ctype in [("analytics_report_123xyz", "application/octet-stream"),
                            ("report.json", "application/json")]:
            with self.subTest(name=name):
                self.export("analytics_report_export", {"context_task": {
                    "output_table": {"connection": "LOCAL", "name": name}}})
                before = time.time()
                doc = self.sign(name)
                self.assertEqual(set(doc), {"url", "expires"})
                self.assertIsInstance(doc["expires"], int)
                # 15 minutes by default
                self.assertGreaterEqual(doc["expires"], int(before) + 900)
                self.assertLessEqual(doc["expires"], time.time() + 900)
                self.assertTrue(doc["url"].startswith(FILE % name + "?"), doc)
                st, hdrs, body = self.fetch(doc["url"])
                self.assertEqual(st, 200, body[:300])
                self.assertEqual(body, self.table(name))
                self.assertEqual(json.loads(body)["report"], "analytics")
                self.assertEqual(hdrs["content-type"], ctype)
                self.assertEqual(hdrs["content-disposition"],
                                 'attachment; filename="%s"' % name)
                self.assertEqual(hdrs["cache-control"], "no-store")
                self.assertEqual(int(hdrs["content-length"]), len(body))

    def test_outputs_download_with_the_type_of_their_name(self):
        self.srv.write_table("people.csv", "user_id\nu2\nu1\n")
        for name, ctype in [("wl.csv", "text/csv"),
                            ("wl.csv.gz", "application/gzip")]:
            with self.subTest(name=name):
                self.export("user_id_whitelist_export", {"context_task": {
                    "output_table": {"name": name}}})
                st, hdrs, body = self.fetch(self.sign(name)["url"])
                self.assertEqual(st, 200)
                self.assertEqual(hdrs["content-type"], ctype)
                self.assertEqual(body, self.table(name))
                text = gzip.decompress(body) if name.endswith(".gz") else body
                self.assertTrue(text.startswith(b"user_id\n"), text[:100])
        # A larger file, streamed whole.
        big = os.urandom(3 * 1024 * 1024 + 17)
        with open(os.path.join(self.srv.tables, "big.bin"), "wb") as f:
            f.write(big)
        st, hdrs, body = self.fetch(self.sign("big.bin")["url"])
        self.assertEqual((st, hdrs["content-type"]), (200, "application/octet-stream"))
        self.assertEqual(body, big)

    def test_names_are_encoded_in_the_url(self):
        name = "a b&c?d#e%f.csv"
        self.srv.write_table(name, "user_id\nu1\n")
        url = self.sign(name)["url"]
        self.assertTrue(url.startswith(FILE % "a%20b%26c%3Fd%23e%25f.csv"), url)
        st, hdrs, body = self.fetch(url)
        self.assertEqual((st, body), (200, b"user_id\nu1\n"))
        self.assertEqual(hdrs["content-disposition"], 'attachment; filename="%s"' % name)

    def test_the_url_expires(self):
        self.srv.write_table("soon.csv", "user_id\n")
        doc = self.sign("soon.csv", "?expires_in=1")
        self.assertLessEqual(doc["expires"], time.time() + 1)
        st, _, body = self.fetch(doc["url"])
        if st != 200:   # the second may already have gone by on a busy machine
            self.assertGreater(int(time.time()), doc["expires"])
        wait_for(lambda: int(time.time()) > doc["expires"], 10,
                 "the URL's expiry to pass")
        st, _, body = self.fetch(doc["url"])
        err = json.loads(body)
        self.assertEqual((st, err["error_data"]["name"]), (403, "FORBIDDEN"), err)
        self.assertIn("expired", err["message"])
        # A new URL works again.
        self.assertEqual(self.fetch(self.sign("soon.csv")["url"])[0], 200)

    def test_expires_in_is_bounded(self):
        self.srv.write_table("x.csv", "user_id\n")
        for q in ("0", "901", "-1", "1e3", "x", "", "60&expires_in=60"):
            with self.subTest(expires_in=q):
                doc = self.sign("x.csv", "?expires_in=" + q, expect=400)
                self.assertEqual(doc["error_data"]["name"], "WRONG_DATA_TYPE")
        for q in ("1", "900", "60"):
            before = int(time.time())
            doc = self.sign("x.csv", "?expires_in=" + q)
            self.assertGreaterEqual(doc["expires"], before + int(q))
            self.assertLessEqual(doc["expires"], time.time() + int(q))

    def test_tampered_and_foreign_signatures_are_403(self):
        self.srv.write_table("a.csv", "user_id\na\n")
        self.srv.write_table("b.csv", "user_id\nb\n")
        a = self.sign("a.csv")["url"]
        b = self.sign("b.csv")["url"]
        path, query = a.split("?")
        q = urllib.parse.parse_qs(query)
        sig, expires = q["signature"][0], q["expires"][0]
        flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        bad = [
            path + "?expires=%s&signature=%s" % (expires, flipped),
            path + "?expires=%d&signature=%s" % (int(expires) + 3600, sig),
            path + "?expires=%s&signature=%s" % (expires, sig.upper()),
            path + "?" + b.split("?")[1],                 # b's signature
            FILE % "b.csv" + "?" + query,                 # a's, on b
            path + "?expires=%s" % expires,
            path + "?signature=%s" % sig,
            path,
            path + "?expires=%s&signature=%s&signature=%s" % (expires, sig, sig),
        ]
        for url in bad:
            with self.subTest(url=url):
                st, hdrs, body = self.fetch(url)
                self.assertEqual(st, 403, body[:300])
                err = json.loads(body)
                self.assertEqual(set(err), {"error_code", "error_name", "message",
                                            "error_data"})
                self.assertEqual((err["error_code"], err["error_name"],
                                  err["error_data"]["name"]),
                                 (50, "ForbiddenError", "FORBIDDEN"))
                self.assertEqual(hdrs["content-type"], "application/json")
        # The genuine URLs still work, with or without a token.
        self.assertEqual(self.fetch(a)[2], b"user_id\na\n")
        self.assertEqual(self.fetch(b, self.srv.token("frontend"))[2], b"user_id\nb\n")

    def test_the_signature_is_the_documented_hmac(self):
        key_file = default_key(self.srv)
        st = os.stat(key_file)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_size, 32)
        with open(key_file, "rb") as f:
            key = f.read()
        self.srv.write_table("h.csv", "user_id\n")
        url = self.sign("h.csv")["url"]
        q = urllib.parse.parse_qs(url.split("?")[1])
        self.assertEqual(q["signature"][0],
                         signature(key, "h.csv", int(q["expires"][0])))

    def test_traversal_is_refused(self):
        with open(default_key(self.srv), "rb") as f:
            key = f.read()
        expires = int(time.time()) + 600
        refused = {
            # the table-name rule: 400
            "..": 400, "%2e%2e": 400, "%2E%2e": 400, ".hidden": 400,
            "%2e%2e%2fsecret.txt": 400, "..%2fsecret.txt": 400,
            "%2e%2e%2f%2e%2e%2fsecret.txt": 400, "%2fetc%2fpasswd": 400,
            "..%5csecret.txt": 400, "a..b": 400, "%0a": 400,
            # not a path of the endpoints at all: 404 (401 without a token)
            "%00": 404, "secret.txt%00.csv": 404, "../..": 404,
            "../../secret.txt": 404, "x/..": 404,
        }
        for seg, status in sorted(refused.items()):
            with self.subTest(segment=seg):
                st, _, doc, raw = self.srv.request(
                    "GET", SIGN % seg, self.srv.token())
                self.assertEqual(st, status, raw[:300])
                self.assertNotIn(MARKER, raw)
                # The file endpoint, with a signature the key really makes
                # for the decoded name: refused all the same.  Without a
                # token, a path of no endpoint is a 401, as everywhere.
                name = urllib.parse.unquote(seg)
                url = FILE % seg + "?expires=%d&signature=%s" % (
                    expires, signature(key, name, expires))
                st, _, raw = self.fetch(url)
                self.assertEqual(st, 401 if status == 404 else status, raw[:300])
                self.assertNotIn(MARKER, raw)

    def test_links_out_of_the_tables_are_not_followed(self):
        with open(default_key(self.srv), "rb") as f:
            key = f.read()
        os.symlink(os.path.join(self.srv.dir, "secret.txt"),
                   os.path.join(self.srv.tables, "out.csv"))
        os.symlink("/etc/passwd", os.path.join(self.srv.tables, "passwd.csv"))
        os.mkdir(os.path.join(self.srv.tables, "sub.csv"))
        os.mkfifo(os.path.join(self.srv.tables, "fifo.csv"))
        expires = int(time.time()) + 600
        for name in ("out.csv", "passwd.csv", "sub.csv", "fifo.csv"):
            with self.subTest(name=name):
                doc = self.sign(name, expect=404)
                self.assertEqual(doc["error_data"]["name"], "RESOURCE_NOT_FOUND")
                st, _, raw = self.fetch(FILE % name + "?expires=%d&signature=%s"
                                        % (expires, signature(key, name, expires)))
                self.assertEqual(st, 404, raw[:300])
                self.assertEqual(json.loads(raw)["error_data"]["name"],
                                 "RESOURCE_NOT_FOUND")
                self.assertNotIn(MARKER, raw)
                self.assertNotIn(b"root:", raw)

    def test_the_signing_endpoint_wants_a_token_and_a_role(self):
        self.srv.write_table("t.csv", "user_id\n")
        st, hdrs, doc, _ = self.srv.request("GET", SIGN % "t.csv")
        self.assertEqual((st, doc["error_data"]["name"]), (401, "UNAUTHORIZED"))
        self.assertEqual(hdrs["www-authenticate"], "Bearer")
        st, _, doc, _ = self.srv.request("GET", SIGN % "t.csv", "not-a-token-at-all")
        self.assertEqual(st, 401)
        doc = self.sign("t.csv", role="frontend", expect=403)
        self.assertEqual(doc["error_data"]["name"], "FORBIDDEN")
        for role in ("root", "manager", "backend"):
            self.assertEqual(self.fetch(self.sign("t.csv", role=role)["url"])[0], 200)
        st, hdrs, doc, _ = self.srv.request("POST", SIGN % "t.csv", self.srv.token())
        self.assertEqual((st, hdrs["allow"]), (405, "GET"))

    def test_unknown_resources_are_404(self):
        doc = self.sign("nope.json", expect=404)
        self.assertEqual((doc["error_code"], doc["error_name"],
                          doc["error_data"]["name"]),
                         (60, "NotFoundError", "RESOURCE_NOT_FOUND"))
        # A signed URL whose file went away
        self.srv.write_table("gone.csv", "user_id\n")
        url = self.sign("gone.csv")["url"]
        os.unlink(os.path.join(self.srv.tables, "gone.csv"))
        st, _, raw = self.fetch(url)
        self.assertEqual((st, json.loads(raw)["error_data"]["name"]),
                         (404, "RESOURCE_NOT_FOUND"))

    def test_the_signature_stays_out_of_the_access_log(self):
        self.srv.write_table("logged.csv", "user_id\n")
        url = self.sign("logged.csv")["url"]
        sig = urllib.parse.parse_qs(url.split("?")[1])["signature"][0]
        self.assertEqual(self.fetch(url)[0], 200)
        self.assertEqual(self.fetch(url.replace("signature=", "%73ignature="))[0], 200)
        line = FILE % "logged.csv"
        wait_for(lambda: self.srv.log_tail().count(line) >= 2, 10,
                 "the access log lines")
        log = self.srv.log_tail()
        self.assertNotIn(sig, log)
        self.assertIn("signature=- 200", log)
        self.assertIn("%73ignature=- 200", log)


class KeyFile(ServersTestCase):
    """The key outlives a restart; its file's start-up checks."""

    def start(self, extra=()):
        return super().start(workers=0, extra=extra)

    def refused(self, extra):
        a = Server(workdir=self.dir, tokens=self.tokens, workers=0,
                   extra=extra).argv()
        p = subprocess.run(a, capture_output=True, text=True, timeout=30,
                           cwd=self.dir)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertNotIn("listening", p.stdout)
        return p.stderr

    def test_a_url_signed_before_a_restart_works_after_it(self):
        a = self.start()
        a.write_table("r.csv", "user_id\nu1\n")
        st, _, doc, _ = a.request("GET", SIGN % "r.csv", a.token())
        self.assertEqual(st, 200)
        self.assertIn("made the signing key", a.log_tail())
        self.assertEqual(a.stop(), 0)
        b = self.start()
        st, _, _, raw = b.request("GET", doc["url"])
        self.assertEqual((st, raw), (200, b"user_id\nu1\n"))
        self.assertEqual(b.stop(), 0)

    def test_signing_key_option_and_its_checks(self):
        key = os.path.join(self.dir, "keys", "dl.key")
        os.makedirs(os.path.dirname(key))
        a = self.start(["--signing-key", key])
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(a.stop(), 0)
        os.chmod(key, 0o640)
        err = self.refused(["--signing-key", key])
        self.assertIn("signing key %s is accessible by others" % key, err)
        os.chmod(key, 0o600)
        with open(key, "ab") as f:
            f.write(b"x")
        self.assertIn("exactly 32 bytes", self.refused(["--signing-key", key]))
        # Inside the tables, an output could replace it (or be it).
        os.makedirs(os.path.join(self.dir, "tables"), exist_ok=True)
        inside = os.path.join(self.dir, "tables", "k")
        self.assertIn("inside --tables", self.refused(["--signing-key", inside]))
        self.assertFalse(os.path.exists(inside))


if __name__ == "__main__":
    unittest.main()
