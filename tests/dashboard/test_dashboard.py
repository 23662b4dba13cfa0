"""The web dashboard in a real browser (suite 'dashboard', also 'http').

Installs what is missing as scripts/deps.sh does (Debian's Chromium, a
pinned playwright-core in the project's node cache), starts the real
taskmgr-server on a free loopback port with a tokens file and its own
store (PostgreSQL under meson test --setup pg, as every e2e test), and
runs browser.mjs, which signs in through the page, triggers tasks, watches
a progress bar move to COMPLETED, cancels a running task, pages, reads the
charts, and checks the CSP and the refusals shown.  Then checks through
the API what the page said, and that the server stops cleanly.

Exit status 77 (skipped) only when Chromium or playwright-core cannot be
installed; any other problem fails.  Screenshots go to $DASHBOARD_SHOTS.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import serverlib

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHROMIUM = os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium")
# Ten steps over this many seconds: several bar widths a second apart.
SIMULATE = 8
BROWSER_DEADLINE = 600   # the whole browser run, should something hang


def tools():
    """(node cache, None), or (None, why not) when they cannot be
    installed.  Quiet when everything is there already."""
    env = dict(os.environ, DEPS_SUDO_FLAGS="-n")   # never ask for a password
    p = subprocess.run(
        ["bash", "-c", '. "$1" && install_dashboard_deps >&2 && printf %s "$NODE_CACHE"',
         "deps", os.path.join(ROOT, "scripts", "deps.sh")],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, env=env)
    sys.stderr.write(p.stderr)
    if p.returncode != 0:
        return None, "scripts/deps.sh install_dashboard_deps failed (status %d)" % p.returncode
    if not os.access(CHROMIUM, os.X_OK):
        return None, "no Chromium at %s" % CHROMIUM
    if shutil.which("node") is None:
        return None, "no node"
    cache = p.stdout.strip()
    if not os.path.isfile(os.path.join(cache, "node_modules", "playwright-core", "package.json")):
        return None, "playwright-core is not in %s" % cache
    return cache, None


def run_browser(srv, cache, shots):
    env = dict(os.environ,
               DASH_URL="http://%s:%d" % srv.addr,
               DASH_TOKEN=srv.token("root"),
               DASH_FRONTEND_TOKEN=srv.token("frontend"),
               DASH_BAD_TOKEN="bad-" + os.urandom(16).hex(),
               DASH_NODE_CACHE=cache, DASH_CHROMIUM=CHROMIUM, DASH_SHOTS=shots)
    proc = subprocess.Popen(["node", os.path.join(HERE, "browser.mjs")], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True,
                            preexec_fn=serverlib._die_with_parent)
    result = None
    try:
        out, _ = proc.communicate(timeout=BROWSER_DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        print(out)
        raise AssertionError("the browser run did not end in %d s" % BROWSER_DEADLINE)
    print(out, end="")
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    if proc.returncode != 0 or result is None:
        raise AssertionError("browser.mjs failed (status %d)%s"
                             % (proc.returncode, srv.log_tail()))
    return result


def main():
    # Meson's timeout: stop the server and the browser on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not serverlib.SERVER:
        print("TASKMGR_SERVER is not set")
        return 1
    cache, why = tools()
    if cache is None:
        print("skipped: " + why)
        return SKIP
    shots = os.environ.get("DASHBOARD_SHOTS") or os.path.join(os.getcwd(), "dashboard-shots")
    tokens = serverlib.make_tokens()
    srv = serverlib.Server(tokens=tokens, workers=2, simulate=SIMULATE)
    try:
        srv.start()
        # For the details of a task with a warning, and of a FAILED one.
        srv.write_table("ragged.csv", "item_id,price\ni1,10\ni2\ni3,4\n")
        srv.write_table("broken.csv.gz", "not gzip data")
        result = run_browser(srv, cache, shots)
        # What the page showed is what the store holds.
        checks = [("ml_model_retrain", result["completed"], "COMPLETED"),
                  ("ml_new_users", result["cancelled"], "CANCELLED"),
                  ("ml_new_items", result["cancelled_in_details"], "CANCELLED"),
                  ("data_import", result["warned"], "COMPLETED"),
                  ("data_import", result["failed"], "FAILED")]
        for name, task_id, status in checks:
            got = srv.get(name, task_id)["status"]
            if got != status:
                raise AssertionError("%s %s is %s through the API, not %s"
                                     % (name, task_id, got, status))
        rc = srv.stop()
        if rc != 0:
            raise AssertionError("the server exited with %r%s" % (rc, srv.log_tail()))
        with open(srv.log_path, errors="replace") as f:
            log = f.read()
        if any(tok in log for tok in tokens.values()):
            raise AssertionError("a token in the server's log")
    finally:
        srv.cleanup()
    print("dashboard: every check passed; screenshots in " + shots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
