// The hub's HTTP surface on a real socket: hostile input on every endpoint (malformed JSON, oversized bodies,
// wrong types, unknown methods, 2 000 headers) answered with clear codes while the hub keeps serving; auth;
// readiness, card, JWKS and metrics; chat routing (prefix, intent, clarifying question) and chat SSE resume.
import { connect } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../../shared/protocol.js';
import type { RunningHub } from '../../hub/app.js';
import {
  a2a,
  completeWith,
  parseSse,
  startFakeSpoke,
  startTestHub,
  untilRoutable,
  type FakeSpoke,
} from './hub_fake_spoke.js';

let hub: RunningHub;
let auth: Record<string, string>;
let marketing: FakeSpoke;
let finance: FakeSpoke;

beforeAll(async () => {
  marketing = await startFakeSpoke('marketing');
  finance = await startFakeSpoke('finance', {
    skills: [
      {
        id: 'payback-analysis',
        name: 'Payback and budget recommendation',
        description: 'Computes payback period, CAC efficiency and a budget reallocation from ROI figures.',
        tags: ['finance', 'payback', 'budget', 'cac'],
        examples: ['what is the payback period of our Q4 spend'],
      },
    ],
  });
  const started = await startTestHub([
    { name: 'marketing', port: marketing.port },
    { name: 'finance', port: finance.port },
  ]);
  hub = started.hub;
  auth = started.auth;
  await untilRoutable(hub, 'marketing');
  await untilRoutable(hub, 'finance');
  await expectCards();
});

afterAll(async () => {
  await hub.close();
  await marketing.close();
  await finance.close();
});

async function expectCards(): Promise<void> {
  const started = Date.now();
  while (hub.registry.card('marketing') === undefined || hub.registry.card('finance') === undefined) {
    if (Date.now() - started > 10_000) throw new Error('cards not fetched');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function healthy(): Promise<void> {
  const response = await fetch(`${hub.url}/healthz`);
  expect(response.status).toBe(200);
}

async function errorCode(response: Response): Promise<string> {
  const body = (await response.json()) as {
    error: { code?: string | number; data?: { reason: string }[] };
  };
  // Plain endpoints carry {error: {code}}; /a2a carries a JSON-RPC error whose ErrorInfo reason is the code.
  return typeof body.error.code === 'string' ? body.error.code : (body.error.data?.[0]?.reason ?? 'none');
}

const POST_ENDPOINTS = ['/v1/chat', '/a2a'] as const;

describe('hub HTTP hostile input', () => {
  it.each(POST_ENDPOINTS)(
    'answers malformed JSON on %s with 400 PARSE_ERROR and keeps serving',
    async (path) => {
      const response = await fetch(`${hub.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: '{"jsonrpc": "2.0", "id": 1,',
      });
      expect(response.status).toBe(400);
      expect(await errorCode(response)).toBe('PARSE_ERROR');
      await healthy();
    },
  );

  it.each(POST_ENDPOINTS)(
    'answers an oversized body on %s with 413 PAYLOAD_TOO_LARGE and keeps serving',
    async (path) => {
      const response = await fetch(`${hub.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ message: 'x'.repeat(LIMITS.maxHttpBodyBytes + 10) }),
      });
      expect(response.status).toBe(413);
      expect(await errorCode(response)).toBe('PAYLOAD_TOO_LARGE');
      await healthy();
    },
  );

  it('names the wrong field on /v1/chat with 400 BAD_REQUEST', async () => {
    for (const body of [
      { message: 42 },
      { message: 'hi', contextId: 7 },
      { message: 'hi', extra: true },
      [1, 2],
    ]) {
      const response = await fetch(`${hub.url}/v1/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(400);
      const parsed = (await response.json()) as { error: { code: string; details?: { field?: string } } };
      expect(parsed.error.code).toBe('BAD_REQUEST');
      await healthy();
    }
    const wrong = await fetch(`${hub.url}/v1/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ message: 42 }),
    });
    expect(((await wrong.json()) as { error: { details: { field: string } } }).error.details.field).toBe(
      'message',
    );
  });

  it('answers wrong param types on /a2a with BAD_REQUEST naming the field', async () => {
    const response = await a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message: { messageId: 5 } });
    expect(response.status).toBe(400);
    const body = (await response.json()) as {
      error: { code: number; message: string; data: { reason: string }[] };
    };
    expect(body.error.data[0]?.reason).toBe('BAD_REQUEST');
    expect(body.error.code).toBe(-32602);
    expect(body.error.message).toContain('message.messageId');
    await healthy();
  });

  it('answers an unknown JSON-RPC method with METHOD_NOT_FOUND (-32601)', async () => {
    const response = await a2a(hub, auth, 'message/send', {});
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: number; data: { reason: string }[] } };
    expect(body.error.code).toBe(-32601);
    expect(body.error.data[0]?.reason).toBe('METHOD_NOT_FOUND');
    await healthy();
  });

  it('names the A2A version on every /a2a answer: a result, an error and an unauthorised request', async () => {
    const result = await a2a(hub, auth, 'ListTasks', {});
    expect(result.status).toBe(200);
    expect(result.headers.get('a2a-version')).toBe('1.0');
    expect(result.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const body = await result.text();
    expect(Number(result.headers.get('content-length'))).toBe(Buffer.byteLength(body));
    expect((JSON.parse(body) as { result: { tasks: unknown[] } }).result.tasks).toEqual([]);
    const missing = await a2a(hub, auth, 'GetTask', { id: randomUUID() });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('a2a-version')).toBe('1.0');
    expect(await errorCode(missing)).toBe('TASK_NOT_FOUND');
    const unauthorised = await a2a(hub, {}, 'ListTasks', {});
    expect(unauthorised.status).toBe(401);
    expect(unauthorised.headers.get('a2a-version')).toBe('1.0');
    expect(unauthorised.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('answers a JSON value that is no JSON-RPC request with INVALID_REQUEST', async () => {
    for (const body of [
      '[1,2]',
      '{"jsonrpc":"2.0","method":"GetTask"}',
      '{"jsonrpc":"1.0","id":1,"method":"GetTask"}',
    ]) {
      const response = await fetch(`${hub.url}/a2a`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body,
      });
      expect(response.status).toBe(400);
      expect(await errorCode(response)).toBe('INVALID_REQUEST');
      await healthy();
    }
  });

  it.each([
    ['GET', '/v1/chat'],
    ['PUT', '/a2a'],
    ['DELETE', '/v1/spokes'],
    ['POST', '/healthz'],
    ['POST', '/readyz'],
    ['POST', '/metrics'],
    ['PATCH', '/v1/tasks/abc'],
    ['POST', '/.well-known/agent-card.json'],
    ['POST', '/.well-known/jwks.json'],
  ])('answers %s %s with METHOD_NOT_FOUND and keeps serving', async (method, path) => {
    const response = await fetch(`${hub.url}${path}`, { method, headers: auth });
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('METHOD_NOT_FOUND');
    await healthy();
  });

  it('refuses a browser Origin that is not in CHAT_ALLOWED_ORIGINS with 403 FORBIDDEN', async () => {
    const response = await fetch(`${hub.url}/v1/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example', ...auth },
      body: JSON.stringify({ message: '@marketing hi' }),
    });
    expect(response.status).toBe(403);
    expect(await errorCode(response)).toBe('FORBIDDEN');
    await healthy();
  });

  it('answers a bad Last-Event-ID with BAD_REQUEST and an unknown task with TASK_NOT_FOUND', async () => {
    const missing = await fetch(`${hub.url}/v1/tasks/${randomUUID()}/events`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(await errorCode(missing)).toBe('TASK_NOT_FOUND');
    const bad = await fetch(`${hub.url}/v1/chat`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        'last-event-id': 'x',
        ...auth,
      },
      body: JSON.stringify({ message: '@finance hi' }),
    });
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe('BAD_REQUEST');
    await healthy();
  });

  it('answers an unknown path with NOT_FOUND', async () => {
    const response = await fetch(`${hub.url}/nope`, { headers: auth });
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('NOT_FOUND');
  });

  it.each([
    ['POST', '/v1/chat'],
    ['POST', '/a2a'],
    ['GET', '/v1/tasks/abc'],
    ['GET', '/v1/spokes'],
  ])('refuses %s %s without the API key (401) or with a wrong one', async (method, path) => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-key-wrong-key-wrong' },
      { authorization: 'Basic x' },
    ];
    for (const headers of attempts) {
      const response = await fetch(`${hub.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        ...(method === 'POST' ? { body: '{}' } : {}),
      });
      expect(response.status).toBe(401);
      expect(await errorCode(response)).toBe('UNAUTHORIZED');
    }
    await healthy();
  });

  it('survives 2 000 request headers and keeps serving (T05)', async () => {
    const lines = Array.from({ length: 2000 }, (_, index) => `x-h${index}: v`).join('\r\n');
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(hub.port, '127.0.0.1', () => {
        socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\n${lines}\r\nConnection: close\r\n\r\n`);
      });
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString()));
      socket.on('close', () => resolve(data));
      socket.on('error', () => resolve(data));
    });
    expect(answer.startsWith('HTTP/1.1 ')).toBe(true);
    await healthy();
  });
});

describe('hub HTTP routes', () => {
  it('reports readiness, spokes, the card with one interface per tenant, JWKS and metrics', async () => {
    const ready = await fetch(`${hub.url}/readyz`);
    expect(ready.status).toBe(200);
    const spokes = (await (await fetch(`${hub.url}/v1/spokes`, { headers: auth })).json()) as {
      spokes: { spoke: string; status: string; attestedAt: string }[];
    };
    expect(spokes.spokes.map((row) => [row.spoke, row.status])).toEqual([
      ['marketing', 'affirming'],
      ['finance', 'affirming'],
    ]);
    const card = (await (await fetch(`${hub.url}/.well-known/agent-card.json`)).json()) as {
      supportedInterfaces: { tenant: string; url: string }[];
    };
    expect(card.supportedInterfaces.map((entry) => entry.tenant)).toEqual(['marketing', 'finance']);
    const jwks = (await (await fetch(`${hub.url}/.well-known/jwks.json`)).json()) as {
      keys: { d?: string }[];
    };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]?.d).toBeUndefined();
    const metrics = await (await fetch(`${hub.url}/metrics`)).text();
    expect(metrics).toContain('hub_replica_attestation_status');
    expect(metrics).toContain('hub_process_cpu_microseconds');
  });

  it('routes chat by @prefix, by intent, and asks back when the target is ambiguous', async () => {
    const chat = async (message: string, contextId?: string) =>
      (await (
        await fetch(`${hub.url}/v1/chat`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...auth },
          body: JSON.stringify({ message, ...(contextId === undefined ? {} : { contextId }) }),
        })
      ).json()) as { reply: string; spoke: string | null; taskId: string | null; contextId: string };
    const prefixed = await chat('@finance hello there');
    expect(prefixed).toMatchObject({ spoke: 'finance', reply: 'echo: hello there' });
    const intent = await chat('analyse our Q4 campaign ROI per channel');
    expect(intent.spoke).toBe('marketing');
    const ambiguous = await chat('good morning');
    expect(ambiguous.spoke).toBeNull();
    expect(ambiguous.taskId).toBeNull();
    expect(ambiguous.reply).toContain('@marketing');
    expect(ambiguous.reply).toContain('@finance');
    const followUp = await chat('and what about last year?', intent.contextId);
    expect(followUp.spoke).toBe('marketing');
  });

  it('streams chat as SSE and resumes with Last-Event-ID after a reconnect', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    marketing.handler = (_method, params) =>
      (async function* () {
        const message = params.message as { contextId: string };
        yield { task: { id: 'm1', contextId: message.contextId, status: { state: 'TASK_STATE_WORKING' } } };
        await gate;
        yield* completeWith(params, 'the ROI is 3.2');
      })();
    const messageId = randomUUID();
    const controller = new AbortController();
    const first = await fetch(`${hub.url}/v1/chat`, {
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...auth },
      body: JSON.stringify({ message: '@marketing ROI please', messageId }),
    });
    const reader = first.body!.getReader();
    let text = '';
    while (!parseSse(text).some((event) => event.id !== undefined) || !text.endsWith('\n\n')) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const seen = parseSse(text).filter((event) => event.id !== undefined);
    release();
    const resumed = await fetch(`${hub.url}/v1/chat`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        'last-event-id': String(seen.at(-1)?.id),
        ...auth,
      },
      body: JSON.stringify({ message: '@marketing ROI please', messageId }),
    });
    const rest = parseSse(await resumed.text());
    const ids = [...seen, ...rest].map((event) => event.id).filter((id) => id !== undefined);
    expect(ids).toEqual(ids.map((_id, index) => index + 1));
    expect(rest.at(-1)).toMatchObject({
      event: 'done',
      data: { reply: 'the ROI is 3.2', spoke: 'marketing' },
    });
    const taskId = (rest.at(-1)?.data as { taskId: string }).taskId;
    const replay = parseSse(
      await (await fetch(`${hub.url}/v1/tasks/${taskId}/events?afterSeq=1`, { headers: auth })).text(),
    );
    expect(replay.map((event) => event.id)).toEqual(ids.slice(1));
    expect(
      marketing.requests.filter((request) => request.method === 'SendStreamingMessage').length,
    ).toBeGreaterThan(0);
  });
});
