"""Run by `scripts/pg-cluster run` for harness.py: talks to the server at
TM_TEST_PG_URL with psql and writes what it saw to INFO (JSON).

usage: child.py INFO check|fail|sleep|env
  check  connect, check the settings, create and drop a table; exit 0
  fail   write INFO, then exit 3 (the status `run` must pass on)
  sleep  write INFO, then sleep (harness.py kills the run)
  env    write the TM_TEST_PG_* variables only (nothing is asked of a server)
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse


def psql_path():
    found = shutil.which("psql")
    if found:
        return found
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not cands:
        sys.exit("child: no psql")
    return cands[-1]


def sql(url, query):
    out = subprocess.run([psql_path(), url, "-X", "-A", "-t", "-q",
                          "-v", "ON_ERROR_STOP=1", "-c", query],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        sys.exit(f"child: psql {query!r} failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout.strip()


def expect(what, got, want):
    if got != want:
        sys.exit(f"child: {what}: got {got!r}, want {want!r}")


def main():
    info_path, mode = sys.argv[1], sys.argv[2]
    url = os.environ.get("TM_TEST_PG_URL")
    d = os.environ.get("TM_TEST_PG_DIR")
    info = {"url": url, "dir": d}
    if mode == "env":
        with open(info_path, "w") as f:
            json.dump(info, f)
        return 0
    if not url or not d:
        sys.exit("child: TM_TEST_PG_URL and TM_TEST_PG_DIR must be set")
    u = urllib.parse.urlsplit(url)
    expect("URL scheme", u.scheme, "postgresql")
    expect("URL host", u.hostname, "127.0.0.1")
    expect("URL database", u.path, "/taskmgr_test")
    info["port"] = u.port
    with open(os.path.join(d, "data", "postmaster.pid")) as f:
        info["postmaster"] = int(f.readline())

    if mode == "check":
        expect("select 1", sql(url, "select 1"), "1")
        expect("fsync", sql(url, "SHOW fsync"), "on")
        expect("synchronous_commit", sql(url, "SHOW synchronous_commit"), "on")
        expect("listen_addresses", sql(url, "SHOW listen_addresses"), "127.0.0.1")
        expect("database", sql(url, "select current_database()"), "taskmgr_test")
        sql(url, "CREATE TABLE harness_probe (id int PRIMARY KEY, v text NOT NULL)")
        sql(url, "INSERT INTO harness_probe VALUES (1, 'a'), (2, 'b')")
        expect("rows", sql(url, "SELECT count(*) FROM harness_probe"), "2")
        sql(url, "DROP TABLE harness_probe")
        expect("table dropped", sql(url, "SELECT to_regclass('harness_probe') IS NULL"), "t")

    with open(info_path + ".tmp", "w") as f:
        json.dump(info, f)
    os.replace(info_path + ".tmp", info_path)
    if mode == "fail":
        return 3
    if mode == "sleep":
        time.sleep(120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
