// A disposable local system for e2e tests: enrols a temp state dir the way `agenthub up` does, starts hub/main.ts,
// spoke_marketing/main.ts and spoke_finance/main.ts as separate processes on free ephemeral ports with their logs in
// <state>/logs/<name>.log, waits until both spokes are affirming and routable, and stops everything on dispose.
import { readCardTenants } from '../../shared/cli/up_command.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareEnrolment } from '../../shared/cli/enrol_command.js';
import type { CliIo } from '../../shared/cli/io.js';
import { REPO_ROOT } from '../../shared/layout.js';

/** The processes of a system. */
export type ProcessName = 'hub' | 'marketing' | 'finance';
const SPOKES = ['marketing', 'finance'] as const;
/** A spoke of the system. */
export type SpokeName = (typeof SPOKES)[number];

/** Options of {@link startSystem}. */
export interface SystemOptions {
  /**
   * GGUF for the marketing spoke. It is copied into the state dir, so a test may tamper with its copy. Unset or
   * null: marketing runs without a model (answers carry no narrative).
   */
  readonly marketingModel?: string | null;
  /** GGUF for the finance spoke (copied the same way); unset or null: finance runs without a model. */
  readonly financeModel?: string | null;
  /** Extra environment of the hub process (e.g. `REATTEST_INTERVAL_MS`). */
  readonly hubEnv?: Readonly<Record<string, string>>;
  /** Extra environment of both spoke processes. */
  readonly spokeEnv?: Readonly<Record<string, string>>;
  /** How long to wait for both spokes to be affirming and routable. @defaultValue 90000 */
  readonly readyTimeoutMs?: number;
}

/** One row of `GET /v1/spokes`. */
export interface SpokeRow {
  readonly spoke: string;
  readonly status: string;
  readonly routable: boolean;
  readonly reasons: readonly string[];
  readonly ready?: boolean;
  readonly attestedAt: string | null;
}

/** A hub HTTP answer: status, headers and body (JSON when it parses, else text). */
export interface HubResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

/** A running system. */
export interface RunningSystem {
  readonly stateDir: string;
  readonly hubUrl: string;
  readonly apiKey: string;
  /** Log file of each process (stdout and stderr, pino JSON lines). */
  readonly logFiles: Readonly<Record<ProcessName, string>>;
  /** Ports of each process. */
  readonly ports: Readonly<{
    hub: number;
    marketing: { api: number; attestation: number };
    finance: { api: number; attestation: number };
  }>;
  /** The model file each spoke loads (the copy in the state dir), or null. */
  readonly modelPaths: Readonly<Record<SpokeName, string | null>>;
  /** `GET /v1/spokes`. */
  spokes(): Promise<SpokeRow[]>;
  /** Waits until `spoke` reports `status` (and, for affirming, is routable); throws with the last row seen. */
  waitForSpoke(spoke: SpokeName, status: string, timeoutMs?: number): Promise<SpokeRow>;
  /** An authenticated hub request (JSON body when `body` is given). */
  hub(
    path: string,
    init?: { method?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<HubResponse>;
  /** `POST /a2a` with `A2A-Version: 1.0` and the API key. */
  a2a(method: string, params: unknown): Promise<HubResponse>;
  /** The text of a process's log file so far. */
  readLog(name: ProcessName): Promise<string>;
  /** The last lines of every log, for failure messages. */
  logTails(lines?: number): Promise<string>;
  /** Stops one process (SIGTERM, SIGKILL after 15 s). */
  stop(name: ProcessName, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped process again with the same ports and environment. */
  start(name: ProcessName): void;
  /** Stops every process and removes the state dir (kept when AGENTHUB_E2E_KEEP=1). */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Free ephemeral ports: all are held open together so they are distinct, then released. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let index = 0; index < count; index += 1) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      servers.push(server);
    }
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address !== 'object') throw new Error('no port from the OS');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/**
 * Polls `probe` every 200 ms until it returns a value other than undefined; after `timeoutMs` throws an error
 * naming `what`, the last state `describe` gives and `extra` (e.g. log tails). Probe errors count as "not yet".
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  options: {
    timeoutMs: number;
    describe?: () => string;
    extra?: () => Promise<string>;
    /** Checked before each probe: a string stops the wait at once with that message. */
    failIf?: () => string | undefined;
  },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    const fatal = options.failIf?.();
    if (fatal !== undefined) {
      const extra = options.extra === undefined ? '' : `\n${await options.extra().catch(() => '')}`;
      throw new Error(`gave up waiting for ${what}: ${fatal}${extra}`);
    }
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const last = options.describe?.() ?? '';
      const errorText = lastError === undefined ? '' : `\nlast probe error: ${String(lastError)}`;
      const extra = options.extra === undefined ? '' : `\n${await options.extra().catch(() => '')}`;
      throw new Error(
        `timed out after ${options.timeoutMs} ms waiting for ${what}\nlast seen: ${last}${errorText}${extra}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Flips one byte of `path` in place and restores its atime and mtime, so size and mtime look unchanged. */
export async function flipByte(path: string, offset: number): Promise<void> {
  const before = await stat(path);
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
  await utimes(path, before.atime, before.mtime);
}

interface Child {
  readonly process: ChildProcess;
  readonly log: WriteStream;
  readonly exited: Promise<void>;
}

/** Startup saw a spoke's code change after enrolment (another engineer editing the shared tree): start afresh. */
class CodeChangedDuringStart extends Error {}

/**
 * Enrols a temp state dir and starts hub, marketing and finance as separate processes. When the code under
 * shared/ or spoke_<name>/ changes between enrolment and a spoke's first measurement (meas.code.mismatch while
 * starting), everything is stopped and started again with a fresh enrolment, at most three times.
 */
export async function startSystem(options: SystemOptions = {}): Promise<RunningSystem> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startSystemOnce(options);
    } catch (error) {
      if (!(error instanceof CodeChangedDuringStart) || attempt >= 3) throw error;
      console.warn(`startSystem: ${error.message}; enrolling again (attempt ${attempt + 1})`);
    }
  }
}

async function startSystemOnce(options: SystemOptions): Promise<RunningSystem> {
  const stateDir = await mkdtemp(join(tmpdir(), 'agenthub-e2e-system-'));
  const logDir = join(stateDir, 'logs');
  const modelDir = join(stateDir, 'models');
  await mkdir(logDir, { recursive: true, mode: 0o700 });
  await mkdir(modelDir, { recursive: true, mode: 0o700 });
  const [hubPort, marketingApi, marketingAttestation, financeApi, financeAttestation] = await freePorts(5);
  const ports = {
    hub: hubPort!,
    marketing: { api: marketingApi!, attestation: marketingAttestation! },
    finance: { api: financeApi!, attestation: financeAttestation! },
  };
  const modelPaths: Record<SpokeName, string | null> = { marketing: null, finance: null };
  for (const [spoke, source] of [
    ['marketing', options.marketingModel],
    ['finance', options.financeModel],
  ] as const) {
    if (source === undefined || source === null) continue;
    const copy = join(modelDir, `${spoke}.gguf`);
    await copyFile(source, copy);
    modelPaths[spoke] = copy;
  }

  // The same preparation `agenthub up` runs: local model files, spoke code paths, lock file, memory budget.
  const cliOutput: string[] = [];
  const io: CliIo = {
    argv: [],
    env: {
      MARKETING_API_PORT: String(ports.marketing.api),
      MARKETING_ATTESTATION_PORT: String(ports.marketing.attestation),
      FINANCE_API_PORT: String(ports.finance.api),
      FINANCE_ATTESTATION_PORT: String(ports.finance.attestation),
    },
    cwd: REPO_ROOT,
    stdout: (text) => cliOutput.push(text),
    stderr: (text) => cliOutput.push(text),
    signal: new AbortController().signal,
  };
  const { enrolment, spokes } = await prepareEnrolment(io, {
    stateDir,
    models: {
      marketing: modelPaths.marketing ?? undefined,
      finance: modelPaths.finance ?? undefined,
    },
    hosts: {},
    agentMaxMemoryMb: 7000,
  });
  for (const spoke of spokes) {
    if (spoke.modelPath !== modelPaths[spoke.name as SpokeName]) {
      throw new Error(
        `enrolment resolved ${spoke.name}'s model to ${spoke.modelPath}: ${cliOutput.join('')}`,
      );
    }
  }

  // Children get this environment minus any model settings, like `up` gives its children.
  const {
    MODEL_PATH: _model,
    FINANCE_MODEL_PATH: _financeModel,
    DATABASE_URL: _database,
    REDIS_URL: _redis,
    ...inherited
  } = process.env;
  const base: NodeJS.ProcessEnv = {
    ...inherited,
    AGENTHUB_STATE_DIR: stateDir,
    AGENT_MAX_MEMORY_MB: '7000',
    LOG_LEVEL: 'info',
  };
  const environments: Record<ProcessName, NodeJS.ProcessEnv> = {
    hub: {
      ...base,
      HUB_PORT: String(ports.hub),
      REATTEST_INTERVAL_MS: '2000',
      RECONNECT_MIN_MS: '100',
      RECONNECT_MAX_MS: '1000',
      ...options.hubEnv,
    },
    marketing: spokeEnvironment('marketing'),
    finance: spokeEnvironment('finance'),
  };
  function spokeEnvironment(spoke: SpokeName): NodeJS.ProcessEnv {
    const model = modelPaths[spoke];
    return {
      ...base,
      SPOKE_API_PORT: String(ports[spoke].api),
      SPOKE_ATTESTATION_PORT: String(ports[spoke].attestation),
      MODEL_CACHE_DIR: modelDir,
      LLM_THREADS: '1',
      JOBS_ENABLED: 'false',
      ...(model === null ? {} : { MODEL_PATH: model }),
      ...options.spokeEnv,
    };
  }
  const scripts: Record<ProcessName, string> = {
    hub: 'hub/main.ts',
    marketing: 'spoke_marketing/main.ts',
    finance: 'spoke_finance/main.ts',
  };
  const logFiles: Record<ProcessName, string> = {
    hub: join(logDir, 'hub.log'),
    marketing: join(logDir, 'marketing.log'),
    finance: join(logDir, 'finance.log'),
  };
  const children = new Map<ProcessName, Child>();
  let closed = false;
  // If the test process exits without close() (a crash, a killed worker), do not leave the children running.
  const killOnExit = (): void => {
    for (const child of children.values()) child.process.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  function start(name: ProcessName): void {
    if (children.has(name)) throw new Error(`${name} is already running`);
    const log = createWriteStream(logFiles[name], { flags: 'a' });
    const child = spawn(process.execPath, ['--import', 'tsx', scripts[name]], {
      cwd: REPO_ROOT,
      env: environments[name],
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    children.set(name, { process: child, log, exited });
  }

  async function stop(name: ProcessName, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = children.get(name);
    if (child === undefined) return;
    children.delete(name);
    if (child.process.exitCode === null && child.process.signalCode === null) {
      child.process.kill(signal);
      const timer = setTimeout(() => child.process.kill('SIGKILL'), 15_000);
      await child.exited;
      clearTimeout(timer);
    }
    // Let the pipes drain into the log before closing it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise<void>((resolve) => child.log.end(() => resolve()));
  }

  async function readLog(name: ProcessName): Promise<string> {
    return readFile(logFiles[name], 'utf8').catch(() => '');
  }

  async function logTails(lines = 25): Promise<string> {
    const parts: string[] = [];
    for (const name of ['hub', 'marketing', 'finance'] as const) {
      const text = await readLog(name);
      const child = children.get(name);
      const state =
        child === undefined
          ? 'stopped'
          : child.process.exitCode !== null || child.process.signalCode !== null
            ? `exited (${child.process.signalCode ?? `code ${child.process.exitCode}`})`
            : `running pid ${child.process.pid}`;
      parts.push(`--- ${name} [${state}] ${logFiles[name]}\n${text.split('\n').slice(-lines).join('\n')}`);
    }
    return parts.join('\n');
  }

  const auth = { authorization: `Bearer ${enrolment.apiKey}` };
  const hubUrl = `http://127.0.0.1:${ports.hub}`;

  async function hub(
    path: string,
    init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<HubResponse> {
    const response = await fetch(`${hubUrl}${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        ...auth,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(240_000),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body };
  }

  async function spokeRows(): Promise<SpokeRow[]> {
    const answer = await hub('/v1/spokes');
    if (answer.status !== 200) throw new Error(`GET /v1/spokes answered ${answer.status}`);
    return (answer.body as { spokes: SpokeRow[] }).spokes;
  }

  async function waitForSpoke(spoke: SpokeName, status: string, timeoutMs = 60_000): Promise<SpokeRow> {
    let last: SpokeRow | undefined;
    return waitFor(
      async () => {
        last = (await spokeRows()).find((row) => row.spoke === spoke);
        if (last === undefined || last.status !== status) return undefined;
        return status !== 'affirming' || last.routable ? last : undefined;
      },
      `${spoke} ${status}${status === 'affirming' ? ' and routable' : ''}`,
      { timeoutMs, describe: () => JSON.stringify(last ?? 'no row'), extra: () => logTails() },
    );
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    await Promise.all([...children.keys()].map((name) => stop(name)));
    process.off('exit', killOnExit);
    if (process.env.AGENTHUB_E2E_KEEP !== '1') await rm(stateDir, { recursive: true, force: true });
  }

  try {
    start('marketing');
    start('finance');
    start('hub');
    const readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
    const exitedChild = (): string | undefined => {
      for (const [name, child] of children) {
        if (child.process.exitCode !== null || child.process.signalCode !== null) {
          return `${name} exited during start-up (${child.process.signalCode ?? `code ${child.process.exitCode}`})`;
        }
      }
      return undefined;
    };
    for (const spoke of SPOKES) {
      let last: SpokeRow | undefined;
      const codeChanged = (): string | undefined =>
        last?.reasons.includes('meas.code.mismatch') === true
          ? `${spoke}'s code changed after enrolment (${JSON.stringify(last)})`
          : undefined;
      await waitFor(
        async () => {
          last = (await spokeRows()).find((row) => row.spoke === spoke);
          return last?.status === 'affirming' && last.routable ? last : undefined;
        },
        `${spoke} affirming and routable`,
        {
          timeoutMs: readyTimeoutMs,
          describe: () => JSON.stringify(last ?? 'no answer from /v1/spokes'),
          extra: () => logTails(40),
          failIf: () => exitedChild() ?? codeChanged(),
        },
      ).catch((error: unknown) => {
        const changed = codeChanged();
        throw changed === undefined ? error : new CodeChangedDuringStart(changed);
      });
    }
    // Chat intent routing and the hub's card need each spoke's card, which the hub fetches after the link is
    // up (retrying while a spoke is busy starting): wait until the hub card lists both spokes' skills.
    let tenants: string[] = [];
    await waitFor(
      async () => {
        tenants = await readCardTenants(hubUrl, AbortSignal.timeout(5_000));
        return SPOKES.every((spoke) => tenants.includes(spoke)) ? tenants : undefined;
      },
      'the hub card listing every spoke’s skills',
      { timeoutMs: readyTimeoutMs, describe: () => `tenants with skills: ${tenants.join(', ') || 'none'}` },
    );
  } catch (error) {
    await close();
    throw error;
  }

  return {
    stateDir,
    hubUrl,
    apiKey: enrolment.apiKey,
    logFiles,
    ports,
    modelPaths,
    spokes: spokeRows,
    waitForSpoke,
    hub,
    a2a: (method, params) =>
      hub('/a2a', {
        body: { jsonrpc: '2.0', id: randomUUID(), method, params },
        headers: { 'a2a-version': '1.0' },
      }),
    readLog,
    logTails,
    stop,
    start,
    close,
    [Symbol.asyncDispose]: close,
  };
}
