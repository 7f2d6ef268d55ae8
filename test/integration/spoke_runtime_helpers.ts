// Helpers of the spoke runtime integration tests: a spoke on 127.0.0.1 port 0 with a local test hub key,
// observable test skills, connect tokens, an A2A HTTP client and a "hub" end of the link over a real ws client.
import { resolve } from 'node:path';
import { WebSocket } from 'ws';
import {
  generateSigningKeyJwk,
  importSigningKey,
  publicJwks,
  signConnectToken,
  type SigningKey,
} from '../../shared/attestation.js';
import { AppError } from '../../shared/errors.js';
import { REPO_ROOT, lockfilePath } from '../../shared/layout.js';
import { createLink, type Link, type LinkHandlers } from '../../shared/link.js';
import { createMeasurer } from '../../shared/measure.js';
import { A2A_VERSION, HUB_LINK_PATH, LINK_SUBPROTOCOL } from '../../shared/protocol.js';
import type { PeerRequest, SkillDefinition } from '../../shared/skill.js';
import { startSpoke, type RunningSpoke, type SpokeOptions } from '../../shared/spoke_runtime.js';
import { PING_SPOKE_SKILLS } from '../helpers/ping_spoke_main.js';

/** Keys made once per test file. */
export interface TestKeys {
  readonly hubKey: SigningKey;
  readonly spokeKey: SigningKey;
  /** A key the spoke does not trust. */
  readonly strangerKey: SigningKey;
}

/** Generates the hub, spoke and stranger keys. */
export async function makeKeys(): Promise<TestKeys> {
  const [hubKey, spokeKey, strangerKey] = await Promise.all(
    [0, 1, 2].map(async () => importSigningKey(await generateSigningKeyJwk())),
  );
  return {
    hubKey: hubKey as SigningKey,
    spokeKey: spokeKey as SigningKey,
    strangerKey: strangerKey as SigningKey,
  };
}

/** What the `loop` skill has seen: how many runs started and how many saw their signal fire. */
export interface LoopProbe {
  started: number;
  aborted: number;
  /** Iterations done after the signal fired (must stay 0: the skill really stops). */
  iterationsAfterAbort: number;
}

/** A skill that loops until its signal fires, counting into `probe`. */
export function loopSkill(probe: LoopProbe): SkillDefinition {
  return {
    id: 'loop',
    name: 'Loop',
    description: 'Loops until aborted.',
    tags: ['loop'],
    examples: ['loop'],
    handler: async (_input, context) => {
      probe.started += 1;
      let abortedSeen = false;
      for (;;) {
        if (context.signal.aborted) {
          if (!abortedSeen) probe.aborted += 1;
          abortedSeen = true;
          throw new AppError('CANCELED', 'loop stopped');
        }
        await new Promise((resolveTick) => setTimeout(resolveTick, 5));
        if (abortedSeen) probe.iterationsAfterAbort += 1;
      }
    },
  };
}

/** A skill that asks a peer through the hub: data `{tenant, skill, text, timeoutMs?, contextId?}`. */
export const askSkill: SkillDefinition = {
  id: 'ask',
  name: 'Ask a peer',
  description: 'Forwards a request to another spoke through the hub.',
  tags: ['peer'],
  examples: ['ask marketing'],
  handler: async (input, context) => {
    const request = input.data[0] as PeerRequest;
    const answer = await context.callPeer(request);
    return { text: `peer said: ${answer.text}`, data: { peer: answer } };
  },
};

/** A running test spoke with what the tests need to reach it. */
export interface TestSpoke {
  readonly spoke: RunningSpoke;
  readonly keys: TestKeys;
  readonly name: string;
  readonly probe: LoopProbe;
  /** A fresh connect token for this spoke (sid given or random). */
  token(sid?: string, options?: { key?: SigningKey; audience?: string; now?: Date }): Promise<string>;
}

/** Starts a spoke named `testspoke` with the ping spoke's skills plus `loop` and `ask`. */
export async function startTestSpoke(
  keys: TestKeys,
  overrides: Partial<SpokeOptions> = {},
): Promise<TestSpoke> {
  const probe: LoopProbe = { started: 0, aborted: 0, iterationsAfterAbort: 0 };
  const name = overrides.name ?? 'testspoke';
  const measurer = createMeasurer(
    {
      modelPath: null,
      codePaths: [resolve(REPO_ROOT, 'package.json')],
      lockfilePath: lockfilePath(),
      agentMaxMemoryMb: null,
    },
    { remeasureIntervalMs: 3_600_000 },
  );
  const spoke = await startSpoke({
    name,
    description: 'integration-test spoke',
    version: '0.0.1',
    skills: [...PING_SPOKE_SKILLS, loopSkill(probe), askSkill],
    host: '127.0.0.1',
    apiPort: 0,
    attestationPort: 0,
    signingKey: keys.spokeKey,
    hubJwks: publicJwks([keys.hubKey]),
    measurer,
    heartbeatIntervalMs: 200,
    ...overrides,
  });
  return {
    spoke,
    keys,
    name,
    probe,
    token: (sid = `sid-${Math.random().toString(36).slice(2)}`, options = {}) =>
      signConnectToken(options.key ?? keys.hubKey, options.audience ?? name, sid, options.now),
  };
}

/** The outcome of a WebSocket upgrade attempt: the HTTP status of a refusal, or an open socket. */
export type UpgradeOutcome = { kind: 'refused'; status: number } | { kind: 'open'; socket: WebSocket };

/** Attempts the hub link upgrade with the given headers. */
export function tryUpgrade(
  spoke: RunningSpoke,
  headers: Record<string, string>,
  options: { protocols?: string[]; origin?: string; autoPong?: boolean } = {},
): Promise<UpgradeOutcome> {
  const url = `${spoke.apiUrl.replace('http://', 'ws://')}${HUB_LINK_PATH}`;
  const socket = new WebSocket(url, options.protocols ?? [LINK_SUBPROTOCOL], {
    headers,
    ...(options.origin === undefined ? {} : { origin: options.origin }),
    perMessageDeflate: false,
    autoPong: options.autoPong ?? true,
  });
  return new Promise((resolveOutcome, rejectOutcome) => {
    socket.once('unexpected-response', (_request, response) => {
      resolveOutcome({ kind: 'refused', status: response.statusCode ?? 0 });
      response.resume();
      socket.terminate();
    });
    socket.once('open', () => resolveOutcome({ kind: 'open', socket }));
    socket.once('error', (error) => rejectOutcome(error));
  });
}

/** The hub's end of an authenticated link to the spoke. */
export interface HubEnd {
  readonly link: Link;
  readonly socket: WebSocket;
  readonly sid: string;
  readonly notifications: { method: string; params: unknown }[];
  readonly closes: { code: number; reason: string }[];
}

/** Opens the hub link as the hub would (valid token, subprotocol, no Origin). */
export async function connectHub(
  testSpoke: TestSpoke,
  handlers: Partial<LinkHandlers> = {},
  sid = `sid-${Math.random().toString(36).slice(2)}`,
): Promise<HubEnd> {
  const token = await testSpoke.token(sid);
  const outcome = await tryUpgrade(testSpoke.spoke, { Authorization: `Bearer ${token}` });
  if (outcome.kind !== 'open') throw new Error(`hub link refused with ${outcome.status}`);
  const notifications: { method: string; params: unknown }[] = [];
  const closes: { code: number; reason: string }[] = [];
  const link = createLink(
    outcome.socket,
    {
      onRequest:
        handlers.onRequest ??
        ((method) => Promise.reject(new AppError('METHOD_NOT_FOUND', `no method ${method}`))),
      onNotification: (method, params) => {
        notifications.push({ method, params });
        handlers.onNotification?.(method, params);
      },
      onClose: (code, reason) => {
        closes.push({ code, reason });
        handlers.onClose?.(code, reason);
      },
    },
    { idPrefix: 'h' },
  );
  return { link, socket: outcome.socket, sid, notifications, closes };
}

/** A JSON-RPC response read from `POST /a2a`. */
export interface RpcReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: Record<string, unknown>;
}

let nextRpcId = 1;

/** Posts one JSON-RPC request (or a raw body) to the spoke's `/a2a`. */
export async function rpc(
  spoke: RunningSpoke,
  method: string,
  params: unknown,
  options: { version?: string | null; rawBody?: string; signal?: AbortSignal; apiKey?: string } = {},
): Promise<RpcReply> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (options.apiKey !== undefined) headers.Authorization = `Bearer ${options.apiKey}`;
  const version = options.version === undefined ? A2A_VERSION : options.version;
  if (version !== null) headers['A2A-Version'] = version;
  const response = await fetch(`${spoke.apiUrl}/a2a`, {
    method: 'POST',
    headers,
    body: options.rawBody ?? JSON.stringify({ jsonrpc: '2.0', id: nextRpcId++, method, params }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** Posts a streaming request and returns the parsed SSE `data:` payloads in order. */
export async function rpcStream(
  spoke: RunningSpoke,
  method: string,
  params: unknown,
): Promise<Record<string, unknown>[]> {
  const response = await fetch(`${spoke.apiUrl}/a2a`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'A2A-Version': A2A_VERSION },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextRpcId++, method, params }),
  });
  const text = await response.text();
  if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    return [JSON.parse(text) as Record<string, unknown>];
  }
  return text
    .split('\n\n')
    .map((block) => block.trim())
    .filter((block) => block.startsWith('data: '))
    .map((block) => JSON.parse(block.slice('data: '.length)) as Record<string, unknown>);
}

/** A SendMessage params object for `text`, addressed to `skill` when given. */
export function messageParams(
  text: string,
  options: {
    skill?: string;
    messageId?: string;
    data?: unknown;
    metadata?: Record<string, unknown>;
    returnImmediately?: boolean;
  } = {},
): Record<string, unknown> {
  const parts: Record<string, unknown>[] = [{ text }];
  if (options.data !== undefined) parts.push({ data: options.data, mediaType: 'application/json' });
  const metadata = {
    ...(options.skill === undefined ? {} : { 'agenthub/skill': options.skill }),
    ...(options.metadata ?? {}),
  };
  return {
    message: {
      messageId: options.messageId ?? `m-${Math.random().toString(36).slice(2)}`,
      role: 'ROLE_USER',
      parts,
    },
    ...(Object.keys(metadata).length === 0 ? {} : { metadata }),
    ...(options.returnImmediately === true ? { configuration: { returnImmediately: true } } : {}),
  };
}
