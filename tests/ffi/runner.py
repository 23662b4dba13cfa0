#!/usr/bin/env python3
"""Run test files of the ffi suite: under pytest when this Python has it,
else under the standard library's unittest.

  runner.py TEST_FILE...

The tests are unittest.TestCase methods, which both runners collect.
TASKMGR_TEST_RUNNER=pytest or =unittest forces one (pytest then must be
installed).  Exit status: 0 when the tests passed, 77 (Meson's SKIP) when
every test was skipped, 1 otherwise -- also when no test ran at all, so
that a file that collects nothing cannot pass.
"""
import importlib
import importlib.util
import os
import sys
import unittest

SKIP = 77


def with_pytest(files):
    import pytest

    class Tally:
        passed = skipped = 0

        def pytest_runtest_logreport(self, report):
            if report.skipped:
                self.skipped += 1
            elif report.when == "call" and report.passed:
                self.passed += 1

    tally = Tally()
    rc = pytest.main(["-p", "no:cacheprovider", "-rs", "-v"] + files, plugins=[tally])
    if rc != 0:
        return 1
    if tally.passed == 0:
        return SKIP if tally.skipped else 1
    return 0


def with_unittest(files):
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for f in files:
        directory, name = os.path.split(os.path.abspath(f))
        sys.path.insert(0, directory)
        suite.addTests(loader.loadTestsFromModule(importlib.import_module(name[:-3])))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    # A class skipped in setUpClass is one entry of result.skipped, not a
    # TestCase, and its tests do not count in testsRun.
    passed = result.testsRun - len([t for t, _ in result.skipped
                                    if isinstance(t, unittest.TestCase)])
    if passed > 0:
        return 0
    if result.skipped:
        return SKIP
    print("no test ran", file=sys.stderr)
    return 1


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    choice = os.environ.get("TASKMGR_TEST_RUNNER", "")
    if choice not in ("", "pytest", "unittest"):
        print("TASKMGR_TEST_RUNNER must be pytest or unittest", file=sys.stderr)
        return 2
    if choice == "pytest" or (not choice and importlib.util.find_spec("pytest")):
        print("runner: pytest", file=sys.stderr)
        return with_pytest(argv[1:])
    print("runner: unittest", file=sys.stderr)
    return with_unittest(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
