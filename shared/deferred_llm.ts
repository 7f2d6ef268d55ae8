// A language model that loads in the background: the spoke starts serving at once, requests wait for the
// load, and a load that fails (no file, offline, over budget) makes every request fail with that reason,
// which the skills turn into answers without a narrative. Readiness reports which of the three it is.
import { toAppError, type AppError } from './errors.js';
import { openLlm, type LlmGpu, type LlmRuntime } from './llm.js';
import type { Logger } from './log.js';
import type {
  LlmClient,
  StructuredRequest,
  StructuredResult,
  TextRequest,
  TextResult,
} from './llm_client.js';

/** An {@link LlmClient} backed by a model that may still be loading. */
export interface DeferredLlm extends LlmClient {
  /** `ready: false` while loading; after a failed load `ready: true` with the reason (skills still answer). */
  readiness(): { ready: boolean; reason?: string };
  /** Why the model is unavailable, or undefined once it loaded (or while it loads). */
  readonly unavailableReason: string | undefined;
}

/** Wraps a loading model; `label` names it (the configured path or URI) until it has loaded. */
function createDeferredLlm(loading: Promise<LlmRuntime>, label: string): DeferredLlm {
  let runtime: LlmRuntime | null = null;
  let failure: AppError | null = null;
  const ready = loading.then(
    (loaded) => {
      runtime = loaded;
      return loaded;
    },
    (error: unknown) => {
      failure = toAppError(error, 'MODEL_INVALID');
      throw failure;
    },
  );
  // The rejection is observed through `failure`; keep Node from reporting it as unhandled.
  ready.catch(() => undefined);

  const loaded = async (): Promise<LlmRuntime> => {
    if (failure !== null) throw failure;
    return ready;
  };

  return {
    get modelName(): string {
      return runtime?.modelName ?? label;
    },
    get unavailableReason(): string | undefined {
      return failure === null ? undefined : `${failure.code}: ${failure.message}`;
    },
    readiness() {
      if (failure !== null) {
        return {
          ready: true,
          reason: `no language model (${failure.code}: ${failure.message}); answers carry no narrative`,
        };
      }
      if (runtime === null) return { ready: false, reason: `loading model ${label}` };
      return { ready: true };
    },
    async generateStructured<T>(request: StructuredRequest<T>): Promise<StructuredResult<T>> {
      return (await loaded()).generateStructured(request);
    },
    async generateText(request: TextRequest): Promise<TextResult> {
      return (await loaded()).generateText(request);
    },
    async embed(texts: readonly string[], signal?: AbortSignal): Promise<number[][]> {
      return (await loaded()).embed(texts, signal);
    },
    async close(): Promise<void> {
      if (runtime !== null) await runtime.close();
      else if (failure === null) {
        await ready.then((model) => model.close()).catch(() => undefined);
      }
    },
  };
}

/** A spoke's model settings (its MODEL_PATH and LLM_* variables). */
export interface SpokeModelSettings {
  /** Local GGUF path; unset or empty → no model. */
  readonly modelPath: string | undefined;
  readonly cacheDir: string;
  readonly maxMemoryMb: number;
  readonly maxContextSize: number;
  readonly threads?: number | undefined;
  readonly gpu?: LlmGpu | undefined;
  readonly log: Logger;
}

/** Starts loading a spoke's model in the background; null when none is configured. */
export function openSpokeLlm(settings: SpokeModelSettings): DeferredLlm | null {
  const { modelPath } = settings;
  if (modelPath === undefined || modelPath === '') return null;
  return createDeferredLlm(
    openLlm({
      model: modelPath,
      cacheDir: settings.cacheDir,
      maxMemoryMb: settings.maxMemoryMb,
      maxContextSize: settings.maxContextSize,
      log: settings.log,
      ...(settings.threads === undefined ? {} : { threads: settings.threads }),
      ...(settings.gpu === undefined ? {} : { gpu: settings.gpu }),
    }),
    modelPath,
  );
}
