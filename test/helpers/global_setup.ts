// vitest global setup: runs once before all test files. Generates the tiny GGUF test model into a temporary
// directory and hands its path to the test processes through AGENTHUB_TINY_MODEL; removes it afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyModel } from '../../shared/gguf.js';

export default async function setup(): Promise<() => Promise<void>> {
  process.env.AGENTHUB_TEST = '1';
  const directory = await mkdtemp(join(tmpdir(), 'agenthub-tiny-model-'));
  const path = join(directory, 'tiny.gguf');
  await writeTinyModel(path);
  process.env.AGENTHUB_TINY_MODEL = path;
  return async () => {
    await rm(directory, { recursive: true, force: true });
  };
}
