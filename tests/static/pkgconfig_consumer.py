#!/usr/bin/env python3
"""Out-of-tree consumer through `meson install` and pkg-config (suite 'static').

  pkgconfig_consumer.py --source SRC --consumer consumer.c --version V
                        --soversion N [--cc CC...]

Configures a separate build of SRC with default_library=both, installs it
into a temporary DESTDIR, checks the installed layout, then builds
consumer.c twice using only what pkg-config says about `taskmgr` (shared,
then static with Requires.private/Libs.private) and runs each binary on a
store in a temporary directory.

The build is made without the PostgreSQL store: Debian's libpq-dev ships
no static libpgcommon/libpgport, so a static link of libpq fails there.
"""
import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

PREFIX = "/opt/taskmgr"   # not a system directory: pkg-config filters those


def run(cmd, env=None, capture=False):
    print("$", " ".join(shlex.quote(c) for c in cmd), flush=True)
    res = subprocess.run(cmd, env=env, universal_newlines=True,
                         stdout=subprocess.PIPE if capture else None)
    if res.returncode != 0:
        raise SystemExit("FAIL: exit status %d" % res.returncode)
    return res.stdout


def needed(path):
    readelf = shutil.which("readelf")
    if readelf is None:
        return None
    out = subprocess.run([readelf, "-d", path], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    return [l.split("[", 1)[1].rstrip("]") for l in out.splitlines() if "(NEEDED)" in l]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--consumer", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--soversion", required=True)
    ap.add_argument("--cc", nargs="+", default=[os.environ.get("CC", "cc")])
    args = ap.parse_args()
    for tool in ("meson", "pkg-config"):
        if shutil.which(tool) is None:
            print("SKIP: %s not found" % tool)
            return 77

    problems = []
    with tempfile.TemporaryDirectory(prefix="tm-install-") as tmp:
        build = os.path.join(tmp, "build")
        dest = os.path.join(tmp, "dest")
        env = dict(os.environ)
        env.pop("DESTDIR", None)
        run(["meson", "setup", build, args.source, "--prefix=" + PREFIX,
             "-Ddefault_library=both", "-Dtests=disabled", "-Dexamples=false",
             "-Dpostgresql=disabled", "-Dbuildtype=debug", "-Dwerror=true"],
            env=env, capture=True)
        run(["meson", "compile", "-C", build], env=env, capture=True)
        run(["meson", "install", "-C", build, "--no-rebuild", "--destdir", dest],
            env=env, capture=True)

        # Layout: header, versioned shared library, static library, .pc.
        pcs = glob.glob(os.path.join(dest + PREFIX, "**", "pkgconfig", "taskmgr.pc"),
                        recursive=True)
        if len(pcs) != 1:
            raise SystemExit("FAIL: expected one installed taskmgr.pc, found %s" % pcs)
        pcdir = os.path.dirname(pcs[0])
        libdir = os.path.dirname(pcdir)
        soname = "libtaskmgr.so." + args.soversion
        real = "libtaskmgr.so." + args.version
        expect = {
            os.path.join(dest + PREFIX, "include", "taskmgr.h"): None,
            os.path.join(libdir, real): None,
            os.path.join(libdir, soname): real,
            os.path.join(libdir, "libtaskmgr.so"): soname,
            os.path.join(libdir, "libtaskmgr.a"): None,
        }
        for path, link in expect.items():
            if not os.path.exists(path):
                problems.append("not installed: %s" % os.path.relpath(path, dest))
            elif link is not None and (not os.path.islink(path)
                                       or os.readlink(path) != link):
                problems.append("%s should be a symlink to %s" % (path, link))
        print("installed:", *sorted(os.path.relpath(p, dest) for p in
              glob.glob(os.path.join(dest, "**"), recursive=True)
              if not os.path.isdir(p)), sep="\n  ")

        # What a consumer sees through pkg-config, with the DESTDIR as sysroot.
        pkenv = dict(env)
        pkenv["PKG_CONFIG_PATH"] = os.pathsep.join(
            filter(None, [pcdir, env.get("PKG_CONFIG_PATH")]))
        pkenv["PKG_CONFIG_SYSROOT_DIR"] = dest
        pk = ["pkg-config"]
        version = run(pk + ["--modversion", "taskmgr"], env=pkenv, capture=True).strip()
        if version != args.version:
            problems.append("pkg-config version %r, expected %r" % (version, args.version))
        reqs = run(pk + ["--print-requires-private", "taskmgr"], env=pkenv,
                   capture=True).split()
        for r in ("lmdb", "libcjson"):
            if r not in reqs:
                problems.append("Requires.private lacks %s: %s" % (r, reqs))

        flags = shlex.split(run(pk + ["--cflags", "--libs", "taskmgr"],
                                env=pkenv, capture=True))
        exe = os.path.join(tmp, "consumer-shared")
        run(args.cc + ["-std=c11", "-Wall", "-Werror", args.consumer, "-o", exe] + flags,
            env=env)
        deps = needed(exe)
        if deps is not None and soname not in deps:
            problems.append("consumer-shared does not need %s: %s" % (soname, deps))
        renv = dict(env)
        renv["LD_LIBRARY_PATH"] = os.pathsep.join(
            filter(None, [libdir, env.get("LD_LIBRARY_PATH")]))
        run([exe, os.path.join(tmp, "store-shared")], env=renv)

        # Static: the archive plus the private requirements from the .pc.
        flags = shlex.split(run(pk + ["--static", "--cflags", "--libs", "taskmgr"],
                                env=pkenv, capture=True))
        archive = os.path.join(libdir, "libtaskmgr.a")
        flags = [archive if f == "-ltaskmgr" else f for f in flags]
        exe = os.path.join(tmp, "consumer-static")
        run(args.cc + ["-std=c11", "-Wall", "-Werror", args.consumer, "-o", exe] + flags,
            env=env)
        deps = needed(exe)
        if deps is not None and any(d.startswith("libtaskmgr") for d in deps):
            problems.append("consumer-static still needs the shared library: %s" % deps)
        run([exe, os.path.join(tmp, "store-static")], env=env)

    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
