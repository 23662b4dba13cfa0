"""Every command of taskmgr on a store that the example server (the host)
uses at the same time: names, ls (paging, --status), show, trigger (the
host runs the task), patch, cancel, stats, check; tables for people,
the library's JSON as it came with --json."""
import json
import os
import re
import subprocess
import time
import unittest

from clilib import CLI, FINAL, HostCase, ID_RE, STATUSES, run, run_pty, wait_for
from serverlib import ML_NAMES, TABLE_NAMES

GOOD_IMPORT = {"context_task": {"connection": "LOCAL", "table_name": "input-myfile.csv"}}


class Commands(HostCase):
    """A host with quick ML jobs (one second each)."""

    def test_names_lists_every_name_of_the_host_with_counts(self):
        doc = self.tm_json("names")
        self.assertEqual(set(doc["names"]), set(ML_NAMES + TABLE_NAMES))
        for name, figures in doc["names"].items():
            self.assertEqual(set(STATUSES) | {"total", "changes", "paused"}, set(figures), name)
        out = self.tm("names").splitlines()
        self.assertEqual(out[0].split(), ["NAME"] + list(STATUSES) + ["TOTAL", "PAUSED"])
        self.assertEqual({line.split()[-1] for line in out[1:]}, {"no"})
        self.assertEqual(sorted(line.split()[0] for line in out[1:]),
                         sorted(ML_NAMES + TABLE_NAMES))
        # Aligned: every column starts where its head does.
        col = out[0].index("RUNNING")
        for line in out[1:]:
            self.assertEqual(line[col - 2:col], "  ", line)
            self.assertNotEqual(line[col], " ", line)
        self.assertNotIn("\x1b[", self.tm("names"))  # not a terminal: no colour

    def test_trigger_prints_the_id_and_the_host_runs_the_task(self):
        task_id = self.trigger("ml_new_users")
        t = self.wait_status("ml_new_users", task_id, FINAL)
        self.assertEqual(t["status"], "COMPLETED", t)
        self.assertEqual(t["details"]["progress"]["step"], 10)
        self.assertEqual(t["details"]["create_reason"], "manually triggered by endpoint")
        # The host serves it too, and the same document.
        self.assertEqual(self.srv.get("ml_new_users", task_id), t)

    def test_trigger_takes_a_body_as_an_argument_or_on_stdin(self):
        body = {"context_task": {"connection": "LOCAL", "table_name": "input-myfile.csv"},
                "create_reason": "operator: reimport", "refresh_token": "rt-secret-77"}
        a = self.trigger("data_import", body)
        out = self.tm("trigger", "data_import", "-", input=json.dumps(body))
        b = out.strip()
        self.assertRegex(b, ID_RE)
        for task_id in (a, b):
            t = self.wait_status("data_import", task_id, FINAL)
            self.assertEqual(t["status"], "COMPLETED", t)
            self.assertEqual(t["details"]["payload"], body["context_task"])
            self.assertEqual(t["details"]["create_reason"], "operator: reimport")
            self.assertNotIn("rt-secret-77", json.dumps(t))
        doc = self.tm_json("trigger", "data_import", json.dumps(GOOD_IMPORT))
        self.assertEqual(set(doc), {"task_id"})
        self.assertRegex(doc["task_id"], ID_RE)

    def test_show_prints_the_task_as_lines_and_as_the_hosts_json(self):
        task_id = self.trigger("data_import", GOOD_IMPORT)
        t = self.wait_status("data_import", task_id, FINAL)
        raw = run(["--json", "show", "data_import", task_id], self.store).stdout
        self.assertEqual(json.loads(raw), t)
        # The library's text, byte for byte: what the host serves.
        st, _, _, body = self.srv.request(
            "GET", "/tasks/private/data_import/%s/" % task_id, self.srv.token())
        self.assertEqual(st, 200)
        self.assertEqual(raw, body.decode())  # the host too adds a newline
        out = self.tm("show", "data_import", task_id)
        fields = dict(re.split(r"\s+", line, maxsplit=1) for line in out.splitlines()
                      if re.match(r"^\S+\s+\S", line))
        self.assertEqual(fields["task_id"], task_id)
        self.assertEqual(fields["status"], "COMPLETED")
        self.assertEqual(fields["progress"], t["progress"])
        self.assertRegex(fields["started"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \((just now|\d+ s ago|\d+ min ago)\)$")
        self.assertRegex(fields["timeout_at"], r"\(in \d+ h\)$")
        self.assertEqual(json.loads(fields["payload"]), GOOD_IMPORT["context_task"])

    def test_ls_pages_and_filters_by_status(self):
        ids = []
        for k in range(7):
            ids.append(self.trigger("data_import", GOOD_IMPORT if k % 2 else None))
        for task_id in ids:
            self.wait_status("data_import", task_id, FINAL)
        every = self.all_tasks("data_import")
        full = [t["task_id"] for t in every]
        for task_id in ids:
            self.assertIn(task_id, full)
        # Pages of 3 cover the list in order, with has_next and next_page.
        pages, page = [], 1
        while True:
            doc = self.tm_json("ls", "data_import", "--amt", "3", "--page", str(page))
            self.assertEqual(doc["next_page"], page + 1)
            self.assertLessEqual(len(doc["tasks"]), 3)
            pages += [t["task_id"] for t in doc["tasks"]]
            if not doc["has_next"]:
                break
            page += 1
        self.assertEqual(pages, full)
        # --status: the page and amt count the matching tasks only.
        for status in ("COMPLETED", "FAILED"):
            want = [t["task_id"] for t in every if t["status"] == status]
            self.assertGreaterEqual(len(want), 3, status)
            got, page = [], 1
            while True:
                doc = self.tm_json("ls", "data_import", "--status", status.lower(),
                                   "--amt", "2", "--page", str(page))
                self.assertEqual(set(doc), {"has_next", "next_page", "tasks"})
                self.assertEqual(doc["next_page"], page + 1)
                self.assertTrue(all(t["status"] == status for t in doc["tasks"]))
                self.assertEqual(len(doc["tasks"]), 2 if doc["has_next"] else len(doc["tasks"]))
                got += [t["task_id"] for t in doc["tasks"]]
                if not doc["has_next"]:
                    break
                page += 1
            self.assertEqual(got, want, status)
            # The tasks are the library's documents, unchanged.
            self.assertEqual(doc["tasks"], [t for t in every if t["task_id"] in
                                            [x["task_id"] for x in doc["tasks"]]])
        none = self.tm_json("ls", "data_import", "--status", "CANCELLED_REQUESTED")
        self.assertEqual(none, {"has_next": False, "next_page": 2, "tasks": []})
        # The table: a head, a row per task, relative times, the progress.
        out = self.tm("ls", "data_import", "--amt", "2").splitlines()
        self.assertEqual(out[0].split(), ["TASK_ID", "STATUS", "PRIO", "NOT_BEFORE",
                                          "STARTED", "ENDED", "ATTEMPTS", "PROGRESS"])
        self.assertEqual([line.split()[0] for line in out[1:3]], full[:2])
        self.assertRegex(out[1], r"\b(just now|\d+ s ago|\d+ min ago)\b")
        self.assertEqual(out[3], "(more on page 2)")
        out = self.tm("ls", "data_import", "--status", "COMPLETED").splitlines()
        self.assertTrue(all(line.split()[1] == "COMPLETED" for line in out[1:]), out)
        self.assertIn("2 rows uploaded", out[1])
        self.assertEqual(self.tm("ls", "data_import", "--status", "CANCELLED"),
                         "no CANCELLED tasks of data_import\n")

    def test_tables_colour_statuses_on_a_terminal_unless_no_color(self):
        task_id = self.trigger("data_import", GOOD_IMPORT)
        self.assertEqual(self.wait_status("data_import", task_id, FINAL)["status"], "COMPLETED")
        args = ["ls", "data_import", "--status", "COMPLETED", "--amt", "1"]
        rc, out = run_pty(args, self.store)
        self.assertEqual(rc, 0, out)
        head, row = out.decode().splitlines()[:2]
        self.assertIn("\x1b[32mCOMPLETED\x1b[0m", row)
        # The escapes take no column: aligned as without them.
        plain = re.sub(r"\x1b\[[0-9;]*m", "", row)
        self.assertTrue(plain.startswith(task_id), plain)
        self.assertEqual(plain[head.index("PRIO"):].split()[0], "0", (head, plain))
        rc, out = run_pty(args, self.store, env={"NO_COLOR": "1"})
        self.assertEqual(rc, 0, out)
        self.assertNotIn(b"\x1b[", out)

    def test_ls_shows_priority_and_a_scheduled_start(self):
        later = time.time() + 3 * 3600 + 60
        body = dict(GOOD_IMPORT, priority=-4, not_before=later)
        task_id = self.trigger("data_import", body)
        row = [line for line in self.tm("ls", "data_import").splitlines()
               if line.startswith(task_id)]
        self.assertEqual(len(row), 1, row)
        cells = row[0].split()
        self.assertEqual(cells[1:5], ["REQUEST_SENT", "-4", "in", "3"], row)
        self.assertEqual(cells[5], "h", row)
        self.tm("cancel", "data_import", task_id)
        self.assertEqual(self.srv.get("data_import", task_id)["status"], "CANCELLED")

    def test_patch_updates_a_task_and_prints_it(self):
        task_id = self.trigger("data_import", GOOD_IMPORT)
        self.wait_status("data_import", task_id, FINAL)
        out = self.tm("patch", "data_import", task_id,
                      '{"details": {"reviewed_by": "ops"}}')
        self.assertIn("status           COMPLETED", out)
        self.assertIn('details.reviewed_by "ops"', out)
        t = json.loads(self.tm("--json", "patch", "data_import", task_id, "-",
                               input='{"details": {"ticket": "OPS-7"}}'))
        self.assertEqual((t["details"]["reviewed_by"], t["details"]["ticket"]),
                         ("ops", "OPS-7"))
        self.assertEqual(self.get("data_import", task_id), t)
        self.assertEqual(self.srv.get("data_import", task_id), t)

    def test_pause_resume_and_retry(self):
        self.assertEqual(self.tm("pause", "reco_export"), "reco_export paused\n")
        self.assertTrue(self.tm_json("names")["names"]["reco_export"]["paused"])
        row = [l for l in self.tm("names").splitlines() if l.startswith("reco_export ")]
        self.assertEqual(row[0].split()[-1], "yes")
        self.assertEqual(self.tm_json("resume", "reco_export"),
                         {"name": "reco_export", "paused": False})
        self.assertFalse(self.srv.call("GET", "/stats/")["names"]["reco_export"]["paused"])
        task_id = self.trigger("data_import", GOOD_IMPORT)
        t = self.wait_status("data_import", task_id, FINAL)
        self.assertEqual(t["status"], "COMPLETED", t)
        self.assertFails(["retry", "data_import", task_id], "LOWER_STATUS_NOT_ALLOWED")
        self.assertFails(["retry", "data_import", "A" * 20], "TASK_NOT_FOUND")

    def test_stats_and_check(self):
        doc = self.tm_json("stats")
        for key in ("names", "queue_depth", "oldest_waiting_age_s", "store_bytes",
                    "free_bytes", "map_bytes"):
            self.assertIn(key, doc)
        self.assertEqual(doc["workers"], 0)  # taskmgr's own manager runs nothing
        out = self.tm("stats")
        self.assertRegex(out, r"(?m)^task names +8$")
        self.assertRegex(out, r"(?m)^queue depth +\d+$")
        self.assertRegex(out, r"(?m)^store bytes +[0-9.]+ (B|KiB|MiB|GiB)$")
        self.assertNotIn("workers", out)
        doc = self.tm_json("check")
        self.assertEqual(doc["ok"], True, doc)
        self.assertEqual(doc["problems"], [])
        self.assertRegex(self.tm("check"), r"^ok: \d+ tasks?, every index agrees with them\n$")


FILL = os.environ.get("TASKMGR_FILL", "")
# More final tasks than the library keeps by default (keep_count 1000,
# pruned once over 1000 + 64 by a write that ends a task, and down to
# 1000 by the supervisor's pass of every manager that registers the name).
N_FINAL = 1100


class NothingPruned(HostCase):
    """taskmgr's own manager registers the names it works on, so it would
    prune them by its own retention settings: it must keep everything.
    The name "bulk" is not the host's, which prunes only its own names."""

    def test_taskmgr_prunes_nothing(self):
        if not FILL:
            self.skipTest("TASKMGR_FILL is not set")
        r = subprocess.run([FILL, self.store, "bulk", str(N_FINAL)], stdout=subprocess.PIPE,
                           universal_newlines=True, timeout=120, check=True)
        waiting = json.loads(r.stdout)["task_id"]
        self.assertEqual(self.tm_json("names")["names"]["bulk"]["total"], N_FINAL + 1)
        # Every taskmgr below registers "bulk".  The cancel's write ends a
        # task of it: with the library's default retention, that write
        # would prune the name down to 1000.  Meanwhile a watch, and each
        # ls of the listing, run their own supervisor, whose pass would
        # prune it too.
        watch = subprocess.Popen([CLI, "--store", self.store, "watch", "bulk", waiting],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 universal_newlines=True)
        try:
            line = watch.stdout.readline()
            self.assertTrue(line.startswith(waiting + " REQUEST_SENT"), line)
            self.assertEqual(len(self.all_tasks("bulk")), N_FINAL + 1)
            self.tm("cancel", "bulk", waiting)
            self.assertEqual(watch.wait(60), 0)
            self.assertTrue(watch.stdout.read().startswith(waiting + " CANCELLED"))
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
            watch.stdout.close()
        figures = self.tm_json("names")["names"]["bulk"]
        self.assertEqual((figures["total"], figures["CANCELLED"]), (N_FINAL + 1, N_FINAL + 1))
        self.assertEqual(len(self.all_tasks("bulk")), N_FINAL + 1)


class LongJobs(HostCase):
    """A host whose ML jobs run for a minute: they are running while
    taskmgr acts on them."""

    simulate = 60

    def running(self, name):
        task_id = self.srv.trigger(name)
        self.srv.wait_status(name, task_id, ("RUNNING",))
        return task_id

    def test_cancel_stops_the_hosts_handler(self):
        task_id = self.running("ml_model_retrain")
        t = self.tm_json("cancel", "ml_model_retrain", task_id)
        self.assertIn(t["status"], ("CANCELLED_REQUESTED", "CANCELLED"))
        t = self.wait_status("ml_model_retrain", task_id, FINAL, timeout=30)
        self.assertEqual(t["status"], "CANCELLED", t)
        self.assertRegex(t["progress"], r"^cancelled at step \d+ of 10$")
        # Cancelling an ended task changes nothing, and says so by its status.
        out = self.tm("cancel", "ml_model_retrain", task_id)
        self.assertIn("status           CANCELLED", out)

    def test_retry_of_a_cancelled_task_prints_the_new_id(self):
        task_id = self.running("item_popularity_score_recalibrate")
        self.tm("cancel", "item_popularity_score_recalibrate", task_id)
        t = self.wait_status("item_popularity_score_recalibrate", task_id, FINAL, timeout=30)
        self.assertEqual(t["status"], "CANCELLED", t)
        new = self.tm("retry", "item_popularity_score_recalibrate", task_id).strip()
        self.assertRegex(new, ID_RE)
        n = self.get("item_popularity_score_recalibrate", new)
        self.assertEqual(n["details"]["retry_of"], task_id)
        self.assertEqual(n["details"]["create_reason"], "retry of " + task_id)
        self.tm("cancel", "item_popularity_score_recalibrate", new)
        self.wait_status("item_popularity_score_recalibrate", new, FINAL, timeout=30)

    def test_exclusive_trigger_is_refused_while_the_name_runs(self):
        task_id = self.running("ml_new_items")
        line = self.assertFails(["trigger", "ml_new_items", "--exclusive"],
                                "TASK_ALREADY_RUNNING")
        self.assertIn(task_id, line)
        self.assertEqual([t["task_id"] for t in self.all_tasks("ml_new_items")
                          if t["status"] not in FINAL], [task_id])
        self.tm("cancel", "ml_new_items", task_id)
        self.wait_status("ml_new_items", task_id, FINAL)
        other = self.trigger("ml_new_items", None, "--exclusive", "--timeout", "120")
        t = self.get("ml_new_items", other)
        self.assertAlmostEqual(t["details"]["timeout_at"] - t["start_time"], 120, places=3)
        self.tm("cancel", "ml_new_items", other)
        self.wait_status("ml_new_items", other, FINAL)

    def test_patch_follows_the_ordering_rule(self):
        task_id = self.running("item_popularity_score_recalibrate")
        t = self.tm_json("patch", "item_popularity_score_recalibrate", task_id,
                         '{"details": {"ticket": "OPS-12"}}')
        self.assertEqual(t["status"], "RUNNING")
        self.assertEqual(t["details"]["ticket"], "OPS-12")
        before = self.get("item_popularity_score_recalibrate", task_id)
        self.assertFails(["patch", "item_popularity_score_recalibrate", task_id,
                          '{"status": "REQUEST_SENT"}'], "WRONG_DATA_TYPE")
        self.tm("cancel", "item_popularity_score_recalibrate", task_id)
        t = self.wait_status("item_popularity_score_recalibrate", task_id, FINAL)
        self.assertEqual(t["details"]["ticket"], "OPS-12")
        self.assertFails(["patch", "item_popularity_score_recalibrate", task_id,
                          '{"status": "RUNNING"}'], "LOWER_STATUS_NOT_ALLOWED")
        self.assertEqual(before["details"]["ticket"], "OPS-12")

    def test_control_characters_of_a_task_never_reach_the_terminal(self):
        task_id = self.running("ml_new_users")
        evil = "step\x1b]0;owned\x07\nrm -rf\u009b2J"
        t = self.tm_json("patch", "ml_new_users", task_id, json.dumps(
            {"details": {"note": evil, "progress": {"message": evil}}}))
        self.assertEqual((t["details"]["note"], t["progress"]), (evil, evil))
        shown = self.tm("patch", "ml_new_users", task_id, json.dumps(
            {"details": {"note": evil, "progress": {"message": evil}}}))
        listed = self.tm("ls", "ml_new_users", "--amt", "1")
        for out in (shown, listed):
            for bad in ("\x1b", "\x07", "\u009b"):
                self.assertNotIn(bad, out)
        self.assertIn("progress         step?]0;owned??rm -rf??2J\n", shown)
        self.assertIn('details.note     "step\\u001b]0;owned\\u0007\\nrm -rf', shown)
        self.assertEqual(len(listed.splitlines()), 2, listed)
        self.tm("cancel", "ml_new_users", task_id)
        self.wait_status("ml_new_users", task_id, FINAL)


if __name__ == "__main__":
    unittest.main(verbosity=2)
