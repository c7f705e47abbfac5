#!/usr/bin/env node
// The official A2A JS SDK (@a2a-js/sdk, pinned in package.json) as a
// third-party client of meshd. It discovers the node's agent card at
// BASE_URL/.well-known/agent-card.json, picks BINDING (JSONRPC, HTTP+JSON or
// GRPC) from the card's interfaces, runs a fixed scenario and prints one JSON
// object per line, in the SDK's ProtoJSON wire form, for the C++ test
// (tests/e2e/js_sdk_test.cc) to check and to compare across bindings:
//   {"step":"card","binding":...,"interfaces":[...]}  the card and the binding used
//   {"step":"send","task":{...}}              blocking SendMessage, skill echo
//   {"step":"send_immediate","task":{...}}    returnImmediately, skill echo
//   {"step":"stream","event":{...}}           SendStreamingMessage, skill uppercase
//   {"step":"get","task":{...}}               GetTask of the streamed task
//   {"step":"list","response":{...}}          ListTasks of the streamed task's context
//   {"step":"push","created":{...},"got":{...},"listed":1,"left":0}  push config
//                                             create, get, list, delete on a running task
//   {"step":"cancel","task":{...}}            CancelTask of a long uppercase task
//   {"step":"subscribe","first":..,"last":{...},"events":N}  SubscribeToTask of a running task
//   {"step":"error","reason":...,"message":...}  GetTask of an unknown id
//   {"step":"reply","kind":"message","message":{...}}  blocking SendMessage, skill chat
//                                             (an agent that answers with a direct Message)
//   {"step":"reply_stream","events":[{...}]}  SendStreamingMessage, skill chat
// Usage: node meshd-client.mjs BASE_URL BINDING
import crypto from 'node:crypto';
import { AgentCard, ListTasksResponse, Message, Role, StreamResponse, Task, TaskPushNotificationConfig } from '@a2a-js/sdk';
import {
  ClientFactory,
  ClientFactoryOptions,
  JsonRpcTransportFactory,
  RestTransportFactory,
} from '@a2a-js/sdk/client';
import { GrpcTransportFactory } from '@a2a-js/sdk/client/grpc';

const [baseUrl, binding] = process.argv.slice(2);
if (!baseUrl || !binding) {
  console.error('usage: node meshd-client.mjs BASE_URL JSONRPC|HTTP+JSON|GRPC');
  process.exit(2);
}

const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory(), new RestTransportFactory(), new GrpcTransportFactory()],
    preferredTransports: [binding],
  })
);

const message = (text) => ({
  messageId: crypto.randomUUID(),
  role: Role.ROLE_USER,
  parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
  taskId: '',
  contextId: '',
  extensions: [],
  metadata: undefined,
  referenceTaskIds: [],
});
const request = (skill, text, configuration = undefined) => ({
  tenant: '',
  message: message(text),
  configuration,
  metadata: { 'a2amesh/skill': skill },
});
const immediately = {
  acceptedOutputModes: ['text/plain'],
  taskPushNotificationConfig: undefined,
  historyLength: undefined,
  returnImmediately: true,
};
const print = (obj) => console.log(JSON.stringify(obj));
const isFinal = (state) =>
  ['TASK_STATE_COMPLETED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELED', 'TASK_STATE_REJECTED'].includes(state);

try {
  const client = await factory.createFromUrl(baseUrl);
  const card = AgentCard.toJSON(await client.getAgentCard());
  print({
    step: 'card',
    binding: card.supportedInterfaces.find((i) => i.protocolBinding === binding)?.protocolBinding,
    interfaces: card.supportedInterfaces,
    skills: card.skills.map((s) => s.id),
    streaming: card.capabilities.streaming,
    pushNotifications: card.capabilities.pushNotifications,
  });

  const sent = await client.sendMessage(request('echo', 'hello from js'));
  print({ step: 'send', task: Task.toJSON(sent) });

  const immediate = await client.sendMessage(request('echo', 'right away', immediately));
  print({ step: 'send_immediate', task: Task.toJSON(immediate) });

  let streamed;
  for await (const event of client.sendMessageStream(request('uppercase', 'stream these words'))) {
    print({ step: 'stream', event: StreamResponse.toJSON(event) });
    if (event.payload?.$case === 'task') streamed = event.payload.value;
  }
  const got = await client.getTask({ tenant: '', id: streamed.id, historyLength: undefined });
  print({ step: 'get', task: Task.toJSON(got) });

  const listed = await client.listTasks({
    tenant: '',
    contextId: streamed.contextId,
    status: 0, // TASK_STATE_UNSPECIFIED: any state
    pageSize: 10,
    pageToken: '',
    historyLength: 0,
    statusTimestampAfter: undefined,
    includeArtifacts: true,
  });
  print({ step: 'list', response: ListTasksResponse.toJSON(listed) });

  // Long enough (50 words, 20 ms apart) to be cancelled while it runs.
  const long = await client.sendMessage(request('uppercase', Array(50).fill('word').join(' '), immediately));

  // The four push-notification config calls, on the running task.
  const hook = {
    tenant: '',
    id: 'js-hook',
    taskId: long.id,
    url: 'https://hooks.example.com/a2a',
    token: 'js-token',
    authentication: { scheme: 'Bearer', credentials: 'js-secret' },
  };
  const created = await client.createTaskPushNotificationConfig(hook);
  const gotHook = await client.getTaskPushNotificationConfig({ tenant: '', taskId: long.id, id: 'js-hook' });
  const hooks = await client.listTaskPushNotificationConfig({ tenant: '', taskId: long.id, pageSize: 0, pageToken: '' });
  await client.deleteTaskPushNotificationConfig({ tenant: '', taskId: long.id, id: 'js-hook' });
  const left = await client.listTaskPushNotificationConfig({ tenant: '', taskId: long.id, pageSize: 0, pageToken: '' });
  print({
    step: 'push',
    created: TaskPushNotificationConfig.toJSON(created),
    got: TaskPushNotificationConfig.toJSON(gotHook),
    listed: hooks.configs.length,
    left: left.configs.length,
  });
  const canceled = await client.cancelTask({ tenant: '', id: long.id, metadata: undefined });
  print({ step: 'cancel', task: Task.toJSON(canceled) });

  const running = await client.sendMessage(request('uppercase', 'one two three four five six', immediately));
  let first;
  let last;
  let events = 0;
  for await (const event of client.resubscribeTask({ tenant: '', id: running.id })) {
    const json = StreamResponse.toJSON(event);
    first ??= Object.keys(json)[0];
    last = json;
    ++events;
  }
  const done = await client.getTask({ tenant: '', id: running.id, historyLength: 0 });
  print({ step: 'subscribe', first, last, events, final: Task.toJSON(done) });

  try {
    await client.getTask({ tenant: '', id: 'js~no-such-task', historyLength: undefined });
    print({ step: 'error', reason: 'none', message: 'GetTask of an unknown id succeeded' });
  } catch (e) {
    print({ step: 'error', reason: e?.reason, name: e?.constructor?.name, message: e?.message });
  }
  // A chat-style agent answers with a direct Message: no task.
  const reply = await client.sendMessage(request('chat', 'hi there'));
  const isMessage = 'messageId' in reply && !('status' in reply);
  print({ step: 'reply', kind: isMessage ? 'message' : 'task',
          message: isMessage ? Message.toJSON(reply) : Task.toJSON(reply) });
  const replyEvents = [];
  for await (const event of client.sendMessageStream(request('chat', 'and streamed'))) {
    replyEvents.push(StreamResponse.toJSON(event));
  }
  print({ step: 'reply_stream', events: replyEvents });

  if (!isFinal(Task.toJSON(done).status.state)) {
    console.error('the subscribed task did not end');
    process.exit(1);
  }
  process.exit(0);
} catch (e) {
  console.error('A2A call failed:', e?.constructor?.name, e?.message ?? e);
  process.exit(1);
}
