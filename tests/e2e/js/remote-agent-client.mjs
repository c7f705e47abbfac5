#!/usr/bin/env node
// The official A2A JS SDK (@a2a-js/sdk, pinned in package.json) as a client of
// a mesh node, driving a task that runs on a remote A2A agent (one the mesh
// reaches by URL, tests/e2e/remote_agent_e2e_test.cc). It names only a skill.
// Prints one JSON line per event, flushed as it arrives:
//   {"turn":N,"event":{...}}   a StreamResponse of turn N, in the SDK's ProtoJSON
//   {"canceled":{...}}         the Task CancelTask answered
//   {"error":"..."}            the call failed (exit 1)
// Usage: node remote-agent-client.mjs BASE_URL BINDING SKILL SCENARIO ARGS...
//   stream TEXT           one SendStreamingMessage of TEXT
//   ask TEXT ANSWER       a SendStreamingMessage of TEXT that ends asking for
//                         input; then ANSWER sent to that task, streamed too
//   cancel TEXT           a SendStreamingMessage of TEXT; CancelTask once its
//                         first event (the Task) arrives; the rest of the stream
import crypto from 'node:crypto';
import { Role, StreamResponse, Task } from '@a2a-js/sdk';
import {
  ClientFactory,
  ClientFactoryOptions,
  JsonRpcTransportFactory,
  RestTransportFactory,
} from '@a2a-js/sdk/client';
import { GrpcTransportFactory } from '@a2a-js/sdk/client/grpc';

const [baseUrl, binding, skill, scenario, ...args] = process.argv.slice(2);
if (!baseUrl || !binding || !skill || !['stream', 'ask', 'cancel'].includes(scenario)) {
  console.error('usage: node remote-agent-client.mjs BASE_URL BINDING SKILL stream|ask|cancel ARGS...');
  process.exit(2);
}
const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory(), new RestTransportFactory(), new GrpcTransportFactory()],
    preferredTransports: [binding],
  })
);
const request = (text, taskId = '', contextId = '') => ({
  tenant: '',
  message: {
    messageId: crypto.randomUUID(),
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    taskId,
    contextId,
    extensions: [],
    metadata: undefined,
    referenceTaskIds: [],
  },
  configuration: undefined,
  metadata: taskId ? undefined : { 'a2amesh/skill': skill },
});
const print = (obj) => console.log(JSON.stringify(obj));

try {
  const client = await factory.createFromUrl(baseUrl);
  // One streamed turn; `first` hears its first event.
  const turn = async (number, params, first = async () => {}) => {
    let task;
    for await (const event of client.sendMessageStream(params)) {
      const json = StreamResponse.toJSON(event);
      print({ turn: number, event: json });
      if (!task) {
        task = json.task;
        await first(task);
      }
    }
    return task;
  };
  if (scenario === 'stream') {
    await turn(1, request(args[0]));
  } else if (scenario === 'ask') {
    const task = await turn(1, request(args[0]));
    await turn(2, request(args[1], task.id, task.contextId));
  } else {
    await turn(1, request(args[0]), async (task) => {
      const canceled = await client.cancelTask({ tenant: '', id: task.id, metadata: undefined });
      print({ canceled: Task.toJSON(canceled) });
    });
  }
} catch (e) {
  print({ error: String(e?.message ?? e) });
  process.exit(1);
}
