#!/usr/bin/env python3
"""A new user's first steps: the README's by-hand sessions and meshd --help's
examples run as written, and a mistyped flag or config key stops a program
with exit 2 and the mistake named.

Each block is taken from README.md (or from `meshd --help`) at test time, not
copied here, so a change to the documentation is tested as it stands. The
blocks run from a scratch directory where `build` is the build directory and
`examples` the sources' (the commands' relative paths resolve as they do in a
checkout), `tools/build` is a no-op (the test runs on a finished build), and
`/tmp/` paths point into the scratch directory. Commands that end in `&` start
in the background; the foreground ones run once the mesh they talk to has its
agents, as a person typing them would, and in a console block their output is
compared with the README's (task ids and ages aside).

Usage: first_steps_test.py --source-dir DIR --build-dir DIR
"""

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

FAILURES = []


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print(f"FAIL: {what}", file=sys.stderr)
    return condition


def fenced_blocks(text, after_heading):
    """The fenced blocks of the section that starts at `after_heading`."""
    start = text.index(after_heading)
    end = text.find("\n## ", start + len(after_heading))
    section = text[start:end if end >= 0 else len(text)]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


def join_continuations(lines):
    """Lines ending in a backslash continue on the next."""
    joined, current = [], ""
    for line in lines:
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    return joined


def complete(command):
    """Whether `command` closes every quote it opens."""
    try:
        shlex.split(command.replace("\\", " "))
        return True
    except ValueError:
        return False


def console_steps(block):
    """[(command, [expected output lines])] from a ```console block."""
    steps = []
    lines = block.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            i += 1
            continue
        command = [line[2:]]
        # It goes on after a backslash, and while a quote is open.
        while (command[-1].endswith("\\") or not complete(" ".join(command))) and \
                i + 1 < len(lines):
            i += 1
            command.append(lines[i].strip())
        output = []
        i += 1
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        while output and output[-1] == "":
            output.pop()
        steps.append((" ".join(join_continuations(command)), output))
    return steps


def bash_steps(block):
    """[(command, None)] from a ```bash block (comments dropped; no output shown)."""
    lines = [re.sub(r"\s+#.*$", "", l).rstrip() for l in block.split("\n")]
    lines = [l for l in join_continuations(lines) if l and not l.startswith("#")]
    return [(l, None) for l in lines]


def normalise(line):
    line = line.replace("├─", "─").replace("└─", "─")  # subtasks come in any order
    line = re.sub(r"\b[\w-]+~[0-9a-f-]{36}\b", "<task>", line)
    line = re.sub(r"\b\d+(ms|s|m)\b", "<age>", line)
    line = re.sub(r"\b[0-9a-f]{32}\b", "<trace>", line)  # a W3C trace id
    return " ".join(line.split())


class Session:
    """A scratch directory, and everything started from it (one process group)."""

    def __init__(self, source_dir, build_dir):
        self.dir = tempfile.mkdtemp(prefix="a2amesh-readme-")
        os.symlink(build_dir, os.path.join(self.dir, "build"))
        os.symlink(os.path.join(source_dir, "examples"), os.path.join(self.dir, "examples"))
        os.makedirs(os.path.join(self.dir, "tools"))
        with open(os.path.join(self.dir, "tools", "build"), "w") as f:
            f.write("#!/bin/sh\nexit 0  # the test runs on a finished build\n")
        os.chmod(os.path.join(self.dir, "tools", "build"), 0o755)
        os.makedirs(os.path.join(self.dir, "tmp"))
        self.exports = []
        self.background = []
        self.log = open(os.path.join(self.dir, "background.log"), "w")

    def rewrite(self, command):
        # python3 is Debian's (with python3-grpcio), as on the machines the
        # README is written for, whatever interpreter this one has first.
        return "PATH=/usr/bin:$PATH\n" + command.replace("/tmp/", self.dir + "/tmp/")

    def start(self, command):
        self.background.append(subprocess.Popen(
            ["bash", "-c", self.rewrite(command) + "\nwait"], cwd=self.dir,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True))

    def run(self, command, timeout=60):
        script = "\n".join(self.exports + [self.rewrite(command)])
        return subprocess.run(["bash", "-c", script], cwd=self.dir, capture_output=True,
                              text=True, timeout=timeout)

    def wait_for(self, command, wanted, timeout=30):
        """Runs `command` until its output holds every string of `wanted`."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.run(command)
            if all(w in result.stdout for w in wanted):
                return True
            if time.monotonic() > deadline:
                print(f"waited {timeout}s for {wanted} in `{command}`; last output:\n"
                      f"{result.stdout}{result.stderr}", file=sys.stderr)
                return False
            time.sleep(0.2)

    def close(self):
        for process in self.background:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.background:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.log.close()
        subprocess.run(["rm", "-rf", self.dir])

    def dump_background(self):
        with open(os.path.join(self.dir, "background.log")) as f:
            print("background output:\n" + f.read()[-4000:], file=sys.stderr)


def play(session, steps, ready_command, ready_agents):
    """Starts the background steps, waits for the mesh, runs the rest in order.
    Returns {command: its stdout}."""
    foreground = []
    for command, output in steps:
        if command.rstrip().endswith("&"):
            session.start(command)
        elif command.startswith("export "):
            session.exports.append(command)
        else:
            foreground.append((command, output))
    if not check(session.wait_for(ready_command, ready_agents),
                 f"the mesh never showed {ready_agents}"):
        session.dump_background()
        return {}
    outputs = {}
    last_task = None
    for command, expected in foreground:
        if last_task is not None:
            command = re.sub(r"\b\w+~[0-9a-f-]{36}\b", last_task, command)
        result = session.run(command)
        shown = f"`{command}` exited {result.returncode}:\n{result.stdout}{result.stderr}"
        if not check(result.returncode == 0, shown):
            continue
        print(f"ok: {command}")
        outputs[command] = result.stdout
        tasks = re.findall(r"\b\w+~[0-9a-f-]{36}\b", result.stdout)
        if tasks:
            last_task = tasks[0]
        if expected is None:
            continue
        actual = sorted(normalise(l) for l in result.stdout.strip().split("\n") if l.strip())
        wanted = sorted(normalise(l) for l in expected if l.strip())
        check(actual == wanted, f"{shown}\nexpected (in any order):\n" + "\n".join(expected))
    return outputs


def readme_sessions(source_dir, build_dir):
    with open(os.path.join(source_dir, "README.md")) as f:
        readme = f.read()
    mesh = "meshctl -s 127.0.0.1 agents"  # meshd's port, 7400, when none is given

    # "A session with meshctl": the mesh, meshctl's output, then HTTP with curl.
    blocks = fenced_blocks(readme, "## A session with meshctl")
    steps = [step for kind, block in blocks if kind == "console" for step in console_steps(block)]
    check(len(steps) >= 10, f"the meshctl session has {len(steps)} steps")
    session = Session(source_dir, build_dir)
    try:
        play(session, steps, "PATH=$PWD/build/bin:$PATH " + mesh, ["echo@n2", "planner@n3",
                                                                      "uppercase@n2"])
    finally:
        session.close()

    # "Try it by hand".
    (kind, block), = fenced_blocks(readme, "## Try it by hand")
    steps = bash_steps(block)
    session = Session(source_dir, build_dir)
    try:
        outputs = play(session, steps, "PATH=$PWD/build/bin:$PATH " + mesh,
                       ["echo@n1", "planner@n1", "uppercase@n2", "wordcount@n2"])
        sends = [c for c, _ in steps if "a2a-send" in c]
        check(len(sends) == 3 and all(c in outputs for c in sends), "the three sends ran")
        for command in sends:
            check("TASK_STATE_COMPLETED" in outputs.get(command, ""),
                  f"`{command}` did not complete: {outputs.get(command)}")
    finally:
        session.close()


def help_examples(source_dir, build_dir):
    """meshd --help's examples: the two nodes together, then the ephemeral one."""
    meshd = os.path.join(build_dir, "bin", "meshd")
    text = subprocess.run([meshd, "--help"], capture_output=True, text=True).stdout
    examples = join_continuations(
        [l.strip() for l in text.split("Examples:\n", 1)[1].split("\n") if l.strip()])
    check(len(examples) == 4, f"meshd --help shows {len(examples)} examples")
    session = Session(source_dir, build_dir)
    try:
        for example in examples:
            if "--discovery-dns" in example:
                continue  # a Kubernetes Service name: the chart's test runs that one
            # A data directory under /var/lib is the server's; here, the scratch one's.
            command = example.replace("/var/lib/", "/tmp/")
            session.start("build/bin/" + command + " &")
        check(session.wait_for(
            "build/bin/meshctl -s 127.0.0.1:7401 nodes", ["n1", "n2"]),
            "meshd --help's two nodes did not find each other")
        ready = os.path.join(session.dir, "tmp", "n1.json")
        deadline = time.monotonic() + 30
        while not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.1)
        check(os.path.exists(ready), "the --ready-file example never wrote its file")
    finally:
        for process in session.background:
            check(process.poll() is None, f"a meshd --help example exited {process.returncode}")
        session.dump_background() if FAILURES else None
        session.close()


def mistakes(build_dir):
    """Every program: an unknown flag is exit 2 naming it; --help is exit 0."""
    bin_dir = os.path.join(build_dir, "bin")
    for program, args in [("meshd", []), ("meshctl", ["agents"]), ("echo-agent", []),
                          ("uppercase-agent", []), ("planner-agent", []), ("a2a-send", ["hi"])]:
        path = os.path.join(bin_dir, program)
        wrong = subprocess.run([path] + args + ["--no-such-flag"], capture_output=True,
                               text=True)
        check(wrong.returncode == 2 and "--no-such-flag" in wrong.stderr,
              f"{program} --no-such-flag exited {wrong.returncode}: {wrong.stderr}")
        right = subprocess.run([path, "--help"], capture_output=True, text=True)
        check(right.returncode == 0 and "--help" in right.stdout,
              f"{program} --help exited {right.returncode}")
    # An address in use: the flag is named, and gRPC's own complaint is a line
    # of the node's log (JSON here), not raw text on stderr.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    clash = subprocess.run(
        [os.path.join(bin_dir, "meshd"), "--ephemeral", "--log-format", "json",
         "--grpc-address", f"127.0.0.1:{port}", "--http-address", "127.0.0.1:0",
         "--metrics-address", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    taken.close()
    lines = [l for l in clash.stderr.split("\n") if l.strip()]
    check(clash.returncode != 0 and f"--grpc-address: cannot listen on 127.0.0.1:{port}"
          in clash.stderr, f"an address in use: exit {clash.returncode}: {clash.stderr}")
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            check(False, f"not a JSON log line: {line}")
    check(any(p.get("msg") == "grpc" and "Address already in use" in p.get("message", "")
              for p in parsed), f"gRPC's line did not go through the logger: {clash.stderr}")
    with tempfile.TemporaryDirectory() as scratch:
        config = os.path.join(scratch, "meshd.ini")
        with open(config, "w") as f:
            f.write("node-id = n1\nephemeral = true\nhttp-adress = 127.0.0.1:7481\n")
        typo = subprocess.run([os.path.join(bin_dir, "meshd"), "--config", config],
                              capture_output=True, text=True, timeout=30)
        check(typo.returncode == 2 and
              f"--config {config}: unknown key 'http-adress' (did you mean 'http-address'?)"
              in typo.stderr, f"a config typo: exit {typo.returncode}: {typo.stderr}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--build-dir", required=True)
    args = parser.parse_args()
    readme_sessions(os.path.abspath(args.source_dir), os.path.abspath(args.build_dir))
    help_examples(os.path.abspath(args.source_dir), os.path.abspath(args.build_dir))
    mistakes(os.path.abspath(args.build_dir))
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)", file=sys.stderr)
        return 1
    print("the README's sessions and meshd --help's examples ran as written; "
          "mistakes were named")
    return 0


if __name__ == "__main__":
    sys.exit(main())
