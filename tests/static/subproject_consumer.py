#!/usr/bin/env python3
"""libtaskmgr as a Meson subproject (suite 'static').

  subproject_consumer.py --source SRC --consumer-dir DIR

Copies the consumer project DIR into a temporary directory, copies the
source tree SRC (without build directories) to its subprojects/taskmgr, then
runs meson setup, meson compile and the consumer binary on a fresh store.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile


def run(cmd, capture=False):
    print("$", " ".join(shlex.quote(c) for c in cmd), flush=True)
    res = subprocess.run(cmd, universal_newlines=True,
                         stdout=subprocess.PIPE if capture else None,
                         stderr=subprocess.STDOUT if capture else None)
    if res.returncode != 0:
        if capture:
            print(res.stdout)
        raise SystemExit("FAIL: exit status %d" % res.returncode)
    return res.stdout


def ignore_builds(src):
    """Leave out VCS data, build directories and run-time state."""
    def ignore(directory, names):
        skip = set()
        for n in names:
            p = os.path.join(directory, n)
            if n in (".git", "var", "__pycache__", "subprojects") and directory == src:
                skip.add(n)
            elif n == "__pycache__":
                skip.add(n)
            elif os.path.isdir(p) and (os.path.exists(os.path.join(p, "meson-private"))
                                       or os.path.exists(os.path.join(p, "build.ninja"))):
                skip.add(n)
        return skip
    return ignore


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--consumer-dir", required=True)
    args = ap.parse_args()
    if shutil.which("meson") is None:
        print("SKIP: meson not found")
        return 77
    src = os.path.abspath(args.source)

    with tempfile.TemporaryDirectory(prefix="tm-subproject-") as tmp:
        proj = os.path.join(tmp, "consumer")
        shutil.copytree(args.consumer_dir, proj)
        shutil.copytree(src, os.path.join(proj, "subprojects", "taskmgr"),
                        ignore=ignore_builds(src), symlinks=True)
        build = os.path.join(tmp, "build")
        out = run(["meson", "setup", build, proj, "--force-fallback-for=taskmgr",
                   "-Dwerror=true"], capture=True)
        if "Executing subproject taskmgr" not in out:
            print(out)
            raise SystemExit("FAIL: the subproject was not used")
        run(["meson", "compile", "-C", build], capture=True)
        for lib in ("libtaskmgr.so", "libtaskmgr.a"):
            if not os.path.exists(os.path.join(build, "subprojects", "taskmgr", "lib", lib)):
                raise SystemExit("FAIL: the subproject did not build %s" % lib)
        run([os.path.join(build, "consumer"), os.path.join(tmp, "store")])
    print("OK: a Meson project builds and runs with libtaskmgr as a subproject")
    return 0


if __name__ == "__main__":
    sys.exit(main())
