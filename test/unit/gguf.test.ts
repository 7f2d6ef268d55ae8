// The GGUF v3 writer, the generated tiny and Mistral-7B-shaped models, and the JS check of model files.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildLlamaModelSpec,
  buildLlamaVocabulary,
  float32ToFloat16Bits,
  ggmlTensorBytes,
  GGML_TYPE_ID,
  inspectModelFile,
  isQ4KMediumMoreBitsLayer,
  mistral7bShape,
  MISTRAL_CONTROL_TOKENS,
  tinyModelShape,
  validateModelFile,
  writeGguf,
  writeMistral7bShapeModel,
  writeTinyModel,
  type GgufFileSpec,
  type GgufTensorType,
} from '../../shared/gguf.js';
import { isAppError } from '../../shared/errors.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'agenthub-gguf-test-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** The tiny model's spec with some metadata keys removed. */
function tinySpecWithout(...keys: string[]): GgufFileSpec {
  const spec = buildLlamaModelSpec(tinyModelShape());
  return { ...spec, metadata: spec.metadata.filter((entry) => !keys.includes(entry.key)) };
}

describe('float32ToFloat16Bits', () => {
  it.each([
    [0, 0x0000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.1, 0x2e66],
    [65504, 0x7bff],
    [1e6, 0x7c00],
    [5.960464477539063e-8, 0x0001],
    [Number.POSITIVE_INFINITY, 0x7c00],
  ])('encodes %d as half-precision 0x%s', (value, bits) => {
    expect(float32ToFloat16Bits(value)).toBe(bits);
  });
});

describe('ggmlTensorBytes', () => {
  it.each([
    ['F32', [64, 2], 512],
    ['F16', [64, 2], 256],
    ['Q4_0', [64, 2], 72],
    ['Q8_0', [64, 2], 136],
    ['Q4_K', [256, 2], 288],
    ['Q6_K', [256, 2], 420],
  ] as const)('sizes a %s tensor of dims %j as %d bytes', (type, dims, bytes) => {
    expect(ggmlTensorBytes(GGML_TYPE_ID[type], dims)).toBe(bytes);
  });

  it('refuses a row length that is not a whole number of blocks', () => {
    expect(() => ggmlTensorBytes(GGML_TYPE_ID.Q4_K, [64, 2])).toThrow(/multiple of the Q4_K block size 256/);
  });
});

describe('buildLlamaVocabulary', () => {
  const vocabulary = buildLlamaVocabulary(512);

  it('lays out unk, bos, eos, the Mistral control tokens and the 256 byte tokens first', () => {
    expect(vocabulary.tokens.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
    expect(vocabulary.tokens.slice(3, 10)).toEqual([...MISTRAL_CONTROL_TOKENS]);
    expect(vocabulary.tokenTypes.slice(0, 10)).toEqual([2, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
    expect(vocabulary.tokens[10]).toBe('<0x00>');
    expect(vocabulary.tokens[265]).toBe('<0xFF>');
    expect(vocabulary.tokenTypes.slice(10, 266).every((type) => type === 6)).toBe(true);
    expect(vocabulary.tokens[266]).toBe('\u2581');
  });

  it('has exactly the requested number of unique tokens with strictly decreasing normal scores', () => {
    expect(vocabulary.tokens).toHaveLength(512);
    expect(new Set(vocabulary.tokens).size).toBe(512);
    const normalScores = vocabulary.scores.filter((_, index) => vocabulary.tokenTypes[index] === 1);
    expect(normalScores.every((score, index) => index === 0 || score < (normalScores[index - 1] ?? 0))).toBe(
      true,
    );
    expect(vocabulary.tokens).toContain('\u2581campaign');
  });
});

describe('writeGguf', () => {
  it('writes every supported block type with 32-byte aligned offsets that node-llama-cpp reads back', async () => {
    const types: GgufTensorType[] = ['F32', 'F16', 'Q4_0', 'Q8_0', 'Q4_K', 'Q6_K'];
    const path = join(directory, 'types.gguf');
    const result = await writeGguf(path, {
      metadata: [
        { key: 'general.architecture', type: 'string', value: 'llama' },
        { key: 'test.array', type: 'array', elementType: 'u16', values: [1, 2, 3] },
        { key: 'test.big', type: 'u64', value: 2n ** 40n },
      ],
      tensors: types.map((type) => ({
        name: `t.${type}`,
        dims: [256, 3],
        type,
        fill: { kind: 'random', std: 0.02 },
      })),
    });
    expect((await stat(path)).size).toBe(result.fileBytes);
    const info = await readGgufFileInfo(path, { logWarnings: false });
    expect(info.version).toBe(3);
    expect(info.tensorInfo?.map((tensor) => [tensor.name, tensor.ggmlType])).toEqual(
      types.map((type) => [`t.${type}`, GGML_TYPE_ID[type]]),
    );
    for (const tensor of info.tensorInfo ?? []) expect(Number(tensor.offset) % 32).toBe(0);
    expect(info.infoEndOffset).toBe(result.dataOffset);
    const metadata = info.metadata as unknown as { test: { array: number[]; big: bigint | number } };
    expect(metadata.test.array).toEqual([1, 2, 3]);
    expect(BigInt(metadata.test.big)).toBe(2n ** 40n);
  });

  it('refuses duplicate tensor names and constant fills of quantised tensors', async () => {
    const path = join(directory, 'bad.gguf');
    const tensor = {
      name: 'x',
      dims: [32],
      type: 'F32' as const,
      fill: { kind: 'constant' as const, value: 1 },
    };
    await expect(writeGguf(path, { metadata: [], tensors: [tensor, tensor] })).rejects.toThrow(
      /duplicate tensor/,
    );
    await expect(writeGguf(path, { metadata: [], tensors: [{ ...tensor, type: 'Q8_0' }] })).rejects.toThrow(
      /constant fill/,
    );
  });
});

describe('writeTinyModel', () => {
  it('writes the 120,128-byte Q4_0 tiny model whose name resolves the Mistral chat wrapper', async () => {
    const path = join(directory, 'tiny.gguf');
    const result = await writeTinyModel(path);
    expect(result.fileBytes).toBe(120_128);
    expect(result.tensorCount).toBe(21);
    const summary = await validateModelFile(path);
    expect(summary).toMatchObject({
      architecture: 'llama',
      embeddingLength: 64,
      blockCount: 2,
      headCount: 4,
      headCountKv: 2,
      feedForwardLength: 256,
      vocabularySize: 512,
      fileBytes: 120_128,
    });
    expect(summary.name).toContain('Mistral');
  });

  it('is deterministic for a seed and differs between seeds', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((name) => join(directory, `seed-${name}.gguf`)) as [
      string,
      string,
      string,
    ];
    await writeTinyModel(a, { seed: 7 });
    await writeTinyModel(b, { seed: 7 });
    await writeTinyModel(c, { seed: 8 });
    const [bytesA, bytesB, bytesC] = await Promise.all([readFile(a), readFile(b), readFile(c)]);
    expect(bytesA.equals(bytesB)).toBe(true);
    expect(bytesA.equals(bytesC)).toBe(false);
  });

  it.each([
    ['F32', 767_808],
    ['Q8_0', 214_336],
  ] as const)('writes the %s variant at %d bytes, as measured in LLM.md', async (matrixType, bytes) => {
    const result = await writeTinyModel(join(directory, `tiny-${matrixType}.gguf`), { matrixType });
    expect(result.fileBytes).toBe(bytes);
  });
});

describe('writeMistral7bShapeModel', () => {
  it('describes exactly Mistral-7B-v0.3 Q4_K_M: 291 tensors, f32 65 / q4_K 193 / q6_K 33', async () => {
    const path = join(directory, 'mistral-header.gguf');
    const result = await writeMistral7bShapeModel(path, { tensorData: 'none' });
    expect(result.tensorCount).toBe(291);
    expect(result.tensorTypeCounts).toEqual({ F32: 65, Q4_K: 193, Q6_K: 33 });
    expect(result.writtenBytes).toBe(result.dataOffset);
    const { summary, problems } = await inspectModelFile(path);
    expect(summary.weightBytes).toBe(4_372_054_016);
    expect(summary.requiredFileBytes).toBe(result.fileBytes);
    expect(summary).toMatchObject({
      contextLength: 32768,
      embeddingLength: 4096,
      blockCount: 32,
      headCountKv: 8,
    });
    expect(problems).toEqual([expect.stringMatching(/file is truncated/)]);
  });

  it('uses Q6_K for attn_v and ffn_down on 16 of the 32 layers', () => {
    const moreBits = Array.from({ length: 32 }, (_, block) => block).filter((block) =>
      isQ4KMediumMoreBitsLayer(block, 32),
    );
    expect(moreBits).toEqual([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
    expect(mistral7bShape().matrixType('ffn_down.weight', 6)).toBe('Q6_K');
    expect(mistral7bShape().matrixType('ffn_down.weight', 7)).toBe('Q4_K');
  });

  it('writes a sparse full-size file that passes the model-file check', async () => {
    const path = join(directory, 'mistral-sparse.gguf');
    const result = await writeMistral7bShapeModel(path, { tensorData: 'sparse' });
    expect((await stat(path)).size).toBe(result.fileBytes);
    await expect(validateModelFile(path)).resolves.toMatchObject({ weightBytes: 4_372_054_016 });
  });
});

describe('inspectModelFile', () => {
  it.each([
    ['llama.attention.head_count', /llama\.attention\.head_count is missing/],
    ['llama.feed_forward_length', /llama\.feed_forward_length is missing/],
    ['llama.block_count', /llama\.block_count is missing/],
    ['tokenizer.ggml.model', /tokenizer\.ggml\.model is undefined/],
    ['tokenizer.ggml.token_type', /token_type is missing/],
    ['general.architecture', /general\.architecture is undefined/],
  ])('names a missing %s', async (key, problem) => {
    const path = join(directory, `without-${key}.gguf`);
    await writeGguf(path, tinySpecWithout(key));
    const { problems } = await inspectModelFile(path);
    expect(problems.join('\n')).toMatch(problem);
  });

  it('names missing byte tokens', async () => {
    const spec = buildLlamaModelSpec(tinyModelShape());
    const metadata = spec.metadata.map((entry) =>
      entry.key === 'tokenizer.ggml.tokens' && entry.type === 'array'
        ? {
            ...entry,
            values: entry.values.map((token) => String(token).replace(/^<0x([0-9A-F]{2})>$/, 'byte$1')),
          }
        : entry,
    );
    const path = join(directory, 'without-bytes.gguf');
    await writeGguf(path, { ...spec, metadata });
    const { problems } = await inspectModelFile(path);
    expect(problems.join('\n')).toMatch(/lacks 256 of the 256 byte tokens/);
  });

  it('names a truncated file and a file that is not GGUF', async () => {
    const tiny = await readFile(join(directory, 'tiny.gguf'));
    const truncated = join(directory, 'truncated.gguf');
    await writeFile(truncated, tiny.subarray(0, tiny.length - 1000));
    expect((await inspectModelFile(truncated)).problems.join('\n')).toMatch(/file is truncated/);
    const text = join(directory, 'text.gguf');
    await writeFile(text, 'this is not a model');
    expect((await inspectModelFile(text)).problems.join('\n')).toMatch(/not a readable GGUF file/);
  });

  it('validateModelFile throws MODEL_INVALID listing the problems, MODEL_NOT_FOUND for a missing file', async () => {
    const path = join(directory, 'without-head-count-kv.gguf');
    await writeGguf(path, tinySpecWithout('llama.attention.head_count_kv'));
    const invalid = await validateModelFile(path).catch((error: unknown) => error);
    expect(isAppError(invalid, 'MODEL_INVALID')).toBe(true);
    expect((invalid as Error).message).toMatch(/head_count_kv is missing/);
    const missing = await validateModelFile(join(directory, 'absent.gguf')).catch((error: unknown) => error);
    expect(isAppError(missing, 'MODEL_NOT_FOUND')).toBe(true);
    expect((missing as Error).message).toContain(join(directory, 'absent.gguf'));
  });
});
