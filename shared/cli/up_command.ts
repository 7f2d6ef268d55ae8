// `agenthub up`: the one-command local start. Enrols the spokes on first start (keys and reference values
// in the state directory), starts the hub and each spoke as separate processes, waits until the spokes are
// attested, prints the URLs and the API key, and stops everything cleanly on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_HUB_PORT, REPO_ROOT } from '../layout.js';
import { parseEnrolmentOptions, portFromEnv, prepareEnrolment } from './enrol_command.js';
import type { CliCommand } from './io.js';
import { runInfoPath, writeRunInfo } from './run_info.js';

const USAGE =
  'usage: agenthub up [--model FILE|hf:URI] [--finance-model FILE|hf:URI] [--state-dir DIR] [--host SPOKE=HOST]… [--reenrol]\n';
/** How long `up` waits for every spoke to be attested before it reports what is missing. */
const ATTESTATION_WAIT_MS = 60_000;

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly logFile: string;
}

function startChild(name: string, script: string, env: NodeJS.ProcessEnv, logDir: string): Child {
  const logFile = join(logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return { name, process: child, logFile };
}

async function stopChildren(children: readonly Child[]): Promise<void> {
  const exits = children.map(
    (child) =>
      new Promise<void>((done) => {
        if (child.process.exitCode !== null || child.process.signalCode !== null) return done();
        child.process.once('exit', () => done());
        child.process.kill('SIGTERM');
      }),
  );
  const timeout = sleep(15_000).then(() => {
    for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
  });
  await Promise.race([Promise.all(exits), timeout]);
}

interface SpokeStatusRow {
  spoke: string;
  status: string;
  routable?: boolean;
  reasons?: string[];
}

/** The hub's `/v1/spokes` rows, or why they could not be read (the hub may still be starting). */
async function readSpokes(
  hubUrl: string,
  apiKey: string,
  signal: AbortSignal,
): Promise<{ rows: SpokeStatusRow[] } | { problem: string }> {
  try {
    const response = await fetch(new URL('/v1/spokes', hubUrl), {
      headers: { authorization: `Bearer ${apiKey}` },
      signal,
    });
    if (!response.ok) return { problem: `GET /v1/spokes answered HTTP ${response.status}` };
    const body = (await response.json()) as { spokes?: SpokeStatusRow[] } | SpokeStatusRow[];
    return { rows: Array.isArray(body) ? body : (body.spokes ?? []) };
  } catch (error) {
    return { problem: `the hub did not answer: ${(error as Error).message}` };
  }
}

/** The spokes whose skills the hub's agent card lists (each skill is tagged `tenant:<spoke>`). */
export async function readCardTenants(hubUrl: string, signal: AbortSignal): Promise<string[]> {
  try {
    const response = await fetch(new URL('/.well-known/agent-card.json', hubUrl), { signal });
    if (!response.ok) return [];
    const card = (await response.json()) as { skills?: { tags?: string[] }[] };
    return [
      ...new Set(
        (card.skills ?? []).flatMap((skill) =>
          (skill.tags ?? []).filter((tag) => tag.startsWith('tenant:')).map((tag) => tag.slice(7)),
        ),
      ),
    ];
  } catch {
    return [];
  }
}

/** `agenthub up`. */
export const upCommand: CliCommand = async (io) => {
  const request = parseEnrolmentOptions(io, USAGE);
  if (request === null) return 2;
  const { stateDir } = request;
  const { enrolment, spokes } = await prepareEnrolment(io, request);
  io.stdout(
    enrolment.created ? `enrolled hub and spokes in ${stateDir}\n` : `reusing the enrolment in ${stateDir}\n`,
  );
  const logDir = join(stateDir, 'logs');
  await mkdir(logDir, { recursive: true, mode: 0o700 });
  const hubPort = portFromEnv(io.env, 'HUB_PORT', DEFAULT_HUB_PORT);
  const maxMemoryMb = String(request.agentMaxMemoryMb);

  // Children get the caller's environment minus the model settings, which are per spoke.
  const { MODEL_PATH: _marketingModel, FINANCE_MODEL_PATH: _financeModel, ...inherited } = io.env;
  const baseEnv: NodeJS.ProcessEnv = {
    ...inherited,
    AGENTHUB_STATE_DIR: stateDir,
    AGENT_MAX_MEMORY_MB: maxMemoryMb,
  };
  const children: Child[] = [];
  // Local links are cheap to retry: a spoke that is still starting (an embedded database blocks its event
  // loop for seconds) is linked within about a second of being able to answer.
  children.push(
    startChild(
      'hub',
      'hub/main.ts',
      { RECONNECT_MAX_MS: '1000', HUB_TASK_STORE: 'database', ...baseEnv, HUB_PORT: String(hubPort) },
      logDir,
    ),
  );
  for (const spoke of spokes) {
    children.push(
      startChild(
        spoke.name,
        `spoke_${spoke.name}/main.ts`,
        {
          ...baseEnv,
          SPOKE_API_PORT: String(spoke.apiPort),
          SPOKE_ATTESTATION_PORT: String(spoke.attestationPort),
          // The spokes' own HTTP APIs take the same API key as the hub.
          SPOKE_API_KEY_FILE: join(stateDir, 'api-key'),
          MODEL_CACHE_DIR: join(stateDir, 'models'),
          ...(spoke.modelPath === null ? {} : { MODEL_PATH: spoke.modelPath }),
        },
        logDir,
      ),
    );
  }

  const hubUrl = `http://127.0.0.1:${hubPort}`;
  await writeRunInfo(stateDir, {
    hubUrl,
    apiKeyFile: join(stateDir, 'api-key'),
    startedAt: new Date().toISOString(),
    processes: children.map((child) => ({
      name: child.name,
      pid: child.process.pid ?? -1,
      logFile: child.logFile,
    })),
  });

  let unexpectedExit: string | null = null;
  // One signal for "stop everything": Ctrl-C or a child that died. (Not AbortSignal.any: on Node 20 a
  // combined signal nothing else references can be garbage-collected and never fire.)
  const stopped = new AbortController();
  io.signal.addEventListener('abort', () => stopped.abort(), { once: true });
  // `up` owns its process tree, so it owns the process's signals too: libraries' exit-on-signal hooks
  // (signal-exit, loaded by tsx, re-raises SIGINT when it miscounts listeners; ipull exits on SIGINT) would
  // end this process before it stops its children. Ctrl-C and SIGTERM only start the orderly stop.
  const stopOnSignal = (): void => stopped.abort();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, stopOnSignal);
  }
  for (const child of children) {
    child.process.once('exit', (code, signal) => {
      if (stopped.signal.aborted) return;
      unexpectedExit = `${child.name} exited (${signal ?? `code ${code}`}); see ${child.logFile}`;
      stopped.abort();
    });
  }

  io.stdout(
    [
      `hub        ${hubUrl}   (chat: POST ${hubUrl}/v1/chat, A2A: POST ${hubUrl}/a2a)`,
      ...spokes.map(
        (spoke) =>
          `${spoke.name.padEnd(10)} http://127.0.0.1:${spoke.apiPort}   attestation http://127.0.0.1:${spoke.attestationPort}   model ${spoke.modelPath ?? 'none'}`,
      ),
      `API key    ${enrolment.apiKey}`,
      `logs       ${logDir}`,
      'waiting for the spokes to be attested and ready… (Ctrl-C stops everything)',
      '',
    ].join('\n'),
  );

  const waitSignal = stopped.signal;
  const deadline = Date.now() + ATTESTATION_WAIT_MS;
  let last: SpokeStatusRow[] | null = null;
  // Ready means attested (affirming) and routable (connected, not loading its model, under capacity), and
  // the hub knows each spoke's skills from its card (chat routes by them).
  let tenantsWithSkills: readonly string[] = [];
  let hubProblem: string | null = null;
  const allReady = (rows: SpokeStatusRow[] | null): boolean =>
    rows !== null &&
    spokes.every(
      (spoke) =>
        tenantsWithSkills.includes(spoke.name) &&
        rows.some((row) => row.spoke === spoke.name && row.status === 'affirming' && row.routable !== false),
    );
  while (!waitSignal.aborted && Date.now() < deadline) {
    const read = await readSpokes(hubUrl, enrolment.apiKey, waitSignal);
    if ('rows' in read) {
      last = read.rows;
      hubProblem = null;
    } else hubProblem = read.problem;
    tenantsWithSkills = await readCardTenants(hubUrl, waitSignal);
    if (allReady(last)) break;
    await sleep(500, undefined, { signal: waitSignal }).catch(() => undefined);
  }
  if (!waitSignal.aborted) {
    for (const spoke of spokes) {
      const rows = last?.filter((row) => row.spoke === spoke.name) ?? [];
      const described =
        rows.length === 0
          ? `not reported${hubProblem === null ? '' : ` (${hubProblem})`}`
          : rows
              .map((row) => `${row.status}${row.reasons?.length ? ` (${row.reasons.join(', ')})` : ''}`)
              .join(', ');
      const skills = tenantsWithSkills.includes(spoke.name)
        ? ''
        : ' — its skills are not yet known to the hub';
      io.stdout(`${spoke.name.padEnd(10)} ${described}${skills}\n`);
    }
    io.stdout(
      allReady(last)
        ? 'ready. Try: npx agenthub sample q4 --out q4.csv && npx agenthub import metrics q4.csv && npx agenthub chat "How did our Q4 campaigns do?"\n'
        : `not every spoke is ready after ${ATTESTATION_WAIT_MS / 1000} s (see above); the hub keeps trying — npx agenthub status shows progress\n`,
    );
    await new Promise<void>((done) => waitSignal.addEventListener('abort', () => done(), { once: true }));
  }

  io.stdout('\nstopping…\n');
  await stopChildren(children);
  await rm(runInfoPath(stateDir), { force: true });
  if (unexpectedExit !== null) {
    io.stderr(`agenthub up: ${unexpectedExit}\n`);
    return 1;
  }
  io.stdout('stopped.\n');
  return 0;
};
