"""The seven endpoints and GET /stats/ over real HTTP: access per role, the seed's error
names per endpoint, pagination, bodies, paths and secrets.

A server with no workers: tasks stay where the requests put them."""
import json
import os
import unittest

from serverlib import ML_NAMES, ServerTestCase, make_tokens

TOKENS = make_tokens()
SECRET = "refresh-" + os.urandom(16).hex()


class Api(ServerTestCase):
    server_args = {"tokens": TOKENS, "workers": 0}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv.write_table("users.csv", "user_id,name\nu1,Ann\nu2,Bob\n")
        with open(os.path.join(cls.srv.dir, "outside.csv"), "w") as f:
            f.write("user_id\nzz\n")
        cls.responses = []   # every body, to look for the refresh token

    def req(self, method, path, role="root", body=None, raw=None,
            headers=None, token=None):
        tok = token if token is not None else self.srv.token(role)
        r = self.srv.request(method, path, tok, body=body, raw=raw,
                             headers=headers)
        self.responses.append(r[3])
        return r

    def ok(self, method, path, body=None, role="root"):
        st, _, doc, payload = self.req(method, path, role, body)
        self.assertEqual(st, 200, payload[:300])
        return doc

    def import_body(self, table="users.csv", **extra):
        b = {"context_task": {"connection": "LOCAL", "table_name": table}}
        b.update(extra)
        return b

    def new_import(self):
        return self.ok("POST", "/tasks/private/data_import/",
                       self.import_body())["task_id"]

    # ---- access -----------------------------------------------------------

    def endpoints(self):
        """(method, path, body) of each endpoint, valid for a root call."""
        tid = self.new_import()
        return [
            ("POST", "/tasks/ml_new_items/", None),
            ("GET", "/tasks/ml_new_items/recents/", None),
            ("POST", "/tasks/private/data_import/", self.import_body()),
            ("GET", "/tasks/private/data_import/recents/", None),
            ("GET", "/tasks/private/data_import/%s/" % tid, None),
            ("PATCH", "/tasks/private/data_import/%s/" % tid,
             {"details": {"progress": {"message": "patched"}}}),
            ("DELETE", "/tasks/private/data_import/%s/" % tid, None),
            ("GET", "/stats/", None),
        ]

    def test_every_endpoint_admits_root_manager_backend_only(self):
        for method, path, body in self.endpoints():
            for role in ("none", "unknown", "frontend", "backend", "manager",
                         "root"):
                with self.subTest(method=method, path=path, role=role):
                    if role == "none":
                        r = self.srv.request(method, path, None, body=body)
                    elif role == "unknown":
                        r = self.srv.request(method, path, "x" * 40, body=body)
                    else:
                        r = self.req(method, path, role, body)
                    if role in ("none", "unknown"):
                        self.assertError(r, 401, "UNAUTHORIZED", 21, "AuthError")
                        self.assertEqual(r[1].get("www-authenticate"), "Bearer")
                    elif role == "frontend":
                        self.assertError(r, 403, "FORBIDDEN", 50,
                                         "ForbiddenError")
                    else:
                        self.assertEqual(r[0], 200, r[3][:300])
                    if method == "POST" and "ml_new_items" in path and r[0] == 200:
                        # exclusive: cancel it so the next role may trigger
                        self.ok("DELETE", "/tasks/private/ml_new_items/%s/"
                                % r[2]["task_id"])

    def test_authorization_header_forms(self):
        path = "/tasks/ml_new_users/recents/"
        tok = self.srv.token("backend")
        for value, status in [("Bearer " + tok, 200), ("bearer " + tok, 200),
                              ("BEARER  " + tok + " ", 200),
                              ("Basic " + tok, 401), (tok, 401),
                              ("Bearer " + tok[:-1], 401),
                              ("Bearer " + tok + "x", 401), ("Bearer", 401),
                              ("Bearer ", 401)]:
            with self.subTest(value=value):
                r = self.srv.request("GET", path,
                                     headers={"Authorization": value})
                self.assertEqual(r[0], status, r[3])

    # ---- paths and methods ------------------------------------------------

    def test_unknown_paths_are_404(self):
        for path in ["/", "/tasks", "/tasks/", "/foo/", "/task/ml_new_users/",
                     "/tasks/ml_new_users/recents/x/",
                     "/tasks/private/data_import/recents/x/",
                     "/tasks//recents/", "//tasks/ml_new_users/",
                     "/tasks/ml_new_users/recent/",
                     "/tasks/private/data_import/%zz/",
                     "/tasks/../tasks/ml_new_users/recents/"]:
            with self.subTest(path=path):
                self.assertError(self.req("GET", path), 404, "NOT_FOUND", 60,
                                 "NotFoundError")

    def test_wrong_methods_are_405_with_allow(self):
        tid = self.new_import()
        for method, path, allow in [
                ("GET", "/tasks/ml_new_users/", "POST"),
                ("PUT", "/tasks/ml_new_users/", "POST"),
                ("POST", "/tasks/ml_new_users/recents/", "GET"),
                ("POST", "/tasks/private/data_import/recents/",
                 "GET, PATCH, DELETE"),
                ("PUT", "/tasks/private/recents/", "GET, POST"),
                ("POST", "/tasks/private/data_import/%s/" % tid,
                 "GET, PATCH, DELETE"),
                ("HEAD", "/tasks/private/data_import/%s/" % tid,
                 "GET, PATCH, DELETE")]:
            with self.subTest(method=method, path=path):
                r = self.req(method, path)
                self.assertEqual(r[0], 405)
                self.assertEqual(r[1].get("allow"), allow)
                if method != "HEAD":
                    self.assertError(r, 405, "HTTP_METHOD_NOT_ALLOWED", 70,
                                     "MethodNotAllowed")

    def test_paths_work_with_and_without_trailing_slash(self):
        tid = self.new_import()
        for path in ["/tasks/ml_new_users/recents",
                     "/tasks/private/data_import/recents",
                     "/tasks/private/data_import/%s" % tid]:
            with self.subTest(path=path):
                self.assertEqual(self.ok("GET", path), self.ok("GET", path + "/"))
        self.assertEqual(self.ok("GET", "/tasks/private/data_import/%s" % tid)["task_id"],
                         tid)
        tid = self.ok("POST", "/tasks/private/data_import",
                      self.import_body())["task_id"]
        self.assertEqual(self.ok("DELETE", "/tasks/private/data_import/" + tid)["status"],
                         "CANCELLED")

    # ---- triggers ---------------------------------------------------------

    def test_public_trigger_errors(self):
        name = "ml_model_retrain"
        tid = self.ok("POST", "/tasks/%s/" % name)["task_id"]
        self.assertEqual(len(tid), 20)
        self.assertError(self.req("POST", "/tasks/%s/" % name), 400,
                         "TASK_ALREADY_RUNNING", 42, "DuplicatedError")
        self.ok("DELETE", "/tasks/private/%s/%s/" % (name, tid))
        self.ok("DELETE", "/tasks/private/%s/%s/" %
                (name, self.ok("POST", "/tasks/%s/" % name)["task_id"]))
        for bad in ["no_such_task", "data_import", "reco_export", "private"]:
            with self.subTest(name=bad):
                self.assertError(self.req("POST", "/tasks/%s/" % bad), 400,
                                 "WRONG_DATA_TYPE", 40, "WrongData")

    def test_public_call_on_a_private_name_says_no_public_name(self):
        # The same answer as a name that does not exist: the public API
        # does not reveal private names.
        for bad in ["data_import", "no_such_task"]:
            with self.subTest(name=bad):
                r = self.req("POST", "/tasks/%s/" % bad)
                self.assertError(r, 400, "WRONG_DATA_TYPE")
                self.assertEqual(r[2]["message"],
                                 "no public task is named '%s'" % bad)

    def test_every_answer_ends_with_a_newline(self):
        tid = self.ok("POST", "/tasks/ml_new_items/")["task_id"]
        for method, path in [
                ("GET", "/tasks/ml_new_items/recents/"),
                ("GET", "/tasks/private/ml_new_items/%s/" % tid),
                ("DELETE", "/tasks/private/ml_new_items/%s/" % tid),
                ("GET", "/tasks/no_such/recents/"),
                ("PUT", "/tasks/ml_new_items/recents/"),
                ("GET", "/nowhere")]:
            with self.subTest(method=method, path=path):
                payload = self.req(method, path)[3]
                self.assertTrue(payload.endswith(b"}\n"), payload[-20:])
                self.assertEqual(payload.count(b"\n"), 1)

    def test_a_new_tables_directory_starts_with_the_example_tables(self):
        here = os.path.dirname(os.path.abspath(__file__))
        shipped = os.path.join(here, "..", "..", "examples", "tables")
        for name in sorted(os.listdir(shipped)):
            with self.subTest(table=name):
                with open(os.path.join(shipped, name), "rb") as f:
                    want = f.read()
                with open(os.path.join(self.srv.tables, name), "rb") as f:
                    self.assertEqual(f.read(), want)
        tid = self.ok("POST", "/tasks/private/data_import/", {"context_task": {
            "connection": "LOCAL", "table_name": "input-myfile.csv"}})["task_id"]
        self.assertEqual(len(tid), 20)

    def test_private_trigger_of_a_public_name(self):
        name = "ml_new_users"
        tid = self.ok("POST", "/tasks/private/%s/" % name,
                      {"context_task": {"reason": "test"}})["task_id"]
        self.assertError(self.req("POST", "/tasks/private/%s/" % name), 400,
                         "TASK_ALREADY_RUNNING", 42)
        self.ok("DELETE", "/tasks/private/%s/%s/" % (name, tid))
        self.assertError(self.req("POST", "/tasks/private/nope/"), 400,
                         "WRONG_DATA_TYPE", 40)

    def test_trigger_stores_payload_and_reason(self):
        tid = self.new_import()
        t = self.ok("GET", "/tasks/private/data_import/%s/" % tid)
        self.assertEqual(t["status"], "REQUEST_SENT")
        self.assertEqual(t["details"]["payload"],
                         {"connection": "LOCAL", "table_name": "users.csv"})
        self.assertEqual(t["details"]["create_reason"],
                         "manually triggered by endpoint")
        self.assertIsInstance(t["warnings"], list)
        self.assertEqual(t["progress"], "")

    def test_table_trigger_errors(self):
        gone = self.srv.tables + ".gone"
        cases = [
            ("data_import", {"connection": "GCS", "table_name": "users.csv"},
             "WRONG_DATA_TYPE"),
            ("data_import", {"connection": "S3", "table_name": "users.csv"},
             "WRONG_DATA_TYPE"),
            ("data_import", {"connection": "FTP", "table_name": "users.csv"},
             "WRONG_DATA_TYPE"),
            ("data_import", {"table_name": 5}, "WRONG_DATA_TYPE"),
            ("data_import", {"table_name": "users.parquet"}, "WRONG_DATA_TYPE"),
            ("data_import", {"table_name": "users.csv", "extra": 1},
             "WRONG_DATA_TYPE"),
            ("data_import", {"table_name": "missing.csv"}, "TABLE_NOT_FOUND"),
            ("reco_export", {"input_table": {"connection": "LOCAL",
                                             "name": "missing.csv"},
                             "output_table": {"connection": "LOCAL",
                                              "name": "out.csv"}},
             "TABLE_NOT_FOUND"),
            ("reco_export", {"input_table": {"connection": "GCS",
                                             "name": "users.csv"},
                             "output_table": {"connection": "LOCAL",
                                              "name": "out.csv"}},
             "WRONG_DATA_TYPE"),
            ("reco_export", {"input_table": {"connection": "LOCAL",
                                             "name": "users.csv"},
                             "reco_params": {"amt": 0},
                             "output_table": {"connection": "LOCAL",
                                              "name": "out.csv"}},
             "WRONG_DATA_TYPE"),
            ("reco_export", {"input_table": {"connection": "LOCAL",
                                             "name": "users.csv"},
                             "reco_params": {"filters": ["price"]},
                             "output_table": {"connection": "LOCAL",
                                              "name": "out.csv"}},
             "WRONG_DATA_TYPE"),
            ("user_id_whitelist_export",
             {"output_table": {"connection": "S3", "name": "w.csv"}},
             "WRONG_DATA_TYPE"),
            ("user_id_whitelist_export", {}, "WRONG_DATA_TYPE"),
            ("analytics_report_export",
             {"output_table": {"connection": "GCS", "name": "r"}},
             "WRONG_DATA_TYPE"),
        ]
        for name, ctx, err in cases:
            with self.subTest(name=name, ctx=ctx):
                r = self.req("POST", "/tasks/private/%s/" % name,
                             body={"context_task": ctx, "refresh_token": SECRET})
                self.assertError(r, 404 if err.endswith("NOT_FOUND") else 400,
                                 err)
        r = self.req("POST", "/tasks/private/data_import/",
                     body={"context_task": {"connection": "GCS",
                                            "table_name": "users.csv"}})
        self.assertIn("GCS", r[2]["message"])
        # Without the LOCAL directory, its tables are a missing resource.
        os.rename(self.srv.tables, gone)
        try:
            for name, ctx in [
                    ("data_import", {"table_name": "users.csv"}),
                    ("reco_export", {"input_table": {"name": "users.csv"},
                                     "output_table": {"name": "o.csv"}}),
                    ("user_id_whitelist_export",
                     {"output_table": {"name": "w.csv"}}),
                    ("analytics_report_export",
                     {"output_table": {"name": "report.json"}})]:
                with self.subTest(name=name, resource="gone"):
                    r = self.req("POST", "/tasks/private/%s/" % name,
                                 body={"context_task": ctx})
                    self.assertError(r, 404, "RESOURCE_NOT_FOUND", 60,
                                     "NotFoundError")
        finally:
            os.rename(gone, self.srv.tables)

    def test_path_traversal_is_refused(self):
        os.symlink("../outside.csv", os.path.join(self.srv.tables, "link.csv"))
        before = sorted(os.listdir(self.srv.tables))
        names = ["../outside.csv", "..", "../tables/users.csv", "/etc/passwd",
                 ".hidden.csv", "a/b.csv", "", "users.csv/", "..\\x.csv",
                 "x..csv", "link.csv", "users.csv\n"]
        for n in names:
            with self.subTest(table=n):
                r = self.req("POST", "/tasks/private/data_import/",
                             body=self.import_body(n))
                self.assertError(r, 400, "WRONG_DATA_TYPE")
                if n == "link.csv":
                    continue  # an output replaces the link, not its target
                r = self.req("POST", "/tasks/private/reco_export/", body={
                    "context_task": {"input_table": {"name": "users.csv"},
                                     "output_table": {"name": n}}})
                self.assertError(r, 400, "WRONG_DATA_TYPE")
        for path in ["/tasks/private/..%2F..%2Fetc/recents/",
                     "/tasks/private/%2e%2e/recents/",
                     "/tasks/..%2Fprivate/recents/"]:
            with self.subTest(path=path):
                self.assertError(self.req("GET", path), 400, "WRONG_DATA_TYPE")
        self.assertEqual(sorted(os.listdir(self.srv.tables)), before)

    # ---- bodies -----------------------------------------------------------

    def test_malformed_bodies_are_wrong_data(self):
        path = "/tasks/private/data_import/"
        deep = b'{"context_task": ' + b'{"a": ' * 40 + b'1' + b'}' * 41
        cases = [b"{", b"not json", b"[]", b'"x"', b"null",
                 b'{"context_task": []}', b'{"refresh_token": 5}',
                 b'{"context_task": {"table_name": "users.csv"}, "x": 1}',
                 b'{"context_task": {"table_name": "users\xff.csv"}}',
                 b'{"context_task": {"table_name": "us\x00ers.csv"}}',
                 b"[" * 100000, deep]
        for raw in cases:
            with self.subTest(body=raw[:60]):
                r = self.req("POST", path, raw=raw)
                self.assertError(r, 400, "WRONG_DATA_TYPE", 40, "WrongData")
        r = self.req("POST", path, raw=b"[" * 100000)
        self.assertIn("nested", r[2]["message"])

    def test_patch_and_cancel_errors(self):
        tid = self.new_import()
        base = "/tasks/private/data_import/"
        missing = "A" * 20
        self.assertError(self.req("GET", base + missing + "/"), 404,
                         "TASK_NOT_FOUND", 60, "NotFoundError")
        self.assertError(self.req("PATCH", base + missing + "/",
                                  body={"completed": True}), 404,
                         "TASK_NOT_FOUND")
        self.assertError(self.req("DELETE", base + missing + "/"), 404,
                         "TASK_NOT_FOUND")
        # a task of another name is not found under this one
        self.assertError(self.req("GET", "/tasks/private/reco_export/%s/" % tid),
                         404, "TASK_NOT_FOUND")
        for bad_id in ["short", "A" * 21, "A" * 19 + "-"]:
            for m in ("GET", "PATCH", "DELETE"):
                with self.subTest(id=bad_id, method=m):
                    r = self.req(m, base + bad_id + "/",
                                 body={"completed": True} if m == "PATCH" else None)
                    self.assertError(r, 400, "WRONG_DATA_TYPE")
        for m in ("GET", "PATCH", "DELETE"):
            with self.subTest(name="nope", method=m):
                r = self.req(m, "/tasks/private/nope/%s/" % tid,
                             body={"completed": True} if m == "PATCH" else None)
                self.assertError(r, 400, "WRONG_DATA_TYPE")
        for body in [{"status": "REQUEST_SENT"}, {"status": "DONE"},
                     {"completed": True, "failed": True}, {"bogus": 1}, []]:
            with self.subTest(patch=body):
                self.assertError(self.req("PATCH", base + tid + "/", body=body),
                                 400, "WRONG_DATA_TYPE")
        self.assertError(self.req("PATCH", base + tid + "/"), 400,
                         "WRONG_DATA_TYPE")
        t = self.ok("PATCH", base + tid + "/", {
            "status": "RUNNING", "details": {"progress": {"message": "uploading 95%"}}})
        self.assertEqual((t["status"], t["progress"]), ("RUNNING", "uploading 95%"))
        t = self.ok("PATCH", base + tid + "/", {"completed": True})
        self.assertEqual(t["status"], "COMPLETED")
        # The example's pipeline: an ml_new_items follows the import.  No
        # worker runs it here, and it is exclusive: cancel it.
        self.assertEqual(t["details"]["then"]["name"], "ml_new_items")
        self.ok("DELETE", "/tasks/private/ml_new_items/%s/" % t["details"]["then"]["task_id"])
        self.assertError(self.req("PATCH", base + tid + "/",
                                  body={"status": "RUNNING"}), 400,
                         "LOWER_STATUS_NOT_ALLOWED", 40, "WrongData")
        self.assertError(self.req("PATCH", base + tid + "/", body={"failed": True}),
                         400, "LOWER_STATUS_NOT_ALLOWED")
        # cancelling a final task changes nothing and is no error
        self.assertEqual(self.ok("DELETE", base + tid + "/")["status"], "COMPLETED")
        tid = self.new_import()
        self.assertEqual(self.ok("DELETE", base + tid + "/")["status"], "CANCELLED")

    # ---- lists ------------------------------------------------------------

    def test_pagination(self):
        name = "user_id_whitelist_export"
        body = {"context_task": {"output_table": {"connection": "LOCAL",
                                                  "name": "w.csv"}}}
        ids = [self.ok("POST", "/tasks/private/%s/" % name, body)["task_id"]
               for _ in range(7)]
        seen = []
        for page, has_next in [(1, True), (2, True), (3, False)]:
            doc = self.ok("GET", "/tasks/private/%s/recents/?page=%d&amt=3"
                          % (name, page))
            self.assertEqual(list(doc), ["has_next", "next_page", "tasks"])
            self.assertEqual(doc["has_next"], has_next)
            self.assertEqual(doc["next_page"], page + 1)
            self.assertEqual(len(doc["tasks"]), 3 if has_next else 1)
            seen += doc["tasks"]
        self.assertEqual([t["task_id"] for t in seen], ids[::-1])
        times = [t["start_time"] for t in seen]
        self.assertEqual(times, sorted(times, reverse=True))
        self.assertTrue(all("details" in t for t in seen))
        doc = self.ok("GET", "/tasks/private/%s/recents/?page=9&amt=3" % name)
        self.assertEqual((doc["has_next"], doc["tasks"]), (False, []))
        doc = self.ok("GET", "/tasks/private/%s/recents/" % name)
        self.assertEqual(len(doc["tasks"]), 7)  # default amt 50
        doc = self.ok("GET", "/tasks/private/%s/recents/?amt=64&other=1" % name)
        self.assertEqual(len(doc["tasks"]), 7)

    def test_public_list_hides_details(self):
        name = ML_NAMES[3]
        tid = self.ok("POST", "/tasks/%s/" % name)["task_id"]
        try:
            pub = self.ok("GET", "/tasks/%s/recents/?amt=1" % name)["tasks"][0]
            self.assertEqual(pub["task_id"], tid)
            self.assertNotIn("details", pub)
            self.assertEqual(set(pub), {"task_id", "name", "start_time",
                                        "status", "progress", "warnings"})
            priv = self.ok("GET", "/tasks/private/%s/recents/?amt=1" % name)
            self.assertIn("details", priv["tasks"][0])
        finally:
            self.ok("DELETE", "/tasks/private/%s/%s/" % (name, tid))
        self.assertError(self.req("GET", "/tasks/data_import/recents/"), 400,
                         "WRONG_DATA_TYPE")
        self.assertError(self.req("GET", "/tasks/nope/recents/"), 400,
                         "WRONG_DATA_TYPE")
        self.assertError(self.req("GET", "/tasks/private/nope/recents/"), 400,
                         "WRONG_DATA_TYPE")

    def test_bad_query_values_are_wrong_data(self):
        for q in ["page=0", "page=-1", "page=abc", "page=1.5", "page=",
                  "amt=0", "amt=65", "amt=1e1", "amt=%31%30x", "amt=+5",
                  "page=1&page=2", "page=99999999999", "amt=%zz"]:
            for path in ["/tasks/ml_new_users/recents/",
                         "/tasks/private/data_import/recents/"]:
                with self.subTest(query=q, path=path):
                    self.assertError(self.req("GET", path + "?" + q), 400,
                                     "WRONG_DATA_TYPE", 40)
        self.ok("GET", "/tasks/ml_new_users/recents/?page=%31&amt=64")

    # ---- secrets ----------------------------------------------------------

    def test_refresh_token_never_returned(self):
        base = "/tasks/private/data_import/"
        tid = self.ok("POST", base, self.import_body(refresh_token=SECRET))["task_id"]
        self.ok("GET", base + tid + "/")
        self.ok("GET", base + "recents/?amt=64")
        self.ok("PATCH", base + tid + "/", {"details": {"progress": {"message": "x"}}})
        self.ok("DELETE", base + tid + "/")
        self.ok("GET", "/tasks/private/analytics_report_export/recents/")
        blob = b"".join(self.responses)
        self.assertNotIn(SECRET.encode(), blob)
        with open(self.srv.log_path, "rb") as f:
            self.assertNotIn(SECRET.encode(), f.read())
        for tok in TOKENS.values():
            self.assertNotIn(tok.encode(), blob)

    def test_error_bodies_are_json_with_the_seed_shape(self):
        r = self.req("GET", "/tasks/private/no%C3%A9name%01/recents/")
        doc = self.assertError(r, 400, "WRONG_DATA_TYPE")
        json.dumps(doc)
        self.assertTrue(all(32 <= ord(c) < 127 for c in doc["message"]))
        self.assertEqual(r[1]["content-type"], "application/json")


if __name__ == "__main__":
    unittest.main(verbosity=2)
