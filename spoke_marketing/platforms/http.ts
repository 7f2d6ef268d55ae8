// HTTP plumbing shared by the ad-platform adapters: the request log (dry-run records, live sends), secret
// redaction, a token-bucket rate limiter and exponential backoff with full jitter honouring Retry-After.
import { AppError } from '../../shared/errors.js';

/** One HTTP request to an ad platform, fully built (URL includes the API version). */
export interface PlatformRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  /** JSON body; absent for GET. */
  body?: unknown;
}

/** A platform's HTTP response with the JSON body parsed (or the text when it is not JSON). */
export interface PlatformResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** A request as kept in the inspectable log: secrets redacted, whether it was sent, and its outcome. */
export interface RecordedRequest extends PlatformRequest {
  /** False in dry-run: built and recorded, never sent. */
  sent: boolean;
  recordedAt: Date;
  /** Attempts made (0 in dry-run). */
  attempts: number;
  /** Final HTTP status when sent. */
  status?: number;
}

/** Sends one request; the live implementation uses fetch. */
export interface HttpSender {
  send(request: PlatformRequest, signal?: AbortSignal): Promise<PlatformResponse>;
}

/** Time source and sleep, injectable so tests need not wait. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Wall clock with an abortable sleep. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new AppError('CANCELED', 'aborted while waiting to retry', { cause: signal.reason }));
        return;
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(new AppError('CANCELED', 'aborted while waiting to retry', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** fetch-based sender: JSON in, JSON (or text) out. */
export function createFetchSender(fetchImpl: typeof fetch = fetch): HttpSender {
  return {
    async send(request, signal) {
      const response = await fetchImpl(request.url, {
        method: request.method,
        headers: request.headers,
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        ...(signal === undefined ? {} : { signal }),
      });
      const text = await response.text();
      let body: unknown = text;
      if (text !== '') {
        try {
          body = JSON.parse(text) as unknown;
        } catch {
          body = text;
        }
      }
      const headers: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        headers[name.toLowerCase()] = value;
      });
      return { status: response.status, headers, body };
    },
  };
}

/** Options of {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Burst size (tokens when full). */
  capacity: number;
  /** Steady rate, tokens per second. */
  refillPerSecond: number;
  clock?: Clock;
}

/** Token-bucket rate limiter: `take()` resolves when a token is available. */
export class TokenBucket {
  readonly #capacity: number;
  readonly #refillPerMs: number;
  readonly #clock: Clock;
  #tokens: number;
  #updatedAt: number;

  constructor(options: TokenBucketOptions) {
    if (!(options.capacity >= 1) || !(options.refillPerSecond > 0)) {
      throw new AppError('BAD_REQUEST', 'token bucket needs capacity ≥ 1 and a positive refill rate', {
        details: { capacity: options.capacity, refillPerSecond: options.refillPerSecond },
      });
    }
    this.#capacity = options.capacity;
    this.#refillPerMs = options.refillPerSecond / 1000;
    this.#clock = options.clock ?? systemClock;
    this.#tokens = options.capacity;
    this.#updatedAt = this.#clock.now();
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#updatedAt) * this.#refillPerMs);
    this.#updatedAt = now;
  }

  /** Tokens available now (fractional). */
  available(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Waits for and consumes one token. */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      this.#refill();
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return;
      }
      await this.#clock.sleep(Math.ceil((1 - this.#tokens) / this.#refillPerMs), signal);
    }
  }
}

/** Retry policy for 429 and 5xx responses and network errors. */
export interface RetryPolicy {
  /** Attempts including the first; default 5. */
  maxAttempts: number;
  /** First backoff ceiling in ms; default 500. */
  baseDelayMs: number;
  /** Backoff ceiling in ms; default 30,000. */
  maxDelayMs: number;
  /** A Retry-After longer than this (ms) ends retrying at once; default 300,000. */
  maxRetryAfterMs: number;
  /** Uniform [0, 1) source for jitter; default Math.random. */
  random: () => number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 300_000,
  random: Math.random,
});

/** Full-jitter exponential backoff: uniform in [0, min(maxDelay, base · 2^(attempt − 1))). */
export function backoffDelayMs(attempt: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(policy.random() * ceiling);
}

/** Retry-After as milliseconds from `nowMs`: delta-seconds or an HTTP date; undefined when absent or bad. */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** How a response is treated: success, retry as rate-limited, retry as server error, or fail. */
export type ResponseClass = 'ok' | 'rate_limited' | 'server_error' | 'failed';

/** Default classification by HTTP status (platforms refine it for errors they report in the body). */
export function classifyByStatus(response: PlatformResponse): ResponseClass {
  if (response.status >= 200 && response.status < 300) return 'ok';
  if (response.status === 429) return 'rate_limited';
  if (response.status >= 500) return 'server_error';
  return 'failed';
}

/** Replaces every occurrence of each secret in URL, headers and body with `[REDACTED]`. */
export function redactRequest(request: PlatformRequest, secrets: readonly string[]): PlatformRequest {
  const active = secrets.filter((secret) => secret.length > 0);
  const scrub = (text: string): string =>
    active.reduce((result, secret) => result.replaceAll(secret, '[REDACTED]'), text);
  const scrubValue = (value: unknown): unknown => {
    if (typeof value === 'string') return scrub(value);
    if (Array.isArray(value)) return value.map(scrubValue);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, scrubValue(inner)]));
    }
    return value;
  };
  return {
    method: request.method,
    url: scrub(request.url),
    headers: Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, scrub(value)])),
    ...(request.body === undefined ? {} : { body: scrubValue(request.body) }),
  };
}

/** Whether requests are only recorded or really sent. */
export type PlatformMode = 'dry-run' | 'live';

/** Options of {@link PlatformTransport}. */
export interface PlatformTransportOptions {
  platform: string;
  mode: PlatformMode;
  /** Values that must never appear in the request log (access tokens, developer tokens). */
  secrets: readonly string[];
  /** Needed in live mode. */
  sender?: HttpSender;
  bucket?: TokenBucket;
  retry?: Partial<RetryPolicy>;
  clock?: Clock;
  classify?: (response: PlatformResponse) => ResponseClass;
}

/**
 * Executes platform requests: in dry-run it records them and returns no response; in live mode it waits for
 * a rate-limit token, sends, and retries 429/5xx/network failures with backoff, then gives up with
 * RATE_LIMITED or UPSTREAM_ERROR carrying the status. Every request lands in the log, secrets redacted.
 */
export class PlatformTransport {
  readonly platform: string;
  readonly mode: PlatformMode;
  readonly #secrets: readonly string[];
  readonly #sender: HttpSender | undefined;
  readonly #bucket: TokenBucket | undefined;
  readonly #retry: RetryPolicy;
  readonly #clock: Clock;
  readonly #classify: (response: PlatformResponse) => ResponseClass;
  readonly #log: RecordedRequest[] = [];

  constructor(options: PlatformTransportOptions) {
    if (options.mode === 'live' && options.sender === undefined) {
      throw new AppError('CONFIG_INVALID', `${options.platform}: live mode needs an HTTP sender`);
    }
    this.platform = options.platform;
    this.mode = options.mode;
    this.#secrets = options.secrets;
    this.#sender = options.sender;
    this.#bucket = options.bucket;
    this.#retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.#clock = options.clock ?? systemClock;
    this.#classify = options.classify ?? classifyByStatus;
  }

  /** Every request so far, oldest first (copies; secrets redacted). */
  requests(): RecordedRequest[] {
    return structuredClone(this.#log);
  }

  /** Records (dry-run) or sends (live) one request; returns the response in live mode. */
  async execute(
    request: PlatformRequest,
    signal?: AbortSignal,
  ): Promise<{ recorded: RecordedRequest; response: PlatformResponse | undefined }> {
    const recorded: RecordedRequest = {
      ...redactRequest(request, this.#secrets),
      sent: false,
      recordedAt: new Date(this.#clock.now()),
      attempts: 0,
    };
    this.#log.push(recorded);
    if (this.mode === 'dry-run') return { recorded: structuredClone(recorded), response: undefined };
    const response = await this.#sendWithRetry(request, recorded, signal);
    return { recorded: structuredClone(recorded), response };
  }

  async #sendWithRetry(
    request: PlatformRequest,
    recorded: RecordedRequest,
    signal: AbortSignal | undefined,
  ): Promise<PlatformResponse> {
    const sender = this.#sender!;
    const policy = this.#retry;
    let last: { response?: PlatformResponse; error?: unknown; kind: ResponseClass } = {
      kind: 'server_error',
    };
    for (let attempt = 1; attempt <= policy.maxAttempts; attempt += 1) {
      await this.#bucket?.take(signal);
      recorded.attempts = attempt;
      recorded.sent = true;
      try {
        const response = await sender.send(request, signal);
        recorded.status = response.status;
        const kind = this.#classify(response);
        if (kind === 'ok') return response;
        if (kind === 'failed') {
          throw new AppError(
            'UPSTREAM_ERROR',
            `${this.platform} rejected the request with HTTP ${response.status}`,
            {
              details: {
                platform: this.platform,
                status: response.status,
                attempts: attempt,
                body: response.body,
                retryable: false,
              },
            },
          );
        }
        last = { response, kind };
      } catch (error) {
        if (error instanceof AppError) throw error;
        if (signal?.aborted)
          throw new AppError('CANCELED', `${this.platform} request aborted`, { cause: error });
        last = { error, kind: 'server_error' };
      }
      if (attempt === policy.maxAttempts) break;
      const retryAfterMs = parseRetryAfterMs(last.response?.headers['retry-after'], this.#clock.now());
      if (retryAfterMs !== undefined && retryAfterMs > policy.maxRetryAfterMs) break;
      await this.#clock.sleep(retryAfterMs ?? backoffDelayMs(attempt, policy), signal);
    }
    return this.#giveUp(last, recorded.attempts);
  }

  #giveUp(
    last: { response?: PlatformResponse; error?: unknown; kind: ResponseClass },
    attempts: number,
  ): never {
    const status = last.response?.status;
    const retryAfterMs = parseRetryAfterMs(last.response?.headers['retry-after'], this.#clock.now());
    const details = { platform: this.platform, status, attempts, body: last.response?.body };
    if (last.kind === 'rate_limited') {
      throw new AppError(
        'RATE_LIMITED',
        `${this.platform} still rate-limited (HTTP ${status}) after ${attempts} attempts`,
        {
          details,
          ...(retryAfterMs === undefined ? {} : { retryAfterSeconds: Math.ceil(retryAfterMs / 1000) }),
        },
      );
    }
    const reason =
      status === undefined
        ? `network error: ${String((last.error as Error | undefined)?.message ?? last.error)}`
        : `HTTP ${status}`;
    throw new AppError('UPSTREAM_ERROR', `${this.platform} failed (${reason}) after ${attempts} attempts`, {
      details,
      ...(last.error === undefined ? {} : { cause: last.error }),
    });
  }
}
