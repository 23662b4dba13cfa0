"""The PostgreSQL store's schema (PostgreSQL only).

1. Ten node processes opening one new store at the same instant (released
   together by closing a pipe) all open it; the schema is created once, at
   the version the library writes, and the tasks each node then triggers
   are all there.
2. The store lives in the schema the URI names (taskmgr_schema), beside
   other schemas of the same database: two schemas are two stores, and a
   table of the host's own in the database is left alone.
3. A store written by a newer schema version is refused with STORAGE_ERROR
   and a message naming both versions, and nothing is changed.
4. A bad taskmgr_schema or taskmgr_timeout_ms is INVALID_ARGUMENT, and
   creates nothing.
5. A store of schema 1 is migrated to schema 2 when opened: the finals
   table is made and counts each name's final tasks, as tm_check
   verifies, and writes go on counting them."""
import os
import secrets
import sys

import mnlib
from mnlib import Skip, check

import subprocess

import taskmgr

NODES = 10
OPENER = r"""
import os, sys
import subprocess

import taskmgr
gate, uri, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
os.read(gate, 1)  # end of file: go
with taskmgr.Manager(uri, workers=0) as m:
    m.register(name, None)
    print(m.trigger(name, {})["task_id"], flush=True)
"""


def fresh(base, tag):
    schema = "mn_%s_%s" % (tag, secrets.token_hex(4))
    uri = mnlib.uri_with(base, "taskmgr_schema", schema)
    mnlib._cleanups.append(lambda: mnlib.psql(base, "DROP SCHEMA IF EXISTS %s CASCADE" % schema))
    return schema, uri


def pg_base():
    base = mnlib.store_base()
    if not mnlib.is_pg(base):
        raise Skip("LMDB store: the schema is PostgreSQL's (PostgreSQL only)")
    return base


def test_ten_nodes_create_the_schema_once(make):
    base = pg_base()
    schema, uri = fresh(base, "ten")
    r, w = os.pipe()
    procs = []
    for _ in range(NODES):
        procs.append(subprocess.Popen(
            [sys.executable, "-c", OPENER, str(r), uri, "job"],
            pass_fds=(r,), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    os.close(r)
    os.close(w)  # all go at once
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        check(p.returncode == 0, "a node failed to open the new store: %s" % err.strip())
        ids.append(out.strip())
    check(mnlib.psql(base, "SELECT value FROM %s.meta WHERE key = 'schema'" % schema) == "2",
          "schema version")
    tables = mnlib.psql(base, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM "
                        "pg_tables WHERE schemaname = '%s'" % schema)
    check(tables == "finals,meta,names,secrets,tasks", "tables: %s" % tables)
    with taskmgr.Manager(uri, workers=0) as m:
        m.register("job", None)
        listed = {t["task_id"] for t in m.iter_recent("job")}
    check(listed == set(ids) and len(ids) == NODES,
          "tasks: %d listed, %d acknowledged" % (len(listed), len(ids)))


def test_two_schemas_are_two_stores(make):
    base = pg_base()
    s1, u1 = fresh(base, "one")
    s2, u2 = fresh(base, "two")
    host = "mn_host_%s" % secrets.token_hex(4)
    mnlib._cleanups.append(lambda: mnlib.psql(base, "DROP TABLE IF EXISTS public.%s" % host))
    mnlib.psql(base, "CREATE TABLE public.%s (id int); INSERT INTO public.%s VALUES (7)"
               % (host, host))
    with taskmgr.Manager(u1, workers=0) as m1, taskmgr.Manager(u2, workers=0) as m2:
        m1.register("job", None)
        m2.register("job", None)
        a = m1.trigger("job", {})["task_id"]
        b = m2.trigger("job", {})["task_id"]
        check([t["task_id"] for t in m1.iter_recent("job")] == [a], "store one")
        check([t["task_id"] for t in m2.iter_recent("job")] == [b], "store two")
    check(mnlib.psql(base, "SELECT count(*) FROM %s.tasks" % s1) == "1", "rows in one")
    check(mnlib.psql(base, "SELECT id FROM public.%s" % host) == "7", "the host's table")


def test_a_newer_schema_is_refused(make):
    base = pg_base()
    schema, uri = fresh(base, "new")
    with taskmgr.Manager(uri, workers=0) as m:
        m.register("job", None)
        m.trigger("job", {})
    mnlib.psql(base, "UPDATE %s.meta SET value = 99 WHERE key = 'schema'" % schema)
    try:
        taskmgr.Manager(uri, workers=0).close()
        raise mnlib.Failed("a store of schema 99 was opened")
    except taskmgr.StorageError as e:
        check("schema 99" in str(e) and "up to schema 2" in str(e), "message: %s" % e)
    check(mnlib.psql(base, "SELECT value FROM %s.meta WHERE key = 'schema'" % schema) == "99",
          "the refused store was changed")
    check(mnlib.psql(base, "SELECT count(*) FROM %s.tasks" % schema) == "1", "tasks changed")


def test_schema_1_is_migrated(make):
    base = pg_base()
    schema, uri = fresh(base, "old")
    with taskmgr.Manager(uri, workers=0) as m:
        m.register("job", None)
        ids = [m.trigger("job", {})["task_id"] for _ in range(7)]
        for i in ids[:5]:
            m.patch("job", i, {"completed": True})
    # What a store written by schema 1 looks like: no finals table.
    mnlib.psql(base, "DROP TABLE %s.finals; UPDATE %s.meta SET value = 1 WHERE key = 'schema'"
               % (schema, schema))
    with taskmgr.Manager(uri, workers=0) as m:
        check(m.check()["ok"], "check after the migration: %s" % m.check())
        check(mnlib.psql(base, "SELECT value FROM %s.meta WHERE key = 'schema'" % schema) == "2",
              "schema version")
        check(mnlib.psql(base, "SELECT sum(n) FROM %s.finals WHERE name = 'job'" % schema) == "5",
              "final tasks counted")
        m.register("job", None)
        m.patch("job", ids[5], {"completed": True})
        check(mnlib.psql(base, "SELECT sum(n) FROM %s.finals WHERE name = 'job'" % schema) == "6",
              "final tasks counted after the migration")
        check(m.check()["ok"], "check after a final write: %s" % m.check())


def test_bad_parameters_are_invalid_and_create_nothing(make):
    base = pg_base()
    for key, value in (("taskmgr_schema", "Bad-Name"), ("taskmgr_schema", "1abc"),
                       ("taskmgr_schema", "x" * 59), ("taskmgr_timeout_ms", "5"),
                       ("taskmgr_timeout_ms", "ten")):
        before = mnlib.psql(base, "SELECT count(*) FROM pg_namespace")
        try:
            taskmgr.Manager(mnlib.uri_with(base, key, value), workers=0).close()
            raise mnlib.Failed("%s=%s was accepted" % (key, value))
        except taskmgr.InvalidArgument as e:
            check(key in str(e), "%s=%s: message %s" % (key, value, e))
        check(mnlib.psql(base, "SELECT count(*) FROM pg_namespace") == before,
              "%s=%s created a schema" % (key, value))


if __name__ == "__main__":
    mnlib.run_tests([test_ten_nodes_create_the_schema_once, test_two_schemas_are_two_stores,
                     test_a_newer_schema_is_refused, test_schema_1_is_migrated,
                     test_bad_parameters_are_invalid_and_create_nothing])
