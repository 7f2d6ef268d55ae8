// The spoke's A2A task engine: skill selection, the task lifecycle (SUBMITTED → WORKING → terminal) with
// event streams, messageId dedupe, bounded capacity and queue, deadlines, cancellation and shutdown, and the
// six A2A methods served identically over HTTP and the hub link.
import { randomUUID } from 'node:crypto';
import { AppError, isErrorCode, toAppError } from './errors.js';
import { silentLogger, type Logger } from './log.js';
import {
  A2A_METHODS,
  ArtifactSchema,
  META,
  dataOf,
  describeZodError,
  isTerminalState,
  parseA2aParams,
  textOf,
  textPart,
  dataPart,
  type A2aMethod,
  type Artifact,
  type ListTasksResult,
  type Message,
  type Part,
  type SendMessageParams,
  type StreamResponse,
  type Task,
  type TaskState,
} from './protocol.js';
import type { PeerRequest, PeerResponse, SkillContext, SkillDefinition, SkillResult } from './skill.js';

/** Task and status-event metadata key carrying `{code, message}` of the AppError a task failed with. */
export const ERROR_METADATA_KEY = 'agenthub/error';

/** What the engine asks of its host for one task's peer calls (the spoke runtime routes them up the hub link). */
export type PeerCaller = (
  request: PeerRequest,
  origin: { readonly signal: AbortSignal; readonly metadata: Readonly<Record<string, unknown>> },
) => Promise<PeerResponse>;

/** Options of {@link createTaskEngine}. */
export interface TaskEngineOptions {
  readonly skills: readonly SkillDefinition[];
  /** Concurrent skill runs. Default 1. */
  readonly capacity?: number;
  /** Tasks allowed to wait for a free slot; one more is refused with `QUEUE_FULL`. Default 16. */
  readonly queueLimit?: number;
  /** Finished tasks kept for GetTask/ListTasks/dedupe before the oldest are forgotten. Default 1000. */
  readonly maxRememberedTasks?: number;
  /** After its signal fires, how long a skill may take to stop before the task is ended anyway. Default 2000 ms. */
  readonly stopGraceMs?: number;
  /** Routes `SkillContext.callPeer`. */
  readonly callPeer: PeerCaller;
  readonly log?: Logger;
}

/** The A2A side of a spoke: serves the six methods and reports load. */
export interface TaskEngine {
  /**
   * Serves one A2A method. Unary methods return a Promise of the JSON-RPC result; streaming methods return an
   * AsyncIterable of `StreamResponse`s (errors before the first item are thrown from the first `next()`).
   * Aborting `signal` on a SendMessage / SendStreamingMessage that created a task cancels that task; on
   * SubscribeToTask it only detaches. Throws `METHOD_NOT_FOUND` for anything else.
   */
  handle(method: string, params: unknown, signal: AbortSignal): Promise<unknown> | AsyncIterable<unknown>;
  /** Running plus queued tasks. */
  readonly inflight: number;
  readonly capacity: number;
  /** Whether new work is accepted (false after {@link stopAccepting}). */
  readonly accepting: boolean;
  /** Refuses new SendMessage work with `SPOKE_UNAVAILABLE` from now on (hub/drain, shutdown). */
  stopAccepting(reason: string): void;
  /**
   * Stops accepting, cancels queued tasks, lets running ones finish for up to `graceMs`, then aborts them
   * (they end CANCELED). Resolves when no task is running.
   */
  shutdown(graceMs: number): Promise<void>;
}

type Listener = (event: StreamResponse) => void;

interface TaskRecord {
  task: Task;
  readonly skill: SkillDefinition;
  readonly input: {
    readonly text: string;
    readonly data: readonly unknown[];
    readonly metadata: Record<string, unknown>;
  };
  readonly controller: AbortController;
  readonly listeners: Set<Listener>;
  /** Resolves once the task is terminal. */
  readonly finished: Promise<void>;
  markFinished(): void;
  /** Resolves once the skill handler has returned (or never ran). */
  handlerSettled: Promise<void>;
  started: boolean;
  deadlineTimer: NodeJS.Timeout | undefined;
  /** Dedupe key: the caller (metadata `META.caller`, set by the hub for spoke callers) and the messageId. */
  readonly dedupeKey: string;
}

const DEFAULT_QUEUE_LIMIT = 16;
const DEFAULT_MAX_TASKS = 1000;
const DEFAULT_STOP_GRACE_MS = 2000;
const DEFAULT_PAGE_SIZE = 50;

function now(): string {
  return new Date().toISOString();
}

/** Resolves after the I/O and immediates already queued: one turn of the event loop. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function agentMessage(taskId: string, contextId: string, text: string): Message {
  return { messageId: randomUUID(), taskId, contextId, role: 'ROLE_AGENT', parts: [textPart(text)] };
}

/** A deep-enough copy of a task so callers never see later mutations. */
function snapshot(task: Task, options: { historyLength?: number; includeArtifacts?: boolean } = {}): Task {
  const { historyLength, includeArtifacts = true } = options;
  const copy: Task = { id: task.id, contextId: task.contextId, status: { ...task.status } };
  if (includeArtifacts && task.artifacts !== undefined) copy.artifacts = [...task.artifacts];
  if (task.history !== undefined && historyLength !== 0) {
    copy.history = historyLength === undefined ? [...task.history] : task.history.slice(-historyLength);
  }
  if (task.metadata !== undefined) copy.metadata = { ...task.metadata };
  return copy;
}

/** Words of a text for the deterministic skill match: lower-case runs of letters and digits. */
function wordsOf(text: string): Set<string> {
  return new Set(text.toLowerCase().match(/[a-z0-9]+/g) ?? []);
}

/**
 * Chooses the skill for a request: `metadata[META.skill]` (request, then message), else a data part's
 * `skill` field, else the only skill, else the best deterministic match of the text against ids, names and
 * tags (ties go to the earlier skill). Throws `BAD_REQUEST` listing the skills when nothing matches.
 */
export function selectSkill(skills: readonly SkillDefinition[], params: SendMessageParams): SkillDefinition {
  const known = skills.map((skill) => skill.id).join(', ');
  const byId = (id: string, source: string): SkillDefinition => {
    const found = skills.find((skill) => skill.id === id);
    if (found === undefined) {
      throw new AppError(
        'BAD_REQUEST',
        `unknown skill "${id}" (from ${source}); this spoke serves: ${known}`,
        {
          details: { skill: id, skills: skills.map((skill) => skill.id) },
        },
      );
    }
    return found;
  };
  const fromMetadata = params.metadata?.[META.skill] ?? params.message.metadata?.[META.skill];
  if (fromMetadata !== undefined) {
    if (typeof fromMetadata !== 'string')
      throw new AppError('BAD_REQUEST', `metadata "${META.skill}" must be a string`);
    return byId(fromMetadata, `metadata "${META.skill}"`);
  }
  for (const data of dataOf(params.message.parts)) {
    if (typeof data === 'object' && data !== null && !Array.isArray(data)) {
      const named = (data as Record<string, unknown>).skill;
      if (typeof named === 'string') return byId(named, 'the data part');
    }
  }
  const [only] = skills;
  if (skills.length === 1 && only !== undefined) return only;
  const text = textOf(params.message.parts).toLowerCase();
  const words = wordsOf(text);
  let best: SkillDefinition | undefined;
  let bestScore = 0;
  for (const skill of skills) {
    let score = 0;
    if (words.has(skill.id.toLowerCase()) || text.includes(skill.id.toLowerCase())) score += 10;
    if (text.includes(skill.name.toLowerCase())) score += 5;
    for (const tag of skill.tags) if (words.has(tag.toLowerCase())) score += 1;
    if (score > bestScore) {
      best = skill;
      bestScore = score;
    }
  }
  if (best === undefined) {
    throw new AppError(
      'BAD_REQUEST',
      `cannot tell which skill is meant; name one in metadata "${META.skill}". This spoke serves: ${known}`,
      { details: { skills: skills.map((skill) => skill.id) } },
    );
  }
  return best;
}

/** Creates the task engine of a spoke. */
export function createTaskEngine(options: TaskEngineOptions): TaskEngine {
  const log = options.log ?? silentLogger();
  const capacity = options.capacity ?? 1;
  const queueLimit = options.queueLimit ?? DEFAULT_QUEUE_LIMIT;
  const maxTasks = options.maxRememberedTasks ?? DEFAULT_MAX_TASKS;
  const stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
  if (!Number.isInteger(capacity) || capacity < 1)
    throw new AppError('CONFIG_INVALID', 'capacity must be an integer ≥ 1');
  if (!Number.isInteger(queueLimit) || queueLimit < 0)
    throw new AppError('CONFIG_INVALID', 'queueLimit must be an integer ≥ 0');
  if (options.skills.length === 0) throw new AppError('CONFIG_INVALID', 'a spoke needs at least one skill');

  /** All remembered tasks in creation order (Map keeps insertion order; eviction takes the oldest finished). */
  const tasks = new Map<string, TaskRecord>();
  const taskIdByDedupeKey = new Map<string, string>();
  const queue: TaskRecord[] = [];
  let running = 0;
  let accepting = true;
  let notAcceptingReason = '';

  function emit(record: TaskRecord, event: StreamResponse): void {
    for (const listener of record.listeners) listener(event);
  }

  function setStatus(
    record: TaskRecord,
    state: TaskState,
    message?: Message,
    eventMetadata?: Record<string, unknown>,
  ): void {
    if (isTerminalState(record.task.status.state)) return;
    record.task.status = { state, timestamp: now(), ...(message === undefined ? {} : { message }) };
    emit(record, {
      statusUpdate: {
        taskId: record.task.id,
        contextId: record.task.contextId,
        status: { ...record.task.status },
        ...(eventMetadata === undefined ? {} : { metadata: eventMetadata }),
      },
    });
    if (isTerminalState(state)) {
      if (record.deadlineTimer !== undefined) clearTimeout(record.deadlineTimer);
      record.markFinished();
    }
  }

  function failTask(record: TaskRecord, error: AppError): void {
    const errorInfo = { code: error.code, message: error.message };
    record.task.metadata = { ...record.task.metadata, [ERROR_METADATA_KEY]: errorInfo };
    const message = agentMessage(record.task.id, record.task.contextId, `${error.code}: ${error.message}`);
    message.metadata = { [ERROR_METADATA_KEY]: errorInfo };
    setStatus(record, 'TASK_STATE_FAILED', message, { ...record.task.metadata });
  }

  function cancelTaskRecord(record: TaskRecord, why: string): void {
    setStatus(record, 'TASK_STATE_CANCELED', agentMessage(record.task.id, record.task.contextId, why), {
      ...record.task.metadata,
    });
  }

  /** Ends a task whose signal fired, according to why it fired. */
  function endAborted(record: TaskRecord): void {
    const reason: unknown = record.controller.signal.reason;
    const error = reason instanceof AppError ? reason : new AppError('CANCELED', 'canceled');
    if (error.code === 'CANCELED') cancelTaskRecord(record, error.message);
    else failTask(record, error);
  }

  function completeTask(record: TaskRecord, result: SkillResult): void {
    const parts: Part[] = [textPart(result.text)];
    if (result.data !== undefined) parts.push(dataPart(result.data));
    const candidate: Artifact = { artifactId: randomUUID(), name: `${record.skill.id}-result`, parts };
    const checked = ArtifactSchema.safeParse(candidate);
    if (!checked.success) {
      failTask(
        record,
        new AppError(
          'INTERNAL',
          `skill ${record.skill.id} returned an invalid artifact: ${describeZodError(checked.error)}`,
        ),
      );
      return;
    }
    record.task.artifacts = [checked.data];
    record.task.metadata = { ...record.task.metadata, ...(result.metadata ?? {}) };
    emit(record, {
      artifactUpdate: {
        taskId: record.task.id,
        contextId: record.task.contextId,
        artifact: checked.data,
        lastChunk: true,
      },
    });
    setStatus(record, 'TASK_STATE_COMPLETED', undefined, { ...record.task.metadata });
  }

  function abortTask(record: TaskRecord, error: AppError): void {
    if (isTerminalState(record.task.status.state)) return;
    if (!record.started) {
      const index = queue.indexOf(record);
      if (index >= 0) queue.splice(index, 1);
      record.controller.abort(error);
      endAborted(record);
      return;
    }
    record.controller.abort(error);
    // A skill that ignores its signal still ends the task after the grace period; its slot stays taken until
    // the handler really returns, so the reported load stays honest.
    const grace = setTimeout(() => endAborted(record), stopGraceMs);
    grace.unref();
    void record.handlerSettled.then(() => {
      clearTimeout(grace);
      endAborted(record);
    });
  }

  function pump(): void {
    while (running < capacity && queue.length > 0) {
      const record = queue.shift() as TaskRecord;
      record.started = true;
      running += 1;
      record.handlerSettled = runSkill(record).finally(() => {
        running -= 1;
        pump();
      });
    }
  }

  async function runSkill(record: TaskRecord): Promise<void> {
    const { task, skill, controller } = record;
    setStatus(record, 'TASK_STATE_WORKING');
    const traceparent = record.input.metadata[META.traceparent];
    const taskLog = log.child({
      taskId: task.id,
      skill: skill.id,
      ...(typeof traceparent === 'string' ? { traceparent } : {}),
    });
    const context: SkillContext = {
      signal: controller.signal,
      log: taskLog,
      progress: (message) => {
        if (controller.signal.aborted) return;
        setStatus(record, 'TASK_STATE_WORKING', agentMessage(task.id, task.contextId, message));
      },
      callPeer: (request) =>
        options.callPeer(request, { signal: controller.signal, metadata: record.input.metadata }),
    };
    try {
      const result = await skill.handler(
        {
          text: record.input.text,
          data: record.input.data,
          contextId: task.contextId,
          taskId: task.id,
          metadata: record.input.metadata,
        },
        context,
      );
      if (controller.signal.aborted) endAborted(record);
      else {
        completeTask(record, result);
        taskLog.info('task completed');
      }
    } catch (error) {
      if (controller.signal.aborted) {
        endAborted(record);
        return;
      }
      const appError = toAppError(error);
      if (!(error instanceof AppError)) taskLog.error({ err: error }, 'skill failed unexpectedly');
      else taskLog.info({ code: appError.code }, 'task failed');
      failTask(
        record,
        appError.code === 'INTERNAL' && !(error instanceof AppError)
          ? new AppError('INTERNAL', `skill ${skill.id} failed`)
          : appError,
      );
    }
  }

  function evictFinished(): void {
    if (tasks.size <= maxTasks) return;
    for (const [taskId, record] of tasks) {
      if (tasks.size <= maxTasks) break;
      if (!isTerminalState(record.task.status.state)) continue;
      tasks.delete(taskId);
      if (taskIdByDedupeKey.get(record.dedupeKey) === taskId) taskIdByDedupeKey.delete(record.dedupeKey);
    }
  }

  function deadlineOf(params: SendMessageParams): number | undefined {
    const raw = params.metadata?.[META.deadline] ?? params.message.metadata?.[META.deadline];
    if (raw === undefined) return undefined;
    if (typeof raw !== 'number' || !Number.isFinite(raw)) {
      throw new AppError(
        'BAD_REQUEST',
        `metadata "${META.deadline}" must be an absolute time in ms since the epoch`,
      );
    }
    return raw;
  }

  /** Creates a task for a new message, or returns the existing one for a repeated messageId. */
  function submit(params: SendMessageParams): { record: TaskRecord; created: boolean } {
    const dedupeKey = dedupeKeyOf(params);
    const existingId = taskIdByDedupeKey.get(dedupeKey);
    const existing = existingId === undefined ? undefined : tasks.get(existingId);
    if (existing !== undefined) return { record: existing, created: false };
    if (params.message.taskId !== undefined) {
      const referenced = tasks.get(params.message.taskId);
      if (referenced === undefined)
        throw new AppError('TASK_NOT_FOUND', `task ${params.message.taskId} not found`);
      throw new AppError(
        'UNSUPPORTED_OPERATION',
        `task ${params.message.taskId} does not accept further messages; send a new message in its context instead`,
      );
    }
    if (!accepting)
      throw new AppError('SPOKE_UNAVAILABLE', `spoke is not accepting work: ${notAcceptingReason}`, {
        retryAfterSeconds: 5,
      });
    const skill = selectSkill(options.skills, params);
    const deadline = deadlineOf(params);
    if (running + queue.length >= capacity + queueLimit) {
      throw new AppError(
        'QUEUE_FULL',
        `spoke busy: ${running} running, ${queue.length} queued (limit ${queueLimit})`,
        {
          retryAfterSeconds: 1,
          details: { running, queued: queue.length, capacity, queueLimit },
        },
      );
    }
    const taskId = randomUUID();
    const contextId = params.message.contextId ?? randomUUID();
    const userMessage: Message = { ...params.message, taskId, contextId };
    let markFinished!: () => void;
    const finished = new Promise<void>((resolve) => {
      markFinished = resolve;
    });
    const metadata = { ...(params.message.metadata ?? {}), ...(params.metadata ?? {}) };
    const record: TaskRecord = {
      task: {
        id: taskId,
        contextId,
        status: { state: 'TASK_STATE_SUBMITTED', timestamp: now() },
        history: [userMessage],
        metadata: { [META.skill]: skill.id },
      },
      skill,
      input: { text: textOf(params.message.parts), data: dataOf(params.message.parts), metadata },
      controller: new AbortController(),
      listeners: new Set(),
      finished,
      markFinished,
      handlerSettled: Promise.resolve(),
      started: false,
      deadlineTimer: undefined,
      dedupeKey,
    };
    tasks.set(taskId, record);
    taskIdByDedupeKey.set(dedupeKey, taskId);
    evictFinished();
    if (deadline !== undefined) {
      const remaining = deadline - Date.now();
      const expire = (): void =>
        abortTask(
          record,
          new AppError('DEADLINE_EXCEEDED', `deadline ${new Date(deadline).toISOString()} passed`),
        );
      if (remaining <= 0) {
        expire();
        return { record, created: true };
      }
      record.deadlineTimer = setTimeout(expire, remaining);
      record.deadlineTimer.unref();
    }
    queue.push(record);
    // Started on the next turn, so a stream that created the task sees it SUBMITTED before WORKING.
    setImmediate(pump);
    return { record, created: true };
  }

  /** Cancels the task when the request that created it goes away. */
  function bindToRequest(record: TaskRecord, created: boolean, signal: AbortSignal): () => void {
    if (!created) return () => undefined;
    const onAbort = (): void =>
      abortTask(record, new AppError('CANCELED', 'the caller canceled the request'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    return () => signal.removeEventListener('abort', onAbort);
  }

  async function sendMessage(rawParams: unknown, signal: AbortSignal): Promise<{ task: Task }> {
    const params = parseA2aParams('SendMessage', rawParams);
    const { record, created } = submit(params);
    if (params.configuration?.returnImmediately === true) {
      return { task: snapshot(record.task, historyOption(params)) };
    }
    const unbind = bindToRequest(record, created, signal);
    try {
      await record.finished;
    } finally {
      unbind();
    }
    return { task: snapshot(record.task, historyOption(params)) };
  }

  function historyOption(params: SendMessageParams): { historyLength?: number } {
    const historyLength = params.configuration?.historyLength;
    return historyLength === undefined ? {} : { historyLength };
  }

  /**
   * Yields the task, then its events until it is terminal (or the signal detaches the subscriber). Events are
   * taken in bursts, one event-loop turn after the first of them, and a burst that ends the task goes out as
   * one final task snapshot instead of its separate events: a skill that answers at once streams one event
   * (the hub parses and logs two frames per routed message instead of five). The first snapshot also waits
   * one turn, so it shows a just-created task already started (or finished). Snapshots keep the last
   * `history.historyLength` messages when the request set one (the hub asks for none).
   */
  async function* follow(
    record: TaskRecord,
    signal: AbortSignal,
    history: { historyLength?: number } = {},
  ): AsyncGenerator<StreamResponse, void, undefined> {
    const buffered: StreamResponse[] = [];
    let wake: (() => void) | undefined;
    const poke = (): void => {
      const waiting = wake;
      wake = undefined;
      waiting?.();
    };
    const listener: Listener = (event) => {
      buffered.push(event);
      poke();
    };
    record.listeners.add(listener);
    signal.addEventListener('abort', poke, { once: true });
    try {
      await nextTurn();
      // The snapshot already shows whatever happened during that turn.
      buffered.length = 0;
      yield { task: snapshot(record.task, history) };
      if (isTerminalState(record.task.status.state)) return;
      for (;;) {
        if (buffered.length === 0) {
          if (signal.aborted) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          await nextTurn();
          continue;
        }
        if (isTerminalState(record.task.status.state)) {
          buffered.length = 0;
          yield { task: snapshot(record.task, history) };
          return;
        }
        yield buffered.shift() as StreamResponse;
      }
    } finally {
      record.listeners.delete(listener);
      signal.removeEventListener('abort', poke);
    }
  }

  async function* sendStreamingMessage(
    rawParams: unknown,
    signal: AbortSignal,
  ): AsyncGenerator<StreamResponse, void, undefined> {
    const params = parseA2aParams('SendStreamingMessage', rawParams);
    const { record, created } = submit(params);
    const unbind = bindToRequest(record, created, signal);
    try {
      yield* follow(record, signal, historyOption(params));
    } finally {
      unbind();
    }
  }

  function findTask(taskId: string): TaskRecord {
    const record = tasks.get(taskId);
    if (record === undefined) throw new AppError('TASK_NOT_FOUND', `task ${taskId} not found`);
    return record;
  }

  async function getTask(rawParams: unknown): Promise<Task> {
    const params = parseA2aParams('GetTask', rawParams);
    const record = findTask(params.id);
    return snapshot(
      record.task,
      params.historyLength === undefined ? {} : { historyLength: params.historyLength },
    );
  }

  async function listTasks(rawParams: unknown): Promise<ListTasksResult> {
    const params = parseA2aParams('ListTasks', rawParams);
    const after =
      params.statusTimestampAfter === undefined ? undefined : Date.parse(params.statusTimestampAfter);
    const matching = [...tasks.values()]
      .map((record) => record.task)
      .filter((task) => params.contextId === undefined || task.contextId === params.contextId)
      .filter((task) => params.status === undefined || task.status.state === params.status)
      .filter((task) => after === undefined || Date.parse(task.status.timestamp ?? '') > after)
      .sort(
        (a, b) =>
          (b.status.timestamp ?? '').localeCompare(a.status.timestamp ?? '') || a.id.localeCompare(b.id),
      );
    const pageSize = params.pageSize ?? DEFAULT_PAGE_SIZE;
    const offset =
      params.pageToken === undefined || params.pageToken === '' ? 0 : decodePageToken(params.pageToken);
    const page = matching.slice(offset, offset + pageSize);
    const nextOffset = offset + page.length;
    return {
      tasks: page.map((task) =>
        snapshot(task, {
          includeArtifacts: params.includeArtifacts === true,
          ...(params.historyLength === undefined ? {} : { historyLength: params.historyLength }),
        }),
      ),
      nextPageToken:
        nextOffset < matching.length ? Buffer.from(String(nextOffset)).toString('base64url') : '',
      pageSize,
      totalSize: matching.length,
    };
  }

  async function cancelTask(rawParams: unknown): Promise<Task> {
    const params = parseA2aParams('CancelTask', rawParams);
    const record = findTask(params.id);
    if (isTerminalState(record.task.status.state)) {
      throw new AppError('TASK_NOT_CANCELABLE', `task ${params.id} is already ${record.task.status.state}`);
    }
    abortTask(record, new AppError('CANCELED', 'canceled by CancelTask'));
    await record.finished;
    return snapshot(record.task);
  }

  async function* subscribeToTask(
    rawParams: unknown,
    signal: AbortSignal,
  ): AsyncGenerator<StreamResponse, void, undefined> {
    const params = parseA2aParams('SubscribeToTask', rawParams);
    const record = findTask(params.id);
    if (isTerminalState(record.task.status.state)) {
      throw new AppError('UNSUPPORTED_OPERATION', `task ${params.id} is already ${record.task.status.state}`);
    }
    yield* follow(record, signal);
  }

  function handle(
    method: string,
    params: unknown,
    signal: AbortSignal,
  ): Promise<unknown> | AsyncIterable<unknown> {
    const a2aMethod = method as A2aMethod;
    switch (a2aMethod) {
      case 'SendMessage':
        return sendMessage(params, signal);
      case 'SendStreamingMessage':
        return sendStreamingMessage(params, signal);
      case 'GetTask':
        return getTask(params);
      case 'ListTasks':
        return listTasks(params);
      case 'CancelTask':
        return cancelTask(params);
      case 'SubscribeToTask':
        return subscribeToTask(params, signal);
      default: {
        const _unhandled: never = a2aMethod;
        return Promise.reject(
          new AppError('METHOD_NOT_FOUND', `unknown method ${String(_unhandled)}`, {
            details: { method, methods: Object.keys(A2A_METHODS) },
          }),
        );
      }
    }
  }

  async function shutdown(graceMs: number): Promise<void> {
    stopAccepting('shutting down');
    for (const record of [...queue]) abortTask(record, new AppError('CANCELED', 'spoke shutting down'));
    const active = [...tasks.values()].filter((record) => !isTerminalState(record.task.status.state));
    const allSettled = Promise.all(active.map((record) => record.handlerSettled));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace-over'>((resolve) => {
      timer = setTimeout(() => resolve('grace-over'), Math.max(0, graceMs));
    });
    const outcome = await Promise.race([allSettled.then(() => 'settled' as const), graceOver]);
    clearTimeout(timer);
    if (outcome === 'grace-over') {
      for (const record of active) abortTask(record, new AppError('CANCELED', 'spoke shutting down'));
      const stopWindow = new Promise<void>((resolve) => setTimeout(resolve, stopGraceMs).unref());
      await Promise.race([allSettled.then(() => undefined), stopWindow]);
    }
    await Promise.race([
      Promise.all(active.map((record) => record.finished)).then(() => undefined),
      new Promise<void>((resolve) => setTimeout(resolve, stopGraceMs).unref()),
    ]);
  }

  function stopAccepting(reason: string): void {
    accepting = false;
    notAcceptingReason = reason;
  }

  return {
    handle,
    get inflight() {
      return running + queue.length;
    },
    capacity,
    get accepting() {
      return accepting;
    },
    stopAccepting,
    shutdown,
  };
}

/** Messages are deduped per caller, so one caller cannot reach another's task by reusing its messageId. */
function dedupeKeyOf(params: SendMessageParams): string {
  const caller = params.metadata?.[META.caller];
  return `${typeof caller === 'string' ? caller : ''}\u0000${params.message.messageId}`;
}

function decodePageToken(token: string): number {
  const offset = Number(Buffer.from(token, 'base64url').toString('utf8'));
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new AppError('BAD_REQUEST', 'pageToken is not one this spoke issued');
  return offset;
}

/** The AppError a failed task reports in its metadata, or `UPSTREAM_ERROR` when it names none. */
export function taskFailure(
  metadata: Readonly<Record<string, unknown>> | undefined,
  fallbackMessage: string,
): AppError {
  const info = metadata?.[ERROR_METADATA_KEY];
  if (typeof info === 'object' && info !== null) {
    const { code, message } = info as { code?: unknown; message?: unknown };
    if (isErrorCode(code)) return new AppError(code, typeof message === 'string' ? message : fallbackMessage);
  }
  return new AppError('UPSTREAM_ERROR', fallbackMessage);
}
