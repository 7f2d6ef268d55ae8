// The contract between skills and the LLM runtime: structured (JSON-schema constrained) and plain generation.
// `shared/llm.ts` implements it on node-llama-cpp; unit tests may implement it with a scripted fake.

/** A JSON schema in the subset node-llama-cpp's grammar supports (object, enum, oneOf, bounded strings…). */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** Token counts and timings of one generation, recorded into task metadata. */
export interface LlmUsage {
  /** Tokens fed to the model for this request (after any reused prefix). */
  readonly promptTokens: number;
  /** Tokens of the shared system-prompt prefix that were reused instead of re-evaluated. */
  readonly reusedPrefixTokens: number;
  /** Tokens generated. */
  readonly completionTokens: number;
  /** Milliseconds from the start of the request to the first generated token. */
  readonly timeToFirstTokenMs: number | null;
  /** Milliseconds for the whole request, including retries. */
  readonly totalMs: number;
  /** Generated tokens per second of generation time. */
  readonly generationTokensPerSecond: number | null;
  /** 1 when the first output was valid, 2 when one retry was needed. */
  readonly attempts: number;
}

/** One structured-generation request. */
export interface StructuredRequest<T> {
  /** System prompt; requests sharing it reuse its evaluated prefix. */
  readonly system: string;
  /** The user turn. */
  readonly prompt: string;
  /** JSON schema the output is constrained to (grammar). Bound every string and array. */
  readonly schema: JsonSchema;
  /**
   * Our own validation after the grammar: returns the typed value or throws an AppError
   * `LLM_OUTPUT_INVALID` saying what is wrong (non-finite number, over-long string…). A throw triggers
   * one retry; a second failure is thrown to the caller.
   */
  readonly validate: (value: unknown) => T;
  /** Upper bound on generated tokens (default chosen by the runtime). */
  readonly maxTokens?: number;
  /** Sampling temperature; 0 (greedy) by default so answers are reproducible. */
  readonly temperature?: number;
  /** Seed for sampling when temperature > 0. */
  readonly seed?: number;
  /** Aborting stops generation; the promise rejects with AppError `CANCELED`. */
  readonly signal?: AbortSignal;
  /** Called with each generated text chunk (for streaming progress). */
  readonly onTextChunk?: (text: string) => void;
}

/** The result of a structured generation. */
export interface StructuredResult<T> {
  readonly value: T;
  readonly rawText: string;
  readonly usage: LlmUsage;
}

/** One plain-text generation request. */
export interface TextRequest {
  readonly system: string;
  readonly prompt: string;
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly seed?: number;
  readonly signal?: AbortSignal;
  readonly onTextChunk?: (text: string) => void;
}

/** The result of a plain-text generation. */
export interface TextResult {
  readonly text: string;
  readonly usage: LlmUsage;
}

/** What a skill needs from a language model. */
export interface LlmClient {
  /** The model's name (GGUF `general.name`), reported in task metadata. */
  readonly modelName: string;
  /** Generates JSON constrained to `schema`, validates it with `validate`, retries once on failure. */
  generateStructured<T>(request: StructuredRequest<T>): Promise<StructuredResult<T>>;
  /** Generates free text. */
  generateText(request: TextRequest): Promise<TextResult>;
  /** Embeds each text with the model (one vector per text, all of the same dimension). */
  embed(texts: readonly string[], signal?: AbortSignal): Promise<number[][]>;
  /** Releases the model, contexts and native resources. */
  close(): Promise<void>;
}
