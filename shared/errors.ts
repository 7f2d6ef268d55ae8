// The one error type that crosses module and process boundaries, and the single table that maps each
// error code to its HTTP status, JSON-RPC code and WebSocket close code.

/** Every error code the system emits. Callers act on the code, never on the message text. */
export const ERROR_CODES = [
  'BAD_REQUEST',
  'PARSE_ERROR',
  'INVALID_REQUEST',
  'METHOD_NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'TASK_NOT_FOUND',
  'TASK_NOT_CANCELABLE',
  'UNSUPPORTED_OPERATION',
  'SPOKE_UNATTESTED',
  'SPOKE_UNAVAILABLE',
  'QUEUE_FULL',
  'DEADLINE_EXCEEDED',
  'CANCELED',
  'RATE_LIMITED',
  'VALIDATION_FAILED',
  'CONFIG_INVALID',
  'MODEL_NOT_FOUND',
  'MODEL_INVALID',
  'MODEL_TOO_LARGE',
  'LLM_OUTPUT_INVALID',
  'PGVECTOR_MISSING',
  'CONFLICT',
  'UPSTREAM_ERROR',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** How one error code is carried on each transport. */
export interface ErrorMapping {
  /** HTTP status of a response that carries this error. */
  readonly http: number;
  /** JSON-RPC `error.code`. A2A-reserved codes are used only for their A2A meaning; hub codes sit at -310xx. */
  readonly jsonRpc: number;
  /** WebSocket close code when the error ends a connection. */
  readonly wsClose: number;
  /** Whether a caller may retry the same request later. */
  readonly retryable: boolean;
}

/** The one table from error code to transport representation. */
export const ERROR_TABLE: Readonly<Record<ErrorCode, ErrorMapping>> = Object.freeze({
  BAD_REQUEST: { http: 400, jsonRpc: -32602, wsClose: 1008, retryable: false },
  PARSE_ERROR: { http: 400, jsonRpc: -32700, wsClose: 1007, retryable: false },
  INVALID_REQUEST: { http: 400, jsonRpc: -32600, wsClose: 1008, retryable: false },
  METHOD_NOT_FOUND: { http: 404, jsonRpc: -32601, wsClose: 1008, retryable: false },
  PAYLOAD_TOO_LARGE: { http: 413, jsonRpc: -31013, wsClose: 1009, retryable: false },
  UNAUTHORIZED: { http: 401, jsonRpc: -31001, wsClose: 1008, retryable: false },
  FORBIDDEN: { http: 403, jsonRpc: -31003, wsClose: 1008, retryable: false },
  NOT_FOUND: { http: 404, jsonRpc: -31004, wsClose: 1008, retryable: false },
  TASK_NOT_FOUND: { http: 404, jsonRpc: -32001, wsClose: 1008, retryable: false },
  TASK_NOT_CANCELABLE: { http: 400, jsonRpc: -32002, wsClose: 1008, retryable: false },
  UNSUPPORTED_OPERATION: { http: 400, jsonRpc: -32004, wsClose: 1008, retryable: false },
  SPOKE_UNATTESTED: { http: 503, jsonRpc: -31010, wsClose: 1013, retryable: true },
  SPOKE_UNAVAILABLE: { http: 503, jsonRpc: -31011, wsClose: 1013, retryable: true },
  QUEUE_FULL: { http: 429, jsonRpc: -31012, wsClose: 1013, retryable: true },
  DEADLINE_EXCEEDED: { http: 504, jsonRpc: -31014, wsClose: 1011, retryable: true },
  CANCELED: { http: 499, jsonRpc: -31015, wsClose: 1000, retryable: false },
  RATE_LIMITED: { http: 429, jsonRpc: -31016, wsClose: 1008, retryable: true },
  VALIDATION_FAILED: { http: 400, jsonRpc: -31017, wsClose: 1008, retryable: false },
  CONFIG_INVALID: { http: 500, jsonRpc: -31018, wsClose: 1011, retryable: false },
  MODEL_NOT_FOUND: { http: 503, jsonRpc: -31020, wsClose: 1011, retryable: false },
  MODEL_INVALID: { http: 503, jsonRpc: -31021, wsClose: 1011, retryable: false },
  MODEL_TOO_LARGE: { http: 503, jsonRpc: -31022, wsClose: 1011, retryable: false },
  LLM_OUTPUT_INVALID: { http: 502, jsonRpc: -31023, wsClose: 1011, retryable: true },
  PGVECTOR_MISSING: { http: 503, jsonRpc: -31024, wsClose: 1011, retryable: false },
  CONFLICT: { http: 409, jsonRpc: -31025, wsClose: 1008, retryable: false },
  UPSTREAM_ERROR: { http: 502, jsonRpc: -31026, wsClose: 1011, retryable: true },
  INTERNAL: { http: 500, jsonRpc: -32603, wsClose: 1011, retryable: false },
});

/** Options of an {@link AppError}. */
export interface AppErrorOptions {
  /** The underlying error, kept for logs. */
  readonly cause?: unknown;
  /** Machine-readable details that are safe to show a caller (row numbers, field names, limits). */
  readonly details?: Readonly<Record<string, unknown>>;
  /** Seconds after which a retry may succeed (sent as `Retry-After`). */
  readonly retryAfterSeconds?: number;
}

/** The base error of the system: a stable string code, a human message, optional details and cause. */
export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** The transport mapping of this error's code. */
  get mapping(): ErrorMapping {
    return ERROR_TABLE[this.code];
  }

  /** The JSON body sent to HTTP callers: `{error: {code, message, details?}}`. */
  toJSON(): { error: { code: ErrorCode; message: string; details?: Readonly<Record<string, unknown>> } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

/** True when `value` is an {@link AppError}, optionally with the given code. */
export function isAppError(value: unknown, code?: ErrorCode): value is AppError {
  return value instanceof AppError && (code === undefined || value.code === code);
}

/** The message of anything thrown: an Error's message, else the value as a string. */
export function errorMessage(value: unknown): string {
  return value instanceof Error ? value.message : String(value);
}

/** Wraps anything thrown into an {@link AppError}; an AppError passes through unchanged. */
export function toAppError(value: unknown, fallback: ErrorCode = 'INTERNAL'): AppError {
  if (value instanceof AppError) return value;
  return new AppError(fallback, errorMessage(value), { cause: value });
}

/** True when `value` is one of {@link ERROR_CODES} (a code read back from the wire or from task metadata). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** Looks up the error code whose JSON-RPC code is `jsonRpcCode` (used when an error comes back over the wire). */
export function errorCodeFromJsonRpc(jsonRpcCode: number): ErrorCode | undefined {
  return ERROR_CODES.find((code) => ERROR_TABLE[code].jsonRpc === jsonRpcCode);
}

/** Fails the type check when a switch over a union misses a member. */
export function assertNever(value: never, what = 'value'): never {
  throw new AppError('INTERNAL', `unexpected ${what}: ${JSON.stringify(value)}`);
}
