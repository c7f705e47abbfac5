#!/usr/bin/env node
// The official A2A JS SDK (@a2a-js/sdk, pinned in package.json) as a
// third-party gRPC client of meshd. It runs a fixed scenario against the node
// and prints one JSON object per line, in the SDK's ProtoJSON wire form, for
// the C++ test (tests/e2e/js_sdk_test.cc) to check:
//   {"step":"send","task":{...}}              blocking SendMessage, skill echo
//   {"step":"send_immediate","task":{...}}    returnImmediately, skill echo
//   {"step":"stream","event":{...}}           SendStreamingMessage, skill uppercase
//   {"step":"get","task":{...}}               GetTask of the streamed task
//   {"step":"error","name":...,"message":...} GetTask of an unknown id
// Usage: node meshd-client.mjs HOST:PORT
import crypto from 'node:crypto';
import { Role, StreamResponse, Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions } from '@a2a-js/sdk/client';
import { GrpcTransportFactory } from '@a2a-js/sdk/client/grpc';

const target = process.argv[2];
if (!target) {
  console.error('usage: node meshd-client.mjs HOST:PORT');
  process.exit(2);
}

// meshd serves gRPC only for now, so there is no card to discover: describe the
// endpoint directly, as a client configured by hand would.
const card = {
  name: 'meshd',
  description: 'an a2a-mesh node',
  supportedInterfaces: [{ url: target, protocolBinding: 'GRPC', tenant: '', protocolVersion: '1.0' }],
  provider: undefined,
  version: '0',
  capabilities: { streaming: true, extensions: [] },
  securitySchemes: {},
  securityRequirements: [],
  defaultInputModes: ['text/plain'],
  defaultOutputModes: ['text/plain'],
  skills: [],
  signatures: [],
};
const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new GrpcTransportFactory()],
    preferredTransports: ['GRPC'],
  })
);
const client = await factory.createFromAgentCard(card);

const request = (skill, text, configuration = undefined) => ({
  tenant: '',
  message: {
    messageId: crypto.randomUUID(),
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    taskId: '',
    contextId: '',
    extensions: [],
    metadata: undefined,
    referenceTaskIds: [],
  },
  configuration,
  metadata: { 'a2amesh/skill': skill },
});
const print = (obj) => console.log(JSON.stringify(obj));

try {
  const sent = await client.sendMessage(request('echo', 'hello from js'));
  print({ step: 'send', task: Task.toJSON(sent) });

  const immediate = await client.sendMessage(
    request('echo', 'right away', {
      acceptedOutputModes: ['text/plain'],
      taskPushNotificationConfig: undefined,
      historyLength: undefined,
      returnImmediately: true,
    })
  );
  print({ step: 'send_immediate', task: Task.toJSON(immediate) });

  let streamedId;
  for await (const event of client.sendMessageStream(request('uppercase', 'stream these words'))) {
    print({ step: 'stream', event: StreamResponse.toJSON(event) });
    if (event.payload?.$case === 'task') streamedId = event.payload.value.id;
  }
  const got = await client.getTask({ tenant: '', id: streamedId, historyLength: undefined });
  print({ step: 'get', task: Task.toJSON(got) });

  try {
    await client.getTask({ tenant: '', id: 'js~no-such-task', historyLength: undefined });
    print({ step: 'error', name: 'none', message: 'GetTask of an unknown id succeeded' });
  } catch (e) {
    print({ step: 'error', name: e?.constructor?.name, message: e?.message });
  }
  process.exit(0);
} catch (e) {
  console.error('A2A call failed:', e?.constructor?.name, e?.message ?? e);
  process.exit(1);
}
