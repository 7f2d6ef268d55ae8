// `agenthub model`: writing the generated GGUF files and its usage errors.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelCommand } from '../../shared/cli/model_command.js';
import { captureIo } from '../helpers/cli_io.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'agenthub-model-command-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIo(argv, directory);
  const code = await modelCommand(io);
  return { code, stdout: io.out.join(''), stderr: io.err.join('') };
}

describe('agenthub model', () => {
  it('writes the tiny model relative to the working directory', async () => {
    const result = await run(['tiny', '--out', 'tiny.gguf', '--seed', '3']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/120,128 bytes, 21 tensors \(Q4_0 16, F32 5\)/);
    expect((await stat(join(directory, 'tiny.gguf'))).size).toBe(120_128);
  });

  it.each([
    [[], /missing model kind/],
    [['huge', '--out', 'x.gguf'], /unknown model kind "huge"/],
    [['tiny'], /--out FILE is required/],
    [['tiny', '--out', 'x.gguf', '--seed', '1.5'], /--seed must be a whole number/],
    [['tiny', '--out', 'x.gguf', '--bogus'], /Unknown option '--bogus'/],
    [['shape', 'llama-70b', '--out', 'x.gguf'], /model shape must be one of mistral-7b/],
  ])('exits 2 with a usage message for %j', async (argv, message) => {
    const result = await run(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/usage: agenthub model tiny --out FILE/);
  });
});
