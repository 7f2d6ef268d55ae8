// The memory budget computed from GGUF shape numbers: KV cache per token, context choice, MODEL_TOO_LARGE.
import { describe, expect, it } from 'vitest';
import { isAppError } from '../../shared/errors.js';
import {
  BYTES_PER_MB,
  estimateModelMemory,
  kvCacheBytesPerToken,
  planModelMemory,
  type ModelMemoryShape,
} from '../../shared/llm_memory.js';

/** Mistral-7B-v0.3 Q4_K_M as the GGUF header describes it. */
const MISTRAL_7B: ModelMemoryShape = {
  path: '/models/mistral-7b.gguf',
  weightBytes: 4_372_054_016,
  contextLength: 32768,
  embeddingLength: 4096,
  blockCount: 32,
  feedForwardLength: 14336,
  headCount: 32,
  headCountKv: 8,
  vocabularySize: 32768,
};

const TINY: ModelMemoryShape = {
  path: '/models/tiny.gguf',
  weightBytes: 107_264,
  contextLength: 4096,
  embeddingLength: 64,
  blockCount: 2,
  feedForwardLength: 256,
  headCount: 4,
  headCountKv: 2,
  vocabularySize: 512,
};

const DEFAULTS = { maxContextSize: 8192, minContextSize: 512, sequences: 1, embeddingContextSize: 512 };

function tooLarge(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    expect(isAppError(error, 'MODEL_TOO_LARGE')).toBe(true);
    return error as Error;
  }
  throw new Error('expected MODEL_TOO_LARGE');
}

describe('kvCacheBytesPerToken', () => {
  it('is 128 KiB of F16 K and V per token for Mistral-7B and 256 bytes for the tiny model', () => {
    expect(kvCacheBytesPerToken(MISTRAL_7B)).toBe(128 * 1024);
    expect(kvCacheBytesPerToken(TINY)).toBe(256);
  });
});

describe('planModelMemory', () => {
  it('gives Mistral-7B its full 8192-token context within 7000 MB, near the 5.3 GiB measured', () => {
    const plan = planModelMemory(MISTRAL_7B, { ...DEFAULTS, maxMemoryMb: 7000 });
    expect(plan.contextSize).toBe(8192);
    expect(plan.estimatedBytes.total).toBeLessThanOrEqual(plan.budgetBytes);
    expect(plan.estimatedBytes.total / 2 ** 30).toBeGreaterThan(5.29);
    expect(plan.estimatedBytes.total / 2 ** 30).toBeLessThan(6);
  });

  it('chooses the largest 256-token step that fits a tighter budget', () => {
    const plan = planModelMemory(MISTRAL_7B, { ...DEFAULTS, maxMemoryMb: 5200 });
    expect(plan.contextSize % 256).toBe(0);
    expect(plan.contextSize).toBeGreaterThanOrEqual(512);
    expect(plan.contextSize).toBeLessThan(8192);
    expect(plan.estimatedBytes.total).toBeLessThanOrEqual(5200 * BYTES_PER_MB);
    const nextStep = estimateModelMemory(MISTRAL_7B, plan.contextSize + 256, DEFAULTS);
    expect(nextStep.total).toBeGreaterThan(5200 * BYTES_PER_MB);
  });

  it('counts every sequence: four sequences get a smaller context than one', () => {
    const one = planModelMemory(MISTRAL_7B, { ...DEFAULTS, maxMemoryMb: 7000, maxContextSize: 16384 });
    const four = planModelMemory(MISTRAL_7B, {
      ...DEFAULTS,
      maxMemoryMb: 7000,
      maxContextSize: 16384,
      sequences: 4,
    });
    expect(four.contextSize * 4).toBeLessThanOrEqual(one.contextSize + 256);
    expect(four.estimatedBytes.kvCache).toBeGreaterThan(one.estimatedBytes.kvCache * 0.9);
  });

  it('never exceeds the context the model was trained on', () => {
    expect(planModelMemory(TINY, { ...DEFAULTS, maxMemoryMb: 7000, maxContextSize: 65536 }).contextSize).toBe(
      4096,
    );
  });

  it('refuses Mistral-7B against 3000 MB naming weights, KV at the minimum context, overhead and budget', () => {
    const error = tooLarge(() => planModelMemory(MISTRAL_7B, { ...DEFAULTS, maxMemoryMb: 3000 }));
    expect(error.message).toMatch(/weights 4,373 MB/);
    expect(error.message).toMatch(/KV cache 135 MB at the minimum context of 512 tokens/);
    expect(error.message).toMatch(/overhead \d[\d,]* MB/);
    expect(error.message).toMatch(/budget 3,000 MB/);
  });

  it('refuses even the tiny model against a 1 MB budget', () => {
    expect(tooLarge(() => planModelMemory(TINY, { ...DEFAULTS, maxMemoryMb: 1 })).message).toMatch(
      /budget 1 MB/,
    );
  });
});
