"""The recommender's pipeline of the example server (doc/http.md, "The
pipeline"): every data_import that COMPLETES is followed by ml_new_items,
whose context_task is the import's output (the table, its resource and its
rows); ml_new_items fits items only, and has nothing to do after an import
of anything else; an import that completes while ml_new_items runs gets a
warning instead of a second one."""
import unittest

from serverlib import ServerTestCase, make_tokens


class Pipeline(ServerTestCase):
    # Long simulated runs: the ML job that follows an import of items is
    # still running when the next import completes.
    server_args = {"tokens": make_tokens(), "simulate": 60}

    def import_table(self, name, text, final="COMPLETED"):
        self.srv.write_table(name, text)
        tid = self.srv.trigger("data_import", {"context_task": {"table_name": name}})
        t = self.srv.wait_status("data_import", tid, ("COMPLETED", "FAILED", "CANCELLED"))
        self.assertEqual(t["status"], final, t)
        return t

    def ml_tasks(self):
        return self.srv.call("GET", "/tasks/private/ml_new_items/recents/?amt=64")["tasks"]

    def follower(self, imp):
        """The ml_new_items task that followed the import imp."""
        link = imp["details"]["then"]
        self.assertEqual(link["name"], "ml_new_items")
        t = self.srv.get("ml_new_items", link["task_id"])
        self.assertEqual(t["details"]["create_reason"],
                         "after data_import %s" % imp["task_id"])
        self.assertEqual(t["details"]["after"],
                         {"name": "data_import", "task_id": imp["task_id"]})
        self.assertEqual(t["details"]["payload"], imp["details"]["output"])
        return t

    def test_imports_are_followed_by_ml_new_items(self):
        # Items: fitted into the model, step by step.
        items = self.import_table("items.csv", "item_id,price\ni1,10\ni2,12\n")
        self.assertEqual(items["details"]["output"], {
            "input_table": {"connection": "LOCAL", "name": "items.csv"},
            "resource": "ITEM", "rows": 2})
        self.assertEqual(items["warnings"], [])
        fit = self.follower(items)
        self.srv.wait_status("ml_new_items", fit["task_id"], ("RUNNING",))

        # Another import while it runs: ml_new_items is exclusive, so this
        # one is followed by a warning, not a task.
        users = self.import_table("users.csv", "user_id\nu1\n")
        self.assertNotIn("then", users["details"])
        self.assertEqual(len(users["warnings"]), 1, users)
        self.assertTrue(users["warnings"][0].startswith(
            "then: no task of ml_new_items was created: "), users["warnings"])
        self.assertEqual(len(self.ml_tasks()), 1)
        self.srv.call("DELETE", "/tasks/private/ml_new_items/%s/" % fit["task_id"])
        self.srv.wait_status("ml_new_items", fit["task_id"], ("CANCELLED",))

        # Users: no new items, nothing to fit.
        users = self.import_table("users.csv", "user_id\nu1\n")
        self.assertEqual(users["details"]["output"]["resource"], "USER")
        nothing = self.follower(users)
        nothing = self.srv.wait_status("ml_new_items", nothing["task_id"], ("COMPLETED",))
        self.assertEqual(nothing["progress"],
                         "no new items to fit: table users.csv holds USER rows")

        # A failed import is followed by nothing.
        self.import_table("bad.csv.gz", "not gzip", final="FAILED")
        self.assertEqual(len(self.ml_tasks()), 2)


if __name__ == "__main__":
    unittest.main()
