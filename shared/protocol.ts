// The wire protocol: A2A v1.0 objects (ProtoJSON shapes) and JSON-RPC 2.0 envelopes as zod schemas, the
// frames of the hub ⇄ spoke WebSocket binding (one JSON-RPC object per text frame, streams ended by a
// `streamEnd` frame), size limits, and the mapping between AppError and JSON-RPC errors.
import { z } from 'zod';
import { AppError, ERROR_TABLE, errorCodeFromJsonRpc, isErrorCode, type ErrorCode } from './errors.js';

/** A2A protocol version spoken everywhere; sent as the `A2A-Version` header on HTTP. */
export const A2A_VERSION = '1.0';
/** WebSocket subprotocol of the hub ⇄ spoke link. */
export const LINK_SUBPROTOCOL = 'agenthub.v1';
/** Path of the hub link on a spoke's API port. */
export const HUB_LINK_PATH = '/v1/hub';
/** `protocolBinding` URI that agent cards use to declare the WebSocket binding. */
export const WS_BINDING_URI = 'https://agenthub.local/bindings/a2a-jsonrpc-ws/v1';
/** Domain of the `google.rpc.ErrorInfo` entries attached to our JSON-RPC errors. */
export const ERROR_DOMAIN = 'agenthub.local';

/** Size limits applied at every boundary. */
export const LIMITS = Object.freeze({
  /**
   * Largest WebSocket text frame on the hub link, in bytes. ATTESTATION.md suggests 64 KiB; campaign data
   * parts (thousands of CSV rows) need more, so links allow 1 MiB and every other bound stays tight.
   */
  maxFrameBytes: 1024 * 1024,
  /** Largest HTTP JSON body accepted by hub and spokes, in bytes. */
  maxHttpBodyBytes: 1024 * 1024,
  /** Largest text part, in characters. */
  maxTextChars: 512 * 1024,
  /** Most parts in one message or artifact. */
  maxParts: 32,
  /** Longest identifier (messageId, taskId, contextId, JSON-RPC id), in characters. */
  maxIdChars: 128,
});

/** Keys we use inside A2A `metadata` objects (our extensions; see the hub agent card). */
export const META = Object.freeze({
  /** Absolute deadline of the request, ms since the epoch. */
  deadline: 'agenthub/deadline',
  /** Idle timeout of the request in ms: no event for this long → DEADLINE_EXCEEDED. */
  idleTimeoutMs: 'agenthub/idleTimeoutMs',
  /** W3C trace context. */
  traceparent: 'traceparent',
  /** Skill id the request is for. */
  skill: 'agenthub/skill',
  /** Sequence number of an event in its task's event log (monotonic per task). */
  seq: 'agenthub/seq',
  /** Epoch of the hub's event log; a change means earlier sequence numbers are gone. */
  epoch: 'agenthub/epoch',
  /** `SubscribeToTask` replay start: events with seq greater than this are sent. */
  afterSeq: 'agenthub/afterSeq',
  /** The spoke (tenant) that asked, when a spoke asks another through the hub. */
  caller: 'agenthub/caller',
});

const id = z.string().min(1).max(LIMITS.maxIdChars);
const metadata = z.record(z.string().max(256), z.unknown());
const timestamp = z.string().datetime({ offset: true });

/** A2A `Part`: exactly one of `text`, `data`, `url`, `raw`. */
export const PartSchema = z
  .object({
    text: z.string().max(LIMITS.maxTextChars).optional(),
    data: z.unknown().optional(),
    url: z.string().url().max(2048).optional(),
    raw: z.string().max(LIMITS.maxTextChars).optional(),
    mediaType: z.string().max(128).optional(),
    filename: z.string().max(256).optional(),
    metadata: metadata.optional(),
  })
  .strict()
  .refine(
    (part) => [part.text, part.data, part.url, part.raw].filter((value) => value !== undefined).length === 1,
    { message: 'a part must have exactly one of text, data, url, raw' },
  );
export type Part = z.infer<typeof PartSchema>;

export const RoleSchema = z.enum(['ROLE_USER', 'ROLE_AGENT']);
export type Role = z.infer<typeof RoleSchema>;

/** A2A `Message`. */
export const MessageSchema = z
  .object({
    messageId: id,
    contextId: id.optional(),
    taskId: id.optional(),
    role: RoleSchema,
    parts: z.array(PartSchema).min(1).max(LIMITS.maxParts),
    metadata: metadata.optional(),
    extensions: z.array(z.string().max(512)).max(16).optional(),
    referenceTaskIds: z.array(id).max(32).optional(),
  })
  .strict();
export type Message = z.infer<typeof MessageSchema>;

export const TASK_STATES = [
  'TASK_STATE_SUBMITTED',
  'TASK_STATE_WORKING',
  'TASK_STATE_COMPLETED',
  'TASK_STATE_FAILED',
  'TASK_STATE_CANCELED',
  'TASK_STATE_REJECTED',
  'TASK_STATE_INPUT_REQUIRED',
  'TASK_STATE_AUTH_REQUIRED',
] as const;
export const TaskStateSchema = z.enum(TASK_STATES);
export type TaskState = z.infer<typeof TaskStateSchema>;

/** True for states a task never leaves. */
export function isTerminalState(state: TaskState): boolean {
  return (
    state === 'TASK_STATE_COMPLETED' ||
    state === 'TASK_STATE_FAILED' ||
    state === 'TASK_STATE_CANCELED' ||
    state === 'TASK_STATE_REJECTED'
  );
}

export const TaskStatusSchema = z
  .object({ state: TaskStateSchema, message: MessageSchema.optional(), timestamp: timestamp.optional() })
  .strict();
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

export const ArtifactSchema = z
  .object({
    artifactId: id,
    name: z.string().max(256).optional(),
    description: z.string().max(2048).optional(),
    parts: z.array(PartSchema).min(1).max(LIMITS.maxParts),
    metadata: metadata.optional(),
    extensions: z.array(z.string().max(512)).max(16).optional(),
  })
  .strict();
export type Artifact = z.infer<typeof ArtifactSchema>;

/** A2A `Task`. */
export const TaskSchema = z
  .object({
    id,
    contextId: id,
    status: TaskStatusSchema,
    artifacts: z.array(ArtifactSchema).max(64).optional(),
    history: z.array(MessageSchema).max(1000).optional(),
    metadata: metadata.optional(),
  })
  .strict();
export type Task = z.infer<typeof TaskSchema>;

export const TaskStatusUpdateEventSchema = z
  .object({ taskId: id, contextId: id, status: TaskStatusSchema, metadata: metadata.optional() })
  .strict();
export type TaskStatusUpdateEvent = z.infer<typeof TaskStatusUpdateEventSchema>;

export const TaskArtifactUpdateEventSchema = z
  .object({
    taskId: id,
    contextId: id,
    artifact: ArtifactSchema,
    append: z.boolean().optional(),
    lastChunk: z.boolean().optional(),
    metadata: metadata.optional(),
  })
  .strict();
export type TaskArtifactUpdateEvent = z.infer<typeof TaskArtifactUpdateEventSchema>;

/** A2A `StreamResponse`: exactly one of task, message, statusUpdate, artifactUpdate. */
export const StreamResponseSchema = z.union([
  z.object({ task: TaskSchema }).strict(),
  z.object({ message: MessageSchema }).strict(),
  z.object({ statusUpdate: TaskStatusUpdateEventSchema }).strict(),
  z.object({ artifactUpdate: TaskArtifactUpdateEventSchema }).strict(),
]);
export type StreamResponse = z.infer<typeof StreamResponseSchema>;

/** A2A `SendMessageResponse`: a task, or a direct message. */
export const SendMessageResultSchema = z.union([
  z.object({ task: TaskSchema }).strict(),
  z.object({ message: MessageSchema }).strict(),
]);
export type SendMessageResult = z.infer<typeof SendMessageResultSchema>;

/** A tenant: a spoke name (the same pattern as attestation's SPOKE_NAME_PATTERN). */
const TENANT = /^[a-z][a-z0-9-]{0,31}$/;
const tenant = z
  .string()
  .regex(TENANT, 'tenant must be a spoke name (lower-case letters, digits, dashes)')
  .optional();

export const SendMessageParamsSchema = z
  .object({
    tenant,
    message: MessageSchema,
    configuration: z
      .object({
        acceptedOutputModes: z.array(z.string().max(128)).max(16).optional(),
        historyLength: z.number().int().min(0).max(1000).optional(),
        returnImmediately: z.boolean().optional(),
      })
      .strict()
      .optional(),
    metadata: metadata.optional(),
  })
  .strict();
export type SendMessageParams = z.infer<typeof SendMessageParamsSchema>;

export const GetTaskParamsSchema = z
  .object({ tenant, id, historyLength: z.number().int().min(0).max(1000).optional() })
  .strict();
export type GetTaskParams = z.infer<typeof GetTaskParamsSchema>;

export const ListTasksParamsSchema = z
  .object({
    tenant,
    contextId: id.optional(),
    status: TaskStateSchema.optional(),
    pageSize: z.number().int().min(1).max(100).optional(),
    pageToken: z.string().max(256).optional(),
    historyLength: z.number().int().min(0).max(1000).optional(),
    includeArtifacts: z.boolean().optional(),
    statusTimestampAfter: timestamp.optional(),
  })
  .strict();
export type ListTasksParams = z.infer<typeof ListTasksParamsSchema>;

export const ListTasksResultSchema = z
  .object({
    tasks: z.array(TaskSchema),
    nextPageToken: z.string(),
    pageSize: z.number().int(),
    totalSize: z.number().int(),
  })
  .strict();
export type ListTasksResult = z.infer<typeof ListTasksResultSchema>;

export const CancelTaskParamsSchema = z.object({ tenant, id, metadata: metadata.optional() }).strict();
export type CancelTaskParams = z.infer<typeof CancelTaskParamsSchema>;

/** `SubscribeToTask`; `metadata[META.afterSeq]` asks the hub to replay events after that sequence number. */
export const SubscribeToTaskParamsSchema = z.object({ tenant, id, metadata: metadata.optional() }).strict();
export type SubscribeToTaskParams = z.infer<typeof SubscribeToTaskParamsSchema>;

/** The A2A methods we serve, with the schema of each one's params. */
export const A2A_METHODS = {
  SendMessage: SendMessageParamsSchema,
  SendStreamingMessage: SendMessageParamsSchema,
  GetTask: GetTaskParamsSchema,
  ListTasks: ListTasksParamsSchema,
  CancelTask: CancelTaskParamsSchema,
  SubscribeToTask: SubscribeToTaskParamsSchema,
} as const;
export type A2aMethod = keyof typeof A2A_METHODS;

export function isA2aMethod(method: string): method is A2aMethod {
  return Object.hasOwn(A2A_METHODS, method);
}

/** Parses the params of an A2A method; throws AppError `BAD_REQUEST` naming the bad fields. */
export function parseA2aParams<M extends A2aMethod>(
  method: M,
  params: unknown,
): z.infer<(typeof A2A_METHODS)[M]> {
  const result = A2A_METHODS[method].safeParse(params ?? {});
  if (!result.success) {
    throw new AppError('BAD_REQUEST', `invalid params for ${method}: ${describeZodError(result.error)}`, {
      details: {
        method,
        issues: result.error.issues.map((issue) => ({ path: issue.path, message: issue.message })),
      },
    });
  }
  return result.data as z.infer<(typeof A2A_METHODS)[M]>;
}

// ---- hand-written guards for the routed hot path ------------------------------------------------------
// Each accepts a subset of what its zod schema accepts (a value they pass, the schema passes unchanged);
// callers fall back to the schema for anything else, so errors keep their codes and messages.

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIdString(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= LIMITS.maxIdChars;
}

function isShortString(value: unknown, max: number): boolean {
  return typeof value === 'string' && value.length <= max;
}

function isMetadata(value: unknown): boolean {
  if (!isObject(value)) return false;
  for (const key in value) if (key.length > 256) return false;
  return true;
}

function isStringArray(value: unknown, maxItems: number, check: (item: unknown) => boolean): boolean {
  if (!Array.isArray(value) || value.length > maxItems) return false;
  for (const item of value) if (!check(item)) return false;
  return true;
}

/** Text and data parts (url and raw parts go through zod). */
function isSimplePart(value: unknown): boolean {
  if (!isObject(value)) return false;
  let kinds = 0;
  for (const key in value) {
    const member = value[key];
    switch (key) {
      case 'text':
        if (member === undefined) break;
        if (!isShortString(member, LIMITS.maxTextChars)) return false;
        kinds += 1;
        break;
      case 'data':
        if (member !== undefined) kinds += 1;
        break;
      case 'mediaType':
        if (member !== undefined && !isShortString(member, 128)) return false;
        break;
      case 'filename':
        if (member !== undefined && !isShortString(member, 256)) return false;
        break;
      case 'metadata':
        if (member !== undefined && !isMetadata(member)) return false;
        break;
      default:
        return false;
    }
  }
  return kinds === 1;
}

/** A known optional member: absent (undefined) or passing `check`. */
function optional(member: unknown, check: (value: unknown) => boolean): boolean {
  return member === undefined || check(member);
}

function isParts(value: unknown): boolean {
  if (!Array.isArray(value) || value.length < 1 || value.length > LIMITS.maxParts) return false;
  for (const part of value) if (!isSimplePart(part)) return false;
  return true;
}

const isExtension = (item: unknown): boolean => isShortString(item, 512);
const isOutputMode = (item: unknown): boolean => isShortString(item, 128);

function isSimpleMessage(value: unknown): boolean {
  if (!isObject(value)) return false;
  for (const key in value) {
    const member = value[key];
    let ok: boolean;
    switch (key) {
      case 'messageId':
      case 'contextId':
      case 'taskId':
        ok = optional(member, isIdString);
        break;
      case 'role':
        ok = member === undefined || member === 'ROLE_USER' || member === 'ROLE_AGENT';
        break;
      case 'parts':
        ok = optional(member, isParts);
        break;
      case 'metadata':
        ok = optional(member, isMetadata);
        break;
      case 'extensions':
        ok = optional(member, (list) => isStringArray(list, 16, isExtension));
        break;
      case 'referenceTaskIds':
        ok = optional(member, (list) => isStringArray(list, 32, isIdString));
        break;
      default:
        ok = false;
    }
    if (!ok) return false;
  }
  return value.messageId !== undefined && value.role !== undefined && value.parts !== undefined;
}

function isHistoryLength(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 1000;
}

function isSimpleConfiguration(value: unknown): boolean {
  if (!isObject(value)) return false;
  for (const key in value) {
    const member = value[key];
    let ok: boolean;
    switch (key) {
      case 'acceptedOutputModes':
        ok = optional(member, (list) => isStringArray(list, 16, isOutputMode));
        break;
      case 'historyLength':
        ok = optional(member, isHistoryLength);
        break;
      case 'returnImmediately':
        ok = member === undefined || typeof member === 'boolean';
        break;
      default:
        ok = false;
    }
    if (!ok) return false;
  }
  return true;
}

/**
 * True when `value` is valid `SendMessage` / `SendStreamingMessage` params made of text and data parts: what
 * {@link parseA2aParams} would return unchanged, without running zod. False does not mean invalid (url and
 * raw parts are left to the schema): parse with {@link parseA2aParams} then.
 */
export function isSendMessageParams(value: unknown): value is SendMessageParams {
  if (!isObject(value)) return false;
  for (const key in value) {
    const member = value[key];
    let ok: boolean;
    switch (key) {
      case 'tenant':
        ok = member === undefined || (typeof member === 'string' && TENANT.test(member));
        break;
      case 'message':
        ok = isSimpleMessage(member);
        break;
      case 'configuration':
        ok = optional(member, isSimpleConfiguration);
        break;
      case 'metadata':
        ok = optional(member, isMetadata);
        break;
      default:
        ok = false;
    }
    if (!ok) return false;
  }
  return value.message !== undefined;
}

// ---- JSON-RPC 2.0 envelopes -------------------------------------------------------------------------

export const JsonRpcIdSchema = z.union([z.string().min(1).max(LIMITS.maxIdChars), z.number().int().safe()]);
export type JsonRpcId = z.infer<typeof JsonRpcIdSchema>;

export const JsonRpcErrorObjectSchema = z
  .object({ code: z.number().int(), message: z.string().max(4096), data: z.unknown().optional() })
  .strict();
export type JsonRpcErrorObject = z.infer<typeof JsonRpcErrorObjectSchema>;

const methodName = z.string().min(1).max(64);

export const JsonRpcRequestSchema = z
  .object({
    jsonrpc: z.literal('2.0'),
    id: JsonRpcIdSchema,
    method: methodName,
    params: z.unknown().optional(),
  })
  .strict();
export const JsonRpcNotificationSchema = z
  .object({ jsonrpc: z.literal('2.0'), method: methodName, params: z.unknown().optional() })
  .strict();
export const JsonRpcSuccessSchema = z
  .object({ jsonrpc: z.literal('2.0'), id: JsonRpcIdSchema, result: z.unknown() })
  .strict()
  .refine((frame) => Object.hasOwn(frame, 'result'), { message: 'result is required' });
export const JsonRpcFailureSchema = z
  .object({
    jsonrpc: z.literal('2.0'),
    id: z.union([JsonRpcIdSchema, z.null()]),
    error: JsonRpcErrorObjectSchema,
  })
  .strict();
export const StreamEndSchema = z
  .object({ jsonrpc: z.literal('2.0'), id: JsonRpcIdSchema, streamEnd: z.literal(true) })
  .strict();

/** True when `text` is longer than {@link LIMITS.maxFrameBytes} in UTF-8: too large for one link frame. */
export function isOversizedFrame(text: string): boolean {
  // A UTF-16 code unit takes at most 3 bytes of UTF-8: most frames fit without counting their bytes.
  if (text.length * 3 <= LIMITS.maxFrameBytes) return false;
  return Buffer.byteLength(text, 'utf8') > LIMITS.maxFrameBytes;
}

/** The `PAYLOAD_TOO_LARGE` error of an oversized link frame; `what` names it (`frame`, `answer`). */
export function frameTooLarge(what: string): AppError {
  return new AppError('PAYLOAD_TOO_LARGE', `${what} larger than ${LIMITS.maxFrameBytes} bytes`, {
    details: { limitBytes: LIMITS.maxFrameBytes },
  });
}

/** One frame of the hub ⇄ spoke link, after parsing. */
export type LinkFrame =
  | { readonly kind: 'request'; readonly id: JsonRpcId; readonly method: string; readonly params: unknown }
  | { readonly kind: 'notification'; readonly method: string; readonly params: unknown }
  | { readonly kind: 'result'; readonly id: JsonRpcId; readonly result: unknown }
  | { readonly kind: 'error'; readonly id: JsonRpcId | null; readonly error: JsonRpcErrorObject }
  | { readonly kind: 'streamEnd'; readonly id: JsonRpcId };

/**
 * Parses one text frame of the link. Throws AppError `PAYLOAD_TOO_LARGE` over {@link LIMITS.maxFrameBytes},
 * `PARSE_ERROR` for malformed JSON and `INVALID_REQUEST` for a JSON value that is no JSON-RPC 2.0 object.
 */
export function parseLinkFrame(text: string): LinkFrame {
  if (isOversizedFrame(text)) throw frameTooLarge('frame');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new AppError('PARSE_ERROR', `frame is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseJsonRpcObject(value);
}

/** Classifies an already-parsed JSON value as a JSON-RPC frame; throws `INVALID_REQUEST` otherwise. */
export function parseJsonRpcObject(value: unknown): LinkFrame {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AppError(
      'INVALID_REQUEST',
      'a frame must be one JSON-RPC 2.0 object (batches are not supported)',
    );
  }
  const record = value as Record<string, unknown>;
  // Each branch first tries a hand-written check that accepts a subset of what its zod schema accepts (the
  // link parses every frame of every routed message, and zod cost more CPU than the rest of the frame's
  // handling); anything it does not accept goes through zod, so errors keep their codes and messages.
  if ('method' in record) {
    if ('id' in record) {
      if (
        record.jsonrpc === '2.0' &&
        isJsonRpcId(record.id) &&
        isMethodName(record.method) &&
        ownKeyCount(record) === ('params' in record ? 4 : 3)
      ) {
        return { kind: 'request', id: record.id, method: record.method, params: record.params };
      }
      const request = JsonRpcRequestSchema.safeParse(value);
      if (!request.success) throw invalid(request.error);
      return {
        kind: 'request',
        id: request.data.id,
        method: request.data.method,
        params: request.data.params,
      };
    }
    if (
      record.jsonrpc === '2.0' &&
      isMethodName(record.method) &&
      ownKeyCount(record) === ('params' in record ? 3 : 2)
    ) {
      return { kind: 'notification', method: record.method, params: record.params };
    }
    const notification = JsonRpcNotificationSchema.safeParse(value);
    if (!notification.success) throw invalid(notification.error);
    return { kind: 'notification', method: notification.data.method, params: notification.data.params };
  }
  if ('streamEnd' in record) {
    if (
      record.jsonrpc === '2.0' &&
      record.streamEnd === true &&
      isJsonRpcId(record.id) &&
      ownKeyCount(record) === 3
    ) {
      return { kind: 'streamEnd', id: record.id };
    }
    const end = StreamEndSchema.safeParse(value);
    if (!end.success) throw invalid(end.error);
    return { kind: 'streamEnd', id: end.data.id };
  }
  if ('error' in record) {
    const failure = JsonRpcFailureSchema.safeParse(value);
    if (!failure.success) throw invalid(failure.error);
    return { kind: 'error', id: failure.data.id, error: failure.data.error };
  }
  if (
    record.jsonrpc === '2.0' &&
    isJsonRpcId(record.id) &&
    Object.hasOwn(record, 'result') &&
    ownKeyCount(record) === 3
  ) {
    return { kind: 'result', id: record.id, result: record.result };
  }
  const success = JsonRpcSuccessSchema.safeParse(value);
  if (!success.success) throw invalid(success.error);
  return { kind: 'result', id: success.data.id, result: success.data.result };
}

/** Same acceptance as {@link JsonRpcIdSchema}. */
function isJsonRpcId(value: unknown): value is JsonRpcId {
  return typeof value === 'string'
    ? value.length >= 1 && value.length <= LIMITS.maxIdChars
    : Number.isSafeInteger(value);
}

/** Same acceptance as the `method` member of the JSON-RPC schemas. */
function isMethodName(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= 64;
}

/** Own enumerable string keys of a parsed JSON object (what zod's `.strict()` looks at). */
function ownKeyCount(record: Record<string, unknown>): number {
  let count = 0;
  for (const key in record) if (Object.hasOwn(record, key)) count += 1;
  return count;
}

function invalid(error: z.ZodError): AppError {
  return new AppError('INVALID_REQUEST', `not a valid JSON-RPC 2.0 frame: ${describeZodError(error)}`);
}

/** One line per zod issue: `path: message`. */
export function describeZodError(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}

/** Serialises a JSON-RPC request frame. */
export function requestFrame(requestId: JsonRpcId, method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id: requestId, method, params });
}
/** Serialises a JSON-RPC notification frame. */
export function notificationFrame(method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', method, params });
}
/** Serialises a JSON-RPC success frame (also each item of a stream). */
export function resultFrame(requestId: JsonRpcId, result: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id: requestId, result });
}
/** Serialises a JSON-RPC error frame from an AppError. */
export function errorFrame(requestId: JsonRpcId | null, error: AppError): string {
  return JSON.stringify({ jsonrpc: '2.0', id: requestId, error: toJsonRpcError(error) });
}
/** Serialises the frame that ends a stream. */
export function streamEndFrame(requestId: JsonRpcId): string {
  return JSON.stringify({ jsonrpc: '2.0', id: requestId, streamEnd: true });
}

// ---- control notifications of the link (never collide with A2A method names) ------------------------

/** `stream/cancel`: the sender stops receiving stream `id`; this does not cancel the task (CancelTask does). */
export const StreamCancelSchema = z.object({ id: JsonRpcIdSchema }).strict();
/** `hub/heartbeat` (spoke → hub): load report used by least-outstanding routing. */
export const HeartbeatSchema = z
  .object({
    inflight: z.number().int().min(0).max(1_000_000),
    capacity: z.number().int().min(1).max(10_000),
    ready: z.boolean(),
    reason: z.string().max(512).optional(),
  })
  .strict();
export type Heartbeat = z.infer<typeof HeartbeatSchema>;
/** `hub/attestationResult` (hub → spoke): the appraisal outcome and, when affirming, the AR token. */
export const AttestationResultNoticeSchema = z
  .object({
    status: z.enum(['affirming', 'contraindicated']),
    reasons: z.array(z.string().max(128)).max(64),
    ar: z.string().max(8192).optional(),
  })
  .strict();
export type AttestationResultNotice = z.infer<typeof AttestationResultNoticeSchema>;

export const CONTROL_METHODS = {
  streamCancel: 'stream/cancel',
  heartbeat: 'hub/heartbeat',
  attestationResult: 'hub/attestationResult',
  drain: 'hub/drain',
} as const;

// ---- errors on the wire -----------------------------------------------------------------------------

const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo';
const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

/** The JSON-RPC error object for an AppError: our code as `ErrorInfo.reason`, plus RetryInfo when retryable. */
export function toJsonRpcError(error: AppError): JsonRpcErrorObject {
  const data: Record<string, unknown>[] = [
    {
      '@type': ERROR_INFO_TYPE,
      reason: error.code,
      domain: ERROR_DOMAIN,
      ...(error.details === undefined ? {} : { metadata: error.details }),
    },
  ];
  if (error.retryAfterSeconds !== undefined) {
    data.push({ '@type': RETRY_INFO_TYPE, retryDelay: `${error.retryAfterSeconds}s` });
  }
  return { code: ERROR_TABLE[error.code].jsonRpc, message: error.message, data };
}

/** Rebuilds an AppError from a JSON-RPC error object received over the wire. */
export function fromJsonRpcError(error: JsonRpcErrorObject): AppError {
  const entries = Array.isArray(error.data) ? (error.data as unknown[]) : [];
  let code: ErrorCode | undefined;
  let details: Record<string, unknown> | undefined;
  let retryAfterSeconds: number | undefined;
  for (const entry of entries) {
    if (typeof entry !== 'object' || entry === null) continue;
    const record = entry as Record<string, unknown>;
    if (record['@type'] === ERROR_INFO_TYPE && typeof record.reason === 'string') {
      const reason = record.reason;
      if (isErrorCode(reason)) code = reason;
      if (typeof record.metadata === 'object' && record.metadata !== null) {
        details = record.metadata as Record<string, unknown>;
      }
    }
    if (record['@type'] === RETRY_INFO_TYPE && typeof record.retryDelay === 'string') {
      const seconds = Number.parseFloat(record.retryDelay);
      if (Number.isFinite(seconds)) retryAfterSeconds = seconds;
    }
  }
  code ??= errorCodeFromJsonRpc(error.code) ?? 'UPSTREAM_ERROR';
  return new AppError(code, error.message, {
    ...(details === undefined ? {} : { details }),
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
}

// ---- small builders -----------------------------------------------------------------------------------

/** A text part. */
export function textPart(text: string): Part {
  return { text };
}
/** A JSON data part. */
export function dataPart(data: unknown): Part {
  return { data, mediaType: 'application/json' };
}
/** All text parts of a message or artifact, joined with newlines. */
export function textOf(parts: readonly Part[]): string {
  return parts
    .map((part) => part.text)
    .filter((text): text is string => text !== undefined)
    .join('\n');
}
/** The values of all data parts. */
export function dataOf(parts: readonly Part[]): unknown[] {
  return parts.filter((part) => part.data !== undefined).map((part) => part.data);
}
