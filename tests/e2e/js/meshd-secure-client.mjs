#!/usr/bin/env node
// The official A2A JS SDK as a client of a meshd with TLS and auth on. It
// discovers the card over https (NODE_EXTRA_CA_CERTS trusts the test's CA),
// picks BINDING from the card's interfaces, and streams one task with the
// bearer TOKEN (an interceptor sets the Authorization service parameter:
// an HTTP header, or gRPC metadata). One JSON object per line:
//   {"step":"card","binding":...,"securitySchemes":{...},"securityRequirements":[...]}
//   {"step":"stream","event":{...}}      SendStreamingMessage, skill uppercase
//   {"step":"error","message":...}       the call failed (e.g. no token)
// Usage: node meshd-secure-client.mjs BASE_URL BINDING CA_FILE [TOKEN]
import crypto from 'node:crypto';
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { AgentCard, Role, StreamResponse } from '@a2a-js/sdk';
import {
  ClientFactory,
  ClientFactoryOptions,
  JsonRpcTransportFactory,
  RestTransportFactory,
} from '@a2a-js/sdk/client';
import { GrpcTransportFactory } from '@a2a-js/sdk/client/grpc';

const [baseUrl, binding, caFile, token] = process.argv.slice(2);
if (!baseUrl || !binding || !caFile) {
  console.error('usage: node meshd-secure-client.mjs BASE_URL JSONRPC|HTTP+JSON|GRPC CA_FILE [TOKEN]');
  process.exit(2);
}

class BearerToken {
  constructor(token) {
    this.token = token;
  }
  async before(args) {
    args.options = {
      ...args.options,
      serviceParameters: { ...(args.options?.serviceParameters ?? {}), Authorization: `Bearer ${this.token}` },
    };
  }
  async after() {}
}

const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [
      new JsonRpcTransportFactory(),
      new RestTransportFactory(),
      new GrpcTransportFactory({ grpcChannelCredentials: grpc.credentials.createSsl(fs.readFileSync(caFile)) }),
    ],
    preferredTransports: [binding],
    clientConfig: { interceptors: token ? [new BearerToken(token)] : [] },
  })
);
const print = (obj) => console.log(JSON.stringify(obj));

try {
  const client = await factory.createFromUrl(baseUrl);
  const card = AgentCard.toJSON(await client.getAgentCard());
  print({
    step: 'card',
    binding: card.supportedInterfaces.find((i) => i.protocolBinding === binding)?.url,
    securitySchemes: card.securitySchemes,
    securityRequirements: card.securityRequirements,
  });
  const stream = client.sendMessageStream({
    tenant: '',
    message: {
      messageId: crypto.randomUUID(),
      role: Role.ROLE_USER,
      parts: [{ content: { $case: 'text', value: 'secret' }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
      taskId: '',
      contextId: '',
      extensions: [],
      metadata: undefined,
      referenceTaskIds: [],
    },
    configuration: undefined,
    metadata: { 'a2amesh/skill': 'uppercase' },
  });
  for await (const event of stream) {
    print({ step: 'stream', event: StreamResponse.toJSON(event) });
  }
} catch (e) {
  const cause = e?.cause ? ` (${e.cause.code ?? ''} ${e.cause.message ?? e.cause})` : '';
  print({ step: 'error', message: String(e?.message ?? e) + cause });
}
