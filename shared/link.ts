// JSON-RPC multiplexing over one WebSocket, used by both ends of the hub ⇄ spoke link: outgoing requests
// and streams correlated by id, incoming requests dispatched to handlers with a cancel signal, the
// `stream/cancel` control notification, an incoming-frame token bucket and a send high-water mark.
import type { Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { CancelSource, type Cancellation } from './cancellation.js';
import { AppError, toAppError } from './errors.js';
import { silentLogger, type Logger } from './log.js';
import {
  CONTROL_METHODS,
  JsonRpcIdSchema,
  StreamCancelSchema,
  errorFrame,
  frameTooLarge,
  fromJsonRpcError,
  isOversizedFrame,
  notificationFrame,
  parseLinkFrame,
  requestFrame,
  resultFrame,
  streamEndFrame,
  type JsonRpcId,
  type LinkFrame,
} from './protocol.js';

/** What a handler of an incoming request gets besides the method and params. */
export interface LinkRequestContext {
  /** JSON-RPC id the peer chose for this request. */
  readonly id: JsonRpcId;
  /** Aborted when the peer sends `stream/cancel` for this id, or when the link closes. Made on first use. */
  readonly signal: AbortSignal;
  /** The same cancel as `signal`, cheaper to wait on. */
  readonly cancellation: Cancellation;
}

/** The callbacks a link dispatches incoming frames to. */
export interface LinkHandlers {
  /**
   * Serves one incoming request. A Promise answers with one result frame; an AsyncIterable answers with one
   * result frame per item followed by `streamEnd`. A thrown AppError becomes an error frame with its code;
   * anything else thrown becomes `INTERNAL` (the cause is logged, never sent).
   */
  onRequest(
    method: string,
    params: unknown,
    context: LinkRequestContext,
  ): Promise<unknown> | AsyncIterable<unknown>;
  /** Receives notifications other than `stream/cancel` (which the link handles itself). */
  onNotification?(method: string, params: unknown): void;
  /** Called once when the link closes, locally or by the peer, after every pending call has been rejected. */
  onClose?(code: number, reason: string): void;
}

/** Options of an outgoing request. */
export interface LinkRequestOptions {
  /** Aborting rejects with `CANCELED` and sends `stream/cancel` so the peer stops working. */
  readonly signal?: AbortSignal;
  /** No answer within this many ms rejects with `DEADLINE_EXCEEDED` and sends `stream/cancel`. */
  readonly timeoutMs?: number;
}

/** Receives an outgoing stream's results as they arrive, then exactly one of `end` or `fail`. */
export interface StreamSink {
  item(value: unknown): void;
  end(): void;
  fail(error: AppError): void;
}

/** An outgoing stream opened with {@link Link.open}. */
export interface StreamHandle {
  /** Fails the stream with `reason` (default `CANCELED`) and sends `stream/cancel`; no-op once it has ended. */
  cancel(reason?: AppError): void;
}

/** One end of a multiplexed JSON-RPC link. */
export interface Link {
  /** Sends a request and resolves with its single result; rejects with the AppError rebuilt from an error frame. */
  request(method: string, params: unknown, options?: LinkRequestOptions): Promise<unknown>;
  /**
   * Sends a request whose answer is a stream and hands each result to `sink` as its frame arrives, until
   * `streamEnd` (`end`) or an error frame (`fail`, with the AppError rebuilt from it). No async iteration per
   * result: this is the hub's routed path. A request that cannot be sent fails the sink on a microtask.
   */
  open(method: string, params: unknown, sink: StreamSink): StreamHandle;
  /** Sends a notification. Throws `SPOKE_UNAVAILABLE` when closed and `QUEUE_FULL` over the high-water mark. */
  notify(method: string, params: unknown): void;
  /** Outgoing requests and streams not yet finished. */
  readonly inflight: number;
  /** Bytes queued on the socket but not yet written. */
  readonly bufferedAmount: number;
  /** Closes the socket (default 1000) and rejects everything pending at once with `SPOKE_UNAVAILABLE`. */
  close(code?: number, reason?: string): void;
  /** True once the link is closed (locally or by the peer). */
  readonly closed: boolean;
}

/** Tuning of a link; the defaults suit a hub ⇄ spoke link carrying many small multiplexed requests. */
export interface LinkOptions {
  /** Logger for dropped frames and handler failures. Default: silent. */
  readonly log?: Logger;
  /** Prefix of the ids of outgoing requests, to tell the two directions apart in logs. Default `l`. */
  readonly idPrefix?: string;
  /**
   * Sustained incoming frames per second before the link closes with 1008. Default 50000: a streamed answer
   * takes several frames (task snapshots, status and artifact events, streamEnd), and a link carries
   * thousands of routed messages a second; 5000 once closed a busy link at under 1000 calls per second.
   */
  readonly maxIncomingPerSecond?: number;
  /** Incoming frames allowed in a burst above the sustained rate. Default 100000. */
  readonly maxIncomingBurst?: number;
  /** Socket `bufferedAmount` above which new sends fail with `QUEUE_FULL`, in bytes. Default 4 MiB. */
  readonly maxBufferedBytes?: number;
}

/** Close code for policy violations (flood, binary frames are answered, not closed). */
const CLOSE_POLICY_VIOLATION = 1008;
const DEFAULT_MAX_INCOMING_PER_SECOND = 50_000;
const DEFAULT_MAX_INCOMING_BURST = 100_000;
const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** WebSocket close reasons are limited to 123 bytes. */
const MAX_CLOSE_REASON_BYTES = 123;

interface PendingRequest {
  readonly kind: 'request';
  resolve(value: unknown): void;
  reject(error: AppError): void;
}

interface PendingStream {
  readonly kind: 'stream';
  push(item: unknown): void;
  end(): void;
  fail(error: AppError): void;
}

type PendingCall = PendingRequest | PendingStream;

/** An incoming request in progress: its id and its cancel (the AbortSignal is made only when asked for). */
class IncomingCall extends CancelSource implements LinkRequestContext {
  constructor(readonly id: JsonRpcId) {
    super();
  }

  get cancellation(): Cancellation {
    return this;
  }
}

/**
 * Wraps an open (or opening) `ws` socket in a multiplexed JSON-RPC link. Frames are processed in arrival
 * order; the answers of different ids interleave. Malformed frames are answered with an error frame and the
 * link keeps serving; a flood beyond the token bucket closes it with 1008.
 */
export function createLink(socket: WebSocket, handlers: LinkHandlers, options: LinkOptions = {}): Link {
  const log = options.log ?? silentLogger();
  const idPrefix = options.idPrefix ?? 'l';
  const ratePerSecond = options.maxIncomingPerSecond ?? DEFAULT_MAX_INCOMING_PER_SECOND;
  const burst = options.maxIncomingBurst ?? DEFAULT_MAX_INCOMING_BURST;
  const maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;

  const pending = new Map<JsonRpcId, PendingCall>();
  const incoming = new Map<JsonRpcId, IncomingCall>();
  const framesBeforeOpen: string[] = [];
  let nextId = 1;
  let closed = false;
  const incomingBudget = tokenBucket(ratePerSecond, burst);

  function linkClosedError(): AppError {
    return new AppError('SPOKE_UNAVAILABLE', 'link closed');
  }

  const onSent = (error?: Error): void => {
    if (error) log.debug({ err: error }, 'link send failed');
  };
  let corked: Writable | undefined;
  const uncork = (): void => {
    const stream = corked;
    corked = undefined;
    stream?.uncork();
  };

  function writeFrame(frame: string): void {
    if (socket.readyState === socket.CONNECTING) {
      framesBeforeOpen.push(frame);
      return;
    }
    if (socket.readyState !== socket.OPEN) return;
    // Frames sent in the same event-loop turn (the answers of many multiplexed calls) leave in one write
    // instead of one syscall each: the TCP socket under `ws` is corked until setImmediate.
    if (corked === undefined) {
      const stream = (socket as unknown as { _socket?: Writable | null })._socket;
      if (stream !== undefined && stream !== null && typeof stream.cork === 'function') {
        stream.cork();
        corked = stream;
        setImmediate(uncork);
      }
    }
    socket.send(frame, onSent);
  }

  function assertCanSend(): void {
    if (closed) throw linkClosedError();
    if (socket.bufferedAmount > maxBufferedBytes) {
      throw new AppError('QUEUE_FULL', `link send buffer above ${maxBufferedBytes} bytes`, {
        details: { bufferedAmount: socket.bufferedAmount, limitBytes: maxBufferedBytes },
        retryAfterSeconds: 1,
      });
    }
  }

  function assertFrameFits(frame: string): void {
    if (isOversizedFrame(frame)) throw frameTooLarge('frame');
  }

  function sendCancel(requestId: JsonRpcId): void {
    if (closed) return;
    writeFrame(notificationFrame(CONTROL_METHODS.streamCancel, { id: requestId }));
  }

  /** Registers an outgoing call and sends its request frame; throws when the frame cannot be sent. */
  function startCall(method: string, params: unknown, call: PendingCall): JsonRpcId {
    assertCanSend();
    const requestId = `${idPrefix}${nextId++}`;
    const frame = requestFrame(requestId, method, params);
    assertFrameFits(frame);
    pending.set(requestId, call);
    writeFrame(frame);
    return requestId;
  }

  function request(
    method: string,
    params: unknown,
    requestOptions: LinkRequestOptions = {},
  ): Promise<unknown> {
    const { signal, timeoutMs } = requestOptions;
    return new Promise<unknown>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new AppError('CANCELED', `request ${method} canceled before it was sent`));
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      let requestId: JsonRpcId | undefined;
      const finish = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (requestId !== undefined) pending.delete(requestId);
      };
      const giveUp = (error: AppError): void => {
        const sentId = requestId;
        finish();
        if (sentId !== undefined) sendCancel(sentId);
        reject(error);
      };
      const onAbort = (): void =>
        giveUp(new AppError('CANCELED', `request ${method} canceled by the caller`));
      try {
        requestId = startCall(method, params, {
          kind: 'request',
          resolve: (value) => {
            finish();
            resolve(value);
          },
          reject: (error) => {
            finish();
            reject(error);
          },
        });
      } catch (error) {
        reject(toAppError(error));
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () => giveUp(new AppError('DEADLINE_EXCEEDED', `no answer to ${method} within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }
    });
  }

  function open(method: string, params: unknown, sink: StreamSink): StreamHandle {
    let done = false;
    let requestId: JsonRpcId | undefined;
    const finish = (): void => {
      done = true;
      if (requestId !== undefined && pending.get(requestId) === call) pending.delete(requestId);
    };
    const call: PendingStream = {
      kind: 'stream',
      push(item: unknown): void {
        if (!done) sink.item(item);
      },
      end(): void {
        if (done) return;
        finish();
        sink.end();
      },
      fail(error: AppError): void {
        if (done) return;
        finish();
        sink.fail(error);
      },
    };
    try {
      requestId = startCall(method, params, call);
    } catch (error) {
      queueMicrotask(() => call.fail(toAppError(error)));
    }
    return {
      cancel(reason?: AppError): void {
        if (done) return;
        const sentId = requestId;
        finish();
        if (sentId !== undefined) sendCancel(sentId);
        sink.fail(reason ?? new AppError('CANCELED', `stream ${method} canceled by the caller`));
      },
    };
  }

  function notifyPeer(method: string, params: unknown): void {
    assertCanSend();
    const frame = notificationFrame(method, params);
    assertFrameFits(frame);
    writeFrame(frame);
  }

  // ---- incoming ------------------------------------------------------------------------------------

  function answerError(requestId: JsonRpcId | null, error: AppError): void {
    if (closed) return;
    writeFrame(errorFrame(requestId, error));
  }

  /** The id of a frame that failed validation, when it carries a usable one; null otherwise. */
  function salvageId(text: string): JsonRpcId | null {
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
      const parsed = JsonRpcIdSchema.safeParse((value as Record<string, unknown>).id);
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }

  function onMessage(data: unknown, isBinary: boolean): void {
    if (closed) return;
    if (!incomingBudget.take()) {
      log.warn({ ratePerSecond, burst }, 'link flood: closing with 1008');
      close(CLOSE_POLICY_VIOLATION, 'rate limit exceeded');
      return;
    }
    if (isBinary) {
      answerError(null, new AppError('INVALID_REQUEST', 'binary frames are not supported; send JSON text'));
      return;
    }
    const text = rawDataToString(data);
    let frame: LinkFrame;
    try {
      frame = parseLinkFrame(text);
    } catch (error) {
      const appError = toAppError(error, 'INVALID_REQUEST');
      answerError(appError.code === 'PARSE_ERROR' ? null : salvageId(text), appError);
      return;
    }
    dispatch(frame);
  }

  function dispatch(frame: LinkFrame): void {
    switch (frame.kind) {
      case 'request':
        serveRequest(frame.id, frame.method, frame.params);
        return;
      case 'notification':
        receiveNotification(frame.method, frame.params);
        return;
      case 'result': {
        const call = pending.get(frame.id);
        if (call === undefined) {
          log.debug({ id: frame.id }, 'result for an unknown or finished id dropped');
        } else if (call.kind === 'request') {
          call.resolve(frame.result);
        } else {
          call.push(frame.result);
        }
        return;
      }
      case 'error': {
        const call = frame.id === null ? undefined : pending.get(frame.id);
        const error = fromJsonRpcError(frame.error);
        if (call === undefined) {
          log.warn({ id: frame.id, code: error.code, message: error.message }, 'peer reported an error');
        } else if (call.kind === 'request') {
          call.reject(error);
        } else {
          call.fail(error);
        }
        return;
      }
      case 'streamEnd': {
        const call = pending.get(frame.id);
        if (call === undefined) {
          log.debug({ id: frame.id }, 'streamEnd for an unknown or finished id dropped');
        } else if (call.kind === 'request') {
          call.reject(new AppError('UPSTREAM_ERROR', 'peer ended the request without a result'));
        } else {
          call.end();
        }
        return;
      }
      default: {
        const unexpected: never = frame;
        throw new AppError('INTERNAL', `unexpected link frame ${JSON.stringify(unexpected)}`);
      }
    }
  }

  function receiveNotification(method: string, params: unknown): void {
    if (method === CONTROL_METHODS.streamCancel) {
      const parsed = StreamCancelSchema.safeParse(params);
      if (!parsed.success) {
        log.debug({ params }, 'malformed stream/cancel ignored');
        return;
      }
      incoming.get(parsed.data.id)?.abort(new AppError('CANCELED', 'canceled by the peer'));
      return;
    }
    try {
      handlers.onNotification?.(method, params);
    } catch (error) {
      log.warn({ err: error, method }, 'notification handler threw');
    }
  }

  function serveRequest(requestId: JsonRpcId, method: string, params: unknown): void {
    if (incoming.has(requestId)) {
      answerError(requestId, new AppError('INVALID_REQUEST', `id ${String(requestId)} is already in use`));
      return;
    }
    if (socket.bufferedAmount > maxBufferedBytes) {
      answerError(
        requestId,
        new AppError('QUEUE_FULL', 'link send buffer is full; retry later', { retryAfterSeconds: 1 }),
      );
      return;
    }
    const call = new IncomingCall(requestId);
    incoming.set(requestId, call);
    void runHandler(call, method, params).finally(() => incoming.delete(requestId));
  }

  /** Sends one answer frame unless the peer has canceled or the link is gone; oversized answers become errors. */
  function sendAnswer(call: IncomingCall, frame: string): void {
    const requestId = call.id;
    if (closed || call.aborted) return;
    if (isOversizedFrame(frame)) {
      answerError(requestId, frameTooLarge('answer'));
      return;
    }
    writeFrame(frame);
  }

  async function runHandler(call: IncomingCall, method: string, params: unknown): Promise<void> {
    try {
      const answer = handlers.onRequest(method, params, call);
      if (isAsyncIterable(answer)) {
        await pumpStream(call, answer);
      } else {
        const result = await answer;
        sendAnswer(call, resultFrame(call.id, result));
      }
    } catch (error) {
      if (closed || call.aborted) return;
      if (!(error instanceof AppError)) log.error({ err: error, method }, 'link request handler failed');
      answerError(
        call.id,
        error instanceof AppError
          ? error
          : new AppError('INTERNAL', `internal error while serving ${method}`),
      );
    }
  }

  async function pumpStream(call: IncomingCall, answer: AsyncIterable<unknown>): Promise<void> {
    const iterator = answer[Symbol.asyncIterator]();
    const aborted = new Promise<'aborted'>((resolve) => {
      if (call.aborted) resolve('aborted');
      else call.addEventListener('abort', () => resolve('aborted'));
    });
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next === 'aborted') {
        // Ask the producer to finish; a generator suspended in an await finishes when that await settles.
        void Promise.resolve(iterator.return?.()).catch((error: unknown) => {
          log.debug({ err: error }, 'stream producer failed while being canceled');
        });
        return;
      }
      if (next.done) break;
      sendAnswer(call, resultFrame(call.id, next.value));
    }
    sendAnswer(call, streamEndFrame(call.id));
  }

  // ---- closing -------------------------------------------------------------------------------------

  function markClosed(code: number, reason: string): void {
    if (closed) return;
    closed = true;
    framesBeforeOpen.length = 0;
    const error = linkClosedError();
    const calls = [...pending.values()];
    pending.clear();
    for (const call of calls) {
      if (call.kind === 'request') call.reject(error);
      else call.fail(error);
    }
    for (const call of incoming.values()) call.abort(error);
    try {
      handlers.onClose?.(code, reason);
    } catch (handlerError) {
      log.warn({ err: handlerError }, 'link close handler threw');
    }
  }

  function close(code = 1000, reason = ''): void {
    if (closed) return;
    const shortReason = truncateUtf8(reason, MAX_CLOSE_REASON_BYTES);
    markClosed(code, shortReason);
    if (socket.readyState === socket.CONNECTING || socket.readyState === socket.OPEN) {
      try {
        socket.close(code, shortReason);
      } catch (error) {
        log.debug({ err: error }, 'socket close failed; terminating');
        socket.terminate();
      }
    }
  }

  socket.on('message', onMessage);
  socket.on('open', () => {
    const frames = framesBeforeOpen.splice(0);
    for (const frame of frames) writeFrame(frame);
  });
  socket.on('close', (code: number, reason: Buffer) => markClosed(code, reason.toString('utf8')));
  socket.on('error', (error: Error) => log.debug({ err: error }, 'link socket error'));
  if (socket.readyState === socket.CLOSING || socket.readyState === socket.CLOSED) {
    markClosed(1006, 'socket already closed');
  }

  return {
    request,
    open,
    notify: notifyPeer,
    get inflight() {
      return pending.size;
    },
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    close,
    get closed() {
      return closed;
    },
  };
}

/** A token bucket: `take()` spends one token, false when the sustained rate and the burst are used up. */
export function tokenBucket(ratePerSecond: number, burst: number): { take(): boolean } {
  let tokens = burst;
  let last = performance.now();
  return {
    take() {
      const now = performance.now();
      tokens = Math.min(burst, tokens + ((now - last) / 1000) * ratePerSecond);
      last = now;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
  };
}

/** True for anything with `Symbol.asyncIterator` (a handler's streamed answer). */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function'
  );
}

function rawDataToString(data: unknown): string {
  if (typeof data === 'string') return data;
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data as Buffer[]).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return String(data);
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let cut = text;
  while (Buffer.byteLength(cut, 'utf8') > maxBytes) cut = cut.slice(0, -1);
  return cut;
}
