// `agenthub enrol`: creates (or reuses) the keys, trust store and reference values of the hub and the spokes
// in a state directory. `agenthub up` runs the same preparation before starting the processes; containers
// run it once as a setup step so the measurements come from the built image and the mounted model.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { enrolLocal, type Enrolment, type EnrolmentSpoke } from '../enrolment.js';
import { AppError, errorMessage } from '../errors.js';
import { LOCAL_SPOKES, lockfilePath, resolveStateDir, spokeCodePaths } from '../layout.js';
import { DEFAULT_MODEL_URI, isRemoteModel, resolveModelFile } from '../llm.js';
import type { CliCommand, CliIo } from './io.js';

/** What to enrol: the state directory, model settings and spoke addresses. */
export interface EnrolmentRequest {
  readonly stateDir: string;
  /** Marketing model: a path or `hf:` URI; the finance model is optional. */
  readonly models: Readonly<Record<string, string | undefined>>;
  /** Spoke name → host the hub dials (a DNS name may resolve to several replicas). */
  readonly hosts: Readonly<Record<string, string>>;
  /** The spokes' `AGENT_MAX_MEMORY_MB`, recorded in the config reference values. */
  readonly agentMaxMemoryMb: number;
  /** Accept the code and model on disk now: measure every reference value afresh (`--reenrol`). */
  readonly remeasure?: boolean;
}

/** A spoke as enrolled, with the local model file it will load (null when none could be had). */
export type PreparedSpoke = EnrolmentSpoke & { readonly modelPath: string | null };

/** Reads a port number from the environment, or the default; CONFIG_INVALID names a bad value. */
export function portFromEnv(env: CliIo['env'], name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new AppError('CONFIG_INVALID', `${name} must be a port number from 1 to 65535, got "${raw}"`);
  }
  return port;
}

/**
 * How long a start waits for the model registry before going on without the model: offline machines must
 * still have their spokes attested within seconds (the registry lookup, not the download, is bounded).
 */
const REGISTRY_TIMEOUT_MS = 5_000;

/**
 * Turns a model setting into a local file, downloading an `hf:` URI into the cache once (with progress on
 * stderr). When the model cannot be had (offline, wrong path) the system still starts without it and says
 * why: the spoke's /readyz reports the reason and its deterministic skills still answer.
 */
async function obtainModel(
  io: CliIo,
  spoke: string,
  setting: string,
  cacheDir: string,
): Promise<string | null> {
  try {
    // A local path is relative to the command's working directory; a URI passes through.
    return await resolveModelFile(isRemoteModel(setting) ? setting : resolve(io.cwd, setting), {
      cacheDir,
      signal: io.signal,
      registryTimeoutMs: REGISTRY_TIMEOUT_MS,
      onProgress: (downloaded, total) => {
        const percent = total > 0 ? ((downloaded / total) * 100).toFixed(1) : '?';
        io.stderr(`\r${spoke}: downloading model ${percent}% (${Math.round(downloaded / 1e6)} MB)`);
      },
    });
  } catch (error) {
    io.stderr(`${spoke}: no model: ${errorMessage(error)}\n`);
    return null;
  }
}

/** Resolves the models and enrols every local spoke; returns the enrolment and the spokes as enrolled. */
export async function prepareEnrolment(
  io: CliIo,
  request: EnrolmentRequest,
): Promise<{ enrolment: Enrolment; spokes: PreparedSpoke[] }> {
  await mkdir(request.stateDir, { recursive: true, mode: 0o700 });
  const cacheDir = join(request.stateDir, 'models');
  const spokes: PreparedSpoke[] = [];
  for (const spoke of LOCAL_SPOKES) {
    const upper = spoke.name.toUpperCase();
    const setting = request.models[spoke.name];
    const modelPath = setting === undefined ? null : await obtainModel(io, spoke.name, setting, cacheDir);
    spokes.push({
      name: spoke.name,
      host: request.hosts[spoke.name] ?? '127.0.0.1',
      apiPort: portFromEnv(io.env, `${upper}_API_PORT`, spoke.apiPort),
      attestationPort: portFromEnv(io.env, `${upper}_ATTESTATION_PORT`, spoke.attestationPort),
      measurement: {
        modelPath,
        codePaths: spokeCodePaths(spoke.name),
        lockfilePath: lockfilePath(),
        agentMaxMemoryMb: request.agentMaxMemoryMb,
        ...(io.env.IMAGE_DIGEST === undefined ? {} : { imageDigest: io.env.IMAGE_DIGEST }),
      },
      modelPath,
    });
  }
  const enrolment = await enrolLocal(request.stateDir, spokes, { remeasure: request.remeasure === true });
  return { enrolment, spokes };
}

/**
 * Reads the options `up` and `enrol` share; on bad options writes the reason and `usage` to stderr and
 * returns null (the command then exits with 2).
 */
export function parseEnrolmentOptions(io: CliIo, usage: string): EnrolmentRequest | null {
  try {
    return readEnrolmentOptions(io);
  } catch (error) {
    io.stderr(`${(error as Error).message}\n${usage}`);
    return null;
  }
}

function readEnrolmentOptions(io: CliIo): EnrolmentRequest {
  const { values } = parseArgs({
    args: [...io.argv],
    options: {
      model: { type: 'string' },
      'finance-model': { type: 'string' },
      'state-dir': { type: 'string' },
      host: { type: 'string', multiple: true },
      reenrol: { type: 'boolean' },
    },
  });
  const hosts: Record<string, string> = {};
  for (const pair of values.host ?? []) {
    const [name, host] = pair.split('=');
    if (name === undefined || host === undefined || !LOCAL_SPOKES.some((spoke) => spoke.name === name)) {
      throw new AppError(
        'BAD_REQUEST',
        `--host takes SPOKE=HOST with SPOKE one of ${LOCAL_SPOKES.map((s) => s.name).join(', ')}`,
      );
    }
    hosts[name] = host;
  }
  const memory = Number(io.env.AGENT_MAX_MEMORY_MB ?? '7000');
  if (!Number.isInteger(memory) || memory <= 0) {
    throw new AppError(
      'CONFIG_INVALID',
      `AGENT_MAX_MEMORY_MB must be a positive whole number of MB, got "${io.env.AGENT_MAX_MEMORY_MB}"`,
    );
  }
  return {
    stateDir: resolveStateDir(io.cwd, values['state-dir'], io.env.AGENTHUB_STATE_DIR),
    models: {
      marketing: values.model ?? io.env.MODEL_PATH ?? DEFAULT_MODEL_URI,
      finance: values['finance-model'] ?? io.env.FINANCE_MODEL_PATH,
    },
    hosts,
    agentMaxMemoryMb: memory,
    remeasure: values.reenrol === true,
  };
}

const USAGE =
  'usage: agenthub enrol [--state-dir DIR] [--model FILE|hf:URI] [--finance-model FILE|hf:URI] [--host SPOKE=HOST]… [--reenrol]\n' +
  '  --reenrol  accept the code and model on disk now (after changing them on purpose): new reference values, same keys\n';

/** `agenthub enrol`. */
export const enrolCommand: CliCommand = async (io) => {
  const request = parseEnrolmentOptions(io, USAGE);
  if (request === null) return 2;
  const { enrolment, spokes } = await prepareEnrolment(io, request);
  io.stdout(
    `${enrolment.created ? 'enrolled' : enrolment.reenrolled.length > 0 ? `re-measured ${enrolment.reenrolled.join(', ')}` : 'reusing the enrolment'} in ${enrolment.stateDir}\n`,
  );
  for (const spoke of spokes) {
    io.stdout(
      `  ${spoke.name.padEnd(10)} ${spoke.host}:${spoke.apiPort} (attestation ${spoke.attestationPort}) model ${spoke.modelPath ?? 'none'}\n`,
    );
  }
  io.stdout(
    `  trust store ${enrolment.trustStoreFile}\n  reference values ${enrolment.referenceValuesFile}\n`,
  );
  return 0;
};
