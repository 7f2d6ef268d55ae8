// The run file `agenthub up` writes into the state directory (hub URL, API key file, child processes), so
// `agenthub status` and `agenthub chat` find the running system without flags.
import { readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AppError } from '../errors.js';

const RunInfoSchema = z.object({
  hubUrl: z.string().url(),
  apiKeyFile: z.string(),
  startedAt: z.string(),
  processes: z.array(z.object({ name: z.string(), pid: z.number().int(), logFile: z.string() })),
});

/** What a running local system looks like from outside. */
export type RunInfo = z.infer<typeof RunInfoSchema>;

/** Path of the run file in a state directory. */
export function runInfoPath(stateDir: string): string {
  return join(stateDir, 'run.json');
}

/** Writes the run file atomically. */
export async function writeRunInfo(stateDir: string, info: RunInfo): Promise<void> {
  const path = runInfoPath(stateDir);
  await writeFile(`${path}.tmp`, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

/** How a client reaches the hub: URL and API key. */
export interface HubAccess {
  readonly hubUrl: string;
  readonly apiKey: string;
}

/**
 * Finds the hub: `AGENTHUB_HUB_URL` + `AGENTHUB_API_KEY` when set, else the run file of `stateDir`.
 * Throws `NOT_FOUND` saying how to start the system when neither is there.
 */
export async function resolveHubAccess(
  stateDir: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<HubAccess> {
  if (env.AGENTHUB_HUB_URL !== undefined && env.AGENTHUB_API_KEY !== undefined) {
    return { hubUrl: env.AGENTHUB_HUB_URL, apiKey: env.AGENTHUB_API_KEY };
  }
  let text: string;
  try {
    text = await readFile(runInfoPath(stateDir), 'utf8');
  } catch {
    throw new AppError(
      'NOT_FOUND',
      `no running system found in ${stateDir} (start it with "npm start" or "npx agenthub up", or set AGENTHUB_HUB_URL and AGENTHUB_API_KEY)`,
    );
  }
  const info = RunInfoSchema.parse(JSON.parse(text));
  const apiKey = (await readFile(info.apiKeyFile, 'utf8')).trim();
  return { hubUrl: env.AGENTHUB_HUB_URL ?? info.hubUrl, apiKey: env.AGENTHUB_API_KEY ?? apiKey };
}
