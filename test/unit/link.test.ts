// The multiplexed JSON-RPC link over a real WebSocket pair on 127.0.0.1: interleaving, streams,
// error mapping, cancellation, close semantics, malformed frames and flood protection.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { AppError } from '../../shared/errors.js';
import { createLink, type Link, type LinkHandlers, type LinkOptions } from '../../shared/link.js';
import { CONTROL_METHODS } from '../../shared/protocol.js';
import { linkStream } from '../helpers/link_stream.js';

interface LinkPair {
  readonly client: Link;
  readonly server: Link;
  readonly clientSocket: WebSocket;
  readonly serverSocket: WebSocket;
  dispose(): Promise<void>;
}

const disposers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const dispose of disposers.splice(0)) await dispose();
});

const noRequests: LinkHandlers = {
  onRequest: (method) => Promise.reject(new AppError('METHOD_NOT_FOUND', `no method ${method}`)),
};

/** A server link and a client link connected over loopback. */
async function linkPair(
  serverHandlers: LinkHandlers,
  clientHandlers: LinkHandlers = noRequests,
  serverOptions: LinkOptions = {},
): Promise<LinkPair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const { port } = wss.address() as AddressInfo;
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const clientSocket = new WebSocket(`ws://127.0.0.1:${port}`);
  const client = createLink(clientSocket, clientHandlers, { idPrefix: 'c' });
  const [serverSocket] = await accepted;
  const server = createLink(serverSocket, serverHandlers, { idPrefix: 's', ...serverOptions });
  if (clientSocket.readyState !== WebSocket.OPEN) await once(clientSocket, 'open');
  const dispose = async (): Promise<void> => {
    client.close();
    server.close();
    clientSocket.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  };
  disposers.push(dispose);
  return { client, server, clientSocket, serverSocket, dispose };
}

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

async function collect(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  const items: unknown[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** Sends a raw text frame and resolves with the next frame the peer sends back. */
async function rawExchange(socket: WebSocket, text: string): Promise<Record<string, unknown>> {
  const reply = once(socket, 'message') as Promise<[Buffer]>;
  socket.send(text);
  const [data] = await reply;
  return JSON.parse(data.toString('utf8')) as Record<string, unknown>;
}

describe('createLink', () => {
  it('answers concurrent requests out of order, each to its own caller', async () => {
    const gates = new Map<string, ReturnType<typeof deferred<void>>>();
    const { client } = await linkPair({
      onRequest: async (_method, params) => {
        const { name } = params as { name: string };
        const gate = deferred<void>();
        gates.set(name, gate);
        await gate.promise;
        return { echoed: name };
      },
    });
    const first = client.request('work', { name: 'first' });
    const second = client.request('work', { name: 'second' });
    await expect.poll(() => gates.size).toBe(2);
    expect(client.inflight).toBe(2);
    gates.get('second')?.resolve();
    await expect(second).resolves.toEqual({ echoed: 'second' });
    expect(client.inflight).toBe(1);
    gates.get('first')?.resolve();
    await expect(first).resolves.toEqual({ echoed: 'first' });
    expect(client.inflight).toBe(0);
  });

  it('interleaves a stream with requests and ends the stream on streamEnd', async () => {
    const next = deferred<void>();
    const { client } = await linkPair({
      onRequest: (method) => {
        if (method === 'count') {
          return (async function* () {
            yield 1;
            await next.promise;
            yield 2;
            yield 3;
          })();
        }
        return Promise.resolve('quick');
      },
    });
    const items: unknown[] = [];
    const streaming = (async () => {
      for await (const item of linkStream(client, 'count', {})) {
        items.push(item);
        if (item === 1) {
          // A request answered while the stream is open proves multiplexing.
          items.push(await client.request('ping', {}));
          next.resolve();
        }
      }
    })();
    await streaming;
    expect(items).toEqual([1, 'quick', 2, 3]);
    expect(client.inflight).toBe(0);
  });

  it('rebuilds the AppError code from an error frame, and maps other throws to INTERNAL', async () => {
    const { client } = await linkPair({
      onRequest: (method) => {
        if (method === 'full') throw new AppError('QUEUE_FULL', 'no room', { retryAfterSeconds: 2 });
        if (method === 'stream-fail') {
          return (async function* () {
            yield 'partial';
            throw new AppError('DEADLINE_EXCEEDED', 'too slow');
          })();
        }
        return Promise.reject(new TypeError('secret internals'));
      },
    });
    const full = await client.request('full', {}).catch((error: unknown) => error);
    expect(full).toBeInstanceOf(AppError);
    expect((full as AppError).code).toBe('QUEUE_FULL');
    expect((full as AppError).retryAfterSeconds).toBe(2);

    const items: unknown[] = [];
    const streamError = await (async () => {
      for await (const item of linkStream(client, 'stream-fail', {})) items.push(item);
    })().catch((error: unknown) => error);
    expect(items).toEqual(['partial']);
    expect((streamError as AppError).code).toBe('DEADLINE_EXCEEDED');

    const internal = (await client.request('boom', {}).catch((error: unknown) => error)) as AppError;
    expect(internal.code).toBe('INTERNAL');
    expect(internal.message).not.toContain('secret');
  });

  it('aborts the handler signal when the caller breaks out of a stream (stream/cancel)', async () => {
    const aborted = deferred<string>();
    const { client } = await linkPair({
      onRequest: (_method, _params, context) => {
        context.signal.addEventListener('abort', () => aborted.resolve(String(context.id)), { once: true });
        return (async function* () {
          for (let n = 0; !context.signal.aborted; n++) {
            yield n;
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        })();
      },
    });
    for await (const item of linkStream(client, 'ticks', {})) {
      if (item === 2) break;
    }
    await expect(aborted.promise).resolves.toMatch(/^c\d+$/);
    expect(client.inflight).toBe(0);
  });

  it('aborts the handler signal when a request is aborted or times out, and rejects the caller', async () => {
    const abortedIds: string[] = [];
    const { client } = await linkPair({
      onRequest: (_method, _params, context) =>
        new Promise((_resolve, reject) => {
          context.signal.addEventListener('abort', () => {
            abortedIds.push(String(context.id));
            reject(new AppError('CANCELED', 'stopped'));
          });
        }),
    });
    const controller = new AbortController();
    const canceled = client.request('hang', {}, { signal: controller.signal });
    controller.abort();
    await expect(canceled).rejects.toMatchObject({ code: 'CANCELED' });
    await expect(client.request('hang', {}, { timeoutMs: 30 })).rejects.toMatchObject({
      code: 'DEADLINE_EXCEEDED',
    });
    await expect.poll(() => abortedIds.length).toBe(2);
    expect(client.inflight).toBe(0);
  });

  it('rejects every pending request and stream at once when the link closes, never hangs', async () => {
    const handlerSignals: AbortSignal[] = [];
    const closes: number[] = [];
    const { client, server } = await linkPair(
      {
        onRequest: (_method, _params, context) => {
          handlerSignals.push(context.signal);
          return new Promise(() => undefined);
        },
      },
      { ...noRequests, onClose: (code) => closes.push(code) },
    );
    const waiting = client.request('never', {});
    const streaming = collect(linkStream(client, 'never-stream', {}));
    await expect.poll(() => handlerSignals.length).toBe(2);
    server.close(1001, 'going away');
    await expect(waiting).rejects.toMatchObject({ code: 'SPOKE_UNAVAILABLE', message: 'link closed' });
    await expect(streaming).rejects.toMatchObject({ code: 'SPOKE_UNAVAILABLE' });
    expect(handlerSignals.every((signal) => signal.aborted)).toBe(true);
    await expect.poll(() => closes).toEqual([1001]);
    expect(client.closed).toBe(true);
    await expect(client.request('after', {})).rejects.toMatchObject({ code: 'SPOKE_UNAVAILABLE' });
    expect(() => client.notify('after', {})).toThrow(expect.objectContaining({ code: 'SPOKE_UNAVAILABLE' }));
  });

  it('open() hands each result to the sink in order, then end() once; cancel() stops the peer', async () => {
    const stopped = deferred<string>();
    let lateSignal: AbortSignal | undefined;
    const { client } = await linkPair({
      onRequest: (method, _params, context) => {
        if (method === 'three') {
          return (async function* () {
            yield* [1, 2, 3];
          })();
        }
        context.cancellation.addEventListener('abort', () => {
          // An AbortSignal asked for after the cancel already reports it.
          lateSignal = context.signal;
          stopped.resolve('stopped');
        });
        return (async function* () {
          yield 'first';
          await new Promise(() => undefined);
        })();
      },
    });
    const events: unknown[] = [];
    const ended = deferred<void>();
    client.open(
      'three',
      {},
      {
        item: (value) => events.push(value),
        end: () => {
          events.push('end');
          ended.resolve();
        },
        fail: (error) => events.push(`fail ${error.code}`),
      },
    );
    await ended.promise;
    expect(events).toEqual([1, 2, 3, 'end']);

    const failures: string[] = [];
    const firstItem = deferred<unknown>();
    const handle = client.open(
      'forever',
      {},
      {
        item: (value) => firstItem.resolve(value),
        end: () => failures.push('end'),
        fail: (error) => failures.push(error.code),
      },
    );
    expect(await firstItem.promise).toBe('first');
    handle.cancel(new AppError('DEADLINE_EXCEEDED', 'too slow'));
    handle.cancel();
    expect(failures).toEqual(['DEADLINE_EXCEEDED']);
    expect(await stopped.promise).toBe('stopped');
    expect(lateSignal?.aborted).toBe(true);
    expect(client.inflight).toBe(0);
  });

  it('open() on a closed link fails the sink with SPOKE_UNAVAILABLE, after open() returns', async () => {
    const { client } = await linkPair(noRequests);
    client.close();
    const failures: string[] = [];
    client.open(
      'x',
      {},
      { item: () => undefined, end: () => undefined, fail: (error) => failures.push(error.code) },
    );
    expect(failures).toEqual([]);
    await expect.poll(() => failures).toEqual(['SPOKE_UNAVAILABLE']);
  });

  it('a handler’s cancellation listener removed before the cancel does not fire', async () => {
    const fired: string[] = [];
    const { client } = await linkPair({
      onRequest: (_method, _params, context) => {
        const first = (): void => void fired.push('first');
        const second = { handleEvent: (): void => void fired.push('second') };
        context.cancellation.addEventListener('abort', first);
        context.cancellation.addEventListener('abort', second);
        context.cancellation.removeEventListener('abort', first);
        return new Promise(() => undefined);
      },
    });
    const controller = new AbortController();
    const waiting = client.request('never', {}, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'CANCELED' });
    await expect.poll(() => fired).toEqual(['second']);
  });

  it('rejects pending calls synchronously on a local close', async () => {
    const { client } = await linkPair({ onRequest: () => new Promise(() => undefined) });
    const waiting = client.request('never', {});
    client.close();
    expect(client.closed).toBe(true);
    await expect(waiting).rejects.toMatchObject({ code: 'SPOKE_UNAVAILABLE' });
  });

  it.each([
    ['malformed JSON', '{"jsonrpc":"2.0",', -32700, null],
    ['a batch', '[{"jsonrpc":"2.0","id":1,"method":"x"}]', -32600, null],
    ['a wrong jsonrpc version', '{"jsonrpc":"1.0","id":"v1","method":"x"}', -32600, 'v1'],
    ['an unknown method', '{"jsonrpc":"2.0","id":7,"method":"Nope","params":{}}', -32601, 7],
  ])('answers %s with an error frame and keeps serving', async (_label, text, code, id) => {
    const { clientSocket, client } = await linkPair({
      onRequest: (method) => {
        if (method === 'ping') return Promise.resolve('pong');
        return Promise.reject(new AppError('METHOD_NOT_FOUND', `unknown method ${method}`));
      },
    });
    const reply = await rawExchange(clientSocket, text);
    expect(reply).toMatchObject({ jsonrpc: '2.0', id, error: { code } });
    await expect(client.request('ping', {})).resolves.toBe('pong');
  });

  it('answers a binary frame with INVALID_REQUEST and keeps serving', async () => {
    const { clientSocket, client } = await linkPair({ onRequest: () => Promise.resolve('pong') });
    const reply = once(clientSocket, 'message') as Promise<[Buffer]>;
    clientSocket.send(Buffer.from([1, 2, 3]));
    const [data] = await reply;
    expect(JSON.parse(data.toString('utf8'))).toMatchObject({ id: null, error: { code: -32600 } });
    await expect(client.request('ping', {})).resolves.toBe('pong');
  });

  it('delivers notifications other than stream/cancel to onNotification, in order', async () => {
    const received: unknown[] = [];
    const { client } = await linkPair({
      ...noRequests,
      onNotification: (method, params) => received.push([method, params]),
    });
    client.notify(CONTROL_METHODS.heartbeat, { inflight: 0, capacity: 1, ready: true });
    client.notify('custom/event', { n: 1 });
    await expect.poll(() => received.length).toBe(2);
    expect(received).toEqual([
      [CONTROL_METHODS.heartbeat, { inflight: 0, capacity: 1, ready: true }],
      ['custom/event', { n: 1 }],
    ]);
  });

  it('closes with 1008 when the peer floods beyond the token bucket', async () => {
    const { clientSocket } = await linkPair({ onRequest: () => Promise.resolve('ok') }, noRequests, {
      maxIncomingPerSecond: 10,
      maxIncomingBurst: 20,
    });
    const closed = once(clientSocket, 'close') as Promise<[number, Buffer]>;
    for (let n = 0; n < 100; n++)
      clientSocket.send(JSON.stringify({ jsonrpc: '2.0', method: 'noise', params: { n } }));
    const [code, reason] = await closed;
    expect(code).toBe(1008);
    expect(reason.toString()).toBe('rate limit exceeded');
  });

  it('refuses new sends with QUEUE_FULL above the buffered high-water mark', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const { port } = wss.address() as AddressInfo;
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    await once(socket, 'open');
    const stalled = Object.create(socket) as WebSocket;
    Object.defineProperty(stalled, 'bufferedAmount', { get: () => 10_000 });
    const link = createLink(stalled, noRequests, { maxBufferedBytes: 1000 });
    expect(link.bufferedAmount).toBe(10_000);
    await expect(link.request('x', {})).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    expect(() => link.notify('x', {})).toThrow(expect.objectContaining({ code: 'QUEUE_FULL' }));
    socket.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });

  it('queues frames sent before the socket opens and delivers them once it is open', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const { port } = wss.address() as AddressInfo;
    wss.on('connection', (serverSocket: WebSocket) => {
      createLink(serverSocket, { onRequest: (_method, params) => Promise.resolve(params) });
    });
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    const link = createLink(socket, noRequests);
    await expect(link.request('echo', { early: true })).resolves.toEqual({ early: true });
    link.close();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
});
