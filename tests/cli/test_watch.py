"""taskmgr watch: on a real terminal (a pseudo-terminal) the progress bar
is drawn, redrawn in place as the host's job advances, and the command
exits 0 once the task has ended; elsewhere it prints a plain line per
change, or the task's JSON per change with --json; watching a name
follows every task of it that was active when the command started."""
import json
import re
import subprocess
import threading
import unittest

from clilib import CLI, FINAL, HostCase, cli_env, run, run_pty, wait_for

BAR = re.compile(rb"\[(#*)(-*)\] +(\d+)%")
UP = re.compile(rb"\x1b\[(\d+)A")


class Watch(HostCase):
    """ML jobs of three seconds, ten steps each."""

    simulate = 3
    workers = 4

    def frames(self, out):
        """The frames drawn: the text between two cursor moves up."""
        return [f for f in UP.split(out)[::2] if f.strip()]

    def test_bar_is_drawn_and_redrawn_on_a_terminal_until_the_task_ends(self):
        task_id = self.trigger("ml_model_retrain")
        rc, out = run_pty(["watch", "ml_model_retrain", task_id], self.store)
        self.assertEqual(rc, 0, out[-2000:])
        # Redrawn in place: the cursor goes back up over the two lines of
        # the task's last frame, each line is cleared before it is drawn.
        ups = UP.findall(out)
        self.assertGreaterEqual(len(ups), 2, out[-2000:])
        self.assertEqual(set(ups), {b"2"})
        self.assertIn(b"\r\x1b[2K" + task_id.encode(), out)
        # The bar fills as the job reports its steps, and ends full.
        shares = [int(m.group(3)) for m in BAR.finditer(out)]
        self.assertGreaterEqual(len(set(shares)), 2, shares)
        self.assertEqual(shares, sorted(shares))
        self.assertEqual(shares[-1], 100)
        for m in BAR.finditer(out):
            self.assertEqual(len(m.group(1)) + len(m.group(2)), 20)
        last = self.frames(out)[-1]
        self.assertIn(b"COMPLETED", last)
        self.assertIn(b"[####################] 100%", last)
        self.assertRegex(last, rb"trained model [0-9a-f]{8}")
        # The status in colour (green: completed), the cursor hidden while
        # drawing and shown again at the end.
        self.assertIn(b"\x1b[32mCOMPLETED", last)
        self.assertTrue(out.startswith(b"\x1b[?25l"), out[:50])
        self.assertTrue(out.endswith(b"\x1b[?25h"), out[-50:])
        self.assertEqual(self.get("ml_model_retrain", task_id)["status"], "COMPLETED")

    def test_no_color_and_a_cancel_seen_on_the_terminal(self):
        task_id = self.trigger("ml_new_items")
        self.wait_status("ml_new_items", task_id, ("RUNNING",))
        result = {}

        def watch():
            result["rc"], result["out"] = run_pty(["watch", "ml_new_items", task_id],
                                                  self.store, env={"NO_COLOR": "1"})
        th = threading.Thread(target=watch)
        th.start()
        try:
            wait_for(lambda: self.get("ml_new_items", task_id)["details"]["progress"]
                     .get("step", 0) >= 2, 30, "a second step")
            self.tm("cancel", "ml_new_items", task_id)
        finally:
            th.join(90)
        self.assertEqual(result["rc"], 0, result["out"][-2000:])
        out = result["out"]
        self.assertNotIn(b"\x1b[3", out)  # no colour
        self.assertRegex(out, rb"\x1b\[2A")
        last = self.frames(out)[-1]
        self.assertIn(b"CANCELLED", last)
        self.assertRegex(last, rb"cancelled at step \d+ of 10")

    def test_plain_lines_when_not_a_terminal(self):
        task_id = self.trigger("ml_new_users")
        out = self.tm("watch", "ml_new_users", task_id)
        self.assertNotIn("\x1b", out)
        lines = out.splitlines()
        self.assertEqual(len(lines), len(set(lines)), "a line repeated: %s" % out)
        for line in lines:
            self.assertRegex(line, r"^%s (REQUEST_SENT|RUNNING|COMPLETED) +(\?|\d+)%% " % task_id)
        self.assertRegex(lines[-1], r"^%s COMPLETED 100%% fitted new users into model" % task_id)
        self.assertGreaterEqual(len(lines), 2)

    def test_json_lines_follow_every_change(self):
        task_id = self.trigger("item_popularity_score_recalibrate")
        out = self.tm("--json", "watch", "item_popularity_score_recalibrate", task_id)
        docs = [json.loads(line) for line in out.splitlines()]
        self.assertGreaterEqual(len(docs), 2)
        self.assertTrue(all(d["task_id"] == task_id for d in docs))
        self.assertEqual(docs[-1]["status"], "COMPLETED")
        self.assertEqual(docs[-1], self.get("item_popularity_score_recalibrate", task_id))

    def test_a_name_watches_every_task_active_when_it_starts(self):
        # Two active tasks of one name: taskmgr does not apply the host's
        # exclusivity unless told (--exclusive), so it can make them.
        done = self.trigger("ml_new_items")
        self.wait_status("ml_new_items", done, FINAL)
        # Paused, the name's tasks wait (active) until watch has seen them:
        # neither can end before it starts.
        self.tm("pause", "ml_new_users")
        try:
            a = self.trigger("ml_new_users")
            b = self.trigger("ml_new_users")
            p = subprocess.Popen([CLI, "--store", self.store, "watch", "ml_new_users"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, universal_newlines=True,
                                 env=cli_env(None))
            try:
                first = [p.stdout.readline() for _ in range(2)]
            except BaseException:
                p.kill()
                raise
        finally:
            self.tm("resume", "ml_new_users")
        rest, err = p.communicate(timeout=120)
        self.assertEqual((p.returncode, err), (0, ""))
        final = {}
        for line in "".join(first).splitlines() + rest.splitlines():
            task_id, status = line.split()[:2]
            final[task_id] = status
        self.assertEqual(final, {a: "COMPLETED", b: "COMPLETED"})
        self.assertEqual(self.tm("watch", "ml_new_users"), "no active task of ml_new_users\n")
        # An ended task: drawn once, and the command ends at once.
        rc, shown = run_pty(["watch", "ml_new_items", done], self.store)
        self.assertEqual(rc, 0)
        self.assertEqual(UP.findall(shown), [])
        self.assertIn(b"COMPLETED", shown)


if __name__ == "__main__":
    unittest.main(verbosity=2)
