// Hub task records (who asked whom, per hop), the per-task event log with a monotonic seq and an epoch,
// dedupe by messageId, chat conversations and the attestation audit log: the TaskStore interface, its
// in-memory implementation, and the in-process bus that wakes live subscribers.
import { randomUUID } from 'node:crypto';
import {
  isTerminalState,
  META,
  type Message,
  type StreamResponse,
  type Task,
  type TaskState,
} from '../shared/protocol.js';
import { assertNever, type ErrorCode } from '../shared/errors.js';
import { extend } from '../shared/objects.js';
import { RecentMap } from '../shared/recent_map.js';

/** Who sent a request to the hub. */
export type CallerRef =
  | { readonly kind: 'client'; readonly principal: string }
  | { readonly kind: 'spoke'; readonly spoke: string; readonly replica: string };

const callerKeys = new WeakMap<CallerRef, string>();

/**
 * Stable string form of a caller, used for dedupe keys and task scoping. Made once per caller object (a link
 * keeps one for its spoke), so the tasks of one caller share one string.
 */
export function callerKey(caller: CallerRef): string {
  let key = callerKeys.get(caller);
  if (key === undefined) {
    key = callerKeyOf(caller);
    callerKeys.set(caller, key);
  }
  return key;
}

function callerKeyOf(caller: CallerRef): string {
  switch (caller.kind) {
    case 'client':
      return `client:${caller.principal}`;
    case 'spoke':
      return `spoke:${caller.spoke}`;
    default:
      return assertNever(caller, 'caller');
  }
}

/** One delivery attempt of a hub task to a spoke replica. */
export interface HopRecord {
  /** `client` or the requesting spoke's name. */
  readonly from: string;
  /** Target spoke name. */
  readonly to: string;
  readonly replica: string;
  /** The replica's attestation when the request was dispatched. */
  readonly attestation: {
    readonly status: string;
    readonly attestedAt: string | null;
    readonly policyId: string;
  };
  readonly attempt: number;
  readonly dispatchedAt: string;
  spokeTaskId: string | null;
  firstEventAt: string | null;
  finishedAt: string | null;
  /** Final outcome of this hop: a task state, or the hub error code that ended it. */
  outcome: TaskState | ErrorCode | null;
}

/** A hub-side error that ended a task (deadline, spoke gone, canceled…). */
export interface TaskFailure {
  readonly code: ErrorCode;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>> | undefined;
  readonly retryAfterSeconds?: number | undefined;
}

/** A hub task: the A2A task a caller sees plus the routing facts behind it. */
export interface HubTaskRecord {
  readonly id: string;
  readonly contextId: string;
  readonly caller: CallerRef;
  readonly callerKey: string;
  readonly messageId: string;
  /** Target spoke (tenant). */
  readonly target: string;
  readonly skill: string | null;
  /** W3C trace id (32 hex) from the traceparent, used to link a spoke's sub-requests to this task. */
  readonly traceId: string;
  readonly traceparent: string;
  /** The hub task whose spoke made this request (finance's task when finance asks marketing). */
  parentTaskId: string | null;
  readonly childTaskIds: string[];
  readonly createdAt: string;
  queuedAt: string | null;
  finishedAt: string | null;
  /** Absolute deadline, ms since the epoch. */
  readonly deadline: number;
  /** Delivery attempts, oldest first (replaced, not pushed to, when a hop is added). */
  hops: readonly HopRecord[];
  /**
   * The A2A view, with the hub task id. A change replaces the task object (and the nested values it changes:
   * status, history, artifacts, metadata), never changes it in place: logged events share it.
   */
  task: Task;
  failure: TaskFailure | null;
}

/** One entry of a task's event log. */
export interface TaskEventEntry {
  readonly taskId: string;
  readonly seq: number;
  readonly epoch: string;
  /** The event as sent to callers (ids rewritten to the hub task, seq/epoch in its metadata). */
  readonly event: StreamResponse;
  /** True for the event that ends the stream (terminal or interrupted state, or a direct message). */
  readonly final: boolean;
}

/** Result of reading a task's log after a sequence number. */
export interface EventReplay {
  readonly entries: readonly TaskEventEntry[];
  /** True when events after `afterSeq` were already evicted (the caller should refresh from the task). */
  readonly gap: boolean;
}

/** One chat turn. */
export interface ConversationTurn {
  readonly role: 'user' | 'agent';
  readonly text: string;
  readonly spoke: string | null;
  readonly taskId: string | null;
  readonly at: string;
}

/** A chat conversation, keyed by contextId, sticky to one spoke. */
export interface Conversation {
  readonly contextId: string;
  readonly principal: string;
  spoke: string | null;
  readonly turns: ConversationTurn[];
}

/** One appraisal outcome (never the token itself). */
export interface AttestationAuditEntry {
  readonly at: string;
  readonly spoke: string;
  readonly replica: string;
  readonly sid: string;
  readonly result: 'affirming' | 'contraindicated' | 'pending';
  readonly reasons: readonly string[];
  readonly policyId: string;
  readonly jti: string | null;
  readonly kid: string | null;
}

/** The messageId a new task was made for, kept for dedupe until `expiresAt` (ms since the epoch). */
export interface RememberedMessage {
  readonly messageId: string;
  readonly expiresAt: number;
}

/** Filters of {@link TaskStore.listTasks}. */
export interface TaskListQuery {
  readonly callerKey: string;
  readonly contextId?: string | undefined;
  readonly state?: TaskState | undefined;
  readonly pageSize: number;
  readonly pageToken?: string | undefined;
}

/** Storage of hub tasks, their event logs, conversations and the attestation audit. */
export interface TaskStore {
  /** Changes whenever earlier sequence numbers may be gone (a new in-memory store, a wiped database). */
  readonly epoch: string;
  saveTask(record: HubTaskRecord): Promise<void>;
  getTask(id: string): Promise<HubTaskRecord | undefined>;
  /** Tasks of one caller, newest status first; `nextPageToken` is '' on the last page. */
  listTasks(
    query: TaskListQuery,
  ): Promise<{ tasks: HubTaskRecord[]; nextPageToken: string; totalSize: number }>;
  /** The task created for `(callerKey, messageId)` within the dedupe window. */
  findByMessageId(callerKey: string, messageId: string, now: number): Promise<string | undefined>;
  /** Appends an event; seq is assigned here (1, 2, 3… per task). */
  appendEvent(taskId: string, event: StreamResponse, final: boolean): Promise<TaskEventEntry>;
  /**
   * `saveTask`, then `appendEvent` for the task, and with `remember` also remembers the messageId the task
   * was made for (for the caller that made it, until `remember.expiresAt`; see `findByMessageId`), as one
   * step: in SQL one statement (shared with the other writes of the same event-loop turn), so a saved state
   * and its event are never split by a crash (the routed hot path).
   */
  saveTaskAndEvent(
    record: HubTaskRecord,
    event: StreamResponse,
    final: boolean,
    remember?: RememberedMessage,
  ): Promise<TaskEventEntry>;
  eventsAfter(taskId: string, afterSeq: number): Promise<EventReplay>;
  /** The seq of the task's newest event (0 when it has none): where a subscription from now starts. */
  lastEventSeq(taskId: string): Promise<number>;
  getConversation(contextId: string): Promise<Conversation | undefined>;
  saveConversation(conversation: Conversation): Promise<void>;
  appendAudit(entry: AttestationAuditEntry): Promise<void>;
  listAudit(limit: number): Promise<AttestationAuditEntry[]>;
}

/**
 * Adds seq/epoch to the metadata of the inner event of a StreamResponse. A task snapshot is a copy of the top
 * level only: the router never changes a task it has logged (a change makes a new task object; status, history,
 * artifacts and metadata are replaced, never mutated), so a replay still shows the event as it was delivered.
 */
export function withSequence(event: StreamResponse, seq: number, epoch: string): StreamResponse {
  const stamp = { [META.seq]: seq, [META.epoch]: epoch };
  if ('task' in event) return { task: extend(event.task, { metadata: extend(event.task.metadata, stamp) }) };
  if ('message' in event)
    return { message: extend(event.message, { metadata: extend(event.message.metadata, stamp) }) };
  if ('statusUpdate' in event) {
    return {
      statusUpdate: extend(event.statusUpdate, { metadata: extend(event.statusUpdate.metadata, stamp) }),
    };
  }
  return {
    artifactUpdate: extend(event.artifactUpdate, { metadata: extend(event.artifactUpdate.metadata, stamp) }),
  };
}

/** True when a task in `state` no longer changes without a new message. */
export function endsStream(state: TaskState): boolean {
  return (
    isTerminalState(state) || state === 'TASK_STATE_INPUT_REQUIRED' || state === 'TASK_STATE_AUTH_REQUIRED'
  );
}

interface EventLog {
  nextSeq: number;
  entries: LoggedEvent[];
}

/**
 * An entry of the in-memory log. It keeps the event as routed and stamps seq/epoch when `event` is read: a
 * finished task's log then holds no copies of its task, only references to what the task record holds anyway
 * (most logged events are never read again).
 */
class LoggedEvent implements TaskEventEntry {
  constructor(
    readonly taskId: string,
    readonly seq: number,
    readonly epoch: string,
    private readonly routed: StreamResponse,
    readonly final: boolean,
  ) {}

  get event(): StreamResponse {
    return withSequence(this.routed, this.seq, this.epoch);
  }

  /** The entry as the other stores hand it out (JSON of an instance would show `routed`, not `event`). */
  toJSON(): TaskEventEntry {
    return { taskId: this.taskId, seq: this.seq, epoch: this.epoch, event: this.event, final: this.final };
  }
}

interface DedupeEntry {
  readonly taskId: string;
  readonly expiresAt: number;
}

/** Bounds of the in-memory store. */
export interface InMemoryTaskStoreOptions {
  /** Events kept per task; older ones are evicted (replay then reports a gap). */
  readonly eventLimit: number;
  /** Tasks kept; the oldest finished ones are evicted first. */
  readonly taskLimit?: number;
  /** Audit entries kept. */
  readonly auditLimit?: number;
}

/** A TaskStore in process memory (the default; sql_store.ts holds the one that survives a restart). */
export class InMemoryTaskStore implements TaskStore {
  readonly epoch = randomUUID();
  private readonly tasks = new Map<string, HubTaskRecord>();
  private readonly logs = new Map<string, EventLog>();
  /** Ids of tasks saved in a terminal state, oldest first from `finishedHead` (eviction order). */
  private finished: string[] = [];
  private finishedHead = 0;
  /** Per caller key: messageId → the task made for it. */
  private readonly dedupe = new Map<string, RecentMap<string, DedupeEntry>>();
  private readonly conversations = new Map<string, Conversation>();
  private readonly audit: AttestationAuditEntry[] = [];
  private readonly eventLimit: number;
  private readonly taskLimit: number;
  private readonly auditLimit: number;

  constructor(options: InMemoryTaskStoreOptions) {
    this.eventLimit = options.eventLimit;
    this.taskLimit = options.taskLimit ?? 50_000;
    this.auditLimit = options.auditLimit ?? 10_000;
  }

  async saveTask(record: HubTaskRecord): Promise<void> {
    this.keepTask(record);
  }

  async saveTaskAndEvent(
    record: HubTaskRecord,
    event: StreamResponse,
    final: boolean,
    remember?: RememberedMessage,
  ): Promise<TaskEventEntry> {
    this.keepTask(record);
    if (remember !== undefined)
      this.rememberMessage(record.callerKey, remember.messageId, record.id, remember.expiresAt);
    return this.logEvent(record.id, event, final);
  }

  private keepTask(record: HubTaskRecord): void {
    if (!this.tasks.has(record.id) && this.tasks.size >= this.taskLimit) this.evictOneFinishedTask();
    if (isTerminalState(record.task.status.state)) this.finished.push(record.id);
    this.tasks.set(record.id, record);
  }

  async getTask(id: string): Promise<HubTaskRecord | undefined> {
    return this.tasks.get(id);
  }

  async listTasks(
    query: TaskListQuery,
  ): Promise<{ tasks: HubTaskRecord[]; nextPageToken: string; totalSize: number }> {
    const matching = [...this.tasks.values()]
      .filter(
        (record) =>
          record.callerKey === query.callerKey &&
          (query.contextId === undefined || record.contextId === query.contextId) &&
          (query.state === undefined || record.task.status.state === query.state),
      )
      .sort((a, b) => statusTime(b).localeCompare(statusTime(a)) || b.id.localeCompare(a.id));
    const start = query.pageToken === undefined || query.pageToken === '' ? 0 : Number(query.pageToken);
    const offset = Number.isInteger(start) && start >= 0 ? start : 0;
    const page = matching.slice(offset, offset + query.pageSize);
    const next = offset + page.length < matching.length ? String(offset + page.length) : '';
    return { tasks: page, nextPageToken: next, totalSize: matching.length };
  }

  async findByMessageId(key: string, messageId: string, now: number): Promise<string | undefined> {
    const remembered = this.dedupe.get(key);
    const entry = remembered?.get(messageId);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      remembered?.delete(messageId);
      return undefined;
    }
    return entry.taskId;
  }

  private rememberMessage(key: string, messageId: string, taskId: string, expiresAt: number): void {
    let remembered = this.dedupe.get(key);
    if (remembered === undefined) {
      // Bounded like the tasks: about the most recent taskLimit messageIds of each caller are remembered.
      remembered = new RecentMap(Math.max(2, this.taskLimit));
      this.dedupe.set(key, remembered);
    }
    remembered.set(messageId, { taskId, expiresAt });
  }

  async appendEvent(taskId: string, event: StreamResponse, final: boolean): Promise<TaskEventEntry> {
    return this.logEvent(taskId, event, final);
  }

  private logEvent(taskId: string, event: StreamResponse, final: boolean): LoggedEvent {
    let log = this.logs.get(taskId);
    if (log === undefined) {
      log = { nextSeq: 1, entries: [] };
      this.logs.set(taskId, log);
    }
    const entry = new LoggedEvent(taskId, log.nextSeq++, this.epoch, event, final);
    log.entries.push(entry);
    if (log.entries.length > this.eventLimit) log.entries.shift();
    // An exact-size copy once the stream ends: a push leaves room for 16 more entries in every log kept.
    if (final) log.entries = log.entries.slice();
    return entry;
  }

  async eventsAfter(taskId: string, afterSeq: number): Promise<EventReplay> {
    const log = this.logs.get(taskId);
    if (log === undefined) return { entries: [], gap: false };
    const first = log.entries[0];
    const gap = first !== undefined && first.seq > afterSeq + 1;
    return { entries: log.entries.filter((entry) => entry.seq > afterSeq), gap };
  }

  async lastEventSeq(taskId: string): Promise<number> {
    return (this.logs.get(taskId)?.nextSeq ?? 1) - 1;
  }

  async getConversation(contextId: string): Promise<Conversation | undefined> {
    return this.conversations.get(contextId);
  }

  async saveConversation(conversation: Conversation): Promise<void> {
    this.conversations.set(conversation.contextId, conversation);
  }

  async appendAudit(entry: AttestationAuditEntry): Promise<void> {
    this.audit.push(entry);
    if (this.audit.length > this.auditLimit) this.audit.shift();
  }

  async listAudit(limit: number): Promise<AttestationAuditEntry[]> {
    return this.audit.slice(-limit);
  }

  /**
   * Drops the task that finished first (its events too); none when every task is still open. Takes ids from a
   * queue: finding the first finished task by iterating the tasks Map would walk the holes earlier deletes
   * left at its front, which grows with every eviction.
   */
  private evictOneFinishedTask(): void {
    while (this.finishedHead < this.finished.length) {
      const id = this.finished[this.finishedHead] as string;
      this.finishedHead += 1;
      const record = this.tasks.get(id);
      if (record === undefined || !isTerminalState(record.task.status.state)) continue;
      this.tasks.delete(id);
      this.logs.delete(id);
      break;
    }
    if (this.finishedHead > 1024 && this.finishedHead * 2 > this.finished.length) {
      this.finished = this.finished.slice(this.finishedHead);
      this.finishedHead = 0;
    }
  }
}

function statusTime(record: HubTaskRecord): string {
  return record.task.status.timestamp ?? record.createdAt;
}

type EventListener = (entry: TaskEventEntry) => void;

/** Wakes live subscribers of a task's events (in process; the store is the source of truth for replay). */
export class TaskEventBus {
  private readonly listeners = new Map<string, Set<EventListener>>();

  subscribe(taskId: string, listener: EventListener): () => void {
    let set = this.listeners.get(taskId);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(taskId, set);
    }
    set.add(listener);
    return () => {
      const current = this.listeners.get(taskId);
      current?.delete(listener);
      if (current?.size === 0) this.listeners.delete(taskId);
    };
  }

  publish(entry: TaskEventEntry): void {
    const set = this.listeners.get(entry.taskId);
    if (set === undefined) return;
    for (const listener of [...set]) listener(entry);
  }
}

/** A shallow copy of a task, its history trimmed to `historyLength` messages (A2A GetTask semantics). */
export function taskView(task: Task, historyLength: number | undefined, includeArtifacts = true): Task {
  const view: Task = { ...task };
  if (!includeArtifacts) delete view.artifacts;
  if (historyLength !== undefined && view.history !== undefined) {
    view.history = historyLength === 0 ? [] : view.history.slice(-historyLength);
  }
  return view;
}

/** The last agent text of a task: its artifacts' text parts, else its status message. */
export function replyText(task: Task): string {
  const texts = (task.artifacts ?? []).flatMap((artifact) =>
    artifact.parts.map((part) => part.text).filter((text): text is string => text !== undefined),
  );
  if (texts.length > 0) return texts.join('\n');
  const status: Message | undefined = task.status.message;
  return (status?.parts ?? [])
    .map((part) => part.text)
    .filter((text): text is string => text !== undefined)
    .join('\n');
}
