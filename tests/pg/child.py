"""Run by `scripts/pg-cluster run` for harness.py: talks to the server at
TM_TEST_PG_URL with psql and writes what it saw to INFO (JSON).

usage: child.py INFO check|fail|sleep|env|restart [PG_CLUSTER]
  check  connect, check the settings, create and drop a table; exit 0
  restart  PG_CLUSTER restart TM_TEST_PG_DIR: a new postmaster on the same
         port, the data kept; then restart with DOWN=2: the server refuses
         connections meanwhile and accepts them again afterwards; exit 0
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


def postmaster(d):
    with open(os.path.join(d, "data", "postmaster.pid")) as f:
        return int(f.readline())


def ready(url):
    """pg_isready's answer: True when the server accepts connections."""
    exe = os.path.join(os.path.dirname(psql_path()), "pg_isready")
    if not os.path.exists(exe):
        exe = shutil.which("pg_isready") or exe
    return subprocess.run([exe, "-q", "-d", url, "-t", "1"], timeout=30).returncode == 0


def restart_checks(url, d, pg_cluster, info):
    sql(url, "CREATE TABLE harness_restart (id int PRIMARY KEY)")
    sql(url, "INSERT INTO harness_restart VALUES (7)")
    pid, started = postmaster(d), sql(url, "SELECT pg_postmaster_start_time()")

    out = subprocess.run([pg_cluster, "restart", d], capture_output=True, text=True,
                         timeout=90)
    if out.returncode != 0:
        sys.exit(f"child: pg-cluster restart exited {out.returncode}: {out.stderr}")
    # It returns once the server accepts connections: no wait needed here.
    expect("rows after restart", sql(url, "SELECT id FROM harness_restart"), "7")
    if postmaster(d) == pid or sql(url, "SELECT pg_postmaster_start_time()") == started:
        sys.exit("child: pg-cluster restart did not restart the server")
    pid, started = postmaster(d), sql(url, "SELECT pg_postmaster_start_time()")

    # With DOWN: down for a while (seen refusing), then up again.
    p = subprocess.Popen([pg_cluster, "restart", d, "2"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    saw_down = False
    while p.poll() is None and time.monotonic() < deadline:
        if not ready(url):
            saw_down = True
            break
        time.sleep(0.05)
    try:
        err = p.communicate(timeout=90)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        sys.exit("child: pg-cluster restart DIR 2 did not return within 90 s")
    if p.returncode != 0:
        sys.exit(f"child: pg-cluster restart DIR 2 exited {p.returncode}: {err}")
    if not saw_down:
        sys.exit("child: pg-cluster restart DIR 2: the server never refused a connection")
    expect("rows after a restart with DOWN", sql(url, "SELECT id FROM harness_restart"), "7")
    if postmaster(d) == pid or sql(url, "SELECT pg_postmaster_start_time()") == started:
        sys.exit("child: pg-cluster restart DIR 2 did not restart the server")
    sql(url, "DROP TABLE harness_restart")

    # Not a cluster: refused, nothing touched.
    out = subprocess.run([pg_cluster, "restart", os.path.join(d, "sock")],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 1:
        sys.exit(f"child: pg-cluster restart of a non-cluster exited {out.returncode}")
    info["postmaster"] = postmaster(d)


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

    if mode == "restart":
        restart_checks(url, d, sys.argv[3], info)

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
