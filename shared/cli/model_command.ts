// `agenthub model`: writes the generated GGUF files — the tiny test model and the Mistral-7B-shaped
// benchmark model — so tests and benchmarks never need a downloaded model.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeMistral7bShapeModel, writeTinyModel, type GgufWriteResult } from '../gguf.js';
import type { CliCommand, CliIo } from './io.js';

const USAGE =
  'usage: agenthub model tiny --out FILE [--seed N]\n' +
  '       agenthub model shape mistral-7b --out FILE [--seed N]   (4.37 GB of random Q4_K_M weights)\n';

/** The shapes `agenthub model shape` can write. */
const SHAPES = ['mistral-7b'] as const;

class UsageError extends Error {}

function parseOptions(args: readonly string[]): { out: string; seed: number } {
  let parsed: ReturnType<
    typeof parseArgs<{ options: { out: { type: 'string' }; seed: { type: 'string' } } }>
  >;
  try {
    parsed = parseArgs({ args: [...args], options: { out: { type: 'string' }, seed: { type: 'string' } } });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { out, seed } = parsed.values;
  if (out === undefined || out === '') throw new UsageError('--out FILE is required');
  const seedNumber = seed === undefined ? 1 : Number(seed);
  if (!Number.isInteger(seedNumber) || seedNumber < 0 || seedNumber > 0xffffffff) {
    throw new UsageError(`--seed must be a whole number from 0 to 4294967295, got "${seed}"`);
  }
  return { out, seed: seedNumber };
}

function describe(result: GgufWriteResult, seconds: number): string {
  const types = Object.entries(result.tensorTypeCounts)
    .map(([type, count]) => `${type} ${count}`)
    .join(', ');
  return `wrote ${result.path}: ${result.fileBytes.toLocaleString('en-US')} bytes, ${result.tensorCount} tensors (${types}) in ${seconds.toFixed(1)} s\n`;
}

/** `agenthub model tiny|shape mistral-7b --out FILE [--seed N]`; `io.argv` is everything after `model`. */
export const modelCommand: CliCommand = async (io: CliIo) => {
  const [kind, ...rest] = io.argv;
  try {
    const started = performance.now();
    if (kind === 'tiny') {
      const { out, seed } = parseOptions(rest);
      const result = await writeTinyModel(resolve(io.cwd, out), { seed });
      io.stdout(describe(result, (performance.now() - started) / 1000));
      return 0;
    }
    if (kind === 'shape') {
      const [shape, ...options] = rest;
      if (shape === undefined || !(SHAPES as readonly string[]).includes(shape)) {
        throw new UsageError(`model shape must be one of ${SHAPES.join(', ')}, got ${shape ?? 'nothing'}`);
      }
      const { out, seed } = parseOptions(options);
      const result = await writeMistral7bShapeModel(resolve(io.cwd, out), { seed });
      io.stdout(describe(result, (performance.now() - started) / 1000));
      return 0;
    }
    throw new UsageError(kind === undefined ? 'missing model kind' : `unknown model kind "${kind}"`);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`agenthub model: ${error.message}\n${USAGE}`);
      return 2;
    }
    io.stderr(`agenthub model: ${(error as Error).message}\n`);
    return 1;
  }
};
