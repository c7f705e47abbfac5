#!/usr/bin/env python3
"""The Helm chart: lint, schema validation of every rendered manifest, and the
wiring between its parts -- checked on the rendered YAML, and by running the
real meshd and meshctl with the arguments and commands the chart renders.

  python3 tests/deploy/chart_test.py --bin-dir build/bin [--helm .tools/bin/helm]
"""

import argparse
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "deploy", "helm", "a2a-mesh")
VALUES_ALL = os.path.join(ROOT, "tests", "deploy", "values-all.yaml")
VALIDATOR = os.path.join(ROOT, "tools", "k8s", "validate.mjs")
ARGS = argparse.Namespace(helm=os.path.join(ROOT, ".tools", "bin", "helm"),
                          bin_dir=os.path.join(ROOT, "build", "bin"))


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)


def render(*flags, namespace="agents"):
    result = run([ARGS.helm, "template", "mesh", CHART, "-n", namespace, *flags])
    if result.returncode != 0:
        raise AssertionError(f"helm template failed:\n{result.stderr}")
    return result.stdout


def documents(text):
    return {f"{d['kind']}/{d['metadata']['name']}": d
            for d in yaml.safe_load_all(text) if d}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def container(docs):
    return docs["StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]["containers"][0]


def flag(args, name):
    for arg in args:
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"no {name} in {args}")


def seconds(duration):
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


class LintAndSchemaTest(unittest.TestCase):
    def test_lint_strict_with_defaults_and_with_every_feature(self):
        for values in ([], ["-f", VALUES_ALL]):
            result = run([ARGS.helm, "lint", "--strict", CHART, *values])
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_every_rendered_manifest_is_valid_kubernetes(self):
        for values, kinds in (([], 5), (["-f", VALUES_ALL], 8)):
            result = run(["node", VALIDATOR, "-"], input=render(*values))
            self.assertEqual(result.returncode, 0, result.stdout)
            self.assertIn(f"{kinds} valid, 0 invalid", result.stdout)

    def test_the_validator_refuses_an_invalid_manifest(self):
        bad = render().replace("containerPort: 7400", "containerPort: seventy-four-hundred")
        result = run(["node", VALIDATOR, "-"], input=bad)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("INVALID", result.stdout)

    def test_bad_values_are_named(self):
        for setting, path in (("replicaCount=0", "/replicaCount"),
                              ("node.grpcPort=70000", "/node/grpcPort"),
                              ("node.logLevel=loud", "/node/logLevel"),
                              ("node.peerTimeout=soon", "/node/peerTimeout"),
                              ("nodes.grpcPort=1", "nodes")):
            result = run([ARGS.helm, "template", "mesh", CHART, "--set", setting])
            self.assertNotEqual(result.returncode, 0, setting)
            self.assertIn(path, result.stderr, setting)


class WiringTest(unittest.TestCase):
    def check(self, docs, namespace, domain):
        headless = docs["Service/mesh-a2a-mesh-headless"]
        sts = docs["StatefulSet/mesh-a2a-mesh"]
        meshd = container(docs)
        args = meshd["args"]
        ports = {p["name"]: p["containerPort"] for p in meshd["ports"]}

        # DNS discovery resolves the headless Service, which lists every pod.
        self.assertEqual(flag(args, "--discovery-dns"),
                         f"mesh-a2a-mesh-headless.{namespace}.svc.{domain}")
        self.assertEqual(headless["spec"]["clusterIP"], "None")
        self.assertTrue(headless["spec"]["publishNotReadyAddresses"])
        self.assertEqual(sts["spec"]["serviceName"], "mesh-a2a-mesh-headless")
        self.assertEqual(sts["spec"]["podManagementPolicy"], "Parallel")
        pod_labels = sts["spec"]["template"]["metadata"]["labels"]
        for service in (headless, docs["Service/mesh-a2a-mesh"]):
            for key, value in service["spec"]["selector"].items():
                self.assertEqual(pod_labels[key], value)

        # Container ports are the ports the flags listen on; peers are told the pod IP.
        self.assertEqual(flag(args, "--grpc-address"), f"0.0.0.0:{ports['grpc']}")
        self.assertEqual(flag(args, "--http-address"), f"0.0.0.0:{ports['http']}")
        self.assertEqual(flag(args, "--metrics-address"), f"0.0.0.0:{ports['metrics']}")
        client = {p["name"]: p for p in docs["Service/mesh-a2a-mesh"]["spec"]["ports"]}
        self.assertEqual(client["http"]["port"], ports["http"])
        self.assertEqual(client["grpc"]["port"], ports["grpc"])
        self.assertEqual(flag(args, "--advertise-address"), f"$(POD_IP):{ports['grpc']}")
        env = {e["name"]: e for e in meshd["env"]}
        self.assertEqual(env["MESHD_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"],
                         "metadata.name")
        self.assertEqual(env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP")
        for port in headless["spec"]["ports"]:
            self.assertIn(port["targetPort"], ports)
            self.assertEqual(port["port"], ports[port["targetPort"]])

        # Probes: the gRPC health service; readiness on the overall status,
        # liveness on the service that stays SERVING through a drain.
        self.assertEqual(meshd["readinessProbe"]["grpc"]["port"], ports["grpc"])
        self.assertNotIn("service", meshd["readinessProbe"]["grpc"])
        self.assertEqual(meshd["livenessProbe"]["grpc"],
                         {"port": ports["grpc"], "service": "liveness"})

        # The grace period covers the preStop wait and the whole drain.
        grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        prestop = meshd["lifecycle"]["preStop"]["exec"]["command"][2]
        sleep = int(re.search(r"sleep (\d+)", prestop).group(1))
        self.assertGreater(grace, seconds(flag(args, "--drain-timeout")) + sleep)
        self.assertIn(f"--server 127.0.0.1:{ports['grpc']} drain", prestop)

        # Locked down.
        pod_security = sts["spec"]["template"]["spec"]["securityContext"]
        self.assertTrue(pod_security["runAsNonRoot"])
        security = meshd["securityContext"]
        self.assertTrue(security["readOnlyRootFilesystem"])
        self.assertFalse(security["allowPrivilegeEscalation"])
        self.assertEqual(security["capabilities"]["drop"], ["ALL"])
        mounts = {m["name"]: m["mountPath"] for m in meshd["volumeMounts"]}
        self.assertEqual(mounts["data"], flag(args, "--data-dir"))
        return ports

    def test_defaults(self):
        docs = documents(render())
        ports = self.check(docs, "agents", "cluster.local")
        self.assertEqual(ports, {"grpc": 7400, "http": 7480, "metrics": 9464})
        self.assertEqual(docs["PodDisruptionBudget/mesh-a2a-mesh"]["spec"]["maxUnavailable"], 1)
        self.assertNotIn("ServiceMonitor/mesh-a2a-mesh", docs)
        claim = docs["StatefulSet/mesh-a2a-mesh"]["spec"]["volumeClaimTemplates"][0]
        self.assertEqual(claim["metadata"]["name"], "data")

    def test_every_feature(self):
        docs = documents(render("-f", VALUES_ALL, namespace="agents-prod"))
        ports = self.check(docs, "agents-prod", "cluster.example")
        self.assertEqual(ports, {"grpc": 7500, "http": 7580, "metrics": 9500})
        args = container(docs)["args"]
        self.assertEqual(flag(args, "--drain-timeout"), "120s")
        self.assertEqual(docs["StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]
                         ["terminationGracePeriodSeconds"], 120 + 8 + 15)

        # The ServiceMonitor selects the headless Service and its metrics port.
        monitor = docs["ServiceMonitor/mesh-a2a-mesh"]["spec"]
        headless = docs["Service/mesh-a2a-mesh-headless"]
        for key, value in monitor["selector"]["matchLabels"].items():
            self.assertEqual(headless["metadata"]["labels"][key], value)
        port_names = {p["name"]: p["port"] for p in headless["spec"]["ports"]}
        self.assertEqual(monitor["endpoints"][0]["port"], "metrics")
        self.assertEqual(port_names["metrics"], ports["metrics"])
        self.assertEqual(monitor["namespaceSelector"]["matchNames"], ["agents-prod"])

        # The PrometheusRule carries the promtool-tested rules.
        with open(os.path.join(CHART, "files", "alerts.yml")) as f:
            rules = yaml.safe_load(f)
        self.assertEqual(docs["PrometheusRule/mesh-a2a-mesh"]["spec"], rules)

        # Secrets mounted read-only; the NetworkPolicy opens both ports.
        meshd = container(docs)
        mounts = {m["name"]: m for m in meshd["volumeMounts"]}
        self.assertTrue(mounts["tls"]["readOnly"])
        self.assertEqual(mounts["tokens"]["mountPath"], "/etc/a2a-mesh/tokens")
        policy = docs["NetworkPolicy/mesh-a2a-mesh"]["spec"]
        self.assertEqual([[p["port"] for p in rule["ports"]] for rule in policy["ingress"]],
                         [["grpc", "http"], ["metrics"]])
        args = container(docs)["args"]
        self.assertEqual(flag(args, "--public-http-url"), "https://a2a.example.com")
        self.assertEqual(flag(args, "--public-grpc-url"), "a2a-grpc.example.com:443")
        self.assertIn("--push-allow-private-targets", args)
        self.assertEqual(flag(args, "--push-max-attempts"), "4")

    def test_meshd_runs_with_the_rendered_arguments_and_the_hooks_work(self):
        grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
        docs = documents(render("--set", f"node.grpcPort={grpc_port}",
                                "--set", f"node.httpPort={http_port}",
                                "--set", f"node.metricsPort={metrics_port}",
                                "--set", "replicaCount=1"))
        meshd = container(docs)
        with tempfile.TemporaryDirectory() as tmp:
            args = [a.replace("$(POD_IP)", "127.0.0.1")
                     .replace("=/var/lib/a2a-mesh", "=" + os.path.join(tmp, "data"))
                    for a in meshd["args"]]
            ready = os.path.join(tmp, "ready.json")
            env = dict(os.environ, MESHD_NODE_ID="mesh-a2a-mesh-0",
                       PATH=ARGS.bin_dir + os.pathsep + os.environ["PATH"])
            with open(os.path.join(tmp, "meshd.log"), "w") as log:
                process = subprocess.Popen(
                    [os.path.join(ARGS.bin_dir, "meshd"), *args, "--ready-file", ready],
                    env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                deadline = time.time() + 20
                while not os.path.exists(ready) and time.time() < deadline:
                    if process.poll() is not None:
                        break
                    time.sleep(0.05)
                with open(os.path.join(tmp, "meshd.log")) as log:
                    self.assertTrue(os.path.exists(ready), log.read())
                with open(ready) as f:
                    content = f.read()
                self.assertIn(f'"grpc_address":"0.0.0.0:{grpc_port}"', content)
                self.assertIn(f'"metrics_address":"0.0.0.0:{metrics_port}"', content)
                self.assertIn(f'"http_address":"0.0.0.0:{http_port}"', content)
                # The HTTP port serves the node's agent card, which names the ports.
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{http_port}/.well-known/agent-card.json",
                        timeout=10) as response:
                    card = json.load(response)
                urls = {i["protocolBinding"]: i["url"] for i in card["supportedInterfaces"]}
                self.assertEqual(urls["JSONRPC"], f"http://127.0.0.1:{http_port}/a2a/jsonrpc")
                self.assertEqual(urls["GRPC"], f"127.0.0.1:{grpc_port}")
                self.assertTrue(card["capabilities"]["pushNotifications"])

                # The helm test's script passes against this node.
                script = docs["Pod/mesh-a2a-mesh-test-health"]["spec"]["containers"][0]["command"]
                self.assertEqual(script[:2], ["/bin/sh", "-c"])
                local = script[2].replace(f"mesh-a2a-mesh:{grpc_port}", f"127.0.0.1:{grpc_port}")
                result = run(["/bin/sh", "-c", local], env=env)
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                self.assertIn("1 of 1 nodes up", result.stdout)

                # The preStop hook drains: readiness turns NOT_SERVING.
                prestop = meshd["lifecycle"]["preStop"]["exec"]["command"]
                result = run(prestop[:2] + [prestop[2].replace("sleep 5", "sleep 0")], env=env)
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                self.assertIn("node mesh-a2a-mesh-0 is draining", result.stdout)
                health = run([os.path.join(ARGS.bin_dir, "meshctl"), "--server",
                              f"127.0.0.1:{grpc_port}", "health"])
                self.assertEqual(health.returncode, 1)
                self.assertIn("NOT_SERVING", health.stdout)
                # ...while liveness stays SERVING: kubelet does not kill a draining node.
                liveness = run([os.path.join(ARGS.bin_dir, "meshctl"), "--server",
                                f"127.0.0.1:{grpc_port}", "health", "--service", "liveness"])
                self.assertEqual(liveness.returncode, 0, liveness.stdout + liveness.stderr)
            finally:
                process.terminate()
                self.assertEqual(process.wait(timeout=30), 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--helm", default=ARGS.helm)
    parser.add_argument("--bin-dir", default=ARGS.bin_dir)
    ARGS, rest = parser.parse_known_args()
    for tool in (ARGS.helm, os.path.join(ARGS.bin_dir, "meshd")):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is missing: run tools/setup (helm) and tools/build (meshd)")
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
