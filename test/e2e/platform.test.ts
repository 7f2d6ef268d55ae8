// The platform end to end, as separate processes: an enrolled temp state dir, hub/main.ts and two ping spokes
// (test/helpers/ping_spoke_main.ts). Both attest; a model byte flipped with size and mtime kept makes one
// contraindicated and unroutable (nothing reaches it, callers get 503 SPOKE_UNATTESTED) until restored; cancel
// reaches the spoke; a SIGKILLed spoke fails its caller instead of hanging; a restarted hub re-attests alone.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, open, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolLocal } from '../../shared/enrolment.js';
import { REPO_ROOT, lockfilePath } from '../../shared/layout.js';
import { META } from '../../shared/protocol.js';
import { pingSpokeCodePaths } from '../helpers/ping_spoke_main.js';

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  output: string;
}

const procs = new Map<string, Proc>();
let stateDir: string;
let apiKey: string;
let hubUrl: string;
let hubPort: number;
const spokePorts = new Map<string, { api: number; attestation: number; model: string }>();

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

function start(name: string, script: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: Proc = { name, child, output: '' };
  child.stdout?.on('data', (chunk: Buffer) => (proc.output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (proc.output += chunk.toString()));
  procs.set(name, proc);
  return proc;
}

function startHubProcess(): Proc {
  return start('hub', 'hub/main.ts', {
    AGENTHUB_STATE_DIR: stateDir,
    HUB_PORT: String(hubPort),
    REATTEST_INTERVAL_MS: '1000',
    PING_INTERVAL_MS: '1000',
    RECONNECT_MIN_MS: '100',
    RECONNECT_MAX_MS: '1000',
  });
}

function startSpokeProcess(name: string): Proc {
  const ports = spokePorts.get(name);
  if (ports === undefined) throw new Error(name);
  return start(name, 'test/helpers/ping_spoke_main.ts', {
    SPOKE_NAME: name,
    SPOKE_API_PORT: String(ports.api),
    SPOKE_ATTESTATION_PORT: String(ports.attestation),
    AGENTHUB_STATE_DIR: stateDir,
    MODEL_PATH: ports.model,
    REMEASURE_INTERVAL_MS: '1000',
    HEARTBEAT_INTERVAL_MS: '1000',
    SPOKE_CAPACITY: '4',
  });
}

async function stopProcess(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const proc = procs.get(name);
  if (proc === undefined) return;
  procs.delete(name);
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, limitMs = 40_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() - started > limitMs) {
      const logs = [...procs.values()]
        .map((proc) => `--- ${proc.name}\n${proc.output.slice(-3000)}`)
        .join('\n');
      throw new Error(`timed out waiting for ${what}\n${logs}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface SpokeRow {
  spoke: string;
  status: string;
  reasons: string[];
  routable: boolean;
}

async function spokes(): Promise<SpokeRow[]> {
  const response = await fetch(`${hubUrl}/v1/spokes`, { headers: { authorization: `Bearer ${apiKey}` } });
  return ((await response.json()) as { spokes: SpokeRow[] }).spokes;
}

async function untilStatus(name: string, status: string): Promise<SpokeRow> {
  return until(async () => {
    const row = (await spokes()).find((entry) => entry.spoke === name);
    return row?.status === status && (status !== 'affirming' || row.routable) ? row : undefined;
  }, `${name} ${status}`);
}

async function hubA2a(
  method: string,
  params: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${hubUrl}/a2a`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: randomUUID(), method, params }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Calls the spoke's own A2A endpoint (its counters: the tasks it has seen). */
async function spokeA2a(name: string, method: string, params: unknown): Promise<Record<string, unknown>> {
  const ports = spokePorts.get(name);
  const response = await fetch(`http://127.0.0.1:${ports?.api}/a2a`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return (await response.json()) as Record<string, unknown>;
}

async function spokeTaskCount(name: string): Promise<number> {
  const body = await spokeA2a(name, 'ListTasks', { pageSize: 100 });
  return (body.result as { totalSize: number }).totalSize;
}

function send(tenant: string, skill: string, text: string, extra: Record<string, unknown> = {}) {
  return hubA2a('SendMessage', {
    tenant,
    message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }] },
    metadata: { [META.skill]: skill, ...extra },
  });
}

/** Flips one byte of `path` in place and restores its mtime, so size and mtime look unchanged. */
async function flipByte(path: string, offset: number): Promise<void> {
  const before = await stat(path);
  const handle = await open(path, 'r+');
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, offset);
  byte[0] = (byte[0] ?? 0) ^ 0xff;
  await handle.write(byte, 0, 1, offset);
  await handle.close();
  await utimes(path, before.atime, before.mtime);
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'agenthub-e2e-'));
  hubPort = await freePort();
  hubUrl = `http://127.0.0.1:${hubPort}`;
  for (const name of ['alpha', 'beta']) {
    const model = join(stateDir, `${name}.gguf`);
    const bytes = Buffer.alloc(512 * 1024);
    for (let index = 0; index < bytes.length; index += 1)
      bytes[index] = (index * 131 + name.length * 17) & 0xff;
    await writeFile(model, bytes);
    spokePorts.set(name, { api: await freePort(), attestation: await freePort(), model });
  }
  const enrolment = await enrolLocal(
    stateDir,
    [...spokePorts.entries()].map(([name, ports]) => ({
      name,
      host: '127.0.0.1',
      apiPort: ports.api,
      attestationPort: ports.attestation,
      measurement: {
        modelPath: ports.model,
        codePaths: pingSpokeCodePaths(),
        lockfilePath: lockfilePath(),
        agentMaxMemoryMb: 7000,
      },
    })),
  );
  apiKey = enrolment.apiKey;
  startSpokeProcess('alpha');
  startSpokeProcess('beta');
  startHubProcess();
  await untilStatus('alpha', 'affirming');
  await untilStatus('beta', 'affirming');
}, 120_000);

afterAll(async () => {
  for (const name of [...procs.keys()]) await stopProcess(name);
  await rm(stateDir, { recursive: true, force: true });
});

describe('platform e2e', () => {
  it('attests both spokes and routes through the hub', async () => {
    const rows = await spokes();
    expect(rows.map((row) => [row.spoke, row.status])).toEqual([
      ['alpha', 'affirming'],
      ['beta', 'affirming'],
    ]);
    const answer = await send('alpha', 'echo', 'hello alpha');
    expect(answer.status).toBe(200);
    const task = (
      answer.body.result as {
        task: { status: { state: string }; artifacts: { parts: { text?: string }[] }[] };
      }
    ).task;
    expect(task.status.state).toBe('TASK_STATE_COMPLETED');
    expect(task.artifacts[0]?.parts[0]?.text).toBe('hello alpha');
  });

  it('stops routing to a spoke whose model byte changed (size and mtime kept) and resumes once restored', async () => {
    const model = spokePorts.get('alpha')?.model as string;
    const before = await spokeTaskCount('alpha');
    await flipByte(model, 4096);
    const row = await untilStatus('alpha', 'contraindicated');
    expect(row.reasons).toContain('meas.model.mismatch');
    const refused = await send('alpha', 'echo', 'should not arrive');
    expect(refused.status).toBe(503);
    expect((refused.body.error as { data: { reason: string }[] }).data[0]?.reason).toBe('SPOKE_UNATTESTED');
    const chat = await fetch(`${hubUrl}/v1/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ message: '@alpha echo hi' }),
    });
    expect(chat.status).toBe(503);
    expect(chat.headers.get('retry-after')).not.toBeNull();
    expect(((await chat.json()) as { error: { code: string } }).error.code).toBe('SPOKE_UNATTESTED');
    expect(await spokeTaskCount('alpha')).toBe(before);
    const otherStillServes = await send('beta', 'ping', 'ping');
    expect(otherStillServes.status).toBe(200);

    await flipByte(model, 4096);
    await untilStatus('alpha', 'affirming');
    const resumed = await send('alpha', 'echo', 'back again');
    expect(resumed.status).toBe(200);
    expect(await spokeTaskCount('alpha')).toBe(before + 1);
  });

  it('propagates a cancel to the spoke: the sleep skill stops and its task ends CANCELED', async () => {
    const sent = await hubA2a('SendMessage', {
      tenant: 'alpha',
      message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'sleep 60000' }] },
      configuration: { returnImmediately: true },
      metadata: { [META.skill]: 'sleep' },
    });
    const hubTaskId = (sent.body.result as { task: { id: string } }).task.id;
    const spokeTaskId = await until(async () => {
      const response = await fetch(`${hubUrl}/v1/tasks/${hubTaskId}`, {
        headers: { authorization: `Bearer ${apiKey}` },
      });
      const task = (await response.json()) as { hops: { spokeTaskId: string | null }[] };
      return task.hops[0]?.spokeTaskId ?? undefined;
    }, 'spoke task id');
    await until(async () => {
      const task = await spokeA2a('alpha', 'GetTask', { id: spokeTaskId });
      return (task.result as { status: { state: string } }).status.state === 'TASK_STATE_WORKING'
        ? true
        : undefined;
    }, 'sleep running');
    const canceled = await hubA2a('CancelTask', { id: hubTaskId });
    expect(canceled.status).toBe(200);
    expect((canceled.body.result as { status: { state: string } }).status.state).toBe('TASK_STATE_CANCELED');
    const atSpoke = await until(async () => {
      const task = await spokeA2a('alpha', 'GetTask', { id: spokeTaskId });
      const state = (task.result as { status: { state: string } }).status.state;
      return state === 'TASK_STATE_WORKING' ? undefined : state;
    }, 'spoke task ended');
    expect(atSpoke).toBe('TASK_STATE_CANCELED');
  });

  it('fails the caller with SPOKE_UNAVAILABLE when the spoke is SIGKILLed mid-request, never a hang', async () => {
    const pending = send('beta', 'sleep', 'sleep 60000', { [META.deadline]: Date.now() + 30_000 });
    await until(async () => {
      const list = await spokeA2a('beta', 'ListTasks', { status: 'TASK_STATE_WORKING' });
      return (list.result as { tasks: unknown[] }).tasks.length > 0 ? true : undefined;
    }, 'sleep running at beta');
    await stopProcess('beta', 'SIGKILL');
    const answer = await pending;
    expect(answer.status).toBe(503);
    expect((answer.body.error as { data: { reason: string }[] }).data[0]?.reason).toBe('SPOKE_UNAVAILABLE');
    await untilStatus('beta', 'disconnected');
    startSpokeProcess('beta');
    await untilStatus('beta', 'affirming');
  });

  it('re-attests every spoke after a hub restart with no manual step', async () => {
    await stopProcess('hub');
    startHubProcess();
    await untilStatus('alpha', 'affirming');
    await untilStatus('beta', 'affirming');
    const answer = await send('beta', 'echo', 'after restart');
    expect(answer.status).toBe(200);
  });
});
