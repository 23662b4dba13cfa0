"""Bad input to taskmgr, on a store a host uses: an unknown name, a
malformed or unknown id, a bad JSON body, a missing store, and bad usage
each get their documented error line and exit status, and leave the
store as it was; --help is on stdout with status 0."""
import os
import unittest

from clilib import HostCase, run

ID = "AAAAAAAAAAAAAAAAAAAA"  # well formed, and no task's
COMMANDS = ("names", "ls", "show", "trigger", "patch", "cancel", "retry", "pause",
            "resume", "stats", "check", "watch", "backup")


class BadInput(HostCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Tasks that end COMPLETED and FAILED, so that there is something
        # to keep.  (The second only from taskmgr: the host's validate hook
        # would refuse it over HTTP.)
        cls.srv.trigger("data_import", {"context_task": {
            "connection": "LOCAL", "table_name": "input-myfile.csv"}})
        assert run(["trigger", "data_import"], cls.store).returncode == 0

    def setUp(self):
        self.before = self.quiet()
        existing = self.before["tasks"]["data_import"]
        self.assertTrue(existing)
        self.task = existing[0]["task_id"]

    def tearDown(self):
        self.assertEqual(self.snapshot(), self.before, "the store changed")

    def test_unknown_name(self):
        for args in (["ls", "nope"], ["show", "nope", ID], ["trigger", "nope"],
                     ["trigger", "nope", "{}", "--exclusive"],
                     ["patch", "nope", ID, "{}"], ["cancel", "nope", ID],
                     ["watch", "nope"], ["watch", "nope", ID],
                     ["show", "bad name!", ID], ["ls", "x" * 65]):
            with self.subTest(args=args):
                self.assertFails(args, "WRONG_DATA_TYPE", "unknown task name")
        self.assertNotIn("nope", self.tm_json("names")["names"])

    def test_malformed_and_unknown_ids(self):
        for bad in ("short", "A" * 21, "AAAAAAAAAAAAAAAAAAA-", ""):
            for args in (["show", "data_import", bad], ["cancel", "data_import", bad],
                         ["patch", "data_import", bad, "{}"],
                         ["watch", "data_import", bad]):
                with self.subTest(args=args):
                    self.assertFails(args, "WRONG_DATA_TYPE", "task_id must be 20")
        for args in (["show", "data_import", ID], ["cancel", "data_import", ID],
                     ["patch", "data_import", ID, "{}"], ["watch", "data_import", ID],
                     # an id of another name is not found under this one
                     ["show", "reco_export", self.task]):
            with self.subTest(args=args):
                self.assertFails(args, "TASK_NOT_FOUND")

    def test_bad_json_bodies(self):
        for args in (["trigger", "data_import", "{bad"],
                     ["trigger", "data_import", "[]"],
                     ["trigger", "data_import", '{"unknown_field": 1}'],
                     ["trigger", "data_import", '{"context_task": 5}'],
                     ["patch", "data_import", self.task, "{bad"],
                     ["patch", "data_import", self.task, '{"status": "SLEEPING"}'],
                     ["patch", "data_import", self.task, '{"details": {"payload": {}}}']):
            with self.subTest(args=args):
                self.assertFails(args, "WRONG_DATA_TYPE")
        r = run(["trigger", "data_import", "-"], self.store, input="{not json")
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertRegex(r.stderr, r"^taskmgr: WRONG_DATA_TYPE: .+\n$")

    def test_missing_store_is_not_created(self):
        missing = os.path.join(self.tmp, "no-store")
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        for store in (missing, os.path.join(missing, "deeper"), empty):
            for args in (["names"], ["ls", "data_import"], ["check"],
                         ["trigger", "data_import"], ["backup", os.path.join(self.tmp, "b")]):
                with self.subTest(store=store, args=args):
                    self.assertFails(args, "STORAGE_ERROR", "no store at " + store,
                                     store=store)
        self.assertFalse(os.path.exists(missing))
        self.assertEqual(os.listdir(empty), [])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "b")))
        # The default store, ./var/tasks, where there is none: the same.
        r = subprocess_in(self.tmp, ["names"])
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"^taskmgr: STORAGE_ERROR: no store at \./var/tasks: .+\n$")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "var")))

    def test_bad_usage(self):
        cases = [
            ([], "no command given"),
            (["frobnicate"], "unknown command 'frobnicate'"),
            (["names", "--frob"], "unknown option '--frob'"),
            (["--verbose", "names"], "unknown option '--verbose'"),
            (["names", "extra"], "too many arguments"),
            (["show", "data_import", ID, "extra"], "too many arguments"),
            (["show", "data_import"], "too few arguments for show"),
            (["ls"], "too few arguments for ls"),
            (["patch", "data_import", ID], "too few arguments for patch"),
            (["backup"], "too few arguments for backup"),
            (["ls", "data_import", "--page", "x"], "--page wants a whole number"),
            (["ls", "data_import", "--page", "0"], "--page wants a whole number"),
            (["ls", "data_import", "--page", "-3"], "--page wants a whole number"),
            (["ls", "data_import", "--page", "2.5"], "--page wants a whole number"),
            (["ls", "data_import", "--page"], "--page needs a value"),
            (["ls", "data_import", "--amt", "65"], "--amt wants a whole number from 1 to 64"),
            (["ls", "data_import", "--status", "bogus"], "unknown status 'bogus'"),
            (["ls", "data_import", "--exclusive"], "--exclusive is an option of trigger"),
            (["--page", "2", "ls", "data_import"], "--page is an option of ls"),
            (["trigger", "data_import", "--timeout", "0"], "--timeout wants seconds"),
            (["trigger", "data_import", "--timeout", "soon"], "--timeout wants seconds"),
            (["names", "--json=yes"], "--json takes no value"),
            (["--store"], "--store needs a value"),
            (["--store", "", "names"], "--store needs a store"),
        ]
        for args, text in cases:
            with self.subTest(args=args):
                self.assertBadUsage(args, text)

    def test_help_on_the_tool_and_every_command(self):
        for args in (["--help"], ["-h"], ["--store", "/nonexistent", "--help"]):
            r = run(args)
            self.assertEqual((r.returncode, r.stderr), (0, ""), args)
            self.assertTrue(r.stdout.startswith("usage: taskmgr [--store S] [--json] "
                                                "COMMAND [ARG...]\n"), args)
            for cmd in COMMANDS:
                self.assertRegex(r.stdout, r"(?m)^  %s\b" % cmd)
        for cmd in COMMANDS:
            for flag in ("--help", "-h"):
                r = run([cmd, flag])
                self.assertEqual((r.returncode, r.stderr), (0, ""), cmd)
                self.assertTrue(r.stdout.startswith("usage: taskmgr [--store S] [--json] "
                                                    + cmd), r.stdout)
        self.assertIn("--status S", run(["ls", "--help"]).stdout)
        self.assertIn("--exclusive", run(["trigger", "--help"]).stdout)


def subprocess_in(cwd, args):
    import subprocess
    from clilib import CLI, cli_env
    return subprocess.run([CLI] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=cli_env(), timeout=60)


if __name__ == "__main__":
    unittest.main(verbosity=2)
