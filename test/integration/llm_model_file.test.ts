// What openLlm refuses before the native loader sees the file: malformed GGUFs (MODEL_INVALID, which would
// otherwise abort the process inside llama.cpp), missing files and offline URIs (MODEL_NOT_FOUND), and
// models over the memory budget (MODEL_TOO_LARGE) — and that this process keeps serving afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.js';
import {
  buildLlamaModelSpec,
  inspectModelFile,
  requireCompleteSummary,
  tinyModelShape,
  writeGguf,
  writeMistral7bShapeModel,
  type GgufFileSpec,
} from '../../shared/gguf.js';
import {
  defaultThreadCount,
  formatDownloadProgress,
  isRemoteModel,
  openLlm,
  type LlmOptions,
} from '../../shared/llm.js';
import { planModelMemory } from '../../shared/llm_memory.js';
import { tinyModelPath } from '../helpers/tiny_model.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'agenthub-llm-model-file-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

function options(model: string, extra: Partial<LlmOptions> = {}): LlmOptions {
  return { model, cacheDir: join(directory, 'cache'), threads: 1, gpu: false, ...extra };
}

async function openError(llmOptions: LlmOptions): Promise<AppError> {
  const outcome = await openLlm(llmOptions).then(
    async (runtime) => {
      await runtime.close();
      return new Error('expected openLlm to refuse');
    },
    (reason: unknown) => reason,
  );
  if (!(outcome instanceof AppError)) throw outcome;
  return outcome;
}

function tinySpec(): GgufFileSpec {
  return buildLlamaModelSpec(tinyModelShape());
}

function withoutKey(spec: GgufFileSpec, key: string): GgufFileSpec {
  return { ...spec, metadata: spec.metadata.filter((entry) => entry.key !== key) };
}

function withoutByteTokens(spec: GgufFileSpec): GgufFileSpec {
  return {
    ...spec,
    metadata: spec.metadata.map((entry) => {
      if (entry.key === 'tokenizer.ggml.tokens' && entry.type === 'array') {
        return {
          ...entry,
          values: entry.values.map((token) => String(token).replace(/^<0x([0-9A-F]{2})>$/, 'byte$1')),
        };
      }
      if (entry.key === 'tokenizer.ggml.token_type' && entry.type === 'array') {
        return { ...entry, values: entry.values.map((type) => (type === 6 ? 1 : type)) };
      }
      return entry;
    }),
  };
}

describe('MODEL_INVALID before native loading (these files abort llama.cpp)', () => {
  it.each([
    [
      'llama.attention.head_count',
      (spec: GgufFileSpec) => withoutKey(spec, 'llama.attention.head_count'),
      /head_count is missing/,
    ],
    [
      'llama.feed_forward_length',
      (spec: GgufFileSpec) => withoutKey(spec, 'llama.feed_forward_length'),
      /feed_forward_length is missing/,
    ],
    ['the 256 byte tokens', withoutByteTokens, /lacks 256 of the 256 byte tokens/],
  ])('refuses a GGUF without %s', async (_what, mutate, message) => {
    const path = join(directory, `broken-${Math.random().toString(36).slice(2)}.gguf`);
    await writeGguf(path, mutate(tinySpec()));
    const error = await openError(options(path));
    expect(error.code).toBe('MODEL_INVALID');
    expect(error.message).toMatch(message);
    expect(error.message).toContain(path);
  });
});

describe('model references and defaults', () => {
  it.each([
    ['hf:bartowski/Mistral-7B-Instruct-v0.3-GGUF/Mistral-7B-Instruct-v0.3-Q4_K_M.gguf', true],
    ['https://example.com/model.gguf', true],
    ['/models/model.gguf', false],
    ['models/hf-model.gguf', false],
  ])('treats %s as remote: %s', (model, remote) => {
    expect(isRemoteModel(model)).toBe(remote);
  });

  it('draws a download progress bar', () => {
    expect(formatDownloadProgress(1_840_000_000, 4_370_000_000)).toBe(
      '[########------------] 42% 1.84/4.37 GB',
    );
    expect(formatDownloadProgress(0, 0)).toBe('[--------------------] 0% 0.00/0.00 GB');
  });

  it.each([
    [1, 1],
    [2, 1],
    [3, 3],
    [8, 4],
  ])('uses %d core(s) → %d evaluation thread(s)', (cores, threads) => {
    expect(defaultThreadCount(cores)).toBe(threads);
  });
});

describe('MODEL_NOT_FOUND', () => {
  it('names the missing local path', async () => {
    const path = join(directory, 'models', 'absent.gguf');
    const error = await openError(options(path));
    expect(error.code).toBe('MODEL_NOT_FOUND');
    expect(error.message).toContain(`put the GGUF file at ${path}`);
  });

  it('names the cache path an hf: URI maps to when downloads are disabled', async () => {
    const error = await openError(
      options('hf:agenthub-test/absent-model-GGUF/absent-model.Q4_K_M.gguf', { download: false }),
    );
    expect(error.code).toBe('MODEL_NOT_FOUND');
    expect(error.message).toContain(`put the GGUF file at ${join(directory, 'cache', 'hf_agenthub-test_')}`);
    expect(error.message).toMatch(/absent-model\.Q4_K_M\.gguf$/);
  });

  it('names the cache path when the registry cannot be reached (offline or no such repository)', async () => {
    const error = await openError(
      options('hf:agenthub-test/absent-model-GGUF/absent-model.Q4_K_M.gguf', { registryTimeoutMs: 3000 }),
    );
    expect(error.code).toBe('MODEL_NOT_FOUND');
    expect(error.message).toMatch(/download failed/);
    expect(error.message).toContain(`put the GGUF file at ${join(directory, 'cache', 'hf_agenthub-test_')}`);
    expect(error.message).toMatch(/absent-model\.Q4_K_M\.gguf$/);
  });
});

describe('MODEL_TOO_LARGE before loading', () => {
  it('refuses the tiny model against a 1 MB budget', async () => {
    const error = await openError(options(await tinyModelPath(), { maxMemoryMb: 1 }));
    expect(error.code).toBe('MODEL_TOO_LARGE');
    expect(error.message).toMatch(/weights 1 MB .* budget 1 MB/);
  });

  it('estimates Mistral-7B from a header-only file and refuses it against 3000 MB', async () => {
    const path = join(directory, 'mistral-header.gguf');
    await writeMistral7bShapeModel(path, { tensorData: 'none' });
    const { summary } = await inspectModelFile(path);
    expect(() =>
      planModelMemory(requireCompleteSummary(summary), {
        maxMemoryMb: 3000,
        maxContextSize: 8192,
        minContextSize: 512,
        sequences: 1,
        embeddingContextSize: 512,
      }),
    ).toThrow(/weights 4,373 MB \+ KV cache 135 MB at the minimum context of 512 tokens/);
  });

  it('refuses a full-size (sparse) Mistral-7B-shaped file through openLlm without loading it', async () => {
    const path = join(directory, 'mistral-sparse.gguf');
    await writeMistral7bShapeModel(path, { tensorData: 'sparse' });
    const rssBefore = process.memoryUsage.rss();
    const error = await openError(options(path, { maxMemoryMb: 3000 }));
    expect(error.code).toBe('MODEL_TOO_LARGE');
    expect(error.message).toMatch(/weights 4,373 MB/);
    expect(error.message).toMatch(/budget 3,000 MB/);
    expect(error.details).toMatchObject({ budgetBytes: 3_000_000_000, minContextSize: 512 });
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(500 * 1024 * 1024);
  });
});

describe('after every refusal', () => {
  it('this same process still loads the tiny model and generates', async () => {
    const llm = await openLlm(options(await tinyModelPath(), { maxContextSize: 512 }));
    try {
      const result = await llm.generateText({ system: 'You are terse.', prompt: 'Hello.', maxTokens: 6 });
      expect(result.usage.completionTokens).toBeGreaterThan(0);
    } finally {
      await llm.close();
    }
  });
});
