// The LLM runtime on node-llama-cpp: resolves (and downloads) the model, checks it in JS, enforces the memory
// budget before loading, then serves structured/text generation and embeddings through LlmClient, with one
// queued context sequence per slot so a shared system prompt's evaluated prefix is reused.
import { availableParallelism } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import {
  createModelDownloader,
  getLlama,
  LlamaChatSession,
  LlamaLogLevel,
  MistralChatWrapper,
  resolveModelFile as resolveCachedModelFile,
  type ChatHistoryItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { AppError, errorMessage, isAppError } from './errors.js';
import { modelFileSize, validateModelFile } from './gguf.js';
import type {
  JsonSchema,
  LlmClient,
  LlmUsage,
  StructuredRequest,
  StructuredResult,
  TextRequest,
  TextResult,
} from './llm_client.js';
import { maxJsonLength } from './json_schema_size.js';
import { planModelMemory, type MemoryEstimate } from './llm_memory.js';
import { silentLogger, type Logger } from './log.js';

/** GPU backends the runtime may use; `false` (the default) forces the CPU build. */
export type LlmGpu = false | 'auto' | 'cuda' | 'vulkan' | 'metal';

/** Options of {@link openLlm}. */
export interface LlmOptions {
  /** A local GGUF path, or an `hf:user/repo/file.gguf` URI downloaded once into `cacheDir`. */
  readonly model: string;
  /** Directory remote models are downloaded to and looked up in. */
  readonly cacheDir: string;
  /** Memory budget (AGENT_MAX_MEMORY_MB) in MB of 1,000,000 bytes, enforced before loading. @defaultValue 7000 */
  readonly maxMemoryMb?: number;
  /** Largest context in tokens. @defaultValue 8192 */
  readonly maxContextSize?: number;
  /** Smallest acceptable context in tokens; below it the model is refused. @defaultValue 512 */
  readonly minContextSize?: number;
  /** CPU threads for evaluation. @defaultValue 1 when `os.availableParallelism() <= 2`, else min(4, cores) */
  readonly threads?: number;
  /** @defaultValue false */
  readonly gpu?: LlmGpu;
  /** Parallel context sequences (each holds the full context's KV cache). @defaultValue 1 */
  readonly sequences?: number;
  /** @defaultValue a silent logger */
  readonly log?: Logger;
  /** Allow downloading an `hf:` model that is not in `cacheDir`. @defaultValue true */
  readonly download?: boolean;
  /** Called as a download progresses; by default progress is logged as a text bar every 5 %. */
  readonly onDownloadProgress?: (downloadedBytes: number, totalBytes: number) => void;
  /** How long to wait for the model registry before treating it as offline, in ms. @defaultValue 30000 */
  readonly registryTimeoutMs?: number;
}

/** What was loaded and how the memory budget was spent. */
export interface LlmRuntimeInfo {
  /** Local path of the loaded GGUF file. */
  readonly modelPath: string;
  /** GGUF `general.name`. */
  readonly modelName: string;
  /** Context size chosen under the budget, in tokens. */
  readonly contextSize: number;
  /** Estimated resident bytes at that context. */
  readonly estimatedBytes: MemoryEstimate;
  /** The budget in bytes. */
  readonly budgetBytes: number;
  readonly threads: number;
  readonly gpu: LlmGpu;
}

/** The LLM runtime: an {@link LlmClient} plus what it loaded and its tokenizer. */
export interface LlmRuntime extends LlmClient {
  readonly info: LlmRuntimeInfo;
  /** Tokenizes text with the model's tokenizer (no special tokens). */
  tokenize(text: string): number[];
  /** Turns tokens back into text. */
  detokenize(tokens: readonly number[]): string;
}

const DEFAULT_MAX_MEMORY_MB = 7000;
const DEFAULT_MAX_CONTEXT = 8192;
const DEFAULT_MIN_CONTEXT = 512;
const DEFAULT_MAX_TOKENS = 512;
const DEFAULT_REGISTRY_TIMEOUT_MS = 30_000;
const GRAMMAR_CACHE_LIMIT = 32;
/** How much of the first rejection reason the retry prompt quotes back to the model. */
const MAX_RETRY_REASON_CHARS = 200;

/** Evaluation threads for a host: 1 on ≤ 2 cores (ggml's barrier stalls on a busy shared core), else min(4, cores). */
export function defaultThreadCount(cores: number = availableParallelism()): number {
  return cores <= 2 ? 1 : Math.min(4, cores);
}

const llamaInstances = new Map<string, Promise<Llama>>();

/**
 * The process-wide node-llama-cpp instance for a GPU choice and thread count (created once, never
 * compiled or downloaded: a missing binary fails fast). llama.cpp's warnings and errors go to the logger of
 * the first caller.
 */
function sharedLlama(gpu: LlmGpu, threads: number, log: Logger): Promise<Llama> {
  const key = `${String(gpu)}:${threads}`;
  let instance = llamaInstances.get(key);
  if (instance === undefined) {
    instance = getLlama({
      gpu,
      build: 'never',
      maxThreads: threads,
      logLevel: LlamaLogLevel.error,
      logger: (level, message) => log.warn({ llamaLevel: level }, message.trim()),
    });
    instance.catch(() => llamaInstances.delete(key));
    llamaInstances.set(key, instance);
  }
  return instance;
}

/** True for model references node-llama-cpp downloads (`hf:`, `huggingface:`, `https://`). */
export function isRemoteModel(model: string): boolean {
  return /^(hf:|hf\.co\/|huggingface:|huggingface\.co\/|https?:\/\/)/.test(model);
}

/** A one-line progress bar: `[########------------] 42% 1.84/4.37 GB`. */
export function formatDownloadProgress(downloadedBytes: number, totalBytes: number): string {
  const fraction = totalBytes > 0 ? Math.min(1, downloadedBytes / totalBytes) : 0;
  const filled = Math.round(fraction * 20);
  const gb = (bytes: number): string => (bytes / 1e9).toFixed(2);
  return `[${'#'.repeat(filled)}${'-'.repeat(20 - filled)}] ${Math.floor(fraction * 100)}% ${gb(downloadedBytes)}/${gb(totalBytes)} GB`;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The token budget of a structured answer when the caller sets none: the longest JSON the schema admits
 * (each token spells at least one character) plus a little room, so a valid answer is never truncated; a
 * schema with an unbounded string or array gets the plain default.
 */
function defaultStructuredMaxTokens(schema: JsonSchema): number {
  const longest = maxJsonLength(schema);
  return longest === null ? DEFAULT_MAX_TOKENS : longest + 16;
}

/** The default marketing model: Mistral-7B-Instruct-v0.3, Q4_K_M (4.37 GB), downloaded once into the cache. */
export const DEFAULT_MODEL_URI =
  'hf:bartowski/Mistral-7B-Instruct-v0.3-GGUF/Mistral-7B-Instruct-v0.3-Q4_K_M.gguf';

/** Options of {@link resolveModelFile}. */
export interface ResolveModelFileOptions {
  /** Directory remote models are downloaded to and looked up in. */
  readonly cacheDir: string;
  /** Allow downloading a remote model that is not in `cacheDir`. @defaultValue true */
  readonly download?: boolean;
  /** Called as a download progresses; by default progress is logged as a text bar every 5 %. */
  readonly onProgress?: (downloadedBytes: number, totalBytes: number) => void;
  /** How long to wait for the model registry before treating it as offline, in ms. @defaultValue 30000 */
  readonly registryTimeoutMs?: number;
  /** Aborts a download in progress (the promise rejects with `CANCELED`). */
  readonly signal?: AbortSignal;
  /** @defaultValue a silent logger */
  readonly log?: Logger;
}

/**
 * Resolves `model` to a local file. A local path must exist; an `hf:` URI is looked up in `cacheDir` and,
 * when absent and allowed, downloaded there with progress reports. Throws `MODEL_NOT_FOUND` whose message
 * says exactly where to put the file (the missing path, or the cache path the URI maps to).
 */
export async function resolveModelFile(model: string, options: ResolveModelFileOptions): Promise<string> {
  const log = options.log ?? silentLogger();
  if (!isRemoteModel(model)) {
    const path = resolvePath(model);
    await modelFileSize(path);
    return path;
  }
  const cacheDir = resolvePath(options.cacheDir);
  let expectedPath: string | undefined;
  try {
    return await resolveCachedModelFile(model, { directory: cacheDir, download: false, cli: false });
  } catch (error) {
    // node-llama-cpp's message names the cache file the URI maps to; keep it for the operator.
    expectedPath = /No model file found at "([^"]+)"/.exec(errorMessage(error))?.[1];
  }
  const where = expectedPath ?? `${cacheDir}/ (the file named by ${model})`;
  const notFound = (reason: string, cause?: unknown): AppError =>
    new AppError(
      'MODEL_NOT_FOUND',
      `model ${model} is not available (${reason}): put the GGUF file at ${where}`,
      {
        details: { uri: model, path: expectedPath ?? cacheDir },
        cause,
      },
    );
  if (options.download === false) throw notFound('not in the cache and downloads are disabled');
  if (options.signal?.aborted)
    throw new AppError('CANCELED', 'model download canceled', { cause: options.signal.reason });
  let lastReportedStep = -1;
  const report =
    options.onProgress ??
    ((downloaded: number, total: number): void => {
      const step = total > 0 ? Math.floor((downloaded / total) * 20) : 0;
      if (step === lastReportedStep) return;
      lastReportedStep = step;
      log.info(
        { model, downloadedBytes: downloaded, totalBytes: total },
        formatDownloadProgress(downloaded, total),
      );
    });
  // ipull (node-llama-cpp's downloader) adds SIGINT listeners that call process.exit(0) and leaves them behind
  // when the registry does not answer; the calling process owns its signals, so they are removed afterwards.
  const sigintBefore = new Set(process.listeners('SIGINT'));
  try {
    const downloader = await withTimeout(
      createModelDownloader({
        modelUri: model,
        dirPath: cacheDir,
        showCliProgress: false,
        skipExisting: true,
        onProgress: ({ downloadedSize, totalSize }) => report(downloadedSize, totalSize),
      }),
      options.registryTimeoutMs ?? DEFAULT_REGISTRY_TIMEOUT_MS,
      'the model registry',
    );
    log.info(
      { model, path: downloader.entrypointFilePath, bytes: downloader.totalSize },
      'downloading model',
    );
    return await downloader.download(options.signal === undefined ? {} : { signal: options.signal });
  } catch (error) {
    if (options.signal?.aborted) throw new AppError('CANCELED', 'model download canceled', { cause: error });
    throw notFound(`download failed: ${errorMessage(error)}`, error);
  } finally {
    for (const listener of process.listeners('SIGINT')) {
      if (!sigintBefore.has(listener)) process.off('SIGINT', listener);
    }
  }
}

function canceled(signal: AbortSignal | undefined, cause?: unknown): AppError {
  return new AppError('CANCELED', 'LLM request canceled', { cause: cause ?? signal?.reason });
}

/** One context sequence and the system prompt whose tokens it currently holds. */
interface SequenceSlot {
  readonly sequence: LlamaContextSequence;
  lastSystemPrompt: string | null;
  busy: boolean;
}

interface SlotWaiter {
  readonly systemPrompt: string;
  readonly grant: (slot: SequenceSlot) => void;
  readonly fail: (error: AppError) => void;
}

/** Serialises requests per sequence: a request takes a free slot (preferring one holding its system prompt) or waits. */
class SequenceQueue {
  private readonly waiters: SlotWaiter[] = [];
  private closedError: AppError | null = null;

  constructor(private readonly slots: readonly SequenceSlot[]) {}

  acquire(systemPrompt: string, signal: AbortSignal | undefined): Promise<SequenceSlot> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    if (signal?.aborted) return Promise.reject(canceled(signal));
    const free = this.pickFree(systemPrompt);
    if (free !== undefined) {
      free.busy = true;
      return Promise.resolve(free);
    }
    return new Promise<SequenceSlot>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(canceled(signal));
      };
      const waiter: SlotWaiter = {
        systemPrompt,
        grant: (slot) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        fail: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(slot: SequenceSlot): void {
    const next = this.waiters.shift();
    if (next === undefined) {
      slot.busy = false;
      return;
    }
    next.grant(slot);
  }

  /** Fails every waiter and every later acquire with `error`. */
  close(error: AppError): void {
    this.closedError = error;
    for (const waiter of this.waiters.splice(0)) waiter.fail(error);
  }

  private pickFree(systemPrompt: string): SequenceSlot | undefined {
    const free = this.slots.filter((slot) => !slot.busy);
    return free.find((slot) => slot.lastSystemPrompt === systemPrompt) ?? free[0];
  }
}

/** What one generation attempt produced and measured. */
interface AttemptOutcome {
  readonly text: string;
  readonly stopReason: string;
  readonly promptTokens: number;
  readonly reusedPrefixTokens: number;
  readonly completionTokens: number;
  readonly firstTokenAt: number | null;
  readonly endedAt: number;
}

interface AttemptRequest {
  readonly system: string;
  readonly prompt: string;
  readonly grammar?: LlamaGrammar;
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly seed?: number;
  readonly signal?: AbortSignal;
  readonly onTextChunk?: (text: string) => void;
}

function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const limit = Math.min(a.length, b.length);
  let index = 0;
  while (index < limit && a[index] === b[index]) index++;
  return index;
}

function usageOf(outcomes: readonly AttemptOutcome[], startedAt: number, endedAt: number): LlmUsage {
  const first = outcomes[0];
  let completionTokens = 0;
  let generationMs = 0;
  let generationTokens = 0;
  for (const outcome of outcomes) {
    completionTokens += outcome.completionTokens;
    if (outcome.firstTokenAt !== null && outcome.completionTokens > 1) {
      generationMs += outcome.endedAt - outcome.firstTokenAt;
      generationTokens += outcome.completionTokens - 1;
    }
  }
  return {
    promptTokens: outcomes.reduce((sum, outcome) => sum + outcome.promptTokens, 0),
    reusedPrefixTokens: outcomes.reduce((sum, outcome) => sum + outcome.reusedPrefixTokens, 0),
    completionTokens,
    timeToFirstTokenMs: first?.firstTokenAt == null ? null : first.firstTokenAt - startedAt,
    totalMs: endedAt - startedAt,
    generationTokensPerSecond: generationMs > 0 ? (generationTokens * 1000) / generationMs : null,
    attempts: outcomes.length,
  };
}

/** Finds a non-finite number (JSON.parse turns `5e4446` into Infinity); returns its JSON path. */
function findNonFiniteNumber(value: unknown, path = '$'): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : path;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findNonFiniteNumber(item, `${path}[${index}]`);
      if (found !== null) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const found = findNonFiniteNumber(item, `${path}.${key}`);
      if (found !== null) return found;
    }
  }
  return null;
}

function parseModelJson(outcome: AttemptOutcome): unknown {
  if (outcome.stopReason === 'maxTokens') {
    throw new AppError(
      'LLM_OUTPUT_INVALID',
      `output truncated at maxTokens after ${outcome.completionTokens} tokens`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(outcome.text);
  } catch (error) {
    throw new AppError('LLM_OUTPUT_INVALID', `output is not JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const nonFinite = findNonFiniteNumber(value);
  if (nonFinite !== null) throw new AppError('LLM_OUTPUT_INVALID', `number at ${nonFinite} is not finite`);
  return value;
}

class NodeLlamaRuntime implements LlmRuntime {
  readonly modelName: string;
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  private readonly chatWrapper = new MistralChatWrapper();
  private readonly queue: SequenceQueue;
  private embeddingContext: Promise<LlamaEmbeddingContext> | null = null;
  private closed = false;

  constructor(
    readonly info: LlmRuntimeInfo,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    slots: readonly SequenceSlot[],
    private readonly embeddingContextSize: number,
    private readonly log: Logger,
  ) {
    this.modelName = info.modelName;
    this.queue = new SequenceQueue(slots);
  }

  tokenize(text: string): number[] {
    return [...this.model.tokenize(text)];
  }

  detokenize(tokens: readonly number[]): string {
    return this.model.detokenize(tokens as readonly Token[]);
  }

  async generateStructured<T>(request: StructuredRequest<T>): Promise<StructuredResult<T>> {
    const startedAt = performance.now();
    this.assertOpen();
    const grammar = await this.grammarFor(request.schema);
    return this.withSlot(request.system, request.signal, async (slot) => {
      const outcomes: AttemptOutcome[] = [];
      const reasons: string[] = [];
      for (let attempt = 1; attempt <= 2; attempt++) {
        const prompt =
          attempt === 1
            ? request.prompt
            : `${request.prompt}\n\n(Your previous answer was rejected: ${reasons[0]?.slice(0, MAX_RETRY_REASON_CHARS)}. Answer again with JSON that satisfies the schema.)`;
        const outcome = await this.runAttempt(slot, {
          system: request.system,
          prompt,
          grammar,
          maxTokens: request.maxTokens ?? defaultStructuredMaxTokens(request.schema),
          temperature: request.temperature,
          seed: request.seed,
          signal: request.signal,
          onTextChunk: request.onTextChunk,
        });
        outcomes.push(outcome);
        try {
          const value = request.validate(parseModelJson(outcome));
          return { value, rawText: outcome.text, usage: usageOf(outcomes, startedAt, performance.now()) };
        } catch (error) {
          const reason = errorMessage(error);
          reasons.push(reason);
          this.log.warn({ attempt, reason }, 'structured LLM output rejected');
        }
      }
      const usage = usageOf(outcomes, startedAt, performance.now());
      throw new AppError(
        'LLM_OUTPUT_INVALID',
        `model output rejected twice: first ${reasons[0]}; then ${reasons[1]}`,
        { details: { reasons, attempts: usage.attempts, usage } },
      );
    });
  }

  async generateText(request: TextRequest): Promise<TextResult> {
    const startedAt = performance.now();
    this.assertOpen();
    return this.withSlot(request.system, request.signal, async (slot) => {
      const outcome = await this.runAttempt(slot, request);
      return { text: outcome.text, usage: usageOf([outcome], startedAt, performance.now()) };
    });
  }

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<number[][]> {
    this.assertOpen();
    if (signal?.aborted) throw canceled(signal);
    this.embeddingContext ??= this.model
      .createEmbeddingContext({ contextSize: this.embeddingContextSize, threads: this.info.threads })
      .catch((error: unknown) => {
        this.embeddingContext = null;
        throw new AppError('INTERNAL', `embedding context could not be created: ${errorMessage(error)}`, {
          cause: error,
        });
      });
    const context = await this.embeddingContext;
    const vectors: number[][] = [];
    for (const text of texts) {
      if (signal?.aborted) throw canceled(signal);
      const tokens = this.model.tokenize(text);
      if (tokens.length >= this.embeddingContextSize) {
        throw new AppError(
          'PAYLOAD_TOO_LARGE',
          `text of ${tokens.length} tokens exceeds the embedding context of ${this.embeddingContextSize} tokens`,
          { details: { tokens: tokens.length, limit: this.embeddingContextSize } },
        );
      }
      const embedding = await context.getEmbeddingFor(tokens);
      vectors.push([...embedding.vector]);
    }
    return vectors;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.close(new AppError('CANCELED', 'LLM runtime closed'));
    const embedding = this.embeddingContext;
    this.embeddingContext = null;
    if (embedding !== null) await (await embedding.catch(() => null))?.dispose();
    await this.context.dispose();
    await this.model.dispose();
    this.grammars.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new AppError('SPOKE_UNAVAILABLE', 'LLM runtime is closed');
  }

  private grammarFor(schema: JsonSchema): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema);
    let grammar = this.grammars.get(key);
    if (grammar === undefined) {
      // The schema is the caller's; node-llama-cpp checks which keywords it supports and throws otherwise.
      grammar = this.llama
        .createGrammarForJsonSchema(schema as Parameters<Llama['createGrammarForJsonSchema']>[0])
        .catch((error: unknown) => {
          this.grammars.delete(key);
          throw new AppError('BAD_REQUEST', `JSON schema not usable as a grammar: ${errorMessage(error)}`, {
            cause: error,
          });
        });
      if (this.grammars.size >= GRAMMAR_CACHE_LIMIT) {
        const oldest = this.grammars.keys().next().value;
        if (oldest !== undefined) this.grammars.delete(oldest);
      }
      this.grammars.set(key, grammar);
    }
    return grammar;
  }

  private async withSlot<R>(
    systemPrompt: string,
    signal: AbortSignal | undefined,
    work: (slot: SequenceSlot) => Promise<R>,
  ): Promise<R> {
    const slot = await this.queue.acquire(systemPrompt, signal);
    try {
      return await work(slot);
    } finally {
      this.queue.release(slot);
    }
  }

  /** Renders the prompt exactly as the chat session will, to count tokens and the prefix the sequence still holds. */
  private promptTokens(system: string, prompt: string): Token[] {
    const chatHistory: ChatHistoryItem[] = [
      { type: 'system', text: system },
      { type: 'user', text: prompt },
      { type: 'model', response: [] },
    ];
    return this.chatWrapper.generateContextState({ chatHistory }).contextText.tokenize(this.model.tokenizer);
  }

  private async runAttempt(slot: SequenceSlot, request: AttemptRequest): Promise<AttemptOutcome> {
    if (request.signal?.aborted) throw canceled(request.signal);
    const promptTokens = this.promptTokens(request.system, request.prompt);
    const contextSize = this.info.contextSize;
    const room = contextSize - promptTokens.length;
    const maxTokens = Math.min(request.maxTokens ?? DEFAULT_MAX_TOKENS, room);
    if (maxTokens < 1) {
      throw new AppError(
        'PAYLOAD_TOO_LARGE',
        `prompt of ${promptTokens.length} tokens leaves no room in the ${contextSize}-token context`,
        { details: { promptTokens: promptTokens.length, contextSize } },
      );
    }
    const reusedPrefixTokens = Math.min(
      commonPrefixLength(slot.sequence.contextTokens, promptTokens),
      promptTokens.length - 1,
    );
    const session = new LlamaChatSession({
      contextSequence: slot.sequence,
      chatWrapper: this.chatWrapper,
      systemPrompt: request.system,
      autoDisposeSequence: false,
    });
    let completionTokens = 0;
    let firstTokenAt: number | null = null;
    try {
      const response = await session.promptWithMeta(request.prompt, {
        maxTokens,
        temperature: request.temperature ?? 0,
        ...(request.seed === undefined ? {} : { seed: request.seed }),
        ...(request.grammar === undefined ? {} : { grammar: request.grammar }),
        ...(request.signal === undefined ? {} : { signal: request.signal }),
        onToken: (tokens) => {
          if (tokens.length > 0 && firstTokenAt === null) firstTokenAt = performance.now();
          completionTokens += tokens.length;
        },
        ...(request.onTextChunk === undefined ? {} : { onTextChunk: request.onTextChunk }),
      });
      slot.lastSystemPrompt = request.system;
      return {
        text: response.responseText,
        stopReason: response.stopReason,
        promptTokens: promptTokens.length - reusedPrefixTokens,
        reusedPrefixTokens,
        completionTokens,
        firstTokenAt,
        endedAt: performance.now(),
      };
    } catch (error) {
      slot.lastSystemPrompt = null;
      if (request.signal?.aborted) throw canceled(request.signal, error);
      if (this.closed)
        throw new AppError('CANCELED', 'LLM runtime closed during the request', { cause: error });
      if (isAppError(error)) throw error;
      throw new AppError('INTERNAL', `generation failed: ${errorMessage(error)}`, { cause: error });
    } finally {
      session.dispose({ disposeSequence: false });
    }
  }
}

/**
 * Opens the LLM runtime: resolves the model (downloading an `hf:` URI once), validates the file in JS
 * (`MODEL_INVALID` instead of a native abort), plans memory against `maxMemoryMb` (`MODEL_TOO_LARGE` before
 * anything is loaded), then loads the model with `useMmap: false` and creates one context of the chosen size
 * with `sequences` sequences. Close it with `close()`.
 */
export async function openLlm(options: LlmOptions): Promise<LlmRuntime> {
  const log = options.log ?? silentLogger();
  const gpu = options.gpu ?? false;
  const threads = options.threads ?? defaultThreadCount();
  const sequences = options.sequences ?? 1;
  const maxMemoryMb = options.maxMemoryMb ?? DEFAULT_MAX_MEMORY_MB;
  const minContextSize = options.minContextSize ?? DEFAULT_MIN_CONTEXT;
  const maxContextSize = options.maxContextSize ?? DEFAULT_MAX_CONTEXT;
  for (const [name, value] of Object.entries({
    threads,
    sequences,
    maxMemoryMb,
    minContextSize,
    maxContextSize,
  })) {
    if (!Number.isInteger(value) || value < 1) {
      throw new AppError('CONFIG_INVALID', `LLM option ${name} must be a positive integer, got ${value}`);
    }
  }
  if (minContextSize > maxContextSize) {
    throw new AppError(
      'CONFIG_INVALID',
      `minContextSize ${minContextSize} exceeds maxContextSize ${maxContextSize}`,
    );
  }

  const modelPath = await resolveModelFile(options.model, {
    cacheDir: options.cacheDir,
    log,
    ...(options.download === undefined ? {} : { download: options.download }),
    ...(options.onDownloadProgress === undefined ? {} : { onProgress: options.onDownloadProgress }),
    ...(options.registryTimeoutMs === undefined ? {} : { registryTimeoutMs: options.registryTimeoutMs }),
  });
  const summary = await validateModelFile(modelPath);
  const plan = planModelMemory(summary, {
    maxMemoryMb,
    maxContextSize,
    minContextSize,
    sequences,
    embeddingContextSize: minContextSize,
  });
  log.info(
    {
      modelPath,
      contextSize: plan.contextSize,
      estimatedBytes: plan.estimatedBytes,
      budgetBytes: plan.budgetBytes,
      threads,
      gpu,
    },
    'loading model within the memory budget',
  );

  const llama = await sharedLlama(gpu, threads, log);
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath, useMmap: false, gpuLayers: gpu === false ? 0 : 'auto' });
  } catch (error) {
    throw new AppError('MODEL_INVALID', `llama.cpp refused ${modelPath}: ${errorMessage(error)}`, {
      details: { path: modelPath },
      cause: error,
    });
  }
  let context: LlamaContext;
  try {
    context = await model.createContext({ contextSize: plan.contextSize, sequences, threads });
  } catch (error) {
    await model.dispose();
    throw new AppError(
      'MODEL_TOO_LARGE',
      `context of ${plan.contextSize} tokens could not be created: ${errorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
  const slots: SequenceSlot[] = [];
  for (let index = 0; index < sequences; index++) {
    slots.push({ sequence: context.getSequence(), lastSystemPrompt: null, busy: false });
  }
  const info: LlmRuntimeInfo = {
    modelPath,
    modelName: summary.name,
    contextSize: context.contextSize,
    estimatedBytes: plan.estimatedBytes,
    budgetBytes: plan.budgetBytes,
    threads,
    gpu,
  };
  return new NodeLlamaRuntime(info, llama, model, context, slots, plan.embeddingContextSize, log);
}
