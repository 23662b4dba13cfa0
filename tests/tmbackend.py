"""The store the Python suites (http, ffi) test: what tests/backend.c is to
the Check suites.

TM_TEST_BACKEND unset or "lmdb": a store is the directory a test names.
"pg" (meson test --setup pg): the PostgreSQL database at TM_TEST_PG_URL,
in the schema t_<16 hex digits of the 64-bit FNV-1a hash of the
directory's normalised path> (the URI's taskmgr_schema parameter): the
same directory always names the same store, and the same one as in C.
The schemas this process named are dropped with psql (postgresql-client)
by drop_under(), and whatever is left when the process exits.
"""
import atexit
import os
import shutil
import subprocess
import sys
import threading
import unittest

BACKEND = os.environ.get("TM_TEST_BACKEND") or "lmdb"
if BACKEND not in ("lmdb", "pg"):
    raise SystemExit("TM_TEST_BACKEND must be lmdb or pg, not %r" % BACKEND)
PG = BACKEND == "pg"

_lock = threading.Lock()
_mapped = {}  # normalised path -> schema


def _url():
    url = os.environ.get("TM_TEST_PG_URL", "")
    if not url:
        raise SystemExit("TM_TEST_BACKEND=pg needs TM_TEST_PG_URL, the database "
                         "to test in (scripts/pg-cluster run sets it)")
    return url


def _normalise(path):
    """Empty and "." components and a trailing slash removed (not ".."),
    exactly as tests/backend.c does."""
    path = os.fspath(path)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    norm = "/".join(parts)
    if path.startswith("/"):
        norm = "/" + norm
    return norm or "."


def schema_of(path):
    h = 0xcbf29ce484222325
    for b in _normalise(path).encode():
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "t_%016x" % h


def store_path(path):
    """What tm_open (Manager, taskmgr-server --store) gets for the store
    named by the directory path."""
    if not PG:
        return os.fspath(path)
    url = _url()
    norm = _normalise(path)
    schema = schema_of(norm)
    with _lock:
        _mapped[norm] = schema
    sep = "&" if "?" in url else "?"
    if url.endswith(("?", "&")):
        sep = ""
    return "%s%staskmgr_schema=%s" % (url, sep, schema)


def _drop(schemas):
    if not schemas:
        return
    psql = shutil.which("psql")
    if psql is None:
        print("tests: psql not found: schemas %s not dropped" % ", ".join(schemas),
              file=sys.stderr)
        return
    sql = ("SET client_min_messages = warning; SET lock_timeout = '30s'; "
           "DROP SCHEMA IF EXISTS %s CASCADE" % ", ".join(sorted(schemas)))
    p = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", _url(),
                        "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=60)
    if p.returncode != 0:
        print("tests: cannot drop schemas %s: %s" % (", ".join(schemas), p.stdout),
              file=sys.stderr)


def drop_under(path):
    """Drop the schemas of path and of every path under it named here
    (nothing under LMDB).  Close the stores first."""
    if not PG:
        return
    top = _normalise(path)
    with _lock:
        gone = [n for n in _mapped if n == top or n.startswith(top.rstrip("/") + "/")]
        schemas = {_mapped.pop(n) for n in gone}
    schemas.add(schema_of(top))
    _drop(schemas)


def _drop_all():
    with _lock:
        schemas = set(_mapped.values())
        _mapped.clear()
    _drop(schemas)


if PG:
    atexit.register(_drop_all)


def lmdb_only(reason):
    """Decorator: a test about LMDB itself (its files), skipped under
    PostgreSQL with the reason."""
    return unittest.skipIf(PG, "skipped on PostgreSQL: " + reason)
