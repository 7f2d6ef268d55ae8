// `agenthub chat` called as a plain function against a stand-in hub on a real port: what it sends, and how it
// prints an answer and a clarifying question (asked by the hub, even when it names the agent).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCommand } from '../../shared/cli/status_command.js';
import { captureIo } from '../helpers/cli_io.js';

let server: Server;
let hubUrl: string;
const received: { authorization: string | undefined; body: unknown }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    req.on('end', () => {
      const body = JSON.parse(text) as { message: string };
      received.push({ authorization: req.headers.authorization, body });
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify(
          body.message.includes('November')
            ? {
                reply: "Which of @marketing's skills should answer this? …",
                spoke: 'marketing',
                taskId: null,
                contextId: 'ctx-1',
                clarification: true,
                skills: ['campaign-roi-analysis'],
              }
            : {
                reply: 'Campaign ROI for 2025-Q4 …',
                spoke: 'marketing',
                taskId: 'task-1',
                contextId: 'ctx-1',
              },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function run(argv: string[]) {
  return captureIo(argv, '/nonexistent', { AGENTHUB_HUB_URL: hubUrl, AGENTHUB_API_KEY: 'k'.repeat(32) });
}

describe('agenthub chat', () => {
  it('sends the message and the conversation with the API key, and prints the agent that answered', async () => {
    const io = run(['how did Q4 go?', '--context', 'ctx-1']);
    expect(await chatCommand(io)).toBe(0);
    expect(received.at(-1)).toEqual({
      authorization: `Bearer ${'k'.repeat(32)}`,
      body: { message: 'how did Q4 go?', contextId: 'ctx-1' },
    });
    expect(io.out.join('')).toBe('[marketing] Campaign ROI for 2025-Q4 …\n(task task-1, context ctx-1)\n');
  });

  it('prints a clarifying question as the hub speaking, though it names the agent', async () => {
    const io = run(['@marketing how did November go?']);
    expect(await chatCommand(io)).toBe(0);
    expect(io.out.join('')).toBe(
      "[hub] Which of @marketing's skills should answer this? …\n(task -, context ctx-1)\n",
    );
  });
});
