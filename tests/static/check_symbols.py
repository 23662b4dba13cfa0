#!/usr/bin/env python3
"""Symbol hygiene of the built library (suite 'static').

  check_symbols.py exports [--shared LIB] [--soname NAME] [--static LIB.a] --header H
      Every dynamic symbol the shared library defines is a public tm_ name
      declared in the header (never a tm__ internal, never a dependency's
      symbol); the soname is NAME.  With --static, every global symbol the
      archive defines starts with tm_, so a static link cannot clash with the
      host's own names.

  check_symbols.py header [--shared LIB] [--static LIB.a] --header H
      Every function the header declares (TM_EXTERN) is exported (by the
      shared library, else defined by the archive).

Exit 0 on success, 1 on failure, 77 (skipped) when nm is missing.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

VERSION_NODE = re.compile(r"^TASKMGR_[0-9_.]*$")


def header_functions(path):
    """Names of the functions declared TM_EXTERN in the header."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # Drop preprocessor lines, continuation lines included.
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    names = re.findall(r"\bTM_EXTERN\b[^;{}()]*?\b(tm_\w+)\s*\(", text)
    if not names:
        sys.exit("no TM_EXTERN declaration found in %s" % path)
    return set(names)


def run(cmd):
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    if res.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(cmd), res.stderr))
    return res.stdout


def dynamic_exports(nm, lib):
    """Defined dynamic symbols: {name: type}, version nodes left out."""
    out = {}
    for line in run([nm, "-D", "--defined-only", lib]).splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        kind, name = fields[-2], fields[-1]
        name = name.split("@", 1)[0]
        if kind == "A" and VERSION_NODE.match(name):
            continue
        out[name] = kind
    return out


def archive_globals(nm, lib):
    out = set()
    for line in run([nm, "-g", "--defined-only", lib]).splitlines():
        fields = line.split()
        if len(fields) >= 2 and not line.endswith(":"):
            out.add(fields[-1])
    return out


def soname(lib):
    readelf = shutil.which("readelf")
    if readelf is None:
        return None
    m = re.search(r"\(SONAME\).*\[(.*)\]", run([readelf, "-d", lib]))
    return m.group(1) if m else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["exports", "header"])
    ap.add_argument("--shared")
    ap.add_argument("--static")
    ap.add_argument("--soname")
    ap.add_argument("--header", required=True)
    ap.add_argument("--nm", default=os.environ.get("NM", "nm"))
    args = ap.parse_args()

    nm = shutil.which(args.nm)
    if nm is None:
        print("SKIP: %s not found" % args.nm)
        return 77
    if not args.shared and not args.static:
        ap.error("give --shared, --static or both")
    declared = header_functions(args.header)
    if args.shared:
        exported = dynamic_exports(nm, args.shared)
    else:  # a static-only build: the archive's globals stand for the exports
        exported = {n: "T" for n in archive_globals(nm, args.static)
                    if not n.startswith("tm__")}
    problems = []

    if args.mode == "exports":
        for name in sorted(exported):
            if not name.startswith("tm_") or name.startswith("tm__"):
                problems.append("exported but not public: %s (%s)"
                                % (name, exported[name]))
            elif name not in declared:
                problems.append("exported but not declared in %s: %s"
                                % (os.path.basename(args.header), name))
        if args.soname and args.shared:
            got = soname(args.shared)
            if got is not None and got != args.soname:
                problems.append("soname is %r, expected %r" % (got, args.soname))
        if args.static:
            for name in sorted(archive_globals(nm, args.static)):
                if not name.startswith("tm_"):
                    problems.append("%s defines a global outside tm_: %s"
                                    % (os.path.basename(args.static), name))
        print("%d symbols exported, %d functions declared"
              % (len(exported), len(declared)))
    else:
        for name in sorted(declared - set(exported)):
            problems.append("declared in %s but not exported: %s"
                            % (os.path.basename(args.header), name))
        for name in sorted(declared & set(exported)):
            if exported[name] not in ("T", "W", "i"):
                problems.append("%s is exported as %r, not as a function"
                                % (name, exported[name]))
        print("%d header functions, %d exported"
              % (len(declared), len(declared & set(exported))))

    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
