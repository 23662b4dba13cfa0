"""GET /metrics: the library's figures (tm_metrics) in the Prometheus text
format, for any role's token; checked by promtool (Debian's prometheus
package, which scripts/deps.sh installs)."""
import shutil
import subprocess
import unittest

from serverlib import ROLES, ServerTestCase, make_tokens


# The families doc/api.md ("Metrics") promises, with their types.
FAMILIES = [("taskmgr_tasks", "gauge"), ("taskmgr_triggers_total", "counter"),
            ("taskmgr_task_duration_seconds", "histogram"),
            ("taskmgr_queue_depth", "gauge"), ("taskmgr_oldest_waiting_age_seconds", "gauge"),
            ("taskmgr_retries_total", "counter"), ("taskmgr_timeouts_total", "counter"),
            ("taskmgr_lost_workers_total", "counter"),
            ("taskmgr_store_bytes", "gauge"), ("taskmgr_commits_total", "counter")]
# Those with a series per name, there as soon as the name has run a task.
PER_NAME = ("taskmgr_triggers_total", "taskmgr_queue_depth",
            "taskmgr_oldest_waiting_age_seconds", "taskmgr_retries_total",
            "taskmgr_timeouts_total", "taskmgr_lost_workers_total",
            "taskmgr_task_duration_seconds_count")


def samples(text):
    """{series: value} of the exposition text's sample lines."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


class Metrics(ServerTestCase):
    server_args = {"tokens": make_tokens(), "simulate": 0.2}

    def scrape(self, role="root"):
        st, hdrs, _, payload = self.srv.request("GET", "/metrics",
                                                self.srv.token(role))
        self.assertEqual(st, 200, payload[:300])
        self.assertEqual(hdrs["content-type"],
                         "text/plain; version=0.0.4; charset=utf-8")
        return payload.decode()

    def test_every_family_an_operator_needs_is_there(self):
        tid = self.srv.trigger("ml_new_users", private=False)
        self.srv.wait_status("ml_new_users", tid, ("COMPLETED",))
        text = self.scrape()
        for family, kind in FAMILIES:
            self.assertIn("# TYPE %s %s\n" % (family, kind), text)
        got = samples(text)
        for family in PER_NAME:
            self.assertIn('%s{name="ml_new_users"}' % family, got)
        self.assertIn('taskmgr_task_duration_seconds_bucket{name="ml_new_users",le="+Inf"}',
                      got)
        for family in ("taskmgr_store_bytes", "taskmgr_commits_total"):
            self.assertIn(family, got)

    def test_any_role_may_scrape_and_nobody_else(self):
        for role in ROLES:
            self.assertIn("# TYPE taskmgr_tasks gauge", self.scrape(role))
        self.assertError(self.srv.request("GET", "/metrics"), 401, "UNAUTHORIZED")
        self.assertError(self.srv.request("GET", "/metrics", "tok-nobody"),
                         401, "UNAUTHORIZED")
        self.assertError(self.srv.request("POST", "/metrics", self.srv.token()),
                         405, "HTTP_METHOD_NOT_ALLOWED")

    def test_a_run_shows_in_the_figures_and_promtool_accepts_them(self):
        before = samples(self.scrape())
        tid = self.srv.trigger("ml_new_items", private=False)
        self.srv.wait_status("ml_new_items", tid, ("COMPLETED",))
        text = self.scrape("frontend")
        after = samples(text)
        name = '{name="ml_new_items"}'

        def grew(series):
            return after.get(series, 0) - before.get(series, 0)

        self.assertEqual(grew("taskmgr_triggers_total" + name), 1)
        self.assertEqual(grew("taskmgr_task_duration_seconds_count" + name), 1)
        self.assertGreater(grew("taskmgr_task_duration_seconds_sum" + name), 0)
        self.assertEqual(grew('taskmgr_tasks{name="ml_new_items",status="COMPLETED"}'), 1)
        self.assertGreater(after["taskmgr_commits_total"], 0)
        self.assertEqual(after["taskmgr_workers"], 2)

        promtool = shutil.which("promtool")
        if promtool is None:
            self.fail("promtool is missing: scripts/deps.sh installs package prometheus")
        r = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
