#!/usr/bin/env python3
"""Suite 'ffi': the Python binding (the package examples/python/taskmgr) on
the built library.  Run by meson, through runner.py (pytest if installed,
else unittest), with TASKMGR_LIBRARY set to the built libtaskmgr.so and
PYTHONPATH to examples/python; by hand, from the repository root:

    PYTHONPATH=examples/python TASKMGR_LIBRARY=build/lib/libtaskmgr.so \
        python3 tests/ffi/test_binding.py

Every test is a unittest.TestCase method, standard library only.  Every
wait polls get() against a deadline: no fixed sleeps, no timing assertions.
"""
import ctypes
import gc
import inspect
import json
import logging
import os
import pathlib
import re
import shutil
import sys
import tempfile
import threading
import time
import typing
import unittest
from unittest import mock

import taskmgr
from taskmgr import _native
from tmbackend import lmdb_only, drop_under, store_path

DEADLINE_S = 30.0
HEADER = os.environ.get("TASKMGR_HEADER") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "taskmgr.h")

# Handlers that raise on purpose log a traceback; keep the test output short.
logging.getLogger("taskmgr").setLevel(logging.CRITICAL)


def wait_for(what, fetch, done, deadline_s=DEADLINE_S):
    """Poll fetch() until done(value); return the value, or fail the test."""
    end = time.monotonic() + deadline_s
    value = fetch()
    while not done(value):
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s; last value: %r" % (what, value))
        time.sleep(0.01)
        value = fetch()
    return value


def is_final(task):
    return task["status"] in ("COMPLETED", "FAILED", "CANCELLED")


class StoreCase(unittest.TestCase):
    """Each test gets a fresh store in its own temporary directory."""

    workers = 2

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tm-ffi-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.addCleanup(drop_under, self.dir)  # after the stores close
        self.m = self.open()

    def open(self, **kw):
        kw.setdefault("workers", self.workers)
        m = taskmgr.Manager(store_path(os.path.join(self.dir, "store")), nosync=True, **kw)
        self.addCleanup(m.close)
        return m

    def task_status(self, name, task_id):
        return self.m.get(name, task_id)["status"]

    def wait_status(self, name, task_id, statuses):
        return wait_for("%s in %s" % (task_id, statuses),
                        lambda: self.m.get(name, task_id),
                        lambda t: t["status"] in statuses)


# ---------------------------------------------------------------------------

class LibraryLoading(unittest.TestCase):

    def test_library_argument_overrides_the_environment(self):
        lib = os.environ["TASKMGR_LIBRARY"]
        with tempfile.TemporaryDirectory() as d:
            with taskmgr.Manager(store_path(os.path.join(d, "s")), workers=0,
                                 library=lib) as m:
                self.assertEqual(m.stats()["queue_depth"], 0)

    def test_missing_library_raises_oserror(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(OSError):
                taskmgr.Manager(store_path(os.path.join(d, "s")),
                                library=os.path.join(d, "no-such-libtaskmgr.so"))

    def test_lookup_order_argument_then_environment_then_the_loader(self):
        with mock.patch.dict(os.environ, {"TASKMGR_LIBRARY": "/env/libtaskmgr.so"}):
            self.assertEqual(_native._candidates("/arg/libtaskmgr.so"), ["/arg/libtaskmgr.so"])
            self.assertEqual(_native._candidates(pathlib.Path("/arg/lib.so")), ["/arg/lib.so"])
            self.assertEqual(_native._candidates(), ["/env/libtaskmgr.so"])
        with mock.patch.dict(os.environ, clear=False):
            os.environ.pop("TASKMGR_LIBRARY", None)
            with mock.patch("ctypes.util.find_library", return_value="/opt/libtaskmgr.so"):
                self.assertEqual(_native._candidates(),
                                 ["libtaskmgr.so.0", "/opt/libtaskmgr.so"])
            with mock.patch("ctypes.util.find_library", return_value=None):
                self.assertEqual(_native._candidates(), ["libtaskmgr.so.0"])

    def test_an_explicit_library_that_does_not_load_is_not_looked_for_elsewhere(self):
        with tempfile.TemporaryDirectory() as d:
            missing = os.path.join(d, "no-such-libtaskmgr.so")
            with mock.patch.dict(os.environ, {"TASKMGR_LIBRARY": missing}):
                with self.assertRaises(OSError) as cm:
                    taskmgr.Manager(store_path(os.path.join(d, "s")))
        self.assertIn("tried %s)" % missing, str(cm.exception))
        self.assertIn("TASKMGR_LIBRARY", str(cm.exception))

    def test_a_postgresql_url_reaches_the_library_unchanged(self):
        # A future store: Python neither rejects nor rewrites it.
        lib = _native._load()
        seen = []

        def tm_open(opts, out):
            seen.append(opts._obj.path)
            return taskmgr.InvalidArgument.code

        url = "postgresql://tasks@db.example:5432/taskmgr?sslmode=require"
        with mock.patch.object(lib, "tm_open", tm_open):
            with self.assertRaises(taskmgr.InvalidArgument):
                taskmgr.Manager(url, workers=0)
        self.assertEqual(seen, [url.encode()])

    def test_a_postgresql_url_without_a_server_or_store_is_refused(self):
        # Nothing listens on port 1: a build with the PostgreSQL store says
        # it could not connect; a build without it refuses the URL.
        have_pg = os.environ.get("TM_TEST_HAVE_PG") == "1"
        error = taskmgr.StorageError if have_pg else taskmgr.InvalidArgument
        with tempfile.TemporaryDirectory() as d:
            cwd = os.getcwd()
            os.chdir(d)
            try:
                with self.assertRaises(error) as cm:
                    taskmgr.Manager("postgresql://tasks@127.0.0.1:1/taskmgr",
                                    workers=0)
                self.assertEqual(os.listdir(d), [])  # no directory was made
            finally:
                os.chdir(cwd)
        self.assertIn("PostgreSQL", str(cm.exception))

    def test_structs_mirror_the_header_field_for_field(self):
        with open(HEADER, encoding="utf-8") as f:
            header = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
        for struct, cls in (("tm_options", _native._Options),
                            ("tm_job_def", _native._JobDef)):
            body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (struct, struct),
                             header, re.S).group(1)
            names = []
            for decl in body.split(";"):
                decl = " ".join(decl.split())
                if not decl:
                    continue
                m = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl) or re.search(r"(\w+)$", decl)
                names.append(m.group(1))
            self.assertEqual([f[0] for f in cls._fields_], names, struct)

    def test_init_functions_fill_the_struct_layout_we_expect(self):
        # A wrong field order or type reads back garbage here.
        lib = _native._load()
        room = _native._OptionsRoom()
        self.assertEqual(lib.tm_options_init(ctypes.byref(room.s), 1), 0)
        o = room.s
        self.assertEqual((o.version, o.path, o.workers, o.flags), (1, None, 2, 0))
        self.assertEqual((o.map_size, o.map_size_max), (64 << 20, 4 << 30))
        self.assertEqual((o.poll_ms, o.lease_ms, o.grace_ms, o.progress_ms, o.keep_count),
                         (250, 30000, 10000, 200, 1000))
        self.assertEqual(o.keep_age_s, 30 * 86400.0)
        self.assertEqual(bytes(room._room), bytes(len(room._room)),
                         "tm_options_init wrote past the end of tm_options")
        room = _native._JobDefRoom()
        self.assertEqual(lib.tm_job_def_init(ctypes.byref(room.s), 2), 0)
        d = room.s
        self.assertEqual((d.version, d.name, d.flags, d.user), (2, None, 0, None))
        self.assertFalse(d.run)
        self.assertFalse(d.validate)
        self.assertEqual((d.timeout_s, d.max_attempts, d.retry_backoff_s),
                         (86400.0, 1, 1.0))
        self.assertEqual((d.concurrency, d.interval_s, d.change_threshold,
                          d.min_interval_s), (0, 0.0, 0, 0.0))
        self.assertEqual((d.cron, d.cron_tz, d.then, d.rate_per_s, d.burst),
                         (None, None, None, 0.0, 0))
        self.assertEqual(bytes(room._room), bytes(len(room._room)),
                         "tm_job_def_init wrote past the end of tm_job_def")


class Exceptions(unittest.TestCase):

    def test_classes_carry_the_library_error_names_and_classes(self):
        lib = _native._load()
        expected = {
            "WrongDataType": ("WRONG_DATA_TYPE", "WrongData"),
            "LowerStatusNotAllowed": ("LOWER_STATUS_NOT_ALLOWED", "WrongData"),
            "TaskAlreadyRunning": ("TASK_ALREADY_RUNNING", "DuplicatedError"),
            "TaskNotFound": ("TASK_NOT_FOUND", "NotFoundError"),
            "TableNotFound": ("TABLE_NOT_FOUND", "NotFoundError"),
            "ResourceNotFound": ("RESOURCE_NOT_FOUND", "NotFoundError"),
            "StorageError": ("STORAGE_ERROR", "ServerError"),
            "OutOfMemory": ("OUT_OF_MEMORY", "ServerError"),
            "InvalidArgument": ("INVALID_ARGUMENT", "ServerError"),
        }
        for cls_name, (name, cls) in expected.items():
            exc = getattr(taskmgr, cls_name)
            self.assertTrue(issubclass(exc, taskmgr.TaskmgrError))
            self.assertEqual((exc.error_name, exc.error_class), (name, cls))
            self.assertEqual(lib.tm_error_name(exc.code).decode(), name)
            self.assertEqual(lib.tm_error_class(exc.code).decode(), cls)
            e = exc("a message")
            self.assertEqual((str(e), e.message, e.error_name, e.error_class),
                             ("a message", "a message", name, cls))


    def test_public_classes_are_taskmgr_x(self):
        for name in taskmgr.__all__:
            obj = getattr(taskmgr, name)
            if isinstance(obj, type):
                self.assertEqual((obj.__module__, obj.__qualname__), ("taskmgr", name))


class TypeHints(unittest.TestCase):

    def test_the_package_carries_the_py_typed_marker(self):
        package = os.path.dirname(taskmgr.__file__)
        self.assertEqual(os.path.basename(taskmgr.__file__), "__init__.py")
        self.assertTrue(os.path.isfile(os.path.join(package, "py.typed")))

    def test_every_public_method_is_annotated(self):
        for cls in (taskmgr.Manager, taskmgr.Job):
            for name, fn in vars(cls).items():
                if not callable(fn) or (name.startswith("_") and name not in
                                        ("__init__", "__enter__", "__exit__")):
                    continue
                sig = inspect.signature(fn)
                for p in list(sig.parameters.values())[1:]:
                    self.assertIsNot(p.annotation, p.empty, "%s.%s(%s)" % (cls, name, p))
                self.assertIsNot(sig.return_annotation, sig.empty, "%s.%s" % (cls, name))
                if sys.version_info >= (3, 9):
                    typing.get_type_hints(fn)   # every hint resolves


class Lifecycle(StoreCase):

    def test_context_manager_closes_and_a_closed_manager_refuses_calls(self):
        path = store_path(os.path.join(self.dir, "other"))
        with taskmgr.Manager(path, workers=0, nosync=True) as m:
            self.assertFalse(m.closed)
        self.assertTrue(m.closed)
        m.close()  # a second close does nothing
        for call in (m.stats, lambda: m.register("x"), lambda: m.trigger("x")):
            with self.assertRaises(taskmgr.InvalidArgument):
                call()
        # Closed for real: the same path opens again in this process.
        taskmgr.Manager(path, workers=0, nosync=True).close()

    def test_limits_are_keywords_of_the_manager(self):
        path = store_path(os.path.join(self.dir, "limited"))
        with taskmgr.Manager(path, workers=0, nosync=True, max_task_bytes=64 << 10,
                             max_details_bytes=8 << 10, max_keys=50,
                             max_list_bytes=128 << 10) as m:
            m.register("x")
            m.trigger("x", {"context_task": {"b": "a" * 4000}})
            with self.assertRaises(taskmgr.WrongDataType) as cm:
                m.trigger("x", {"context_task": {"b": "a" * 9000}})
            self.assertIn("max_details_bytes", cm.exception.message)
            with self.assertRaises(taskmgr.WrongDataType) as cm:
                m.trigger("x", {"context_task": {str(i): i for i in range(60)}})
            self.assertIn("max_keys", cm.exception.message)
        with self.assertRaises(taskmgr.InvalidArgument):
            taskmgr.Manager(path, workers=0, max_task_bytes=1 << 20,
                            max_list_bytes=1 << 20)

    def test_second_open_of_a_path_in_one_process_is_invalid_argument(self):
        with self.assertRaises(taskmgr.InvalidArgument) as cm:
            self.open()
        self.assertEqual(cm.exception.error_name, "INVALID_ARGUMENT")
        self.assertEqual(cm.exception.error_class, "ServerError")
        self.assertIn("already open", cm.exception.message)

    @lmdb_only("a file in the way of an LMDB store's directory")
    def test_unopenable_path_is_storage_error(self):
        blocker = os.path.join(self.dir, "a-file")
        open(blocker, "w").close()
        with self.assertRaises(taskmgr.StorageError) as cm:
            taskmgr.Manager(os.path.join(blocker, "store"), nosync=True)
        self.assertEqual((cm.exception.error_name, cm.exception.error_class),
                         ("STORAGE_ERROR", "ServerError"))
        self.assertTrue(cm.exception.message)

    def test_negative_workers_is_invalid_argument(self):
        with self.assertRaises(taskmgr.InvalidArgument):
            taskmgr.Manager(store_path(os.path.join(self.dir, "w")), workers=-1)

    def test_dropping_a_manager_without_close_closes_it(self):
        path = store_path(os.path.join(self.dir, "dropped"))
        m = taskmgr.Manager(path, workers=1, nosync=True)
        m.register("noop", run=lambda job: "COMPLETED")
        tid = m.trigger("noop")["task_id"]
        del m
        gc.collect()
        # Were it still open, the path would refuse a second manager.
        with taskmgr.Manager(path, workers=0, nosync=True) as again:
            again.register("noop")
            self.assertEqual(again.get("noop", tid)["task_id"], tid)
            self.assertEqual(again.stats()["names"]["noop"]["total"], 1)

    def test_data_persists_across_close_and_reopen(self):
        path = store_path(os.path.join(self.dir, "durable"))
        with taskmgr.Manager(path, workers=0) as m:
            m.register("ext")
            tid = m.trigger("ext", {"context_task": {"a": 1}})["task_id"]
        with taskmgr.Manager(path, workers=0) as m:
            m.register("ext")
            self.assertEqual(m.get("ext", tid)["details"]["payload"], {"a": 1})


class Register(StoreCase):

    def test_register_sets_every_job_def_field(self):
        self.m.register("full", run=None, public=True, exclusive=True, timeout_s=60,
                        validate=lambda ctx: None, max_attempts=3, retry_backoff_s=0.5,
                        concurrency=1, interval_s=0, change_threshold=0,
                        min_interval_s=0)
        tid = self.m.trigger("full", public=True)["task_id"]
        task = self.m.get("full", tid)
        self.assertAlmostEqual(task["details"]["timeout_at"] - task["start_time"], 60, 3)
        with self.assertRaises(taskmgr.TaskAlreadyRunning):
            self.m.trigger("full")

    def test_register_takes_the_version_2_fields(self):
        self.m.register("v2", cron="@daily", cron_tz="UTC", then="next",
                        rate_per_s=2.5, burst=3)
        self.m.register("v2_defaults", cron=None, cron_tz=None, then=None,
                        rate_per_s=None, burst=None)
        # What the library checks reaches it: a burst needs a rate, cron_tz
        # needs cron, then a task name.
        for bad in ({"burst": 3}, {"cron_tz": "UTC"}, {"then": "not a name"},
                    {"rate_per_s": -1}):
            with self.subTest(**bad), self.assertRaises(taskmgr.InvalidArgument):
                self.m.register("v2_bad", **bad)
        for bad in ({"then": 5}, {"cron": "@daily\0"}, {"burst": 1.5}):
            with self.subTest(**{k: repr(v) for k, v in bad.items()}), \
                    self.assertRaises((TypeError, taskmgr.WrongDataType)):
                self.m.register("v2_bad", **bad)

    def test_a_then_cycle_is_invalid_argument(self):
        self.m.register("a", then="b")
        with self.assertRaises(taskmgr.InvalidArgument) as cm:
            self.m.register("b", then="a")
        self.assertIn("cycle", str(cm.exception))
        with self.assertRaises(taskmgr.InvalidArgument):
            self.m.register("self", then="self")
        self.m.register("b")  # refused, it was not registered

    def test_then_follows_a_completed_task_with_its_output(self):
        def run(job):
            with self.assertRaises(taskmgr.WrongDataType):
                job.output(["not", "an", "object"])
            job.output({"input_table": job.payload["table"], "rows": 2})
            return "COMPLETED"

        self.m.register("fit")  # no handler: the next task waits
        self.m.register("import", run=run, then="fit")
        tid = self.m.trigger("import", {"context_task": {"table": "items.csv"}})["task_id"]
        done = self.m.wait("import", tid, timeout_s=DEADLINE_S, poll_s=0.01)
        self.assertEqual(done["status"], "COMPLETED", done)
        self.assertEqual(done["details"]["output"], {"input_table": "items.csv", "rows": 2})
        self.assertEqual(done["details"]["then"]["name"], "fit")
        nxt = self.m.get("fit", done["details"]["then"]["task_id"])
        self.assertEqual(nxt["status"], "REQUEST_SENT")
        self.assertEqual(nxt["details"]["payload"], done["details"]["output"])
        self.assertEqual(nxt["details"]["create_reason"], "after import " + tid)
        self.assertEqual(nxt["details"]["after"], {"name": "import", "task_id": tid})
        # An external worker's completion is followed too.
        self.m.register("ext", then="fit")
        ext = self.m.trigger("ext")["task_id"]
        t = self.m.patch("ext", ext, {"status": "COMPLETED",
                                      "details": {"output": {"k": 1}}})
        self.assertEqual(self.m.get("fit", t["details"]["then"]["task_id"])
                         ["details"]["payload"], {"k": 1})
        self.assertEqual(len(self.m.list_recent("fit")["tasks"]), 2)

    def test_registering_a_name_twice_is_invalid_argument(self):
        self.m.register("twice")
        with self.assertRaises(taskmgr.InvalidArgument):
            self.m.register("twice")

    def test_bad_names_and_policies_are_invalid_argument(self):
        for name in ("", "has space", "x" * 65, "slash/name"):
            with self.assertRaises(taskmgr.InvalidArgument, msg=name):
                self.m.register(name)
        with self.assertRaises(taskmgr.InvalidArgument):
            self.m.register("neg", timeout_s=-1)
        with self.assertRaises(taskmgr.InvalidArgument):
            self.m.register("neg", max_attempts=-1)

    def test_unknown_keyword_is_type_error(self):
        with self.assertRaises(TypeError):
            self.m.register("kw", retries=3)
        with self.assertRaises(TypeError):
            self.m.register("kw", run="not callable")


class FiveCalls(StoreCase):

    workers = 0

    def setUp(self):
        super().setUp()
        self.m.register("ext")                      # private, no handler
        self.m.register("pub", public=True)
        self.m.register("excl", exclusive=True)

    def test_trigger_returns_a_task_id_and_stores_the_body(self):
        out = self.m.trigger("ext", {"context_task": {"table_name": "a.csv"},
                                     "refresh_token": "s3cret",
                                     "create_reason": "by a test"})
        self.assertEqual(set(out), {"task_id"})
        self.assertRegex(out["task_id"], r"^[A-Za-z0-9]{20}$")
        task = self.m.get("ext", out["task_id"])
        self.assertEqual(task["status"], "REQUEST_SENT")
        self.assertEqual(task["details"]["payload"], {"table_name": "a.csv"})
        self.assertEqual(task["details"]["create_reason"], "by a test")
        self.assertNotIn("s3cret", json.dumps(task))

    def test_trigger_accepts_json_text_and_refuses_bad_bodies(self):
        self.m.trigger("ext", '{"context_task": {"x": 1}}')
        for body in ("{", '{"context_task": 5}', {"unknown": 1}, {"x": float("nan")}):
            with self.assertRaises(taskmgr.WrongDataType, msg=repr(body)) as cm:
                self.m.trigger("ext", body)
            self.assertEqual(cm.exception.error_class, "WrongData")
            self.assertTrue(cm.exception.message)

    def test_trigger_many_stores_a_batch_in_order_or_nothing(self):
        out = self.m.trigger_many("ext", [{"context_task": {"i": 0}}, {},
                                          {"context_task": {"i": 2}}])
        ids = out["task_ids"]
        self.assertEqual(len(ids), 3)
        self.assertEqual(self.m.get("ext", ids[0])["details"]["payload"], {"i": 0})
        self.assertEqual(self.m.get("ext", ids[2])["details"]["payload"], {"i": 2})
        with self.assertRaises(taskmgr.WrongDataType) as cm:
            self.m.trigger_many("ext", [{}, {"context_task": 5}])
        self.assertIn("bodies_json[1]", cm.exception.message)
        with self.assertRaises(taskmgr.TaskAlreadyRunning):
            self.m.trigger_many("excl", [{}, {}])
        self.assertEqual(len(self.m.list_recent("ext", amt=64)["tasks"]), 3)
        self.assertEqual(self.m.list_recent("excl")["tasks"], [])

    def test_retry_makes_a_new_task_of_a_failed_one(self):
        tid = self.m.trigger("ext", {"context_task": {"n": 7}})["task_id"]
        with self.assertRaises(taskmgr.LowerStatusNotAllowed):
            self.m.retry("ext", tid)
        self.m.patch("ext", tid, {"status": "FAILED"})
        new = self.m.retry("ext", tid)["task_id"]
        task = self.m.get("ext", new)
        self.assertEqual(task["details"]["payload"], {"n": 7})
        self.assertEqual(task["details"]["retry_of"], tid)
        self.assertEqual(task["details"]["create_reason"], "retry of " + tid)
        with self.assertRaises(taskmgr.TaskNotFound):
            self.m.retry("ext", "A" * 20)

    def test_pause_and_resume_show_in_stats(self):
        self.m.pause("ext")
        self.assertTrue(self.m.stats()["names"]["ext"]["paused"])
        self.m.resume("ext")
        self.assertFalse(self.m.stats()["names"]["ext"]["paused"])
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.pause("nobody")

    def test_metrics_are_prometheus_text(self):
        self.m.trigger("ext")
        text = self.m.metrics()
        self.assertIn('\ntaskmgr_triggers_total{name="ext"} 1\n', text)
        self.assertIn("# TYPE taskmgr_task_duration_seconds histogram\n", text)

    def test_unregistered_or_private_name_is_wrong_data_type(self):
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.trigger("nobody")
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.trigger("ext", public=True)
        self.m.trigger("pub", public=True)
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.trigger("ext\0pub")

    def test_exclusive_name_refuses_a_second_active_task(self):
        tid = self.m.trigger("excl")["task_id"]
        with self.assertRaises(taskmgr.TaskAlreadyRunning) as cm:
            self.m.trigger("excl")
        self.assertEqual(cm.exception.error_class, "DuplicatedError")
        self.m.patch("excl", tid, {"completed": True})
        self.m.trigger("excl")

    def test_exclusive_trigger_from_many_threads_admits_one(self):
        results = []

        def attempt():
            try:
                results.append(self.m.trigger("excl")["task_id"])
            except taskmgr.TaskAlreadyRunning:
                results.append(None)

        threads = [threading.Thread(target=attempt) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len([r for r in results if r]), 1, results)

    def test_list_recent_pages_newest_first(self):
        ids = [self.m.trigger("ext")["task_id"] for _ in range(3)]
        page1 = self.m.list_recent("ext", page=1, amt=2)
        self.assertEqual((page1["has_next"], page1["next_page"]), (True, 2))
        page2 = self.m.list_recent("ext", page=2, amt=2)
        self.assertFalse(page2["has_next"])
        listed = [t["task_id"] for t in page1["tasks"] + page2["tasks"]]
        self.assertEqual(sorted(listed), sorted(ids))
        starts = [t["start_time"] for t in page1["tasks"] + page2["tasks"]]
        self.assertEqual(starts, sorted(starts, reverse=True))
        self.assertIn("details", page1["tasks"][0])
        self.assertEqual(self.m.list_recent("ext")["tasks"][0]["task_id"], listed[0])
        for page, amt in ((-1, 10), (1, 65), (1, -3), (2 ** 40, 1)):
            with self.assertRaises(taskmgr.WrongDataType, msg=(page, amt)):
                self.m.list_recent("ext", page=page, amt=amt)

    def test_iter_recent_yields_every_page_newest_first(self):
        ids = [self.m.trigger("ext")["task_id"] for _ in range(5)]
        pages = [self.m.list_recent("ext", page=p, amt=2)["tasks"] for p in (1, 2, 3)]
        expected = [t["task_id"] for page in pages for t in page]
        self.assertEqual(sorted(expected), sorted(ids))
        with mock.patch.object(self.m, "list_recent", wraps=self.m.list_recent) as calls:
            tasks = list(self.m.iter_recent("ext", amt=2))
        self.assertEqual([t["task_id"] for t in tasks], expected)
        self.assertEqual([c.kwargs["page"] for c in calls.call_args_list], [1, 2, 3])
        self.assertIn("details", tasks[0])
        self.assertEqual([t["task_id"] for t in self.m.iter_recent("ext")], expected)
        self.assertEqual(list(self.m.iter_recent("pub", public=True)), [])

    def test_iter_recent_checks_its_arguments_when_called(self):
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.iter_recent("nobody")
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.iter_recent("ext", amt=65)
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.iter_recent("ext", public=True)
        tid = self.m.trigger("pub", public=True)["task_id"]
        public = list(self.m.iter_recent("pub", amt=1, public=True))
        self.assertEqual([t["task_id"] for t in public], [tid])
        self.assertNotIn("details", public[0])

    def test_iter_recent_does_not_repeat_a_task_pushed_onto_a_later_page(self):
        ids = [self.m.trigger("ext")["task_id"] for _ in range(4)]
        it = self.m.iter_recent("ext", amt=2)
        first = [next(it)["task_id"], next(it)["task_id"]]
        newer = self.m.trigger("ext")["task_id"]   # shifts every task down one
        rest = [t["task_id"] for t in it]
        self.assertEqual(first + rest, list(reversed(ids)))
        self.assertNotIn(newer, first + rest)

    def test_wait_returns_the_finished_task_or_times_out(self):
        tid = self.m.trigger("ext")["task_id"]
        with self.assertRaises(TimeoutError) as cm:
            self.m.wait("ext", tid, timeout_s=0.05, poll_s=0.01)
        self.assertIn("REQUEST_SENT", str(cm.exception))
        self.m.patch("ext", tid, {"status": "RUNNING"})
        self.m.patch("ext", tid, {"failed": True})
        task = self.m.wait("ext", tid, timeout_s=DEADLINE_S)
        self.assertEqual((task["task_id"], task["status"]), (tid, "FAILED"))
        self.assertEqual(taskmgr.FINAL_STATUSES, {"COMPLETED", "FAILED", "CANCELLED"})
        with self.assertRaises(taskmgr.TaskNotFound):
            self.m.wait("ext", "C" * 20)

    def test_public_view_has_no_details(self):
        tid = self.m.trigger("pub", public=True)["task_id"]
        self.assertNotIn("details", self.m.get("pub", tid, public=True))
        self.assertIn("details", self.m.get("pub", tid))
        self.assertNotIn("details", self.m.list_recent("pub", public=True)["tasks"][0])

    def test_get_unknown_id_is_task_not_found_and_bad_id_wrong_data(self):
        with self.assertRaises(taskmgr.TaskNotFound) as cm:
            self.m.get("ext", "A" * 20)
        self.assertEqual((cm.exception.error_name, cm.exception.error_class),
                         ("TASK_NOT_FOUND", "NotFoundError"))
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.get("ext", "short")
        with self.assertRaises(TypeError):
            self.m.get("ext", 12345)

    def test_patch_moves_status_up_and_merges_details(self):
        tid = self.m.trigger("ext")["task_id"]
        task = self.m.patch("ext", tid, {"status": "RUNNING",
                                         "details": {"progress": {"message": "half", "rows": 5}}})
        self.assertEqual((task["status"], task["progress"]), ("RUNNING", "half"))
        task = self.m.patch("ext", tid, '{"details": {"progress": {"rows": null}}}')
        self.assertNotIn("rows", task["details"]["progress"])
        self.assertEqual(self.m.patch("ext", tid, {"completed": True})["status"], "COMPLETED")

    def test_patch_down_is_lower_status_not_allowed(self):
        tid = self.m.trigger("ext")["task_id"]
        self.m.patch("ext", tid, {"status": "COMPLETED"})
        with self.assertRaises(taskmgr.LowerStatusNotAllowed) as cm:
            self.m.patch("ext", tid, {"status": "RUNNING"})
        self.assertEqual((cm.exception.error_name, cm.exception.error_class),
                         ("LOWER_STATUS_NOT_ALLOWED", "WrongData"))
        self.assertEqual(self.task_status("ext", tid), "COMPLETED")
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.patch("ext", tid, {"completed": True, "failed": True})

    def test_cancel_of_a_waiting_task_is_immediate(self):
        tid = self.m.trigger("ext")["task_id"]
        self.assertEqual(self.m.cancel("ext", tid)["status"], "CANCELLED")
        self.assertEqual(self.m.cancel("ext", tid)["status"], "CANCELLED")
        with self.assertRaises(taskmgr.TaskNotFound):
            self.m.cancel("ext", "B" * 20)

    def test_notify_answers_the_counter_the_library_keeps(self):
        # "ext" has no automatic trigger: nothing resets its counter.
        first = self.m.notify("ext", 3)
        self.assertEqual(first["changes"], 3)
        self.assertEqual(first["total"], 0)
        self.assertEqual(set(first), {"REQUEST_SENT", "RUNNING", "CANCELLED_REQUESTED",
                                      "FAILED", "CANCELLED", "COMPLETED", "total",
                                      "changes", "paused"})
        after = self.m.notify("ext", 4)
        self.assertEqual(after["changes"], 7)
        self.assertEqual(after, self.m.stats()["names"]["ext"])
        # A task of the name starts the count again.
        self.m.trigger("ext")
        after = self.m.notify("ext", 2)
        self.assertEqual((after["changes"], after["total"], after["REQUEST_SENT"]),
                         (2, 1, 1))
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.notify("nobody", 1)
        with self.assertRaises(taskmgr.WrongDataType):
            self.m.notify("ext", -1)
        self.assertEqual(self.m.stats()["names"]["ext"]["changes"], 2)

    def test_stats_and_check_return_dicts(self):
        self.m.trigger("ext")
        stats = self.m.stats()
        self.assertEqual(stats["names"]["ext"]["REQUEST_SENT"], 1)
        self.assertEqual(stats["queue_depth"], 1)
        self.assertGreater(stats["store_bytes"], 0)
        check = self.m.check()
        self.assertTrue(check["ok"], check)
        self.assertEqual(check["tasks"], 1)


class Validate(StoreCase):

    workers = 0

    def setUp(self):
        super().setUp()
        self.seen = []

        def validate(ctx):
            self.seen.append(ctx)
            table = ctx.get("table_name")
            if table == "missing.csv":
                raise taskmgr.TableNotFound("table missing.csv does not exist")
            if table == "gone":
                raise taskmgr.ResourceNotFound("resource gone")
            if not isinstance(table, str):
                raise taskmgr.WrongDataType("table_name must be a string")
            if table == "bug":
                raise KeyError("oops")

        self.m.register("import", validate=validate)

    def test_validate_returning_accepts_the_trigger(self):
        tid = self.m.trigger("import", {"context_task": {"table_name": "a.csv"}})["task_id"]
        self.assertEqual(self.seen, [{"table_name": "a.csv"}])
        self.assertEqual(self.m.get("import", tid)["status"], "REQUEST_SENT")

    def test_validate_errors_refuse_the_trigger_with_their_message(self):
        cases = [({"table_name": "missing.csv"}, taskmgr.TableNotFound,
                  "table missing.csv does not exist"),
                 ({"table_name": "gone"}, taskmgr.ResourceNotFound, "resource gone"),
                 ({}, taskmgr.WrongDataType, "table_name must be a string"),
                 ({"table_name": "bug"}, taskmgr.WrongDataType, "KeyError")]
        for ctx, exc, message in cases:
            with self.assertRaises(exc, msg=ctx) as cm:
                self.m.trigger("import", {"context_task": ctx})
            self.assertIn(message, cm.exception.message)
        self.assertEqual(self.m.list_recent("import")["tasks"], [])
        self.assertEqual(self.seen[2], {})

    def test_validate_may_not_close_the_manager(self):
        self.m.register("closer", validate=lambda ctx: self.m.close())
        with self.assertRaises(taskmgr.WrongDataType) as cm:
            self.m.trigger("closer")
        self.assertIn("close() called from a handler", cm.exception.message)
        self.assertFalse(self.m.closed)


class Handlers(StoreCase):

    def test_handler_progress_message_and_warnings_are_seen_through_get(self):
        release = threading.Event()
        seen = {}

        def run(job):
            seen.update(task_id=job.task_id, name=job.name, payload=job.payload,
                        secret=job.secret, attempt=job.attempt)
            job.progress({"rows": 40, "columns": 3})
            job.message("40 rows uploaded")
            job.warn("slow disk")
            try:
                job.progress(["not", "an", "object"])
            except taskmgr.WrongDataType as e:
                seen["progress_error"] = e.error_name
            release.wait(DEADLINE_S)
            job.progress({"rows": 50, "columns": None})
            return "COMPLETED"

        self.m.register("data_import", run=run)
        tid = self.m.trigger("data_import", {"context_task": {"table_name": "in.csv"},
                                             "refresh_token": "tok-123"})["task_id"]
        task = wait_for("progress", lambda: self.m.get("data_import", tid),
                        lambda t: t["details"]["progress"].get("rows") == 40)
        release.set()
        self.assertEqual(task["status"], "RUNNING")
        self.assertEqual(task["progress"], "40 rows uploaded")
        self.assertEqual(task["details"]["progress"]["columns"], 3)
        task = self.wait_status("data_import", tid, ("COMPLETED", "FAILED", "CANCELLED"))
        self.assertEqual(task["status"], "COMPLETED", task)
        self.assertEqual(task["details"]["progress"],
                         {"rows": 50, "message": "40 rows uploaded"})
        self.assertIn("slow disk", task["warnings"])
        self.assertIn("end_time", task["details"])
        self.assertEqual(seen, {"task_id": tid, "name": "data_import",
                                "payload": {"table_name": "in.csv"}, "secret": "tok-123",
                                "attempt": 1, "progress_error": "WRONG_DATA_TYPE"})
        self.assertNotIn("tok-123", json.dumps(task))

    def test_wait_follows_a_handler_to_its_end(self):
        def run(job):
            job.message("done")
            return "COMPLETED"

        self.m.register("short", run=run)
        tid = self.m.trigger("short")["task_id"]
        task = self.m.wait("short", tid, timeout_s=DEADLINE_S, poll_s=0.01)
        self.assertEqual((task["status"], task["progress"]), ("COMPLETED", "done"))

    def test_cancel_of_a_running_python_handler(self):
        started = threading.Event()
        saw_cancel = threading.Event()

        def run(job):
            started.set()
            while not job.cancelled():
                job.message("working")
                time.sleep(0.005)
            saw_cancel.set()
            return "CANCELLED"

        self.m.register("ml_model_retrain", run=run, public=True, exclusive=True)
        tid = self.m.trigger("ml_model_retrain", public=True)["task_id"]
        self.assertTrue(started.wait(DEADLINE_S))
        self.wait_status("ml_model_retrain", tid, ("RUNNING",))
        after = self.m.cancel("ml_model_retrain", tid)
        self.assertIn(after["status"], ("CANCELLED_REQUESTED", "CANCELLED"))
        task = self.wait_status("ml_model_retrain", tid, ("COMPLETED", "FAILED", "CANCELLED"))
        self.assertEqual(task["status"], "CANCELLED")
        self.assertTrue(saw_cancel.is_set())

    def test_handler_that_raises_ends_failed_with_its_message(self):
        def run(job):
            raise ValueError("row 7 has 4 columns, expected 3")

        self.m.register("boom", run=run)
        tid = self.m.trigger("boom")["task_id"]
        task = self.wait_status("boom", tid, ("COMPLETED", "FAILED", "CANCELLED"))
        self.assertEqual(task["status"], "FAILED")
        self.assertEqual(task["details"]["error"], "row 7 has 4 columns, expected 3")

    def test_handler_returning_failed_or_nonsense_ends_failed(self):
        self.m.register("fails", run=lambda job: "FAILED")
        self.m.register("nonsense", run=lambda job: None)
        t1 = self.m.trigger("fails")["task_id"]
        t2 = self.m.trigger("nonsense")["task_id"]
        self.assertEqual(self.wait_status("fails", t1, ("COMPLETED", "FAILED"))["status"],
                         "FAILED")
        task = self.wait_status("nonsense", t2, ("COMPLETED", "FAILED"))
        self.assertEqual(task["status"], "FAILED")
        self.assertIn("handler returned None", task["details"]["error"])

    def test_handler_may_call_the_manager_but_not_close_it(self):
        result = {}

        def run(job):
            result["self"] = self.m.get(job.name, job.task_id)["status"]
            self.m.close()
            return "COMPLETED"

        self.m.register("inner", run=run)
        tid = self.m.trigger("inner")["task_id"]
        task = self.wait_status("inner", tid, ("COMPLETED", "FAILED"))
        self.assertEqual(result["self"], "RUNNING")
        self.assertEqual(task["status"], "FAILED")
        self.assertIn("close() called from a handler", task["details"]["error"])
        self.assertFalse(self.m.closed)

    def test_job_is_unusable_after_its_handler_returned(self):
        kept = []
        self.m.register("keep", run=lambda job: kept.append(job) or "COMPLETED")
        tid = self.m.trigger("keep")["task_id"]
        self.wait_status("keep", tid, ("COMPLETED",))
        with self.assertRaises(taskmgr.InvalidArgument):
            kept[0].message("too late")
        with self.assertRaises(taskmgr.InvalidArgument):
            kept[0].cancelled()
        self.assertEqual(kept[0].task_id, tid)

    def test_retries_rerun_the_handler_with_the_next_attempt(self):
        attempts = []

        def run(job):
            attempts.append(job.attempt)
            if job.attempt < 2:
                raise RuntimeError("transient")
            return "COMPLETED"

        self.m.register("flaky", run=run, max_attempts=2, retry_backoff_s=0.01)
        tid = self.m.trigger("flaky")["task_id"]
        task = self.wait_status("flaky", tid, ("COMPLETED", "FAILED", "CANCELLED"))
        self.assertEqual(task["status"], "COMPLETED", task)
        self.assertEqual(attempts, [1, 2])

    def test_close_tells_a_running_handler_to_stop(self):
        path = store_path(os.path.join(self.dir, "closing"))
        started = threading.Event()
        saw_cancel = threading.Event()

        def run(job):
            started.set()
            while not job.cancelled():
                time.sleep(0.005)
            saw_cancel.set()
            return "CANCELLED"

        m = taskmgr.Manager(path, workers=1, nosync=True)
        m.register("long", run=run)
        m.trigger("long")
        self.assertTrue(started.wait(DEADLINE_S))
        m.close()
        self.assertTrue(saw_cancel.is_set())


if __name__ == "__main__":
    unittest.main(verbosity=2)
