// The runtime every spoke shares: the API port (health, readiness, agent card, A2A over HTTP behind an optional
// API key, the hub link authenticated at upgrade), the attestation port (evidence only for the live hub
// session), peer calls up the hub link, heartbeats, drain and graceful shutdown — plus runSpokeProcess, the
// composition each main.ts uses.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { join, resolve } from 'node:path';
import express from 'express';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import { AGENT_CARD_PATH, A2A_HTTP_PATH, buildSpokeCard } from './agent_card.js';
import { API_KEY_REQUIRED, apiKeyMatcher, loadApiKey } from './api_key.js';
import {
  createConnectTokenVerifier,
  debugStatus,
  importSigningKey,
  newUeid,
  signEvidence,
  type JWK,
  type SigningKey,
} from './attestation.js';
import { loadConfig, readConfigJson } from './config.js';
import { AppError, isAppError, toAppError } from './errors.js';
import { createLink, tokenBucket, type Link } from './link.js';
import { createLogger, silentLogger, type Logger } from './log.js';
import { lockfilePath, LOCAL_SPOKES } from './layout.js';
import { createMeasurer, type Measurer } from './measure.js';
import { closeOnSignals } from './shutdown.js';
import {
  AttestationResultNoticeSchema,
  CONTROL_METHODS,
  HUB_LINK_PATH,
  LIMITS,
  LINK_SUBPROTOCOL,
  META,
  SendMessageResultSchema,
  dataOf,
  dataPart,
  isA2aMethod,
  isTerminalState,
  textOf,
  textPart,
  toJsonRpcError,
  type AttestationResultNotice,
  type Part,
  type SendMessageParams,
  type SendMessageResult,
} from './protocol.js';
import type { PeerRequest, PeerResponse, SkillDefinition } from './skill.js';
import { createA2aHttpHandler } from './spoke_http.js';
import { createTaskEngine, taskFailure } from './spoke_tasks.js';

/** What a spoke needs to run. */
export interface SpokeOptions {
  /** Spoke name: its tenant at the hub and the audience of its connect tokens (e.g. `marketing`). */
  name: string;
  description: string;
  version: string;
  skills: readonly SkillDefinition[];
  /** Interface both servers listen on. */
  host: string;
  /** API port (0 = ephemeral). */
  apiPort: number;
  /** Attestation port (0 = ephemeral). */
  attestationPort: number;
  /** The spoke's Ed25519 evidence key. */
  signingKey: SigningKey;
  /** The pinned hub JWKS that connect tokens are verified against. */
  hubJwks: { keys: JWK[] };
  /** Measurements for evidence; the runtime starts and stops its periodic re-hash. */
  measurer: Measurer;
  /** Concurrent skill runs. Default 1. */
  capacity?: number;
  /** Tasks allowed to wait for a slot; beyond it `QUEUE_FULL`. Default 16. */
  queueLimit?: number;
  /** Readiness beyond the runtime's own (e.g. `{ready: false, reason: 'no model yet'}`). */
  readiness?: () => { ready: boolean; reason?: string };
  /** Interval of `hub/heartbeat` notifications and link pings, ms. Default 10 000. */
  heartbeatIntervalMs?: number;
  /** A hub link silent (no frame, no pong) for this long is terminated, ms. Default 60 000. */
  hubIdleTimeoutMs?: number;
  /** Base URL advertised in the agent card; default `http://<host>:<apiPort>`. */
  publicUrl?: string;
  log?: Logger;
  /** Adds routes to the API app before the fallback 404 (the marketing spoke adds `/marketing/...`). */
  extraRoutes?: (app: express.Express) => void;
  /**
   * When set, `POST /a2a` and the extra routes answer only callers presenting `Authorization: Bearer <apiKey>`
   * (401 UNAUTHORIZED otherwise); health, readiness and the agent card stay open, and the hub link keeps its
   * own connect token.
   */
  apiKey?: string;
}

/** A started spoke. */
export interface RunningSpoke {
  readonly apiUrl: string;
  readonly attestationUrl: string;
  readonly apiPort: number;
  readonly attestationPort: number;
  /** Whether a hub link is currently open. */
  readonly hubConnected: boolean;
  /**
   * Stops accepting work, lets running tasks finish for up to `graceMs` (default 10 000), aborts the rest
   * (they end CANCELED), closes the hub link with 1001 and both servers.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

const DEFAULT_HEARTBEAT_MS = 10_000;
const DEFAULT_HUB_IDLE_MS = 60_000;
const DEFAULT_CLOSE_GRACE_MS = 10_000;
/** Evidence request body limit (ATTESTATION.md §5.8). */
const EVIDENCE_BODY_LIMIT_BYTES = 1024;
/** Evidence requests per second, sustained, and burst. */
const EVIDENCE_RATE_PER_SECOND = 5;
const EVIDENCE_BURST = 10;
/** Lower than ws's defaults (16 384 / 262 144): our peers send whole frames, never thousands of fragments. */
const LINK_MAX_FRAGMENTS = 64;
const LINK_MAX_BUFFERED_CHUNKS = 4096;
/** Time the link waits for a hub answer to a peer call that names no timeout. */
const DEFAULT_PEER_TIMEOUT_MS = 120_000;

const EvidenceRequestSchema = z
  .object({ nonce: z.string().min(1).max(128), sid: z.string().min(1).max(128) })
  .strict();

function sendHttpError(response: express.Response, error: AppError): void {
  if (error.retryAfterSeconds !== undefined)
    response.setHeader('Retry-After', String(Math.ceil(error.retryAfterSeconds)));
  response.status(error.mapping.http).json(error.toJSON());
}

/**
 * Lets through only requests with the API key; others get 401 UNAUTHORIZED with `WWW-Authenticate: Bearer`, as a
 * JSON-RPC error on `/a2a` and as the plain error body elsewhere.
 */
function requireApiKey(apiKey: string): express.RequestHandler {
  const matches = apiKeyMatcher(apiKey);
  return (request, response, next) => {
    if (matches(request.get('authorization'))) {
      next();
      return;
    }
    const error = new AppError('UNAUTHORIZED', API_KEY_REQUIRED);
    response.setHeader('WWW-Authenticate', 'Bearer');
    if (request.path === A2A_HTTP_PATH) {
      response.status(error.mapping.http).json({ jsonrpc: '2.0', id: null, error: toJsonRpcError(error) });
      return;
    }
    sendHttpError(response, error);
  };
}

/** Refuses an upgrade with a minimal HTTP response and destroys the socket; nothing reaches `ws`. */
function refuseUpgrade(socket: Duplex, status: number, statusText: string, error: AppError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(error.toJSON());
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function bearerToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

function offeredSubprotocols(request: IncomingMessage): string[] {
  const header = request.headers['sec-websocket-protocol'];
  if (header === undefined) return [];
  return header
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '');
}

async function listen(server: Server, host: string, port: number): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function urlOf(host: string, port: number): string {
  const shown = host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${port}`;
}

async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolveClose) => server.close(() => resolveClose()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), 1000);
  force.unref();
  await closed;
  clearTimeout(force);
}

/**
 * Starts a spoke: the API server (with the hub link on {@link HUB_LINK_PATH}) and the attestation server.
 * Resolves once both listen.
 */
export async function startSpoke(options: SpokeOptions): Promise<RunningSpoke> {
  const log = options.log ?? silentLogger();
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
  const hubIdleTimeoutMs = options.hubIdleTimeoutMs ?? DEFAULT_HUB_IDLE_MS;
  const verifier = createConnectTokenVerifier(options.hubJwks, options.name);
  const startedAt = Date.now();
  const ueid = newUeid();

  /** THE current hub session: its link and the sid from its connect token. */
  let hub: { link: Link; sid: string; socket: WebSocket; lastSeen: number } | null = null;
  let lastAttestation: (AttestationResultNotice & { at: string }) | null = null;
  let drainRequested = false;
  let closing = false;

  const engine = createTaskEngine({
    skills: options.skills,
    ...(options.capacity === undefined ? {} : { capacity: options.capacity }),
    ...(options.queueLimit === undefined ? {} : { queueLimit: options.queueLimit }),
    callPeer: (request, origin) => callPeer(request, origin),
    log,
  });

  function readiness(): { ready: boolean; reason?: string } {
    if (closing) return { ready: false, reason: 'shutting down' };
    if (drainRequested) return { ready: false, reason: 'draining at the hub’s request' };
    return options.readiness?.() ?? { ready: true };
  }

  // ---- peer calls up the hub link -------------------------------------------------------------------

  async function callPeer(
    request: PeerRequest,
    origin: { signal: AbortSignal; metadata: Readonly<Record<string, unknown>> },
  ): Promise<PeerResponse> {
    const current = hub;
    if (current === null || current.link.closed) {
      throw new AppError('SPOKE_UNAVAILABLE', `no hub link: cannot ask ${request.tenant}`, {
        retryAfterSeconds: 5,
      });
    }
    const inheritedDeadline = origin.metadata[META.deadline];
    const ownDeadline = request.timeoutMs === undefined ? undefined : Date.now() + request.timeoutMs;
    const deadline =
      typeof inheritedDeadline === 'number' && Number.isFinite(inheritedDeadline)
        ? Math.min(inheritedDeadline, ownDeadline ?? Number.POSITIVE_INFINITY)
        : ownDeadline;
    const parts: Part[] = [textPart(request.text)];
    if (request.data !== undefined) parts.push(dataPart(request.data));
    const traceparent = origin.metadata[META.traceparent];
    const params: SendMessageParams = {
      tenant: request.tenant,
      message: {
        messageId: randomUUID(),
        role: 'ROLE_USER',
        parts,
        ...(request.contextId === undefined ? {} : { contextId: request.contextId }),
      },
      // The answer needs the final status and artifacts, not the conversation.
      configuration: { historyLength: 0 },
      metadata: {
        [META.skill]: request.skill,
        [META.caller]: options.name,
        ...(deadline === undefined ? {} : { [META.deadline]: deadline }),
        ...(typeof traceparent === 'string' ? { [META.traceparent]: traceparent } : {}),
      },
    };
    const controller = new AbortController();
    const forward = (): void => controller.abort(origin.signal.reason);
    origin.signal.addEventListener('abort', forward, { once: true });
    const budget = (deadline ?? Date.now() + DEFAULT_PEER_TIMEOUT_MS) - Date.now();
    let timedOut = false;
    const timer = setTimeout(
      () => {
        timedOut = true;
        controller.abort();
      },
      Math.max(0, budget),
    );
    let result: SendMessageResult;
    try {
      // One request, one answer frame: the hub waits for the peer's final state itself.
      const answer = await current.link.request('SendMessage', params, { signal: controller.signal });
      const parsed = SendMessageResultSchema.safeParse(answer);
      if (!parsed.success)
        throw new AppError(
          'UPSTREAM_ERROR',
          'the hub answered with something that is not an A2A task or message',
        );
      result = parsed.data;
    } catch (error) {
      if (timedOut) {
        throw new AppError(
          'DEADLINE_EXCEEDED',
          `${request.tenant}/${request.skill} did not answer within ${Math.round(budget)} ms`,
        );
      }
      if (origin.signal.aborted) throw toAppError(origin.signal.reason, 'CANCELED');
      throw toAppError(error, 'UPSTREAM_ERROR');
    } finally {
      clearTimeout(timer);
      origin.signal.removeEventListener('abort', forward);
    }
    if ('message' in result) {
      // A direct message answer: it is the whole response.
      const { message } = result;
      return {
        taskId: message.taskId ?? '',
        text: textOf(message.parts),
        data: dataOf(message.parts)[0],
        metadata: message.metadata ?? {},
      };
    }
    const { task } = result;
    const state = task.status.state;
    const metadata = task.metadata ?? {};
    if (state === 'TASK_STATE_COMPLETED') {
      const parts = task.artifacts?.flatMap((artifact) => artifact.parts) ?? [];
      return { taskId: task.id, text: textOf(parts), data: dataOf(parts)[0], metadata };
    }
    if (state === 'TASK_STATE_CANCELED')
      throw new AppError('CANCELED', `${request.tenant}/${request.skill} was canceled`);
    const statusText = textOf(task.status.message?.parts ?? []);
    if (!isTerminalState(state))
      throw new AppError(
        'UPSTREAM_ERROR',
        `${request.tenant}/${request.skill} stopped in ${state}${statusText === '' ? '' : `: ${statusText}`}`,
      );
    throw taskFailure(
      { ...metadata, ...(task.status.message?.metadata ?? {}) },
      statusText || `${request.tenant}/${request.skill} ended ${state}`,
    );
  }

  // ---- the hub link ---------------------------------------------------------------------------------

  function heartbeat(): void {
    const current = hub;
    if (current === null || current.link.closed) return;
    const { ready, reason } = readiness();
    try {
      current.link.notify(CONTROL_METHODS.heartbeat, {
        inflight: engine.inflight,
        capacity: engine.capacity,
        ready,
        ...(reason === undefined ? {} : { reason: reason.slice(0, 512) }),
      });
    } catch (error) {
      log.warn({ err: error }, 'heartbeat not sent');
    }
  }

  const heartbeatTimer = setInterval(() => {
    const current = hub;
    if (current === null) return;
    if (Date.now() - current.lastSeen > hubIdleTimeoutMs) {
      log.warn({ sid: current.sid, hubIdleTimeoutMs }, 'hub link silent: terminating');
      current.socket.terminate();
      return;
    }
    if (current.socket.readyState === current.socket.OPEN) current.socket.ping();
    heartbeat();
  }, heartbeatIntervalMs);
  heartbeatTimer.unref();

  function attachHubLink(socket: WebSocket, sid: string): void {
    const previous = hub;
    const session = { sid, socket, lastSeen: Date.now(), link: undefined as unknown as Link };
    const touch = (): void => {
      session.lastSeen = Date.now();
    };
    socket.on('message', touch);
    socket.on('pong', touch);
    socket.on('ping', touch);
    session.link = createLink(
      socket,
      {
        onRequest: (method, params, context) => {
          if (!isA2aMethod(method)) {
            return Promise.reject(new AppError('METHOD_NOT_FOUND', `unknown method ${method}`));
          }
          return engine.handle(method, params, context.signal);
        },
        onNotification: (method, params) => {
          if (method === CONTROL_METHODS.attestationResult) {
            const parsed = AttestationResultNoticeSchema.safeParse(params);
            if (!parsed.success) {
              log.warn('malformed hub/attestationResult ignored');
              return;
            }
            lastAttestation = { ...parsed.data, at: new Date().toISOString() };
            log.info(
              { status: parsed.data.status, reasons: parsed.data.reasons },
              'attestation result from the hub',
            );
            return;
          }
          if (method === CONTROL_METHODS.drain) {
            drainRequested = true;
            engine.stopAccepting('draining at the hub’s request');
            log.info('hub asked to drain: no new work accepted');
            heartbeat();
            return;
          }
          log.debug({ method }, 'unknown notification from the hub ignored');
        },
        onClose: (code, reason) => {
          if (hub === session) {
            hub = null;
            lastAttestation = null;
          }
          log.info({ sid, code, reason }, 'hub link closed');
        },
      },
      { log, idPrefix: 's' },
    );
    hub = session;
    if (previous !== null) {
      log.info({ oldSid: previous.sid, sid }, 'a new hub session replaces the old one');
      previous.link.close(1000, 'replaced by a newer hub session');
    }
    log.info({ sid }, 'hub link open');
    heartbeat();
  }

  // ---- API server -----------------------------------------------------------------------------------

  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_request, response) => {
    response.json({ ok: true });
  });
  app.get('/readyz', (_request, response) => {
    const { ready, reason } = readiness();
    const body = {
      ready,
      ...(reason === undefined ? {} : { reason }),
      hubConnected: hub !== null,
      inflight: engine.inflight,
      capacity: engine.capacity,
      attestation:
        lastAttestation === null
          ? null
          : { status: lastAttestation.status, reasons: lastAttestation.reasons, at: lastAttestation.at },
    };
    response.status(ready ? 200 : 503).json(body);
  });
  let cardJson = '';
  app.get(AGENT_CARD_PATH, (_request, response) => {
    response.setHeader('Cache-Control', 'public, max-age=60');
    response.type('application/json').send(cardJson);
  });
  if (options.apiKey !== undefined) app.use(requireApiKey(options.apiKey));
  app.post(
    A2A_HTTP_PATH,
    ...createA2aHttpHandler((method, params, signal) => engine.handle(method, params, signal), log),
  );
  options.extraRoutes?.(app);
  app.use((_request, response) => {
    sendHttpError(response, new AppError('NOT_FOUND', 'no such route'));
  });
  const apiErrors: express.ErrorRequestHandler = (error: unknown, _request, response, _next) => {
    const appError = isAppError(error) ? error : new AppError('INTERNAL', 'internal error');
    if (!isAppError(error)) log.error({ err: error }, 'API request failed');
    if (!response.headersSent) sendHttpError(response, appError);
  };
  app.use(apiErrors);

  const apiServer = createServer({ maxHeaderSize: 16 * 1024 }, app);
  apiServer.headersTimeout = 10_000;
  apiServer.requestTimeout = 60_000;
  apiServer.maxHeadersCount = 100;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: LIMITS.maxFrameBytes,
    perMessageDeflate: false,
    maxFragments: LINK_MAX_FRAGMENTS,
    maxBufferedChunks: LINK_MAX_BUFFERED_CHUNKS,
    skipUTF8Validation: false,
    handleProtocols: (protocols) => (protocols.has(LINK_SUBPROTOCOL) ? LINK_SUBPROTOCOL : false),
  });

  apiServer.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (error) => log.debug({ err: error }, 'upgrade socket error'));
    void authenticateUpgrade(request, socket, head);
  });

  async function authenticateUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://spoke.invalid').pathname;
    if (path !== HUB_LINK_PATH) {
      refuseUpgrade(socket, 404, 'Not Found', new AppError('NOT_FOUND', `no WebSocket endpoint at ${path}`));
      return;
    }
    if (request.headers.origin !== undefined) {
      refuseUpgrade(
        socket,
        403,
        'Forbidden',
        new AppError('FORBIDDEN', 'the hub link refuses requests that carry Origin'),
      );
      return;
    }
    if (closing) {
      refuseUpgrade(
        socket,
        503,
        'Service Unavailable',
        new AppError('SPOKE_UNAVAILABLE', 'spoke shutting down'),
      );
      return;
    }
    if (!offeredSubprotocols(request).includes(LINK_SUBPROTOCOL)) {
      refuseUpgrade(
        socket,
        400,
        'Bad Request',
        new AppError('BAD_REQUEST', `subprotocol ${LINK_SUBPROTOCOL} is required`),
      );
      return;
    }
    let sid: string;
    try {
      ({ sid } = await verifier.verify(bearerToken(request)));
    } catch (error) {
      const appError = toAppError(error, 'UNAUTHORIZED');
      log.warn({ code: appError.code, reason: appError.details?.reason }, 'hub link refused');
      refuseUpgrade(
        socket,
        401,
        'Unauthorized',
        appError.code === 'UNAUTHORIZED' ? appError : new AppError('UNAUTHORIZED', 'connect token rejected'),
      );
      return;
    }
    if (socket.destroyed || closing) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(request, socket, head, (webSocket) => attachHubLink(webSocket, sid));
  }

  // ---- attestation server ---------------------------------------------------------------------------

  const evidenceBucket = tokenBucket(EVIDENCE_RATE_PER_SECOND, EVIDENCE_BURST);
  const attestationApp = express();
  attestationApp.disable('x-powered-by');
  attestationApp.get('/healthz', (_request, response) => {
    response.json({ ok: true, measured: options.measurer.peek() !== null });
  });
  attestationApp.post(
    '/v1/evidence',
    (_request, response, next) => {
      if (evidenceBucket.take()) {
        next();
        return;
      }
      sendHttpError(
        response,
        new AppError('RATE_LIMITED', 'too many evidence requests', { retryAfterSeconds: 1 }),
      );
    },
    express.text({ type: () => true, limit: EVIDENCE_BODY_LIMIT_BYTES }),
    (request, response, next) => {
      void serveEvidence(request, response).catch(next);
    },
  );
  attestationApp.use((_request, response) => {
    sendHttpError(response, new AppError('NOT_FOUND', 'no such route'));
  });
  const attestationErrors: express.ErrorRequestHandler = (error: unknown, _request, response, _next) => {
    const status = (error as { status?: number }).status;
    let appError: AppError;
    if (isAppError(error)) appError = error;
    else if (status === 413)
      appError = new AppError(
        'PAYLOAD_TOO_LARGE',
        `evidence request body larger than ${EVIDENCE_BODY_LIMIT_BYTES} bytes`,
      );
    else if (status !== undefined && status >= 400 && status < 500)
      appError = new AppError('BAD_REQUEST', `unreadable request body: ${(error as Error).message}`);
    else {
      log.error({ err: error }, 'evidence request failed');
      appError = new AppError('INTERNAL', 'evidence could not be produced');
    }
    if (!response.headersSent) sendHttpError(response, appError);
  };
  attestationApp.use(attestationErrors);

  async function serveEvidence(request: express.Request, response: express.Response): Promise<void> {
    const text = typeof request.body === 'string' ? request.body : '';
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new AppError(
        'BAD_REQUEST',
        'evidence request body must be JSON {"nonce": "<43 base64url chars>", "sid": "<hub session id>"}',
      );
    }
    const parsed = EvidenceRequestSchema.safeParse(body);
    if (!parsed.success) {
      throw new AppError(
        'BAD_REQUEST',
        'evidence request body must be exactly {"nonce": string, "sid": string}',
      );
    }
    const { nonce, sid } = parsed.data;
    const current = hub;
    if (current === null || current.link.closed || current.sid !== sid) {
      // Only the live authenticated hub session gets evidence: a relayed challenge for another session fails.
      throw new AppError('CONFLICT', 'sid is not this spoke’s live hub session');
    }
    const measurements = await options.measurer.current();
    if (hub !== current) throw new AppError('CONFLICT', 'the hub session changed while measuring');
    const token = await signEvidence(options.signingKey, {
      spokeName: options.name,
      nonce,
      sid,
      measurements,
      ueid,
      swname: `${options.name}-agent`,
      swversion: options.version,
      dbgstat: debugStatus(),
      uptimeSeconds: (Date.now() - startedAt) / 1000,
    });
    response.status(200).type('application/eat+jwt').send(token);
  }

  const attestationServer = createServer({ maxHeaderSize: 8 * 1024 }, attestationApp);
  attestationServer.headersTimeout = 5_000;
  attestationServer.requestTimeout = 10_000;
  attestationServer.maxHeadersCount = 50;

  // ---- start and stop -------------------------------------------------------------------------------

  let apiPort: number;
  let attestationPort: number;
  try {
    apiPort = await listen(apiServer, options.host, options.apiPort);
    attestationPort = await listen(attestationServer, options.host, options.attestationPort);
  } catch (error) {
    clearInterval(heartbeatTimer);
    await closeServer(apiServer);
    await closeServer(attestationServer);
    throw new AppError('CONFIG_INVALID', `spoke ${options.name} cannot listen: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const apiUrl = urlOf(options.host, apiPort);
  const attestationUrl = urlOf(options.host, attestationPort);
  cardJson = JSON.stringify(
    buildSpokeCard({
      name: options.name,
      description: options.description,
      version: options.version,
      url: options.publicUrl ?? apiUrl,
      skills: options.skills,
      streaming: true,
      capacity: engine.capacity,
    }),
  );
  options.measurer.start();
  options.measurer
    .current()
    .catch((error: unknown) => log.error({ err: error }, 'initial measurement failed'));

  let closed: Promise<void> | undefined;
  async function close(closeOptions: { graceMs?: number } = {}): Promise<void> {
    closing = true;
    await engine.shutdown(closeOptions.graceMs ?? DEFAULT_CLOSE_GRACE_MS);
    clearInterval(heartbeatTimer);
    options.measurer.stop();
    hub?.link.close(1001, 'spoke shutting down');
    for (const client of wss.clients) client.terminate();
    wss.close();
    await Promise.all([closeServer(apiServer), closeServer(attestationServer)]);
  }

  return {
    apiUrl,
    attestationUrl,
    apiPort,
    attestationPort,
    get hubConnected() {
      return hub !== null && !hub.link.closed;
    },
    close(closeOptions) {
      closed ??= close(closeOptions);
      return closed;
    },
  };
}

// ---- process composition --------------------------------------------------------------------------------

const port = z.coerce.number().int().min(0).max(65_535);
const positiveInt = z.coerce.number().int().positive();

/** The environment of a spoke process. */
export const SpokeEnvSchema = z.object({
  /** Interface to listen on. Default 127.0.0.1 (0.0.0.0 in containers). */
  SPOKE_HOST: z.string().min(1).default('127.0.0.1'),
  /** API port (HTTP + hub link). Default: the spoke's port in INTERFACES.md, else required. 0 = ephemeral. */
  SPOKE_API_PORT: port.optional(),
  /** Attestation port. Default: the spoke's port in INTERFACES.md, else required. 0 = ephemeral. */
  SPOKE_ATTESTATION_PORT: port.optional(),
  /** Base URL advertised in the agent card. Default `http://SPOKE_HOST:SPOKE_API_PORT`. */
  SPOKE_PUBLIC_URL: z.string().url().optional(),
  /** The spoke's private Ed25519 JWK file. Default `<AGENTHUB_STATE_DIR>/spokes/<name>.jwk`. */
  SPOKE_KEY_FILE: z.string().min(1).optional(),
  /**
   * API key callers of `POST /a2a` and the spoke's own routes present as `Authorization: Bearer`. Takes
   * precedence over SPOKE_API_KEY_FILE.
   */
  SPOKE_API_KEY: z.string().min(16).optional(),
  /**
   * File holding the spoke's API key (`agenthub up` and the compose file hand the spokes the hub's key). With
   * neither set, the spoke's HTTP API is open.
   */
  SPOKE_API_KEY_FILE: z.string().min(1).optional(),
  /** The pinned hub JWKS file. Default `<AGENTHUB_STATE_DIR>/hub/hub-jwks.json`. */
  HUB_JWKS_FILE: z.string().min(1).optional(),
  /** State directory of the local enrolment. Default `.agenthub` under the working directory. */
  AGENTHUB_STATE_DIR: z.string().min(1).optional(),
  /** The model file the spoke loads and attestation measures; unset → no model. */
  MODEL_PATH: z.string().min(1).optional(),
  /** LLM memory budget in MB (10^6 bytes), reported as a config fact. Default 7000. */
  AGENT_MAX_MEMORY_MB: positiveInt.default(7000),
  /** Period of the background re-hash, ms. Default 900 000 (15 min). */
  REMEASURE_INTERVAL_MS: positiveInt.default(900_000),
  /** Heartbeat and ping period on the hub link, ms. Default 10 000. */
  HEARTBEAT_INTERVAL_MS: positiveInt.default(DEFAULT_HEARTBEAT_MS),
  /** Silence after which the hub link is dropped, ms. Default 60 000. */
  HUB_IDLE_TIMEOUT_MS: positiveInt.default(DEFAULT_HUB_IDLE_MS),
  /** Concurrent skill runs. Default 1. */
  SPOKE_CAPACITY: positiveInt.default(1),
  /** Tasks waiting for a slot before QUEUE_FULL. Default 16. */
  SPOKE_QUEUE_LIMIT: z.coerce.number().int().min(0).default(16),
  /** Shutdown grace for running tasks, ms. Default 10 000. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(DEFAULT_CLOSE_GRACE_MS),
  /** Image digest baked in at build time (self-reported in evidence). */
  IMAGE_DIGEST: z.string().optional(),
  /** pino level. Default info. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
/** Parsed spoke environment. */
export type SpokeEnv = z.infer<typeof SpokeEnvSchema>;

/** Inputs of {@link runSpokeProcess}. */
export interface SpokeProcessOptions {
  name: string;
  description: string;
  version: string;
  skills: readonly SkillDefinition[];
  /** The process environment (`process.env`), parsed with {@link SpokeEnvSchema}. */
  env: Record<string, string | undefined>;
  /** What attestation measures as code: the same paths the enrolment used (see `spokeCodePaths`). */
  codePaths: readonly string[];
  /** Overrides `MODEL_PATH`; `null` = a spoke without a model. */
  modelPath?: string | null;
  /** Skills' readiness (e.g. the model is still loading). */
  readiness?: () => { ready: boolean; reason?: string };
  extraRoutes?: (app: express.Express) => void;
  /** Working directory for relative paths. Default `process.cwd()`. */
  cwd?: string;
  /** Install SIGINT/SIGTERM handlers that close gracefully and exit 0. Default true. */
  handleSignals?: boolean;
}

const JwksFileSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) });

/**
 * The composition a spoke's main.ts uses: parses the environment, loads the spoke key and the pinned hub
 * JWKS (from the enrolment layout under AGENTHUB_STATE_DIR unless given explicitly), builds the measurer with
 * the MeasurementSpec the enrolment uses (model, code paths, repo `package-lock.json`, memory budget), starts
 * the spoke, logs its URLs as a JSON line, and on SIGINT/SIGTERM closes gracefully and exits 0.
 */
export async function runSpokeProcess(processOptions: SpokeProcessOptions): Promise<RunningSpoke> {
  const env = loadConfig(SpokeEnvSchema, processOptions.env);
  const log = createLogger(`spoke_${processOptions.name}`, env.LOG_LEVEL);
  const cwd = processOptions.cwd ?? process.cwd();
  const stateDir = resolve(cwd, env.AGENTHUB_STATE_DIR ?? '.agenthub');
  // Paths of the enrolment layout (shared/enrolment.ts): spokes/<name>.jwk and hub/hub-jwks.json.
  const keyFile = resolve(cwd, env.SPOKE_KEY_FILE ?? join(stateDir, 'spokes', `${processOptions.name}.jwk`));
  const hubJwksFile = resolve(cwd, env.HUB_JWKS_FILE ?? join(stateDir, 'hub', 'hub-jwks.json'));
  const defaults = LOCAL_SPOKES.find((spoke) => spoke.name === processOptions.name);
  const apiPort = env.SPOKE_API_PORT ?? defaults?.apiPort;
  const attestationPort = env.SPOKE_ATTESTATION_PORT ?? defaults?.attestationPort;
  if (apiPort === undefined || attestationPort === undefined) {
    throw new AppError(
      'CONFIG_INVALID',
      `spoke ${processOptions.name} has no default ports: set SPOKE_API_PORT and SPOKE_ATTESTATION_PORT`,
    );
  }
  const signingKey = await importSigningKey((await readConfigJson(keyFile, 'spoke key')) as JWK);
  const jwks = JwksFileSchema.safeParse(await readConfigJson(hubJwksFile, 'hub JWKS'));
  if (!jwks.success)
    throw new AppError('CONFIG_INVALID', `hub JWKS ${hubJwksFile} must be {"keys": [JWK, …]}`);
  const apiKey = await loadApiKey(
    env.SPOKE_API_KEY,
    env.SPOKE_API_KEY_FILE === undefined ? undefined : resolve(cwd, env.SPOKE_API_KEY_FILE),
    'spoke API key',
  );
  const modelSetting =
    processOptions.modelPath === undefined ? (env.MODEL_PATH ?? null) : processOptions.modelPath;
  const measurer = createMeasurer(
    {
      modelPath: modelSetting === null ? null : resolve(cwd, modelSetting),
      codePaths: processOptions.codePaths,
      lockfilePath: lockfilePath(),
      agentMaxMemoryMb: env.AGENT_MAX_MEMORY_MB,
      ...(env.IMAGE_DIGEST === undefined ? {} : { imageDigest: env.IMAGE_DIGEST }),
    },
    {
      remeasureIntervalMs: env.REMEASURE_INTERVAL_MS,
      onError: (error) => log.error({ err: error }, 'background re-measurement failed'),
    },
  );
  const spoke = await startSpoke({
    name: processOptions.name,
    description: processOptions.description,
    version: processOptions.version,
    skills: processOptions.skills,
    host: env.SPOKE_HOST,
    apiPort,
    attestationPort,
    signingKey,
    hubJwks: { keys: jwks.data.keys as JWK[] },
    measurer,
    capacity: env.SPOKE_CAPACITY,
    queueLimit: env.SPOKE_QUEUE_LIMIT,
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    hubIdleTimeoutMs: env.HUB_IDLE_TIMEOUT_MS,
    log,
    ...(env.SPOKE_PUBLIC_URL === undefined ? {} : { publicUrl: env.SPOKE_PUBLIC_URL }),
    ...(processOptions.readiness === undefined ? {} : { readiness: processOptions.readiness }),
    ...(processOptions.extraRoutes === undefined ? {} : { extraRoutes: processOptions.extraRoutes }),
    ...(apiKey === undefined ? {} : { apiKey }),
  });
  log.info(
    {
      spoke: processOptions.name,
      apiUrl: spoke.apiUrl,
      attestationUrl: spoke.attestationUrl,
      apiPort: spoke.apiPort,
      attestationPort: spoke.attestationPort,
      kid: signingKey.kid,
    },
    'spoke listening',
  );
  if (processOptions.handleSignals ?? true) {
    closeOnSignals(log, () => spoke.close({ graceMs: env.SHUTDOWN_GRACE_MS }));
  }
  return spoke;
}
