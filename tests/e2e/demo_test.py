#!/usr/bin/env python3
"""The README's first command: `tools/demo` runs a live three-node mesh that does
real work, and exits 0. Run on a finished build (`--prebuilt`: no set-up, no
build), three ways: with its output to a pipe (as CI and `| less` see it), on a
terminal, and on a terminal with NO_COLOR. Headings are bold only on the
terminal without NO_COLOR (no-color.org).

Usage: demo_test.py --source-dir DIR --build-dir DIR
"""

import argparse
import os
import subprocess
import sys

FAILURES = []


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print(f"FAIL: {what}", file=sys.stderr)
    return condition


def run(args, source_dir, env, terminal):
    command = [os.path.join(source_dir, "tools", "demo"), "--prebuilt"]
    if terminal:
        # script(1) gives the demo a pseudo-terminal as its standard output.
        command = ["script", "-qec", " ".join(command), "/dev/null"]
    result = subprocess.run(command, cwd=source_dir, env=env, capture_output=True, text=True,
                            timeout=240)
    return result.returncode, result.stdout + result.stderr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--build-dir", required=True)
    args = parser.parse_args()
    env = dict(os.environ, BUILD_DIR=os.path.abspath(args.build_dir))
    env.pop("NO_COLOR", None)

    code, out = run(args, args.source_dir, env, terminal=False)
    check(code == 0, f"tools/demo exits 0 (it exited {code}):\n{out[-3000:]}")
    # The work it shows: a streamed task across nodes, a plan whose subtasks
    # ran on two other nodes, a JSON-RPC task, meshctl's view of the mesh.
    for expected in ("upper-cased by uppercase@n2", "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
                     "counted by wordcount@n1", "composed 2 steps", "TASK_STATE_COMPLETED",
                     "planner@n3", "pick"):
        check(expected in out, f"the demo's output holds {expected!r}")
    check("\033[" not in out, "no escape codes when the output is not a terminal")

    code, out = run(args, args.source_dir, env, terminal=True)
    check(code == 0, f"tools/demo on a terminal exits 0 (it exited {code}):\n{out[-3000:]}")
    check("\033[1m== " in out, "bold headings on a terminal")

    code, out = run(args, args.source_dir, dict(env, NO_COLOR="1"), terminal=True)
    check(code == 0, f"tools/demo with NO_COLOR exits 0 (it exited {code})")
    check("\033[" not in out, "no escape codes with NO_COLOR, even on a terminal")

    code, out = subprocess.run([os.path.join(args.source_dir, "tools", "demo"), "--bogus"],
                               capture_output=True, text=True).returncode, ""
    check(code == 2, f"an unknown option is a usage error, exit 2 (it exited {code})")

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", file=sys.stderr)
        return 1
    print("tools/demo: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
