// Test doubles for hub integration tests: an in-process fake spoke (HTTP card + evidence endpoint and the
// hub link WebSocket on one loopback port, with scriptable A2A handlers) and a fake appraiser whose verdict
// each test sets; plus startTestHub(), the real hub on port 0 wired to them.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { buildSpokeCard, type CardSkill } from '../../shared/agent_card.js';
import {
  generateSigningKeyJwk,
  importSigningKey,
  type AppraisalResult,
  type Appraiser,
  type ReferenceValues,
  type TrustStore,
} from '../../shared/attestation.js';
import { createLink, type Link, type LinkRequestContext } from '../../shared/link.js';
import { CONTROL_METHODS, HUB_LINK_PATH } from '../../shared/protocol.js';
import { startHub, type HubOptions, type RunningHub } from '../../hub/app.js';
import { hubConfigWith } from '../../hub/config.js';

/** A handler of one A2A request the hub sends to the fake spoke. */
export type FakeHandler = (
  method: string,
  params: Record<string, unknown>,
  context: LinkRequestContext,
) => Promise<unknown> | AsyncIterable<unknown>;

/** A fake spoke replica listening on `host:port`. */
export interface FakeSpoke {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Every request the hub sent, in order. */
  readonly requests: { method: string; params: Record<string, unknown> }[];
  /** The live link (undefined until the hub connects). */
  link: Link | undefined;
  socket: WebSocket | undefined;
  /** Replaces how requests are answered. */
  handler: FakeHandler;
  /** Attestation results the hub sent. */
  readonly attestationResults: unknown[];
  /** Connections the hub opened so far. */
  connections: number;
  /** Sends a heartbeat declaring capacity. */
  heartbeat(capacity: number, inflight?: number, ready?: boolean): void;
  /** Sends an A2A request up the link to the hub (a spoke asking another spoke). */
  connected(): Promise<Link>;
  close(): Promise<void>;
}

export const FAKE_SKILLS: readonly CardSkill[] = [
  {
    id: 'campaign-roi-analysis',
    name: 'Campaign ROI analysis',
    description: 'Analyses marketing campaign performance: spend, revenue, ROI and ROAS per channel.',
    tags: ['marketing', 'campaign', 'roi'],
    examples: ['analyse Q4 campaign performance for ROI'],
  },
];

/** A completed answer: the task, a text artifact, then COMPLETED. */
export async function* completeWith(params: Record<string, unknown>, text: string): AsyncGenerator<unknown> {
  const message = params.message as { contextId?: string };
  const taskId = randomUUID();
  const contextId = message.contextId ?? randomUUID();
  yield { task: { id: taskId, contextId, status: { state: 'TASK_STATE_WORKING' } } };
  yield {
    artifactUpdate: { taskId, contextId, artifact: { artifactId: 'a1', parts: [{ text }] }, lastChunk: true },
  };
  yield { statusUpdate: { taskId, contextId, status: { state: 'TASK_STATE_COMPLETED' } } };
}

/** The default handler: SendStreamingMessage answers `echo: <text>`; CancelTask answers canceled. */
export const echoHandler: FakeHandler = (method, params) => {
  if (method === 'SendStreamingMessage') {
    const message = params.message as { parts: { text?: string }[] };
    return completeWith(params, `echo: ${message.parts.map((part) => part.text ?? '').join('')}`);
  }
  if (method === 'CancelTask') {
    return Promise.resolve({ id: params.id, contextId: 'c', status: { state: 'TASK_STATE_CANCELED' } });
  }
  return Promise.reject(new Error(`unexpected ${method}`));
};

/** Starts a fake spoke on `host` (port 0 unless given). */
export async function startFakeSpoke(
  name: string,
  options: { host?: string; port?: number; autoPong?: boolean; skills?: readonly CardSkill[] } = {},
): Promise<FakeSpoke> {
  const host = options.host ?? '127.0.0.1';
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/.well-known/agent-card.json') {
      const card = buildSpokeCard({
        name,
        description: `${name} test spoke`,
        version: '0.0.1',
        url: `http://${host}:${(server.address() as AddressInfo).port}`,
        skills: options.skills ?? FAKE_SKILLS,
        streaming: true,
        capacity: 4,
      });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(card));
      return;
    }
    if (req.method === 'POST' && req.url === '/v1/evidence') {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/eat+jwt');
        res.end('fake-evidence');
      });
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  const wss = new WebSocketServer({ noServer: true, autoPong: options.autoPong ?? true });
  const waiting: ((link: Link) => void)[] = [];
  const fake: FakeSpoke = {
    name,
    host,
    port: 0,
    requests: [],
    link: undefined,
    socket: undefined,
    handler: echoHandler,
    attestationResults: [],
    connections: 0,
    heartbeat(capacity, inflight = 0, ready = true) {
      fake.link?.notify(CONTROL_METHODS.heartbeat, { capacity, inflight, ready });
    },
    connected() {
      if (fake.link !== undefined && !fake.link.closed) return Promise.resolve(fake.link);
      return new Promise((resolve) => waiting.push(resolve));
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
  server.on('upgrade', (req, socket, head) => {
    if (req.url !== HUB_LINK_PATH || req.headers.authorization?.startsWith('Bearer ') !== true) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      fake.connections += 1;
      fake.socket = ws;
      fake.link = createLink(ws, {
        onRequest: (method, params, context) => {
          const record = (params ?? {}) as Record<string, unknown>;
          fake.requests.push({ method, params: record });
          return fake.handler(method, record, context);
        },
        onNotification: (method, params) => {
          if (method === CONTROL_METHODS.attestationResult) fake.attestationResults.push(params);
        },
      });
      for (const resolve of waiting.splice(0)) resolve(fake.link);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  (fake as { port: number }).port = (server.address() as AddressInfo).port;
  return fake;
}

/** An appraiser whose verdict per spoke the test sets (the real pipeline is covered by e2e tests). */
export class FakeAppraiser implements Appraiser {
  readonly policyId = 'a'.repeat(64);
  readonly verdicts = new Map<string, { status: 'affirming' | 'contraindicated'; reasons: string[] }>();
  appraisals = 0;

  issueNonce(): string {
    return randomBytes(32).toString('base64url');
  }

  async appraise(spokeName: string): Promise<AppraisalResult> {
    this.appraisals += 1;
    const verdict = this.verdicts.get(spokeName) ?? { status: 'affirming', reasons: [] };
    return {
      status: verdict.status,
      reasons: verdict.reasons,
      kid: randomBytes(32).toString('base64url'),
      jti: randomBytes(16).toString('base64url'),
      appraisedAt: new Date(),
      policyId: this.policyId,
    };
  }

  outstandingNonces(): number {
    return 0;
  }
}

export const TEST_API_KEY = 'test-api-key-0123456789abcdef';

/** The real hub on 127.0.0.1 port 0, dialling the given fake spokes (one trust-store entry per spoke name). */
export async function startTestHub(
  spokes: readonly { name: string; host?: string; port: number; hosts?: readonly string[] }[],
  env: Record<string, string> = {},
  extra: Partial<HubOptions> = {},
): Promise<{ hub: RunningHub; appraiser: FakeAppraiser; auth: Record<string, string> }> {
  const hubKey = await importSigningKey(await generateSigningKeyJwk());
  const trustStore: TrustStore = {
    spokes: new Map(
      spokes.map((spoke) => [
        spoke.name,
        {
          name: spoke.name,
          jwks: { keys: [] },
          host: spoke.host ?? `${spoke.name}.test`,
          apiPort: spoke.port,
          attestationPort: spoke.port,
        },
      ]),
    ),
  };
  const hostsByName = new Map(
    spokes.map((spoke) => [spoke.host ?? `${spoke.name}.test`, spoke.hosts ?? ['127.0.0.1']]),
  );
  const appraiser = new FakeAppraiser();
  const referenceValues: ReferenceValues = { policyId: appraiser.policyId, spokes: new Map() };
  const config = hubConfigWith({
    HUB_PORT: '0',
    PING_INTERVAL_MS: '1000',
    RECONNECT_MIN_MS: '20',
    RECONNECT_MAX_MS: '200',
    SHUTDOWN_GRACE_MS: '200',
    ...env,
  });
  const hub = await startHub({
    config,
    hubKey,
    trustStore,
    referenceValues,
    apiKey: TEST_API_KEY,
    appraiser,
    resolveHost: async (host) => [...(hostsByName.get(host) ?? [host])],
    ...extra,
  });
  return { hub, appraiser, auth: { authorization: `Bearer ${TEST_API_KEY}` } };
}

/** Polls `check` every 20 ms until it returns true (bounded by the test timeout). */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  limitMs = 15_000,
): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until every replica of `spoke` at the hub is routable. */
export async function untilRoutable(hub: RunningHub, spoke: string, replicas = 1): Promise<void> {
  await until(() => hub.router.routableReplicas(spoke).length >= replicas, `${spoke} routable`);
}

/** A JSON-RPC call to the hub's /a2a. */
export async function a2a(
  hub: RunningHub,
  auth: Record<string, string>,
  method: string,
  params: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${hub.url}/a2a`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...auth, ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: randomUUID(), method, params }),
  });
}

/** A user message for A2A params. */
export function userMessage(text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...extra };
}

/** Parses an SSE body into events (id, event, data as JSON). */
export function parseSse(
  text: string,
): { id: number | undefined; event: string | undefined; data: unknown }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      let id: number | undefined;
      let event: string | undefined;
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) id = Number(line.slice(4));
        else if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      return { id, event, data: JSON.parse(data) as unknown };
    });
}
