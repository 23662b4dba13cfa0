"""taskmgr backup: a copy of the store taken while the host writes opens
(taskmgr --store COPY check, show) and holds what the store held; a
destination in use is refused and left alone; a damaged copy fails
check with exit status 1; a PostgreSQL store is refused, naming
pg_dump."""
import os
import subprocess
import threading
import unittest

from clilib import CLI, FINAL, HostCase, lmdb_only, run, tmbackend

GOOD_IMPORT = {"context_task": {"connection": "LOCAL", "table_name": "input-myfile.csv"}}
CORRUPT = os.environ.get("TASKMGR_CORRUPT", "")


class Backup(HostCase):

    workers = 4

    def writer(self, stop, made):
        """The host writes: triggers over HTTP, ended by its workers."""
        while not stop.is_set():
            name = ("data_import", "ml_new_users")[len(made) % 2]
            st, _, doc, _ = self.srv.request(
                "POST", "/tasks/private/%s/" % name, self.srv.token(),
                body=GOOD_IMPORT if name == "data_import" else None)
            if st == 200:
                made.append((name, doc["task_id"]))

    def assert_mode(self, path, mode):
        self.assertEqual(os.stat(path).st_mode & 0o777, mode, path)

    @lmdb_only("tm_backup copies LMDB stores (the PostgreSQL refusal is tested)")
    def test_copy_taken_while_the_host_writes_opens_and_holds_the_tasks(self):
        # Tasks that ended before the backup: the copy must hold them as they are.
        ended = [self.trigger("data_import", GOOD_IMPORT) for _ in range(3)]
        for task_id in ended:
            self.wait_status("data_import", task_id, FINAL)
        before = {t: self.tm("--json", "show", "data_import", t) for t in ended}
        stop, made = threading.Event(), []
        th = threading.Thread(target=self.writer, args=(stop, made))
        th.start()
        copies = []
        try:
            for k in range(3):
                n = len(made)
                self.wait_until(lambda: len(made) >= n + 5)
                dest = os.path.join(self.tmp, "copy%d" % k)
                n = len(made)  # committed before the backup began
                out = self.tm("backup", dest)
                self.assertEqual(out, "backup of %s written to %s\n" % (self.store, dest))
                copies.append((dest, n))
        finally:
            stop.set()
            th.join(60)
        self.assertEqual([e for e in os.listdir(self.tmp) if ".tmp-" in e], [])
        for dest, n_before in copies:
            with self.subTest(copy=dest):
                self.assert_mode(dest, 0o700)
                for f in ("data.mdb", "keys"):
                    self.assert_mode(os.path.join(dest, f), 0o600)
                r = run(["check"], dest)
                self.assertEqual((r.returncode, r.stderr), (0, ""), r.stdout)
                self.assertRegex(r.stdout, r"^ok: \d+ tasks, every index agrees")
                for task_id in ended:
                    self.assertEqual(run(["--json", "show", "data_import", task_id],
                                         dest).stdout, before[task_id])
                # Every task the host had made by the time the backup began.
                ids = {t["task_id"] for name in ("data_import", "ml_new_users")
                       for t in json_pages(dest, name)}
                for name, task_id in made[:n_before]:
                    self.assertIn(task_id, ids)
        # The live store is still fine, and the host still serves.
        self.assertRegex(self.tm("check"), r"^ok: ")
        self.assertTrue(self.srv.serves())

    @lmdb_only("tm_backup copies LMDB stores (the PostgreSQL refusal is tested)")
    def test_destination_in_use_is_refused_and_left_alone(self):
        full = os.path.join(self.tmp, "full")
        os.mkdir(full)
        with open(os.path.join(full, "notes.txt"), "w") as f:
            f.write("mine")
        self.assertFails(["backup", full], "INVALID_ARGUMENT", "not an empty directory")
        self.assertEqual(os.listdir(full), ["notes.txt"])
        a_file = os.path.join(self.tmp, "file")
        with open(a_file, "w") as f:
            f.write("mine")
        self.assertFails(["backup", a_file], "INVALID_ARGUMENT", "not a directory")
        self.assertFails(["backup", os.path.join(self.tmp, "no", "parent")],
                         "STORAGE_ERROR")
        with open(a_file) as f:
            self.assertEqual(f.read(), "mine")
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        self.tm("backup", empty)
        self.assertRegex(run(["check"], empty).stdout, r"^ok: ")
        self.assertEqual([e for e in os.listdir(self.tmp) if ".tmp-" in e], [])

    @lmdb_only("damages an LMDB copy's id index")
    def test_check_of_a_damaged_copy_lists_its_problems_and_fails(self):
        if not CORRUPT:
            self.skipTest("TASKMGR_CORRUPT is not set")
        task_id = self.trigger("data_import", GOOD_IMPORT)
        self.wait_status("data_import", task_id, FINAL)
        dest = os.path.join(self.tmp, "damaged")
        self.tm("backup", dest)
        subprocess.run([CORRUPT, dest], check=True, timeout=60)
        r = run(["check"], dest)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stdout, r"^\d+ problems? in a store of \d+ tasks?:\n")
        self.assertIn("missing from the id index", r.stdout)
        self.assertRegex(r.stderr, r"^taskmgr: check: the store is not consistent "
                                   r"\(\d+ problems?\)\n$")
        r = run(["--json", "check"], dest)
        self.assertEqual(r.returncode, 1)
        self.assertIn('"ok":false', r.stdout)

    @unittest.skipUnless(tmbackend.PG, "the PostgreSQL refusal: meson test --setup pg")
    def test_postgresql_store_is_refused_naming_pg_dump(self):
        dest = os.path.join(self.tmp, "pg-copy")
        line = self.assertFails(["backup", dest], "INVALID_ARGUMENT", "pg_dump")
        self.assertIn("--schema=", line)
        self.assertFalse(os.path.exists(dest))

    def wait_until(self, pred):
        from serverlib import wait_for
        wait_for(pred, 60, "the host to write")


def json_pages(store, name):
    import json
    tasks, page = [], 1
    while True:
        r = run(["--json", "ls", name, "--amt", "64", "--page", str(page)], store)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        tasks += doc["tasks"]
        if not doc["has_next"]:
            return tasks
        page += 1


if __name__ == "__main__":
    unittest.main(verbosity=2)
