"""Proves scripts/pg-cluster: `run` gives CMD a real server and removes it.

usage: harness.py [PG_CLUSTER [CHILD]]   (defaults: this tree's)

1. run child.py check: psql connects, fsync is on, a table is created and
   dropped; afterwards no process of the cluster and no directory is left.
2. run child.py fail: `run` exits with the child's status (3); no leftovers.
3. SIGKILL to the whole run (what meson does to a test that outlives its
   SIGTERM): the watchdog still removes the cluster.
4. TM_TEST_PG_URL already set: CMD gets it and no server starts.
5. run child.py restart: `pg-cluster restart DIR` (and with DOWN) gives a
   new postmaster on the same port with the data kept; no leftovers.
Exit 77 (skip) only if pg-cluster reports the server binaries cannot be
installed (its status 69).
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PG_CLUSTER = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "scripts", "pg-cluster")
CHILD = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "child.py")
UNAVAILABLE = 69
SKIP = 77


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def clean_env():
    env = dict(os.environ)
    env.pop("TM_TEST_PG_URL", None)
    env.pop("TM_TEST_PG_DIR", None)
    return env


def leftovers(d):
    """Live processes that belong to the cluster in D: working directory in
    it (every server process) or D on the command line (server, watchdog)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if state == "Z":      # exited, waiting for its parent (init) to reap it
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        if cwd == d or cwd.startswith(d + "/") or d in cmd:
            found.append(f"{pid} [{state}] {cmd}")
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_gone(info, what, wait=0.0):
    d = info["dir"]
    deadline = time.monotonic() + wait
    while True:
        left = leftovers(d)
        if not left and not os.path.exists(d) and not alive(info["postmaster"]):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if os.path.exists(d):
        fail(f"{what}: {d} is left")
    if alive(info["postmaster"]):
        fail(f"{what}: postmaster {info['postmaster']} is still running")
    fail(f"{what}: processes left: {left}")


def run(args, env, **kw):
    t0 = time.monotonic()
    p = subprocess.run([PG_CLUSTER, "run", sys.executable, CHILD] + args,
                       env=env, timeout=60, **kw)
    return p.returncode, time.monotonic() - t0


def read_info(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{what}: child wrote no info: {e}")


SESSIONS = []   # runs started in a session of their own: killed on the way out


def on_term(signum, frame):
    # meson's SIGTERM on a timeout: unwind through the finally below.
    sys.exit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, on_term)
    tmp = tempfile.mkdtemp(prefix="pg-harness.")
    try:
        env = clean_env()

        # 1. A real server, used, then gone.
        path = os.path.join(tmp, "check.json")
        rc, took = run([path, "check"], env)
        if rc == UNAVAILABLE:
            print("SKIP: the PostgreSQL server binaries cannot be installed", flush=True)
            return SKIP
        if rc != 0:
            fail(f"run child.py check exited {rc}")
        info = read_info(path, "check")
        assert_gone(info, "after run")
        print(f"ok 1 - run: server at {info['url']} used and removed ({took:.1f}s)", flush=True)

        # 2. CMD's status comes back; still nothing left.
        path = os.path.join(tmp, "fail.json")
        rc, took = run([path, "fail"], env)
        if rc != 3:
            fail(f"run child.py fail exited {rc}, want 3")
        assert_gone(read_info(path, "fail"), "after a failing CMD")
        print(f"ok 2 - run passes on CMD's exit status 3 ({took:.1f}s)", flush=True)

        # 3. SIGKILL to the run's process group: no trap runs; the watchdog
        #    (in a session of its own, as the server is) removes the cluster.
        path = os.path.join(tmp, "sleep.json")
        p = subprocess.Popen([PG_CLUSTER, "run", sys.executable, CHILD, path, "sleep"],
                             env=env, start_new_session=True)
        SESSIONS.append(p)
        deadline = time.monotonic() + 45
        while not os.path.exists(path):
            if p.poll() is not None:
                fail(f"run child.py sleep exited early: {p.returncode}")
            if time.monotonic() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                fail("run child.py sleep: no server after 45s")
            time.sleep(0.05)
        info = read_info(path, "sleep")
        t0 = time.monotonic()
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        assert_gone(info, "after SIGKILL of the run", wait=20)
        print(f"ok 3 - SIGKILL of the run: cluster removed within "
              f"{time.monotonic() - t0:.1f}s", flush=True)

        # 4. A database given: passed through, nothing started.
        path = os.path.join(tmp, "env.json")
        given = "postgresql://nobody@127.0.0.1:1/elsewhere"
        rc, took = run([path, "env"], dict(env, TM_TEST_PG_URL=given))
        if rc != 0:
            fail(f"run with TM_TEST_PG_URL set exited {rc}")
        info = read_info(path, "env")
        if info["url"] != given or info["dir"] is not None:
            fail(f"run with TM_TEST_PG_URL set: child saw {info}")
        print(f"ok 4 - TM_TEST_PG_URL set: passed through, no server ({took:.1f}s)",
              flush=True)

        # 5. restart, plain and with a time down; then nothing left.
        path = os.path.join(tmp, "restart.json")
        rc, took = run([path, "restart", PG_CLUSTER], env)
        if rc != 0:
            fail(f"run child.py restart exited {rc}")
        assert_gone(read_info(path, "restart"), "after run with restarts")
        print(f"ok 5 - restart DIR [DOWN]: new server, same port, data kept ({took:.1f}s)",
              flush=True)
        return 0
    finally:
        # Out of meson's reach (another session): SIGKILL, as in 3; the
        # watchdog removes the cluster.
        for p in SESSIONS:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
