// A2A JSON-RPC over HTTP (+ SSE) against a real spoke on 127.0.0.1: task lifecycle, errors, dedupe,
// cancellation that really stops the skill, deadlines, bounded queue, peer calls without a hub, shutdown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromJsonRpcError, type JsonRpcErrorObject, type Task } from '../../shared/protocol.js';
import {
  makeKeys,
  messageParams,
  rpc,
  rpcStream,
  startTestSpoke,
  type TestKeys,
  type TestSpoke,
} from './spoke_runtime_helpers.js';

let keys: TestKeys;
let testSpoke: TestSpoke;

beforeAll(async () => {
  keys = await makeKeys();
  testSpoke = await startTestSpoke(keys, { capacity: 4, queueLimit: 4 });
});

afterAll(async () => {
  await testSpoke.spoke.close({ graceMs: 0 });
});

function taskOf(body: Record<string, unknown>): Task {
  return (body.result as { task: Task }).task;
}

function errorCodeOf(body: Record<string, unknown>): string {
  return fromJsonRpcError(body.error as JsonRpcErrorObject).code;
}

describe('spoke A2A over HTTP', () => {
  it('completes SendMessage to ping with a text and data artifact', async () => {
    const reply = await rpc(testSpoke.spoke, 'SendMessage', messageParams('ping', { skill: 'ping' }));
    expect(reply.status).toBe(200);
    const task = taskOf(reply.body);
    expect(task.status.state).toBe('TASK_STATE_COMPLETED');
    expect(task.artifacts?.[0]?.parts).toEqual([
      { text: 'pong' },
      { data: { pong: true }, mediaType: 'application/json' },
    ]);
    expect(task.metadata?.['agenthub/skill']).toBe('ping');
  });

  it('selects the skill from a data part, then from the text, and refuses an unknown one listing the skills', async () => {
    const byData = await rpc(
      testSpoke.spoke,
      'SendMessage',
      messageParams('hello', { data: { skill: 'echo', n: 1 } }),
    );
    expect(taskOf(byData.body).metadata?.['agenthub/skill']).toBe('echo');
    const byText = await rpc(testSpoke.spoke, 'SendMessage', messageParams('please echo this'));
    expect(taskOf(byText.body).artifacts?.[0]?.parts[0]).toEqual({ text: 'please echo this' });
    const unknown = await rpc(testSpoke.spoke, 'SendMessage', messageParams('x', { skill: 'nope' }));
    expect(errorCodeOf(unknown.body)).toBe('BAD_REQUEST');
    expect((unknown.body.error as { message: string }).message).toContain('ping, echo, sleep');
  });

  it('streams SendStreamingMessage as SSE: the task first, progress, and the final task in one event', async () => {
    const events = await rpcStream(
      testSpoke.spoke,
      'SendStreamingMessage',
      messageParams('sleep 20', { skill: 'sleep' }),
    );
    const results = events.map((event) => event.result as { task?: Task });
    // The first snapshot waits one turn, so it shows the started task with its first progress; the artifact
    // and the terminal status, made in one turn, arrive as one final task.
    expect(results.map((result) => Object.keys(result))).toEqual([['task'], ['task']]);
    expect(results.map((result) => result.task?.status.state)).toEqual([
      'TASK_STATE_WORKING',
      'TASK_STATE_COMPLETED',
    ]);
    expect(results[0]?.task?.status.message?.parts).toEqual([{ text: 'sleeping 20 ms' }]);
    expect(results[1]?.task?.artifacts?.[0]?.parts[0]).toEqual({ text: 'slept 20 ms' });
  });

  it('answers an unknown method with METHOD_NOT_FOUND (-32601)', async () => {
    const reply = await rpc(testSpoke.spoke, 'message/send', {});
    expect(reply.body.error).toMatchObject({ code: -32601 });
    expect(errorCodeOf(reply.body)).toBe('METHOD_NOT_FOUND');
  });

  it('answers wrong param types with BAD_REQUEST (-32602) naming the field', async () => {
    const reply = await rpc(testSpoke.spoke, 'SendMessage', {
      message: { messageId: 7, role: 'user', parts: 'hi' },
    });
    expect(reply.body.error).toMatchObject({ code: -32602 });
    expect(errorCodeOf(reply.body)).toBe('BAD_REQUEST');
    expect((reply.body.error as { message: string }).message).toContain('message.messageId');
  });

  it('answers malformed JSON with PARSE_ERROR (-32700) and id null', async () => {
    const reply = await rpc(testSpoke.spoke, 'SendMessage', {}, { rawBody: '{"jsonrpc":"2.0","id":1,' });
    expect(reply.body).toMatchObject({ id: null, error: { code: -32700 } });
  });

  it('refuses a request without A2A-Version with VersionNotSupported (-32009)', async () => {
    const reply = await rpc(testSpoke.spoke, 'SendMessage', messageParams('ping'), { version: null });
    expect(reply.body.error).toMatchObject({ code: -32009 });
    expect((reply.body.error as { message: string }).message).toContain("'0.3'");
  });

  it('answers a body over the limit with 413 PAYLOAD_TOO_LARGE', async () => {
    const huge = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'SendMessage',
      params: { pad: 'x'.repeat(1024 * 1024 + 10) },
    });
    const reply = await rpc(testSpoke.spoke, 'SendMessage', {}, { rawBody: huge });
    expect(reply.status).toBe(413);
    expect(errorCodeOf(reply.body)).toBe('PAYLOAD_TOO_LARGE');
    const after = await rpc(testSpoke.spoke, 'SendMessage', messageParams('ping', { skill: 'ping' }));
    expect(taskOf(after.body).status.state).toBe('TASK_STATE_COMPLETED');
  });

  it('dedupes on messageId: the same message again is the same task and the skill runs once', async () => {
    const startedBefore = testSpoke.probe.started;
    const params = messageParams('loop', { skill: 'loop', messageId: 'dedupe-1', returnImmediately: true });
    const first = taskOf((await rpc(testSpoke.spoke, 'SendMessage', params)).body);
    const second = taskOf((await rpc(testSpoke.spoke, 'SendMessage', params)).body);
    expect(second.id).toBe(first.id);
    await expect.poll(() => testSpoke.probe.started).toBe(startedBefore + 1);
    await rpc(testSpoke.spoke, 'CancelTask', { id: first.id });
    const third = taskOf((await rpc(testSpoke.spoke, 'SendMessage', params)).body);
    expect(third.id).toBe(first.id);
    expect(third.status.state).toBe('TASK_STATE_CANCELED');
    expect(testSpoke.probe.started).toBe(startedBefore + 1);
  });

  it('dedupes per caller: the same messageId from another caller is a new task', async () => {
    const fromA = messageParams('ping', {
      skill: 'ping',
      messageId: 'shared-id',
      metadata: { 'agenthub/caller': 'finance' },
    });
    const fromB = messageParams('ping', {
      skill: 'ping',
      messageId: 'shared-id',
      metadata: { 'agenthub/caller': 'sales' },
    });
    const taskA = taskOf((await rpc(testSpoke.spoke, 'SendMessage', fromA)).body);
    const taskB = taskOf((await rpc(testSpoke.spoke, 'SendMessage', fromB)).body);
    const againA = taskOf((await rpc(testSpoke.spoke, 'SendMessage', fromA)).body);
    expect(taskB.id).not.toBe(taskA.id);
    expect(againA.id).toBe(taskA.id);
  });

  it('CancelTask fires the skill signal, the skill really stops and the task ends CANCELED', async () => {
    const abortedBefore = testSpoke.probe.aborted;
    const created = taskOf(
      (
        await rpc(
          testSpoke.spoke,
          'SendMessage',
          messageParams('loop', { skill: 'loop', returnImmediately: true }),
        )
      ).body,
    );
    await expect
      .poll(
        async () =>
          ((await rpc(testSpoke.spoke, 'GetTask', { id: created.id })).body.result as Task).status.state,
      )
      .toBe('TASK_STATE_WORKING');
    const canceled = await rpc(testSpoke.spoke, 'CancelTask', { id: created.id });
    expect((canceled.body.result as Task).status.state).toBe('TASK_STATE_CANCELED');
    expect(testSpoke.probe.aborted).toBe(abortedBefore + 1);
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    expect(testSpoke.probe.iterationsAfterAbort).toBe(0);
    const again = await rpc(testSpoke.spoke, 'CancelTask', { id: created.id });
    expect(errorCodeOf(again.body)).toBe('TASK_NOT_CANCELABLE');
  });

  it('cancels the task when the client of the originating stream goes away', async () => {
    const abortedBefore = testSpoke.probe.aborted;
    const controller = new AbortController();
    const response = await fetch(`${testSpoke.spoke.apiUrl}/a2a`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'A2A-Version': '1.0' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'stream-1',
        method: 'SendStreamingMessage',
        params: messageParams('loop', { skill: 'loop' }),
      }),
      signal: controller.signal,
    });
    const reader = response.body?.getReader();
    await reader?.read();
    controller.abort();
    await expect.poll(() => testSpoke.probe.aborted).toBe(abortedBefore + 1);
  });

  it('fails the task with DEADLINE_EXCEEDED when metadata deadline passes, stopping the skill', async () => {
    const params = messageParams('sleep', {
      skill: 'sleep',
      data: { ms: 5000 },
      metadata: { 'agenthub/deadline': Date.now() + 100 },
    });
    const started = Date.now();
    const task = taskOf((await rpc(testSpoke.spoke, 'SendMessage', params)).body);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(task.status.state).toBe('TASK_STATE_FAILED');
    expect(task.metadata?.['agenthub/error']).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(task.status.message?.parts[0]?.text).toContain('DEADLINE_EXCEEDED');
  });

  it('fails a skill that asks a peer while no hub link is open with SPOKE_UNAVAILABLE', async () => {
    const params = messageParams('ask', {
      skill: 'ask',
      data: { tenant: 'marketing', skill: 'ping', text: 'ping' },
    });
    const task = taskOf((await rpc(testSpoke.spoke, 'SendMessage', params)).body);
    expect(task.status.state).toBe('TASK_STATE_FAILED');
    expect(task.metadata?.['agenthub/error']).toMatchObject({ code: 'SPOKE_UNAVAILABLE' });
  });

  it('serves GetTask, ListTasks and SubscribeToTask, and reports unknown tasks as TASK_NOT_FOUND', async () => {
    const contextId = `ctx-${Date.now()}`;
    const params = messageParams('ping', { skill: 'ping' });
    (params.message as Record<string, unknown>).contextId = contextId;
    const done = taskOf((await rpc(testSpoke.spoke, 'SendMessage', params)).body);
    const got = await rpc(testSpoke.spoke, 'GetTask', { id: done.id, historyLength: 0 });
    expect((got.body.result as Task).history).toBeUndefined();
    const listed = await rpc(testSpoke.spoke, 'ListTasks', { contextId });
    expect(listed.body.result).toMatchObject({ totalSize: 1, nextPageToken: '', tasks: [{ id: done.id }] });
    expect((listed.body.result as { tasks: Task[] }).tasks[0]?.artifacts).toBeUndefined();
    const missing = await rpc(testSpoke.spoke, 'GetTask', { id: 'no-such-task' });
    expect(missing.body.error).toMatchObject({ code: -32001 });
    const terminal = await rpcStream(testSpoke.spoke, 'SubscribeToTask', { id: done.id });
    expect(errorCodeOf(terminal[0] ?? {})).toBe('UNSUPPORTED_OPERATION');

    const running = taskOf(
      (
        await rpc(
          testSpoke.spoke,
          'SendMessage',
          messageParams('sleep', { skill: 'sleep', data: { ms: 150 }, returnImmediately: true }),
        )
      ).body,
    );
    const events = await rpcStream(testSpoke.spoke, 'SubscribeToTask', { id: running.id });
    const last = events.at(-1)?.result as { task?: Task };
    expect(Object.keys(events[0]?.result as object)).toEqual(['task']);
    expect(last.task?.status.state).toBe('TASK_STATE_COMPLETED');
  });
});

describe('spoke capacity, readiness and shutdown', () => {
  it('answers QUEUE_FULL at once when running and queued tasks reach capacity + queueLimit', async () => {
    const small = await startTestSpoke(keys, { capacity: 1, queueLimit: 1 });
    try {
      const first = taskOf(
        (
          await rpc(
            small.spoke,
            'SendMessage',
            messageParams('loop', { skill: 'loop', returnImmediately: true }),
          )
        ).body,
      );
      const second = taskOf(
        (
          await rpc(
            small.spoke,
            'SendMessage',
            messageParams('loop', { skill: 'loop', returnImmediately: true }),
          )
        ).body,
      );
      expect(second.status.state).toBe('TASK_STATE_SUBMITTED');
      const third = await rpc(small.spoke, 'SendMessage', messageParams('loop', { skill: 'loop' }));
      expect(errorCodeOf(third.body)).toBe('QUEUE_FULL');
      expect(third.body.error).toMatchObject({ code: -31012 });
      const queued = await rpc(small.spoke, 'CancelTask', { id: second.id });
      expect((queued.body.result as Task).status.state).toBe('TASK_STATE_CANCELED');
      await rpc(small.spoke, 'CancelTask', { id: first.id });
      expect(small.probe.started).toBe(1);
    } finally {
      await small.spoke.close({ graceMs: 0 });
    }
  });

  it('reports not ready with the reason on /readyz', async () => {
    const waiting = await startTestSpoke(keys, {
      readiness: () => ({ ready: false, reason: 'no model yet' }),
    });
    try {
      const response = await fetch(`${waiting.spoke.apiUrl}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({
        ready: false,
        reason: 'no model yet',
        hubConnected: false,
      });
      expect((await fetch(`${waiting.spoke.apiUrl}/healthz`)).status).toBe(200);
    } finally {
      await waiting.spoke.close({ graceMs: 0 });
    }
  });

  it('closes gracefully: running tasks past the grace period end CANCELED and both servers stop', async () => {
    const closing = await startTestSpoke(keys);
    const pending = rpc(closing.spoke, 'SendMessage', messageParams('loop', { skill: 'loop' }));
    await expect.poll(() => closing.probe.started).toBe(1);
    await closing.spoke.close({ graceMs: 50 });
    const reply = await pending;
    expect(taskOf(reply.body).status.state).toBe('TASK_STATE_CANCELED');
    expect(closing.probe.aborted).toBe(1);
    await expect(fetch(`${closing.spoke.apiUrl}/healthz`)).rejects.toThrow();
    await expect(fetch(`${closing.spoke.attestationUrl}/healthz`)).rejects.toThrow();
  });
});

describe('spoke HTTP API with an API key', () => {
  const apiKey = 'spoke-test-key-0123456789abcdef';
  let locked: TestSpoke;

  beforeAll(async () => {
    locked = await startTestSpoke(keys, { name: 'lockedspoke', apiKey });
  });

  afterAll(async () => {
    await locked.spoke.close({ graceMs: 0 });
  });

  it('answers /a2a without the key or with a wrong one with 401 UNAUTHORIZED, as a JSON-RPC error', async () => {
    for (const presented of [undefined, 'not-the-key-0123456789abcdef']) {
      const reply = await rpc(
        locked.spoke,
        'SendMessage',
        messageParams('ping', { skill: 'ping' }),
        presented === undefined ? {} : { apiKey: presented },
      );
      expect(reply.status).toBe(401);
      expect(errorCodeOf(reply.body)).toBe('UNAUTHORIZED');
      expect(reply.body.id).toBeNull();
    }
    const response = await fetch(`${locked.spoke.apiUrl}/a2a`, { method: 'POST', body: '{}' });
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('serves /a2a with the key, and keeps health, readiness and the agent card open', async () => {
    const reply = await rpc(locked.spoke, 'SendMessage', messageParams('ping', { skill: 'ping' }), {
      apiKey,
    });
    expect(reply.status).toBe(200);
    expect(taskOf(reply.body).status.state).toBe('TASK_STATE_COMPLETED');
    for (const path of ['/healthz', '/.well-known/agent-card.json']) {
      expect((await fetch(`${locked.spoke.apiUrl}${path}`)).status).toBe(200);
    }
    expect([200, 503]).toContain((await fetch(`${locked.spoke.apiUrl}/readyz`)).status);
  });

  it('answers any other route without the key with 401 and the plain error body', async () => {
    const response = await fetch(`${locked.spoke.apiUrl}/marketing/anything`);
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
  });
});
