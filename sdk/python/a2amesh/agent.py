"""Agents, their skills, and the connection that serves them from a meshd node."""

import asyncio
import functools
import inspect
import logging
import os
import queue
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf import json_format

from a2amesh.pb import a2a, agent_host, agent_host_grpc

log = logging.getLogger("a2amesh")

# The node refused the registration for good: retrying cannot help. The same
# codes as the C++ SDK's (src/sdk/agent.cc): a bad card, a limit, an id or a
# skill this credential may not register, no or a bad credential.
PERMANENT = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED})

TERMINAL = frozenset({a2a.TASK_STATE_COMPLETED, a2a.TASK_STATE_FAILED, a2a.TASK_STATE_CANCELED,
                      a2a.TASK_STATE_REJECTED})
INTERRUPTED = frozenset({a2a.TASK_STATE_INPUT_REQUIRED, a2a.TASK_STATE_AUTH_REQUIRED})

# The A2A extension by which an agent's card says it may answer with a direct
# Message (src/core/extensions.h).
DIRECT_REPLIES_EXTENSION = "urn:a2a-mesh:ext:direct-replies:v1"


class Refused(Exception):
    """The node refused the registration for good (its gRPC code and message)."""

    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class DelegationError(Exception):
    """A subtask could not run: the node's answer (no agent offers the skill, ...)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code  # a grpc.StatusCode
        self.message = message


class Cancelled(Exception):
    """The task was cancelled while the handler waited (for a subtask)."""


def text_part(text):
    return a2a.Part(text=text, media_type="text/plain")


def agent_message(text):
    """A message from the agent with one text part."""
    return a2a.Message(message_id=str(uuid.uuid4()), role=a2a.ROLE_AGENT, parts=[text_part(text)])


def user_message(text):
    """A message from a client (or a delegating agent) with one text part."""
    return a2a.Message(message_id=str(uuid.uuid4()), role=a2a.ROLE_USER, parts=[text_part(text)])


def text_of(message):
    """The text parts of a message, joined with newlines."""
    return "\n".join(p.text for p in message.parts if p.HasField("text"))


def apply_event(task, event):
    """Applies one A2A stream event to `task` (an a2a.Task), as the node does.

    The first event of a task's stream is the Task itself: it replaces `task`.
    """
    kind = event.WhichOneof("payload")
    if kind == "task":
        task.CopyFrom(event.task)
    elif kind == "status_update":
        update = event.status_update
        if task.status.HasField("message"):
            task.history.append(task.status.message)
        task.status.CopyFrom(update.status)
    elif kind == "artifact_update":
        update = event.artifact_update
        for existing in task.artifacts:
            if existing.artifact_id == update.artifact.artifact_id:
                if update.append:
                    existing.parts.extend(update.artifact.parts)
                else:
                    existing.CopyFrom(update.artifact)
                break
        else:
            task.artifacts.append(update.artifact)
    elif kind == "message":
        task.history.append(event.message)
    return task


def is_final(event):
    """Whether the event ends a turn: a terminal or interrupted status."""
    if event.WhichOneof("payload") == "status_update":
        state = event.status_update.status.state
        return state in TERMINAL or state in INTERRUPTED
    if event.WhichOneof("payload") == "task":
        return event.task.status.state in TERMINAL
    return False


class Task:
    """One task (or one turn of an input-required task), as its handler sees it.

    Events are sent at once, from any thread; each method returns False, and
    sends nothing, once the task has ended here (a final status was sent, or
    the node cancelled it) or the agent is stopping.
    """

    def __init__(self, connection, assignment):
        self._connection = connection
        self._assignment = assignment
        self._lock = threading.Lock()
        self._ended = False
        self._sent = False
        self._cancelled = threading.Event()

    # What the node sent.
    @property
    def id(self):
        return self._assignment.task.id

    @property
    def context_id(self):
        return self._assignment.task.context_id

    @property
    def agent_id(self):
        return self._assignment.agent_id

    @property
    def node_id(self):
        return self._connection.node_id

    @property
    def skill(self):
        """The skill the node routed the task for ("" if the request named none)."""
        return self._assignment.skill

    @property
    def message(self):
        """The message to act on (an a2a.Message)."""
        return self._assignment.message

    @property
    def text(self):
        """The message's text parts, joined with newlines."""
        return text_of(self._assignment.message)

    @property
    def task(self):
        """The task as the node holds it (an a2a.Task; its history ends with the message)."""
        return self._assignment.task

    @property
    def metadata(self):
        """The A2A request's metadata, as a dict."""
        return json_format.MessageToDict(self._assignment.request_metadata)

    @property
    def resumed(self):
        """True when the node re-sent the task after a reconnect or a node restart."""
        return self._assignment.resumed

    @property
    def traceparent(self):
        """The W3C trace context of this turn (the node's span for it; "" when
        nobody traces): the parent of the agent's own spans. delegate() sends it
        with each subtask unless given one of the agent's own."""
        return self._assignment.traceparent

    @property
    def tracestate(self):
        return self._assignment.tracestate

    @property
    def cancelled(self):
        return self._cancelled.is_set()

    def wait_cancelled(self, timeout=None):
        """Waits up to `timeout` seconds for a cancel; returns whether it came."""
        return self._cancelled.wait(timeout)

    @property
    def ended(self):
        with self._lock:
            return self._ended

    # Events.
    def working(self, note=""):
        """WORKING, with an optional note for the client."""
        return self.status(a2a.TASK_STATE_WORKING, note)

    def artifact(self, text=None, *, data=None, parts=None, artifact_id=None, name="",
                 append=False, last_chunk=True):
        """Sends an artifact, or one chunk of it (append=True adds to the one with the
        same id). Returns its id, or None if the task has ended."""
        artifact = a2a.Artifact(artifact_id=artifact_id or str(uuid.uuid4()), name=name)
        if text is not None:
            artifact.parts.append(text_part(text))
        if data is not None:
            part = artifact.parts.add(media_type="application/json")
            part.data.CopyFrom(json_format.ParseDict(data, part.data))
        for p in parts or ():
            artifact.parts.append(p)
        if not artifact.parts:
            raise ValueError("an artifact needs text, data or parts")
        event = a2a.StreamResponse(artifact_update=a2a.TaskArtifactUpdateEvent(
            artifact=artifact, append=append, last_chunk=last_chunk))
        return artifact.artifact_id if self._send(event, final=False) else None

    def say(self, text_or_message):
        """A message from the agent, added to the task's history."""
        message = (agent_message(text_or_message) if isinstance(text_or_message, str)
                   else text_or_message)
        return self._send(a2a.StreamResponse(message=message), final=False)

    def reply(self, text_or_message):
        """Answers the task's message with one Message instead of working on a task
        (A2A's direct reply; the agent needs direct_replies=True): the client that
        waits gets the Message and the node keeps no task. Only as the first thing
        sent for a new task (not a follow-up); returns False, sending nothing,
        otherwise."""
        message = (agent_message(text_or_message) if isinstance(text_or_message, str)
                   else text_or_message)
        if (self.task.status.state != a2a.TASK_STATE_SUBMITTED or len(self.task.history) != 1):
            return False
        with self._lock:
            if self._ended or self._sent:
                return False
            self._ended = self._sent = True
        return self._connection._send(agent_host.AgentToNode(
            reply=agent_host.TaskReply(task_id=self.id, message=message)))

    def complete(self, text=""):
        return self.status(a2a.TASK_STATE_COMPLETED, text)

    def fail(self, reason):
        return self.status(a2a.TASK_STATE_FAILED, reason)

    def reject(self, reason):
        return self.status(a2a.TASK_STATE_REJECTED, reason)

    def require_input(self, question):
        """Ends this turn: the client's answer comes as a new call of the handler."""
        return self.status(a2a.TASK_STATE_INPUT_REQUIRED, question)

    def status(self, state, text=""):
        """Any status, with an optional text message."""
        status = a2a.TaskStatus(state=state)
        if text:
            status.message.CopyFrom(agent_message(text))
        final = state in TERMINAL or state in INTERRUPTED
        return self._send(a2a.StreamResponse(
            status_update=a2a.TaskStatusUpdateEvent(status=status)), final=final)

    # Delegation.
    def delegate(self, skill="", text=None, *, agent_id="", tags=(), message=None,
                 accepted_output_modes=(), on_event=None, timeout=None, traceparent=None,
                 tracestate=None):
        """Runs a subtask of this task on an agent anywhere in the mesh and waits
        until it ends (or asks for input). Returns the subtask's Task as it ended.

        `on_event` sees each of its events as they arrive. Raises DelegationError
        with the node's answer, Cancelled if this task is cancelled meanwhile (the
        node cancels the subtask too), TimeoutError after `timeout` seconds (the
        subtask is cancelled), ConnectionError if the stream to the node broke.
        The subtask's spans are children of `traceparent` (a span of the agent's
        own), by default of this turn's (docs/tracing.md).
        """
        if message is None:
            if text is None:
                raise ValueError("delegate needs text or a message")
            message = user_message(text)
        selector = agent_host.Selector(agent_id=agent_id, skill=skill, tags=list(tags),
                                       accepted_output_modes=list(accepted_output_modes))
        if traceparent is None:
            traceparent, tracestate = self.traceparent, self.tracestate
        return self._connection.delegate(self, selector, message, on_event, timeout,
                                         traceparent, tracestate or "")

    async def delegate_async(self, *args, **kwargs):
        """delegate() for async handlers: awaits the subtask without blocking the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.delegate, *args, **kwargs))

    # Internals.
    def _send(self, event, final):
        with self._lock:
            if self._ended:
                return False
            self._sent = True
            if final:
                self._ended = True
        return self._connection.send_update(self.id, event)

    def _cancel(self):
        with self._lock:
            self._ended = True
        self._cancelled.set()


class Agent:
    """One agent: its card and a handler per skill.

        agent = a2amesh.Agent("shouter", description="Shouts what it is told.")

        @agent.skill("shout", description="Upper-cases the text.")
        def shout(task):
            return task.text.upper()

        agent.run(node="127.0.0.1:7400")

    A handler takes the Task and may be a function or an async function. What
    it returns completes the task: a str as a text artifact, a dict or a list
    as a JSON artifact, None as nothing more. An exception fails the task with
    its message. A handler that sent a final status itself (complete, fail,
    require_input, ...) has its return value ignored.
    """

    def __init__(self, agent_id, *, name=None, description="", version="0.1.0", card=None,
                 max_concurrency=4, direct_replies=False, input_modes=("text/plain",),
                 output_modes=("text/plain", "application/json")):
        self.agent_id = agent_id
        # Handlers may answer with task.reply(): the card declares it.
        self.direct_replies = direct_replies
        self.max_concurrency = max_concurrency
        self._card = card
        self._name = name or agent_id
        self._description = description or self._name
        self._version = version
        self._input_modes = list(input_modes)
        self._output_modes = list(output_modes)
        self._skills = []  # (a2a.AgentSkill, handler)

    def skill(self, skill_id, *, name=None, description="", tags=(), examples=()):
        """Decorator: the function handles tasks routed to skill `skill_id`."""
        def register(handler):
            self.add_skill(a2a.AgentSkill(id=skill_id, name=name or skill_id,
                                          description=description or name or skill_id,
                                          tags=list(tags) or [skill_id],
                                          examples=list(examples)), handler)
            return handler
        return register

    def add_skill(self, skill, handler):
        """Adds a skill (an a2a.AgentSkill) and its handler."""
        if any(s.id == skill.id for s, _ in self._skills):
            raise ValueError(f"agent {self.agent_id}: skill {skill.id} is declared twice")
        self._skills.append((skill, handler))

    def card(self):
        """The agent's A2A card: the one given, or one built from its skills."""
        card = a2a.AgentCard()
        if self._card is not None:
            card.CopyFrom(self._card)
        else:
            card = a2a.AgentCard(name=self._name, description=self._description,
                                 version=self._version, default_input_modes=self._input_modes,
                                 default_output_modes=self._output_modes)
            card.capabilities.streaming = True
            for skill, _ in self._skills:
                card.skills.append(skill)
        if self.direct_replies and not any(e.uri == DIRECT_REPLIES_EXTENSION
                                           for e in card.capabilities.extensions):
            card.capabilities.extensions.add(uri=DIRECT_REPLIES_EXTENSION)
        return card

    def handler_for(self, skill_id):
        """The handler of `skill_id`, or of the first skill when the task names none."""
        if not self._skills:
            return None
        for skill, handler in self._skills:
            if skill.id == skill_id:
                return handler
        return self._skills[0][1]

    def run(self, node=None, **options):
        """Serves this agent until interrupted; see serve()."""
        serve([self], node=node, **options)

    def start(self, node=None, **options):
        """Starts serving in the background; returns the Connection (see connect())."""
        return connect([self], node=node, **options)


def connect(agents, node=None, *, token=None, tls_ca=None, tls_cert=None, tls_key=None,
            instance=None, min_backoff=0.1, max_backoff=5.0):
    """Starts serving `agents` from the node at `node` (host:port) in the background.

    node: default $A2AMESH_NODE or 127.0.0.1:7400. token: a bearer token for a
    node with auth on (default $A2AMESH_TOKEN). tls_ca / tls_cert / tls_key:
    PEM files; any of them dials the node with TLS (tls_cert and tls_key: a
    client certificate, for nodes that authenticate agents by certificate).
    """
    connection = Connection(
        agents, node or os.environ.get("A2AMESH_NODE", "127.0.0.1:7400"),
        token=token if token is not None else os.environ.get("A2AMESH_TOKEN", ""),
        tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key, instance=instance,
        min_backoff=min_backoff, max_backoff=max_backoff)
    connection.start()
    return connection


def serve(agents, node=None, **options):
    """Serves `agents` until interrupted (Ctrl-C, SIGTERM's KeyboardInterrupt).

    A registration the node refuses for good (a bad card, an id or a skill this
    credential may not register) logs the node's message and exits with status 2.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    connection = connect(agents, node, **options)
    try:
        connection.wait_stopped()
    except KeyboardInterrupt:
        pass
    finally:
        connection.stop()
    if connection.refused is not None:
        raise SystemExit(2)


class _Outbox:
    """What one stream sends: a queue that its request iterator drains."""

    def __init__(self):
        self._queue = queue.Queue()

    def put(self, message):
        self._queue.put(message)

    def close(self):
        self._queue.put(None)

    def __iter__(self):
        while True:
            message = self._queue.get()
            if message is None:
                return
            yield message

    def drain(self):
        """The messages not taken yet (after the stream ended)."""
        left = []
        while True:
            try:
                message = self._queue.get_nowait()
            except queue.Empty:
                return left
            if message is not None:
                left.append(message)


class _Delegation:
    def __init__(self, parent, on_event):
        self.parent = parent
        self.on_event = on_event
        self.events = queue.Queue()


class Connection:
    """The process's stream to its node, serving one or more agents. Thread-safe."""

    def __init__(self, agents, node, *, token="", tls_ca=None, tls_cert=None, tls_key=None,
                 instance=None, min_backoff=0.1, max_backoff=5.0):
        if not agents:
            raise ValueError("connect needs at least one agent")
        for agent in agents:
            if agent.handler_for("") is None:
                raise ValueError(f"agent {agent.agent_id} has no skill: declare one with "
                                 "@agent.skill(...)")
        self.node = node
        self.agents = {agent.agent_id: agent for agent in agents}
        self._token = token
        self._instance = instance or f"python pid {os.getpid()}"
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._credentials = _credentials(tls_ca, tls_cert, tls_key)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._registered = threading.Condition(self._lock)
        self._outbox = None  # the live stream's, once registered
        self._pending = []  # sent while no stream was registered
        self._tasks = {}  # task id -> Task, while its handler runs
        self._delegations = {}  # request id -> _Delegation
        self._call = None
        self.node_id = ""
        self.registrations = 0
        self.heartbeats_acknowledged = 0
        self.refused = None  # Refused, once the node refused us for good
        workers = sum(max(1, a.max_concurrency) for a in agents)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="a2amesh-task")
        self._loop = None
        self._thread = threading.Thread(target=self._run, name="a2amesh-stream", daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        """Closes the stream and stops reconnecting; running handlers see a cancel."""
        self._stopping.set()
        with self._lock:
            call, self._call = self._call, None
            tasks = list(self._tasks.values())
        if call is not None:
            call.cancel()
        for task in tasks:
            task._cancel()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    def wait_stopped(self, timeout=None):
        """Blocks until the connection stops (stop(), or a refusal)."""
        return self._stopped.wait(timeout)

    def wait_registered(self, timeout=10.0):
        """Blocks until the node accepted the registration. Raises Refused if it
        refused it for good, TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._outbox is None and self.refused is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"not registered with {self.node} within {timeout}s")
                self._registered.wait(left)
            if self.refused is not None:
                raise self.refused
        return self.node_id

    @property
    def connected(self):
        with self._lock:
            return self._outbox is not None

    # Sending.
    def send_update(self, task_id, event):
        return self._send(agent_host.AgentToNode(
            update=agent_host.TaskUpdate(task_id=task_id, event=event)))

    def _send(self, message):
        with self._lock:
            if self._stopping.is_set():
                return False
            if self._outbox is not None:
                self._outbox.put(message)
            else:
                self._pending.append(message)  # sent once registered again
        return True

    # Delegation.
    def delegate(self, parent, selector, message, on_event, timeout, traceparent="",
                 tracestate=""):
        request_id = str(uuid.uuid4())
        delegation = _Delegation(parent, on_event)
        with self._lock:
            self._delegations[request_id] = delegation
        try:
            if not self._send(agent_host.AgentToNode(delegate=agent_host.DelegateRequest(
                    request_id=request_id, parent_task_id=parent.id, selector=selector,
                    message=message, traceparent=traceparent, tracestate=tracestate))):
                raise ConnectionError("the agent is stopping")
            result = a2a.Task()
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self._send(agent_host.AgentToNode(
                        cancel_delegation=agent_host.CancelDelegation(request_id=request_id)))
                    raise TimeoutError(f"the subtask did not end within {timeout}s")
                try:
                    item = delegation.events.get(timeout=min(0.2, left) if left else 0.2)
                except queue.Empty:
                    if parent.cancelled:
                        raise Cancelled(f"task {parent.id} was cancelled")
                    continue
                if isinstance(item, BaseException):
                    raise item
                if item.HasField("error"):
                    raise DelegationError(_status_code(item.error.code), item.error.message)
                event = item.event
                apply_event(result, event)
                if delegation.on_event is not None:
                    delegation.on_event(event)
                if is_final(event):
                    return result
        finally:
            with self._lock:
                self._delegations.pop(request_id, None)

    # The stream.
    def _run(self):
        backoff = self._min_backoff
        failures = 0
        try:
            while not self._stopping.is_set():
                registered, error = self._serve_once()
                if self._stopping.is_set():
                    break
                if registered:
                    backoff, failures = self._min_backoff, 0
                if error is not None:
                    code, details = error
                    if not registered and code in PERMANENT:
                        refused = Refused(code, details)
                        log.error("node %s refused the registration: %s", self.node, refused)
                        with self._lock:
                            self.refused = refused
                            self._registered.notify_all()
                        return
                    failures += 1
                    if registered or failures == 1:
                        log.warning("stream to node %s ended (%s: %s); reconnecting",
                                    self.node, code.name, details)
                self._stopping.wait(random.uniform(backoff / 2, backoff))
                backoff = min(backoff * 2, self._max_backoff)
        finally:
            self._stopped.set()

    def _serve_once(self):
        """One stream, until it ends: (whether it registered, (code, details) or None)."""
        channel = (grpc.secure_channel(self.node, self._credentials) if self._credentials
                   else grpc.insecure_channel(self.node))
        outbox = _Outbox()
        outbox.put(agent_host.AgentToNode(register=agent_host.RegisterRequest(
            token=self._token, instance=self._instance,
            agents=[agent_host.AgentRegistration(agent_id=a.agent_id, card=a.card(),
                                                 max_concurrency=a.max_concurrency)
                    for a in self.agents.values()])))
        metadata = [("authorization", f"Bearer {self._token}")] if self._token else None
        stub = agent_host_grpc.AgentHostStub(channel)
        call = stub.Connect(iter(outbox), metadata=metadata)
        with self._lock:
            self._call = call
        registered = False
        beat_stop = threading.Event()
        error = None
        try:
            for message in call:
                kind = message.WhichOneof("msg")
                if kind == "registered":
                    registered = True
                    self._on_registered(message.registered, outbox, beat_stop)
                elif kind == "assignment":
                    self._on_assignment(message.assignment)
                elif kind == "cancel":
                    with self._lock:
                        task = self._tasks.get(message.cancel.task_id)
                    if task is not None:
                        task._cancel()
                elif kind == "delegation_event":
                    with self._lock:
                        delegation = self._delegations.get(message.delegation_event.request_id)
                    if delegation is not None:
                        delegation.events.put(message.delegation_event)
                elif kind == "heartbeat":
                    self.heartbeats_acknowledged += 1
                elif kind == "update_rejected":
                    rejected = message.update_rejected
                    log.warning("node refused an update of task %s: %s", rejected.task_id,
                                rejected.reason)
            error = (grpc.StatusCode.UNAVAILABLE, "the node closed the stream")
        except grpc.RpcError as e:
            error = (e.code(), e.details())
        finally:
            beat_stop.set()
            with self._lock:
                if self._outbox is outbox:
                    self._outbox = None
                self._call = None
                # What the stream did not take is sent on the next one.
                self._pending[:0] = outbox.drain()
                delegations = list(self._delegations.values())
            outbox.close()
            for delegation in delegations:
                delegation.events.put(ConnectionError(
                    f"the stream to node {self.node} broke while the subtask ran"))
            channel.close()
        return registered, error

    def _on_registered(self, registered, outbox, beat_stop):
        with self._lock:
            self.node_id = registered.node_id
            self.registrations += 1
            pending, self._pending = self._pending, []
            for message in pending:
                outbox.put(message)
            self._outbox = outbox
            self._registered.notify_all()
        lease = registered.lease_ms / 1000.0 if registered.lease_ms else 30.0
        log.info("registered with node %s (%s), agents %s", self.node_id, self.node,
                 ", ".join(a.agent_id for a in registered.agents))
        threading.Thread(target=self._heartbeat, args=(outbox, lease / 3, beat_stop),
                         name="a2amesh-heartbeat", daemon=True).start()

    def _heartbeat(self, outbox, every, stop):
        while not stop.wait(every):
            outbox.put(agent_host.AgentToNode(
                heartbeat=agent_host.Heartbeat(unix_ms=int(time.time() * 1000))))

    def _on_assignment(self, assignment):
        agent = self.agents.get(assignment.agent_id)
        task_id = assignment.task.id
        with self._lock:
            if task_id in self._tasks:
                return  # re-sent after a reconnect while its handler still runs
            task = Task(self, assignment)
            self._tasks[task_id] = task
        handler = agent.handler_for(assignment.skill) if agent is not None else None
        if handler is None:
            task.reject(f"this process serves no agent {assignment.agent_id}")
            self._forget(task)
            return
        if inspect.iscoroutinefunction(handler):
            asyncio.run_coroutine_threadsafe(self._run_async(handler, task), self._event_loop())
        else:
            self._pool.submit(self._run_handler, handler, task)

    def _run_handler(self, handler, task):
        try:
            self._finish(task, handler(task))
        except Exception as e:  # the handler's failure is the task's
            self._failed(task, e)
        finally:
            self._forget(task)

    async def _run_async(self, handler, task):
        try:
            self._finish(task, await handler(task))
        except Exception as e:
            self._failed(task, e)
        finally:
            self._forget(task)

    def _finish(self, task, result):
        if task.ended:
            return
        if isinstance(result, str):
            task.artifact(result, name="result")
        elif isinstance(result, (dict, list)):
            task.artifact(data=result, name="result")
        elif result is not None:
            task.fail(f"the handler returned a {type(result).__name__}; return a str, a dict, "
                      "a list or None")
            return
        task.complete()

    def _failed(self, task, error):
        if isinstance(error, Cancelled) or task.cancelled:
            return
        log.warning("task %s failed: %s: %s", task.id, type(error).__name__, error)
        task.fail(f"{type(error).__name__}: {error}")

    def _forget(self, task):
        with self._lock:
            if self._tasks.get(task.id) is task:
                del self._tasks[task.id]

    def _event_loop(self):
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="a2amesh-async",
                                 daemon=True).start()
            return self._loop


def _status_code(value):
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


def _credentials(tls_ca, tls_cert, tls_key):
    if not (tls_ca or tls_cert):
        return None

    def read(path):
        with open(path, "rb") as f:
            return f.read()
    return grpc.ssl_channel_credentials(
        root_certificates=read(tls_ca) if tls_ca else None,
        private_key=read(tls_key) if tls_key else None,
        certificate_chain=read(tls_cert) if tls_cert else None)
