// The tiny GGUF test model: the one global setup generated (AGENTHUB_TINY_MODEL), or a fresh one when a test
// file runs without the global setup.
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyModel } from '../../shared/gguf.js';

let generated: Promise<string> | undefined;

/** Path of the tiny model (llama architecture, 2 layers, n_embd 64, vocab 512, Q4_0, about 120 KB). */
export async function tinyModelPath(): Promise<string> {
  const fromSetup = process.env.AGENTHUB_TINY_MODEL;
  if (fromSetup !== undefined && existsSync(fromSetup)) return fromSetup;
  generated ??= (async () => {
    const directory = await mkdtemp(join(tmpdir(), 'agenthub-tiny-model-'));
    const path = join(directory, 'tiny.gguf');
    await writeTinyModel(path);
    return path;
  })();
  return generated;
}
