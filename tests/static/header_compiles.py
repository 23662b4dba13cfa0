#!/usr/bin/env python3
"""The public header compiles alone, strictly (suite 'static').

  header_compiles.py --std c99|c11 --cc CC... --include DIR
  header_compiles.py --std c++11 --cxx CXX... --include DIR [--link LIB [--link-arg ARG]...]

Compiles a translation unit that includes only taskmgr.h (twice, for the
include guard) with -pedantic -Werror and strict warnings.  For C++, with
--link, it also links the unit against the built shared library and runs
it, which proves the declarations have C linkage.  Exit 77 (skipped) when
the compiler is missing.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

C_UNIT = r"""
#include <taskmgr.h>
#include <taskmgr.h>

/* Every type, constant and flag is usable from strict C. */
typedef char tm_header_check[(sizeof(tm_options) > 0 && sizeof(tm_job_def) > 0
                              && TM_OK == 0 && TM_EINVAL < 0
                              && TM_COMPLETED > TM_REQUEST_SENT
                              && (TM_PUBLIC | TM_OPEN_NOSYNC | TM_JOB_PUBLIC
                                  | TM_JOB_EXCLUSIVE) != 0
                              && TM_TASK_ID_LEN == 20) ? 1 : -1];

int tm_header_unit(tm_options *o, tm_job_def *d);
int tm_header_unit(tm_options *o, tm_job_def *d)
{
	tm_options o2 = TM_OPTIONS_INIT;
	tm_job_def d2 = TM_JOB_DEF_INIT;

	if (tm_options_init(o, TM_OPTIONS_VERSION) || tm_job_def_init(d, TM_JOB_DEF_VERSION))
		return -1;
	(void)o2;
	(void)d2;
	return (int)sizeof(tm_header_check) + (int)d->version + (int)o->version;
}
"""

CXX_UNIT = r"""
#include <taskmgr.h>
#include <taskmgr.h>

#include <cstdio>
#include <cstring>

int main()
{
	tm_options opts;
	tm_job_def def;

	tm_options init = TM_OPTIONS_INIT;
	tm_job_def dinit = TM_JOB_DEF_INIT;

	if (tm_options_init(&opts, TM_OPTIONS_VERSION) || tm_job_def_init(&def, TM_JOB_DEF_VERSION))
		return 1;
	if (init.workers != opts.workers || dinit.timeout_s != def.timeout_s)
		return 1;
	if (opts.version != TM_OPTIONS_VERSION || def.version != TM_JOB_DEF_VERSION)
		return 1;
	if (std::strcmp(tm_version(), TM_VERSION_STRING) != 0)
		return 1;
	if (std::strcmp(tm_error_name(TM_EWRONG_DATA), "WRONG_DATA_TYPE") != 0)
		return 1;
	std::printf("C++ caller linked against libtaskmgr %s\n", tm_version());
	return 0;
}
"""

C_FLAGS = ["-pedantic", "-Werror", "-Wall", "-Wextra", "-Wstrict-prototypes",
           "-Wmissing-prototypes", "-Wundef", "-Wshadow", "-Wcast-qual"]
CXX_FLAGS = ["-pedantic", "-Werror", "-Wall", "-Wextra", "-Wundef",
             "-Wshadow", "-Wold-style-cast", "-Wzero-as-null-pointer-constant"]


def run(cmd, **kw):
    print("$", " ".join(shlex.quote(c) for c in cmd), flush=True)
    res = subprocess.run(cmd, **kw)
    return res.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--std", required=True)
    ap.add_argument("--cc", nargs="+")
    ap.add_argument("--cxx", nargs="+")
    ap.add_argument("--include", required=True)
    ap.add_argument("--link")
    ap.add_argument("--link-arg", action="append", default=[])
    args = ap.parse_args()

    cxx = args.std.startswith("c++")
    compiler = (args.cxx if cxx else args.cc) or [os.environ.get("CXX" if cxx else "CC",
                                                                  "c++" if cxx else "cc")]
    if shutil.which(compiler[-1]) is None and shutil.which(compiler[0]) is None:
        print("SKIP: no compiler %s" % compiler)
        return 77

    with tempfile.TemporaryDirectory(prefix="tm-header-") as tmp:
        src = os.path.join(tmp, "unit.cpp" if cxx else "unit.c")
        with open(src, "w") as f:
            f.write(CXX_UNIT if cxx else C_UNIT)
        flags = ["-std=" + args.std] + (CXX_FLAGS if cxx else C_FLAGS)
        obj = os.path.join(tmp, "unit.o")
        if run(compiler + flags + ["-I", args.include, "-c", src, "-o", obj]):
            print("FAIL: taskmgr.h does not compile as %s" % args.std)
            return 1
        if cxx and args.link:
            exe = os.path.join(tmp, "unit")
            libdir = os.path.dirname(os.path.abspath(args.link))
            if run(compiler + [obj, "-o", exe, args.link] + args.link_arg):
                print("FAIL: a C++ caller does not link against %s" % args.link)
                return 1
            env = dict(os.environ)
            env["LD_LIBRARY_PATH"] = os.pathsep.join(
                filter(None, [libdir, env.get("LD_LIBRARY_PATH")]))
            if run([exe], env=env):
                print("FAIL: the C++ caller did not run")
                return 1
    print("OK: taskmgr.h compiles as %s -pedantic -Werror" % args.std)
    return 0


if __name__ == "__main__":
    sys.exit(main())
