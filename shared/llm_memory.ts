// The memory budget of the LLM runtime: estimates weights + KV cache + overhead from a model file's GGUF
// header and picks the largest context that fits AGENT_MAX_MEMORY_MB, before anything native is loaded.
import { AppError } from './errors.js';
import type { ValidGgufModelSummary } from './gguf.js';

/** Bytes in one MB as the budget counts them (decimal, like the "7 GB" limit and `peak_rss_mb`). */
export const BYTES_PER_MB = 1_000_000;

/**
 * Resident memory of the Node process plus llama.cpp's runtime before any model is loaded (measured: a
 * whole tiny-model script peaks at ~150 MB RSS).
 */
const RUNTIME_BASE_BYTES = 160 * 1024 * 1024;

/** llama.cpp's default evaluation batch size, which sizes the compute buffers. */
const DEFAULT_BATCH_SIZE = 512;

/** Contexts are chosen in steps of this many tokens. */
const CONTEXT_STEP_TOKENS = 256;

/** The shape numbers the estimate needs. */
export type ModelMemoryShape = Pick<
  ValidGgufModelSummary,
  | 'path'
  | 'weightBytes'
  | 'contextLength'
  | 'embeddingLength'
  | 'blockCount'
  | 'feedForwardLength'
  | 'headCount'
  | 'headCountKv'
  | 'vocabularySize'
>;

/** Options of {@link planModelMemory}. */
export interface MemoryPlanOptions {
  /** The budget (AGENT_MAX_MEMORY_MB), in MB of 1,000,000 bytes. */
  readonly maxMemoryMb: number;
  /** Largest context wanted, in tokens. */
  readonly maxContextSize: number;
  /** Smallest acceptable context, in tokens. */
  readonly minContextSize: number;
  /** Parallel sequences of the generation context; each gets the full context's KV cache. */
  readonly sequences: number;
  /** Context of the lazily created embedding context, included so `embed()` cannot break the budget. */
  readonly embeddingContextSize: number;
}

/** Estimated resident bytes, by part. */
export interface MemoryEstimate {
  /** Tensor data (RAM copy with `useMmap: false`). */
  readonly weights: number;
  /** F16 KV cache of the generation context (all sequences) plus the embedding context. */
  readonly kvCache: number;
  /** Compute buffers of both contexts plus the Node/runtime base. */
  readonly overhead: number;
  readonly total: number;
}

/** The chosen context and the estimate behind it. */
export interface MemoryPlan {
  readonly contextSize: number;
  readonly embeddingContextSize: number;
  readonly estimatedBytes: MemoryEstimate;
  readonly budgetBytes: number;
  /** F16 KV bytes one token of context costs (K and V over all layers). */
  readonly kvBytesPerToken: number;
}

/** F16 K and V for one token: 2 × n_layer × n_head_kv × head_dim × 2 bytes (128 KiB for Mistral-7B). */
export function kvCacheBytesPerToken(shape: ModelMemoryShape): number {
  const headDim = shape.embeddingLength / shape.headCount;
  return 2 * shape.blockCount * shape.headCountKv * headDim * 2;
}

/**
 * Compute buffer of one context: F32 activations of a batch through the widest layers (logits over the
 * vocabulary, gate and up projections, attention in/out). About 150 MiB for Mistral-7B at batch 512,
 * against ~120 MiB measured.
 */
function computeBufferBytes(shape: ModelMemoryShape, batchSize: number): number {
  return batchSize * (shape.vocabularySize + 2 * shape.feedForwardLength + 4 * shape.embeddingLength) * 4;
}

/** The estimate for a given context size, without any budget check. */
export function estimateModelMemory(
  shape: ModelMemoryShape,
  contextSize: number,
  options: Pick<MemoryPlanOptions, 'sequences' | 'embeddingContextSize'>,
): MemoryEstimate {
  const perToken = kvCacheBytesPerToken(shape);
  const kvCache = perToken * (contextSize * options.sequences + options.embeddingContextSize);
  const overhead =
    computeBufferBytes(shape, Math.min(DEFAULT_BATCH_SIZE, contextSize)) +
    computeBufferBytes(shape, Math.min(DEFAULT_BATCH_SIZE, options.embeddingContextSize)) +
    RUNTIME_BASE_BYTES;
  const weights = shape.weightBytes;
  return { weights, kvCache, overhead, total: weights + kvCache + overhead };
}

function formatMb(bytes: number): string {
  return `${Math.ceil(bytes / BYTES_PER_MB).toLocaleString('en-US')} MB`;
}

/**
 * Chooses the largest context (a multiple of 256 tokens, ≤ `maxContextSize` and ≤ the model's trained
 * context) whose estimate fits the budget. Throws `MODEL_TOO_LARGE` naming weights, KV cache at the minimum
 * context, overhead and budget when not even `minContextSize` fits.
 */
export function planModelMemory(shape: ModelMemoryShape, options: MemoryPlanOptions): MemoryPlan {
  const budgetBytes = options.maxMemoryMb * BYTES_PER_MB;
  const upper = Math.min(options.maxContextSize, shape.contextLength);
  const lower = Math.min(options.minContextSize, upper);
  const embeddingContextSize = Math.min(options.embeddingContextSize, shape.contextLength);
  const estimateAt = (contextSize: number): MemoryEstimate =>
    estimateModelMemory(shape, contextSize, { sequences: options.sequences, embeddingContextSize });
  const atMinimum = estimateAt(lower);
  if (atMinimum.total > budgetBytes) {
    throw new AppError(
      'MODEL_TOO_LARGE',
      `model ${shape.path} does not fit AGENT_MAX_MEMORY_MB=${options.maxMemoryMb}: weights ${formatMb(atMinimum.weights)}` +
        ` + KV cache ${formatMb(atMinimum.kvCache)} at the minimum context of ${lower} tokens × ${options.sequences}` +
        ` sequence(s) + overhead ${formatMb(atMinimum.overhead)} = ${formatMb(atMinimum.total)} > budget ${formatMb(budgetBytes)}`,
      {
        details: {
          path: shape.path,
          weightsBytes: atMinimum.weights,
          kvCacheBytes: atMinimum.kvCache,
          overheadBytes: atMinimum.overhead,
          totalBytes: atMinimum.total,
          budgetBytes,
          minContextSize: lower,
        },
      },
    );
  }
  const fixed = estimateAt(0);
  const perContextToken = kvCacheBytesPerToken(shape) * options.sequences;
  // The compute buffer grows with the batch only up to a 512-token context; above that, KV is the only term.
  let contextSize = Math.floor((budgetBytes - fixed.total) / perContextToken);
  contextSize = Math.min(upper, Math.floor(contextSize / CONTEXT_STEP_TOKENS) * CONTEXT_STEP_TOKENS);
  while (contextSize > lower && estimateAt(contextSize).total > budgetBytes)
    contextSize -= CONTEXT_STEP_TOKENS;
  contextSize = Math.max(lower, contextSize);
  return {
    contextSize,
    embeddingContextSize,
    estimatedBytes: estimateAt(contextSize),
    budgetBytes,
    kvBytesPerToken: kvCacheBytesPerToken(shape),
  };
}
