#!/usr/bin/env node
// An A2A 0.3 agent built on the official JS SDK 0.3.x (@a2a-js/sdk 0.3.14,
// pinned in package.json): the remote agent the node must call in 0.3 JSON-RPC
// (`message/stream`, `message/send`, `tasks/cancel`) and translate to v1.0.
// Its card is the 0.3 shape (url, preferredTransport, protocolVersion 0.3.0).
//   JSON-RPC : POST http://127.0.0.1:HTTP_PORT/a2a/jsonrpc (SSE when streaming)
//   Card     : GET  http://127.0.0.1:HTTP_PORT/.well-known/agent-card.json
//
// Behaviour (by the first text part of the message):
//   "task:<text>" -> task: submitted, working, artifact "echo" <text>, completed
//                    (each step waits --delay-ms; tasks/cancel ends it canceled)
//   "ask:<text>"  -> task: input-required, asking "<text>?"; the follow-up
//                    message completes it with the artifact "answer: <reply>"
//   anything else -> a direct Message "echo: <text>" (no task)
//
// Loopback only. Usage: node echo-server.mjs [--http-port 41251] [--delay-ms 0]
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import express from 'express';
import { AGENT_CARD_PATH } from '@a2a-js/sdk';
import { DefaultRequestHandler, InMemoryTaskStore } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, UserBuilder } from '@a2a-js/sdk/server/express';

const { values: opt } = parseArgs({
  options: {
    'http-port': { type: 'string', default: '41251' },
    'delay-ms': { type: 'string', default: '0' },
  },
});
const PORT = Number(opt['http-port']);
const DELAY_MS = Number(opt['delay-ms']);
const log = (...a) => console.log('[echo-server-0.3]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => new Date().toISOString();
const text = (message) => message.parts.find((p) => p.kind === 'text')?.text ?? '';

const card = {
  protocolVersion: '0.3.0',
  name: 'Legacy Echo Agent',
  description: 'An A2A 0.3 echo agent (official @a2a-js/sdk 0.3.x) used as a remote agent.',
  url: `http://127.0.0.1:${PORT}/a2a/jsonrpc`,
  preferredTransport: 'JSONRPC',
  version: '0.1.0',
  capabilities: { streaming: true, pushNotifications: false },
  defaultInputModes: ['text/plain'],
  defaultOutputModes: ['text/plain'],
  skills: [
    {
      id: 'legacy-echo',
      name: 'Legacy echo',
      description: '"echo: <text>" as a Message; "task:<text>" runs a task; "ask:<q>" asks first.',
      tags: ['echo', 'a2a-0.3'],
      examples: ['hello', 'task:hello', 'ask:your name'],
    },
  ],
};

class EchoExecutor {
  canceled = new Set();

  cancelTask = async (taskId) => {
    log(`cancel requested for ${taskId}`);
    this.canceled.add(taskId);
  };

  async execute(ctx, bus) {
    const { taskId, contextId, userMessage, task } = ctx;
    const input = text(userMessage);
    const status = (state, message = undefined, final = false) =>
      bus.publish({
        kind: 'status-update',
        taskId,
        contextId,
        status: { state, message, timestamp: now() },
        final,
      });
    const artifact = (name, value) =>
      bus.publish({
        kind: 'artifact-update',
        taskId,
        contextId,
        artifact: { artifactId: crypto.randomUUID(), name, parts: [{ kind: 'text', text: value }] },
        lastChunk: true,
      });

    if (task?.status?.state === 'input-required') {
      // The answer to our question: the task's second turn.
      log(`follow-up for ${taskId}: ${input}`);
      status('working');
      artifact('answer', `answer: ${input}`);
      status('completed', undefined, true);
      bus.finished();
      return;
    }
    if (!input.startsWith('task:') && !input.startsWith('ask:')) {
      bus.publish({
        kind: 'message',
        messageId: crypto.randomUUID(),
        role: 'agent',
        contextId,
        parts: [{ kind: 'text', text: `echo: ${input}` }],
      });
      bus.finished();
      return;
    }
    bus.publish({
      kind: 'task',
      id: taskId,
      contextId,
      status: { state: 'submitted', timestamp: now() },
      history: [userMessage],
      artifacts: [],
    });
    if (input.startsWith('ask:')) {
      const question = {
        kind: 'message',
        messageId: crypto.randomUUID(),
        role: 'agent',
        taskId,
        contextId,
        parts: [{ kind: 'text', text: `${input.slice('ask:'.length)}?` }],
      };
      status('input-required', question, true);
      bus.finished();
      return;
    }
    try {
      await sleep(DELAY_MS);
      status('working');
      await sleep(DELAY_MS);
      if (this.canceled.has(taskId)) {
        status('canceled', undefined, true);
        bus.finished();
        return;
      }
      artifact('echo', input.slice('task:'.length));
      await sleep(DELAY_MS);
      status('completed', undefined, true);
      bus.finished();
    } finally {
      this.canceled.delete(taskId);
    }
  }
}

const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new EchoExecutor());
const app = express();
app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: handler }));
app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
app.listen(PORT, '127.0.0.1', () => log(`JSON-RPC on http://127.0.0.1:${PORT}/a2a/jsonrpc`));
const stop = () => process.exit(0);
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
