#!/usr/bin/env python3
"""The Helm chart: lint, schema validation of every rendered manifest, and the
wiring between its parts -- checked on the rendered YAML, and by running the
real meshd and meshctl with the arguments and commands the chart renders.

  python3 tests/deploy/chart_test.py --bin-dir build/bin [--helm .tools/bin/helm]
"""

import argparse
import base64
import contextlib
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
# The prometheus-operator's API, as a cluster with its CRDs reports it.
MONITORING = "monitoring.coreos.com/v1"
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


def env_of(container_spec, **overrides):
    """The container's literal env values, $(VAR) references resolved."""
    env = dict(overrides)
    for entry in container_spec["env"]:
        if "value" in entry and entry["name"] not in overrides:
            env[entry["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), ""),
                                        entry["value"])
    return env


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
        for values, kinds in (([], 9), (["--api-versions", "cert-manager.io/v1/Certificate"], 10),
                              # the policy ConfigMap, the ServiceMonitor and the PrometheusRule
                              (["-f", VALUES_ALL, "--api-versions", MONITORING], 11)):
            result = run(["node", VALIDATOR, "-"], input=render(*values))
            self.assertEqual(result.returncode, 0, result.stdout)
            self.assertIn(f"{kinds} valid, 0 invalid", result.stdout)

    def test_the_validator_refuses_an_invalid_manifest(self):
        bad = render().replace("containerPort: 7400", "containerPort: seventy-four-hundred")
        result = run(["node", VALIDATOR, "-"], input=bad)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("INVALID", result.stdout)

    def test_the_keda_example_is_a_valid_scaled_object_on_the_skill_gauges(self):
        example = os.path.join(ROOT, "deploy", "keda", "scaledobject.yaml")
        result = run(["node", VALIDATOR, example])
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertIn("ScaledObject/summarize-agents (keda.sh/v1alpha1): valid", result.stdout)
        with open(example) as f:
            text = f.read()
        # It scales on the gauges the node exports (docs/metrics.md).
        self.assertIn('a2amesh_skill_running{skill="summarize"}', text)
        self.assertIn('a2amesh_skill_waiting{skill="summarize"}', text)
        broken = text.replace("- type: prometheus", "- typo: prometheus")
        result = run(["node", VALIDATOR, "-"], input=broken)
        self.assertEqual(result.returncode, 1, result.stdout)

    def test_bad_values_are_named(self):
        for setting, path in (("replicaCount=0", "/replicaCount"),
                              ("node.grpcPort=70000", "/node/grpcPort"),
                              ("node.logLevel=loud", "/node/logLevel"),
                              ("node.peerTimeout=soon", "/node/peerTimeout"),
                              ("node.taskRetention=forever", "/node/taskRetention"),
                              ("nodes.grpcPort=1", "nodes"),
                              ("tls.ca=secret", "/tls/existingSecret"),
                              ("tls.ca=vault", "/tls/ca"),
                              ("image.digest=latest", "/image/digest"),
                              ("podAntiAffinityPreset=always", "/podAntiAffinityPreset"),
                              ("probes.readiness.periodSeconds=0",
                               "/probes/readiness/periodSeconds"),
                              ("networkPolicy.clientNamespaces[0]=Not_A_Namespace",
                               "/networkPolicy/clientNamespaces/0"),
                              ("remoteAgents[0].url=ftp://x", "/remoteAgents/0/url"),
                              ("remoteAgents[0].name=x", "/remoteAgents/0"),
                              ("remoteAgents[0].url=http://a,remoteAgents[0].maxConcurrency=0",
                               "/remoteAgents/0/maxConcurrency"),
                              ("tracing.protocol=zipkin", "/tracing/protocol"),
                              ("tracing.sampleRatio=2", "/tracing/sampleRatio"),
                              ("tracing.endpoint=collector/v1", "/tracing/endpoint")):
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

        # Probes: on the metrics port (the kubelet's gRPC probe cannot speak
        # TLS); readiness ends with a drain, liveness does not.
        self.assertEqual(meshd["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertEqual(meshd["livenessProbe"]["httpGet"]["path"], "/livez")
        for probe in (meshd["readinessProbe"], meshd["livenessProbe"]):
            self.assertEqual(probe["httpGet"]["port"], "metrics")
            self.assertEqual(probe["httpGet"]["scheme"],
                             "HTTPS" if "--metrics-tls" in args else "HTTP")

        # The grace period covers the preStop wait and the whole drain.
        grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        prestop = meshd["lifecycle"]["preStop"]["exec"]["command"][2]
        sleep = int(re.search(r"sleep (\d+)", prestop).group(1))
        self.assertGreater(grace, seconds(flag(args, "--drain-timeout")) + sleep)
        self.assertRegex(prestop, rf"--server (127\.0\.0\.1|localhost):{ports['grpc']} .*drain")

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

        # Secure by default: TLS, mTLS between nodes and auth, with a CA and
        # tokens the chart makes; the NetworkPolicy admits only the chart's
        # pods, the release's namespace and the monitoring namespace.
        args = container(docs)["args"]
        self.assertFalse([a for a in args if a.startswith("--otlp")], "no tracing unless asked")
        self.assertEqual(flag(args, "--tls-client-ca"), "/etc/a2a-mesh/tls/ca.crt")
        self.assertEqual(flag(args, "--auth-token-file"), "/etc/a2a-mesh/auth/tokens")
        self.assertIn("--auth-client-certs", args)
        self.assertIn("Secret/mesh-a2a-mesh-ca", docs)
        self.assertIn("Secret/mesh-a2a-mesh-auth", docs)
        policy = docs["NetworkPolicy/mesh-a2a-mesh"]["spec"]
        self.assertEqual(policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
                         {"app.kubernetes.io/name": "a2a-mesh",
                          "app.kubernetes.io/instance": "mesh"})
        self.assertEqual([rule["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
                          for rule in policy["ingress"][1:]], [["agents"], ["monitoring"]])

    def test_cert_manager_makes_the_ca_when_it_is_installed(self):
        docs = documents(render("--api-versions", "cert-manager.io/v1/Certificate"))
        self.assertNotIn("Secret/mesh-a2a-mesh-ca", docs)
        self.assertEqual(docs["Issuer/mesh-a2a-mesh-selfsigned"]["spec"], {"selfSigned": {}})
        certificate = docs["Certificate/mesh-a2a-mesh-ca"]["spec"]
        self.assertTrue(certificate["isCA"])
        self.assertEqual(certificate["issuerRef"]["name"], "mesh-a2a-mesh-selfsigned")
        pod = docs["StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(volumes["ca"]["secret"]["secretName"], certificate["secretName"])
        # ...unless told to make its own.
        docs = documents(render("--api-versions", "cert-manager.io/v1/Certificate",
                                "--set", "tls.ca=generate"))
        self.assertIn("Secret/mesh-a2a-mesh-ca", docs)
        self.assertNotIn("Certificate/mesh-a2a-mesh-ca", docs)

    def test_monitoring_resources_need_their_crds_or_force(self):
        # Enabled by default, rendered only where the operator's CRDs are
        # (a cluster without them would refuse the whole release).
        for flags, rendered in (([], False), (["--api-versions", MONITORING], True),
                                (["--set", "serviceMonitor.force=true",
                                  "--set", "prometheusRule.force=true"], True),
                                (["--api-versions", MONITORING,
                                  "--set", "serviceMonitor.enabled=false",
                                  "--set", "prometheusRule.enabled=false"], False)):
            docs = documents(render(*flags))
            for kind in ("ServiceMonitor", "PrometheusRule"):
                self.assertEqual(f"{kind}/mesh-a2a-mesh" in docs, rendered, (kind, flags))

    def test_scheduling_presets_image_digest_probes_and_service_account(self):
        pod = documents(render())["StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]
        selector = {"app.kubernetes.io/name": "a2a-mesh", "app.kubernetes.io/instance": "mesh"}
        soft = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(soft[0]["podAffinityTerm"], {
            "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": selector}})
        self.assertEqual(pod["topologySpreadConstraints"][0]["whenUnsatisfiable"], "ScheduleAnyway")
        self.assertEqual(pod["serviceAccountName"], "mesh-a2a-mesh")
        self.assertFalse(pod["automountServiceAccountToken"])

        pod = documents(render("--set", "podAntiAffinityPreset=hard",
                               "--set", "zoneSpreadPreset=hard"))[
            "StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]
        hard = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(hard[0]["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(pod["topologySpreadConstraints"][0]["whenUnsatisfiable"], "DoNotSchedule")
        pod = documents(render("--set", "podAntiAffinityPreset=none",
                               "--set", "zoneSpreadPreset=none"))[
            "StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]
        self.assertNotIn("affinity", pod)
        self.assertNotIn("topologySpreadConstraints", pod)

        docs = documents(render("-f", VALUES_ALL))
        pod = docs["StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]
        self.assertEqual(pod["serviceAccountName"], "mesh-nodes")
        account = docs["ServiceAccount/mesh-nodes"]
        self.assertEqual(account["metadata"]["annotations"], {"example.com/role": "mesh"})
        self.assertFalse(account["automountServiceAccountToken"])
        meshd = container(docs)
        self.assertEqual(meshd["image"], "registry.example.com/a2a-mesh@sha256:"
                         "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")
        self.assertEqual(meshd["readinessProbe"]["periodSeconds"], 3)
        self.assertEqual(meshd["readinessProbe"]["failureThreshold"], 4)
        self.assertEqual(meshd["livenessProbe"]["initialDelaySeconds"], 5)
        self.assertEqual(meshd["livenessProbe"]["timeoutSeconds"], 3)
        self.assertIn({"name": "scratch", "mountPath": "/scratch"}, meshd["volumeMounts"])
        self.assertIn({"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}}, pod["volumes"])
        # Set by hand, affinity and spread replace the presets.
        pod = documents(render("--set", "affinity.nodeAffinity.x=1", "--set-json",
                               'topologySpreadConstraints=[{"maxSkew": 2, "topologyKey": "k",'
                               ' "whenUnsatisfiable": "ScheduleAnyway"}]'))[
            "StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]
        self.assertEqual(pod["affinity"], {"nodeAffinity": {"x": 1}})
        self.assertEqual(pod["topologySpreadConstraints"][0]["maxSkew"], 2)

    def test_every_feature(self):
        docs = documents(render("-f", VALUES_ALL, "--api-versions", MONITORING,
                                namespace="agents-prod"))
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

        # The policy: the values' rules only (the tokens are the users' own,
        # so the chart adds none for them; the nodes' certificates drain).
        policy = json.loads(docs["ConfigMap/mesh-a2a-mesh-policy"]["data"]["policy.json"])
        self.assertEqual([r["name"] for r in policy["rules"]], ["chart-nodes", "team-a"])
        self.assertEqual(policy["rateLimits"][0]["rate"], 10)
        self.assertEqual(flag(args, "--policy-file"), "/etc/a2a-mesh/policy/policy.json")
        self.assertEqual(flag(args, "--audit-log"), "/var/lib/a2a-mesh/audit.log")

        # Tracing: the collector, its headers from the values and a Secret, and
        # the pod's identity as the spans' resource (downward API).
        self.assertEqual(flag(args, "--otlp-endpoint"), "http://otel-collector.observability:4318")
        self.assertEqual(flag(args, "--otlp-protocol"), "http/protobuf")
        self.assertEqual(flag(args, "--trace-sample-ratio"), "0.1")
        self.assertEqual(flag(args, "--otlp-header"), "x-scope-orgid=agents")
        self.assertEqual([a.split("=", 1)[1] for a in args
                          if a.startswith("--otlp-resource-attribute=")],
                         ["k8s.pod.name=$(MESHD_NODE_ID)", "k8s.pod.uid=$(K8S_POD_UID)",
                          "k8s.namespace.name=$(K8S_NAMESPACE)",
                          "k8s.node.name=$(K8S_NODE_NAME)"])
        env = {e["name"]: e for e in container(docs)["env"]}
        self.assertEqual(env["K8S_POD_UID"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.uid")
        self.assertEqual(env["K8S_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
                         "spec.nodeName")
        self.assertEqual(env["MESHD_OTLP_HEADERS"]["valueFrom"]["secretKeyRef"],
                         {"name": "otel-credentials", "key": "headers"})

        # Remote A2A agents, one flag each, credentials after the URL.
        self.assertEqual(
            [a.split("=", 1)[1] for a in args if a.startswith("--remote-agent=")],
            ["summarizer=https://summarizer.agents.svc:8443/.well-known/agent-card.json"
             " token-file=/etc/a2a-mesh/summarizer/token ca-file=/etc/a2a-mesh/summarizer/ca.crt"
             " max-concurrency=4",
             "http://legacy.agents.svc:41241/.well-known/agent-card.json"])

        # Secrets mounted read-only.
        meshd = container(docs)
        mounts = {m["name"]: m for m in meshd["volumeMounts"]}
        for name in ("tls", "auth", "jwks", "policy"):
            self.assertTrue(mounts[name]["readOnly"], name)
        self.assertEqual(mounts["jwks"]["mountPath"], "/etc/a2a-mesh/jwks")
        self.assertEqual(flag(args, "--auth-jwks-file"), "/etc/a2a-mesh/jwks/jwks.json")

        # The CA from the organisation's issuer; the users' own token Secret.
        certificate = docs["Certificate/mesh-a2a-mesh-ca"]["spec"]
        self.assertTrue(certificate["isCA"])
        self.assertEqual(certificate["issuerRef"]["name"], "corp-intermediate")
        self.assertNotIn("Issuer/mesh-a2a-mesh-selfsigned", docs)
        self.assertNotIn("Secret/mesh-a2a-mesh-auth", docs)
        pod = docs["StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(volumes["ca"]["secret"]["secretName"], certificate["secretName"])
        self.assertEqual(volumes["auth"]["secret"]["secretName"], "corp-a2a-tokens")
        init_env = env_of(pod["initContainers"][0], MESHD_NODE_ID="mesh-a2a-mesh-3")
        self.assertEqual(init_env["TRUST_DOMAIN"], "prod.example.com")
        self.assertEqual(flag(args, "--trust-domain"), "prod.example.com")
        self.assertEqual(init_env["CERT_DAYS"], "30")
        names = init_env["CERT_DNS_NAMES"].split(",")
        for name in ("mesh-a2a-mesh-3.mesh-a2a-mesh-headless.agents-prod.svc.cluster.example",
                     "mesh-a2a-mesh.agents-prod.svc", "a2a.example.com", "a2a-grpc.example.com",
                     "mesh.example.com"):
            self.assertIn(name, names)
        self.assertIn("--metrics-tls", args)
        # The monitor scrapes over TLS, trusting the mesh CA.
        self.assertEqual(monitor["endpoints"][0]["scheme"], "https")
        self.assertEqual(monitor["endpoints"][0]["tlsConfig"]["ca"]["secret"],
                         {"name": certificate["secretName"], "key": "ca.crt"})

        # The NetworkPolicy: nodes to nodes; the named namespaces and peers
        # to gRPC and HTTP; the scrapers to /metrics.
        policy = docs["NetworkPolicy/mesh-a2a-mesh"]["spec"]
        self.assertEqual([[p["port"] for p in rule.get("ports", [])] for rule in policy["ingress"]],
                         [[], ["grpc", "http"], ["metrics"]])
        clients = policy["ingress"][1]["from"]
        self.assertEqual(clients[0]["namespaceSelector"]["matchExpressions"][0]["values"],
                         ["agents", "research"])
        self.assertEqual(clients[1]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
                         "ingress-nginx")
        scrapers = policy["ingress"][2]["from"]
        self.assertEqual(scrapers[0]["namespaceSelector"]["matchExpressions"][0]["values"],
                         ["observability"])
        self.assertEqual(scrapers[1]["ipBlock"]["cidr"], "10.10.0.0/16")
        args = container(docs)["args"]
        self.assertEqual(flag(args, "--public-http-url"), "https://a2a.example.com")
        self.assertEqual(flag(args, "--public-grpc-url"), "a2a-grpc.example.com:443")
        self.assertIn("--push-allow-private-targets", args)
        self.assertEqual(flag(args, "--push-max-attempts"), "4")
        self.assertEqual(flag(args, "--task-retention"), "72h")
        self.assertEqual(flag(args, "--max-finished-tasks"), "250000")


class RunTest(unittest.TestCase):
    """Runs the real meshd, meshctl and echo-agent with what the chart renders:
    its arguments, its init container's script, its Secrets, its hooks."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.processes = []
        self.addCleanup(self.stop_all)
        self.env = dict(os.environ, PATH=ARGS.bin_dir + os.pathsep + os.environ["PATH"])

    def path(self, *parts):
        return os.path.join(self.tmp.name, *parts)

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            self.assertEqual(process.wait(timeout=30), 0)

    def start(self, name, argv, env):
        """Starts a process logging to <tmp>/<name>.log."""
        with open(self.path(name + ".log"), "w") as log:
            process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def log(self, name):
        with open(self.path(name + ".log")) as f:
            return f.read()

    def start_meshd(self, node_id, args):
        """meshd with `args` as the pod gets them; its ready file's content."""
        ready = self.path(node_id + ".ready")
        process = self.start(node_id, [os.path.join(ARGS.bin_dir, "meshd"), *args,
                                       "--ready-file", ready],
                             dict(self.env, MESHD_NODE_ID=node_id))
        deadline = time.time() + 20
        while not os.path.exists(ready) and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(ready), self.log(node_id))
        with open(ready) as f:
            return json.load(f)

    def wait_until(self, condition, what, last_output=lambda: "", timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            time.sleep(0.1)
        self.fail(f"timed out waiting until {what}: {last_output()}")

    def http_status(self, port, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def sh(self, script, env=None):
        return run(["/bin/sh", "-c", script], env=env or self.env)

    def meshctl(self, *argv):
        return run([os.path.join(ARGS.bin_dir, "meshctl"), *argv], env=self.env)

    def check_prestop_drains(self, meshd, node_id, metrics_port, local):
        """The preStop hook drains: /readyz turns 503 while /livez stays 200."""
        self.assertEqual(self.http_status(metrics_port, "/readyz"), 200)
        prestop = meshd["lifecycle"]["preStop"]["exec"]["command"]
        script = local(prestop[2]).replace(f"sleep {prestop[2].split('sleep ')[1]}", "sleep 0")
        result = self.sh(script, dict(self.env, MESHD_NODE_ID=node_id))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"node {node_id} is draining", result.stdout)
        self.assertEqual(self.http_status(metrics_port, "/readyz"), 503)
        self.assertEqual(self.http_status(metrics_port, "/livez"), 200)

    def write_auth_secret(self, docs):
        """The chart's token Secret as the pods see it: <tmp>/auth/tokens (the
        nodes' file) and <tmp>/admin/admin-token. Returns its stringData."""
        auth = docs["Secret/mesh-a2a-mesh-auth"]["stringData"]
        for directory, key in (("auth", "tokens"), ("admin", "admin-token")):
            os.makedirs(self.path(directory))
            with open(self.path(directory, key), "w") as f:
                f.write(auth[key])
        return auth

    def local_paths(self, text):
        """The pod's paths of the Secrets' files, here."""
        return (text.replace("/etc/a2a-mesh/auth/", self.path("auth") + "/")
                .replace("/etc/a2a-mesh/admin/", self.path("admin") + "/")
                .replace("/etc/a2a-mesh/policy/", self.path("policy") + "/"))

    def write_policy(self, docs):
        """The chart's policy ConfigMap as the pods see it: <tmp>/policy/policy.json."""
        os.makedirs(self.path("policy"))
        with open(self.path("policy", "policy.json"), "w") as f:
            f.write(docs["ConfigMap/mesh-a2a-mesh-policy"]["data"]["policy.json"])

    def test_without_tls_callers_still_authenticate_and_the_hooks_use_the_admin_token(self):
        grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
        docs = documents(render("--set", f"node.grpcPort={grpc_port}",
                                "--set", f"node.httpPort={http_port}",
                                "--set", f"node.metricsPort={metrics_port}",
                                "--set", "replicaCount=1", "--set", "tls.enabled=false"))
        self.assertNotIn("Secret/mesh-a2a-mesh-ca", docs)
        self.write_auth_secret(docs)
        meshd = container(docs)
        pod = docs["StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]
        self.assertNotIn("initContainers", pod)
        self.assertNotIn("--auth-client-certs", meshd["args"])
        args = [self.local_paths(a.replace("$(POD_IP)", "127.0.0.1")
                                 .replace("=/var/lib/a2a-mesh", "=" + self.path("data")))
                for a in meshd["args"]]
        ready = self.start_meshd("mesh-a2a-mesh-0", args)
        self.assertEqual(ready["grpc_address"], f"0.0.0.0:{grpc_port}")
        self.assertEqual(ready["metrics_address"], f"0.0.0.0:{metrics_port}")
        self.assertEqual(ready["http_address"], f"0.0.0.0:{http_port}")
        # The HTTP port serves the node's agent card, which names the ports.
        card_url = f"http://127.0.0.1:{http_port}/.well-known/agent-card.json"
        with urllib.request.urlopen(card_url, timeout=10) as response:
            card = json.load(response)
        urls = {i["protocolBinding"]: i["url"] for i in card["supportedInterfaces"]}
        self.assertEqual(urls["JSONRPC"], f"http://127.0.0.1:{http_port}/a2a/jsonrpc")
        self.assertEqual(urls["GRPC"], f"127.0.0.1:{grpc_port}")
        self.assertTrue(card["capabilities"]["pushNotifications"])

        # The helm test's script passes against this node.
        script = docs["Pod/mesh-a2a-mesh-test-health"]["spec"]["containers"][0]["command"]
        self.assertEqual(script[:2], ["/bin/sh", "-c"])
        pod = f"mesh-a2a-mesh-0.mesh-a2a-mesh-headless.agents.svc.cluster.local:{grpc_port}"
        self.assertIn(f"for pod in {pod}; do", script[2])
        result = self.sh(self.local_paths(
            script[2].replace(f"mesh-a2a-mesh:{grpc_port}", f"127.0.0.1:{grpc_port}")
                     .replace(pod, f"127.0.0.1:{grpc_port}")))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("1 of 1 nodes up", result.stdout)
        self.assertIn(f"127.0.0.1:{grpc_port}: serving", result.stdout)

        # Without the token, nothing but health.
        refused = self.meshctl("--server", f"127.0.0.1:{grpc_port}", "nodes")
        self.assertIn("UNAUTHENTICATED", refused.stdout + refused.stderr)
        health = self.meshctl("--server", f"127.0.0.1:{grpc_port}", "health")
        self.assertEqual(health.returncode, 0, health.stdout + health.stderr)
        self.assertIn(": SERVING", health.stdout)
        self.assertIn("nodes are not shown", health.stderr)
        self.check_prestop_drains(meshd, "mesh-a2a-mesh-0", metrics_port, self.local_paths)
        # gRPC health agrees: NOT_SERVING, while liveness stays SERVING.
        health = self.meshctl("--server", f"127.0.0.1:{grpc_port}", "health")
        self.assertEqual(health.returncode, 1)
        self.assertIn("NOT_SERVING", health.stdout)
        liveness = self.meshctl("--server", f"127.0.0.1:{grpc_port}", "health",
                                "--service", "liveness")
        self.assertEqual(liveness.returncode, 0, liveness.stdout + liveness.stderr)

    def test_a_secure_mesh_runs_with_the_rendered_certificates_tokens_and_hooks(self):
        """The defaults: two nodes with the certificates their init containers
        issue from the rendered CA, mTLS between them, the rendered token file;
        the helm test, an agent with the agent token, and the preStop hook."""
        ports = [(free_port(), free_port(), free_port()) for _ in range(2)]
        grpc_port, http_port, metrics_port = ports[0]
        # With a policy: what the rendered rules allow its own credentials is
        # all this test does (the helm test, an agent, a task, the preStop).
        docs = documents(render("--set", f"node.grpcPort={grpc_port}",
                                "--set", f"node.httpPort={http_port}",
                                "--set", f"node.metricsPort={metrics_port}",
                                "--set", "replicaCount=2",
                                "--set-json", 'governance.policy={"rules": [{"name": "readers", '
                                '"effect": "allow", "subjects": ["role:reader"], '
                                '"actions": ["get", "list"]}]}'))
        self.write_policy(docs)
        # The Secrets the pods mount, as the API server would store them.
        ca_secret = docs["Secret/mesh-a2a-mesh-ca"]
        self.assertEqual(ca_secret["type"], "kubernetes.io/tls")
        os.makedirs(self.path("ca"))
        for key, value in ca_secret["data"].items():
            with open(self.path("ca", key), "wb") as f:
                f.write(base64.b64decode(value))
        auth = self.write_auth_secret(docs)
        # The nodes never hold a token, only digests.
        self.assertNotIn(auth["admin-token"], auth["tokens"])
        self.assertNotIn(auth["agent-token"], auth["tokens"])

        pod = docs["StatefulSet/mesh-a2a-mesh"]["spec"]["template"]["spec"]
        init = pod["initContainers"][0]
        meshd = container(docs)
        # Only the init container mounts the CA (and so its key).
        self.assertEqual([m["name"] for m in init["volumeMounts"]], ["ca", "tls"])
        self.assertNotIn("ca", [m["name"] for m in meshd["volumeMounts"]])
        tls_volume = next(v for v in pod["volumes"] if v["name"] == "tls")
        self.assertEqual(tls_volume["emptyDir"]["medium"], "Memory")

        for ordinal, (grpc, http, metrics) in enumerate(ports):
            node_id = f"mesh-a2a-mesh-{ordinal}"
            tls_dir = self.path(f"tls-{ordinal}")
            os.makedirs(tls_dir)
            env = env_of(init, MESHD_NODE_ID=node_id, POD_IP="127.0.0.1",
                         CA_DIR=self.path("ca"), TLS_DIR=tls_dir)
            result = run(init["command"], env=dict(self.env, **env))
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn(f"CN = {node_id}", result.stdout)
            other = ports[1 - ordinal][0]
            args = []
            for a in meshd["args"]:
                if a.startswith("--discovery-dns="):
                    a = f"--peers=127.0.0.1:{other}"  # DNS discovery is tested on its own
                a = (a.replace("$(POD_IP)", "127.0.0.1")
                      .replace(f":{grpc_port}", f":{grpc}")
                      .replace(f":{http_port}", f":{http}")
                      .replace(f":{metrics_port}", f":{metrics}")
                      .replace("=/var/lib/a2a-mesh", "=" + self.path(f"data-{ordinal}"))
                      .replace("/etc/a2a-mesh/tls/", tls_dir + "/"))
                args.append(self.local_paths(a))
            self.start_meshd(node_id, args)
        for _, _, metrics in ports:
            self.assertEqual(self.http_status(metrics, "/readyz"), 200)
            self.assertEqual(self.http_status(metrics, "/livez"), 200)

        # The helm test: through the client Service's name (in every node's
        # certificate) over TLS with the admin token, both nodes up -- which
        # they are only if their mTLS peering with the issued certificates works.
        script = docs["Pod/mesh-a2a-mesh-test-health"]["spec"]["containers"][0]["command"][2]
        script = self.local_paths(script.replace("/etc/a2a-mesh/ca/", self.path("ca") + "/"))
        self.assertIn(f"mesh-a2a-mesh:{grpc_port}", script)
        result = None
        pod_name = lambda ordinal: (  # noqa: E731
            f"mesh-a2a-mesh-{ordinal}.mesh-a2a-mesh-headless.agents.svc.cluster.local")

        def helm_test_passes():
            nonlocal result
            # The Service's name does not resolve here; localhost, also in the
            # certificate, does (TLS checks the name dialed).
            local = script.replace(f"mesh-a2a-mesh:{grpc_port}", f"localhost:{grpc_port}")
            # Each pod's own name: here each node's own port.
            for ordinal, (grpc, _, _) in enumerate(ports):
                local = local.replace(f"{pod_name(ordinal)}:{grpc_port}", f"localhost:{grpc}")
            result = self.sh(local)
            return result.returncode == 0
        for ordinal in range(2):
            self.assertIn(f"{pod_name(ordinal)}:{grpc_port}", script)
        self.wait_until(helm_test_passes, "the helm test passes",
                        lambda: f"{result.stdout}{result.stderr}")
        self.assertIn("2 of 2 nodes up", result.stdout)
        for grpc, _, _ in ports:
            self.assertIn(f"localhost:{grpc}: serving", result.stdout)
        # A pod that does not answer fails the test, naming it.
        dead = free_port()
        result = self.sh(script.replace(f"mesh-a2a-mesh:{grpc_port}", f"localhost:{grpc_port}")
                         .replace(f"{pod_name(0)}:{grpc_port}", f"localhost:{ports[0][0]}")
                         .replace(f"{pod_name(1)}:{grpc_port}", f"localhost:{dead}"))
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn(f"localhost:{dead}: not serving", result.stdout)

        # From the attacker's side: plain text, no token, a wrong CA.
        server = f"localhost:{grpc_port}"
        plain = self.meshctl("--server", server, "--token", auth["admin-token"], "nodes")
        self.assertNotEqual(plain.returncode, 0, plain.stdout)
        no_token = self.meshctl("--server", server, "--tls-ca", self.path("ca", "ca.crt"), "nodes")
        self.assertNotEqual(no_token.returncode, 0, no_token.stdout)
        self.assertIn("UNAUTHENTICATED", no_token.stderr + no_token.stdout)
        guessed = self.meshctl("--server", server, "--tls-ca", self.path("ca", "ca.crt"),
                               "--token", "x" * 43, "nodes")
        self.assertIn("UNAUTHENTICATED", guessed.stderr + guessed.stdout)
        # Another CA's bundle does not verify the node: the handshake fails.
        other_ca = self.path("other-ca.crt")
        made = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", self.path("other-ca.key"),
                    "-out", other_ca, "-subj", "/CN=other", "-days", "1"])
        self.assertEqual(made.returncode, 0, made.stderr)
        wrong_ca = self.meshctl("--server", server, "--tls-ca", other_ca,
                                "--token", auth["admin-token"], "nodes")
        self.assertNotEqual(wrong_ca.returncode, 0, wrong_ca.stdout)

        # An agent registers on node 1 with the agent token; a task sent to
        # node 0 with the admin token is routed to it over mTLS.
        agent = self.start("echo-agent", [os.path.join(ARGS.bin_dir, "echo-agent"),
                                          "--node", f"localhost:{ports[1][0]}",
                                          "--tls-ca", self.path("ca", "ca.crt"),
                                          "--token", auth["agent-token"]], self.env)
        admin = ["--server", server, "--tls-ca", self.path("ca", "ca.crt"),
                 "--token-file", self.path("admin", "admin-token")]
        self.wait_until(lambda: "echo" in self.meshctl(*admin, "skills").stdout,
                        "the agent's skill is in node 0's catalog")
        sent = self.meshctl(*admin, "send", "--skill", "echo", "hello through the chart")
        self.assertEqual(sent.returncode, 0, sent.stdout + sent.stderr + self.log("echo-agent"))
        self.assertIn("hello through the chart", sent.stdout)
        self.assertIn("policy loaded", self.log("mesh-a2a-mesh-0"))
        # The default audit log is the node's standard output.
        self.assertIn('"action":"register-agent","resource":"agent:echo skill:echo',
                      self.log("mesh-a2a-mesh-1"))
        agent.terminate()
        agent.wait(timeout=30)
        self.processes.remove(agent)

        # The preStop hook reaches its own node with the node's certificate.
        tls_dir = self.path("tls-0")
        self.check_prestop_drains(
            meshd, "mesh-a2a-mesh-0", metrics_port,
            lambda text: text.replace("/etc/a2a-mesh/tls/", tls_dir + "/"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--helm", default=ARGS.helm)
    parser.add_argument("--bin-dir", default=ARGS.bin_dir)
    ARGS, rest = parser.parse_known_args()
    for tool in (ARGS.helm, os.path.join(ARGS.bin_dir, "meshd")):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is missing: run tools/setup (helm) and tools/build (meshd)")
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
