// The LLM runtime on the real node-llama-cpp path with the generated tiny model (threads 1, CPU, no mmap):
// generation, tokenizer, grammar + validation + one retry, abort, queueing, prefix reuse, embeddings.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, isAppError } from '../../shared/errors.js';
import { openLlm, type LlmRuntime } from '../../shared/llm.js';
import { tinyModelPath } from '../helpers/tiny_model.js';

const SYSTEM = 'You are a marketing analyst. Answer with the JSON object asked for, nothing else.';
const SCHEMA = {
  type: 'object',
  properties: {
    channel: { enum: ['email', 'search', 'social'] },
    summary: { type: 'string', maxLength: 24 },
  },
  required: ['channel', 'summary'],
} as const;

interface Answer {
  readonly channel: string;
  readonly summary: string;
}

function isAnswer(value: unknown): value is Answer {
  return (
    typeof value === 'object' &&
    value !== null &&
    ['email', 'search', 'social'].includes((value as Answer).channel) &&
    typeof (value as Answer).summary === 'string'
  );
}

function acceptAnswer(value: unknown): Answer {
  if (!isAnswer(value)) throw new AppError('LLM_OUTPUT_INVALID', 'not an answer');
  return value;
}

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => new Error('expected a rejection'),
    (reason: unknown) => reason,
  );
  if (!(error instanceof AppError)) throw error;
  return error;
}

let llm: LlmRuntime;
let cacheDir: string;

beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'agenthub-llm-cache-'));
  llm = await openLlm({
    model: await tinyModelPath(),
    cacheDir,
    threads: 1,
    gpu: false,
    maxContextSize: 2048,
  });
});

afterAll(async () => {
  await llm?.close();
  await rm(cacheDir, { recursive: true, force: true });
});

describe('openLlm with the tiny model', () => {
  it('loads through node-llama-cpp within the budget and reports what it chose', () => {
    expect(llm.modelName).toContain('Mistral');
    expect(llm.info).toMatchObject({ contextSize: 2048, threads: 1, gpu: false, budgetBytes: 7_000_000_000 });
    expect(llm.info.estimatedBytes.weights).toBe(107_264);
    expect(llm.info.estimatedBytes.total).toBeLessThan(llm.info.budgetBytes);
  });

  it('generates text and reports token counts and timings', async () => {
    const result = await llm.generateText({
      system: SYSTEM,
      prompt: 'Say something about email.',
      maxTokens: 12,
    });
    expect(result.usage.completionTokens).toBeGreaterThan(0);
    expect(result.usage.completionTokens).toBeLessThanOrEqual(12);
    expect(result.usage.promptTokens).toBeGreaterThan(0);
    expect(result.usage.timeToFirstTokenMs).toBeGreaterThan(0);
    expect(result.usage.totalMs).toBeGreaterThanOrEqual(result.usage.timeToFirstTokenMs ?? 0);
    expect(result.usage.attempts).toBe(1);
  });

  it('round-trips text through the tokenizer, non-ASCII via byte tokens', () => {
    const text = 'The campaign ROI is 42% {"a": 1} ünïcødé';
    const tokens = llm.tokenize(text);
    expect(tokens.length).toBeGreaterThan(10);
    expect(llm.detokenize(tokens)).toBe(text);
  });
});

describe('generateStructured', () => {
  it('returns grammar-constrained JSON that passes our validator', async () => {
    const chunks: string[] = [];
    const result = await llm.generateStructured({
      system: SYSTEM,
      prompt: 'Which channel had the best ROI?',
      schema: SCHEMA,
      validate: acceptAnswer,
      maxTokens: 120,
      onTextChunk: (text) => chunks.push(text),
    });
    expect(isAnswer(result.value)).toBe(true);
    expect(chunks.join('')).toBe(result.rawText);
    expect(JSON.parse(result.rawText)).toEqual(result.value);
    expect(result.usage.attempts).toBe(1);
  });

  it('retries exactly once when our validator rejects the first answer', async () => {
    let calls = 0;
    const result = await llm.generateStructured({
      system: SYSTEM,
      prompt: 'Which channel should get more budget?',
      schema: SCHEMA,
      maxTokens: 120,
      validate: (value) => {
        calls += 1;
        if (calls === 1) throw new AppError('LLM_OUTPUT_INVALID', 'first answer rejected by the test');
        return acceptAnswer(value);
      },
    });
    expect(calls).toBe(2);
    expect(result.usage.attempts).toBe(2);
    expect(isAnswer(result.value)).toBe(true);
  });

  it('throws LLM_OUTPUT_INVALID with both reasons after the second rejection', async () => {
    let calls = 0;
    const error = await rejection(
      llm.generateStructured({
        system: SYSTEM,
        prompt: 'Which channel is worst?',
        schema: SCHEMA,
        maxTokens: 120,
        validate: () => {
          calls += 1;
          throw new AppError('LLM_OUTPUT_INVALID', `rejection number ${calls}`);
        },
      }),
    );
    expect(error.code).toBe('LLM_OUTPUT_INVALID');
    expect(calls).toBe(2);
    expect(error.details).toMatchObject({
      attempts: 2,
      reasons: ['rejection number 1', 'rejection number 2'],
    });
    expect(error.message).toMatch(/rejection number 1.*rejection number 2/);
  });

  it('treats output truncated at maxTokens as invalid and retries it', async () => {
    const error = await rejection(
      llm.generateStructured({
        system: SYSTEM,
        prompt: 'Summarise.',
        schema: SCHEMA,
        maxTokens: 3,
        validate: acceptAnswer,
      }),
    );
    expect(error.code).toBe('LLM_OUTPUT_INVALID');
    expect(error.details).toMatchObject({ attempts: 2 });
    expect(error.message).toMatch(/truncated at maxTokens/);
  });
});

describe('cancellation and queueing', () => {
  it('stops generation when the signal aborts after the first chunk, then serves the next request', async () => {
    const controller = new AbortController();
    let chunks = 0;
    const error = await rejection(
      llm.generateText({
        system: SYSTEM,
        prompt: 'Write a long story about campaigns.',
        maxTokens: 400,
        signal: controller.signal,
        onTextChunk: () => {
          chunks += 1;
          controller.abort(new Error('test abort'));
        },
      }),
    );
    expect(error.code).toBe('CANCELED');
    expect(chunks).toBeLessThan(5);
    const next = await llm.generateText({ system: SYSTEM, prompt: 'Still there?', maxTokens: 8 });
    expect(next.usage.completionTokens).toBeGreaterThan(0);
  });

  it('rejects an already aborted request with CANCELED without generating', async () => {
    const error = await rejection(
      llm.generateText({ system: SYSTEM, prompt: 'x', signal: AbortSignal.abort(new Error('gone')) }),
    );
    expect(error.code).toBe('CANCELED');
  });

  it('queues a second concurrent request behind the first, and lets a waiting request be aborted', async () => {
    const order: string[] = [];
    const first = llm
      .generateText({ system: SYSTEM, prompt: 'First request.', maxTokens: 16 })
      .then((result) => {
        order.push('first');
        return result;
      });
    const waitingController = new AbortController();
    const waiting = llm.generateText({
      system: SYSTEM,
      prompt: 'Aborted while waiting.',
      maxTokens: 16,
      signal: waitingController.signal,
    });
    const second = llm
      .generateText({ system: SYSTEM, prompt: 'Second request.', maxTokens: 16 })
      .then((result) => {
        order.push('second');
        return result;
      });
    waitingController.abort(new Error('no longer needed'));
    expect((await rejection(waiting)).code).toBe('CANCELED');
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
  });
});

describe('prefix reuse', () => {
  it('reuses the evaluated system prompt of the previous request on the same sequence', async () => {
    const system = `${SYSTEM} Today is a reuse test with a longer shared system prompt about campaign ROI.`;
    await llm.generateText({ system: 'A different system prompt.', prompt: 'Reset.', maxTokens: 4 });
    const first = await llm.generateText({ system, prompt: 'What about email?', maxTokens: 8 });
    const second = await llm.generateText({ system, prompt: 'And search?', maxTokens: 8 });
    const systemTokens = llm.tokenize(system).length;
    expect(first.usage.reusedPrefixTokens).toBeLessThan(systemTokens);
    expect(second.usage.reusedPrefixTokens).toBeGreaterThanOrEqual(systemTokens);
    expect(second.usage.promptTokens).toBeLessThan(first.usage.promptTokens);
  });
});

describe('embed', () => {
  it('returns one 64-dimensional vector per text, different for different texts', async () => {
    const [a, b, again] = await llm.embed([
      'campaign ROI by channel',
      'search budget next quarter',
      'campaign ROI by channel',
    ]);
    expect(a).toHaveLength(64);
    expect(b).toHaveLength(64);
    expect(a?.every(Number.isFinite)).toBe(true);
    expect(a).not.toEqual(b);
    expect(again).toEqual(a);
  });

  it('rejects a text longer than the embedding context with PAYLOAD_TOO_LARGE', async () => {
    const error = await rejection(llm.embed(['ROI '.repeat(2000)]));
    expect(error.code).toBe('PAYLOAD_TOO_LARGE');
  });
});

describe('close', () => {
  it('disposes the model; later calls fail with SPOKE_UNAVAILABLE', async () => {
    const second = await openLlm({
      model: await tinyModelPath(),
      cacheDir,
      threads: 1,
      gpu: false,
      maxContextSize: 512,
    });
    await second.close();
    await second.close();
    const error = await rejection(second.generateText({ system: SYSTEM, prompt: 'x' }));
    expect(isAppError(error, 'SPOKE_UNAVAILABLE')).toBe(true);
  });
});
