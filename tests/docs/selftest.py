#!/usr/bin/env python3
"""Self-test of scripts/doctest (suite 'docs').

  selftest.py RUNNER BUILD FIXTURE.md

Runs the runner on the fixture, whose blocks are mostly wrong on purpose,
and checks that it reports, for every block, the status of the
`<!-- expect: STATUS -->` comment before it (ok, FAIL, skipped, checked),
for a `<!-- expect: FAIL: REASON -->` the text REASON in the block's
failure report, and that it exits with status 1.  So the runner cannot pass everything
silently, nor stop checking one kind of drift unnoticed.
"""
import re
import subprocess
import sys


def expectations(path):
    """{line of the opening fence: (expected status, reason or None)}."""
    want, pending, in_block = {}, None, False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if re.match(r"^```", line):
                if not in_block:
                    if pending is None:
                        raise SystemExit("%s:%d: a block without an expect comment" % (path, n))
                    want[n] = pending
                    pending = None
                in_block = not in_block
                continue
            m = re.match(r"^<!-- expect: (\w+)(?:: (.*?))? -->", line)
            if m and not in_block:
                pending = (m.group(1), m.group(2))
    return want


def main():
    runner, build, fixture = sys.argv[1:4]
    want = expectations(fixture)
    res = subprocess.run([sys.executable, runner, "--build", build, "--timeout", "60", fixture],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    print(res.stdout)
    got = {}
    for line in res.stdout.splitlines():
        m = re.match(r"^\S+:(\d+)\s+\S+\s+(ok|FAIL|skipped|checked)\b", line)
        if m:
            got[int(m.group(1))] = m.group(2)
    # The failure reports: "==== FAIL FILE:LINE", then the details.
    why = {}
    for part in res.stdout.split("\n==== FAIL ")[1:]:
        m = re.match(r"\S+:(\d+)\n", part)
        if m:
            why[int(m.group(1))] = part
    problems = []
    for n, (status, reason) in sorted(want.items()):
        if got.get(n) != status:
            problems.append("fixture line %d: expected %s, the runner said %s"
                            % (n, status, got.get(n, "nothing")))
        elif reason and reason not in why.get(n, ""):
            problems.append("fixture line %d: failed, but its report does not say %r"
                            % (n, reason))
    for n in sorted(set(got) - set(want)):
        problems.append("fixture line %d: reported, but not a block of the fixture" % n)
    if res.returncode != 1:
        problems.append("the runner exited with status %d, not 1" % res.returncode)
    if problems:
        print("SELF-TEST FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("self-test passed: %d blocks reported as expected, exit status 1" % len(want))
    return 0


if __name__ == "__main__":
    sys.exit(main())
