// GGUF v3 files: a streaming little-endian writer (F32, F16, Q4_0, Q8_0, Q4_K, Q6_K), generators for the tiny
// test model and the Mistral-7B-v0.3-shaped benchmark model, and the JS check of a model file that must pass
// before llama.cpp sees it (a malformed file aborts the process inside the native loader).
import { open, stat } from 'node:fs/promises';
import { AppError } from './errors.js';

/** Tensor types the writer can produce (ggml type names). */
export type GgufTensorType = 'F32' | 'F16' | 'Q4_0' | 'Q8_0' | 'Q4_K' | 'Q6_K';

/** ggml type id → {weights per block, bytes per block} for every type the validator understands. */
const GGML_TYPE_LAYOUT: Readonly<Record<number, { name: string; blockWeights: number; blockBytes: number }>> =
  {
    0: { name: 'F32', blockWeights: 1, blockBytes: 4 },
    1: { name: 'F16', blockWeights: 1, blockBytes: 2 },
    2: { name: 'Q4_0', blockWeights: 32, blockBytes: 18 },
    3: { name: 'Q4_1', blockWeights: 32, blockBytes: 20 },
    6: { name: 'Q5_0', blockWeights: 32, blockBytes: 22 },
    7: { name: 'Q5_1', blockWeights: 32, blockBytes: 24 },
    8: { name: 'Q8_0', blockWeights: 32, blockBytes: 34 },
    10: { name: 'Q2_K', blockWeights: 256, blockBytes: 84 },
    11: { name: 'Q3_K', blockWeights: 256, blockBytes: 110 },
    12: { name: 'Q4_K', blockWeights: 256, blockBytes: 144 },
    13: { name: 'Q5_K', blockWeights: 256, blockBytes: 176 },
    14: { name: 'Q6_K', blockWeights: 256, blockBytes: 210 },
    15: { name: 'Q8_K', blockWeights: 256, blockBytes: 292 },
    30: { name: 'BF16', blockWeights: 1, blockBytes: 2 },
  };

/** ggml type ids of the types the writer produces. */
export const GGML_TYPE_ID: Readonly<Record<GgufTensorType, number>> = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q8_0: 8,
  Q4_K: 12,
  Q6_K: 14,
};

/** Scalar GGUF metadata value types by name; ids are those of the GGUF v3 specification. */
export type GgufScalarType =
  'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';

const VALUE_TYPE_ID: Readonly<Record<GgufScalarType | 'array', number>> = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
};

/** One metadata key/value pair: a scalar, or an array of scalars of one type. */
export type GgufMetadataEntry =
  | {
      readonly key: string;
      readonly type: GgufScalarType;
      readonly value: string | number | bigint | boolean;
    }
  | {
      readonly key: string;
      readonly type: 'array';
      readonly elementType: GgufScalarType;
      readonly values: readonly (string | number | bigint | boolean)[];
    };

/** How a tensor's data is filled: random valid blocks of about `std` standard deviation, or a constant (F32/F16 only). */
export type GgufTensorFill =
  { readonly kind: 'random'; readonly std: number } | { readonly kind: 'constant'; readonly value: number };

/** One tensor: its name, GGUF dimensions (ne0, the contiguous row length, first), type and content. */
export interface GgufTensorSpec {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: GgufTensorType;
  readonly fill: GgufTensorFill;
}

/** A whole GGUF file: metadata in write order, then tensors in write order. */
export interface GgufFileSpec {
  readonly metadata: readonly GgufMetadataEntry[];
  readonly tensors: readonly GgufTensorSpec[];
}

/**
 * What to do with tensor data: `'random'` writes it; `'sparse'` extends the file to its full size without
 * writing (all-zero blocks on a sparse file system: valid, costs no disk); `'none'` stops after the header,
 * which is enough for metadata-only estimates.
 */
export type GgufTensorDataMode = 'random' | 'sparse' | 'none';

/** Options of {@link writeGguf}. */
export interface WriteGgufOptions {
  /** Seed of the deterministic random generator; the same seed gives the same bytes. Default 1. */
  readonly seed?: number;
  /** Default `'random'`. */
  readonly tensorData?: GgufTensorDataMode;
  /** Data alignment in bytes (`general.alignment`); default 32. */
  readonly alignment?: number;
  /**
   * Tensors larger than this many bytes repeat a shared pool of random blocks per (type, std) instead of
   * drawing fresh ones, so a 4 GB file writes in seconds. Default 4 MiB.
   */
  readonly poolBytes?: number;
}

/** What {@link writeGguf} wrote. */
export interface GgufWriteResult {
  readonly path: string;
  /** Size of the complete file (header plus all tensor data), whatever the data mode. */
  readonly fileBytes: number;
  /** Bytes actually written to disk by this call. */
  readonly writtenBytes: number;
  /** Offset of the tensor data section. */
  readonly dataOffset: number;
  readonly tensorCount: number;
  /** Tensor count per type name, e.g. `{F32: 65, Q4_K: 193, Q6_K: 33}`. */
  readonly tensorTypeCounts: Readonly<Record<string, number>>;
}

const DEFAULT_ALIGNMENT = 32;
const DEFAULT_POOL_BYTES = 4 * 1024 * 1024;
const WRITE_CHUNK_BYTES = 8 * 1024 * 1024;

/** Bytes of a tensor of `type` with GGUF dimensions `dims`; throws when ne0 is not a whole number of blocks. */
export function ggmlTensorBytes(typeId: number, dims: readonly (number | bigint)[]): number {
  const layout = GGML_TYPE_LAYOUT[typeId];
  if (layout === undefined) throw new AppError('MODEL_INVALID', `unsupported ggml tensor type ${typeId}`);
  const rowLength = Number(dims[0] ?? 1);
  if (rowLength % layout.blockWeights !== 0) {
    throw new AppError(
      'MODEL_INVALID',
      `tensor row length ${rowLength} is not a multiple of the ${layout.name} block size ${layout.blockWeights}`,
    );
  }
  const elements = dims.reduce<number>((product, dim) => product * Number(dim), 1);
  return (elements / layout.blockWeights) * layout.blockBytes;
}

/** The block layout of a type the writer produces (every one of them is in the table). */
function writerLayout(type: GgufTensorType): { blockWeights: number; blockBytes: number } {
  const layout = GGML_TYPE_LAYOUT[GGML_TYPE_ID[type]];
  if (layout === undefined) throw new AppError('INTERNAL', `no layout for ${type}`);
  return layout;
}

/** The name of a ggml type id (`Q4_K`), or `type <id>` when unknown. */
function ggmlTypeName(typeId: number): string {
  return GGML_TYPE_LAYOUT[typeId]?.name ?? `type ${typeId}`;
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/** A small deterministic random generator (SplitMix32 seeding a xorshift128). */
class SeededRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    let state = seed >>> 0 || 0x9e3779b9;
    const next = (): number => {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() || 1;
  }

  uint32(): number {
    const t = this.s0 ^ (this.s0 << 11);
    this.s0 = this.s1;
    this.s1 = this.s2;
    this.s2 = this.s3;
    this.s3 = (this.s3 ^ (this.s3 >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.s3;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [low, high]. */
  int(low: number, high: number): number {
    return low + Math.floor(this.float() * (high - low + 1));
  }

  normal(): number {
    if (this.spareNormal !== null) {
      const spare = this.spareNormal;
      this.spareNormal = null;
      return spare;
    }
    const u = 1 - this.float();
    const v = this.float();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }

  fill(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i += 4) {
      const word = this.uint32();
      bytes[i] = word & 0xff;
      if (i + 1 < bytes.length) bytes[i + 1] = (word >>> 8) & 0xff;
      if (i + 2 < bytes.length) bytes[i + 2] = (word >>> 16) & 0xff;
      if (i + 3 < bytes.length) bytes[i + 3] = (word >>> 24) & 0xff;
    }
  }
}

const float32Scratch = new Float32Array(1);
const uint32Scratch = new Uint32Array(float32Scratch.buffer);

/** IEEE 754 half-precision bits of `value` (round to nearest even; overflow to infinity). */
export function float32ToFloat16Bits(value: number): number {
  float32Scratch[0] = value;
  const bits = uint32Scratch[0] ?? 0;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  let halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let halfMantissa = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (halfMantissa & 1) === 1)) halfMantissa += 1;
    return sign | halfMantissa;
  }
  let halfMantissa = mantissa >>> 13;
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (halfMantissa & 1) === 1)) {
    halfMantissa += 1;
    if (halfMantissa === 0x400) {
      halfMantissa = 0;
      halfExponent += 1;
      if (halfExponent >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (halfExponent << 10) | halfMantissa;
}

/** Writes `count` random valid blocks of `type` (values of roughly `std` deviation, finite small f16 scales). */
function randomBlocks(type: GgufTensorType, count: number, std: number, random: SeededRandom): Buffer {
  const out = Buffer.alloc(count * writerLayout(type).blockBytes);
  switch (type) {
    case 'F32':
      for (let i = 0; i < count; i++) out.writeFloatLE(random.normal() * std, i * 4);
      return out;
    case 'F16':
      for (let i = 0; i < count; i++) out.writeUInt16LE(float32ToFloat16Bits(random.normal() * std), i * 2);
      return out;
    case 'Q4_0': {
      // value = d·(q − 8), q uniform in 0..15 has a deviation of about 4.6.
      random.fill(out);
      const d = float32ToFloat16Bits(std / 4.6);
      for (let i = 0; i < count; i++) out.writeUInt16LE(d, i * 18);
      return out;
    }
    case 'Q8_0': {
      // value = d·q, q uniform in −127..127 has a deviation of about 73.
      random.fill(out);
      const d = float32ToFloat16Bits(std / 73);
      for (let i = 0; i < count; i++) out.writeUInt16LE(d, i * 34);
      return out;
    }
    case 'Q4_K': {
      // f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of 4-bit quants; value = d·sc·q − dmin·m.
      random.fill(out);
      const d = float32ToFloat16Bits(std / 145);
      const dmin = float32ToFloat16Bits((7.5 * std) / 145);
      for (let i = 0; i < count; i++) {
        out.writeUInt16LE(d, i * 144);
        out.writeUInt16LE(dmin, i * 144 + 2);
      }
      return out;
    }
    case 'Q6_K': {
      // 128 bytes low quant bits, 64 bytes high bits, 16 int8 scales (kept to 1..8), f16 d last.
      random.fill(out);
      const d = float32ToFloat16Bits(std / 83);
      for (let i = 0; i < count; i++) {
        const base = i * 210;
        for (let s = 0; s < 16; s++) out.writeInt8(random.int(1, 8), base + 192 + s);
        out.writeUInt16LE(d, base + 208);
      }
      return out;
    }
  }
}

function constantBlocks(type: GgufTensorType, count: number, value: number): Buffer {
  if (type === 'F32') {
    const out = Buffer.alloc(count * 4);
    for (let i = 0; i < count; i++) out.writeFloatLE(value, i * 4);
    return out;
  }
  if (type === 'F16') {
    const out = Buffer.alloc(count * 2);
    const bits = float32ToFloat16Bits(value);
    for (let i = 0; i < count; i++) out.writeUInt16LE(bits, i * 2);
    return out;
  }
  throw new AppError('BAD_REQUEST', `constant fill needs an F32 or F16 tensor, not ${type}`);
}

type ScalarValue = string | number | bigint | boolean;

/** Size and little-endian writer of every fixed-width scalar type (strings are length-prefixed). */
const FIXED_SCALARS: Readonly<
  Record<
    Exclude<GgufScalarType, 'string'>,
    { bytes: number; write: (buffer: Buffer, value: ScalarValue) => void }
  >
> = {
  u8: { bytes: 1, write: (buffer, value) => buffer.writeUInt8(Number(value)) },
  i8: { bytes: 1, write: (buffer, value) => buffer.writeInt8(Number(value)) },
  u16: { bytes: 2, write: (buffer, value) => buffer.writeUInt16LE(Number(value)) },
  i16: { bytes: 2, write: (buffer, value) => buffer.writeInt16LE(Number(value)) },
  u32: { bytes: 4, write: (buffer, value) => buffer.writeUInt32LE(Number(value)) },
  i32: { bytes: 4, write: (buffer, value) => buffer.writeInt32LE(Number(value)) },
  f32: { bytes: 4, write: (buffer, value) => buffer.writeFloatLE(Number(value)) },
  bool: { bytes: 1, write: (buffer, value) => buffer.writeUInt8(value === true ? 1 : 0) },
  u64: { bytes: 8, write: (buffer, value) => buffer.writeBigUInt64LE(BigInt(value)) },
  i64: { bytes: 8, write: (buffer, value) => buffer.writeBigInt64LE(BigInt(value)) },
  f64: { bytes: 8, write: (buffer, value) => buffer.writeDoubleLE(Number(value)) },
};

/** Accumulates little-endian GGUF header bytes. */
class HeaderBuilder {
  private readonly parts: Buffer[] = [];
  length = 0;

  push(buffer: Buffer): void {
    this.parts.push(buffer);
    this.length += buffer.length;
  }

  u32(value: number): void {
    this.scalar('u32', value);
  }

  u64(value: number | bigint): void {
    this.scalar('u64', value);
  }

  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }

  scalar(type: GgufScalarType, value: ScalarValue): void {
    if (type === 'string') return this.string(String(value));
    const { bytes, write } = FIXED_SCALARS[type];
    const buffer = Buffer.alloc(bytes);
    write(buffer, value);
    this.push(buffer);
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

/**
 * Writes a GGUF v3 file, streaming the tensor data so multi-gigabyte files need only a few MiB of memory.
 * Tensor data is deterministic for a given `seed`. Throws `BAD_REQUEST` on an impossible spec (row length
 * not a whole number of blocks, duplicate tensor names, constant fill on a quantised type).
 */
export async function writeGguf(
  path: string,
  spec: GgufFileSpec,
  options: WriteGgufOptions = {},
): Promise<GgufWriteResult> {
  const alignment = options.alignment ?? DEFAULT_ALIGNMENT;
  const dataMode = options.tensorData ?? 'random';
  const poolBytes = options.poolBytes ?? DEFAULT_POOL_BYTES;
  const random = new SeededRandom(options.seed ?? 1);

  const names = new Set<string>();
  const placed = spec.tensors.map((tensor) => {
    if (names.has(tensor.name)) throw new AppError('BAD_REQUEST', `duplicate tensor name ${tensor.name}`);
    names.add(tensor.name);
    let bytes: number;
    try {
      bytes = ggmlTensorBytes(GGML_TYPE_ID[tensor.type], tensor.dims);
    } catch (error) {
      throw new AppError('BAD_REQUEST', `tensor ${tensor.name}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return { tensor, bytes };
  });

  const header = new HeaderBuilder();
  header.push(Buffer.from('GGUF', 'ascii'));
  header.u32(3);
  header.u64(spec.tensors.length);
  header.u64(spec.metadata.length);
  for (const entry of spec.metadata) {
    header.string(entry.key);
    header.u32(VALUE_TYPE_ID[entry.type]);
    if (entry.type === 'array') {
      header.u32(VALUE_TYPE_ID[entry.elementType]);
      header.u64(entry.values.length);
      for (const value of entry.values) header.scalar(entry.elementType, value);
    } else {
      header.scalar(entry.type, entry.value);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const { tensor, bytes } of placed) {
    header.string(tensor.name);
    header.u32(tensor.dims.length);
    for (const dim of tensor.dims) header.u64(dim);
    header.u32(GGML_TYPE_ID[tensor.type]);
    header.u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + bytes, alignment);
  }
  const dataOffset = alignUp(header.length, alignment);
  header.push(Buffer.alloc(dataOffset - header.length));
  const fileBytes = dataOffset + offset;

  const tensorTypeCounts: Record<string, number> = {};
  for (const { tensor } of placed) tensorTypeCounts[tensor.type] = (tensorTypeCounts[tensor.type] ?? 0) + 1;

  const file = await open(path, 'w');
  let writtenBytes = 0;
  try {
    const headerBytes = header.toBuffer();
    await file.write(headerBytes, 0, headerBytes.length, 0);
    writtenBytes += headerBytes.length;
    if (dataMode === 'sparse') {
      await file.truncate(fileBytes);
    } else if (dataMode === 'random') {
      const pools = new Map<string, Buffer>();
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let position = dataOffset;
      const flush = async (): Promise<void> => {
        if (pendingBytes === 0) return;
        const chunk = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
        await file.write(chunk, 0, chunk.length, position);
        position += chunk.length;
        writtenBytes += chunk.length;
        pending = [];
        pendingBytes = 0;
      };
      const emit = async (buffer: Buffer): Promise<void> => {
        pending.push(buffer);
        pendingBytes += buffer.length;
        if (pendingBytes >= WRITE_CHUNK_BYTES) await flush();
      };
      for (const [index, { tensor, bytes }] of placed.entries()) {
        const layout = writerLayout(tensor.type);
        const blocks = bytes / layout.blockBytes;
        if (tensor.fill.kind === 'constant') {
          await emit(constantBlocks(tensor.type, blocks, tensor.fill.value));
        } else if (bytes <= poolBytes) {
          await emit(randomBlocks(tensor.type, blocks, tensor.fill.std, random));
        } else {
          const poolKey = `${tensor.type}:${tensor.fill.std}`;
          let pool = pools.get(poolKey);
          if (pool === undefined) {
            pool = randomBlocks(
              tensor.type,
              Math.max(1, Math.floor(poolBytes / layout.blockBytes)),
              tensor.fill.std,
              random,
            );
            pools.set(poolKey, pool);
          }
          let remaining = bytes;
          while (remaining > 0) {
            const slice = pool.subarray(0, Math.min(remaining, pool.length));
            await emit(slice);
            remaining -= slice.length;
          }
        }
        const end = (offsets[index] ?? 0) + bytes;
        const padding = alignUp(end, alignment) - end;
        if (padding > 0) await emit(Buffer.alloc(padding));
      }
      await flush();
    }
  } finally {
    await file.close();
  }
  return {
    path,
    fileBytes,
    writtenBytes,
    dataOffset,
    tensorCount: placed.length,
    tensorTypeCounts,
  };
}

/** The shape of a llama-architecture model, enough to generate its metadata and tensors. */
export interface LlamaModelShape {
  /** `general.name`; contains "Mistral" so node-llama-cpp resolves the Mistral chat wrapper. */
  readonly name: string;
  readonly contextLength: number;
  readonly embeddingLength: number;
  readonly blockCount: number;
  readonly feedForwardLength: number;
  readonly headCount: number;
  readonly headCountKv: number;
  readonly vocabularySize: number;
  readonly ropeFreqBase: number;
  /** `general.file_type` label (15 = MOSTLY_Q4_K_M); omitted when undefined. */
  readonly fileType?: number;
  /** Type of each weight matrix, by tensor name and block index. */
  readonly matrixType: (tensor: string, block: number | null) => GgufTensorType;
}

/** Mistral v0.3 control tokens, ids 3–9 after `<unk>`, `<s>`, `</s>`. */
export const MISTRAL_CONTROL_TOKENS = [
  '[INST]',
  '[/INST]',
  '[TOOL_CALLS]',
  '[AVAILABLE_TOOLS]',
  '[/AVAILABLE_TOOLS]',
  '[TOOL_RESULTS]',
  '[/TOOL_RESULTS]',
] as const;

const DOMAIN_WORDS = [
  'campaign',
  'ROI',
  'spend',
  'revenue',
  'channel',
  'email',
  'search',
  'social',
  'budget',
  'conversion',
  'click',
  'lead',
  'customer',
  'marketing',
  'persona',
  'the',
  'is',
  'and',
  'of',
  'to',
];

const TOKEN_TYPE_NORMAL = 1;
const TOKEN_TYPE_UNKNOWN = 2;
const TOKEN_TYPE_CONTROL = 3;
const TOKEN_TYPE_BYTE = 6;

/** The SPM byte-fallback token of `byte`: `<0x0A>`. */
function byteTokenName(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

/** A SentencePiece-style vocabulary: tokens, scores and token types of equal length. */
export interface LlamaVocabulary {
  readonly tokens: readonly string[];
  readonly scores: readonly number[];
  readonly tokenTypes: readonly number[];
}

/**
 * Builds a Mistral-v0.3-like SPM vocabulary of exactly `size` unique tokens: `<unk>`, `<s>`, `</s>`, the seven
 * control tokens, the 256 byte tokens `<0x00>`…`<0xFF>`, `▁`, printable ASCII, `▁`+character, a few domain
 * words, then filler. Normal tokens get strictly decreasing scores.
 */
export function buildLlamaVocabulary(size: number): LlamaVocabulary {
  const tokens: string[] = [];
  const scores: number[] = [];
  const tokenTypes: number[] = [];
  const seen = new Set<string>();
  const add = (token: string, type: number, score: number): void => {
    if (tokens.length >= size || seen.has(token)) return;
    seen.add(token);
    tokens.push(token);
    scores.push(score);
    tokenTypes.push(type);
  };
  add('<unk>', TOKEN_TYPE_UNKNOWN, 0);
  add('<s>', TOKEN_TYPE_CONTROL, 0);
  add('</s>', TOKEN_TYPE_CONTROL, 0);
  for (const control of MISTRAL_CONTROL_TOKENS) add(control, TOKEN_TYPE_CONTROL, 0);
  for (let byte = 0; byte < 256; byte++) {
    add(byteTokenName(byte), TOKEN_TYPE_BYTE, 0);
  }
  const minimum = tokens.length;
  if (size < minimum + 1) {
    throw new AppError('BAD_REQUEST', `a llama vocabulary needs at least ${minimum + 1} tokens, got ${size}`);
  }
  let score = -1;
  const addNormal = (token: string): void => {
    const before = tokens.length;
    add(token, TOKEN_TYPE_NORMAL, score);
    if (tokens.length > before) score -= 1;
  };
  addNormal('\u2581');
  const printable: string[] = [];
  for (let code = 0x21; code <= 0x7e; code++) printable.push(String.fromCharCode(code));
  for (const char of printable) addNormal(char);
  for (const char of printable) addNormal(`\u2581${char}`);
  for (const word of DOMAIN_WORDS) addNormal(`\u2581${word}`);
  for (let filler = 0; tokens.length < size; filler++) addNormal(`\u2581w${filler.toString(36)}`);
  return { tokens, scores, tokenTypes };
}

/** Builds the metadata and tensor list of a llama-architecture model of `shape`. */
export function buildLlamaModelSpec(shape: LlamaModelShape): GgufFileSpec {
  const headDim = shape.embeddingLength / shape.headCount;
  const kvWidth = headDim * shape.headCountKv;
  const vocabulary = buildLlamaVocabulary(shape.vocabularySize);
  const metadata: GgufMetadataEntry[] = [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'general.name', type: 'string', value: shape.name },
    { key: 'general.alignment', type: 'u32', value: DEFAULT_ALIGNMENT },
    ...(shape.fileType === undefined
      ? []
      : [{ key: 'general.file_type', type: 'u32' as const, value: shape.fileType }]),
    { key: 'llama.context_length', type: 'u32', value: shape.contextLength },
    { key: 'llama.embedding_length', type: 'u32', value: shape.embeddingLength },
    { key: 'llama.block_count', type: 'u32', value: shape.blockCount },
    { key: 'llama.feed_forward_length', type: 'u32', value: shape.feedForwardLength },
    { key: 'llama.rope.dimension_count', type: 'u32', value: headDim },
    { key: 'llama.attention.head_count', type: 'u32', value: shape.headCount },
    { key: 'llama.attention.head_count_kv', type: 'u32', value: shape.headCountKv },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: 'f32', value: 1e-5 },
    { key: 'llama.rope.freq_base', type: 'f32', value: shape.ropeFreqBase },
    { key: 'llama.vocab_size', type: 'u32', value: shape.vocabularySize },
    { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'array', elementType: 'string', values: vocabulary.tokens },
    { key: 'tokenizer.ggml.scores', type: 'array', elementType: 'f32', values: vocabulary.scores },
    { key: 'tokenizer.ggml.token_type', type: 'array', elementType: 'i32', values: vocabulary.tokenTypes },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: 1 },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: 2 },
    { key: 'tokenizer.ggml.unknown_token_id', type: 'u32', value: 0 },
    { key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: true },
    { key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: false },
  ];
  const norm = (name: string): GgufTensorSpec => ({
    name,
    dims: [shape.embeddingLength],
    type: 'F32',
    fill: { kind: 'constant', value: 1 },
  });
  const matrix = (
    name: string,
    block: number | null,
    dims: readonly number[],
    std: number,
  ): GgufTensorSpec => ({
    name: block === null ? name : `blk.${block}.${name}`,
    dims,
    type: shape.matrixType(name, block),
    fill: { kind: 'random', std },
  });
  const { embeddingLength: embd, feedForwardLength: ff, vocabularySize: vocab } = shape;
  const tensors: GgufTensorSpec[] = [matrix('token_embd.weight', null, [embd, vocab], 1)];
  for (let block = 0; block < shape.blockCount; block++) {
    tensors.push(
      norm(`blk.${block}.attn_norm.weight`),
      matrix('attn_q.weight', block, [embd, embd], 0.02),
      matrix('attn_k.weight', block, [embd, kvWidth], 0.02),
      matrix('attn_v.weight', block, [embd, kvWidth], 0.02),
      matrix('attn_output.weight', block, [embd, embd], 0.02),
      norm(`blk.${block}.ffn_norm.weight`),
      matrix('ffn_gate.weight', block, [embd, ff], 0.02),
      matrix('ffn_up.weight', block, [embd, ff], 0.02),
      matrix('ffn_down.weight', block, [ff, embd], 0.02),
    );
  }
  tensors.push(norm('output_norm.weight'), matrix('output.weight', null, [embd, vocab], 0.05));
  return { metadata, tensors };
}

/** Options of {@link tinyModelShape} and {@link writeTinyModel}. */
export interface TinyModelOptions {
  /** Type of the weight matrices; default `Q4_0` (about 120 KB). K-quants need rows of 256 and do not fit. */
  readonly matrixType?: Extract<GgufTensorType, 'F32' | 'F16' | 'Q4_0' | 'Q8_0'>;
  /** Seed of the random weights; default 1. */
  readonly seed?: number;
}

/** The tiny test model: llama architecture, 2 layers, n_embd 64, 4 heads / 2 kv, ffn 256, vocab 512. */
export function tinyModelShape(options: TinyModelOptions = {}): LlamaModelShape {
  const matrixType = options.matrixType ?? 'Q4_0';
  return {
    name: 'Mistral-7B-Instruct-v0.3 tiny random test',
    // Mistral v0.3's trained context, so the memory planner chooses contexts the way it does for the real
    // model: the 512-token vocabulary spends about a token per character, and the ROI prompt needs > 4096.
    contextLength: 32768,
    embeddingLength: 64,
    blockCount: 2,
    feedForwardLength: 256,
    headCount: 4,
    headCountKv: 2,
    vocabularySize: 512,
    ropeFreqBase: 1e6,
    matrixType: () => matrixType,
  };
}

/** Writes the tiny random-weight test model (deterministic for a seed; about 120 KB as Q4_0). */
export async function writeTinyModel(path: string, options: TinyModelOptions = {}): Promise<GgufWriteResult> {
  return writeGguf(path, buildLlamaModelSpec(tinyModelShape(options)), { seed: options.seed ?? 1 });
}

/**
 * True for the Q4_K_M "more bits" layers that llama.cpp quantises as Q6_K (attn_v, ffn_down):
 * the first and last eighth of the layers, and every third layer in between.
 */
export function isQ4KMediumMoreBitsLayer(block: number, blockCount: number): boolean {
  const eighth = blockCount / 8;
  return block < eighth || block >= 7 * eighth || (block - eighth) % 3 === 2;
}

/** Mistral-7B-v0.3 with the Q4_K_M tensor mix: 291 tensors, f32 65 / q4_K 193 / q6_K 33, 4,372,775,104 bytes. */
export function mistral7bShape(): LlamaModelShape {
  const blockCount = 32;
  return {
    name: 'Mistral-7B-Instruct-v0.3 random-weight test',
    contextLength: 32768,
    embeddingLength: 4096,
    blockCount,
    feedForwardLength: 14336,
    headCount: 32,
    headCountKv: 8,
    vocabularySize: 32768,
    ropeFreqBase: 1e6,
    fileType: 15,
    matrixType: (tensor, block) => {
      if (tensor === 'output.weight') return 'Q6_K';
      if (block !== null && (tensor === 'attn_v.weight' || tensor === 'ffn_down.weight')) {
        return isQ4KMediumMoreBitsLayer(block, blockCount) ? 'Q6_K' : 'Q4_K';
      }
      return 'Q4_K';
    },
  };
}

/** Options of {@link writeMistral7bShapeModel}. */
export interface Mistral7bShapeOptions {
  /** Default 1. */
  readonly seed?: number;
  /** Default `'random'`; `'none'` writes the header only, `'sparse'` a full-size file of zero blocks. */
  readonly tensorData?: GgufTensorDataMode;
}

/**
 * Writes a random-weight model with exactly Mistral-7B-v0.3's shape and Q4_K_M mix (4.37 GB), streamed from
 * a pool of random valid blocks in seconds. Its load time, memory and speed match the real model; its text
 * is noise.
 */
export async function writeMistral7bShapeModel(
  path: string,
  options: Mistral7bShapeOptions = {},
): Promise<GgufWriteResult> {
  return writeGguf(path, buildLlamaModelSpec(mistral7bShape()), {
    seed: options.seed ?? 1,
    tensorData: options.tensorData ?? 'random',
  });
}

/** The hyper-parameters and sizes of a model file, read from its GGUF header. */
export interface GgufModelSummary {
  readonly path: string;
  readonly architecture: string | undefined;
  /** `general.name`, or the file name when absent. */
  readonly name: string;
  readonly contextLength: number | undefined;
  readonly embeddingLength: number | undefined;
  readonly blockCount: number | undefined;
  readonly feedForwardLength: number | undefined;
  readonly headCount: number | undefined;
  readonly headCountKv: number | undefined;
  readonly vocabularySize: number | undefined;
  readonly tensorCount: number;
  /** Tensor count per ggml type name. */
  readonly tensorTypeCounts: Readonly<Record<string, number>>;
  /** Sum of the tensor data sizes: what the weights occupy in RAM with `useMmap: false` on a CPU. */
  readonly weightBytes: number;
  /** Size the file must have to hold every tensor. */
  readonly requiredFileBytes: number;
  /** Actual file size on disk. */
  readonly fileBytes: number;
}

/** A model file's summary and every problem found with it (empty when the file is safe to load). */
export interface GgufModelInspection {
  readonly summary: GgufModelSummary;
  readonly problems: readonly string[];
}

const MAX_SANE_TENSOR_COUNT = 65_536;
const LLAMA_BLOCK_TENSORS = [
  'attn_norm.weight',
  'attn_q.weight',
  'attn_k.weight',
  'attn_v.weight',
  'attn_output.weight',
  'ffn_norm.weight',
  'ffn_gate.weight',
  'ffn_up.weight',
  'ffn_down.weight',
] as const;

function metadataAt(root: unknown, path: string): unknown {
  let node: unknown = root;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function positiveInteger(value: unknown): number | undefined {
  const number = typeof value === 'bigint' ? Number(value) : value;
  return typeof number === 'number' && Number.isInteger(number) && number > 0 ? number : undefined;
}

/** The size of the model file at `path`; throws `MODEL_NOT_FOUND` saying where to put it when none is there. */
export async function modelFileSize(path: string): Promise<number> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a regular file');
    return info.size;
  } catch (error) {
    throw new AppError('MODEL_NOT_FOUND', `model file not found: put the GGUF file at ${path}`, {
      details: { path },
      cause: error,
    });
  }
}

/**
 * Reads a model file's GGUF header in JS and lists every reason llama.cpp would refuse it or abort on it:
 * not GGUF, architecture other than `llama`, a missing or non-positive hyper-parameter (feed_forward_length
 * and head_count missing abort the native loader), an SPM tokenizer without its 256 byte tokens (aborts),
 * missing or mis-shaped tensors, unsupported tensor types, an insane tensor count, a truncated file.
 * Throws `MODEL_NOT_FOUND` when the file does not exist; never loads the native library.
 */
export async function inspectModelFile(path: string): Promise<GgufModelInspection> {
  const fileBytes = await modelFileSize(path);
  const { readGgufFileInfo } = await import('node-llama-cpp');
  const problems: string[] = [];
  const emptySummary: GgufModelSummary = {
    path,
    architecture: undefined,
    name: path,
    contextLength: undefined,
    embeddingLength: undefined,
    blockCount: undefined,
    feedForwardLength: undefined,
    headCount: undefined,
    headCountKv: undefined,
    vocabularySize: undefined,
    tensorCount: 0,
    tensorTypeCounts: {},
    weightBytes: 0,
    requiredFileBytes: 0,
    fileBytes,
  };
  let fileInfo: Awaited<ReturnType<typeof readGgufFileInfo>>;
  try {
    fileInfo = await readGgufFileInfo(path, {
      sourceType: 'filesystem',
      logWarnings: false,
      spliceSplitFiles: false,
    });
  } catch (error) {
    return {
      summary: emptySummary,
      problems: [`not a readable GGUF file: ${(error as Error).message}`],
    };
  }
  const metadata: unknown = fileInfo.metadata;
  const architecture = metadataAt(metadata, 'general.architecture');
  if (architecture !== 'llama')
    problems.push(`general.architecture is ${JSON.stringify(architecture)}, expected "llama"`);
  const requiredNumber = (key: string): number | undefined => {
    const value = positiveInteger(metadataAt(metadata, `llama.${key}`));
    if (value === undefined) problems.push(`llama.${key} is missing or not a positive integer`);
    return value;
  };
  const contextLength = requiredNumber('context_length');
  const embeddingLength = requiredNumber('embedding_length');
  const blockCount = requiredNumber('block_count');
  const feedForwardLength = requiredNumber('feed_forward_length');
  const headCount = requiredNumber('attention.head_count');
  const headCountKv = requiredNumber('attention.head_count_kv');
  const epsilon = metadataAt(metadata, 'llama.attention.layer_norm_rms_epsilon');
  if (typeof epsilon !== 'number' || !(epsilon > 0))
    problems.push('llama.attention.layer_norm_rms_epsilon is missing');
  if (embeddingLength !== undefined && headCount !== undefined && embeddingLength % headCount !== 0) {
    problems.push(`embedding_length ${embeddingLength} is not a multiple of head_count ${headCount}`);
  }
  if (headCount !== undefined && headCountKv !== undefined && headCount % headCountKv !== 0) {
    problems.push(`head_count ${headCount} is not a multiple of head_count_kv ${headCountKv}`);
  }

  const tokenizerModel = metadataAt(metadata, 'tokenizer.ggml.model');
  if (tokenizerModel !== 'llama') {
    problems.push(
      `tokenizer.ggml.model is ${JSON.stringify(tokenizerModel)}, expected "llama" (SentencePiece)`,
    );
  }
  const tokens = metadataAt(metadata, 'tokenizer.ggml.tokens');
  const tokenTypes = metadataAt(metadata, 'tokenizer.ggml.token_type');
  let vocabularySize: number | undefined;
  if (!Array.isArray(tokens) || tokens.length === 0) {
    problems.push('tokenizer.ggml.tokens is missing');
  } else {
    vocabularySize = tokens.length;
    if (!Array.isArray(tokenTypes) || tokenTypes.length !== tokens.length) {
      problems.push('tokenizer.ggml.token_type is missing or not one type per token');
    }
    const tokenIndex = new Map<unknown, number>();
    tokens.forEach((token, index) => tokenIndex.set(token, index));
    const missingBytes: string[] = [];
    const mistypedBytes: string[] = [];
    for (let byte = 0; byte < 256; byte++) {
      const token = byteTokenName(byte);
      const index = tokenIndex.get(token);
      if (index === undefined) missingBytes.push(token);
      else if (Array.isArray(tokenTypes) && Number(tokenTypes[index]) !== TOKEN_TYPE_BYTE)
        mistypedBytes.push(token);
    }
    if (missingBytes.length > 0) {
      problems.push(
        `tokenizer.ggml.tokens lacks ${missingBytes.length} of the 256 byte tokens (${missingBytes.slice(0, 3).join(', ')}…)`,
      );
    }
    if (mistypedBytes.length > 0) {
      problems.push(
        `${mistypedBytes.length} byte tokens are not of token_type 6 (byte), e.g. ${mistypedBytes[0]}`,
      );
    }
  }

  const tensorInfo = fileInfo.fullTensorInfo ?? fileInfo.tensorInfo ?? [];
  const tensorCount = Number(fileInfo.totalTensorCount);
  if (tensorCount <= 0 || tensorCount > MAX_SANE_TENSOR_COUNT || tensorInfo.length !== tensorCount) {
    problems.push(`tensor count ${tensorCount} is not sane (read ${tensorInfo.length} tensor infos)`);
  }
  const tensors = new Map(tensorInfo.map((tensor) => [tensor.name, tensor]));
  const tensorTypeCounts: Record<string, number> = {};
  let weightBytes = 0;
  let dataEnd = 0;
  for (const tensor of tensorInfo) {
    const typeName = ggmlTypeName(tensor.ggmlType);
    tensorTypeCounts[typeName] = (tensorTypeCounts[typeName] ?? 0) + 1;
    try {
      const bytes = ggmlTensorBytes(tensor.ggmlType, tensor.dimensions);
      weightBytes += bytes;
      dataEnd = Math.max(dataEnd, Number(tensor.offset) + bytes);
    } catch (error) {
      problems.push(`tensor ${tensor.name}: ${(error as Error).message}`);
    }
  }
  const expectDims = (name: string, dims: readonly (number | undefined)[]): void => {
    const tensor = tensors.get(name);
    if (tensor === undefined) {
      problems.push(`tensor ${name} is missing`);
      return;
    }
    const actual = tensor.dimensions.map(Number);
    if (dims.some((dim) => dim === undefined)) return;
    if (actual.length !== dims.length || actual.some((dim, index) => dim !== dims[index])) {
      problems.push(`tensor ${name} has dims [${actual.join(', ')}], expected [${dims.join(', ')}]`);
    }
  };
  const headDim =
    embeddingLength !== undefined && headCount !== undefined ? embeddingLength / headCount : undefined;
  const kvWidth = headDim !== undefined && headCountKv !== undefined ? headDim * headCountKv : undefined;
  expectDims('token_embd.weight', [embeddingLength, vocabularySize]);
  expectDims('output_norm.weight', [embeddingLength]);
  for (let block = 0; block < (blockCount ?? 0) && block < MAX_SANE_TENSOR_COUNT; block++) {
    const expected: Record<(typeof LLAMA_BLOCK_TENSORS)[number], (number | undefined)[]> = {
      'attn_norm.weight': [embeddingLength],
      'attn_q.weight': [embeddingLength, embeddingLength],
      'attn_k.weight': [embeddingLength, kvWidth],
      'attn_v.weight': [embeddingLength, kvWidth],
      'attn_output.weight': [embeddingLength, embeddingLength],
      'ffn_norm.weight': [embeddingLength],
      'ffn_gate.weight': [embeddingLength, feedForwardLength],
      'ffn_up.weight': [embeddingLength, feedForwardLength],
      'ffn_down.weight': [feedForwardLength, embeddingLength],
    };
    for (const name of LLAMA_BLOCK_TENSORS) expectDims(`blk.${block}.${name}`, expected[name]);
  }

  const dataOffset = fileInfo.infoEndOffset ?? 0;
  const requiredFileBytes = dataOffset + dataEnd;
  if (fileBytes < requiredFileBytes) {
    problems.push(`file is truncated: ${fileBytes} bytes on disk, the tensors need ${requiredFileBytes}`);
  }
  const name = metadataAt(metadata, 'general.name');
  return {
    summary: {
      path,
      architecture: typeof architecture === 'string' ? architecture : undefined,
      name: typeof name === 'string' && name.length > 0 ? name : (path.split('/').pop() ?? path),
      contextLength,
      embeddingLength,
      blockCount,
      feedForwardLength,
      headCount,
      headCountKv,
      vocabularySize,
      tensorCount,
      tensorTypeCounts,
      weightBytes,
      requiredFileBytes,
      fileBytes,
    },
    problems,
  };
}

/** A summary whose hyper-parameters are all present (what {@link validateModelFile} returns). */
export type ValidGgufModelSummary = GgufModelSummary & {
  readonly architecture: string;
  readonly contextLength: number;
  readonly embeddingLength: number;
  readonly blockCount: number;
  readonly feedForwardLength: number;
  readonly headCount: number;
  readonly headCountKv: number;
  readonly vocabularySize: number;
};

/**
 * Asserts the summary has every hyper-parameter the memory estimate needs; throws `MODEL_INVALID` naming the
 * missing ones.
 */
export function requireCompleteSummary(summary: GgufModelSummary): ValidGgufModelSummary {
  const missing = (
    [
      'architecture',
      'contextLength',
      'embeddingLength',
      'blockCount',
      'feedForwardLength',
      'headCount',
      'headCountKv',
      'vocabularySize',
    ] as const
  ).filter((key) => summary[key] === undefined);
  if (missing.length > 0) {
    throw new AppError('MODEL_INVALID', `model file ${summary.path} lacks ${missing.join(', ')}`, {
      details: { path: summary.path, missing },
    });
  }
  return summary as ValidGgufModelSummary;
}

/**
 * Checks a model file in JS before the native loader sees it (see {@link inspectModelFile}). Throws
 * `MODEL_INVALID` listing every problem, or `MODEL_NOT_FOUND` when the file is absent.
 */
export async function validateModelFile(path: string): Promise<ValidGgufModelSummary> {
  const { summary, problems } = await inspectModelFile(path);
  if (problems.length > 0) {
    throw new AppError(
      'MODEL_INVALID',
      `model file ${path} is not a usable llama GGUF: ${problems.join('; ')}`,
      {
        details: { path, problems },
      },
    );
  }
  return requireCompleteSummary(summary);
}
