#!/usr/bin/env node
// The official A2A JS SDK (@a2a-js/sdk) as a traced client of meshd: sends one
// blocking SendMessage for SKILL over BINDING, with a W3C traceparent (and a
// tracestate) as the request's service parameters (HTTP headers, or gRPC
// metadata), the way an instrumented client propagates its trace. Prints
//   {"task":{...}}   the answer, in the SDK's ProtoJSON form
// Usage: node traced-client.mjs BASE_URL BINDING SKILL TEXT TRACEPARENT [TRACESTATE]
import crypto from 'node:crypto';
import { Role, Task } from '@a2a-js/sdk';
import {
  ClientFactory,
  ClientFactoryOptions,
  JsonRpcTransportFactory,
  RestTransportFactory,
} from '@a2a-js/sdk/client';
import { GrpcTransportFactory } from '@a2a-js/sdk/client/grpc';

const [baseUrl, binding, skill, text, traceparent, tracestate] = process.argv.slice(2);
if (!traceparent) {
  console.error('usage: node traced-client.mjs BASE_URL BINDING SKILL TEXT TRACEPARENT [TRACESTATE]');
  process.exit(2);
}

const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory(), new RestTransportFactory(), new GrpcTransportFactory()],
    preferredTransports: [binding],
  })
);

try {
  const client = await factory.createFromUrl(baseUrl);
  const serviceParameters = { traceparent };
  if (tracestate) serviceParameters.tracestate = tracestate;
  const task = await client.sendMessage(
    {
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
      configuration: undefined,
      metadata: { 'a2amesh/skill': skill },
    },
    { serviceParameters }
  );
  console.log(JSON.stringify({ task: Task.toJSON(task) }));
} catch (error) {
  console.error(String(error?.stack ?? error));
  process.exit(1);
}
