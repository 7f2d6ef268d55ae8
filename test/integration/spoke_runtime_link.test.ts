// The hub side of a real spoke on 127.0.0.1: link authentication at upgrade (before ws sees the socket),
// frame limits, A2A over the link, heartbeats, attestation notices, drain, session replacement, evidence
// bound to the live session, and peer calls routed up the link.
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_ID, publicJwks, spokeIdOf } from '../../shared/attestation.js';
import { AppError } from '../../shared/errors.js';
import { CONTROL_METHODS, type StreamResponse, type Task } from '../../shared/protocol.js';
import {
  connectHub,
  makeKeys,
  messageParams,
  startTestSpoke,
  tryUpgrade,
  type TestKeys,
  type TestSpoke,
} from './spoke_runtime_helpers.js';
import { linkStream } from '../helpers/link_stream.js';

let keys: TestKeys;
let testSpoke: TestSpoke;

beforeAll(async () => {
  keys = await makeKeys();
  testSpoke = await startTestSpoke(keys, { capacity: 2 });
});

afterAll(async () => {
  await testSpoke.spoke.close({ graceMs: 0 });
});

const NONCE = 'A'.repeat(43);

async function stillServing(spoke: TestSpoke): Promise<void> {
  expect((await fetch(`${spoke.spoke.apiUrl}/healthz`)).status).toBe(200);
  expect((await fetch(`${spoke.spoke.attestationUrl}/healthz`)).status).toBe(200);
}

function postEvidence(spoke: TestSpoke, body: string): Promise<Response> {
  return fetch(`${spoke.spoke.attestationUrl}/v1/evidence`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body,
  });
}

async function collect(iterable: AsyncIterable<unknown>): Promise<StreamResponse[]> {
  const items: StreamResponse[] = [];
  for await (const item of iterable) items.push(item as StreamResponse);
  return items;
}

describe('hub link authentication at upgrade', () => {
  it.each([
    ['no Authorization header', async () => ({})],
    [
      'an expired token',
      async () => ({
        Authorization: `Bearer ${await testSpoke.token(undefined, { now: new Date(Date.now() - 120_000) })}`,
      }),
    ],
    [
      'a token for another spoke',
      async () => ({
        Authorization: `Bearer ${await testSpoke.token(undefined, { audience: 'otherspoke' })}`,
      }),
    ],
    [
      'a token signed by an untrusted key',
      async () => ({
        Authorization: `Bearer ${await testSpoke.token(undefined, { key: keys.strangerKey })}`,
      }),
    ],
    ['a garbage token', async () => ({ Authorization: 'Bearer not.a.jwt' })],
  ])('refuses %s with 401 before any WebSocket handshake, and keeps serving', async (_label, headers) => {
    const outcome = await tryUpgrade(testSpoke.spoke, await headers());
    expect(outcome).toEqual({ kind: 'refused', status: 401 });
    expect(testSpoke.spoke.hubConnected).toBe(false);
    await stillServing(testSpoke);
  });

  it('refuses a replayed connect token with 401', async () => {
    const token = await testSpoke.token();
    const first = await tryUpgrade(testSpoke.spoke, { Authorization: `Bearer ${token}` });
    expect(first.kind).toBe('open');
    if (first.kind === 'open') first.socket.close();
    const replay = await tryUpgrade(testSpoke.spoke, { Authorization: `Bearer ${token}` });
    expect(replay).toEqual({ kind: 'refused', status: 401 });
  });

  it('refuses any Origin header with 403, a missing subprotocol with 400 and another path with 404', async () => {
    const withOrigin = await tryUpgrade(
      testSpoke.spoke,
      { Authorization: `Bearer ${await testSpoke.token()}` },
      { origin: 'https://evil.example' },
    );
    expect(withOrigin).toEqual({ kind: 'refused', status: 403 });
    const noProtocol = await tryUpgrade(
      testSpoke.spoke,
      { Authorization: `Bearer ${await testSpoke.token()}` },
      { protocols: [] },
    );
    expect(noProtocol).toEqual({ kind: 'refused', status: 400 });
    const url = `${testSpoke.spoke.apiUrl.replace('http', 'ws')}/elsewhere`;
    const { WebSocket } = await import('ws');
    const elsewhere = await new Promise<number>((resolveStatus) => {
      const socket = new WebSocket(url, ['agenthub.v1']);
      socket.once('unexpected-response', (_request, response) => {
        resolveStatus(response.statusCode ?? 0);
        socket.terminate();
      });
      socket.once('error', () => resolveStatus(-1));
    });
    expect(elsewhere).toBe(404);
    await stillServing(testSpoke);
  });

  it('closes a link that sends a frame over the limit with 1009, and accepts a new link after', async () => {
    const hub = await connectHub(testSpoke);
    const closed = new Promise<number>((resolveClose) =>
      hub.socket.once('close', (code) => resolveClose(code)),
    );
    hub.socket.send('x'.repeat(1024 * 1024 + 1));
    expect(await closed).toBe(1009);
    const next = await connectHub(testSpoke);
    await expect(next.link.request('GetTask', { id: 'none' })).rejects.toMatchObject({
      code: 'TASK_NOT_FOUND',
    });
    next.link.close();
  });

  it('closes a link that sends many tiny fragments with 1008', async () => {
    const hub = await connectHub(testSpoke);
    const closed = new Promise<number>((resolveClose) =>
      hub.socket.once('close', (code) => resolveClose(code)),
    );
    for (let n = 0; n < 200 && hub.socket.readyState === hub.socket.OPEN; n++)
      hub.socket.send('a', { fin: false });
    expect(await closed).toBe(1008);
    await stillServing(testSpoke);
  });
});

describe('A2A over the hub link', () => {
  it('serves SendMessage and SendStreamingMessage, multiplexed, and answers unknown methods', async () => {
    const hub = await connectHub(testSpoke);
    try {
      const [unary, streamed] = await Promise.all([
        hub.link.request('SendMessage', messageParams('ping', { skill: 'ping' })),
        collect(
          linkStream(
            hub.link,
            'SendStreamingMessage',
            messageParams('sleep', { skill: 'sleep', data: { ms: 30 } }),
          ),
        ),
      ]);
      expect((unary as { task: Task }).task.status.state).toBe('TASK_STATE_COMPLETED');
      expect(Object.keys(streamed[0] ?? {})).toEqual(['task']);
      const last = streamed.at(-1);
      expect(last && 'task' in last ? last.task.status.state : undefined).toBe('TASK_STATE_COMPLETED');
      await expect(hub.link.request('message/send', {})).rejects.toMatchObject({ code: 'METHOD_NOT_FOUND' });
      await expect(hub.link.request('SendMessage', { message: 'nope' })).rejects.toMatchObject({
        code: 'BAD_REQUEST',
      });
    } finally {
      hub.link.close();
    }
  });

  it('stream/cancel of the originating request aborts the skill and ends the task CANCELED', async () => {
    const hub = await connectHub(testSpoke);
    try {
      const abortedBefore = testSpoke.probe.aborted;
      let taskId = '';
      for await (const item of linkStream(
        hub.link,
        'SendStreamingMessage',
        messageParams('loop', { skill: 'loop' }),
      )) {
        const event = item as StreamResponse;
        // The first event is the task, already started: it shows WORKING.
        if ('task' in event) taskId = event.task.id;
        if ('task' in event && event.task.status.state === 'TASK_STATE_WORKING') break;
      }
      await expect.poll(() => testSpoke.probe.aborted).toBe(abortedBefore + 1);
      await expect
        .poll(async () => ((await hub.link.request('GetTask', { id: taskId })) as Task).status.state)
        .toBe('TASK_STATE_CANCELED');
      expect(testSpoke.probe.iterationsAfterAbort).toBe(0);
    } finally {
      hub.link.close();
    }
  });

  it('sends heartbeats, keeps the attestation notice for /readyz, and forgets it when the link closes', async () => {
    const hub = await connectHub(testSpoke);
    await expect
      .poll(() => hub.notifications.filter((notice) => notice.method === CONTROL_METHODS.heartbeat).length)
      .toBeGreaterThanOrEqual(2);
    expect(hub.notifications[0]).toEqual({
      method: CONTROL_METHODS.heartbeat,
      params: { inflight: 0, capacity: 2, ready: true },
    });
    hub.link.notify(CONTROL_METHODS.attestationResult, { status: 'affirming', reasons: [] });
    await expect
      .poll(
        async () =>
          ((await (await fetch(`${testSpoke.spoke.apiUrl}/readyz`)).json()) as { attestation: unknown })
            .attestation,
      )
      .toMatchObject({ status: 'affirming', reasons: [] });
    hub.link.close();
    await expect.poll(() => testSpoke.spoke.hubConnected).toBe(false);
    const after = (await (await fetch(`${testSpoke.spoke.apiUrl}/readyz`)).json()) as {
      attestation: unknown;
    };
    expect(after.attestation).toBeNull();
  });

  it('replaces the old session with a new valid link: the old link closes and its sid loses evidence', async () => {
    const first = await connectHub(testSpoke);
    const second = await connectHub(testSpoke);
    await expect.poll(() => first.closes.length).toBe(1);
    expect(first.closes[0]?.code).toBe(1000);
    expect(testSpoke.spoke.hubConnected).toBe(true);
    const stale = await postEvidence(testSpoke, JSON.stringify({ nonce: NONCE, sid: first.sid }));
    expect(stale.status).toBe(409);
    expect(await stale.json()).toMatchObject({ error: { code: 'CONFLICT' } });
    const live = await postEvidence(testSpoke, JSON.stringify({ nonce: NONCE, sid: second.sid }));
    expect(live.status).toBe(200);
    second.link.close();
  });

  it('stops accepting new work after hub/drain and says so on /readyz', async () => {
    const draining = await startTestSpoke(keys);
    try {
      const hub = await connectHub(draining);
      hub.link.notify(CONTROL_METHODS.drain, {});
      await expect.poll(async () => (await fetch(`${draining.spoke.apiUrl}/readyz`)).status).toBe(503);
      await expect(
        hub.link.request('SendMessage', messageParams('ping', { skill: 'ping' })),
      ).rejects.toMatchObject({
        code: 'SPOKE_UNAVAILABLE',
      });
      await expect
        .poll(() =>
          hub.notifications.some((notice) => (notice.params as { ready?: boolean }).ready === false),
        )
        .toBe(true);
    } finally {
      await draining.spoke.close({ graceMs: 0 });
    }
  });

  it('terminates a hub link that stays silent (no frames, no pongs) past hubIdleTimeoutMs', async () => {
    const watchful = await startTestSpoke(keys, { heartbeatIntervalMs: 50, hubIdleTimeoutMs: 300 });
    try {
      const outcome = await tryUpgrade(
        watchful.spoke,
        { Authorization: `Bearer ${await watchful.token()}` },
        { autoPong: false },
      );
      expect(outcome.kind).toBe('open');
      await expect.poll(() => watchful.spoke.hubConnected).toBe(true);
      await expect.poll(() => watchful.spoke.hubConnected, { timeout: 3000 }).toBe(false);
      if (outcome.kind === 'open') outcome.socket.terminate();
    } finally {
      await watchful.spoke.close({ graceMs: 0 });
    }
  });

  it('closes the hub link with 1001 on shutdown', async () => {
    const stopping = await startTestSpoke(keys);
    const hub = await connectHub(stopping);
    await stopping.spoke.close({ graceMs: 0 });
    await expect.poll(() => hub.closes[0]?.code).toBe(1001);
  });
});

describe('evidence on the attestation port', () => {
  it('signs evidence over the measurements only for the live hub session', async () => {
    expect(await (await fetch(`${testSpoke.spoke.attestationUrl}/healthz`)).json()).toMatchObject({
      ok: true,
    });
    const hub = await connectHub(testSpoke);
    try {
      const response = await postEvidence(testSpoke, JSON.stringify({ nonce: NONCE, sid: hub.sid }));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('application/eat+jwt');
      const token = await response.text();
      expect(decodeProtectedHeader(token)).toMatchObject({
        typ: 'spoke-evidence+jwt',
        kid: keys.spokeKey.kid,
      });
      const { payload } = await jwtVerify(token, createLocalJWKSet(publicJwks([keys.spokeKey])), {
        audience: HUB_ID,
        issuer: spokeIdOf(testSpoke.name),
      });
      expect(payload).toMatchObject({ sid: hub.sid, eat_nonce: NONCE });
      expect((payload.meas as { deps: { digest: string } }).deps.digest).toMatch(/^[0-9a-f]{64}$/);

      const other = await postEvidence(testSpoke, JSON.stringify({ nonce: NONCE, sid: 'someone-else' }));
      expect(other.status).toBe(409);
      expect(await other.json()).toMatchObject({ error: { code: 'CONFLICT' } });
    } finally {
      hub.link.close();
    }
    await expect.poll(() => testSpoke.spoke.hubConnected).toBe(false);
    const noSession = await postEvidence(testSpoke, JSON.stringify({ nonce: NONCE, sid: hub.sid }));
    expect(noSession.status).toBe(409);
  });

  it.each([
    ['an oversized body', JSON.stringify({ nonce: NONCE, sid: 'x'.repeat(2000) }), 413, 'PAYLOAD_TOO_LARGE'],
    ['malformed JSON', '{"nonce": ', 400, 'BAD_REQUEST'],
    ['extra members', JSON.stringify({ nonce: NONCE, sid: 's', extra: 1 }), 400, 'BAD_REQUEST'],
    ['a missing sid', JSON.stringify({ nonce: NONCE }), 400, 'BAD_REQUEST'],
  ])('answers %s with %i %s and keeps serving', async (_label, body, status, code) => {
    const response = await postEvidence(testSpoke, body);
    expect(response.status).toBe(status);
    const error = (await response.json()) as { error: { code: string; message: string } };
    expect(error.error.code).toBe(code);
    expect(error.error.message.length).toBeGreaterThan(10);
    await stillServing(testSpoke);
  });

  it('answers a malformed nonce for the live session with 400', async () => {
    const hub = await connectHub(testSpoke);
    try {
      const response = await postEvidence(testSpoke, JSON.stringify({ nonce: 'short', sid: hub.sid }));
      expect(response.status).toBe(400);
    } finally {
      hub.link.close();
    }
  });

  it('rate-limits evidence requests with 429', async () => {
    const limited = await startTestSpoke(keys);
    try {
      const statuses = await Promise.all(
        Array.from({ length: 25 }, () =>
          postEvidence(limited, JSON.stringify({ nonce: NONCE, sid: 'x' })).then((r) => r.status),
        ),
      );
      expect(statuses).toContain(429);
      expect(statuses.filter((status) => status === 409).length).toBeGreaterThanOrEqual(5);
    } finally {
      await limited.spoke.close({ graceMs: 0 });
    }
  });
});

describe('peer calls up the hub link', () => {
  it('routes callPeer as one SendMessage with tenant, skill, caller and deadline, and returns the artifact', async () => {
    const seen: unknown[] = [];
    const hub = await connectHub(testSpoke, {
      onRequest: (method, params) => {
        seen.push({ method, params });
        return Promise.resolve({
          task: {
            id: 'hub-task-1',
            contextId: 'ctx-1',
            status: { state: 'TASK_STATE_COMPLETED' },
            artifacts: [
              {
                artifactId: 'a1',
                parts: [{ text: 'pong' }, { data: { pong: true }, mediaType: 'application/json' }],
              },
            ],
            metadata: { tokens: 3 },
          },
        });
      },
    });
    try {
      const reply = (await hub.link.request(
        'SendMessage',
        messageParams('ask', {
          skill: 'ask',
          data: { tenant: 'marketing', skill: 'ping', text: 'ping', timeoutMs: 5000, contextId: 'ctx-7' },
          metadata: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
        }),
      )) as { task: Task };
      expect(reply.task.status.state).toBe('TASK_STATE_COMPLETED');
      expect(reply.task.artifacts?.[0]?.parts[1]?.data).toEqual({
        peer: { taskId: 'hub-task-1', text: 'pong', data: { pong: true }, metadata: { tokens: 3 } },
      });
      const [call] = seen as {
        method: string;
        params: {
          tenant: string;
          message: { contextId?: string };
          metadata: Record<string, unknown>;
          configuration: unknown;
        };
      }[];
      // The conversation the asking task names goes with the request.
      expect(call?.params.message.contextId).toBe('ctx-7');
      // Only the final status and artifacts come back, not the conversation.
      expect(call?.params.configuration).toEqual({ historyLength: 0 });
      expect(call?.method).toBe('SendMessage');
      expect(call?.params.tenant).toBe('marketing');
      expect(call?.params.metadata).toMatchObject({
        'agenthub/skill': 'ping',
        'agenthub/caller': 'testspoke',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      });
      expect(call?.params.metadata['agenthub/deadline']).toBeGreaterThan(Date.now());
    } finally {
      hub.link.close();
    }
  });

  it('fails the asking task with the AppError code of the hub’s error frame', async () => {
    const hub = await connectHub(testSpoke, {
      onRequest: () => Promise.reject(new AppError('SPOKE_UNATTESTED', 'marketing is not attested')),
    });
    try {
      const reply = (await hub.link.request(
        'SendMessage',
        messageParams('ask', { skill: 'ask', data: { tenant: 'marketing', skill: 'ping', text: 'ping' } }),
      )) as { task: Task };
      expect(reply.task.status.state).toBe('TASK_STATE_FAILED');
      expect(reply.task.metadata?.['agenthub/error']).toMatchObject({ code: 'SPOKE_UNATTESTED' });
    } finally {
      hub.link.close();
    }
  });

  it('gives up with DEADLINE_EXCEEDED after timeoutMs and cancels the hub-side request', async () => {
    let hubSignal: AbortSignal | undefined;
    const hub = await connectHub(testSpoke, {
      onRequest: (_method, _params, context) => {
        hubSignal = context.signal;
        // A hub that never answers: only the cancel ends this request.
        return new Promise((_resolve, reject) =>
          context.signal.addEventListener('abort', () => reject(new AppError('CANCELED', 'canceled'))),
        );
      },
    });
    try {
      const reply = (await hub.link.request(
        'SendMessage',
        messageParams('ask', {
          skill: 'ask',
          data: { tenant: 'marketing', skill: 'ping', text: 'ping', timeoutMs: 100 },
        }),
      )) as { task: Task };
      expect(reply.task.metadata?.['agenthub/error']).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
      await expect.poll(() => hubSignal?.aborted).toBe(true);
    } finally {
      hub.link.close();
    }
  });
});
