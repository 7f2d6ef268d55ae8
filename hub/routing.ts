// The routing core: the pure routing gate (ATTESTATION.md §5.7) applied to the target and to a requesting
// spoke, target choice by tenant or skill, least-outstanding replica choice sticky by contextId, bounded
// per-spoke queues, deadlines (idle + total) with CancelTask, caller cancel, messageId dedupe, and the A2A
// methods served on hub tasks for HTTP clients and for spokes asking up their link.
import { randomFillSync, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { AppError, assertNever, toAppError } from '../shared/errors.js';
import type { Cancellation } from '../shared/cancellation.js';
import type { LinkRequestContext, StreamHandle } from '../shared/link.js';
import { isoTime } from '../shared/clock.js';
import { extend } from '../shared/objects.js';
import { RecentMap } from '../shared/recent_map.js';
import {
  isA2aMethod,
  isSendMessageParams,
  isTerminalState,
  META,
  parseA2aParams,
  LIMITS,
  TASK_STATES,
  type Artifact,
  type Message,
  type SendMessageParams,
  type StreamResponse,
  type Task,
  type TaskState,
  type TaskStatus,
} from '../shared/protocol.js';
import type { HubConfig } from './config.js';
import type { HubMetrics } from './metrics.js';
import { replicaStatus, type Replica, type ReplicaAttestation, type ReplicaRegistry } from './registry.js';
import {
  callerKey,
  endsStream,
  taskView,
  type CallerRef,
  type HopRecord,
  type HubTaskRecord,
  type RememberedMessage,
  type TaskEventBus,
  type TaskEventEntry,
  type TaskFailure,
  type TaskStore,
} from './tasks.js';

/** Metadata key on a final status event that carries the hub error which ended the task. */
export const HUB_ERROR_META = 'agenthub/error';

// ---- the routing gate ----------------------------------------------------------------------------------

/** What the gate looks at for one replica. */
export interface GateInput {
  readonly session: { readonly sid: string; readonly alive: boolean } | undefined;
  readonly attestation:
    | {
        readonly status: 'affirming' | 'contraindicated' | 'pending';
        readonly sid: string;
        readonly attestedAt: number;
        readonly policyId: string;
      }
    | undefined;
  /** Readiness from the replica's last heartbeat. */
  readonly ready: boolean;
}

/** Why a replica is not routable. `unattested` reasons map to SPOKE_UNATTESTED, the rest to SPOKE_UNAVAILABLE. */
export type GateReason =
  | 'disconnected'
  | 'session.dead'
  | 'attestation.pending'
  | 'attestation.contraindicated'
  | 'attestation.sid_mismatch'
  | 'attestation.stale'
  | 'attestation.policy_mismatch'
  | 'not_ready';

export type GateVerdict =
  { readonly routable: true } | { readonly routable: false; readonly reason: GateReason };

/** The appraisal policy the gate compares against. */
export interface GatePolicy {
  readonly policyId: string;
  /** An affirming result older than this is stale (ATTESTATION.md: 90 s). */
  readonly maxAgeMs: number;
}

/** The verdict of every routable replica (one frozen object: the gate runs twice per routed message). */
const ROUTABLE: GateVerdict = Object.freeze({ routable: true });

/**
 * The routing gate, a pure function. A replica is routable iff it has a live session, its attestation is
 * `affirming`, was made for this session's sid, is younger than `maxAgeMs` and used the current policy, and
 * its last heartbeat said ready.
 */
export function routingGate(input: GateInput, now: number, policy: GatePolicy): GateVerdict {
  if (input.session === undefined) return { routable: false, reason: 'disconnected' };
  if (!input.session.alive) return { routable: false, reason: 'session.dead' };
  const attestation = input.attestation;
  if (attestation === undefined) return { routable: false, reason: 'attestation.pending' };
  if (attestation.sid !== input.session.sid) return { routable: false, reason: 'attestation.sid_mismatch' };
  switch (attestation.status) {
    case 'pending':
      return { routable: false, reason: 'attestation.pending' };
    case 'contraindicated':
      return { routable: false, reason: 'attestation.contraindicated' };
    case 'affirming':
      break;
    default:
      return assertNever(attestation.status, 'attestation status');
  }
  if (attestation.policyId !== policy.policyId)
    return { routable: false, reason: 'attestation.policy_mismatch' };
  if (now >= attestation.attestedAt + policy.maxAgeMs)
    return { routable: false, reason: 'attestation.stale' };
  if (!input.ready) return { routable: false, reason: 'not_ready' };
  return ROUTABLE;
}

/** True for gate reasons that are about attestation (→ SPOKE_UNATTESTED) rather than reachability. */
export function isAttestationReason(reason: GateReason): boolean {
  switch (reason) {
    case 'attestation.pending':
    case 'attestation.contraindicated':
    case 'attestation.sid_mismatch':
    case 'attestation.stale':
    case 'attestation.policy_mismatch':
      return true;
    case 'disconnected':
    case 'session.dead':
    case 'not_ready':
      return false;
    default:
      return assertNever(reason, 'gate reason');
  }
}

/** The gate input of a registry replica. */
export function gateInputOf(replica: Replica): GateInput {
  return {
    session: replica.session,
    attestation: replica.attestation,
    ready: replica.load.ready,
  };
}

// ---- the router ---------------------------------------------------------------------------------------

/** Dependencies of the router. */
export interface RouterDeps {
  readonly registry: ReplicaRegistry;
  readonly store: TaskStore;
  readonly bus: TaskEventBus;
  readonly config: Pick<
    HubConfig,
    | 'QUEUE_LIMIT'
    | 'DEFAULT_DEADLINE_MS'
    | 'IDLE_TIMEOUT_MS'
    | 'DEDUPE_TTL_MS'
    | 'ATTESTATION_MAX_AGE_MS'
    | 'REATTEST_INTERVAL_MS'
  >;
  /** Current appraisal policy id (SHA-256 of the reference values). */
  readonly policyId: string;
  readonly logger: Logger;
  readonly metrics?: HubMetrics | undefined;
  readonly now?: (() => number) | undefined;
}

/** A request to route: an A2A message plus who sent it and where it should go. */
export interface RouteRequest {
  readonly caller: CallerRef;
  /** Target spoke name; when absent, `skill` selects the spoke. */
  readonly tenant?: string | undefined;
  readonly skill?: string | undefined;
  readonly message: Message;
  readonly configuration?: SendMessageParams['configuration'];
  readonly metadata?: Readonly<Record<string, unknown>> | undefined;
}

/** What submit() returns: the hub task and whether an earlier request with the same messageId made it. */
export interface SubmitResult {
  readonly record: HubTaskRecord;
  readonly deduplicated: boolean;
}

/** Result of an A2A call: a plain result, or a stream of the task's log entries (SSE / link stream). */
export type A2aOutcome =
  | { readonly kind: 'result'; readonly result: unknown }
  | { readonly kind: 'stream'; readonly taskId: string; readonly entries: AsyncIterable<TaskEventEntry> };

interface Delivery {
  readonly record: HubTaskRecord;
  readonly spoke: string;
  readonly request: RouteRequest;
  /** Replica a continuation (message.taskId) must go to. */
  readonly pinnedReplica: string | undefined;
  /** Spoke task id a continuation refers to. */
  readonly continuesSpokeTask: string | undefined;
  readonly idleTimeoutMs: number;
  readonly acceptedAt: number;
  replica: Replica | undefined;
  hop: HopRecord | undefined;
  /** The current attempt's stream from the spoke; canceled when the hub ends the task itself. */
  stream: StreamHandle | undefined;
  /** True once the hub has canceled `stream` (what arrives after that is not late, it is expected). */
  streamCanceled: boolean;
  released: boolean;
  settled: boolean;
  attempts: number;
  lastEventAt: number;
  /** True once an attempt went out to a replica: from then on the idle limit counts, not only the deadline. */
  idleCounts: boolean;
  /** The delivery's one timer, due at `timerDue`: the earlier of the total deadline and the idle limit. */
  timer: NodeJS.Timeout | undefined;
  timerDue: number;
  /** Callers waiting in `settled()` for this delivery's end (woken with the live record, no store read). */
  waiters: SettleWaiter[] | undefined;
}

/** One `settled()` call waiting on an in-flight delivery. */
interface SettleWaiter {
  resolve(record: HubTaskRecord): void;
}

/** Random bytes for trace and span ids, filled 4 KiB at a time (one randomBytes call per id cost ~10 µs). */
const randomPool = Buffer.alloc(4096);
let randomPoolOffset = randomPool.length;

function randomHex(bytes: number): string {
  if (randomPoolOffset + bytes > randomPool.length) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  const hex = randomPool.toString('hex', randomPoolOffset, randomPoolOffset + bytes);
  randomPoolOffset += bytes;
  return hex;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const STICKY_LIMIT = 10_000;
const CANCEL_TIMEOUT_MS = 5_000;

/** The hub's router. One per hub. */
export class Router {
  private readonly registry: ReplicaRegistry;
  private readonly store: TaskStore;
  private readonly bus: TaskEventBus;
  private readonly config: RouterDeps['config'];
  private readonly policy: GatePolicy;
  private readonly log: Logger;
  private readonly metrics: HubMetrics | undefined;
  private readonly now: () => number;
  private readonly active = new Map<string, Delivery>();
  /**
   * Per target spoke: trace id → the deliveries in flight to it with that trace, oldest first. A spoke asks
   * another spoke only while it works on a task the hub delivered to it, so this is how a sub-request finds its
   * parent (the newest one).
   */
  private readonly activeByTrace = new Map<string, Map<string, Delivery[]>>();
  private readonly queues = new Map<string, Delivery[]>();
  private readonly sticky = new RecentMap<string, string>(STICKY_LIMIT);
  private readonly hopAttestations = new WeakMap<ReplicaAttestation, HopRecord['attestation']>();
  /** Submissions in progress, per caller key and messageId (a concurrent duplicate waits for the first). */
  private readonly submitting = new Map<string, Map<string, Promise<SubmitResult>>>();
  /** Smoothed service time per spoke, ms (for Retry-After on QUEUE_FULL). */
  private readonly serviceMs = new Map<string, number>();
  private closing = false;
  private readonly unsubscribeRegistry: () => void;

  constructor(deps: RouterDeps) {
    this.registry = deps.registry;
    this.store = deps.store;
    this.bus = deps.bus;
    this.config = deps.config;
    this.policy = { policyId: deps.policyId, maxAgeMs: deps.config.ATTESTATION_MAX_AGE_MS };
    this.log = deps.logger;
    this.metrics = deps.metrics;
    this.now = deps.now ?? Date.now;
    this.unsubscribeRegistry = this.registry.onChange((replica) => this.pump(replica.spoke));
  }

  /** Gate verdict of one replica now. */
  verdict(replica: Replica): GateVerdict {
    return routingGate(gateInputOf(replica), this.now(), this.policy);
  }

  /** Routable replicas of a spoke. */
  routableReplicas(spoke: string): Replica[] {
    return this.registry.replicasOf(spoke).filter((replica) => this.verdict(replica).routable);
  }

  /** Requests accepted and not yet settled (in flight plus queued), for tests and graceful shutdown. */
  pendingCount(): number {
    return this.active.size;
  }

  /** Requests waiting for a replica slot, per spoke. */
  queuedCount(spoke: string): number {
    return this.queues.get(spoke)?.length ?? 0;
  }

  /** Accepts a request: gate, dedupe, target choice, admission (dispatch or queue) and the hub task record. */
  submit(request: RouteRequest): Promise<SubmitResult> {
    const key = callerKey(request.caller);
    const { messageId } = request.message;
    let ofCaller = this.submitting.get(key);
    const inFlight = ofCaller?.get(messageId);
    if (inFlight !== undefined) {
      return inFlight.then((result) => {
        this.metrics?.deduplicated();
        return { record: result.record, deduplicated: true };
      });
    }
    if (ofCaller === undefined) {
      ofCaller = new Map();
      this.submitting.set(key, ofCaller);
    }
    const submissions = ofCaller;
    const promise = this.submitOnce(request).finally(() => submissions.delete(messageId));
    submissions.set(messageId, promise);
    return promise;
  }

  private async submitOnce(request: RouteRequest): Promise<SubmitResult> {
    if (this.closing)
      throw new AppError('SPOKE_UNAVAILABLE', 'the hub is shutting down', { retryAfterSeconds: 1 });
    const now = this.now();
    if (request.caller.kind === 'spoke') this.gateCaller(request.caller);
    const ownerKey = callerKey(request.caller);
    const existingId = await this.store.findByMessageId(ownerKey, request.message.messageId, now);
    if (existingId !== undefined) {
      const existing = await this.store.getTask(existingId);
      if (existing !== undefined) {
        this.metrics?.deduplicated();
        return { record: existing, deduplicated: true };
      }
    }
    const continuation =
      request.message.taskId === undefined
        ? undefined
        : await this.continuation(request.message.taskId, request, ownerKey);
    const spoke = continuation?.spoke ?? this.resolveTarget(request);
    const routable = this.routableReplicas(spoke);
    const candidates =
      continuation === undefined
        ? routable
        : routable.filter((replica) => replica.key === continuation.replica);
    if (candidates.length === 0) throw this.unroutable(spoke, continuation?.replica);
    const queue = this.queueOf(spoke);
    const givenContextId = request.message.contextId ?? continuation?.contextId;
    const contextId = givenContextId ?? randomUUID();
    const immediate =
      queue.length === 0 ? this.choose(candidates, contextId, givenContextId === undefined) : undefined;
    if (immediate === undefined && queue.length >= this.config.QUEUE_LIMIT) {
      const error = new AppError('QUEUE_FULL', `spoke ${spoke} is at capacity and its queue is full`, {
        details: { spoke, queueLimit: this.config.QUEUE_LIMIT },
        retryAfterSeconds: this.retryAfterSeconds(spoke, candidates),
      });
      this.metrics?.rejected(spoke, error.code);
      throw error;
    }
    const record = this.newRecord(request, spoke, contextId, now);
    await this.linkToParent(record, request.caller);
    const delivery: Delivery = {
      record,
      spoke,
      request,
      pinnedReplica: continuation?.replica,
      continuesSpokeTask: continuation?.spokeTaskId,
      idleTimeoutMs: Math.min(this.idleTimeoutOf(request), Math.max(1, record.deadline - now)),
      acceptedAt: now,
      replica: undefined,
      hop: undefined,
      stream: undefined,
      streamCanceled: false,
      released: false,
      settled: false,
      attempts: 0,
      lastEventAt: now,
      idleCounts: false,
      timer: undefined,
      timerDue: Number.POSITIVE_INFINITY,
      waiters: undefined,
    };
    this.track(delivery);
    if (immediate !== undefined) {
      immediate.outstanding += 1;
      delivery.replica = immediate;
    } else {
      record.queuedAt = isoTime(now);
      queue.push(delivery);
      this.metrics?.setQueueDepth(spoke, queue.length);
    }
    this.armTimer(delivery);
    await this.saveWithEvent(record, { task: record.task }, false, {
      messageId: request.message.messageId,
      expiresAt: now + this.config.DEDUPE_TTL_MS,
    });
    if (immediate !== undefined) this.run(delivery, immediate);
    return { record, deduplicated: false };
  }

  /** Waits until the task's stream ends (terminal or interrupted state) and returns the record. */
  async settled(taskId: string, signal?: Cancellation): Promise<HubTaskRecord> {
    const delivery = this.active.get(taskId);
    if (delivery !== undefined) return this.settledDelivery(delivery, signal);
    const record = await this.store.getTask(taskId);
    if (record === undefined) throw new AppError('TASK_NOT_FOUND', `task ${taskId} not found`);
    if (this.isFinal(record)) return record;
    const store = this.store;
    return new Promise<HubTaskRecord>((resolve, reject) => {
      // One object for both ends (method shorthand, and the abort listener via handleEvent): no named
      // closures per waiting request.
      const waiter = {
        done: false,
        // Re-read on the way out: a store may hand back copies (SQL), so `record` above is a snapshot.
        finish(): void {
          if (waiter.done) return;
          waiter.done = true;
          unsubscribe();
          signal?.removeEventListener('abort', waiter);
          store.getTask(taskId).then((latest) => resolve(latest ?? record), reject);
        },
        handleEvent(): void {
          if (waiter.done) return;
          waiter.done = true;
          unsubscribe();
          reject(new AppError('CANCELED', 'the caller went away'));
        },
      };
      const unsubscribe = this.bus.subscribe(taskId, (entry) => {
        if (entry.final) waiter.finish();
      });
      if (signal?.aborted === true) {
        waiter.handleEvent();
        return;
      }
      signal?.addEventListener('abort', waiter, { once: true });
      // The task may have finished between the first read and the subscription.
      store.getTask(taskId).then((latest) => {
        if (latest !== undefined && this.isFinal(latest)) waiter.finish();
      }, reject);
    });
  }

  /**
   * `settled()` for a task routed by this hub and still in flight (the routed hot path): waits on the delivery
   * itself and gets its live record, which is what was saved last.
   */
  private settledDelivery(delivery: Delivery, signal?: Cancellation): Promise<HubTaskRecord> {
    return new Promise<HubTaskRecord>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(new AppError('CANCELED', 'the caller went away'));
        return;
      }
      const waiter = {
        resolve(record: HubTaskRecord): void {
          signal?.removeEventListener('abort', waiter);
          resolve(record);
        },
        handleEvent(): void {
          const waiters = delivery.waiters;
          const index = waiters?.indexOf(waiter) ?? -1;
          if (index >= 0) waiters?.splice(index, 1);
          reject(new AppError('CANCELED', 'the caller went away'));
        },
      };
      (delivery.waiters ??= []).push(waiter);
      signal?.addEventListener('abort', waiter, { once: true });
    });
  }

  /**
   * The task's log entries after `afterSeq`, then live ones, until the entry that ends the stream. A replay
   * that hits evicted events first yields the current task (metadata `agenthub/gap: true`).
   */
  async *follow(taskId: string, afterSeq: number, signal?: Cancellation): AsyncGenerator<TaskEventEntry> {
    const buffered: TaskEventEntry[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = this.bus.subscribe(taskId, (entry) => {
      buffered.push(entry);
      wake?.();
    });
    const onAbort = (): void => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      const record = await this.store.getTask(taskId);
      if (record === undefined) return;
      const replay = await this.store.eventsAfter(taskId, afterSeq);
      let last = afterSeq;
      const first = replay.entries[0];
      if (replay.gap && first !== undefined) {
        yield {
          taskId,
          seq: first.seq - 1,
          epoch: first.epoch,
          event: {
            task: extend(record.task, { metadata: extend(record.task.metadata, { 'agenthub/gap': true }) }),
          },
          final: false,
        };
      }
      for (const entry of replay.entries) {
        last = entry.seq;
        yield entry;
        if (entry.final) return;
      }
      if (replay.entries.length === 0 && this.isFinal(record)) return;
      while (signal?.aborted !== true) {
        const next = buffered.shift();
        if (next === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        if (next.seq <= last) continue;
        last = next.seq;
        yield next;
        if (next.final) return;
      }
    } finally {
      unsubscribe();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Cancels a hub task on behalf of its caller: queued → dropped; delivered → CancelTask to the spoke. */
  async cancel(taskId: string, caller: CallerRef): Promise<HubTaskRecord> {
    const record = await this.ownedTask(taskId, caller);
    const state = record.task.status.state;
    if (state === 'TASK_STATE_CANCELED') return record;
    if (isTerminalState(state)) {
      throw new AppError('TASK_NOT_CANCELABLE', `task ${taskId} is already ${state}`, { details: { state } });
    }
    const delivery = this.active.get(taskId);
    const canceled = new AppError('CANCELED', 'canceled by the caller');
    if (delivery === undefined) {
      const hop = record.hops.at(-1);
      const replica = hop === undefined ? undefined : this.registry.get(hop.replica);
      if (hop?.spokeTaskId != null && replica?.session !== undefined) {
        await this.cancelAtSpoke(replica, hop.spokeTaskId, record);
      }
      await this.finishRecord(record, 'TASK_STATE_CANCELED', canceled);
      return record;
    }
    const queue = this.queueOf(delivery.spoke);
    const queuedAt = queue.indexOf(delivery);
    if (queuedAt >= 0) {
      queue.splice(queuedAt, 1);
      this.metrics?.setQueueDepth(delivery.spoke, queue.length);
    } else if (delivery.replica !== undefined && delivery.hop?.spokeTaskId != null) {
      await this.cancelAtSpoke(delivery.replica, delivery.hop.spokeTaskId, record);
    }
    if (!delivery.settled) await this.settle(delivery, 'TASK_STATE_CANCELED', canceled);
    return record;
  }

  /** Serves one A2A method for `caller` (an HTTP client or a spoke on its link). */
  async a2a(caller: CallerRef, method: string, params: unknown, signal?: Cancellation): Promise<A2aOutcome> {
    if (!isA2aMethod(method)) {
      throw new AppError('METHOD_NOT_FOUND', `unknown method ${method}`, { details: { method } });
    }
    switch (method) {
      case 'SendMessage': {
        const parsed = this.sendParams(method, params);
        const { record } = await this.submit(this.routeRequest(caller, parsed));
        if (parsed.configuration?.returnImmediately === true)
          return { kind: 'result', result: { task: record.task } };
        const done = await this.settled(record.id, signal);
        if (done.failure !== null) throw failureError(done.failure);
        return {
          kind: 'result',
          result: { task: taskView(done.task, parsed.configuration?.historyLength) },
        };
      }
      case 'SendStreamingMessage': {
        const parsed = this.sendParams(method, params);
        const { record } = await this.submit(this.routeRequest(caller, parsed));
        return { kind: 'stream', taskId: record.id, entries: this.follow(record.id, 0, signal) };
      }
      case 'GetTask': {
        const parsed = parseA2aParams(method, params);
        const record = await this.ownedTask(parsed.id, caller);
        return { kind: 'result', result: taskView(record.task, parsed.historyLength) };
      }
      case 'ListTasks': {
        const parsed = parseA2aParams(method, params);
        const pageSize = parsed.pageSize ?? 50;
        const page = await this.store.listTasks({
          callerKey: callerKey(caller),
          contextId: parsed.contextId,
          state: parsed.status,
          pageSize,
          pageToken: parsed.pageToken,
        });
        return {
          kind: 'result',
          result: {
            tasks: page.tasks.map((record) =>
              taskView(record.task, parsed.historyLength, parsed.includeArtifacts === true),
            ),
            nextPageToken: page.nextPageToken,
            pageSize,
            totalSize: page.totalSize,
          },
        };
      }
      case 'CancelTask': {
        const parsed = parseA2aParams(method, params);
        const record = await this.cancel(parsed.id, caller);
        return { kind: 'result', result: record.task };
      }
      case 'SubscribeToTask': {
        const parsed = parseA2aParams(method, params);
        const record = await this.ownedTask(parsed.id, caller);
        const afterSeq = this.afterSeqOf(parsed.metadata);
        if (afterSeq === undefined) {
          if (isTerminalState(record.task.status.state)) {
            throw new AppError('UNSUPPORTED_OPERATION', `task ${parsed.id} is ${record.task.status.state}`, {
              details: { state: record.task.status.state },
            });
          }
          return { kind: 'stream', taskId: record.id, entries: this.subscribeFromNow(record, signal) };
        }
        return { kind: 'stream', taskId: record.id, entries: this.follow(record.id, afterSeq, signal) };
      }
      default:
        return assertNever(method, 'A2A method');
    }
  }

  /** The handler for requests a spoke sends up its link: the same A2A methods, as the requesting spoke. */
  linkRequestHandler(
    replica: Replica,
  ): (
    method: string,
    params: unknown,
    context: LinkRequestContext,
  ) => Promise<unknown> | AsyncIterable<unknown> {
    const caller: CallerRef = { kind: 'spoke', spoke: replica.spoke, replica: replica.key };
    return (method, params, context) => {
      if (method === 'SendStreamingMessage' || method === 'SubscribeToTask') {
        return this.linkStream(caller, method, params, context.cancellation);
      }
      return this.a2a(caller, method, params, context.cancellation).then((outcome) => {
        if (outcome.kind === 'result') return outcome.result;
        throw new AppError('INTERNAL', `method ${method} produced a stream`);
      });
    };
  }

  /** Fails everything in flight and queued (shutdown). */
  async close(reason: AppError): Promise<void> {
    this.closing = true;
    this.unsubscribeRegistry();
    const pending = [...this.active.values()].filter((delivery) => !delivery.settled);
    for (const queue of this.queues.values()) queue.length = 0;
    await Promise.all(pending.map((delivery) => this.settle(delivery, 'TASK_STATE_FAILED', reason)));
  }

  // ---- internals ----------------------------------------------------------------------------------------

  private async *linkStream(
    caller: CallerRef,
    method: string,
    params: unknown,
    signal: Cancellation,
  ): AsyncGenerator<StreamResponse> {
    const outcome = await this.a2a(caller, method, params, signal);
    if (outcome.kind !== 'stream')
      throw new AppError('INTERNAL', `method ${method} did not produce a stream`);
    for await (const entry of outcome.entries) {
      yield entry.event;
      const failure = entryFailure(entry);
      if (failure !== undefined) throw failure;
    }
  }

  private async *subscribeFromNow(
    record: HubTaskRecord,
    signal?: Cancellation,
  ): AsyncGenerator<TaskEventEntry> {
    const seq = await this.store.lastEventSeq(record.id);
    yield { taskId: record.id, seq, epoch: this.store.epoch, event: { task: record.task }, final: false };
    yield* this.follow(record.id, seq, signal);
  }

  private afterSeqOf(metadata: Readonly<Record<string, unknown>> | undefined): number | undefined {
    const value = metadata?.[META.afterSeq];
    if (value === undefined) return undefined;
    const seq = typeof value === 'string' ? Number(value) : value;
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0) {
      throw new AppError('BAD_REQUEST', `metadata.${META.afterSeq} must be a non-negative integer`, {
        details: { field: `metadata.${META.afterSeq}` },
      });
    }
    const epoch = metadata?.[META.epoch];
    return epoch !== undefined && epoch !== this.store.epoch ? 0 : seq;
  }

  /**
   * Params of a send: the hand-written guard first, which accepts only what the zod schema accepts unchanged
   * (test/unit/protocol_guard.test.ts holds it to that) at a fraction of the cost, then the schema itself for
   * anything the guard does not take, so errors keep their codes and messages.
   */
  private sendParams(method: 'SendMessage' | 'SendStreamingMessage', params: unknown): SendMessageParams {
    if (isSendMessageParams(params)) return params;
    return parseA2aParams(method, params);
  }

  private routeRequest(caller: CallerRef, params: SendMessageParams): RouteRequest {
    const skill = params.metadata?.[META.skill] ?? params.message.metadata?.[META.skill];
    return {
      caller,
      tenant: params.tenant,
      skill: typeof skill === 'string' ? skill : undefined,
      message: params.message,
      configuration: params.configuration,
      metadata: params.metadata,
    };
  }

  private gateCaller(caller: Extract<CallerRef, { kind: 'spoke' }>): void {
    const replica = this.registry.get(caller.replica);
    const verdict: GateVerdict =
      replica === undefined ? { routable: false, reason: 'disconnected' } : this.verdict(replica);
    if (!verdict.routable) {
      this.metrics?.rejected(caller.spoke, 'SPOKE_UNATTESTED');
      throw new AppError(
        'SPOKE_UNATTESTED',
        `requesting spoke ${caller.spoke} is not attested (${verdict.reason})`,
        {
          details: { spoke: caller.spoke, role: 'caller', reason: verdict.reason },
          retryAfterSeconds: Math.ceil(this.config.REATTEST_INTERVAL_MS / 1000),
        },
      );
    }
  }

  private resolveTarget(request: RouteRequest): string {
    if (request.tenant !== undefined) {
      if (!this.registry.hasSpoke(request.tenant)) {
        throw new AppError('NOT_FOUND', `no spoke named ${request.tenant}`, {
          details: { tenant: request.tenant, spokes: this.registry.spokeNames() },
        });
      }
      return request.tenant;
    }
    if (request.skill !== undefined) {
      const spokes = this.registry.spokesWithSkill(request.skill);
      const routable = spokes.find((spoke) => this.routableReplicas(spoke).length > 0);
      const chosen = routable ?? spokes[0];
      if (chosen === undefined) {
        throw new AppError('NOT_FOUND', `no spoke declares skill ${request.skill}`, {
          details: { skill: request.skill },
        });
      }
      return chosen;
    }
    throw new AppError('BAD_REQUEST', 'params.tenant (the spoke) or metadata skill id is required', {
      details: { field: 'params.tenant' },
    });
  }

  /** A message with `taskId` continues an interrupted hub task on the same replica. */
  private async continuation(
    taskId: string,
    request: RouteRequest,
    ownerKey: string,
  ): Promise<{ spoke: string; replica: string; spokeTaskId: string; contextId: string }> {
    const record = await this.store.getTask(taskId);
    if (record === undefined || record.callerKey !== ownerKey) {
      throw new AppError('TASK_NOT_FOUND', `task ${taskId} not found`, { details: { taskId } });
    }
    if (isTerminalState(record.task.status.state) || this.active.has(taskId)) {
      throw new AppError('UNSUPPORTED_OPERATION', `task ${taskId} does not accept messages now`, {
        details: { taskId, state: record.task.status.state },
      });
    }
    if (request.message.contextId !== undefined && request.message.contextId !== record.contextId) {
      throw new AppError('BAD_REQUEST', 'message.contextId does not match the task', {
        details: { field: 'message.contextId' },
      });
    }
    const hop = record.hops.at(-1);
    if (hop === undefined || hop.spokeTaskId === null) {
      throw new AppError('UNSUPPORTED_OPERATION', `task ${taskId} has no spoke task to continue`);
    }
    return {
      spoke: record.target,
      replica: hop.replica,
      spokeTaskId: hop.spokeTaskId,
      contextId: record.contextId,
    };
  }

  private unroutable(spoke: string, onlyReplica?: string): AppError {
    const replicas = this.registry
      .replicasOf(spoke)
      .filter((replica) => onlyReplica === undefined || replica.key === onlyReplica);
    const reasons = replicas.map(
      (replica): { replica: string; status: string; reason: GateReason | 'full' } => {
        const verdict = this.verdict(replica);
        return {
          replica: replica.key,
          status: replicaStatus(replica),
          reason: verdict.routable ? 'full' : verdict.reason,
        };
      },
    );
    const unattested = reasons.some(
      (entry) =>
        entry.reason !== 'full' && isAttestationReason(entry.reason) && entry.status !== 'disconnected',
    );
    const error = unattested
      ? new AppError('SPOKE_UNATTESTED', `spoke ${spoke} is not attested`, {
          details: { spoke, replicas: reasons },
          retryAfterSeconds: Math.ceil(this.config.REATTEST_INTERVAL_MS / 1000),
        })
      : new AppError('SPOKE_UNAVAILABLE', `spoke ${spoke} has no reachable replica`, {
          details: { spoke, replicas: reasons },
          retryAfterSeconds: 5,
        });
    this.metrics?.rejected(spoke, error.code);
    return error;
  }

  /**
   * Least outstanding (relative to capacity) among replicas with a free slot; sticky by contextId, per spoke
   * (one conversation may reach several spokes: finance asks marketing in the conversation it answers). A
   * context the hub has just made up (`newContext`) has no replica yet, so it is not looked up.
   */
  private choose(candidates: readonly Replica[], contextId: string, newContext = false): Replica | undefined {
    const withRoom = candidates.filter((replica) => replica.outstanding < replica.load.capacity);
    if (withRoom.length === 0) return undefined;
    const contextKey = `${withRoom[0]!.spoke}\n${contextId}`;
    const stickyKey = newContext ? undefined : this.sticky.get(contextKey);
    let chosen = stickyKey === undefined ? undefined : withRoom.find((replica) => replica.key === stickyKey);
    if (chosen === undefined) {
      for (const replica of withRoom) {
        if (
          chosen === undefined ||
          replica.outstanding / replica.load.capacity < chosen.outstanding / chosen.load.capacity ||
          (replica.outstanding / replica.load.capacity === chosen.outstanding / chosen.load.capacity &&
            replica.outstanding < chosen.outstanding)
        ) {
          chosen = replica;
        }
      }
    }
    if (chosen !== undefined && stickyKey !== chosen.key) {
      this.sticky.set(contextKey, chosen.key);
    }
    return chosen;
  }

  private queueOf(spoke: string): Delivery[] {
    let queue = this.queues.get(spoke);
    if (queue === undefined) {
      queue = [];
      this.queues.set(spoke, queue);
    }
    return queue;
  }

  /** Dispatches queued requests while a routable replica has room; fails them all if none is routable. */
  private pump(spoke: string): void {
    const queue = this.queues.get(spoke);
    if (queue === undefined || queue.length === 0) return;
    while (queue.length > 0) {
      const head = queue[0];
      if (head === undefined) break;
      const candidates = this.routableReplicas(spoke).filter(
        (replica) => head.pinnedReplica === undefined || replica.key === head.pinnedReplica,
      );
      if (candidates.length === 0) {
        queue.shift();
        void this.settle(head, 'TASK_STATE_FAILED', this.unroutable(spoke, head.pinnedReplica));
        continue;
      }
      const chosen = this.choose(candidates, head.record.contextId);
      if (chosen === undefined) break;
      queue.shift();
      chosen.outstanding += 1;
      head.replica = chosen;
      this.run(head, chosen);
    }
    this.metrics?.setQueueDepth(spoke, queue.length);
  }

  private retryAfterSeconds(spoke: string, candidates: readonly Replica[]): number {
    const capacity = candidates.reduce((sum, replica) => sum + replica.load.capacity, 0);
    const serviceMs = this.serviceMs.get(spoke) ?? 1000;
    const queued = this.queueOf(spoke).length;
    return Math.max(1, Math.ceil((serviceMs * (queued + 1)) / Math.max(1, capacity) / 1000));
  }

  private idleTimeoutOf(request: RouteRequest): number {
    const value = request.metadata?.[META.idleTimeoutMs];
    return typeof value === 'number' && Number.isFinite(value) && value > 0
      ? Math.min(value, this.config.IDLE_TIMEOUT_MS * 10)
      : this.config.IDLE_TIMEOUT_MS;
  }

  private newRecord(request: RouteRequest, spoke: string, contextId: string, now: number): HubTaskRecord {
    const id = randomUUID();
    const requested = request.metadata?.[META.deadline];
    const deadline =
      typeof requested === 'number' && Number.isFinite(requested) && requested > now
        ? Math.min(requested, now + this.config.DEFAULT_DEADLINE_MS * 10)
        : now + this.config.DEFAULT_DEADLINE_MS;
    const incomingTrace = request.metadata?.[META.traceparent];
    const match = typeof incomingTrace === 'string' ? TRACEPARENT.exec(incomingTrace) : null;
    const traceId = match?.[1] ?? randomHex(16);
    const traceparent = `00-${traceId}-${randomHex(8)}-01`;
    const createdAt = isoTime(now);
    const message: Message = extend(request.message, { contextId, taskId: id });
    return {
      id,
      contextId,
      caller: request.caller,
      callerKey: callerKey(request.caller),
      messageId: request.message.messageId,
      target: spoke,
      skill: request.skill ?? null,
      traceId,
      traceparent,
      parentTaskId: null,
      childTaskIds: [],
      createdAt,
      queuedAt: null,
      finishedAt: null,
      deadline,
      hops: [],
      task: {
        id,
        contextId,
        status: { state: 'TASK_STATE_SUBMITTED', timestamp: createdAt },
        history: [message],
        metadata: { [META.deadline]: deadline, [META.traceparent]: traceparent, 'agenthub/target': spoke },
      },
      failure: null,
    };
  }

  private track(delivery: Delivery): void {
    const { record } = delivery;
    this.active.set(record.id, delivery);
    let ofTarget = this.activeByTrace.get(record.target);
    if (ofTarget === undefined) {
      ofTarget = new Map();
      this.activeByTrace.set(record.target, ofTarget);
    }
    const sameTrace = ofTarget.get(record.traceId);
    if (sameTrace === undefined) ofTarget.set(record.traceId, [delivery]);
    else sameTrace.push(delivery);
  }

  private untrack(delivery: Delivery): void {
    const { record } = delivery;
    this.active.delete(record.id);
    const ofTarget = this.activeByTrace.get(record.target);
    const sameTrace = ofTarget?.get(record.traceId);
    if (sameTrace === undefined) return;
    const index = sameTrace.indexOf(delivery);
    if (index >= 0) sameTrace.splice(index, 1);
    if (sameTrace.length === 0) ofTarget?.delete(record.traceId);
  }

  /**
   * Links a spoke's sub-request to the hub task that spoke is working on: the one in flight to it with the same
   * trace id (its live record, which is what the parent's next save writes).
   */
  private async linkToParent(record: HubTaskRecord, caller: CallerRef): Promise<void> {
    if (caller.kind !== 'spoke') return;
    const parent = this.activeByTrace.get(caller.spoke)?.get(record.traceId)?.at(-1)?.record;
    if (parent === undefined) return;
    record.parentTaskId = parent.id;
    parent.childTaskIds.push(record.id);
    await this.store.saveTask(parent);
  }

  private outgoingParams(delivery: Delivery, hop: HopRecord): SendMessageParams {
    const { request, record } = delivery;
    const callerName = request.caller.kind === 'spoke' ? request.caller.spoke : 'client';
    const message: Message = extend(request.message, { contextId: record.contextId });
    if (delivery.continuesSpokeTask !== undefined) message.taskId = delivery.continuesSpokeTask;
    else if (message.taskId !== undefined) delete message.taskId;
    const metadata: Record<string, unknown> = extend(request.metadata, {
      [META.deadline]: record.deadline,
      [META.idleTimeoutMs]: delivery.idleTimeoutMs,
      [META.traceparent]: record.traceparent,
      [META.caller]: callerName,
      'agenthub/hubTaskId': record.id,
      'agenthub/attempt': hop.attempt,
    });
    if (request.skill !== undefined) metadata[META.skill] = request.skill;
    // The hub keeps its own history of the task: the spoke's snapshots need none.
    return { message, configuration: extend(request.configuration, { historyLength: 0 }), metadata };
  }

  /**
   * Delivers to one replica and turns the spoke's stream into the hub task's events: each event is handled
   * after the previous one (they write to the store), in arrival order, then the attempt ends once.
   */
  private run(delivery: Delivery, replica: Replica): void {
    const { record } = delivery;
    if (delivery.settled) {
      this.release(delivery);
      return;
    }
    delivery.attempts += 1;
    delivery.released = false;
    const now = this.now();
    const hop: HopRecord = {
      from: record.caller.kind === 'spoke' ? record.caller.spoke : 'client',
      to: delivery.spoke,
      replica: replica.key,
      attestation: this.hopAttestation(replica),
      attempt: delivery.attempts,
      dispatchedAt: isoTime(now),
      spokeTaskId: delivery.continuesSpokeTask ?? null,
      firstEventAt: null,
      finishedAt: null,
      outcome: null,
    };
    // A new exact-size array: a push would leave room for 16 more hops on every task kept.
    record.hops = [...record.hops, hop];
    delivery.hop = hop;
    delivery.lastEventAt = now;
    delivery.stream = undefined;
    delivery.streamCanceled = false;
    delivery.idleCounts = true;
    this.armTimer(delivery);
    const attempt = { received: 0, ended: false };
    let handled: Promise<void> = Promise.resolve();
    const endAttempt = (error?: unknown): Promise<void> =>
      this.endAttempt(delivery, replica, hop, attempt, error);
    const channel = replica.session?.channel;
    if (channel === undefined || channel.closed) {
      void endAttempt(new AppError('SPOKE_UNAVAILABLE', `replica ${replica.key} has no open link`));
      return;
    }
    delivery.stream = channel.open('SendStreamingMessage', this.outgoingParams(delivery, hop), {
      item: (item) => {
        handled = handled.then(() => {
          if (attempt.ended) return undefined;
          if (delivery.settled) {
            this.metrics?.late();
            return undefined;
          }
          attempt.received += 1;
          return this.onSpokeEvent(delivery, hop, item).catch(endAttempt);
        });
      },
      end: () => {
        handled = handled.then(() => endAttempt());
      },
      fail: (error) => {
        handled = handled.then(() => endAttempt(error));
      },
    });
  }

  /**
   * Ends one delivery attempt, once: a stream that ended without a final state fails the task; a failure
   * before any event is retried on another replica once (at-least-once); anything else fails the task. The
   * replica's slot is released unless the retry took the delivery elsewhere (it released it then).
   */
  private async endAttempt(
    delivery: Delivery,
    replica: Replica,
    hop: HopRecord,
    attempt: { received: number; ended: boolean },
    error?: unknown,
  ): Promise<void> {
    if (attempt.ended) return;
    attempt.ended = true;
    let retried = false;
    try {
      if (error === undefined) {
        if (!delivery.settled) {
          await this.settle(
            delivery,
            'TASK_STATE_FAILED',
            new AppError('UPSTREAM_ERROR', `spoke ${delivery.spoke} ended the stream without a final state`),
          );
        }
        return;
      }
      if (delivery.settled) {
        if (!delivery.streamCanceled) this.metrics?.late();
        return;
      }
      const appError = toAppError(error, 'UPSTREAM_ERROR');
      if (appError.code === 'SPOKE_UNAVAILABLE' && attempt.received === 0 && delivery.attempts < 2) {
        retried = this.retryElsewhere(delivery, replica);
        if (retried) return;
      }
      hop.outcome = appError.code;
      await this.settle(delivery, 'TASK_STATE_FAILED', appError);
    } catch (settleError) {
      this.log.error(
        { taskId: delivery.record.id, err: toAppError(settleError).message },
        'ending a delivery failed',
      );
    } finally {
      if (!retried) this.release(delivery, replica);
    }
  }

  /**
   * The attestation a hop records: made once per appraisal and status, and shared by every hop dispatched
   * under it (hops never change it).
   */
  private hopAttestation(replica: Replica): HopRecord['attestation'] {
    const attestation = replica.attestation;
    const status = replicaStatus(replica);
    if (attestation === undefined) return { status, attestedAt: null, policyId: this.policy.policyId };
    const cached = this.hopAttestations.get(attestation);
    if (cached?.status === status) return cached;
    const made = {
      status,
      attestedAt: new Date(attestation.attestedAt).toISOString(),
      policyId: attestation.policyId,
    };
    this.hopAttestations.set(attestation, made);
    return made;
  }

  /** At-least-once: a request the replica never acknowledged goes to another routable replica once. */
  private retryElsewhere(delivery: Delivery, failed: Replica): boolean {
    if (delivery.pinnedReplica !== undefined || this.now() >= delivery.record.deadline) return false;
    const others = this.routableReplicas(delivery.spoke).filter((replica) => replica.key !== failed.key);
    const next = this.choose(others, delivery.record.contextId);
    if (next === undefined) return false;
    if (delivery.hop !== undefined) delivery.hop.outcome = 'SPOKE_UNAVAILABLE';
    this.release(delivery, failed);
    next.outstanding += 1;
    delivery.replica = next;
    this.log.warn(
      { taskId: delivery.record.id, from: failed.key, to: next.key },
      'retrying on another replica',
    );
    this.run(delivery, next);
    return true;
  }

  private release(delivery: Delivery, replica: Replica | undefined = delivery.replica): void {
    if (delivery.released || replica === undefined) return;
    delivery.released = true;
    replica.outstanding = Math.max(0, replica.outstanding - 1);
    this.pump(delivery.spoke);
  }

  /**
   * Makes sure the delivery's timer fires no later than its total deadline and, once it counts, its idle limit.
   * A timer that is due earlier stays: when it fires it looks again (events only move `lastEventAt`), so a
   * delivery costs one timer, not one per limit nor one per event.
   */
  private armTimer(delivery: Delivery): void {
    const idleDue = delivery.idleCounts
      ? delivery.lastEventAt + delivery.idleTimeoutMs
      : Number.POSITIVE_INFINITY;
    const due = Math.min(delivery.record.deadline, idleDue);
    if (delivery.timer !== undefined && delivery.timerDue <= due) return;
    clearTimeout(delivery.timer);
    delivery.timerDue = due;
    delivery.timer = setTimeout(this.onTimer, Math.max(0, due - this.now()), delivery);
  }

  // Bound once, the delivery passed as the timer argument: no closure per request.
  private readonly onTimer = (delivery: Delivery): void => {
    delivery.timer = undefined;
    if (delivery.settled) return;
    const now = this.now();
    if (now >= delivery.record.deadline) this.expire(delivery, 'total');
    else if (delivery.idleCounts && now - delivery.lastEventAt >= delivery.idleTimeoutMs)
      this.expire(delivery, 'idle');
    else this.armTimer(delivery);
  };

  /** Deadline passed: CancelTask to the spoke, DEADLINE_EXCEEDED to the caller, later events dropped. */
  private expire(delivery: Delivery, which: 'idle' | 'total'): void {
    if (delivery.settled) return;
    const { record } = delivery;
    const queue = this.queueOf(delivery.spoke);
    const queuedAt = queue.indexOf(delivery);
    if (queuedAt >= 0) {
      queue.splice(queuedAt, 1);
      this.metrics?.setQueueDepth(delivery.spoke, queue.length);
    }
    const waitedMs = this.now() - delivery.acceptedAt;
    const error = new AppError(
      'DEADLINE_EXCEEDED',
      which === 'idle'
        ? `spoke ${delivery.spoke} sent nothing for ${delivery.idleTimeoutMs} ms`
        : `deadline passed after ${waitedMs} ms${queuedAt >= 0 ? ' while queued' : ''}`,
      {
        details: { timeout: which, spoke: delivery.spoke, waitedMs, queued: queuedAt >= 0 },
        retryAfterSeconds: 1,
      },
    );
    const replica = delivery.replica;
    const spokeTaskId = delivery.hop?.spokeTaskId;
    if (queuedAt < 0 && replica !== undefined && spokeTaskId != null) {
      void this.cancelAtSpoke(replica, spokeTaskId, record);
    }
    void this.settle(delivery, 'TASK_STATE_FAILED', error);
  }

  private async cancelAtSpoke(replica: Replica, spokeTaskId: string, record: HubTaskRecord): Promise<void> {
    const channel = replica.session?.channel;
    if (channel === undefined || channel.closed) return;
    try {
      await channel.request('CancelTask', { id: spokeTaskId }, { timeoutMs: CANCEL_TIMEOUT_MS });
    } catch (error) {
      this.log.warn(
        { taskId: record.id, spokeTaskId, replica: replica.key, err: toAppError(error).message },
        'CancelTask at the spoke failed',
      );
    }
  }

  private async onSpokeEvent(delivery: Delivery, hop: HopRecord, item: unknown): Promise<void> {
    const event = parseSpokeEvent(item);
    if (event === undefined) {
      await this.settle(
        delivery,
        'TASK_STATE_FAILED',
        new AppError('UPSTREAM_ERROR', `spoke ${delivery.spoke} sent an invalid stream event`),
      );
      return;
    }
    const now = this.now();
    delivery.lastEventAt = now;
    hop.firstEventAt ??= isoTime(now);
    const { record } = delivery;
    let outgoing: StreamResponse;
    if ('task' in event) {
      hop.spokeTaskId ??= event.task.id;
      const metadata = withSpokeMetadata(record.task.metadata, event.task.metadata);
      record.task =
        event.task.artifacts === undefined
          ? extend(record.task, { status: event.task.status, metadata })
          : extend(record.task, { status: event.task.status, artifacts: event.task.artifacts, metadata });
      outgoing = { task: record.task };
    } else if ('statusUpdate' in event) {
      hop.spokeTaskId ??= event.statusUpdate.taskId;
      this.applyStatus(record, event.statusUpdate.status, event.statusUpdate.metadata);
      outgoing = {
        statusUpdate: {
          taskId: record.id,
          contextId: record.contextId,
          status: event.statusUpdate.status,
          ...(event.statusUpdate.metadata === undefined ? {} : { metadata: event.statusUpdate.metadata }),
        },
      };
    } else if ('artifactUpdate' in event) {
      hop.spokeTaskId ??= event.artifactUpdate.taskId;
      record.task = extend(record.task, {
        artifacts: mergeArtifact(
          record.task.artifacts ?? [],
          event.artifactUpdate.artifact,
          event.artifactUpdate.append === true,
        ),
      });
      outgoing = {
        artifactUpdate: extend(event.artifactUpdate, { taskId: record.id, contextId: record.contextId }),
      };
    } else {
      const message: Message = extend(event.message, { taskId: record.id, contextId: record.contextId });
      this.applyStatus(record, {
        state: 'TASK_STATE_COMPLETED',
        message,
        timestamp: isoTime(now),
      });
      outgoing = { message };
    }
    const state = record.task.status.state;
    const final = 'message' in outgoing || endsStream(state);
    if (final) await this.settle(delivery, state, undefined, outgoing);
    else await this.appendEvent(record, outgoing, false);
  }

  /**
   * Replaces the live task with one in `status` (its message appended to the history, `spokeMetadata` taken in):
   * a new task object, never a change in place, because logged events share it (tasks.ts).
   */
  private applyStatus(
    record: HubTaskRecord,
    status: TaskStatus,
    spokeMetadata?: Record<string, unknown>,
  ): void {
    const metadata = withSpokeMetadata(record.task.metadata, spokeMetadata);
    record.task =
      status.message === undefined
        ? extend(record.task, { status, metadata })
        : extend(record.task, {
            status,
            metadata,
            history: [...(record.task.history ?? []), status.message],
          });
  }

  /**
   * Ends a delivery once: stops timers and the stream, records the outcome, appends the final event (the
   * spoke's, or a status event carrying the hub error) and counts it.
   */
  private async settle(
    delivery: Delivery,
    state: TaskState,
    error?: AppError,
    finalEvent?: StreamResponse,
  ): Promise<void> {
    if (delivery.settled) return;
    delivery.settled = true;
    clearTimeout(delivery.timer);
    delivery.timer = undefined;
    this.untrack(delivery);
    if (error !== undefined) {
      delivery.streamCanceled = true;
      delivery.stream?.cancel();
    }
    const now = this.now();
    const finishedAt = isoTime(now);
    if (delivery.hop !== undefined) {
      delivery.hop.finishedAt = finishedAt;
      delivery.hop.outcome ??= error?.code ?? state;
    }
    const seconds = (now - delivery.acceptedAt) / 1000;
    const interrupted = !isTerminalState(state);
    if (error === undefined && !interrupted) {
      this.serviceMs.set(
        delivery.spoke,
        0.8 * (this.serviceMs.get(delivery.spoke) ?? seconds * 1000) + 0.2 * seconds * 1000,
      );
    }
    this.metrics?.routed(
      delivery.spoke,
      error?.code ?? (interrupted ? 'interrupted' : outcomeOf(state)),
      seconds,
    );
    try {
      if (error !== undefined) {
        this.log.info(
          { taskId: delivery.record.id, traceparent: delivery.record.traceparent, code: error.code },
          error.message,
        );
        await this.finishRecord(
          delivery.record,
          error.code === 'CANCELED' ? 'TASK_STATE_CANCELED' : state,
          error,
        );
        return;
      }
      if (!interrupted) delivery.record.finishedAt = finishedAt;
      this.log.info(
        {
          taskId: delivery.record.id,
          traceparent: delivery.record.traceparent,
          spoke: delivery.spoke,
          state,
          ms: Math.round(seconds * 1000),
        },
        'task routed',
      );
      await this.saveWithEvent(delivery.record, finalEvent ?? { task: delivery.record.task }, true);
    } finally {
      // Also when the store failed: a waiter gets the record as it is rather than waiting forever.
      const waiters = delivery.waiters ?? [];
      delivery.waiters = undefined;
      for (const waiter of waiters) waiter.resolve(delivery.record);
    }
  }

  /** Marks a record ended by a hub-side error or cancel and appends its final status event. */
  private async finishRecord(record: HubTaskRecord, state: TaskState, error: AppError): Promise<void> {
    const at = isoTime(this.now());
    const failure: TaskFailure = {
      code: error.code,
      message: error.message,
      ...(error.details === undefined ? {} : { details: error.details }),
      ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
    };
    const status: TaskStatus = {
      state,
      timestamp: at,
      message: {
        messageId: randomUUID(),
        role: 'ROLE_AGENT',
        taskId: record.id,
        contextId: record.contextId,
        parts: [{ text: error.message }],
      },
    };
    record.failure = state === 'TASK_STATE_CANCELED' ? null : failure;
    record.finishedAt = at;
    this.applyStatus(record, status);
    record.task = extend(record.task, {
      metadata: extend(record.task.metadata, {
        [HUB_ERROR_META]: { code: error.code, message: error.message },
      }),
    });
    await this.saveWithEvent(
      record,
      {
        statusUpdate: {
          taskId: record.id,
          contextId: record.contextId,
          status,
          metadata: { [HUB_ERROR_META]: failure },
        },
      },
      true,
    );
  }

  private async appendEvent(record: HubTaskRecord, event: StreamResponse, final: boolean): Promise<void> {
    const entry = await this.store.appendEvent(record.id, event, final);
    this.bus.publish(entry);
  }

  /** Saves the record with its event in one store step (and `remember`s a new task's messageId), then publishes. */
  private async saveWithEvent(
    record: HubTaskRecord,
    event: StreamResponse,
    final: boolean,
    remember?: RememberedMessage,
  ): Promise<void> {
    const entry = await this.store.saveTaskAndEvent(record, event, final, remember);
    this.bus.publish(entry);
  }

  private isFinal(record: HubTaskRecord): boolean {
    return !this.active.has(record.id) && endsStream(record.task.status.state);
  }

  private async ownedTask(taskId: string, caller: CallerRef): Promise<HubTaskRecord> {
    const record = await this.store.getTask(taskId);
    // Tasks of other callers are reported as missing, never as forbidden (A2A AUTH-SCOPE).
    if (record === undefined || record.callerKey !== callerKey(caller)) {
      throw new AppError('TASK_NOT_FOUND', `task ${taskId} not found`, { details: { taskId } });
    }
    return record;
  }
}

const STATES: ReadonlySet<string> = new Set(TASK_STATES);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= LIMITS.maxIdChars;
}

function validParts(value: unknown): boolean {
  if (!Array.isArray(value) || value.length === 0 || value.length > LIMITS.maxParts) return false;
  return value.every((part) => {
    if (!isRecord(part)) return false;
    let kinds = 0;
    if (part.text !== undefined) kinds += typeof part.text === 'string' ? 1 : 2;
    if (part.data !== undefined) kinds += 1;
    if (part.url !== undefined) kinds += typeof part.url === 'string' ? 1 : 2;
    if (part.raw !== undefined) kinds += typeof part.raw === 'string' ? 1 : 2;
    return kinds === 1;
  });
}

function validMessage(value: unknown): boolean {
  return (
    isRecord(value) &&
    isId(value.messageId) &&
    (value.role === 'ROLE_USER' || value.role === 'ROLE_AGENT') &&
    validParts(value.parts)
  );
}

function validStatus(value: unknown): boolean {
  return (
    isRecord(value) &&
    typeof value.state === 'string' &&
    STATES.has(value.state) &&
    (value.message === undefined || validMessage(value.message)) &&
    (value.timestamp === undefined || typeof value.timestamp === 'string')
  );
}

function validArtifact(value: unknown): boolean {
  return isRecord(value) && isId(value.artifactId) && validParts(value.parts);
}

/**
 * Checks a stream event from a spoke (a trust boundary) for the members the hub reads and forwards: exactly
 * one of task / statusUpdate / artifactUpdate / message, ids, a known task state, well-formed parts. Hand-
 * written rather than the zod StreamResponseSchema because it runs for every frame of every routed message
 * (bench/hub_routing.ts: the zod union cost more CPU than the rest of the routing path).
 */
export function parseSpokeEvent(item: unknown): StreamResponse | undefined {
  if (!isRecord(item)) return undefined;
  const keys = Object.keys(item);
  const key = keys[0];
  if (keys.length !== 1 || key === undefined) return undefined;
  const value = item[key];
  if (!isRecord(value)) return undefined;
  switch (key) {
    case 'task':
      return isId(value.id) &&
        isId(value.contextId) &&
        validStatus(value.status) &&
        (value.artifacts === undefined ||
          (Array.isArray(value.artifacts) && value.artifacts.every(validArtifact))) &&
        (value.history === undefined || Array.isArray(value.history))
        ? (item as StreamResponse)
        : undefined;
    case 'statusUpdate':
      return isId(value.taskId) && isId(value.contextId) && validStatus(value.status)
        ? (item as StreamResponse)
        : undefined;
    case 'artifactUpdate':
      return isId(value.taskId) && isId(value.contextId) && validArtifact(value.artifact)
        ? (item as StreamResponse)
        : undefined;
    case 'message':
      return validMessage(value) ? (item as StreamResponse) : undefined;
    default:
      return undefined;
  }
}

/** Hub task metadata keys the hub owns; a spoke's metadata never overrides them. */
const HUB_OWNED_METADATA: ReadonlySet<string> = new Set([
  META.deadline,
  META.traceparent,
  'agenthub/target',
  HUB_ERROR_META,
]);

/**
 * The hub task's metadata with what a spoke reports for its task (its skill, result details, error info) taken
 * in, so a caller that only reads the final task (SendMessage, GetTask) sees what a stream follower sees. The
 * hub's own keys win.
 */
function withSpokeMetadata(
  own: Record<string, unknown> | undefined,
  spokeMetadata: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  if (spokeMetadata === undefined) return own;
  const merged: Record<string, unknown> = {};
  for (const key in spokeMetadata) {
    if (!HUB_OWNED_METADATA.has(key)) merged[key] = spokeMetadata[key];
  }
  return Object.assign(merged, own);
}

function outcomeOf(state: TaskState): string {
  return state.replace('TASK_STATE_', '').toLowerCase();
}

function mergeArtifact(artifacts: readonly Artifact[], update: Artifact, append: boolean): Artifact[] {
  const index = artifacts.findIndex((artifact) => artifact.artifactId === update.artifactId);
  const existing = index >= 0 ? artifacts[index] : undefined;
  if (existing === undefined) return [...artifacts, update];
  const merged: Artifact = append
    ? extend(existing, { parts: [...existing.parts, ...update.parts] })
    : update;
  return artifacts.map((artifact, position) => (position === index ? merged : artifact));
}

/** The AppError a task failure stands for. */
export function failureError(failure: TaskFailure): AppError {
  return new AppError(failure.code, failure.message, {
    ...(failure.details === undefined ? {} : { details: failure.details }),
    ...(failure.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: failure.retryAfterSeconds }),
  });
}

/** The hub error carried by a final status event, if any. */
export function entryFailure(entry: TaskEventEntry): AppError | undefined {
  if (!entry.final || !('statusUpdate' in entry.event)) return undefined;
  const failure = entry.event.statusUpdate.metadata?.[HUB_ERROR_META];
  if (typeof failure !== 'object' || failure === null) return undefined;
  const record = failure as Partial<TaskFailure>;
  if (typeof record.code !== 'string' || typeof record.message !== 'string') return undefined;
  if (record.code === 'CANCELED') return undefined;
  return failureError(record as TaskFailure);
}

/** A hub task as `GET /v1/tasks/:id` shows it: the A2A task plus routing facts and child hops. */
export function describeTask(
  record: HubTaskRecord,
  children: readonly HubTaskRecord[],
): Record<string, unknown> {
  return {
    id: record.id,
    contextId: record.contextId,
    caller: record.caller,
    target: record.target,
    skill: record.skill,
    traceparent: record.traceparent,
    parentTaskId: record.parentTaskId,
    createdAt: record.createdAt,
    queuedAt: record.queuedAt,
    finishedAt: record.finishedAt,
    deadline: new Date(record.deadline).toISOString(),
    state: record.task.status.state,
    failure: record.failure,
    hops: [
      ...record.hops.map((hop) => ({ taskId: record.id, ...hop })),
      ...children.flatMap((child) => child.hops.map((hop) => ({ taskId: child.id, ...hop }))),
    ],
    task: record.task satisfies Task,
  };
}
