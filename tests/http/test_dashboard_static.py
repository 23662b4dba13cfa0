"""The dashboard's files over real HTTP (doc/dashboard.md), and GET /stats/
that it reads: every file of examples/server/dashboard/ served without a
token, byte for byte, with its Content-Type, the CSP and nosniff; the page
free of inline script and style and of markup built from strings; the
paths and methods around it; the counts by status.

(The page itself, in a browser, is tests/dashboard.)"""
import html.parser
import os
import re
import unittest

from serverlib import ServerTestCase, make_tokens

TOKENS = make_tokens()
DASH_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                        os.pardir, "examples", "server", "dashboard")
SERVED = sorted(f for f in os.listdir(DASH_DIR) if f != "embed.py")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
TYPES = {".html": "text/html; charset=utf-8",
         ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}


def source(name):
    with open(os.path.join(DASH_DIR, name), "rb") as f:
        return f.read()


class PageParser(html.parser.HTMLParser):
    """What the CSP would block in index.html, and every URL it loads."""

    def __init__(self):
        super().__init__()
        self.problems, self.urls, self.inputs = [], [], []
        self._script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in a:
            if k == "style" or k.startswith("on"):
                self.problems.append("<%s %s=...>" % (tag, k))
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script":
            self._script = True
            if "src" not in a:
                self.problems.append("<script> without src")
        for k in ("src", "href", "action"):
            if k in a:
                self.urls.append(a[k])
        if tag == "input":
            self.inputs.append(a)

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = False

    def handle_data(self, data):
        if self._script and data.strip():
            self.problems.append("inline script text")


class Dashboard(ServerTestCase):
    server_args = {"tokens": TOKENS, "workers": 0}

    def get(self, path, method="GET", token=None, raw=None):
        return self.srv.request(method, path, token, raw=raw)

    def assertDashboardHeaders(self, h):
        self.assertEqual(h.get("content-security-policy"), CSP)
        self.assertEqual(h.get("x-content-type-options"), "nosniff")
        self.assertEqual(h.get("x-frame-options"), "DENY")
        self.assertEqual(h.get("referrer-policy"), "no-referrer")

    def test_every_file_is_served_as_in_the_tree_without_a_token(self):
        self.assertIn("index.html", SERVED)
        for name in SERVED:
            with self.subTest(name=name):
                st, h, _, body = self.get("/dashboard/" + name)
                self.assertEqual(st, 200, body[:200])
                self.assertEqual(body, source(name))
                self.assertEqual(h.get("content-type"),
                                 TYPES[os.path.splitext(name)[1]])
                self.assertDashboardHeaders(h)
                # The same answer with any token, or a wrong one.
                self.assertEqual(self.get("/dashboard/" + name,
                                          token="x" * 40)[3], body)

    def test_the_root_is_the_page_and_the_bare_path_redirects(self):
        st, h, _, body = self.get("/dashboard/")
        self.assertEqual(st, 200)
        self.assertEqual(body, source("index.html"))
        self.assertDashboardHeaders(h)
        st, h, _, body = self.get("/dashboard/?page=2")
        self.assertEqual((st, body), (200, source("index.html")))
        st, h, _, _ = self.get("/dashboard")
        self.assertEqual(st, 301)
        self.assertEqual(h.get("location"), "/dashboard/")
        self.assertDashboardHeaders(h)

    def test_head_answers_the_headers_only(self):
        st, h, _, body = self.get("/dashboard/app.js", method="HEAD")
        self.assertEqual(st, 200)
        self.assertEqual(body, b"")
        self.assertEqual(int(h.get("content-length")), len(source("app.js")))
        self.assertDashboardHeaders(h)

    def test_unknown_files_are_404_and_other_methods_405(self):
        for path in ("/dashboard/nope.js", "/dashboard/embed.py",
                     "/dashboard/../tasks/ml_new_users/recents/",
                     "/dashboard/%2e%2e/stats/", "/dashboard//app.js",
                     "/dashboard/app.js/", "/dashboard/APP.JS",
                     "/dashboard/app%2ejs", "/dashboard/x/index.html"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertError(r, 404, "NOT_FOUND", 60, "NotFoundError")
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            for path in ("/dashboard/", "/dashboard", "/dashboard/app.js"):
                with self.subTest(method=method, path=path):
                    r = self.get(path, method=method)
                    self.assertError(r, 405, "HTTP_METHOD_NOT_ALLOWED", 70,
                                     "MethodNotAllowed")
                    self.assertEqual(r[1].get("allow"), "GET, HEAD")
        # The sign-in form's own fallback: a POST with the token in its
        # body is refused, and its body is not what the log shows.
        r = self.get("/dashboard/", method="POST", raw=b"token=" + b"s" * 40)
        self.assertEqual(r[0], 405)
        self.assertNotIn("s" * 40, self.srv.log_tail())

    def test_other_paths_stay_the_apis(self):
        # Only /dashboard and what is under it is the dashboard's.
        for path in ("/dashboardx", "/dashboard.html", "/Dashboard/"):
            with self.subTest(path=path):
                self.assertError(self.get(path), 401, "UNAUTHORIZED", 21,
                                 "AuthError")

    def test_the_page_has_nothing_the_csp_blocks(self):
        p = PageParser()
        p.feed(source("index.html").decode())
        self.assertEqual(p.problems, [])
        # Same-origin files only, and the sign-in form posts to itself.
        for url in p.urls:
            with self.subTest(url=url):
                self.assertTrue(url == "data:," or re.fullmatch(
                    r"(\./)?[a-z.]*", url), url)
        self.assertEqual([i.get("name") for i in p.inputs], ["token"])
        self.assertEqual(p.inputs[0].get("type"), "password")

    def test_the_scripts_build_no_markup_and_keep_the_token_in_the_tab(self):
        js = {n: source(n).decode() for n in SERVED if n.endswith(".js")}
        self.assertIn("app.js", js)
        for name, text in js.items():
            for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML",
                        "document.write", "eval(", "new Function",
                        "localStorage", "http://", "https://"):
                if bad == "http://" and name == "charts.js":
                    # the SVG namespace, not a fetch
                    text = text.replace("'http://www.w3.org/2000/svg'", "")
                with self.subTest(name=name, bad=bad):
                    self.assertNotIn(bad, text)
        self.assertIn("sessionStorage", js["api.js"])
        for name in SERVED:
            if name.endswith(".css"):
                self.assertNotRegex(source(name).decode(), r"url\(|@import")

    def test_stats_counts_tasks_by_status(self):
        def counts():
            return self.srv.call("GET", "/stats/", role="manager")["names"]

        before = counts()["reco_export"]
        body = {"context_task": {
            "input_table": {"connection": "LOCAL", "name": "users-whitelist-test.csv"},
            "output_table": {"connection": "LOCAL", "name": "o.csv"}}}
        ids = [self.srv.trigger("reco_export", body) for _ in range(3)]
        self.srv.call("DELETE", "/tasks/private/reco_export/%s/" % ids[0])
        after = counts()
        self.assertEqual(set(after), {
            "ml_model_retrain", "item_popularity_score_recalibrate",
            "ml_new_users", "ml_new_items", "data_import", "reco_export",
            "user_id_whitelist_export", "analytics_report_export"})
        got = after["reco_export"]
        # No workers: the triggered tasks wait, the cancelled one is final.
        self.assertEqual(got["REQUEST_SENT"] - before["REQUEST_SENT"], 2)
        self.assertEqual(got["CANCELLED"] - before["CANCELLED"], 1)
        self.assertEqual(got["total"] - before["total"], 3)
        doc = self.srv.call("GET", "/stats/")
        for key in ("queue_depth", "oldest_waiting_age_s", "workers",
                    "workers_idle", "commits"):
            self.assertIsInstance(doc[key], (int, float), key)
        self.assertEqual(doc["workers"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
