// Benchmark of hub routing: the hub (hub/main.ts) and an echo spoke (test/helpers/ping_spoke_main.ts) as separate
// processes on loopback; 256 B and 10 KB A2A SendMessage requests through the hub and, in the same run, directly
// to the spoke (the baseline). Reports hub CPU µs per routed message (from the hub's own /metrics CPU counter),
// for HTTP /a2a callers and for a spoke calling another spoke over its attested link, hub-added p50/p99 at a
// fixed open-loop rate of 500 req/s, closed-loop throughput, lost and duplicated answers; and, as the floor under
// both CPU figures, the CPU of a bare relay (bench/relay_main.mjs) answering the same requests over HTTP and over
// a WebSocket. CPU figures are medians of rounds alternating with the relay's, on a hub that has run a while:
// for HTTP, once its in-memory task store has filled and turned over (the rounds while it settles are reported
// too); the first round of a freshly started hub is reported on its own. The hub runs compiled, as docker/hub.Dockerfile runs it (`npm run build`, done here first, then bare node;
// under tsx it costs about a fifth more CPU per message: esbuild's keepNames wraps every closure it creates), with
// the in-memory task store; a last phase restarts it on the SQL task store with PostgreSQL
// (AGENTHUB_TEST_POSTGRES_URL, as docker/compose.yaml deploys it) and measures the spoke → hub → spoke path again.
// Run: npx tsx bench/hub_routing.ts (BENCH_QUICK=1 for a smoke run). The last line is one JSON object.
import { spawn, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { importSigningKey, type JWK } from '../shared/attestation.js';
import { enrolLocal } from '../shared/enrolment.js';
import { createMeasurer, type MeasurementSpec } from '../shared/measure.js';
import type { SkillDefinition } from '../shared/skill.js';
import { startSpoke, type RunningSpoke } from '../shared/spoke_runtime.js';
import { REPO_ROOT, lockfilePath } from '../shared/layout.js';
import { META } from '../shared/protocol.js';
import { pingSpokeCodePaths } from '../test/helpers/ping_spoke_main.js';
import {
  createScratchDatabase,
  postgresUnreachableReason,
  TEST_POSTGRES_URL,
  type ScratchDatabase,
} from '../test/helpers/postgres.js';

const quick = process.env.BENCH_QUICK === '1';
const closedLoopCount = quick ? 600 : 4_000;
const closedLoopCount10k = quick ? 300 : 2_000;
const concurrency = 16;
const openLoopRate = 500;
const openLoopSeconds = quick ? 2 : 8;
const warmupCount = quick ? 200 : 1_000;
/**
 * Alternating rounds of the spoke → hub → spoke path and the bare relay: medians are reported, and minimums
 * (the rounds least disturbed by other load on the box).
 */
const linkRounds = quick ? 1 : 9;
/**
 * Alternating rounds of HTTP /a2a through the hub and through the bare relay's HTTP entry, after a first round
 * and `httpSettlingRounds` more. The first round and the next two fill the in-memory store's 10,000 tasks; the
 * hub keeps getting cheaper per message for about the next 10,000 (measured: from ~100 µs to a plateau of
 * 62–70 µs over 24 rounds on the AMD EPYC box), while the store turns over once. The settling rounds are
 * measured and reported, not counted in the median.
 */
const httpRounds = quick ? 1 : 7;
const httpSettlingRounds = quick ? 0 : 5;
/** Rounds of the spoke → hub → spoke path with the hub on PostgreSQL (its writes and lookups batched per turn). */
const postgresRounds = quick ? 1 : 5;
const postgresCount = quick ? 300 : 1_500;
/** Hard wall-clock bound of the whole run, ms. */
const runLimitMs = quick ? 120_000 : 480_000;

const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const children: ChildProcess[] = [];
let scratch: ScratchDatabase | undefined;
const spokesToClose: RunningSpoke[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** Starts `script` in its own node process: TypeScript through tsx, JavaScript (compiled, .mjs) as it is. */
function startProcess(
  script: string,
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
): ChildProcess {
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...nodeArgs, ...loader, script], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

/** POSTs JSON over a keep-alive connection; resolves with status and body text. */
function post(
  url: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Target {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly tenant: string | undefined;
}

interface Tally {
  sent: number;
  ok: number;
  lost: number;
  duplicated: number;
  readonly taskIds: Set<string>;
}

/** Adds the report of `count` requests (the loadgen spoke's, or the relay's over its WebSocket) to `tally`. */
function countAnswers(
  tally: Tally,
  count: number,
  report: { ok: number; lost: number; duplicated: number },
): void {
  tally.sent += count;
  tally.ok += report.ok;
  tally.lost += report.lost;
  tally.duplicated += report.duplicated;
}

function newTally(): Tally {
  return { sent: 0, ok: 0, lost: 0, duplicated: 0, taskIds: new Set() };
}

let lostReports = 0;
/** Writes the first few lost answers to stderr (why a run lost answers). */
function reportLost(why: string): void {
  lostReports += 1;
  if (lostReports <= 3) process.stderr.write(`lost answer: ${why}\n`);
}

/** One echo request; checks the echoed text, counts lost (no correct answer) and duplicated (task id reused). */
async function echo(target: Target, payload: string, tally: Tally): Promise<number> {
  const text = `${randomUUID()} ${payload}`;
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'SendMessage',
    params: {
      ...(target.tenant === undefined ? {} : { tenant: target.tenant }),
      message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }] },
      metadata: { [META.skill]: 'echo' },
    },
  });
  tally.sent += 1;
  const started = process.hrtime.bigint();
  try {
    const response = await post(target.url, body, target.headers);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    const parsed = JSON.parse(response.text) as {
      result?: { task?: { id: string; artifacts?: { parts: { text?: string }[] }[] } };
    };
    const task = parsed.result?.task;
    if (response.status !== 200 || task?.artifacts?.[0]?.parts[0]?.text !== text) {
      tally.lost += 1;
      reportLost(`HTTP ${response.status}: ${response.text.slice(0, 300)}`);
      return elapsedMs;
    }
    if (tally.taskIds.has(task.id)) tally.duplicated += 1;
    tally.taskIds.add(task.id);
    tally.ok += 1;
    return elapsedMs;
  } catch (error) {
    tally.lost += 1;
    reportLost(String(error));
    return Number(process.hrtime.bigint() - started) / 1e6;
  }
}

async function closedLoop(target: Target, payload: string, count: number, tally: Tally): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next += 1;
        await echo(target, payload, tally);
      }
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

/** Fixed arrival rate (no coordinated omission): request i is sent at i/rate s, whatever earlier ones do. */
async function openLoop(target: Target, payload: string, tally: Tally): Promise<hdr.Histogram> {
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const total = openLoopRate * openLoopSeconds;
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let index = 0; index < total; index += 1) {
    const due = started + (index * 1000) / openLoopRate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(
      echo(target, payload, tally).then((ms) => void histogram.recordValue(Math.round(ms * 1000))),
    );
  }
  await Promise.all(pending);
  return histogram;
}

async function hubCounters(hubUrl: string): Promise<{ userUs: number; systemUs: number; routed: number }> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(`${hubUrl}/metrics`, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
  const userUs = Number(/^hub_process_cpu_microseconds\{mode="user"\} (\S+)$/m.exec(text)?.[1] ?? NaN);
  const systemUs = Number(/^hub_process_cpu_microseconds\{mode="system"\} (\S+)$/m.exec(text)?.[1] ?? NaN);
  let routed = 0;
  for (const match of text.matchAll(/^hub_routed_messages_total\{[^}]*\} (\S+)$/gm))
    routed += Number(match[1]);
  return { userUs, systemUs, routed };
}

/** Hub CPU µs per routed message during `run`, in user and system mode. */
async function cpuPerMessage(
  hubUrl: string,
  run: () => Promise<unknown>,
): Promise<{ user: number; system: number }> {
  const before = await hubCounters(hubUrl);
  await run();
  const after = await hubCounters(hubUrl);
  const routed = Math.max(1, after.routed - before.routed);
  return {
    user: (after.userUs - before.userUs) / routed,
    system: (after.systemUs - before.systemUs) / routed,
  };
}

/**
 * The skill of the in-process "loadgen" spoke: asks the echo spoke through the hub (up its attested link, the
 * finance → marketing path) `count` times with `concurrency` in flight, and reports answers and duration.
 */
const loadSkill: SkillDefinition = {
  id: 'load',
  name: 'Load',
  description: 'Bench load generator: echo requests to another spoke through the hub.',
  tags: ['bench'],
  examples: [],
  handler: async (input, context) => {
    const {
      count,
      concurrency: inFlight,
      bytes,
    } = input.data[0] as { count: number; concurrency: number; bytes: number };
    const filler = 'z'.repeat(Math.max(0, bytes - 12));
    // Every in-flight peer call listens on this task's signal.
    setMaxListeners(inFlight + 16, context.signal);
    const seen = new Set<string>();
    let next = 0;
    let ok = 0;
    let lost = 0;
    let duplicated = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < count) {
          next += 1;
          const text = `${String(next).padStart(10, '0')} ${filler}`;
          try {
            const answer = await context.callPeer({ tenant: 'echo', skill: 'echo', text, timeoutMs: 30_000 });
            if (answer.text !== text) lost += 1;
            else if (seen.has(answer.taskId)) duplicated += 1;
            else ok += 1;
            seen.add(answer.taskId);
          } catch (error) {
            lost += 1;
            if (lost <= 3) process.stderr.write(`lost answer (spoke to spoke): ${String(error)}\n`);
          }
        }
      }),
    );
    return { text: 'done', data: { ok, lost, duplicated, seconds: (performance.now() - started) / 1000 } };
  },
};

/** Runs the loadgen skill once (directly on the loadgen spoke) and returns its report. */
async function spokeToSpoke(
  loadgenUrl: string,
  count: number,
  bytes: number,
): Promise<{ ok: number; lost: number; duplicated: number; seconds: number }> {
  const response = await post(
    `${loadgenUrl}/a2a`,
    JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'SendMessage',
      params: {
        message: {
          messageId: randomUUID(),
          role: 'ROLE_USER',
          parts: [{ data: { count, concurrency, bytes }, mediaType: 'application/json' }],
        },
        metadata: { [META.skill]: 'load' },
      },
    }),
    { 'a2a-version': '1.0' },
  );
  const body = JSON.parse(response.text) as {
    result?: { task?: { artifacts?: { parts: { data?: unknown }[] }[] } };
  };
  const report = body.result?.task?.artifacts?.[0]?.parts.find((part) => part.data !== undefined)?.data;
  if (report === undefined) throw new Error(`loadgen failed: ${response.text.slice(0, 500)}`);
  return report as { ok: number; lost: number; duplicated: number; seconds: number };
}

/** The peer behind the bare relay: answers each stream request with the final task and `streamEnd`. */
async function startRelayAnswerer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (socket) => {
    socket.on('message', (data: RawData) => {
      const frame = JSON.parse(data.toString()) as {
        id: string;
        params: { message: { messageId: string; contextId?: string; parts: { text: string }[] } };
      };
      const { message } = frame.params;
      const contextId = message.contextId ?? randomUUID();
      const task = {
        id: randomUUID(),
        contextId,
        status: { state: 'TASK_STATE_COMPLETED', timestamp: new Date().toISOString() },
        artifacts: [
          { artifactId: randomUUID(), name: 'echo-result', parts: [{ text: message.parts[0]?.text }] },
        ],
        history: [{ ...message, contextId, role: 'ROLE_USER' }],
        metadata: { [META.skill]: 'echo' },
      };
      socket.send(JSON.stringify({ jsonrpc: '2.0', id: frame.id, result: { task } }));
      socket.send(JSON.stringify({ jsonrpc: '2.0', id: frame.id, streamEnd: true }));
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        // The relay's connection would keep the server open.
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}

async function relayCounters(
  relayUrl: string,
): Promise<{ userUs: number; systemUs: number; relayed: number }> {
  const response = await fetch(`${relayUrl}/cpu`);
  return (await response.json()) as { userUs: number; systemUs: number; relayed: number };
}

/** The relay's CPU µs per relayed message during `run`. */
async function relayCpuPerMessage(relayUrl: string, run: () => Promise<unknown>): Promise<number> {
  const before = await relayCounters(relayUrl);
  await run();
  const after = await relayCounters(relayUrl);
  const relayed = Math.max(1, after.relayed - before.relayed);
  return (after.userUs - before.userUs + after.systemUs - before.systemUs) / relayed;
}

/**
 * `count` SendMessage requests (shaped as a spoke's peer call) through the bare relay with `concurrency` in
 * flight, over one WebSocket; returns the lost answers.
 */
async function throughRelay(relayUrl: string, count: number): Promise<number> {
  const socket = new WebSocket(relayUrl.replace('http:', 'ws:'), { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const waiting = new Map<number, { text: string; done: (ok: boolean) => void }>();
  socket.on('message', (data: RawData) => {
    const frame = JSON.parse(data.toString()) as {
      id: number;
      result: { task: { artifacts: { parts: { text: string }[] }[] } };
    };
    const call = waiting.get(frame.id);
    waiting.delete(frame.id);
    call?.done(frame.result.task.artifacts[0]?.parts[0]?.text === call.text);
  });
  const filler = 'z'.repeat(256 - 12);
  let next = 0;
  let lost = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next += 1;
        const id = next;
        const text = `${String(id).padStart(10, '0')} ${filler}`;
        const params = {
          tenant: 'echo',
          message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }] },
          configuration: { historyLength: 0 },
          metadata: { [META.skill]: 'echo', [META.caller]: 'loadgen', [META.deadline]: Date.now() + 30_000 },
        };
        const ok = await new Promise<boolean>((done) => {
          waiting.set(id, { text, done });
          socket.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'SendMessage', params }));
        });
        if (!ok) lost += 1;
      }
    }),
  );
  socket.close();
  return lost;
}

async function waitReady(hubUrl: string, apiKey: string): Promise<void> {
  const started = Date.now();
  for (;;) {
    try {
      const response = await fetch(`${hubUrl}/v1/spokes`, { headers: { authorization: `Bearer ${apiKey}` } });
      const body = (await response.json()) as { spokes: { routable: boolean }[] };
      if (body.spokes.length > 0 && body.spokes.every((row) => row.routable)) return;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > 60_000) throw new Error('hub and spoke did not become ready within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function waitListening(url: string): Promise<void> {
  const started = Date.now();
  for (;;) {
    try {
      await relayCounters(url);
      return;
    } catch {
      if (Date.now() - started > 30_000) throw new Error(`${url} did not start within 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The item whose `key` is the median (the lower middle one for an even count). */
function medianBy<T>(items: readonly T[], key: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)] as T;
}

function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/**
 * Compiles the services into dist/ (`npm run build`) and copies the hub's migrations beside them, as
 * docker/hub.Dockerfile does.
 */
async function buildServices(): Promise<void> {
  const tsc = spawn(
    process.execPath,
    [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const code = await new Promise<number | null>((resolve) => tsc.once('exit', resolve));
  if (code !== 0) throw new Error(`npm run build (tsc -p tsconfig.build.json) failed with exit code ${code}`);
  await cp(join(REPO_ROOT, 'hub/migrations'), join(REPO_ROOT, 'dist/hub/migrations'), { recursive: true });
}

/** Stops one child process (SIGTERM, then SIGKILL after 10 s), waits for it to exit and reports a failed exit. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      if (code !== 0) process.stderr.write(`child ${child.pid} exited with ${code ?? signal}\n`);
      resolve();
    });
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

async function main(): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'agenthub-bench-'));
  const watchdog = setTimeout(() => {
    process.stderr.write('bench exceeded its time limit\n');
    for (const child of children) child.kill('SIGKILL');
    process.exit(2);
  }, runLimitMs);
  try {
    await buildServices();
    const model = join(stateDir, 'echo.gguf');
    await writeFile(model, Buffer.alloc(64 * 1024, 7));
    const apiPort = await freePort();
    const attestationPort = await freePort();
    const hubPort = await freePort();
    const loadgenApiPort = await freePort();
    const loadgenAttestationPort = await freePort();
    const loadgenMeasurement: MeasurementSpec = {
      modelPath: null,
      codePaths: [fileURLToPath(import.meta.url)],
      lockfilePath: lockfilePath(),
      agentMaxMemoryMb: 7000,
    };
    const enrolment = await enrolLocal(stateDir, [
      {
        name: 'loadgen',
        host: '127.0.0.1',
        apiPort: loadgenApiPort,
        attestationPort: loadgenAttestationPort,
        measurement: loadgenMeasurement,
      },
      {
        name: 'echo',
        host: '127.0.0.1',
        apiPort,
        attestationPort,
        measurement: {
          modelPath: model,
          codePaths: pingSpokeCodePaths(),
          lockfilePath: lockfilePath(),
          agentMaxMemoryMb: 7000,
        },
      },
    ]);
    startProcess('test/helpers/ping_spoke_main.ts', {
      SPOKE_NAME: 'echo',
      SPOKE_API_PORT: String(apiPort),
      SPOKE_ATTESTATION_PORT: String(attestationPort),
      AGENTHUB_STATE_DIR: stateDir,
      MODEL_PATH: model,
      SPOKE_CAPACITY: '64',
      SPOKE_QUEUE_LIMIT: '256',
    });
    // BENCH_HUB_PROFILE_DIR=<dir> writes a V8 CPU profile of the hub process there (for finding hot spots).
    const profileDir = process.env.BENCH_HUB_PROFILE_DIR;
    const hubEnv = { AGENTHUB_STATE_DIR: stateDir, HUB_PORT: String(hubPort), QUEUE_LIMIT: '256' };
    const hubNodeArgs = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
    let hub = startProcess('dist/hub/main.js', hubEnv, hubNodeArgs);
    const loadgen: RunningSpoke = await startSpoke({
      name: 'loadgen',
      description: 'bench load generator',
      version: '0.0.1',
      skills: [loadSkill],
      host: '127.0.0.1',
      apiPort: loadgenApiPort,
      attestationPort: loadgenAttestationPort,
      signingKey: await importSigningKey(
        JSON.parse(await readFile(enrolment.spokeKeyFile('loadgen'), 'utf8')) as JWK,
      ),
      hubJwks: JSON.parse(await readFile(enrolment.hubJwksFile, 'utf8')) as { keys: JWK[] },
      measurer: createMeasurer(loadgenMeasurement, { remeasureIntervalMs: 3_600_000 }),
      capacity: 4,
    });
    spokesToClose.push(loadgen);
    const hubUrl = `http://127.0.0.1:${hubPort}`;
    await waitReady(hubUrl, enrolment.apiKey);

    const viaHub: Target = {
      url: `${hubUrl}/a2a`,
      headers: { authorization: `Bearer ${enrolment.apiKey}`, 'a2a-version': '1.0' },
      tenant: 'echo',
    };
    const direct: Target = {
      url: `http://127.0.0.1:${apiPort}/a2a`,
      headers: { 'a2a-version': '1.0' },
      tenant: undefined,
    };
    const small = 'x'.repeat(256 - 37);
    const large = 'y'.repeat(10 * 1024 - 37);
    const tallies = { hub: newTally(), direct: newTally(), relay: newTally() };

    // The bare relay (bench/relay_main.mjs) is the floor under both the HTTP and the spoke → hub → spoke figures.
    const answerer = await startRelayAnswerer();
    const relayPort = await freePort();
    startProcess('bench/relay_main.mjs', {
      RELAY_PORT: String(relayPort),
      RELAY_ANSWERER_URL: answerer.url,
    });
    const relayUrl = `http://127.0.0.1:${relayPort}`;
    await waitListening(relayUrl);
    const viaRelay: Target = { url: `${relayUrl}/a2a`, headers: {}, tenant: 'echo' };

    // HTTP /a2a: a full first round (reported as the cold figure: a freshly started hub); then the settling rounds
    // (the store fills, TASK_LIMIT 10,000 tasks, and turns over); then rounds through the hub alternating with
    // rounds through the bare relay's HTTP entry (same box for both).
    const firstHttp = await cpuPerMessage(hubUrl, () =>
      closedLoop(viaHub, small, closedLoopCount, tallies.hub),
    );
    const settlingHttpUs: number[] = [];
    for (let round = 0; round < httpSettlingRounds; round += 1) {
      const cpu = await cpuPerMessage(hubUrl, () => closedLoop(viaHub, small, closedLoopCount, tallies.hub));
      settlingHttpUs.push(cpu.user + cpu.system);
    }
    await closedLoop(direct, small, warmupCount, newTally());
    await closedLoop(viaRelay, small, warmupCount, newTally());
    const httpRuns: { cpuUs: number; userUs: number; systemUs: number; rps: number }[] = [];
    const relayHttpRuns: number[] = [];
    for (let round = 0; round < httpRounds; round += 1) {
      let rps = 0;
      const cpu = await cpuPerMessage(hubUrl, async () => {
        rps = await closedLoop(viaHub, small, closedLoopCount, tallies.hub);
      });
      httpRuns.push({ cpuUs: cpu.user + cpu.system, userUs: cpu.user, systemUs: cpu.system, rps });
      relayHttpRuns.push(
        await relayCpuPerMessage(relayUrl, () => closedLoop(viaRelay, small, closedLoopCount, tallies.relay)),
      );
    }
    const throughputDirect256 = await closedLoop(direct, small, closedLoopCount, tallies.direct);
    let throughputHub10k = 0;
    const cpu10k = await cpuPerMessage(hubUrl, async () => {
      throughputHub10k = await closedLoop(viaHub, large, closedLoopCount10k, tallies.hub);
    });

    const openHub = await openLoop(viaHub, small, tallies.hub);
    const openDirect = await openLoop(direct, small, tallies.direct);
    // A full round of each first: the link path's code and the hub's heap reach their steady state.
    await spokeToSpoke(loadgen.apiUrl, closedLoopCount, 256);
    await throughRelay(relayUrl, closedLoopCount);
    const linkRuns: { cpuUs: number; userUs: number; systemUs: number; rps: number }[] = [];
    const relayRuns: number[] = [];
    for (let round = 0; round < linkRounds; round += 1) {
      let viaLink = { ok: 0, lost: 0, duplicated: 0, seconds: 1 };
      const cpu = await cpuPerMessage(hubUrl, async () => {
        viaLink = await spokeToSpoke(loadgen.apiUrl, closedLoopCount, 256);
      });
      linkRuns.push({
        cpuUs: cpu.user + cpu.system,
        userUs: cpu.user,
        systemUs: cpu.system,
        rps: closedLoopCount / viaLink.seconds,
      });
      countAnswers(tallies.hub, closedLoopCount, viaLink);
      relayRuns.push(
        await relayCpuPerMessage(relayUrl, async () => {
          const lost = await throughRelay(relayUrl, closedLoopCount);
          countAnswers(tallies.relay, closedLoopCount, { ok: closedLoopCount - lost, lost, duplicated: 0 });
        }),
      );
    }
    await answerer.close();

    // 10 KB over the link, once the 256 B rounds are done.
    let viaLink10k = { ok: 0, lost: 0, duplicated: 0, seconds: 1 };
    const cpuLink10k = await cpuPerMessage(hubUrl, async () => {
      viaLink10k = await spokeToSpoke(loadgen.apiUrl, closedLoopCount10k, 10 * 1024);
    });
    countAnswers(tallies.hub, closedLoopCount10k, viaLink10k);

    // The same path with the hub restarted on the SQL task store over PostgreSQL, as docker/compose.yaml runs it.
    const postgresSkip = await postgresUnreachableReason();
    const postgresRuns: { cpuUs: number; rps: number }[] = [];
    if (postgresSkip === undefined) {
      scratch = await createScratchDatabase('agenthub_bench_hub');
      await stopProcess(hub);
      hub = startProcess('dist/hub/main.js', { ...hubEnv, DATABASE_URL: scratch.url }, hubNodeArgs);
      await waitReady(hubUrl, enrolment.apiKey);
      // A full round first, as on the in-memory store: the restarted hub's code warms up again.
      await spokeToSpoke(loadgen.apiUrl, quick ? postgresCount : closedLoopCount, 256);
      for (let round = 0; round < postgresRounds; round += 1) {
        let viaPostgres = { ok: 0, lost: 0, duplicated: 0, seconds: 1 };
        const cpu = await cpuPerMessage(hubUrl, async () => {
          viaPostgres = await spokeToSpoke(loadgen.apiUrl, postgresCount, 256);
        });
        postgresRuns.push({ cpuUs: cpu.user + cpu.system, rps: postgresCount / viaPostgres.seconds });
        countAnswers(tallies.hub, postgresCount, viaPostgres);
      }
    } else {
      process.stderr.write(
        `skipping the PostgreSQL phase: ${TEST_POSTGRES_URL} is not reachable (${postgresSkip})\n`,
      );
    }
    const postgres = postgresRuns.length === 0 ? undefined : medianBy(postgresRuns, (run) => run.cpuUs);

    const http = medianBy(httpRuns, (run) => run.cpuUs);
    const httpMinUs = Math.min(...httpRuns.map((run) => run.cpuUs));
    const relayHttpCpuUs = medianBy(relayHttpRuns, (cpuUs) => cpuUs);
    const link = medianBy(linkRuns, (run) => run.cpuUs);
    const relayCpuUs = medianBy(relayRuns, (cpuUs) => cpuUs);
    const linkMinUs = Math.min(...linkRuns.map((run) => run.cpuUs));
    const relayMinUs = Math.min(...relayRuns);

    const hubP50 = openHub.getValueAtPercentile(50) / 1000;
    const hubP99 = openHub.getValueAtPercentile(99) / 1000;
    const directP50 = openDirect.getValueAtPercentile(50) / 1000;
    const directP99 = openDirect.getValueAtPercentile(99) / 1000;

    const lines = [
      `HTTP /a2a (${concurrency} in flight), 256 B, median of ${httpRounds} once the task store has filled and turned over: via hub ${round(http.rps, 0)} req/s, direct ${round(throughputDirect256, 0)} req/s; hub CPU ${round(http.cpuUs, 1)} µs per routed message (user ${round(http.userUs, 1)}, system ${round(http.systemUs, 1)}); rounds ${httpRuns.map((run) => round(run.cpuUs, 1)).join(', ')}; first round (cold hub) ${round(firstHttp.user + firstHttp.system, 1)} µs; settling rounds (store filling, then turning over) ${settlingHttpUs.map((cpuUs) => round(cpuUs, 1)).join(', ')}`,
      `bare relay's HTTP entry moving the same requests, 256 B, median of ${httpRounds}: ${round(relayHttpCpuUs, 1)} µs per message; rounds ${relayHttpRuns.map((cpuUs) => round(cpuUs, 1)).join(', ')}`,
      `HTTP /a2a, 10 KB via hub: ${round(throughputHub10k, 0)} req/s, hub CPU ${round(cpu10k.user + cpu10k.system, 1)} µs per routed message (user ${round(cpu10k.user, 1)}, system ${round(cpu10k.system, 1)})`,
      `open loop ${openLoopRate} req/s for ${openLoopSeconds} s, 256 B: via hub p50 ${round(hubP50, 3)} ms p99 ${round(hubP99, 3)} ms; direct p50 ${round(directP50, 3)} ms p99 ${round(directP99, 3)} ms`,
      `spoke → hub → spoke (attested link, ${concurrency} in flight), 256 B, median of ${linkRounds}: ${round(link.rps, 0)} req/s, hub CPU ${round(link.cpuUs, 1)} µs per routed message (user ${round(link.userUs, 1)}, system ${round(link.systemUs, 1)}); rounds ${linkRuns.map((run) => round(run.cpuUs, 1)).join(', ')}`,
      `bare WebSocket relay moving the same frames (no routing features), 256 B, median of ${linkRounds}: ${round(relayCpuUs, 1)} µs per message; rounds ${relayRuns.map((cpuUs) => round(cpuUs, 1)).join(', ')}`,
      `spoke → hub → spoke, 10 KB: ${round(closedLoopCount10k / viaLink10k.seconds, 0)} req/s, hub CPU ${round(cpuLink10k.user + cpuLink10k.system, 1)} µs per routed message`,
      postgres === undefined
        ? `spoke → hub → spoke with the hub on PostgreSQL: skipped (${postgresSkip ?? 'no rounds'})`
        : `spoke → hub → spoke with the hub's task store on PostgreSQL, 256 B, median of ${postgresRounds}: ${round(postgres.rps, 0)} req/s, hub CPU ${round(postgres.cpuUs, 1)} µs per routed message; rounds ${postgresRuns.map((run) => round(run.cpuUs, 1)).join(', ')}`,
      `answers: via hub ${tallies.hub.ok}/${tallies.hub.sent}, direct ${tallies.direct.ok}/${tallies.direct.sent}, relay ${tallies.relay.ok}/${tallies.relay.sent}`,
    ];
    for (const line of lines) process.stdout.write(`${line}\n`);
    process.stdout.write(
      `${JSON.stringify({
        hub_cpu_us_per_msg_256b_http: round(http.cpuUs, 1),
        hub_cpu_user_us_per_msg_256b_http: round(http.userUs, 1),
        hub_cpu_system_us_per_msg_256b_http: round(http.systemUs, 1),
        hub_cpu_us_per_msg_256b_http_min: round(httpMinUs, 1),
        hub_cpu_us_per_msg_256b_http_first_round: round(firstHttp.user + firstHttp.system, 1),
        hub_cpu_us_per_msg_256b_http_settling_max:
          settlingHttpUs.length === 0 ? null : round(Math.max(...settlingHttpUs), 1),
        bare_relay_http_cpu_us_per_msg_256b: round(relayHttpCpuUs, 1),
        hub_over_bare_relay_http_ratio: round(http.cpuUs / relayHttpCpuUs, 2),
        hub_cpu_us_per_msg_256b_spoke_to_spoke: round(link.cpuUs, 1),
        hub_cpu_user_us_per_msg_256b_spoke_to_spoke: round(link.userUs, 1),
        hub_cpu_system_us_per_msg_256b_spoke_to_spoke: round(link.systemUs, 1),
        throughput_rps_256b_spoke_to_spoke: round(link.rps, 0),
        hub_cpu_us_per_msg_256b_spoke_to_spoke_min: round(linkMinUs, 1),
        bare_relay_cpu_us_per_msg_256b: round(relayCpuUs, 1),
        bare_relay_cpu_us_per_msg_256b_min: round(relayMinUs, 1),
        hub_over_bare_relay_ratio: round(link.cpuUs / relayCpuUs, 2),
        hub_cpu_us_per_msg_10kb_http: round(cpu10k.user + cpu10k.system, 1),
        hub_cpu_us_per_msg_10kb_spoke_to_spoke: round(cpuLink10k.user + cpuLink10k.system, 1),
        hub_cpu_us_per_msg_256b_spoke_to_spoke_postgres:
          postgres === undefined ? null : round(postgres.cpuUs, 1),
        throughput_rps_256b_spoke_to_spoke_postgres: postgres === undefined ? null : round(postgres.rps, 0),
        hub_added_p50_ms_500rps: round(hubP50 - directP50, 3),
        hub_added_p99_ms_500rps: round(hubP99 - directP99, 3),
        hub_p50_ms_500rps: round(hubP50, 3),
        direct_p50_ms_500rps: round(directP50, 3),
        hub_p99_ms_500rps: round(hubP99, 3),
        direct_p99_ms_500rps: round(directP99, 3),
        throughput_rps_256b: round(http.rps, 0),
        throughput_rps_256b_direct: round(throughputDirect256, 0),
        throughput_rps_10kb: round(throughputHub10k, 0),
        lost: tallies.hub.lost + tallies.direct.lost + tallies.relay.lost,
        duplicated: tallies.hub.duplicated + tallies.direct.duplicated + tallies.relay.duplicated,
        quick,
      })}\n`,
    );
  } finally {
    clearTimeout(watchdog);
    for (const spoke of spokesToClose) await spoke.close({ graceMs: 100 });
    await Promise.all(children.map(stopProcess));
    agent.destroy();
    await scratch?.drop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
});
