#!/usr/bin/env python3
"""wordcount-agent: an a2a-mesh agent in Python, on the AgentHost proto API.

Skill "wordcount": counts the words and lines of the text it is sent and
answers with two artifacts: a JSON data part ({"words", "lines", "top"}) and a
one-line text summary.

It uses only Debian's python3-grpcio and python3-protobuf and the modules
generated from proto/ (the build puts them in <build>/python):

    python3 wordcount_agent.py --node 127.0.0.1:7400 --gen build/python

See docs/agents.md for the protocol this follows.
"""

import argparse
import collections
import os
import queue
import random
import sys
import threading
import time
import uuid


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    default_gen = os.environ.get(
        "A2AMESH_PYTHON_GEN", os.path.join(here, "..", "..", "..", "build", "python"))
    p = argparse.ArgumentParser(description="a2a-mesh wordcount agent (Python)")
    p.add_argument("--node", default="127.0.0.1:7400", help="the meshd node's gRPC address")
    p.add_argument("--agent-id", default="wordcount", help="this agent's id on the node")
    p.add_argument("--max-concurrency", type=int, default=4, help="tasks run at once")
    p.add_argument("--token", default=os.environ.get("A2AMESH_TOKEN", ""),
                   help="bearer token for a node with auth on (env A2AMESH_TOKEN)")
    p.add_argument("--tls-ca", default="",
                   help="dial the node with TLS, trusting this PEM CA")
    p.add_argument("--tls-cert", default="", help="client certificate (PEM), for mutual TLS")
    p.add_argument("--tls-key", default="", help="private key (PEM) of --tls-cert")
    p.add_argument("--gen", default=default_gen,
                   help="directory of the Python modules generated from proto/")
    return p.parse_args()


ARGS = parse_args()
sys.path.insert(0, os.path.abspath(ARGS.gen))

import grpc  # noqa: E402
from google.protobuf import struct_pb2  # noqa: E402
from a2amesh.v1 import agent_host_pb2 as ah  # noqa: E402
from a2amesh.v1 import agent_host_pb2_grpc as ah_grpc  # noqa: E402
from lf.a2a.v1 import a2a_pb2 as a2a  # noqa: E402

# The node refused us for good: retrying cannot help.
PERMANENT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
             grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.PERMISSION_DENIED,
             grpc.StatusCode.UNAUTHENTICATED}


def card():
    c = a2a.AgentCard(
        name="Word Count",
        description="Counts words and lines, answering with JSON and a summary.",
        version="0.1.0",
        default_input_modes=["text/plain"],
        default_output_modes=["application/json", "text/plain"],
    )
    c.capabilities.streaming = True
    c.skills.add(id="wordcount", name="Word count",
                 description="Counts the words and lines of a text.",
                 tags=["text", "analysis"], examples=["how many words is this?"])
    return c


def log(event, **fields):
    line = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"wordcount-agent: {event} {line}".rstrip(), file=sys.stderr, flush=True)


class Connection:
    """One AgentHost.Connect stream: a queue feeds the request iterator."""

    def __init__(self, stub):
        self.outbox = queue.Queue()
        self.cancelled = set()
        self.node_id = ""
        self.lock = threading.Lock()
        metadata = [("authorization", f"Bearer {ARGS.token}")] if ARGS.token else None
        self.responses = stub.Connect(iter(self.outbox.get, None), metadata=metadata)

    def send(self, **kwargs):
        self.outbox.put(ah.AgentToNode(**kwargs))

    def update(self, task_id, **event):
        self.send(update=ah.TaskUpdate(task_id=task_id, event=a2a.StreamResponse(**event)))

    def close(self):
        self.outbox.put(None)


def status(state, text=None):
    s = a2a.TaskStatus(state=state)
    if text:
        s.message.message_id = str(uuid.uuid4())
        s.message.role = a2a.ROLE_AGENT
        s.message.parts.add(text=text, media_type="text/plain")
    return a2a.TaskStatusUpdateEvent(status=s)


def run_task(conn, assignment):
    task_id = assignment.task.id
    text = "\n".join(p.text for p in assignment.message.parts if p.HasField("text"))
    conn.update(task_id, status_update=status(a2a.TASK_STATE_WORKING, "counting"))
    words = text.split()
    counts = collections.Counter(w.lower().strip(".,;:!?\"'()") for w in words)
    top = [{"word": w, "count": n} for w, n in counts.most_common(3) if w]
    with conn.lock:
        if task_id in conn.cancelled:
            return
    data = struct_pb2.Value()
    data.struct_value.update({"words": len(words), "lines": len(text.splitlines()) or 0,
                              "top": top})
    counts_artifact = a2a.Artifact(artifact_id="counts", name="counts")
    counts_artifact.parts.add(data=data, media_type="application/json")
    conn.update(task_id, artifact_update=a2a.TaskArtifactUpdateEvent(
        artifact=counts_artifact, last_chunk=True))
    summary = a2a.Artifact(artifact_id="summary", name="summary")
    lines = len(text.splitlines())
    summary.parts.add(text=f"{len(words)} word{'s' * (len(words) != 1)}, "
                           f"{lines} line{'s' * (lines != 1)}",
                      media_type="text/plain")
    conn.update(task_id, artifact_update=a2a.TaskArtifactUpdateEvent(
        artifact=summary, last_chunk=True))
    conn.update(task_id, status_update=status(
        a2a.TASK_STATE_COMPLETED, f"counted by {assignment.agent_id}@{conn.node_id}"))


def heartbeat(conn, every, stop):
    while not stop.wait(every):
        conn.send(heartbeat=ah.Heartbeat(unix_ms=int(time.time() * 1000)))


def serve_once(stub):
    """Runs one stream until it ends. Returns False if the node refused us for good."""
    conn = Connection(stub)
    conn.send(register=ah.RegisterRequest(
        token=ARGS.token,
        instance=f"wordcount-agent (python) pid {os.getpid()}",
        agents=[ah.AgentRegistration(agent_id=ARGS.agent_id, card=card(),
                                     max_concurrency=ARGS.max_concurrency)]))
    stop = threading.Event()
    workers = threading.BoundedSemaphore(ARGS.max_concurrency)
    try:
        for message in conn.responses:
            kind = message.WhichOneof("msg")
            if kind == "registered":
                lease = message.registered.lease_ms / 1000.0
                conn.node_id = message.registered.node_id
                log("registered", node=message.registered.node_id, lease=f"{lease}s")
                threading.Thread(target=heartbeat, args=(conn, lease / 3, stop),
                                 daemon=True).start()
            elif kind == "assignment":
                def work(assignment=message.assignment):
                    with workers:
                        run_task(conn, assignment)
                threading.Thread(target=work, daemon=True).start()
            elif kind == "cancel":
                with conn.lock:
                    conn.cancelled.add(message.cancel.task_id)
            elif kind == "update_rejected":
                log("update refused", task=message.update_rejected.task_id,
                    reason=message.update_rejected.reason)
    except grpc.RpcError as e:
        if e.code() in PERMANENT:
            log("refused by the node", code=e.code().name, details=e.details())
            return False
        log("stream ended", code=e.code().name, details=e.details())
    finally:
        stop.set()
        conn.close()
    return True


def channel():
    """A channel to the node: TLS if a CA or a client certificate is given."""
    if not (ARGS.tls_ca or ARGS.tls_cert):
        return grpc.insecure_channel(ARGS.node)
    def read(path):
        with open(path, "rb") as f:
            return f.read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ARGS.tls_ca) if ARGS.tls_ca else None,
        private_key=read(ARGS.tls_key) if ARGS.tls_key else None,
        certificate_chain=read(ARGS.tls_cert) if ARGS.tls_cert else None)
    return grpc.secure_channel(ARGS.node, credentials)


def main():
    channel_ = channel()
    stub = ah_grpc.AgentHostStub(channel_)
    backoff = 0.1
    while True:
        if not serve_once(stub):
            return 2
        time.sleep(random.uniform(0, backoff))
        backoff = min(backoff * 2, 5.0)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
