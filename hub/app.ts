// The hub's HTTP surface (express 5) and startHub(): health and readiness, spoke status, chat (JSON or SSE
// with resume), hub tasks, A2A JSON-RPC over HTTP + SSE, the hub agent card, JWKS and metrics; wires links,
// appraisal and routing together from explicit dependencies so tests start the same hub on port 0.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { buildHubCard, type HubTenant } from '../shared/agent_card.js';
import { API_KEY_REQUIRED, apiKeyMatcher } from '../shared/api_key.js';
import {
  createAppraiser,
  publicJwks,
  type Appraiser,
  type ReferenceValues,
  type SigningKey,
  type TrustStore,
} from '../shared/attestation.js';
import { AppError, isAppError, toAppError } from '../shared/errors.js';
import { silentLogger } from '../shared/log.js';
import { CancelSource } from '../shared/cancellation.js';
import { extend } from '../shared/objects.js';
import {
  A2A_VERSION,
  describeZodError,
  LIMITS,
  META,
  parseJsonRpcObject,
  toJsonRpcError,
  type JsonRpcId,
} from '../shared/protocol.js';
import { AttestationController, type EvidenceFetcher } from './appraisal.js';
import { chooseChatRoute, type ChatCandidate, type ChatClassifier } from './chat.js';
import type { HubConfig } from './config.js';
import { LinkManager, urlHost, type HostResolver } from './links.js';
import { HubMetrics } from './metrics.js';
import { replicaStatus, ReplicaRegistry } from './registry.js';
import { describeTask, entryFailure, failureError, Router } from './routing.js';
import {
  InMemoryTaskStore,
  replyText,
  TaskEventBus,
  type CallerRef,
  type Conversation,
  type TaskEventEntry,
  type TaskStore,
} from './tasks.js';

/** Everything startHub needs, passed explicitly (hub/main.ts reads files and the environment). */
export interface HubOptions {
  readonly config: HubConfig;
  /** The hub's signing key (connect tokens, attestation results, JWKS). */
  readonly hubKey: SigningKey;
  readonly trustStore: TrustStore;
  readonly referenceValues: ReferenceValues;
  /** The API key callers present as `Authorization: Bearer`. */
  readonly apiKey: string;
  readonly logger?: Logger | undefined;
  /** Task storage; defaults to an in-memory store. */
  readonly store?: TaskStore | undefined;
  /** The appraiser; defaults to `createAppraiser({trustStore, referenceValues})`. */
  readonly appraiser?: Appraiser | undefined;
  /** Host → replica addresses; defaults to `dns.lookup(host, {all: true})`. */
  readonly resolveHost?: HostResolver | undefined;
  /** Evidence transport; defaults to HTTP POST to the replica's attestation port. */
  readonly fetchEvidence?: EvidenceFetcher | undefined;
  /** Optional classifier for ambiguous chat messages. */
  readonly classify?: ChatClassifier | undefined;
  /** Version in the hub card. */
  readonly version?: string | undefined;
}

/** A started hub. */
export interface RunningHub {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly router: Router;
  readonly registry: ReplicaRegistry;
  readonly store: TaskStore;
  readonly metrics: HubMetrics;
  readonly attestation: AttestationController;
  /** Re-resolves every spoke's host now (also done every DNS_REFRESH_MS): new addresses are dialled, gone ones dropped. */
  refreshReplicas(): Promise<void>;
  /**
   * Graceful stop: stop accepting, let in-flight requests finish within SHUTDOWN_GRACE_MS, fail the rest
   * with SPOKE_UNAVAILABLE, close the links with 1001.
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const CLIENT: CallerRef = { kind: 'client', principal: 'api' };

const ChatBodySchema = z
  .object({
    message: z.string().trim().min(1, 'message must not be empty').max(LIMITS.maxTextChars),
    contextId: z.string().min(1).max(LIMITS.maxIdChars).optional(),
    messageId: z.string().min(1).max(LIMITS.maxIdChars).optional(),
  })
  .strict();

/** Starts the hub: HTTP server, links to every configured spoke, appraisal and routing. */
export async function startHub(options: HubOptions): Promise<RunningHub> {
  const { config, hubKey, trustStore, referenceValues } = options;
  const log = options.logger ?? silentLogger();
  const registry = new ReplicaRegistry([...trustStore.spokes.keys()], config.DEFAULT_REPLICA_CAPACITY);
  const store =
    options.store ??
    new InMemoryTaskStore({ eventLimit: config.TASK_EVENT_LIMIT, taskLimit: config.TASK_LIMIT });
  const bus = new TaskEventBus();
  const metrics = new HubMetrics();
  const router = new Router({
    registry,
    store,
    bus,
    config,
    policyId: referenceValues.policyId,
    logger: log.child({ module: 'routing' }),
    metrics,
  });
  const appraiser = options.appraiser ?? createAppraiser({ trustStore, referenceValues });
  const attestation = new AttestationController({
    appraiser,
    hubKey,
    registry,
    store,
    config,
    logger: log,
    fetchEvidence: options.fetchEvidence,
  });
  const links = new LinkManager({
    trustStore,
    hubKey,
    registry,
    config,
    logger: log.child({ module: 'links' }),
    handleRequest: (replica) => router.linkRequestHandler(replica),
    onSessionOpen: (replica) => void attestation.attest(replica),
    resolveHost: options.resolveHost,
  });
  registry.onChange((replica) => {
    if (registry.get(replica.key) === undefined) metrics.removeReplica(replica.spoke, replica.key);
    else metrics.setAttestation(replica.spoke, replica.key, replicaStatus(replica));
  });

  const app = express();
  // POST /a2a (the routed hot path) is served without express: its own body reader and JSON-RPC errors;
  // everything else, including other methods on /a2a, goes through the express app.
  const server = createServer((req, res) => {
    if (req.method === 'POST' && (req.url === A2A_PATH || req.url?.startsWith(`${A2A_PATH}?`) === true)) {
      void serveA2a(req, res, context);
      return;
    }
    app(req, res);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxHeadersCount = 100;
  server.keepAliveTimeout = 5_000;
  let publicUrl = config.HUB_PUBLIC_URL ?? '';
  const context: RouteContext = {
    config,
    router,
    registry,
    store,
    metrics,
    hubKey,
    apiKeyMatches: apiKeyMatcher(options.apiKey),
    log,
    classify: options.classify,
    version: options.version ?? '0.1.0',
    publicUrl: () => publicUrl,
  };
  mountRoutes(app, context);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.HUB_PORT, config.HUB_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${urlHost(config.HUB_HOST)}:${port}`;
  if (publicUrl === '') publicUrl = url;
  attestation.start();
  await links.start();
  log.info({ url, spokes: registry.spokeNames(), policyId: referenceValues.policyId }, 'hub listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const graceEnds = Date.now() + config.SHUTDOWN_GRACE_MS;
      while (router.pendingCount() > 0 && Date.now() < graceEnds) await sleep(50);
      await router.close(
        new AppError('SPOKE_UNAVAILABLE', 'the hub is shutting down', { retryAfterSeconds: 1 }),
      );
      await attestation.stop();
      await links.close();
      await sleep(20);
      server.closeAllConnections();
      await closed;
      log.info('hub stopped');
    })();
    return closing;
  };
  return {
    url,
    port,
    server,
    router,
    registry,
    store,
    metrics,
    attestation,
    refreshReplicas: () => links.refresh(),
    close,
    [Symbol.asyncDispose]: close,
  };
}

interface RouteContext {
  readonly config: HubConfig;
  readonly router: Router;
  readonly registry: ReplicaRegistry;
  readonly store: TaskStore;
  readonly metrics: HubMetrics;
  readonly hubKey: SigningKey;
  /** Constant-time check of an `Authorization` header against the API key. */
  apiKeyMatches(header: string | undefined): boolean;
  readonly log: Logger;
  readonly classify: ChatClassifier | undefined;
  readonly version: string;
  publicUrl(): string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function mountRoutes(app: express.Express, context: RouteContext): void {
  const { router, registry, store, metrics, config } = context;
  app.disable('x-powered-by');
  app.set('etag', false);
  const json = express.json({
    limit: LIMITS.maxHttpBodyBytes,
    type: ['application/json', 'application/*+json'],
  });

  const requireApiKey = (req: Request, _res: Response, next: NextFunction): void => {
    if (!context.apiKeyMatches(req.headers.authorization)) {
      next(new AppError('UNAUTHORIZED', API_KEY_REQUIRED));
      return;
    }
    next();
  };

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

  app.get('/readyz', (_req, res) => {
    const spokes = registry.spokeNames().map((spoke) => ({
      spoke,
      routable: router.routableReplicas(spoke).length,
      replicas: registry.replicasOf(spoke).map((replica) => {
        const verdict = router.verdict(replica);
        return {
          replica: replica.key,
          status: replicaStatus(replica),
          reason: verdict.routable ? null : verdict.reason,
        };
      }),
    }));
    const ready = spokes.some((spoke) => spoke.routable > 0);
    res.status(ready ? 200 : 503).json({
      ready,
      ...(ready ? {} : { reason: 'no spoke is routable (attested, connected and ready)' }),
      spokes,
    });
  });

  app.get('/v1/spokes', requireApiKey, (_req, res) => {
    const rows = registry.spokeNames().flatMap((spoke): Record<string, unknown>[] => {
      const replicas = registry.replicasOf(spoke);
      if (replicas.length === 0) {
        return [
          {
            spoke,
            replica: null,
            address: null,
            status: 'disconnected',
            routable: false,
            reasons: ['address.unresolved'],
            attestedAt: null,
            inflight: 0,
            capacity: 0,
          },
        ];
      }
      return replicas.map((replica) => {
        const verdict = router.verdict(replica);
        const status = replicaStatus(replica);
        const attestation = replica.attestation;
        const current = attestation !== undefined && attestation.sid === replica.session?.sid;
        const reasons: string[] = current ? [...attestation.reasons] : [];
        const gateReason = verdict.routable ? undefined : `gate.${verdict.reason}`;
        if (gateReason !== undefined && !reasons.includes(gateReason)) reasons.push(gateReason);
        return {
          spoke,
          replica: replica.key,
          address: `${replica.address}:${replica.apiPort}`,
          status,
          routable: verdict.routable,
          reasons,
          attestedAt: current ? new Date(attestation.attestedAt).toISOString() : null,
          policyId: current ? attestation.policyId : null,
          sid: replica.session?.sid ?? null,
          inflight: replica.outstanding,
          spokeInflight: replica.load.inflight,
          capacity: replica.load.capacity,
          ready: replica.load.ready,
        };
      });
    });
    res.json({ spokes: rows });
  });

  app.post('/v1/chat', requireApiKey, json, async (req, res) => {
    checkOrigin(req, res, config.CHAT_ALLOWED_ORIGINS);
    const body = parseBody(ChatBodySchema, req.body);
    const candidates: ChatCandidate[] = registry.spokeNames().map((spoke) => {
      const card = registry.card(spoke);
      return { spoke, description: card?.description ?? '', skills: card?.skills ?? [] };
    });
    const contextId = body.contextId ?? randomUUID();
    const conversation: Conversation = (await store.getConversation(contextId)) ?? {
      contextId,
      principal: 'api',
      spoke: null,
      turns: [],
    };
    const conversationSkill = async (): Promise<string | null> => {
      const lastTaskId = conversation.turns.findLast((turn) => turn.taskId !== null)?.taskId;
      const lastTask = lastTaskId == null ? undefined : await store.getTask(lastTaskId);
      return lastTask?.target === conversation.spoke ? lastTask.skill : null;
    };
    // The hub's own question back is the last turn (an agent turn with no task): its question is pending.
    const [asked, answered] = conversation.turns.slice(-2);
    const pendingQuestion =
      answered?.role === 'agent' && answered.taskId === null && asked?.role === 'user'
        ? asked.text
        : undefined;
    const clientGone = abortOnClose(res);
    const route = await chooseChatRoute({
      message: body.message,
      candidates,
      conversationSpoke: conversation.spoke,
      conversationSkill,
      pendingQuestion,
      classify: context.classify,
      signal: clientGone.signal,
    });
    const now = new Date().toISOString();
    const wantsStream = acceptsEventStream(req);
    if (route.kind !== 'spoke') {
      // A question back: which agent, or which of the agent's skills (the conversation then stays with it).
      const spoke = route.kind === 'which-skill' ? route.spoke : null;
      if (spoke !== null) conversation.spoke = spoke;
      conversation.turns.push({ role: 'user', text: body.message, spoke, taskId: null, at: now });
      conversation.turns.push({ role: 'agent', text: route.question, spoke: null, taskId: null, at: now });
      await store.saveConversation(conversation);
      const answer = {
        reply: route.question,
        spoke,
        taskId: null,
        contextId,
        clarification: true,
        ...(route.kind === 'which-skill'
          ? { skills: route.skills }
          : { candidates: route.candidates.map((candidate) => candidate.spoke) }),
      };
      if (wantsStream) {
        openEventStream(res);
        writeEvent(res, { event: 'done', data: answer });
        res.end();
      } else {
        res.json(answer);
      }
      return;
    }
    const traceparent = req.headers.traceparent;
    const { record } = await router.submit({
      caller: CLIENT,
      tenant: route.spoke,
      skill: route.skill ?? undefined,
      message: {
        messageId: body.messageId ?? randomUUID(),
        role: 'ROLE_USER',
        contextId,
        parts: [{ text: route.text.trim() === '' ? body.message : route.text }],
      },
      metadata: typeof traceparent === 'string' ? { [META.traceparent]: traceparent } : undefined,
    });
    if (conversation.turns.at(-1)?.taskId !== record.id) {
      conversation.spoke = route.spoke;
      conversation.turns.push({
        role: 'user',
        text: body.message,
        spoke: route.spoke,
        taskId: record.id,
        at: now,
      });
      await store.saveConversation(conversation);
    }
    const recordReply = async (text: string): Promise<void> => {
      if (conversation.turns.some((turn) => turn.role === 'agent' && turn.taskId === record.id)) return;
      conversation.turns.push({
        role: 'agent',
        text,
        spoke: route.spoke,
        taskId: record.id,
        at: new Date().toISOString(),
      });
      await store.saveConversation(conversation);
    };
    if (wantsStream) {
      const afterSeq = resumePoint(req);
      res.setHeader('Content-Location', `/v1/tasks/${record.id}/events`);
      openEventStream(res);
      writeEvent(res, { event: 'task', data: { taskId: record.id, contextId, spoke: route.spoke } });
      await streamChat(res, router.follow(record.id, afterSeq, clientGone));
      const done = await store.getTask(record.id);
      if (done !== undefined && !clientGone.aborted) {
        if (done.failure !== null) {
          writeEvent(res, { event: 'error', data: failureError(done.failure).toJSON() });
        } else {
          const reply = replyText(done.task);
          await recordReply(reply);
          writeEvent(res, {
            event: 'done',
            data: { reply, spoke: route.spoke, taskId: record.id, contextId, state: done.task.status.state },
          });
        }
      }
      res.end();
      return;
    }
    const done = await router.settled(record.id, clientGone);
    if (done.failure !== null) throw failureError(done.failure);
    const reply = replyText(done.task);
    await recordReply(reply);
    res.json({ reply, spoke: route.spoke, taskId: record.id, contextId, state: done.task.status.state });
  });

  app.get('/v1/tasks/:id', requireApiKey, async (req, res) => {
    const id = String(req.params.id);
    const record = await store.getTask(id);
    if (record === undefined)
      throw new AppError('TASK_NOT_FOUND', `task ${id} not found`, { details: { taskId: id } });
    const children = (await Promise.all(record.childTaskIds.map((childId) => store.getTask(childId)))).filter(
      (child) => child !== undefined,
    );
    res.json(describeTask(record, children));
  });

  app.get('/v1/tasks/:id/events', requireApiKey, async (req, res) => {
    const id = String(req.params.id);
    const record = await store.getTask(id);
    if (record === undefined)
      throw new AppError('TASK_NOT_FOUND', `task ${id} not found`, { details: { taskId: id } });
    const clientGone = abortOnClose(res);
    openEventStream(res);
    await streamChat(res, router.follow(id, resumePoint(req), clientGone));
    res.end();
  });

  app.get('/.well-known/agent-card.json', (_req, res) => {
    const tenants: HubTenant[] = registry.spokeNames().map((spoke) => {
      const card = registry.card(spoke);
      return { name: spoke, description: card?.description ?? `${spoke} agent`, skills: card?.skills ?? [] };
    });
    res.setHeader('Cache-Control', 'max-age=60');
    res.json(buildHubCard({ url: context.publicUrl(), version: context.version, tenants }));
  });

  app.get('/.well-known/jwks.json', (_req, res) => {
    res.setHeader('Cache-Control', 'max-age=600');
    res.json(publicJwks([context.hubKey]));
  });

  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(await metrics.text());
  });

  const knownPaths = [
    '/healthz',
    '/readyz',
    '/v1/spokes',
    '/v1/chat',
    '/v1/tasks/:id',
    '/v1/tasks/:id/events',
    '/a2a',
    '/.well-known/agent-card.json',
    '/.well-known/jwks.json',
    '/metrics',
  ];
  for (const path of knownPaths) {
    app.all(path, (req) => {
      throw new AppError('METHOD_NOT_FOUND', `${req.method} is not supported on ${req.path}`, {
        details: { method: req.method, path: req.path },
      });
    });
  }
  app.use((req) => {
    throw new AppError('NOT_FOUND', `no route ${req.method} ${req.path}`, { details: { path: req.path } });
  });

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const appError = httpError(error);
    if (!isAppError(error) && appError.code === 'INTERNAL') {
      context.log.error({ err: error, path: req.path }, 'request failed');
    }
    if (res.headersSent) {
      if (!res.writableEnded) {
        writeEvent(res, { event: 'error', data: appError.toJSON() });
        res.end();
      }
      return;
    }
    if (req.path === '/a2a') {
      sendJsonRpcError(res, null, appError);
      return;
    }
    sendError(res, appError);
  });
}

const A2A_PATH = '/a2a';

/** Serves POST /a2a: API key, A2A-Version, body, JSON-RPC dispatch to the router; JSON or SSE answers. */
async function serveA2a(req: IncomingMessage, res: ServerResponse, context: RouteContext): Promise<void> {
  let requestId: JsonRpcId | null = null;
  try {
    if (!context.apiKeyMatches(req.headers.authorization)) {
      throw new AppError('UNAUTHORIZED', API_KEY_REQUIRED);
    }
    const version = req.headers['a2a-version'];
    if (typeof version === 'string' && version !== '' && !/^1(\.\d+)?$/.test(version)) {
      throw new AppError(
        'UNSUPPORTED_OPERATION',
        `A2A version ${version} is not supported (use ${A2A_VERSION})`,
        {
          details: { supported: [A2A_VERSION] },
        },
      );
    }
    const frame = parseJsonRpcObject(await readJsonBody(req));
    if (frame.kind !== 'request') {
      throw new AppError('INVALID_REQUEST', 'the body must be a JSON-RPC 2.0 request with an id');
    }
    requestId = frame.id;
    const clientGone = abortOnClose(res);
    const params = withTraceparentHeader(frame.method, withLastEventId(frame.method, frame.params, req), req);
    const outcome = await context.router.a2a(CLIENT, frame.method, params, clientGone);
    if (outcome.kind === 'result') {
      sendJson(res, 200, { jsonrpc: '2.0', id: requestId, result: outcome.result }, A2A_VERSION_HEADER);
      return;
    }
    res.setHeader('A2A-Version', A2A_VERSION);
    openEventStream(res);
    for await (const entry of outcome.entries) {
      writeEvent(res, { id: entry.seq, data: { jsonrpc: '2.0', id: requestId, result: entry.event } });
      const failure = entryFailure(entry);
      if (failure !== undefined) {
        writeEvent(res, { data: { jsonrpc: '2.0', id: requestId, error: toJsonRpcError(failure) } });
      }
    }
    res.end();
  } catch (error) {
    const appError = httpError(error);
    if (appError.code === 'INTERNAL' && !isAppError(error))
      context.log.error({ err: error }, 'A2A request failed');
    if (res.headersSent) {
      if (!res.writableEnded) {
        writeEvent(res, { data: { jsonrpc: '2.0', id: requestId, error: toJsonRpcError(appError) } });
        res.end();
      }
      return;
    }
    res.setHeader('A2A-Version', A2A_VERSION);
    sendJsonRpcError(res, requestId, appError);
  }
}

/** Reads a JSON request body of at most LIMITS.maxHttpBodyBytes (identity encoding, UTF-8). */
function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    req.resume();
    return Promise.reject(new AppError('BAD_REQUEST', 'Content-Type must be application/json'));
  }
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') {
    req.resume();
    return Promise.reject(new AppError('BAD_REQUEST', `unsupported Content-Encoding ${encoding}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number(req.headers['content-length'] ?? 0) > LIMITS.maxHttpBodyBytes;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > LIMITS.maxHttpBodyBytes) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('error', (error) =>
      reject(new AppError('CANCELED', 'the client aborted the request', { cause: error })),
    );
    req.on('end', () => {
      if (tooLarge) {
        reject(
          new AppError('PAYLOAD_TOO_LARGE', `request body larger than ${LIMITS.maxHttpBodyBytes} bytes`, {
            details: { limitBytes: LIMITS.maxHttpBodyBytes },
          }),
        );
        return;
      }
      try {
        const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
        resolve(JSON.parse(body.toString('utf8')) as unknown);
      } catch (error) {
        reject(new AppError('PARSE_ERROR', 'request body is not valid JSON', { cause: error }));
      }
    });
  });
}

/** The A2A-Version response header, as `sendJson`'s extra headers (name, value pairs). */
const A2A_VERSION_HEADER: readonly string[] = ['A2A-Version', A2A_VERSION];

/** Sends `body` as JSON with `status`; `extraHeaders` are name, value pairs, added to any set before. */
function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  extraHeaders: readonly string[] = [],
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, [
    'Content-Type',
    'application/json; charset=utf-8',
    'Content-Length',
    String(Buffer.byteLength(text)),
    ...extraHeaders,
  ]);
  res.end(text);
}

/** Maps body-parser and other errors to AppErrors. */
function httpError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const type = (error as { type?: unknown } | null)?.type;
  if (type === 'entity.too.large') {
    return new AppError('PAYLOAD_TOO_LARGE', `request body larger than ${LIMITS.maxHttpBodyBytes} bytes`, {
      details: { limitBytes: LIMITS.maxHttpBodyBytes },
    });
  }
  if (type === 'entity.parse.failed') return new AppError('PARSE_ERROR', 'request body is not valid JSON');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new AppError('BAD_REQUEST', 'unsupported body encoding or charset');
  }
  if (type === 'request.aborted') return new AppError('CANCELED', 'the client aborted the request');
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError('BAD_REQUEST', (error as Error).message);
  }
  return toAppError(error);
}

/** An error response: the code's HTTP status, `Retry-After` and `WWW-Authenticate` when they apply, and `body`. */
function sendErrorBody(res: ServerResponse, error: AppError, body: unknown): void {
  if (error.retryAfterSeconds !== undefined)
    res.setHeader('Retry-After', String(Math.ceil(error.retryAfterSeconds)));
  if (error.code === 'UNAUTHORIZED') res.setHeader('WWW-Authenticate', 'Bearer');
  sendJson(res, error.mapping.http, body);
}

function sendError(res: ServerResponse, error: AppError): void {
  sendErrorBody(res, error, error.toJSON());
}

function sendJsonRpcError(res: ServerResponse, id: JsonRpcId | null, error: AppError): void {
  sendErrorBody(res, error, { jsonrpc: '2.0', id, error: toJsonRpcError(error) });
}

function parseBody<S extends z.ZodTypeAny>(schema: S, body: unknown): z.infer<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AppError('BAD_REQUEST', 'the body must be a JSON object (Content-Type: application/json)');
  }
  const result = schema.safeParse(body);
  if (!result.success) {
    const fields = result.error.issues.map((issue) => issue.path.join('.') || '(body)');
    throw new AppError('BAD_REQUEST', `invalid body: ${describeZodError(result.error)}`, {
      details: { fields, field: fields[0] },
    });
  }
  return result.data as z.infer<S>;
}

function checkOrigin(req: Request, res: Response, allowed: readonly string[]): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  if (!allowed.includes(origin)) {
    throw new AppError('FORBIDDEN', `origin ${origin} may not call the chat endpoint`, {
      details: { origin },
    });
  }
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Vary', 'Origin');
}

/** Fires when the client goes away before the response is finished. */
function abortOnClose(res: ServerResponse): CancelSource {
  const cancel = new CancelSource();
  res.once('close', () => {
    if (!res.writableFinished) cancel.abort();
  });
  return cancel;
}

function acceptsEventStream(req: Request): boolean {
  return (req.headers.accept ?? '').includes('text/event-stream');
}

/** Resume point of an SSE request: `Last-Event-ID` header, else `?afterSeq=`, else 0. */
function resumePoint(req: Request): number {
  const header = req.headers['last-event-id'];
  const query = req.query.afterSeq;
  const raw =
    typeof header === 'string' && header !== '' ? header : typeof query === 'string' ? query : undefined;
  if (raw === undefined) return 0;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new AppError('BAD_REQUEST', 'Last-Event-ID / afterSeq must be a non-negative integer', {
      details: { field: typeof header === 'string' && header !== '' ? 'Last-Event-ID' : 'afterSeq' },
    });
  }
  return value;
}

/** SubscribeToTask over HTTP honours Last-Event-ID as `metadata[afterSeq]`. */
function withLastEventId(method: string, params: unknown, req: IncomingMessage): unknown {
  if (
    method !== 'SubscribeToTask' ||
    typeof params !== 'object' ||
    params === null ||
    Array.isArray(params)
  ) {
    return params;
  }
  const header = req.headers['last-event-id'];
  if (typeof header !== 'string' || header === '') return params;
  const record = params as { metadata?: Record<string, unknown> };
  if (record.metadata?.[META.afterSeq] !== undefined) return params;
  return extend(record, { metadata: extend(record.metadata, { [META.afterSeq]: header }) });
}

/** W3C trace context: version-traceid-parentid-flags, lower-case hex. */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * A `traceparent` HTTP header joins a sent message to the caller's trace (as on /v1/chat), unless the
 * request's own metadata already names one. A malformed header is ignored: the hub starts a new trace.
 */
function withTraceparentHeader(method: string, params: unknown, req: IncomingMessage): unknown {
  if (
    (method !== 'SendMessage' && method !== 'SendStreamingMessage') ||
    typeof params !== 'object' ||
    params === null ||
    Array.isArray(params)
  ) {
    return params;
  }
  const header = req.headers.traceparent;
  if (typeof header !== 'string' || !TRACEPARENT.test(header)) return params;
  const record = params as { metadata?: Record<string, unknown> };
  if (record.metadata?.[META.traceparent] !== undefined) return params;
  return extend(record, { metadata: extend(record.metadata, { [META.traceparent]: header }) });
}

function openEventStream(res: ServerResponse): void {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
}

function writeEvent(res: ServerResponse, event: { id?: number; event?: string; data: unknown }): void {
  if (res.writableEnded || res.destroyed) return;
  let text = '';
  if (event.id !== undefined) text += `id: ${event.id}\n`;
  if (event.event !== undefined) text += `event: ${event.event}\n`;
  text += `data: ${JSON.stringify(event.data)}\n\n`;
  res.write(text);
}

async function streamChat(res: ServerResponse, entries: AsyncIterable<TaskEventEntry>): Promise<void> {
  for await (const entry of entries) {
    const kind = Object.keys(entry.event)[0] ?? 'event';
    writeEvent(res, { id: entry.seq, event: kind, data: entry.event });
  }
}
