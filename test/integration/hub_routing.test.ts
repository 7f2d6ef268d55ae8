// Hub routing on real sockets with in-process fake spokes: attestation gate, least-outstanding replicas,
// bounded queues (429), idle and total deadlines with CancelTask, dedupe, cancel, SSE resume, dead peers,
// killed spokes and spoke-originated requests.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { META } from '../../shared/protocol.js';
import type { RunningHub } from '../../hub/app.js';
import {
  a2a,
  completeWith,
  parseSse,
  startFakeSpoke,
  startTestHub,
  until,
  untilRoutable,
  userMessage,
  type FakeAppraiser,
  type FakeSpoke,
} from './hub_fake_spoke.js';
import { linkStream } from '../helpers/link_stream.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  names: readonly string[],
  env: Record<string, string> = {},
): Promise<{
  hub: RunningHub;
  spokes: FakeSpoke[];
  auth: Record<string, string>;
  appraiser: FakeAppraiser;
}> {
  const spokes = await Promise.all(names.map((name) => startFakeSpoke(name)));
  for (const spoke of spokes) cleanups.push(() => spoke.close());
  const { hub, auth, appraiser } = await startTestHub(
    spokes.map((spoke) => ({ name: spoke.name, port: spoke.port })),
    env,
  );
  cleanups.push(() => hub.close());
  for (const spoke of spokes) await untilRoutable(hub, spoke.name);
  return { hub, spokes, auth, appraiser };
}

/** A handler that holds every SendStreamingMessage until `release()`; returns the held count. */
function holdingHandler(spoke: FakeSpoke): { held: () => number; release: () => void; canceled: string[] } {
  let held = 0;
  const releases: (() => void)[] = [];
  const canceled: string[] = [];
  spoke.handler = (method, params) => {
    if (method === 'CancelTask') {
      canceled.push(String(params.id));
      return Promise.resolve({ id: params.id, contextId: 'c', status: { state: 'TASK_STATE_CANCELED' } });
    }
    held += 1;
    return (async function* () {
      const message = params.message as { contextId: string };
      const taskId = `spoke-${randomUUID()}`;
      yield { task: { id: taskId, contextId: message.contextId, status: { state: 'TASK_STATE_WORKING' } } };
      await new Promise<void>((resolve) => releases.push(resolve));
      yield* completeWith(params, 'released');
    })();
  };
  return { held: () => held, release: () => releases.splice(0).forEach((resolve) => resolve()), canceled };
}

describe('hub routing', () => {
  it('routes SendMessage to an affirming spoke and records the hop', async () => {
    const { hub, spokes, auth } = await setup(['marketing']);
    const response = await a2a(hub, auth, 'SendMessage', {
      tenant: 'marketing',
      message: userMessage('hello'),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { result: { task: { id: string; status: { state: string } } } };
    expect(body.result.task.status.state).toBe('TASK_STATE_COMPLETED');
    const delivered = spokes[0]?.requests.filter((request) => request.method === 'SendStreamingMessage');
    expect(delivered).toHaveLength(1);
    // The hub keeps the task's history itself and asks the spoke for none.
    expect(delivered?.[0]?.params.configuration).toEqual({ historyLength: 0 });
    const task = (await (
      await fetch(`${hub.url}/v1/tasks/${body.result.task.id}`, { headers: auth })
    ).json()) as {
      hops: { from: string; to: string; spokeTaskId: string; attestation: { status: string } }[];
    };
    expect(task.hops).toHaveLength(1);
    expect(task.hops[0]).toMatchObject({
      from: 'client',
      to: 'marketing',
      attestation: { status: 'affirming' },
    });
    expect(spokes[0]?.attestationResults[0]).toMatchObject({ status: 'affirming' });
  });

  it('keeps the spoke’s reported metadata on the task, and replays each event as it was when delivered', async () => {
    const { hub, spokes, auth } = await setup(['marketing']);
    const spoke = spokes[0] as FakeSpoke;
    spoke.handler = (_method, params) => {
      const { contextId } = params.message as { contextId: string };
      const status = (state: string, text: string) => ({
        state,
        message: { messageId: randomUUID(), role: 'ROLE_AGENT', parts: [{ text }] },
      });
      return (async function* () {
        yield { task: { id: 's1', contextId, status: { state: 'TASK_STATE_WORKING' } } };
        yield { statusUpdate: { taskId: 's1', contextId, status: status('TASK_STATE_WORKING', 'step') } };
        yield {
          statusUpdate: {
            taskId: 's1',
            contextId,
            status: status('TASK_STATE_COMPLETED', 'done'),
            // A spoke cannot move the hub's own keys: the target stays the hub's.
            metadata: { 'agenthub/skill': 'roi', tokens: 3, 'agenthub/target': 'finance' },
          },
        };
      })();
    };
    const sent = (await (
      await a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message: userMessage('how did Q4 do?') })
    ).json()) as { result: { task: { id: string; metadata: Record<string, unknown>; history: unknown[] } } };
    const task = sent.result.task;
    expect(task.metadata).toMatchObject({
      'agenthub/skill': 'roi',
      tokens: 3,
      'agenthub/target': 'marketing',
    });
    expect(task.history).toHaveLength(3);
    const replay = parseSse(
      await (
        await a2a(
          hub,
          auth,
          'SubscribeToTask',
          { id: task.id, metadata: { [META.afterSeq]: 0 } },
          { accept: 'text/event-stream' },
        )
      ).text(),
    );
    const results = replay.map(
      (event) =>
        (event.data as { result: Record<string, { status: { state: string }; history?: unknown[] }> }).result,
    );
    expect(results[0]?.task?.status.state).toBe('TASK_STATE_SUBMITTED');
    expect(results[0]?.task?.history).toHaveLength(1);
    expect(results[1]?.task?.status.state).toBe('TASK_STATE_WORKING');
    expect(results[1]?.task?.history).toHaveLength(1);
    expect(results.slice(2).map((result) => result.statusUpdate?.status.state)).toEqual([
      'TASK_STATE_WORKING',
      'TASK_STATE_COMPLETED',
    ]);
  });

  it('refuses to route to a contraindicated spoke with SPOKE_UNATTESTED, 503 and Retry-After', async () => {
    const { hub, spokes, auth, appraiser } = await setup(['marketing']);
    appraiser.verdicts.set('marketing', { status: 'contraindicated', reasons: ['meas.model.mismatch'] });
    const replica = hub.registry.replicasOf('marketing')[0];
    if (replica === undefined) throw new Error('no replica');
    await hub.attestation.attest(replica);
    const response = await a2a(hub, auth, 'SendMessage', {
      tenant: 'marketing',
      message: userMessage('hello'),
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('60');
    const body = (await response.json()) as { error: { data: { reason: string }[] } };
    expect(body.error.data[0]?.reason).toBe('SPOKE_UNATTESTED');
    expect(spokes[0]?.requests.filter((request) => request.method === 'SendStreamingMessage')).toHaveLength(
      0,
    );
    const status = (await (await fetch(`${hub.url}/v1/spokes`, { headers: auth })).json()) as {
      spokes: { status: string; reasons: string[] }[];
    };
    expect(status.spokes[0]).toMatchObject({ status: 'contraindicated' });
    expect(status.spokes[0]?.reasons).toContain('meas.model.mismatch');
  });

  it('spreads requests by least outstanding across two replicas', async () => {
    const first = await startFakeSpoke('marketing', { host: '127.0.0.2' });
    const second = await startFakeSpoke('marketing', { host: '127.0.0.1', port: first.port });
    cleanups.push(
      () => first.close(),
      () => second.close(),
    );
    const { hub, auth } = await startTestHub([
      { name: 'marketing', port: first.port, hosts: ['127.0.0.1', '127.0.0.2'] },
    ]);
    cleanups.push(() => hub.close());
    await untilRoutable(hub, 'marketing', 2);
    const holdFirst = holdingHandler(first);
    const holdSecond = holdingHandler(second);
    const calls = Array.from({ length: 6 }, () =>
      a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message: userMessage('work') }),
    );
    await until(() => holdFirst.held() + holdSecond.held() === 6, 'six held requests');
    expect(holdFirst.held()).toBe(3);
    expect(holdSecond.held()).toBe(3);
    holdFirst.release();
    holdSecond.release();
    const statuses = await Promise.all(calls.map(async (call) => (await call).status));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
  });

  it('keeps a conversation on its replica of each spoke it reaches, also after it reached another spoke', async () => {
    const first = await startFakeSpoke('marketing', { host: '127.0.0.2' });
    const second = await startFakeSpoke('marketing', { host: '127.0.0.1', port: first.port });
    const finance = await startFakeSpoke('finance');
    cleanups.push(
      () => first.close(),
      () => second.close(),
      () => finance.close(),
    );
    const { hub, auth } = await startTestHub([
      { name: 'marketing', port: first.port, hosts: ['127.0.0.1', '127.0.0.2'] },
      { name: 'finance', port: finance.port },
    ]);
    cleanups.push(() => hub.close());
    await untilRoutable(hub, 'marketing', 2);
    await untilRoutable(hub, 'finance');
    const contextId = randomUUID();
    const ask = (tenant: string, text: string): Promise<Response> =>
      a2a(hub, auth, 'SendMessage', { tenant, message: userMessage(text, { contextId }) });
    const opening = (await (await ask('marketing', 'how did Q4 go?')).json()) as {
      result: { task: { id: string } };
    };
    const record = (await (
      await fetch(`${hub.url}/v1/tasks/${opening.result.task.id}`, { headers: auth })
    ).json()) as { hops: { replica: string }[] };
    // The same conversation reaches finance (as finance's own peer call to marketing does, the other way).
    expect((await ask('finance', 'and the payback?')).status).toBe(200);
    // Busy the conversation's replica with one request: least outstanding alone would pick the other one.
    const holdFirst = holdingHandler(first);
    const holdSecond = holdingHandler(second);
    const conversationHold = record.hops[0]?.replica.includes('127.0.0.2') ? holdFirst : holdSecond;
    const blocker = a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message: userMessage('other') });
    await until(() => holdFirst.held() + holdSecond.held() === 1, 'the other request held');
    const heldBefore = conversationHold.held();
    const followUp = ask('marketing', 'and the quarter before?');
    await until(() => holdFirst.held() + holdSecond.held() === 2, 'the follow-up held');
    expect(conversationHold.held()).toBe(heldBefore + 1);
    holdFirst.release();
    holdSecond.release();
    expect((await blocker).status).toBe(200);
    expect((await followUp).status).toBe(200);
  });

  it('retries on the other replica when a link drops before the spoke answers, and frees both slots', async () => {
    const first = await startFakeSpoke('marketing', { host: '127.0.0.2' });
    const second = await startFakeSpoke('marketing', { host: '127.0.0.1', port: first.port });
    cleanups.push(
      () => first.close(),
      () => second.close(),
    );
    const { hub, auth } = await startTestHub([
      { name: 'marketing', port: first.port, hosts: ['127.0.0.1', '127.0.0.2'] },
    ]);
    cleanups.push(() => hub.close());
    await untilRoutable(hub, 'marketing', 2);
    // Whichever replica gets the request first drops its link without answering.
    let dropped = 0;
    for (const spoke of [first, second]) {
      const answer = spoke.handler;
      spoke.handler = (method, params, context) => {
        if (method === 'SendStreamingMessage' && dropped === 0) {
          dropped += 1;
          spoke.socket?.terminate();
          return new Promise(() => undefined);
        }
        return answer(method, params, context);
      };
    }
    const response = await a2a(hub, auth, 'SendMessage', {
      tenant: 'marketing',
      message: userMessage('retry'),
    });
    const body = (await response.json()) as { result: { task: { id: string; status: { state: string } } } };
    expect(response.status).toBe(200);
    expect(body.result.task.status.state).toBe('TASK_STATE_COMPLETED');
    const task = (await (
      await fetch(`${hub.url}/v1/tasks/${body.result.task.id}`, { headers: auth })
    ).json()) as {
      hops: { attempt: number; outcome: string; replica: string }[];
    };
    expect(task.hops.map((hop) => [hop.attempt, hop.outcome])).toEqual([
      [1, 'SPOKE_UNAVAILABLE'],
      [2, 'TASK_STATE_COMPLETED'],
    ]);
    expect(task.hops[0]?.replica).not.toBe(task.hops[1]?.replica);
    await until(
      () => hub.registry.replicasOf('marketing').every((replica) => replica.outstanding === 0),
      'no slot left taken on either replica',
    );
  });

  it('follows DNS: a new address becomes a replica, a vanished one is dropped', async () => {
    const first = await startFakeSpoke('marketing', { host: '127.0.0.2' });
    const second = await startFakeSpoke('marketing', { host: '127.0.0.1', port: first.port });
    cleanups.push(
      () => first.close(),
      () => second.close(),
    );
    let addresses = ['127.0.0.1'];
    const { hub } = await startTestHub(
      [{ name: 'marketing', port: first.port }],
      {},
      {
        resolveHost: async () => [...addresses],
      },
    );
    cleanups.push(() => hub.close());
    await untilRoutable(hub, 'marketing', 1);
    addresses = ['127.0.0.1', '127.0.0.2'];
    await hub.refreshReplicas();
    await untilRoutable(hub, 'marketing', 2);
    addresses = ['127.0.0.2'];
    await hub.refreshReplicas();
    expect(hub.registry.replicasOf('marketing').map((replica) => replica.address)).toEqual(['127.0.0.2']);
    await until(() => second.link?.closed === true, 'link to the vanished replica closed');
  });

  it('answers QUEUE_FULL with 429 and Retry-After when capacity and queue are used up', async () => {
    const { hub, spokes, auth } = await setup(['marketing'], { QUEUE_LIMIT: '1' });
    const spoke = spokes[0] as FakeSpoke;
    spoke.heartbeat(1);
    await until(() => hub.registry.replicasOf('marketing')[0]?.load.capacity === 1, 'capacity 1');
    const hold = holdingHandler(spoke);
    const inFlight = a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message: userMessage('one') });
    await until(() => hold.held() === 1, 'first request held');
    const queued = a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message: userMessage('two') });
    await until(() => hub.router.queuedCount('marketing') === 1, 'second request queued');
    const rejected = await a2a(hub, auth, 'SendMessage', {
      tenant: 'marketing',
      message: userMessage('three'),
    });
    expect(rejected.status).toBe(429);
    expect(Number(rejected.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await rejected.json()) as { error: { data: { reason: string }[] } };
    expect(body.error.data[0]?.reason).toBe('QUEUE_FULL');
    hold.release();
    expect((await inFlight).status).toBe(200);
    await until(() => hold.held() === 2, 'queued request dispatched');
    hold.release();
    expect((await queued).status).toBe(200);
  });

  it('fails a silent spoke with DEADLINE_EXCEEDED (idle timeout) and sends it CancelTask', async () => {
    const { hub, spokes, auth } = await setup(['marketing']);
    const hold = holdingHandler(spokes[0] as FakeSpoke);
    const response = await a2a(hub, auth, 'SendMessage', {
      tenant: 'marketing',
      message: userMessage('slow'),
      metadata: { [META.idleTimeoutMs]: 150, [META.deadline]: Date.now() + 20_000 },
    });
    expect(response.status).toBe(504);
    const body = (await response.json()) as {
      error: { data: { reason: string; metadata: { timeout: string } }[] };
    };
    expect(body.error.data[0]).toMatchObject({ reason: 'DEADLINE_EXCEEDED', metadata: { timeout: 'idle' } });
    await until(() => hold.canceled.length === 1, 'CancelTask at the spoke');
    expect(hold.canceled[0]).toMatch(/^spoke-/);
  });

  it('fails a chatty spoke at the total deadline although it never goes idle, and cancels it', async () => {
    const { hub, spokes, auth } = await setup(['marketing']);
    const spoke = spokes[0] as FakeSpoke;
    const canceled: string[] = [];
    spoke.handler = (method, params, context) => {
      if (method === 'CancelTask') {
        canceled.push(String(params.id));
        return Promise.resolve({ id: params.id, contextId: 'c', status: { state: 'TASK_STATE_CANCELED' } });
      }
      const message = params.message as { contextId: string };
      return (async function* () {
        yield {
          task: { id: 'chatty', contextId: message.contextId, status: { state: 'TASK_STATE_WORKING' } },
        };
        while (!context.signal.aborted) {
          await new Promise((resolve) => setTimeout(resolve, 30));
          yield {
            statusUpdate: {
              taskId: 'chatty',
              contextId: message.contextId,
              status: { state: 'TASK_STATE_WORKING' },
            },
          };
        }
      })();
    };
    const response = await a2a(hub, auth, 'SendMessage', {
      tenant: 'marketing',
      message: userMessage('chatty'),
      metadata: { [META.idleTimeoutMs]: 200, [META.deadline]: Date.now() + 600 },
    });
    expect(response.status).toBe(504);
    const body = (await response.json()) as { error: { data: { metadata: { timeout: string } }[] } };
    expect(body.error.data[0]?.metadata.timeout).toBe('total');
    await until(() => canceled.includes('chatty'), 'CancelTask at the spoke');
  });

  it('delivers a repeated messageId once and answers both callers with the same task', async () => {
    const { hub, spokes, auth } = await setup(['marketing']);
    const message = userMessage('once');
    const [first, second] = await Promise.all([
      a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message }),
      a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message }),
    ]);
    const third = await a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message });
    const ids = await Promise.all(
      [first, second, third].map(
        async (response) => ((await response!.json()) as { result: { task: { id: string } } }).result.task.id,
      ),
    );
    expect(new Set(ids).size).toBe(1);
    const delivered = spokes[0]?.requests.filter((request) => request.method === 'SendStreamingMessage');
    expect(delivered).toHaveLength(1);
    // The hub keeps the task's history itself and asks the spoke for none.
    expect(delivered?.[0]?.params.configuration).toEqual({ historyLength: 0 });
  });

  it('propagates a caller cancel to the spoke as CancelTask', async () => {
    const { hub, spokes, auth } = await setup(['marketing']);
    const hold = holdingHandler(spokes[0] as FakeSpoke);
    const sent = await a2a(hub, auth, 'SendMessage', {
      tenant: 'marketing',
      message: userMessage('cancel me'),
      configuration: { returnImmediately: true },
    });
    const taskId = ((await sent.json()) as { result: { task: { id: string } } }).result.task.id;
    await until(() => hold.held() === 1, 'request at the spoke');
    await until(async () => {
      const task = (await (await fetch(`${hub.url}/v1/tasks/${taskId}`, { headers: auth })).json()) as {
        hops: { spokeTaskId: string | null }[];
      };
      return task.hops[0]?.spokeTaskId != null;
    }, 'spoke task id known');
    const canceled = await a2a(hub, auth, 'CancelTask', { id: taskId });
    expect(canceled.status).toBe(200);
    const body = (await canceled.json()) as { result: { status: { state: string } } };
    expect(body.result.status.state).toBe('TASK_STATE_CANCELED');
    expect(hold.canceled).toHaveLength(1);
  });

  it('resumes an SSE stream after a reconnect with Last-Event-ID without losing or repeating events', async () => {
    const { hub, spokes, auth } = await setup(['marketing']);
    const spoke = spokes[0] as FakeSpoke;
    let proceed: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (proceed = resolve));
    spoke.handler = (_method, params) => {
      const message = params.message as { contextId: string };
      return (async function* () {
        yield { task: { id: 't', contextId: message.contextId, status: { state: 'TASK_STATE_WORKING' } } };
        for (let chunk = 0; chunk < 3; chunk += 1) {
          yield {
            artifactUpdate: {
              taskId: 't',
              contextId: message.contextId,
              artifact: { artifactId: 'a', parts: [{ text: `chunk${chunk}` }] },
              append: chunk > 0,
            },
          };
        }
        await gate;
        for (let chunk = 3; chunk < 6; chunk += 1) {
          yield {
            artifactUpdate: {
              taskId: 't',
              contextId: message.contextId,
              artifact: { artifactId: 'a', parts: [{ text: `chunk${chunk}` }] },
              append: true,
            },
          };
        }
        yield {
          statusUpdate: {
            taskId: 't',
            contextId: message.contextId,
            status: { state: 'TASK_STATE_COMPLETED' },
          },
        };
      })();
    };
    const controller = new AbortController();
    const streaming = await fetch(`${hub.url}/a2a`, {
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...auth },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'SendStreamingMessage',
        params: { tenant: 'marketing', message: userMessage('stream') },
      }),
    });
    expect(streaming.headers.get('content-type')).toContain('text/event-stream');
    const reader = streaming.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (parseSse(text).length < 3 || !text.endsWith('\n\n')) {
      const { value } = await reader.read();
      text += decoder.decode(value, { stream: true });
    }
    controller.abort();
    const before = parseSse(text).slice(0, 3);
    const lastSeen = before.at(-1)?.id as number;
    const taskId = (before[0]?.data as { result: { task: { id: string } } }).result.task.id;
    proceed();
    const resumed = await a2a(
      hub,
      auth,
      'SubscribeToTask',
      { id: taskId },
      { 'last-event-id': String(lastSeen), accept: 'text/event-stream' },
    );
    const after = parseSse(await resumed.text());
    const seqs = [...before, ...after].map((event) => event.id);
    expect(seqs).toEqual(seqs.map((_seq, index) => index + 1));
    const final = after.at(-1)?.data as { result: { statusUpdate: { status: { state: string } } } };
    expect(final.result.statusUpdate.status.state).toBe('TASK_STATE_COMPLETED');
    const task = (await (await a2a(hub, auth, 'GetTask', { id: taskId })).json()) as {
      result: { artifacts: { parts: { text: string }[] }[] };
    };
    expect(task.result.artifacts[0]?.parts.map((part) => part.text).join(',')).toBe(
      'chunk0,chunk1,chunk2,chunk3,chunk4,chunk5',
    );
  });

  it('gives every caller SPOKE_UNAVAILABLE when the spoke dies mid-request, never a hang', async () => {
    const { hub, spokes, auth } = await setup(['marketing']);
    const spoke = spokes[0] as FakeSpoke;
    const hold = holdingHandler(spoke);
    const calls = [1, 2, 3].map(() =>
      a2a(hub, auth, 'SendMessage', {
        tenant: 'marketing',
        message: userMessage('doomed'),
        metadata: { [META.deadline]: Date.now() + 30_000 },
      }),
    );
    await until(() => hold.held() === 3, 'three held');
    spoke.socket?.terminate();
    const responses = await Promise.all(calls);
    for (const response of responses) {
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: { data: { reason: string }[] } };
      expect(body.error.data[0]?.reason).toBe('SPOKE_UNAVAILABLE');
    }
  });

  it('closes gracefully: a request still running after the grace period fails with SPOKE_UNAVAILABLE', async () => {
    const spoke = await startFakeSpoke('marketing');
    cleanups.push(() => spoke.close());
    const { hub, auth } = await startTestHub([{ name: 'marketing', port: spoke.port }], {
      SHUTDOWN_GRACE_MS: '100',
    });
    await untilRoutable(hub, 'marketing');
    const hold = holdingHandler(spoke);
    const pending = a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message: userMessage('long') });
    await until(() => hold.held() === 1, 'request at the spoke');
    const closing = spoke.connected().then(
      (link) =>
        new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            if (link.closed) {
              clearInterval(timer);
              resolve();
            }
          }, 10);
        }),
    );
    await hub.close();
    const response = await pending;
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { data: { reason: string }[] } }).error.data[0]?.reason).toBe(
      'SPOKE_UNAVAILABLE',
    );
    await closing;
  });

  it('terminates a dead peer that sends no pong and stops routing to it (T08)', async () => {
    const spoke = await startFakeSpoke('marketing', { autoPong: false });
    cleanups.push(() => spoke.close());
    const { hub, auth } = await startTestHub([{ name: 'marketing', port: spoke.port }], {
      PING_INTERVAL_MS: '100',
      RECONNECT_MIN_MS: '60000',
      RECONNECT_MAX_MS: '60000',
    });
    cleanups.push(() => hub.close());
    await until(() => spoke.connections === 1, 'link opened');
    const closed = new Promise<number>((resolve) => spoke.socket?.once('close', (code) => resolve(code)));
    expect(await closed).toBe(1006);
    await until(() => hub.registry.replicasOf('marketing')[0]?.session === undefined, 'replica disconnected');
    const status = (await (await fetch(`${hub.url}/v1/spokes`, { headers: auth })).json()) as {
      spokes: { status: string; routable: boolean }[];
    };
    expect(status.spokes[0]).toMatchObject({ status: 'disconnected', routable: false });
    const response = await a2a(hub, auth, 'SendMessage', { tenant: 'marketing', message: userMessage('x') });
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { data: { reason: string }[] } }).error.data[0]?.reason).toBe(
      'SPOKE_UNAVAILABLE',
    );
  });

  it('routes a spoke-originated request up the link and shows both hops on the parent task', async () => {
    const { hub, spokes, auth } = await setup(['finance', 'marketing']);
    const [finance, marketing] = spokes as [FakeSpoke, FakeSpoke];
    let peerAnswer: unknown[] = [];
    finance.handler = (method, params) => {
      if (method !== 'SendStreamingMessage') return Promise.reject(new Error(method));
      const metadata = params.metadata as Record<string, unknown>;
      return (async function* () {
        const message = params.message as { contextId: string };
        yield {
          task: { id: 'fin-1', contextId: message.contextId, status: { state: 'TASK_STATE_WORKING' } },
        };
        const link = await finance.connected();
        const events: unknown[] = [];
        for await (const event of linkStream(link, 'SendStreamingMessage', {
          tenant: 'marketing',
          message: userMessage('analyse Q4'),
          metadata: { [META.traceparent]: metadata[META.traceparent], [META.caller]: 'finance' },
        })) {
          events.push(event);
        }
        peerAnswer = events;
        yield* completeWith(params, 'payback computed');
      })();
    };
    const response = await a2a(hub, auth, 'SendMessage', {
      tenant: 'finance',
      message: userMessage('ROI please'),
    });
    expect(response.status).toBe(200);
    const parentId = ((await response.json()) as { result: { task: { id: string } } }).result.task.id;
    expect(peerAnswer.length).toBeGreaterThan(0);
    expect(marketing.requests[0]?.params.metadata).toMatchObject({ [META.caller]: 'finance' });
    const parent = (await (await fetch(`${hub.url}/v1/tasks/${parentId}`, { headers: auth })).json()) as {
      hops: { from: string; to: string }[];
    };
    expect(parent.hops.map((hop) => `${hop.from}->${hop.to}`)).toEqual([
      'client->finance',
      'finance->marketing',
    ]);
  });

  it('links every sub-request of a task to it, also after a sub-request to the same spoke has finished', async () => {
    const { hub, spokes, auth } = await setup(['finance', 'marketing']);
    const [finance] = spokes as [FakeSpoke, FakeSpoke];
    const answers: unknown[] = [];
    const askThroughHub = async (traceparent: unknown, tenant: string, text: string): Promise<void> => {
      const link = await finance.connected();
      for await (const event of linkStream(link, 'SendStreamingMessage', {
        tenant,
        message: userMessage(text),
        metadata: { [META.traceparent]: traceparent, [META.caller]: 'finance' },
      })) {
        answers.push(event);
      }
    };
    finance.handler = (method, params) => {
      if (method !== 'SendStreamingMessage') return Promise.reject(new Error(method));
      const { parts } = params.message as { parts: { text?: string }[] };
      if (parts[0]?.text === 'check with yourself') return completeWith(params, 'checked');
      const traceparent = (params.metadata as Record<string, unknown>)[META.traceparent];
      return (async function* () {
        const message = params.message as { contextId: string };
        yield {
          task: { id: 'fin-2', contextId: message.contextId, status: { state: 'TASK_STATE_WORKING' } },
        };
        // The first sub-request goes to finance itself, in flight under the same trace as this task.
        await askThroughHub(traceparent, 'finance', 'check with yourself');
        await askThroughHub(traceparent, 'marketing', 'analyse Q4');
        yield* completeWith(params, 'payback computed');
      })();
    };
    const response = await a2a(hub, auth, 'SendMessage', { tenant: 'finance', message: userMessage('ROI') });
    const parentId = ((await response.json()) as { result: { task: { id: string } } }).result.task.id;
    const parent = (await (await fetch(`${hub.url}/v1/tasks/${parentId}`, { headers: auth })).json()) as {
      hops: { from: string; to: string }[];
    };
    expect(parent.hops.map((hop) => `${hop.from}->${hop.to}`)).toEqual([
      'client->finance',
      'finance->finance',
      'finance->marketing',
    ]);
    // Both sub-requests were answered (the fake spokes answer by echoing or completing).
    expect(JSON.stringify(answers)).toContain('checked');
    expect(JSON.stringify(answers)).toContain('TASK_STATE_COMPLETED');
  });

  it('refuses a request from a spoke that is itself not attested', async () => {
    const { hub, spokes, appraiser } = await setup(['finance', 'marketing']);
    const [finance, marketing] = spokes as [FakeSpoke, FakeSpoke];
    appraiser.verdicts.set('finance', { status: 'contraindicated', reasons: ['meas.code.mismatch'] });
    const replica = hub.registry.replicasOf('finance')[0];
    if (replica === undefined) throw new Error('no replica');
    await hub.attestation.attest(replica);
    const link = await finance.connected();
    await expect(
      link.request('SendMessage', { tenant: 'marketing', message: userMessage('hi') }),
    ).rejects.toMatchObject({ code: 'SPOKE_UNATTESTED' });
    expect(marketing.requests).toHaveLength(0);
  });
});
