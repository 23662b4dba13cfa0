#!/usr/bin/env python3
"""Suite 'ffi': the binding as an installable package (examples/python).

`pip install --no-build-isolation` of a copy of examples/python into a
throwaway virtual environment, offline (--no-index), then the package is
imported and used from there, with PYTHONPATH cleared so that the source
tree cannot be what answers.  Skipped, saying why, only where this Python
cannot make a virtual environment with pip and setuptools.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

import taskmgr
from tmbackend import drop_under, store_path

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "python"))
TIMEOUT_S = 300
MODULES = ["taskmgr/__init__.py", "taskmgr/_errors.py", "taskmgr/_manager.py",
           "taskmgr/_native.py", "taskmgr/py.typed"]


def clean_env(preload, **extra):
    """The environment of a user's shell: no PYTHONPATH pointing at the
    source tree, pip offline and quiet.  The sanitizer runtime Meson
    preloads (LD_PRELOAD) only where the library is loaded: it slows pip."""
    env = dict(os.environ)
    for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"):
        env.pop(k, None)
    if not preload:
        env.pop("LD_PRELOAD", None)
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.update(extra)
    return env


def run(cmd, cwd, preload=False, **env):
    return subprocess.run(cmd, cwd=cwd, env=clean_env(preload, **env),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=TIMEOUT_S)


class Venv:
    """A virtual environment that sees this Python's packages, as
    `python3 -m venv --system-site-packages` makes it."""

    @staticmethod
    def make(path):
        """(its python, setuptools' version there), or (None, why not)."""
        # Without pip first (fast): this Python's pip and setuptools serve.
        # Else with its own pip, as ensurepip installs it.
        why = []
        for flags in (["--without-pip"], []):
            shutil.rmtree(path, ignore_errors=True)
            made = run([sys.executable, "-m", "venv", "--system-site-packages"] + flags
                       + [path], cwd=os.path.dirname(path))
            if made.returncode:
                why.append("python3 -m venv %s failed: %s"
                           % (" ".join(flags), made.stdout.strip()[-300:]))
                continue
            python = os.path.join(path, "bin", "python")
            probe = run([python, "-c", "import setuptools, pip; print(setuptools.__version__)"],
                        cwd=path)
            if probe.returncode == 0:
                return python, probe.stdout.strip().splitlines()[-1]
            why.append("a venv made %s has no pip or no setuptools: %s"
                       % (" ".join(flags) or "with pip", probe.stdout.strip()[-300:]))
        return None, "; ".join(why)


class PackageInstall(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tm-ffi-pkg-")
        # A copy, so that whatever the build writes cannot land in the tree.
        cls.project = os.path.join(cls.tmp, "python")
        shutil.copytree(PROJECT, cls.project, ignore=shutil.ignore_patterns(
            "build", "dist", "*.egg-info", "__pycache__"))
        cls.python, version = Venv.make(os.path.join(cls.tmp, "venv"))
        if cls.python is None:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise unittest.SkipTest("cannot make a virtual environment with pip "
                                    "and setuptools from %s: %s" % (sys.executable, version))
        major = version.split(".")[0]
        if not major.isdigit() or int(major) < 61:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise unittest.SkipTest(
                "pip install --no-build-isolation needs setuptools >= 61 in the "
                "environment; %s has %s" % (sys.executable, version))
        cls.install = run([cls.python, "-m", "pip", "install", "--no-build-isolation",
                           "--no-index", "--no-deps", cls.project], cwd=cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def in_venv(self, code, python=None, preload=False, **env):
        """Run code with the venv's python, out of any source directory;
        its last line of output, parsed as JSON."""
        out = run([python or self.python, "-c", textwrap.dedent(code)], cwd=self.tmp,
                  preload=preload, **env)
        self.assertEqual(out.returncode, 0, out.stdout)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def setUp(self):
        self.assertEqual(self.install.returncode, 0,
                         "pip install --no-build-isolation failed:\n" + self.install.stdout)

    def test_pip_install_no_build_isolation_offline_installs_the_package(self):
        self.assertIn("Successfully installed taskmgr-" + taskmgr.__version__,
                      self.install.stdout)
        got = self.in_venv("""
            import importlib.metadata as md, json, sys, taskmgr
            print(json.dumps({"file": taskmgr.__file__, "version": taskmgr.__version__,
                              "dist": md.version("taskmgr"), "prefix": sys.prefix,
                              "all": sorted(taskmgr.__all__)}))
        """)
        venv = os.path.join(self.tmp, "venv")
        self.assertTrue(got["file"].startswith(venv + os.sep), got)
        self.assertEqual(got["version"], taskmgr.__version__)
        self.assertEqual(got["dist"], taskmgr.__version__)
        self.assertEqual(got["all"], sorted(taskmgr.__all__))

    def test_the_wheel_ships_the_modules_and_the_type_hint_marker(self):
        got = self.in_venv("""
            import importlib.metadata as md, json, os, taskmgr
            files = [str(f) for f in md.files("taskmgr")]
            marker = os.path.join(os.path.dirname(taskmgr.__file__), "py.typed")
            print(json.dumps({"files": files, "marker": os.path.isfile(marker),
                              "classifiers": md.metadata("taskmgr").get_all("Classifier")}))
        """)
        for module in MODULES:
            self.assertIn(module, got["files"])
        self.assertTrue(got["marker"], "py.typed is not installed next to the package")
        self.assertIn("Typing :: Typed", got["classifiers"])
        # Only the package: not the build backend, not the tests.
        self.assertEqual([f for f in got["files"] if not f.startswith(("taskmgr/",
                                                                       "taskmgr-"))], [])

    def test_the_installed_package_runs_a_task_on_the_built_library(self):
        store = store_path(os.path.join(self.tmp, "store"))
        self.addCleanup(drop_under, self.tmp)
        got = self.in_venv("""
            import json, taskmgr
            with taskmgr.Manager(%r, workers=1, nosync=True) as m:
                m.register("noop", run=lambda job: "COMPLETED")
                task_id = m.trigger("noop")["task_id"]
                task = m.wait("noop", task_id, timeout_s=30)
                try:
                    m.get("noop", "A" * 20)
                except taskmgr.TaskNotFound as e:
                    error = [type(e).__module__, type(e).__name__, e.error_name]
            print(json.dumps({"status": task["status"], "error": error}))
        """ % store, preload=True, TASKMGR_LIBRARY=os.path.abspath(os.environ["TASKMGR_LIBRARY"])
                        if os.environ.get("TASKMGR_LIBRARY") else "")
        self.assertEqual(got, {"status": "COMPLETED",
                               "error": ["taskmgr", "TaskNotFound", "TASK_NOT_FOUND"]})

    def test_the_build_leaves_nothing_in_the_project(self):
        left = []
        for top, dirs, files in os.walk(self.project):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            left += [os.path.relpath(os.path.join(top, n), self.project)
                     for n in dirs + files]
        want = []
        for top, dirs, files in os.walk(PROJECT):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "build", "dist")
                       and not d.endswith(".egg-info")]
            want += [os.path.relpath(os.path.join(top, n), PROJECT) for n in dirs + files]
        self.assertEqual(sorted(left), sorted(want))

    def test_editable_install_imports_from_the_project(self):
        python, why = Venv.make(os.path.join(self.tmp, "venv-editable"))
        self.assertIsNotNone(python, why)
        # Its own copy: setuptools may write its egg-info in place for this.
        project = os.path.join(self.tmp, "python-editable")
        shutil.copytree(self.project, project)
        out = run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                   "--no-deps", "--editable", project], cwd=self.tmp)
        self.assertEqual(out.returncode, 0, out.stdout)
        got = self.in_venv("import json, taskmgr; print(json.dumps(taskmgr.__file__))",
                           python=python)
        self.assertEqual(got, os.path.join(project, "taskmgr", "__init__.py"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
