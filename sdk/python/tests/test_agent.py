"""Tests of the a2amesh Python SDK: its pure parts, and agents served from real
meshd nodes (and a C++ agent) started by the test.

    A2AMESH_BIN=build/bin python3 -m unittest discover -s sdk/python/tests

A2AMESH_BIN names the directory of meshd and echo-agent (default: the
repository's build/bin). The SDK must be importable (installed, or the
package's directory on PYTHONPATH with its generated modules).
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import uuid

import grpc

import a2amesh
from a2amesh.pb import a2a, a2a_grpc

HERE = os.path.dirname(os.path.abspath(__file__))
# A2A 1.0 clients say so (a request without it is taken for A2A 0.3).
V1 = [("a2a-version", "1.0")]
BIN = os.environ.get("A2AMESH_BIN",
                     os.path.join(HERE, os.pardir, os.pardir, os.pardir, "build", "bin"))


def wait_for(condition, timeout=10.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Node:
    """A meshd started for a test, on free ports, tasks in memory."""

    def __init__(self, node_id, peers=None, grpc_address="127.0.0.1:0"):
        self.dir = tempfile.TemporaryDirectory()
        ready = os.path.join(self.dir.name, "ready.json")
        args = [os.path.join(BIN, "meshd"), "--node-id", node_id, "--ephemeral",
                "--grpc-address", grpc_address, "--http-address", "", "--metrics-address", "",
                "--ready-file", ready, "--peer-heartbeat", "100ms", "--peer-timeout", "2s"]
        if peers:
            args += ["--peers", ",".join(peers)]
        self.log = open(os.path.join(self.dir.name, "meshd.log"), "w")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(ready) and os.path.getsize(ready) > 0 or
                 self.process.poll() is not None, what=f"meshd {node_id} to serve")
        if self.process.poll() is not None:
            raise RuntimeError(f"meshd {node_id} exited: {self.read_log()}")
        with open(ready) as f:
            self.address = json.load(f)["grpc_address"]
        self.channel = grpc.insecure_channel(self.address)
        self.a2a = a2a_grpc.A2AServiceStub(self.channel)

    def read_log(self):
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        self.dir.cleanup()

    def send(self, text, skill, **configuration):
        request = a2a.SendMessageRequest(message=a2amesh.user_message(text))
        request.metadata.update({"a2amesh/skill": skill})
        for key, value in configuration.items():
            setattr(request.configuration, key, value)
        return request


class PurePartsTest(unittest.TestCase):
    def test_a_card_is_built_from_the_declared_skills(self):
        agent = a2amesh.Agent("counter", description="Counts.")

        @agent.skill("count", description="Counts words.", tags=["text"])
        def count(task):
            return None

        card = agent.card()
        self.assertEqual(card.name, "counter")
        self.assertEqual([s.id for s in card.skills], ["count"])
        self.assertEqual(list(card.skills[0].tags), ["text"])
        self.assertTrue(card.capabilities.streaming)
        self.assertIs(agent.handler_for("count"), count)
        self.assertIs(agent.handler_for(""), count)  # a task naming no skill

    def test_a_skill_declared_twice_is_refused_naming_it(self):
        agent = a2amesh.Agent("a")
        agent.add_skill(a2a.AgentSkill(id="s", name="s", description="s"), lambda t: None)
        with self.assertRaisesRegex(ValueError, "skill s is declared twice"):
            agent.add_skill(a2a.AgentSkill(id="s", name="s", description="s"), lambda t: None)

    def test_an_agent_without_skills_cannot_connect(self):
        with self.assertRaisesRegex(ValueError, "agent lonely has no skill"):
            a2amesh.Connection([a2amesh.Agent("lonely")], "127.0.0.1:1")

    def test_events_apply_to_a_task_as_the_node_applies_them(self):
        task = a2a.Task(id="t", status=a2a.TaskStatus(state=a2a.TASK_STATE_SUBMITTED))
        first = a2a.StreamResponse(task=task)
        chunk = a2a.StreamResponse(artifact_update=a2a.TaskArtifactUpdateEvent(
            artifact=a2a.Artifact(artifact_id="a", parts=[a2amesh.text_part("one ")])))
        more = a2a.StreamResponse(artifact_update=a2a.TaskArtifactUpdateEvent(
            artifact=a2a.Artifact(artifact_id="a", parts=[a2amesh.text_part("two")]),
            append=True))
        done = a2a.StreamResponse(status_update=a2a.TaskStatusUpdateEvent(
            status=a2a.TaskStatus(state=a2a.TASK_STATE_COMPLETED)))
        result = a2a.Task()
        for event in (first, chunk, more, done):
            a2amesh.apply_event(result, event)
        self.assertEqual(result.id, "t")
        self.assertEqual([p.text for p in result.artifacts[0].parts], ["one ", "two"])
        self.assertEqual(result.status.state, a2a.TASK_STATE_COMPLETED)
        self.assertFalse(a2amesh.is_final(chunk))
        self.assertTrue(a2amesh.is_final(done))


class LiveAgentTest(unittest.TestCase):
    """An SDK agent served from a real node, called with a real A2A gRPC client."""

    def setUp(self):
        self.node = Node("a")
        self.addCleanup(self.node.stop)
        self.agent = a2amesh.Agent("py", description="Python test agent")
        self.cancel_seen = threading.Event()

        @self.agent.skill("shout")
        def shout(task):
            return task.text.upper()

        @self.agent.skill("chunks")
        async def chunks(task):  # an async handler, streaming an artifact in chunks
            for i, word in enumerate(task.text.split()):
                task.artifact(word, artifact_id="words", append=i > 0, last_chunk=False)
            task.artifact(".", artifact_id="words", append=True, last_chunk=True)
            return {"words": len(task.text.split())}

        @self.agent.skill("wait")
        def wait(task):
            task.working("waiting for a cancel")
            if task.wait_cancelled(20):
                self.cancel_seen.set()

        @self.agent.skill("broken")
        def broken(task):
            raise RuntimeError("the model is down")

        self.connection = self.agent.start(node=self.node.address)
        self.addCleanup(self.connection.stop)
        self.assertEqual(self.connection.wait_registered(10), "a")

    def test_a_function_answers_a_blocking_send_with_an_artifact(self):
        response = self.node.a2a.SendMessage(self.node.send("hello mesh", "shout"), metadata=V1, timeout=10)
        task = response.task
        self.assertEqual(task.status.state, a2a.TASK_STATE_COMPLETED)
        self.assertEqual(task.artifacts[0].parts[0].text, "HELLO MESH")

    def test_an_async_function_streams_its_chunks_in_order(self):
        events = list(self.node.a2a.SendStreamingMessage(
            self.node.send("one two three", "chunks"), metadata=V1, timeout=10))
        self.assertEqual(events[0].WhichOneof("payload"), "task")
        words = [e.artifact_update.artifact.parts[0].text for e in events
                 if e.HasField("artifact_update") and e.artifact_update.artifact.artifact_id ==
                 "words"]
        self.assertEqual(words, ["one", "two", "three", "."])
        self.assertEqual(events[-1].status_update.status.state, a2a.TASK_STATE_COMPLETED)
        result = a2a.Task()
        for event in events:
            a2amesh.apply_event(result, event)
        data = [a for a in result.artifacts if a.name == "result"][0].parts[0].data
        self.assertEqual(data.struct_value.fields["words"].number_value, 3)

    def test_a_handler_sees_the_clients_cancel(self):
        stream = self.node.a2a.SendStreamingMessage(self.node.send("x", "wait"), metadata=V1, timeout=20)
        first = next(stream)
        self.node.a2a.CancelTask(a2a.CancelTaskRequest(id=first.task.id), metadata=V1, timeout=10)
        self.assertTrue(self.cancel_seen.wait(10), "the handler never saw the cancel")
        task = self.node.a2a.GetTask(a2a.GetTaskRequest(id=first.task.id), metadata=V1, timeout=10)
        self.assertEqual(task.status.state, a2a.TASK_STATE_CANCELED)

    def test_an_exception_fails_the_task_with_its_message(self):
        task = self.node.a2a.SendMessage(self.node.send("x", "broken"), metadata=V1, timeout=10).task
        self.assertEqual(task.status.state, a2a.TASK_STATE_FAILED)
        self.assertIn("RuntimeError: the model is down", a2amesh.text_of(task.status.message))

    def test_the_agent_registers_again_when_its_node_comes_back(self):
        address = self.node.address
        self.node.stop()
        wait_for(lambda: not self.connection.connected, what="the stream to break")
        self.node = Node("a", grpc_address=address)
        self.addCleanup(self.node.stop)
        wait_for(lambda: self.connection.registrations == 2, timeout=20,
                 what="the agent to register again")
        task = self.node.a2a.SendMessage(self.node.send("again", "shout"), metadata=V1, timeout=10).task
        self.assertEqual(task.artifacts[0].parts[0].text, "AGAIN")


class DirectReplyTest(unittest.TestCase):
    """A chat-style agent answers with a Message: the client gets no task."""

    def setUp(self):
        self.node = Node("a")
        self.addCleanup(self.node.stop)
        self.agent = a2amesh.Agent("chat", direct_replies=True)

        @self.agent.skill("chat")
        def chat(task):
            task.reply(f"you said: {task.text}")

        self.connection = self.agent.start(node=self.node.address)
        self.addCleanup(self.connection.stop)
        self.connection.wait_registered(10)

    def test_the_card_says_the_agent_may_reply_directly(self):
        extensions = [e.uri for e in self.agent.card().capabilities.extensions]
        self.assertEqual(extensions, [a2amesh.agent.DIRECT_REPLIES_EXTENSION])

    def test_a_blocking_send_and_a_stream_get_the_message_alone(self):
        response = self.node.a2a.SendMessage(self.node.send("hello", "chat"), metadata=V1,
                                             timeout=10)
        self.assertEqual(response.WhichOneof("payload"), "message")
        self.assertEqual(a2amesh.text_of(response.message), "you said: hello")
        events = list(self.node.a2a.SendStreamingMessage(self.node.send("again", "chat"),
                                                         metadata=V1, timeout=10))
        self.assertEqual([e.WhichOneof("payload") for e in events], ["message"])
        self.assertEqual(a2amesh.text_of(events[0].message), "you said: again")
        listed = self.node.a2a.ListTasks(a2a.ListTasksRequest(), metadata=V1, timeout=5)
        self.assertEqual(len(listed.tasks), 0)


class DelegationTest(unittest.TestCase):
    """A Python agent on node a delegates to the C++ echo agent on node b."""

    def setUp(self):
        self.b = Node("b")
        self.addCleanup(self.b.stop)
        self.a = Node("a", peers=[self.b.address])
        self.addCleanup(self.a.stop)
        self.echo = subprocess.Popen(
            [os.path.join(BIN, "echo-agent"), "--node", self.b.address],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop_echo)
        self.subtask_states = []
        self.traceparents = []
        self.agent = a2amesh.Agent("planner")

        @self.agent.skill("plan")
        def plan(task):
            done = task.delegate("echo", f"from python: {task.text}")
            self.subtask_states.append(done.status.state)
            return f"{done.artifacts[0].parts[0].text} ({a2amesh.text_of(done.status.message)})"

        @self.agent.skill("traced")
        def traced(task):
            self.traceparents.append(task.traceparent)
            done = task.delegate("echo", "traced")
            return a2amesh.text_of(done.status.message)

        @self.agent.skill("impatient")
        def impatient(task):
            try:
                task.delegate(agent_id="slow", text="take your time", timeout=1.0)
            except TimeoutError as e:
                return f"gave up: {e}"

        @self.agent.skill("nowhere")
        def nowhere(task):
            task.delegate("no-such-skill", "anyone?")

        self.connection = self.agent.start(node=self.a.address)
        self.addCleanup(self.connection.stop)
        self.connection.wait_registered(10)
        # Node a routes "echo" to node b once b's catalog reached it.
        wait_for(self.echo_is_routable, timeout=15, what="node a to learn b's echo agent")

    def stop_echo(self):
        self.echo.kill()
        self.echo.wait()

    def echo_is_routable(self):
        try:
            task = self.a.a2a.SendMessage(self.a.send("ping", "echo"), metadata=V1, timeout=5).task
            return task.status.state == a2a.TASK_STATE_COMPLETED
        except grpc.RpcError:
            return False

    def test_a_subtask_runs_on_a_cpp_agent_on_another_node(self):
        task = self.a.a2a.SendMessage(self.a.send("hi", "plan"), metadata=V1, timeout=15).task
        self.assertEqual(task.status.state, a2a.TASK_STATE_COMPLETED, task)
        self.assertIn("from python: hi", task.artifacts[0].parts[0].text)
        self.assertIn("echo@b", task.artifacts[0].parts[0].text)  # run on node b
        self.assertEqual(self.subtask_states, [a2a.TASK_STATE_COMPLETED])

    def test_the_handler_sees_the_callers_trace_and_delegates_within_it(self):
        # Nodes that do not trace pass the caller's context on as is.
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        task = self.a.a2a.SendMessage(self.a.send("hi", "traced"),
                                      metadata=V1 + [("traceparent", traceparent)],
                                      timeout=15).task
        self.assertEqual(task.status.state, a2a.TASK_STATE_COMPLETED, task)
        self.assertEqual(self.traceparents, [traceparent])

    def test_a_subtask_given_up_is_cancelled(self):
        # Another echo agent on b, slow (it also offers "echo": only this test has it).
        slow = subprocess.Popen(
            [os.path.join(BIN, "echo-agent"), "--node", self.b.address, "--agent-id", "slow",
             "--delay", "30s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (slow.kill(), slow.wait()))
        # Until node a has learnt of it, the delegation fails at once (no agent "slow").
        answers = []

        def gives_up():
            answers.append(self.a.a2a.SendMessage(self.a.send("go", "impatient"), metadata=V1,
                                                  timeout=15).task)
            return answers[-1].artifacts and "gave up" in answers[-1].artifacts[0].parts[0].text
        wait_for(gives_up, timeout=20, what="a delegation to the slow agent to be given up")
        task = answers[-1]
        self.assertEqual(task.status.state, a2a.TASK_STATE_COMPLETED)
        # The subtask (owned by node a, run on b: its turn there is cancelled too).
        def subtask_canceled():
            listed = self.a.a2a.ListTasks(a2a.ListTasksRequest(), metadata=V1, timeout=5)
            return any(t.status.state == a2a.TASK_STATE_CANCELED and t.id != task.id
                       for t in listed.tasks)
        wait_for(subtask_canceled, what="the subtask to be cancelled")

    def test_a_subtask_nobody_can_run_fails_the_task_with_the_nodes_answer(self):
        task = self.a.a2a.SendMessage(self.a.send("x", "nowhere"), metadata=V1, timeout=15).task
        self.assertEqual(task.status.state, a2a.TASK_STATE_FAILED)
        message = a2amesh.text_of(task.status.message)
        self.assertIn("DelegationError", message)
        self.assertIn("no-such-skill", message)


class RefusalTest(unittest.TestCase):
    def test_a_refused_registration_exits_2_with_the_nodes_message(self):
        node = Node("a")
        self.addCleanup(node.stop)
        script = textwrap.dedent("""
            import sys, a2amesh
            from a2amesh.pb import a2a
            card = a2a.AgentCard(name="bad")  # no skills, no description: invalid
            agent = a2amesh.Agent("bad", card=card)
            agent.add_skill(a2a.AgentSkill(id="x", name="x", description="x"), lambda t: None)
            agent.run(node=sys.argv[1])
        """)
        done = subprocess.run([sys.executable, "-c", script, node.address],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("refused the registration", done.stderr)
        self.assertIn("INVALID_ARGUMENT", done.stderr)

    def test_an_unreachable_node_is_named_in_the_first_failures_log(self):
        connection = a2amesh.Agent("lonely")
        connection.add_skill(a2a.AgentSkill(id="s", name="s", description="s"), lambda t: None)
        with self.assertLogs("a2amesh", level="WARNING") as logs:
            c = connection.start(node="127.0.0.1:1")
            wait_for(lambda: logs.output, what="a log line")
            c.stop()
        self.assertIn("127.0.0.1:1", logs.output[0])
        self.assertIn("UNAVAILABLE", logs.output[0])


if __name__ == "__main__":
    unittest.main()
