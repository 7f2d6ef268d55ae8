// runSpokeProcess end to end: the ping spoke started as its own OS process from an enrolment-layout state
// directory, reached over HTTP and the hub link, then stopped with SIGTERM (graceful close, exit 0).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  generateSigningKeyJwk,
  importSigningKey,
  publicJwks,
  signConnectToken,
  type SigningKey,
} from '../../shared/attestation.js';
import { REPO_ROOT } from '../../shared/layout.js';
import { createLink } from '../../shared/link.js';
import { HUB_LINK_PATH, LINK_SUBPROTOCOL, type Task } from '../../shared/protocol.js';
import { messageParams } from './spoke_runtime_helpers.js';

let stateDir: string;
let hubKey: SigningKey;
let child: ChildProcess | undefined;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'agenthub-spoke-process-'));
  await mkdir(join(stateDir, 'hub'), { recursive: true });
  await mkdir(join(stateDir, 'spokes'), { recursive: true });
  const hubJwk = await generateSigningKeyJwk();
  hubKey = await importSigningKey(hubJwk);
  await writeFile(join(stateDir, 'hub', 'hub-jwks.json'), JSON.stringify(publicJwks([hubKey])));
  await writeFile(join(stateDir, 'spokes', 'ping.jwk'), JSON.stringify(await generateSigningKeyJwk()), {
    mode: 0o600,
  });
});

afterAll(async () => {
  if (child !== undefined && child.exitCode === null && child.pid !== undefined) child.kill('SIGKILL');
  await rm(stateDir, { recursive: true, force: true });
});

/** Resolves with the first JSON log line whose msg is `message`. */
function waitForLogLine(process: ChildProcess, message: string): Promise<Record<string, unknown>> {
  return new Promise((resolveLine, rejectLine) => {
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          if (parsed.msg === message) {
            process.stdout?.off('data', onData);
            resolveLine(parsed);
            return;
          }
        } catch {
          // not a JSON line
        }
      }
    };
    process.stdout?.on('data', onData);
    process.once('exit', (code) =>
      rejectLine(new Error(`spoke exited with ${code} before logging "${message}"`)),
    );
  });
}

describe('runSpokeProcess (ping spoke as a process)', () => {
  it('starts from AGENTHUB_STATE_DIR, logs its URLs, serves HTTP and the hub link, and exits 0 on SIGTERM', async () => {
    let stderr = '';
    child = spawn(
      process.execPath,
      ['--import', 'tsx', resolve(REPO_ROOT, 'test/helpers/ping_spoke_main.ts')],
      {
        cwd: REPO_ROOT,
        env: {
          PATH: process.env.PATH,
          AGENTHUB_STATE_DIR: stateDir,
          SPOKE_API_PORT: '0',
          SPOKE_ATTESTATION_PORT: '0',
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const listening = await waitForLogLine(child, 'spoke listening').catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${stderr}`);
    });
    const apiUrl = listening.apiUrl as string;
    expect(apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${apiUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${listening.attestationUrl as string}/healthz`)).json()).toMatchObject({
      ok: true,
    });

    const token = await signConnectToken(hubKey, 'ping', 'sid-process');
    const socket = new WebSocket(`${apiUrl.replace('http', 'ws')}${HUB_LINK_PATH}`, [LINK_SUBPROTOCOL], {
      headers: { Authorization: `Bearer ${token}` },
    });
    const link = createLink(socket, {
      onRequest: () => Promise.reject(new Error('the test hub serves nothing')),
    });
    const reply = (await link.request('SendMessage', messageParams('ping', { skill: 'ping' }))) as {
      task: Task;
    };
    expect(reply.task.artifacts?.[0]?.parts[0]).toEqual({ text: 'pong' });

    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(link.closed || socket.readyState !== WebSocket.OPEN).toBe(true);
  });
});
