// `agenthub status` (spokes and their attestation status) and `agenthub chat "…"` (ask through the hub):
// thin HTTP clients of a running hub.
import { parseArgs } from 'node:util';
import { AppError } from '../errors.js';
import { resolveStateDir } from '../layout.js';
import type { CliCommand, CliIo } from './io.js';
import { resolveHubAccess, type HubAccess } from './run_info.js';

async function hubRequest(
  access: HubAccess,
  path: string,
  init: RequestInit,
  signal: AbortSignal,
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(new URL(path, access.hubUrl), {
      ...init,
      signal,
      headers: {
        authorization: `Bearer ${access.apiKey}`,
        'content-type': 'application/json',
        ...init.headers,
      },
    });
  } catch (error) {
    throw new AppError(
      'SPOKE_UNAVAILABLE',
      `cannot reach the hub at ${access.hubUrl}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const body = (await response.json().catch(() => null)) as unknown;
  if (!response.ok) {
    const detail =
      typeof body === 'object' && body !== null && 'error' in body
        ? JSON.stringify((body as { error: unknown }).error)
        : `HTTP ${response.status}`;
    throw new AppError('UPSTREAM_ERROR', `hub answered ${response.status}: ${detail}`);
  }
  return body;
}

interface SpokeRow {
  spoke?: string;
  name?: string;
  address?: string;
  status?: string;
  reasons?: string[];
  attestedAt?: string | null;
}

function parse(io: CliIo) {
  return parseArgs({
    args: [...io.argv],
    allowPositionals: true,
    options: { 'state-dir': { type: 'string' }, json: { type: 'boolean' }, context: { type: 'string' } },
  });
}

/** `agenthub status [--json]`. */
export const statusCommand: CliCommand = async (io) => {
  const { values } = parse(io);
  const stateDir = resolveStateDir(io.cwd, values['state-dir'], io.env.AGENTHUB_STATE_DIR);
  const access = await resolveHubAccess(stateDir, io.env);
  const body = await hubRequest(access, '/v1/spokes', { method: 'GET' }, io.signal);
  if (values.json === true) {
    io.stdout(`${JSON.stringify(body, null, 2)}\n`);
    return 0;
  }
  const rows: SpokeRow[] = Array.isArray(body)
    ? (body as SpokeRow[])
    : (((body as { spokes?: SpokeRow[] }).spokes ?? []) as SpokeRow[]);
  io.stdout(`hub ${access.hubUrl}\n`);
  for (const row of rows) {
    const reasons =
      row.reasons !== undefined && row.reasons.length > 0 ? `  (${row.reasons.join(', ')})` : '';
    io.stdout(
      `  ${(row.spoke ?? row.name ?? '?').padEnd(10)} ${(row.address ?? '').padEnd(22)} ${(row.status ?? '?').padEnd(16)} ${row.attestedAt ?? ''}${reasons}\n`,
    );
  }
  return 0;
};

/** `agenthub chat "message" [--context ID] [--json]`. */
export const chatCommand: CliCommand = async (io) => {
  const { values, positionals } = parse(io);
  const message = positionals.join(' ').trim();
  if (message === '') {
    io.stderr('usage: agenthub chat "message" [--context ID] [--json]\n');
    return 2;
  }
  const stateDir = resolveStateDir(io.cwd, values['state-dir'], io.env.AGENTHUB_STATE_DIR);
  const access = await resolveHubAccess(stateDir, io.env);
  const contextId = values.context;
  const body = (await hubRequest(
    access,
    '/v1/chat',
    { method: 'POST', body: JSON.stringify({ message, ...(contextId === undefined ? {} : { contextId }) }) },
    io.signal,
  )) as { reply?: unknown; spoke?: string; taskId?: string; contextId?: string; clarification?: boolean };
  if (values.json === true) {
    io.stdout(`${JSON.stringify(body, null, 2)}\n`);
    return 0;
  }
  const reply = typeof body.reply === 'string' ? body.reply : JSON.stringify(body.reply, null, 2);
  io.stdout(
    `[${body.clarification === true ? 'hub' : (body.spoke ?? 'hub')}] ${reply}\n` +
      `(task ${body.taskId ?? '-'}, context ${body.contextId ?? '-'})\n`,
  );
  return 0;
};
