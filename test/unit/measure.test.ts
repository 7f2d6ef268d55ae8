// Measurements of model, code, lock file and config facts, and the caching measurer's background re-hash that
// catches a flipped byte even when size and mtime were restored (ATTESTATION.md §3.6 R01, §6.3 case 3).
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EMPTY_SHA256,
  configDigest,
  createMeasurer,
  measure,
  measureCode,
  normaliseImageDigest,
  type MeasurementSpec,
  type Measurer,
} from '../../shared/measure.js';

let dir: string;
let spec: MeasurementSpec;

const sha = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

function modelBytes(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  let state = 12345;
  for (let i = 0; i < size; i += 1) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agenthub-measure-'));
  await mkdir(join(dir, 'app', 'lib'), { recursive: true });
  await mkdir(join(dir, 'app', 'node_modules', 'x'), { recursive: true });
  await mkdir(join(dir, 'app', '.git'), { recursive: true });
  await writeFile(join(dir, 'app', 'main.js'), 'console.log(1);\n');
  await writeFile(join(dir, 'app', 'lib', 'util.js'), 'export const x = 1;\n');
  await writeFile(join(dir, 'app', 'node_modules', 'x', 'index.js'), 'ignored');
  await writeFile(join(dir, 'app', '.git', 'HEAD'), 'ignored');
  await writeFile(join(dir, 'package-lock.json'), '{"lockfileVersion":3}\n');
  await writeFile(join(dir, 'model.gguf'), modelBytes(256 * 1024));
  await writeFile(join(dir, 'memory.max'), '8589934592\n');
  spec = {
    modelPath: join(dir, 'model.gguf'),
    codePaths: [join(dir, 'app')],
    lockfilePath: join(dir, 'package-lock.json'),
    agentMaxMemoryMb: 7000,
    imageDigest: `sha256:${'e'.repeat(64)}`,
    cgroupMemoryMaxPath: join(dir, 'memory.max'),
  };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Flips one byte of `path` in place and restores its atime and mtime, as a careful attacker would. */
async function flipByteKeepingMtime(path: string, offset: number): Promise<void> {
  const before = await stat(path);
  const bytes = await readFile(path);
  bytes[offset] = (bytes[offset] as number) ^ 0x01;
  await writeFile(path, bytes);
  await utimes(path, before.atime, before.mtime);
  const after = await stat(path);
  expect(after.size).toBe(before.size);
  expect(after.mtimeMs).toBe(before.mtimeMs);
}

async function waitFor<T>(probe: () => T, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = probe();
    if (done(value)) return value;
    if (Date.now() - started > timeoutMs) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('measure()', () => {
  it('hashes the model by streaming, the lock file, and reports config facts with their digest', async () => {
    const m = await measure(spec);
    expect(m.model).toEqual({ alg: 'sha-256', digest: sha(modelBytes(256 * 1024)), size: 256 * 1024 });
    expect(m.deps).toEqual({ alg: 'sha-256', digest: sha('{"lockfileVersion":3}\n') });
    expect(m.config.facts).toEqual({
      mem_max_bytes: 8589934592,
      agent_max_memory_mb: 7000,
      uid: process.getuid?.() ?? -1,
      inspector: false,
    });
    expect(m.config.digest).toBe(configDigest(m.config.facts).digest);
    expect(m.image).toEqual({ alg: 'sha-256', digest: 'e'.repeat(64), selfReported: true });
  });

  it('hashes the code as a sorted manifest of "path NUL sha256" lines, skipping node_modules and .git', async () => {
    const manifest = [
      `app/lib/util.js\0${sha('export const x = 1;\n')}\n`,
      `app/main.js\0${sha('console.log(1);\n')}\n`,
    ].join('');
    expect(await measureCode(spec.codePaths)).toEqual({ alg: 'sha-256', digest: sha(manifest) });
  });

  it('changes the code digest when a file is renamed, even with identical contents', async () => {
    const before = await measureCode(spec.codePaths);
    await symlink(join(dir, 'app', 'main.js'), join(dir, 'app', 'alias.js'));
    const after = await measureCode(spec.codePaths);
    await rm(join(dir, 'app', 'alias.js'));
    expect(after.digest).not.toBe(before.digest);
    expect((await measureCode(spec.codePaths)).digest).toBe(before.digest);
  });

  it('uses the empty-string digest and size 0 without a model, null memory.max when it reads "max"', async () => {
    await writeFile(join(dir, 'memory.max.unlimited'), 'max\n');
    const m = await measure({
      ...spec,
      modelPath: null,
      imageDigest: undefined,
      cgroupMemoryMaxPath: join(dir, 'memory.max.unlimited'),
    });
    expect(m.model).toEqual({ alg: 'sha-256', digest: EMPTY_SHA256, size: 0 });
    expect(EMPTY_SHA256).toBe(sha(''));
    expect(m.image.digest).toBe(EMPTY_SHA256);
    expect(m.config.facts.mem_max_bytes).toBeNull();
    const absent = await measure({ ...spec, cgroupMemoryMaxPath: join(dir, 'no-such-file') });
    expect(absent.config.facts.mem_max_bytes).toBeNull();
  });

  it('fails with MODEL_NOT_FOUND for a missing model and CONFIG_INVALID for a missing lock file or code path', async () => {
    await expect(measure({ ...spec, modelPath: join(dir, 'nope.gguf') })).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
    });
    await expect(measure({ ...spec, lockfilePath: join(dir, 'nope.json') })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
    await expect(measure({ ...spec, codePaths: [join(dir, 'nope')] })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });

  it('normalises image digests and refuses malformed ones', () => {
    expect(normaliseImageDigest(`SHA256:${'A'.repeat(64)}`)).toBe('a'.repeat(64));
    expect(() => normaliseImageDigest('sha256:xyz')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});

describe('createMeasurer()', () => {
  const INTERVAL_MS = 400;
  let measurer: Measurer;

  afterAll(() => {
    measurer.stop();
  });

  it('detects one byte flipped with size and mtime restored within its re-hash interval, and recovers on restore', async () => {
    const modelPath = join(dir, 'tamper.gguf');
    await writeFile(modelPath, modelBytes(64 * 1024));
    // Whole-second times, so restoring them through utimes is exact (it would round sub-millisecond mtimes).
    await utimes(modelPath, 1_700_000_000, 1_700_000_000);
    measurer = createMeasurer({ ...spec, modelPath }, { remeasureIntervalMs: INTERVAL_MS });
    const pristine = (await measurer.current()).model.digest;
    measurer.start();

    await flipByteKeepingMtime(modelPath, 40_000);
    const flippedAt = Date.now();
    // The background re-hash alone (peek() does no stat check) must notice within one interval plus slack.
    const seen = await waitFor(
      () => measurer.peek()?.model.digest,
      (d) => d !== pristine,
      INTERVAL_MS * 3,
    );
    expect(seen).not.toBe(pristine);
    expect(Date.now() - flippedAt).toBeLessThan(INTERVAL_MS * 3);
    expect((await measurer.current()).model.digest).toBe(seen);

    await flipByteKeepingMtime(modelPath, 40_000);
    const restored = await waitFor(
      () => measurer.peek()?.model.digest,
      (d) => d === pristine,
      INTERVAL_MS * 3,
    );
    expect(restored).toBe(pristine);
    measurer.stop();
  });

  it('re-hashes at once when the model stat changes and current() awaits that forced hash', async () => {
    const modelPath = join(dir, 'forced.gguf');
    await writeFile(modelPath, modelBytes(32 * 1024));
    measurer = createMeasurer({ ...spec, modelPath }, { remeasureIntervalMs: 60_000 });
    const before = (await measurer.current()).model;
    await writeFile(modelPath, modelBytes(32 * 1024 + 1));
    const after = (await measurer.current()).model;
    expect(after.size).toBe(32 * 1024 + 1);
    expect(after.digest).not.toBe(before.digest);
  });

  it('serves cached measurements without re-hashing while nothing changed', async () => {
    const modelPath = join(dir, 'cached.gguf');
    await writeFile(modelPath, modelBytes(16 * 1024));
    measurer = createMeasurer({ ...spec, modelPath }, { remeasureIntervalMs: 60_000 });
    const first = await measurer.current();
    expect(await measurer.current()).toBe(first);
  });

  it('drops cached measurements when a background re-hash fails, so current() reports the failure', async () => {
    const modelPath = join(dir, 'vanishing.gguf');
    await writeFile(modelPath, modelBytes(8 * 1024));
    const errors: unknown[] = [];
    measurer = createMeasurer(
      { ...spec, modelPath },
      { remeasureIntervalMs: 100, onError: (e) => errors.push(e) },
    );
    await measurer.current();
    measurer.start();
    await rm(modelPath);
    await waitFor(
      () => errors.length,
      (n) => n > 0,
      1000,
    );
    expect(measurer.peek()).toBeNull();
    await expect(measurer.current()).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    measurer.stop();
  });

  it('refuses a non-positive interval', () => {
    expect(() => createMeasurer(spec, { remeasureIntervalMs: 0 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
