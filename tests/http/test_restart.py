"""Restart on the same store: every task, status, detail and list is as it
was; waiting tasks run once workers are back; a job interrupted by a stop
is resumed."""
import signal
import unittest

from serverlib import ML_NAMES, TABLE_NAMES, ServersTestCase


class Restart(ServersTestCase):
    def snapshot(self, srv):
        return {n: srv.call("GET", "/tasks/private/%s/recents/?amt=64" % n)
                for n in ML_NAMES + TABLE_NAMES}

    def test_everything_is_intact_after_a_restart(self):
        a = self.start(workers=0)
        a.write_table("users.csv", "user_id\nu1\n")
        waiting = a.trigger("ml_new_items", private=False)
        done = a.trigger("data_import", {"context_task": {"table_name": "users.csv"},
                                         "refresh_token": "rt-secret-1"})
        a.call("PATCH", "/tasks/private/data_import/%s/" % done,
               {"status": "RUNNING", "details": {"progress": {"message": "40 rows uploaded",
                                                              "rows": 40}}})
        a.call("PATCH", "/tasks/private/data_import/%s/" % done, {"completed": True})
        cancelled = a.trigger("reco_export", {"context_task": {
            "input_table": {"name": "users.csv"}, "output_table": {"name": "o.csv"}}})
        a.call("DELETE", "/tasks/private/reco_export/%s/" % cancelled)
        for _ in range(3):
            a.trigger("user_id_whitelist_export",
                      {"context_task": {"output_table": {"name": "w.csv"}}})
        before = self.snapshot(a)
        self.assertEqual(a.stop(), 0)

        b = self.start(workers=0)
        self.assertEqual(self.snapshot(b), before)
        self.assertEqual(b.get("data_import", done)["progress"], "40 rows uploaded")
        self.assertEqual(b.get("reco_export", cancelled)["status"], "CANCELLED")
        st, _, doc, _ = b.request("POST", "/tasks/ml_new_items/", b.token())
        self.assertEqual((st, doc["error_data"]["name"]), (400, "TASK_ALREADY_RUNNING"))
        self.assertEqual(b.stop(signal.SIGINT), 0)

        # with workers again, the waiting task runs
        c = self.start(workers=2, simulate=0)
        t = c.wait_status("ml_new_items", waiting, ("COMPLETED", "FAILED", "CANCELLED"))
        self.assertEqual(t["status"], "COMPLETED")
        self.assertEqual(c.get("data_import", done)["status"], "COMPLETED")
        self.assertEqual(c.stop(), 0)

    def test_a_job_stopped_by_sigterm_is_resumed(self):
        a = self.start(workers=1, simulate=60)
        tid = a.trigger("ml_model_retrain", private=False)
        a.wait_status("ml_model_retrain", tid, ("RUNNING",))
        self.assertEqual(a.stop(signal.SIGTERM), 0)

        b = self.start(workers=1, simulate=0.5)
        t = b.wait_status("ml_model_retrain", tid, ("COMPLETED", "FAILED", "CANCELLED"))
        self.assertEqual(t["status"], "COMPLETED", t)
        self.assertEqual(t["details"]["attempts"], 1)
        self.assertEqual(b.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
