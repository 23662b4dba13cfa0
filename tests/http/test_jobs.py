"""The example jobs over real HTTP: trigger -> progress -> final status for
each of the eight seed names, cancellation of a running job, and what the
table jobs read and write."""
import csv
import gzip
import io
import json
import os
import re
import unittest

from serverlib import ML_NAMES, ServerTestCase

ML_DONE = {
    "ml_model_retrain": r"trained model [0-9a-f]{8}",
    "item_popularity_score_recalibrate": r"recalibrated popularity scores [0-9a-f]{8}",
    "ml_new_users": r"fitted new users into model [0-9a-f]{8}",
    "ml_new_items": r"fitted new items into model [0-9a-f]{8}",
}


def local(name):
    return {"connection": "LOCAL", "name": name}


class FastJobs(ServerTestCase):
    """Simulated ML jobs of one second, four workers."""
    server_args = {"workers": 4, "simulate": 1}

    def write(self, name, text, gz=False):
        path = os.path.join(self.srv.tables, name)
        data = text.encode()
        with open(path, "wb") as f:
            f.write(gzip.compress(data) if gz else data)
        return path

    def read(self, name):
        with open(os.path.join(self.srv.tables, name), "rb") as f:
            data = f.read()
        return (gzip.decompress(data) if name.endswith(".gz") else data).decode()

    def run_job(self, name, ctx=None, final="COMPLETED", private=True):
        body = None if ctx is None else {"context_task": ctx,
                                         "refresh_token": "rt-" + name}
        tid = self.srv.trigger(name, body, private=private)
        t = self.srv.wait_status(name, tid, ("FAILED", "CANCELLED", "COMPLETED"))
        self.assertEqual(t["status"], final, t)
        return t

    def test_ml_jobs_complete_with_progress(self):
        self.srv.settle()
        tids = {n: self.srv.trigger(n, private=False) for n in ML_NAMES}
        for name, tid in tids.items():
            with self.subTest(name=name):
                t = self.srv.wait_status(name, tid, ("COMPLETED", "FAILED",
                                                     "CANCELLED"))
                self.assertEqual(t["status"], "COMPLETED", t)
                self.assertRegex(t["progress"], "^" + ML_DONE[name] + "$")
                p = t["details"]["progress"]
                self.assertEqual((p["step"], p["steps"]), (10, 10))
                self.assertIn(p["model"], t["progress"])
                self.assertEqual(t["details"]["attempts"], 1)
                self.assertGreaterEqual(t["details"]["end_time"], t["start_time"])
                pub = self.srv.call("GET", "/tasks/%s/recents/?amt=1" % name)
                self.assertEqual(pub["tasks"][0]["progress"], t["progress"])

    def test_data_import_counts_rows_of_csv_and_gzip(self):
        rows = ["item_id,prop_float,prop_int,prop_tags_id"]
        rows += ["i%d,%d.5,%d,\"a,b\"" % (k, k, k) for k in range(1234)]
        self.write("items.csv", "\n".join(rows) + "\n")
        users = ["user_id,item_id,rating"]
        users += ["u%d,i%d,%d" % (k, k % 7, k % 5) for k in range(2500)]
        self.write("ratings.csv.gz", "\r\n".join(users), gz=True)
        for table, n, cols, res, comp in [
                ("items.csv", 1234, rows[0].split(","), "ITEM", "N/A"),
                ("ratings.csv.gz", 2500, ["user_id", "item_id", "rating"],
                 "INTERACTION", "gzip")]:
            with self.subTest(table=table):
                self.srv.settle()  # no warning of a busy ml_new_items
                t = self.run_job("data_import", {"connection": "LOCAL",
                                                 "table_name": table})
                p = t["details"]["progress"]
                self.assertEqual(p["rows"], n)
                self.assertEqual(p["message"], "%d rows uploaded" % n)
                self.assertEqual(t["progress"], "%d rows uploaded" % n)
                self.assertEqual(p["columns"], cols)
                self.assertEqual(p["resource"], res)
                self.assertEqual(p["extension"], "csv")
                self.assertEqual(p["connection"], "LOCAL")
                self.assertEqual(p["table_name"], table)
                self.assertEqual(p["compression"], comp)
                self.assertIsInstance(p["init_time_stamp"], int)
                self.assertEqual(t["warnings"], [])

    def test_data_import_reports_bad_rows_and_bad_gzip(self):
        self.write("ragged.csv", "a,b\n1,2\n3\n4,5,6\n")
        self.srv.settle()
        t = self.run_job("data_import", {"name": "ragged.csv", "resource": "USER"})
        self.assertEqual(t["details"]["progress"]["rows"], 3)
        self.assertEqual(t["details"]["progress"]["resource"], "USER")
        self.assertEqual(len(t["warnings"]), 2)
        self.write("fake.csv.gz", "user_id\nu1\n")
        t = self.run_job("data_import", {"table_name": "fake.csv.gz"}, "FAILED")
        self.assertIn("gzip", t["details"]["error"])
        data = gzip.compress(b"user_id\n" + os.urandom(20000).hex().encode())
        with open(os.path.join(self.srv.tables, "cut.csv.gz"), "wb") as f:
            f.write(data[:len(data) // 2])
        t = self.run_job("data_import", {"table_name": "cut.csv.gz"}, "FAILED")
        self.assertIn("cut.csv.gz", t["details"]["error"])

    def test_reco_export_writes_one_line_per_user(self):
        self.write("reco-users.csv", "user_id,segment\nu1,a\nu2,b\n,c\nu3,d\n")
        for out in ("recos.csv", "recos.csv.gz"):
            with self.subTest(output=out):
                t = self.run_job("reco_export", {
                    "input_table": local("reco-users.csv"),
                    "reco_params": {"amt": 3, "filters": ["price:eq:10"]},
                    "output_table": local(out)})
                p = t["details"]["progress"]
                self.assertEqual((p["n_total"], p["n_processed"], p["n_failed"],
                                  p["n_warnings"], p["has_counts"]),
                                 (4, 4, 1, 1, True))
                self.assertEqual(len(t["warnings"]), 1)
                lines = list(csv.reader(io.StringIO(self.read(out))))
                self.assertEqual(lines[0], ["user_id", "items"])
                self.assertEqual([r[0] for r in lines[1:]], ["u1", "u2", "u3"])
                for r in lines[1:]:
                    items = r[1].split(" ")
                    self.assertEqual(len(items), 3)
                    self.assertEqual(len(set(items)), 3)

    def test_user_id_whitelist_export_writes_known_users(self):
        self.write("wl-a.csv", "user_id,x\nu9,1\nu1,2\n")
        self.write("wl-b.csv.gz", "name,user_id\nn,u1\nm,u5\n", gz=True)
        self.write("wl-items.csv", "item_id\ni1\n")
        t = self.run_job("user_id_whitelist_export",
                         {"output_table": local("whitelist.csv")})
        ids = self.read("whitelist.csv").split("\n")
        self.assertEqual(ids[0], "user_id")
        got = [x for x in ids[1:] if x]
        self.assertEqual(got, sorted(set(got)))
        self.assertTrue({"u1", "u5", "u9"} <= set(got))
        self.assertEqual(t["details"]["progress"]["n_user_ids"], len(got))

    def test_analytics_report_export_writes_store_figures(self):
        self.run_job("ml_new_users", private=False)
        t = self.run_job("analytics_report_export",
                         {"output_table": local("analytics_report_1")})
        self.assertEqual(t["progress"], "report written to analytics_report_1")
        rep = json.loads(self.read("analytics_report_1"))
        self.assertEqual(rep["task_id"], t["task_id"])
        names = rep["stats"]["names"]
        self.assertGreaterEqual(names["ml_new_users"]["COMPLETED"], 1)
        self.assertGreaterEqual(names["analytics_report_export"]["RUNNING"], 1)
        d = rep["durations"]["ml_new_users"]
        self.assertGreaterEqual(d["finished"], 1)
        self.assertGreaterEqual(d["max_s"], d["min_s"])

    def test_refresh_token_is_gone_after_the_run(self):
        t = self.run_job("analytics_report_export",
                         {"output_table": local("r2.json")})
        raw = self.srv.request("GET", "/tasks/private/analytics_report_export/%s/"
                               % t["task_id"], self.srv.token())[3]
        self.assertNotIn(b"rt-analytics_report_export", raw)


class SlowJobs(ServerTestCase):
    """Simulated ML jobs of a minute: still running when the test acts."""
    server_args = {"workers": 2, "simulate": 60}

    def running_with_progress(self, name):
        tid = self.srv.trigger(name, private=False)

        def progressing():
            t = self.srv.get(name, tid)
            return t if t["status"] == "RUNNING" and "step" in t["progress"] else None
        from serverlib import wait_for
        return tid, wait_for(progressing, 30, "progress of " + name)

    def test_cancel_stops_a_running_job(self):
        name = "ml_model_retrain"
        tid, t = self.running_with_progress(name)
        self.assertRegex(t["progress"], r"^training model [0-9a-f]{8}, step \d+ of 10$")
        # exclusive while it runs
        st, _, doc, _ = self.srv.request("POST", "/tasks/%s/" % name, self.srv.token())
        self.assertEqual((st, doc["error_data"]["name"]), (400, "TASK_ALREADY_RUNNING"))
        t = self.srv.call("DELETE", "/tasks/private/%s/%s/" % (name, tid))
        self.assertIn(t["status"], ("CANCELLED_REQUESTED", "CANCELLED"))
        t = self.srv.wait_status(name, tid, ("CANCELLED", "COMPLETED", "FAILED"),
                                 timeout=15)
        self.assertEqual(t["status"], "CANCELLED")
        self.assertRegex(t["progress"], r"^cancelled at step \d+ of 10$")
        # a cancelled task frees the name
        tid2 = self.srv.trigger(name, private=False)
        self.srv.call("DELETE", "/tasks/private/%s/%s/" % (name, tid2))
        self.srv.wait_status(name, tid2, ("CANCELLED",), timeout=15)

    def test_cancel_of_a_waiting_task_is_immediate(self):
        # two workers: fill both, the third task waits
        busy = [self.running_with_progress(n)[0] for n in ML_NAMES[1:3]]
        tid = self.srv.trigger(ML_NAMES[3], private=False)
        t = self.srv.call("DELETE", "/tasks/private/%s/%s/" % (ML_NAMES[3], tid))
        self.assertEqual(t["status"], "CANCELLED")
        for n, b in zip(ML_NAMES[1:3], busy):
            self.srv.call("DELETE", "/tasks/private/%s/%s/" % (n, b))
            self.srv.wait_status(n, b, ("CANCELLED",), timeout=15)


if __name__ == "__main__":
    unittest.main(verbosity=2)
