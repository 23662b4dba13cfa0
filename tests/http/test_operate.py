"""The operator's endpoints of a name and a task: POST
/tasks/private/<name>/pause/ and .../resume/ (root and manager only), and
POST /tasks/private/<name>/<id>/retry/.

"Nothing started while paused" is shown without waiting for time to pass:
the queue is in ready order, so once the workers have run a task
triggered after the paused one, they have passed it."""
import unittest

from serverlib import ServerTestCase, make_tokens


class Operate(ServerTestCase):
    server_args = {"tokens": make_tokens(), "simulate": 0.2}

    def post(self, path, role="root"):
        return self.srv.request("POST", path, self.srv.token(role))

    def test_pause_holds_the_name_until_resumed(self):
        self.srv.settle()  # an import's ml_new_items (the pipeline) is exclusive
        st, _, doc, _ = self.post("/tasks/private/ml_new_users/pause/")
        self.assertEqual((st, doc), (200, {"name": "ml_new_users", "paused": True}))
        self.assertTrue(self.srv.call("GET", "/stats/")["names"]["ml_new_users"]["paused"])
        waiting = self.srv.trigger("ml_new_users", private=False)
        other = self.srv.trigger("ml_new_items", private=False)
        self.srv.wait_status("ml_new_items", other, ("COMPLETED",))
        self.assertEqual(self.srv.get("ml_new_users", waiting)["status"], "REQUEST_SENT")
        st, _, doc, _ = self.post("/tasks/private/ml_new_users/resume/", "manager")
        self.assertEqual((st, doc), (200, {"name": "ml_new_users", "paused": False}))
        self.srv.wait_status("ml_new_users", waiting, ("COMPLETED",))

    def test_only_root_and_manager_may_pause(self):
        for role in ("backend", "frontend"):
            self.assertError(self.post("/tasks/private/reco_export/pause/", role),
                             403, "FORBIDDEN")
            self.assertError(self.post("/tasks/private/reco_export/resume/", role),
                             403, "FORBIDDEN")
        self.assertError(self.srv.request("POST", "/tasks/private/reco_export/pause/"),
                         401, "UNAUTHORIZED")
        self.assertError(self.post("/tasks/private/nobody/pause/"), 400, "WRONG_DATA_TYPE")
        self.assertFalse(self.srv.call("GET", "/stats/")["names"]["reco_export"]["paused"])

    def test_retry_makes_a_new_task_of_a_cancelled_one(self):
        self.srv.write_table("items.csv", "item_id\ni1\n")
        done = self.srv.trigger("data_import", {"context_task": {"table_name": "items.csv"}})
        self.srv.wait_status("data_import", done, ("COMPLETED",))
        self.assertError(self.post("/tasks/private/data_import/%s/retry/" % done),
                         400, "LOWER_STATUS_NOT_ALLOWED")
        job = self.srv.trigger("ml_model_retrain", private=False)
        self.srv.call("DELETE", "/tasks/private/ml_model_retrain/%s/" % job)
        self.srv.wait_status("ml_model_retrain", job, ("CANCELLED",))
        st, _, doc, payload = self.post("/tasks/private/ml_model_retrain/%s/retry/" % job,
                                        "backend")
        self.assertEqual(st, 200, payload)
        new = self.srv.get("ml_model_retrain", doc["task_id"])
        self.assertEqual(new["details"]["retry_of"], job)
        self.assertEqual(new["details"]["create_reason"], "retry of " + job)
        self.srv.wait_status("ml_model_retrain", doc["task_id"], ("COMPLETED",))
        self.assertError(self.post("/tasks/private/ml_model_retrain/%s/retry/" % ("A" * 20)),
                         404, "TASK_NOT_FOUND")
        self.assertError(self.post("/tasks/private/ml_model_retrain/short/retry/"),
                         400, "WRONG_DATA_TYPE")
        self.assertError(self.post("/tasks/private/ml_model_retrain/%s/retry/" % job,
                                   "frontend"), 403, "FORBIDDEN")
        self.assertError(self.srv.request("GET", "/tasks/private/ml_model_retrain/%s/retry/"
                                          % job, self.srv.token()),
                         405, "HTTP_METHOD_NOT_ALLOWED")


if __name__ == "__main__":
    unittest.main()
