// A runnable test spoke (for e2e tests and benchmarks) serving `ping`, `echo` and `sleep` through the
// shared spoke runtime; `PING_SPOKE_SKILLS` and `pingSpokeCodePaths` are exported for in-process tests.
//   SPOKE_NAME=ping SPOKE_API_PORT=0 SPOKE_ATTESTATION_PORT=0 AGENTHUB_STATE_DIR=… npx tsx test/helpers/ping_spoke_main.ts
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AppError, errorMessage } from '../../shared/errors.js';
import { REPO_ROOT } from '../../shared/layout.js';
import type { SkillDefinition } from '../../shared/skill.js';
import { runSpokeProcess } from '../../shared/spoke_runtime.js';

/** Longest `sleep` accepted, ms. */
const MAX_SLEEP_MS = 10 * 60_000;

/** Answers "pong". */
const pingSkill: SkillDefinition = {
  id: 'ping',
  name: 'Ping',
  description: 'Answers "pong"; proves the spoke is reachable.',
  tags: ['ping', 'health'],
  examples: ['ping'],
  outputSchema: { type: 'object', properties: { pong: { type: 'boolean' } }, required: ['pong'] },
  handler: () => Promise.resolve({ text: 'pong', data: { pong: true } }),
};

/** Returns its input text and data. */
const echoSkill: SkillDefinition = {
  id: 'echo',
  name: 'Echo',
  description: 'Returns the request text and data unchanged.',
  tags: ['echo', 'test'],
  examples: ['echo hello'],
  inputSchema: { type: 'object' },
  handler: (input) =>
    Promise.resolve({
      text: input.text,
      ...(input.data.length === 0 ? {} : { data: input.data.length === 1 ? input.data[0] : input.data }),
      metadata: { echoedParts: input.data.length + 1 },
    }),
};

/** Waits `{ms}` (data part) or the number in the text, honouring its signal, then answers "slept N ms". */
const sleepSkill: SkillDefinition = {
  id: 'sleep',
  name: 'Sleep',
  description:
    'Waits the given number of milliseconds, stopping at once when canceled; for cancel, deadline and kill tests.',
  tags: ['sleep', 'test'],
  examples: ['sleep 500'],
  inputSchema: {
    type: 'object',
    properties: { ms: { type: 'integer', minimum: 0, maximum: MAX_SLEEP_MS } },
    required: ['ms'],
  },
  handler: async (input, context) => {
    const fromData = input.data.find(
      (value): value is { ms: unknown } => typeof value === 'object' && value !== null && 'ms' in value,
    );
    const ms = fromData === undefined ? Number(/\d+/.exec(input.text)?.[0]) : Number(fromData.ms);
    if (!Number.isInteger(ms) || ms < 0 || ms > MAX_SLEEP_MS) {
      throw new AppError('VALIDATION_FAILED', `sleep needs an integer ms from 0 to ${MAX_SLEEP_MS}`);
    }
    context.progress(`sleeping ${ms} ms`);
    await new Promise<void>((resolveSleep, rejectSleep) => {
      const timer = setTimeout(() => {
        context.signal.removeEventListener('abort', onAbort);
        resolveSleep();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        rejectSleep(new AppError('CANCELED', 'sleep interrupted'));
      };
      if (context.signal.aborted) onAbort();
      else context.signal.addEventListener('abort', onAbort, { once: true });
    });
    return { text: `slept ${ms} ms`, data: { sleptMs: ms } };
  },
};

/** The ping spoke's skills. */
export const PING_SPOKE_SKILLS: readonly SkillDefinition[] = Object.freeze([
  pingSkill,
  echoSkill,
  sleepSkill,
]);

/**
 * What attestation measures as the ping spoke's code: the shared runtime, this file and the package manifest.
 * An enrolment for the ping spoke MUST use the same paths.
 */
export function pingSpokeCodePaths(): string[] {
  return [resolve(REPO_ROOT, 'shared'), fileURLToPath(import.meta.url), resolve(REPO_ROOT, 'package.json')];
}

async function main(): Promise<void> {
  const name = process.env.SPOKE_NAME ?? 'ping';
  await runSpokeProcess({
    name,
    description: `Test spoke "${name}": ping, echo and sleep.`,
    version: '0.1.0',
    skills: PING_SPOKE_SKILLS,
    env: process.env,
    codePaths: pingSpokeCodePaths(),
  });
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (invokedDirectly) {
  main().catch((error: unknown) => {
    process.stderr.write(`ping spoke failed to start: ${errorMessage(error)}\n`);
    process.exit(1);
  });
}
