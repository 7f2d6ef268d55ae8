// One TaskStore contract run against InMemoryTaskStore, SqlTaskStore on embedded PGlite and SqlTaskStore on the
// real PostgreSQL 15 (a scratch database); plus what only the SQL store promises: the epoch and the data
// surviving a restart, a wiped database getting a new epoch, and pruning.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqlTaskStore, openHubStore, type HubStore, type SqlTaskStore } from '../../hub/sql_store.js';
import {
  InMemoryTaskStore,
  type AttestationAuditEntry,
  type Conversation,
  type HubTaskRecord,
  type TaskStore,
} from '../../hub/tasks.js';
import { silentLogger } from '../../shared/log.js';
import { META, type StreamResponse, type TaskState } from '../../shared/protocol.js';
import {
  createScratchDatabase,
  postgresUnreachableReason,
  TEST_POSTGRES_URL,
  type ScratchDatabase,
} from '../helpers/postgres.js';

const TRUNCATE_STORE_TABLES = `
TRUNCATE tasks, task_events, task_event_counters, task_message_ids, conversations, attestation_audit`;
const WIPE_STORE_STATE = `TRUNCATE hub_store_state`;

/** Bounds a test asks of a fresh store. */
interface StoreBounds {
  readonly eventLimit: number;
  readonly taskLimit?: number;
  readonly auditLimit?: number;
}

/** One implementation under the contract: hands out stores on empty storage. */
interface Implementation {
  readonly name: string;
  /** Why the implementation is skipped here, or undefined when it runs. */
  readonly skipReason: string | undefined;
  fresh(bounds: StoreBounds): Promise<TaskStore>;
}

/**
 * A hub database opened once per file (PGlite takes seconds to start). Each `fresh()` empties the store's
 * tables but keeps the epoch, and prunes on every write so retention matches the in-memory store exactly.
 */
class SqlHarness implements Implementation {
  private opening: Promise<HubStore> | undefined;

  constructor(
    readonly name: string,
    readonly skipReason: string | undefined,
    private readonly openHub: () => Promise<HubStore>,
  ) {}

  hub(): Promise<HubStore> {
    this.opening ??= this.openHub();
    return this.opening;
  }

  async fresh(bounds: StoreBounds): Promise<SqlTaskStore> {
    const { db } = await this.hub();
    await db.query(TRUNCATE_STORE_TABLES);
    return createSqlTaskStore(db, { ...bounds, pruneEvery: 1 });
  }

  /** Closes the database and opens it again, as a hub restart does. */
  async restart(): Promise<HubStore> {
    const previous = this.opening;
    this.opening = undefined;
    await (await previous)?.close();
    return this.hub();
  }

  async close(): Promise<void> {
    const opened = this.opening;
    this.opening = undefined;
    await (await opened)?.close();
  }
}

async function postgresSkipReason(): Promise<string | undefined> {
  const unreachable = await postgresUnreachableReason();
  if (unreachable === undefined) return undefined;
  const reason = `PostgreSQL at ${TEST_POSTGRES_URL} is not reachable (${unreachable}); set AGENTHUB_TEST_POSTGRES_URL`;
  console.warn(`skipping the hub store tests on PostgreSQL: ${reason}`);
  return reason;
}

const log = silentLogger();
const pgliteRoot = await mkdtemp(join(tmpdir(), 'agenthub-hub-store-'));
const pgliteDataDir = join(pgliteRoot, 'hub');
const postgresSkip = await postgresSkipReason();
let scratch: ScratchDatabase | undefined;

const pglite = new SqlHarness('SqlTaskStore on PGlite', undefined, () =>
  openHubStore({ dataDir: pgliteDataDir, log, eventLimit: 100 }),
);
const postgres = new SqlHarness('SqlTaskStore on PostgreSQL 15', postgresSkip, async () => {
  scratch ??= await createScratchDatabase('agenthub_hub_store');
  return openHubStore({ databaseUrl: scratch.url, log, eventLimit: 100 });
});
const inMemory: Implementation = {
  name: 'InMemoryTaskStore',
  skipReason: undefined,
  fresh: async (bounds) => new InMemoryTaskStore(bounds),
};
const IMPLEMENTATIONS: readonly Implementation[] = [inMemory, pglite, postgres];

afterAll(async () => {
  await pglite.close();
  await postgres.close();
  await scratch?.drop();
  await rm(pgliteRoot, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------
// Fixtures

interface RecordShape {
  readonly id?: string;
  readonly callerKey?: string;
  readonly contextId?: string;
  readonly state?: TaskState;
  /** The status timestamp (ListTasks orders by it). */
  readonly at?: string;
  readonly traceId?: string;
  readonly target?: string;
  readonly createdAt?: string;
}

function taskRecord(shape: RecordShape = {}): HubTaskRecord {
  const id = shape.id ?? randomUUID();
  const contextId = shape.contextId ?? randomUUID();
  const createdAt = shape.createdAt ?? '2025-03-01T10:00:00.000Z';
  const traceId = shape.traceId ?? randomUUID().replaceAll('-', '');
  const state = shape.state ?? 'TASK_STATE_WORKING';
  return {
    id,
    contextId,
    caller: { kind: 'client', principal: 'api' },
    callerKey: shape.callerKey ?? 'client:api',
    messageId: randomUUID(),
    target: shape.target ?? 'marketing',
    skill: 'roi',
    traceId,
    traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
    parentTaskId: null,
    childTaskIds: [],
    createdAt,
    queuedAt: null,
    finishedAt: null,
    deadline: Date.parse(createdAt) + 60_000,
    hops: [],
    task: {
      id,
      contextId,
      status: { state, timestamp: shape.at ?? createdAt },
      history: [
        { messageId: randomUUID(), role: 'ROLE_USER', contextId, parts: [{ text: 'ROI of campaign 7?' }] },
      ],
    },
    failure: null,
  };
}

function statusEvent(record: HubTaskRecord, text: string): StreamResponse {
  return {
    statusUpdate: {
      taskId: record.id,
      contextId: record.contextId,
      status: {
        state: 'TASK_STATE_WORKING',
        message: { messageId: randomUUID(), role: 'ROLE_AGENT', parts: [{ text }] },
      },
    },
  };
}

/** Makes task `taskId` of `callerKey` as the router does, remembering the messageId it was made for. */
async function remember(
  store: TaskStore,
  callerKey: string,
  messageId: string,
  taskId: string,
  expiresAt: number,
): Promise<void> {
  const record = taskRecord({ id: taskId, callerKey });
  await store.saveTaskAndEvent(record, { task: record.task }, false, { messageId, expiresAt });
}

function auditEntry(sid: string, result: AttestationAuditEntry['result'], at: string): AttestationAuditEntry {
  return {
    at,
    spoke: 'marketing',
    replica: 'marketing/0',
    sid,
    result,
    reasons: result === 'affirming' ? [] : ['evidence.unavailable'],
    policyId: 'policy-1',
    jti: result === 'pending' ? null : `jti-${sid}`,
    kid: result === 'pending' ? null : 'kid-1',
  };
}

function eventText(event: StreamResponse): string | undefined {
  return 'statusUpdate' in event ? event.statusUpdate.status.message?.parts[0]?.text : undefined;
}

function metadataOf(event: StreamResponse): Readonly<Record<string, unknown>> | undefined {
  if ('statusUpdate' in event) return event.statusUpdate.metadata;
  if ('task' in event) return event.task.metadata;
  if ('message' in event) return event.message.metadata;
  return event.artifactUpdate.metadata;
}

// ---------------------------------------------------------------------------------------------------------
// The contract

for (const implementation of IMPLEMENTATIONS) {
  describe.skipIf(implementation.skipReason !== undefined)(
    `TaskStore contract: ${implementation.name}`,
    () => {
      it('returns a saved record with its hops as saved, and the latest save after an update', async () => {
        const store = await implementation.fresh({ eventLimit: 10 });
        const record = taskRecord();
        record.hops = [
          {
            from: 'client',
            to: 'marketing',
            replica: 'marketing/0',
            attestation: {
              status: 'affirming',
              attestedAt: '2025-03-01T09:59:00.000Z',
              policyId: 'policy-1',
            },
            attempt: 1,
            dispatchedAt: '2025-03-01T10:00:00.100Z',
            spokeTaskId: 'spoke-task-1',
            firstEventAt: '2025-03-01T10:00:00.200Z',
            finishedAt: '2025-03-01T10:00:01.000Z',
            outcome: 'SPOKE_UNAVAILABLE',
          },
          {
            from: 'client',
            to: 'marketing',
            replica: 'marketing/1',
            attestation: { status: 'affirming', attestedAt: null, policyId: 'policy-1' },
            attempt: 2,
            dispatchedAt: '2025-03-01T10:00:01.100Z',
            spokeTaskId: null,
            firstEventAt: null,
            finishedAt: null,
            outcome: null,
          },
        ];
        record.childTaskIds.push('child-1');
        record.failure = { code: 'DEADLINE_EXCEEDED', message: 'too slow', details: { ms: 60_000 } };
        await store.saveTask(record);
        expect(await store.getTask(record.id)).toEqual(record);
        expect(await store.getTask(randomUUID())).toBeUndefined();

        const updated: HubTaskRecord = structuredClone(record);
        updated.task.status = { state: 'TASK_STATE_COMPLETED', timestamp: '2025-03-01T10:00:02.000Z' };
        updated.finishedAt = '2025-03-01T10:00:02.000Z';
        await store.saveTask(updated);
        expect(await store.getTask(record.id)).toEqual(updated);
      });

      it('keeps texts with U+0000 in records, events and conversations', async () => {
        const store = await implementation.fresh({ eventLimit: 10 });
        const record = taskRecord();
        record.task.history = [
          { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'nul \u0000 inside' }] },
        ];
        await store.saveTask(record);
        expect(await store.getTask(record.id)).toEqual(record);
        const entry = await store.appendEvent(record.id, statusEvent(record, 'model said \u0000'), true);
        expect((await store.eventsAfter(record.id, 0)).entries).toEqual([entry]);
        const conversation: Conversation = {
          contextId: record.contextId,
          principal: 'api',
          spoke: 'marketing',
          turns: [
            { role: 'user', text: '\u0000', spoke: 'marketing', taskId: record.id, at: record.createdAt },
          ],
        };
        await store.saveConversation(conversation);
        expect(await store.getConversation(record.contextId)).toEqual(conversation);
      });

      it('assigns seq 1…50 without holes or repeats to 50 concurrent appends on one task', async () => {
        const store = await implementation.fresh({ eventLimit: 100 });
        const record = taskRecord();
        await store.saveTask(record);
        const appended = await Promise.all(
          Array.from({ length: 50 }, (_, index) =>
            store.appendEvent(record.id, statusEvent(record, `e${index}`), false),
          ),
        );
        const expected = Array.from({ length: 50 }, (_, index) => index + 1);
        expect(appended.map((entry) => entry.seq).sort((a, b) => a - b)).toEqual(expected);
        for (const entry of appended) {
          expect(entry.epoch).toBe(store.epoch);
          expect(metadataOf(entry.event)).toMatchObject({ [META.seq]: entry.seq, [META.epoch]: store.epoch });
        }
        const replay = await store.eventsAfter(record.id, 0);
        expect(replay.gap).toBe(false);
        expect(replay.entries.map((entry) => entry.seq)).toEqual(expected);
        const bySeq = new Map(appended.map((entry) => [entry.seq, entry]));
        for (const entry of replay.entries) expect(entry).toEqual(bySeq.get(entry.seq));
      });

      it('replays exactly the events after afterSeq, with the final flag', async () => {
        const store = await implementation.fresh({ eventLimit: 10 });
        const record = taskRecord();
        await store.saveTask(record);
        const appended = [];
        for (const text of ['one', 'two', 'three', 'four']) {
          appended.push(await store.appendEvent(record.id, statusEvent(record, text), false));
        }
        appended.push(await store.appendEvent(record.id, { task: record.task }, true));
        expect(appended.map((entry) => entry.seq)).toEqual([1, 2, 3, 4, 5]);

        const later = await store.eventsAfter(record.id, 2);
        expect(later).toEqual({ entries: appended.slice(2), gap: false });
        expect(later.entries.map((entry) => eventText(entry.event))).toEqual(['three', 'four', undefined]);
        expect(later.entries.map((entry) => entry.final)).toEqual([false, false, true]);
        expect(await store.eventsAfter(record.id, 5)).toEqual({ entries: [], gap: false });
        expect(await store.eventsAfter(randomUUID(), 0)).toEqual({ entries: [], gap: false });
      });

      it('knows the seq of the newest event, also once older events are trimmed', async () => {
        const store = await implementation.fresh({ eventLimit: 2 });
        const record = taskRecord();
        await store.saveTask(record);
        expect(await store.lastEventSeq(record.id)).toBe(0);
        for (const text of ['one', 'two', 'three']) {
          await store.appendEvent(record.id, statusEvent(record, text), false);
        }
        expect(await store.lastEventSeq(record.id)).toBe(3);
        await store.saveTaskAndEvent(record, { task: record.task }, true);
        expect(await store.lastEventSeq(record.id)).toBe(4);
        expect((await store.eventsAfter(record.id, 0)).entries.map((entry) => entry.seq)).toEqual([3, 4]);
        expect(await store.lastEventSeq(randomUUID())).toBe(0);
      });

      it('keeps the newest eventLimit events and reports a gap to a reader from before them', async () => {
        const store = await implementation.fresh({ eventLimit: 3 });
        const record = taskRecord();
        await store.saveTask(record);
        for (let index = 1; index <= 5; index += 1) {
          await store.appendEvent(record.id, statusEvent(record, `e${index}`), false);
        }
        const fromStart = await store.eventsAfter(record.id, 0);
        expect(fromStart.gap).toBe(true);
        expect(fromStart.entries.map((entry) => entry.seq)).toEqual([3, 4, 5]);
        expect((await store.eventsAfter(record.id, 1)).gap).toBe(true);
        const caughtUp = await store.eventsAfter(record.id, 2);
        expect(caughtUp.gap).toBe(false);
        expect(caughtUp.entries.map((entry) => eventText(entry.event))).toEqual(['e3', 'e4', 'e5']);
        const sixth = await store.appendEvent(record.id, statusEvent(record, 'e6'), false);
        expect(sixth.seq).toBe(6);
        expect((await store.eventsAfter(record.id, 0)).entries.map((entry) => entry.seq)).toEqual([4, 5, 6]);
      });

      it('saves a record with its event in one step: seq continues the log, the messageId is remembered', async () => {
        const store = await implementation.fresh({ eventLimit: 3 });
        const record = taskRecord({ state: 'TASK_STATE_SUBMITTED' });
        const expiresAt = Date.now() + 600_000;
        const first = await store.saveTaskAndEvent(record, { task: record.task }, false, {
          messageId: record.messageId,
          expiresAt,
        });
        expect(first).toMatchObject({ taskId: record.id, seq: 1, epoch: store.epoch, final: false });
        expect(metadataOf(first.event)).toMatchObject({ [META.seq]: 1, [META.epoch]: store.epoch });
        expect(await store.getTask(record.id)).toEqual(record);
        expect(await store.findByMessageId(record.callerKey, record.messageId, expiresAt - 1)).toBe(
          record.id,
        );
        for (const text of ['two', 'three'])
          await store.appendEvent(record.id, statusEvent(record, text), false);

        const finished: HubTaskRecord = {
          ...record,
          finishedAt: '2025-03-01T10:00:05.000Z',
          task: {
            ...record.task,
            status: { state: 'TASK_STATE_COMPLETED', timestamp: '2025-03-01T10:00:05.000Z' },
          },
        };
        const last = await store.saveTaskAndEvent(finished, { task: finished.task }, true);
        expect(last).toMatchObject({ seq: 4, final: true });
        expect(await store.getTask(record.id)).toEqual(finished);
        // Without `remember` the dedupe entry stays as it was; the log keeps its newest three events.
        expect(await store.findByMessageId(record.callerKey, record.messageId, expiresAt - 1)).toBe(
          record.id,
        );
        const replay = await store.eventsAfter(record.id, 0);
        expect(replay.gap).toBe(true);
        expect(replay.entries.map((entry) => [entry.seq, entry.final])).toEqual([
          [2, false],
          [3, false],
          [4, true],
        ]);
        expect(replay.entries[2]).toEqual(last);
        // Any store's entry serializes as taskId, seq, epoch, the stamped event and final.
        const serialized = JSON.parse(JSON.stringify(last)) as Record<string, unknown>;
        expect(Object.keys(serialized).sort()).toEqual(['epoch', 'event', 'final', 'seq', 'taskId']);
        expect(serialized.event).toEqual(JSON.parse(JSON.stringify(last.event)));
        expect(metadataOf(serialized.event as StreamResponse)).toMatchObject({ [META.seq]: 4 });
        expect(await store.findByMessageId(record.callerKey, record.messageId, expiresAt)).toBeUndefined();
      });

      it('orders concurrent saves with events and appends on one task without holes', async () => {
        const store = await implementation.fresh({ eventLimit: 100 });
        const record = taskRecord();
        const entries = await Promise.all(
          Array.from({ length: 20 }, (_, index) =>
            index % 2 === 0
              ? store.saveTaskAndEvent(record, statusEvent(record, `s${index}`), false)
              : store.appendEvent(record.id, statusEvent(record, `a${index}`), false),
          ),
        );
        const seqs = entries.map((entry) => entry.seq).sort((a, b) => a - b);
        expect(seqs).toEqual(Array.from({ length: 20 }, (_, index) => index + 1));
        const replay = await store.eventsAfter(record.id, 0);
        expect(replay.entries.map((entry) => eventText(entry.event)).sort()).toEqual(
          entries.map((entry) => eventText(entry.event)).sort(),
        );
      });

      it('answers many lookups and saves of different tasks made at once, each its own', async () => {
        const store = await implementation.fresh({ eventLimit: 10 });
        const expiresAt = Date.now() + 600_000;
        const records = Array.from({ length: 12 }, (_, index) =>
          taskRecord({ callerKey: index % 2 === 0 ? 'client:api' : 'spoke:finance' }),
        );
        const saved = await Promise.all(
          records.map((record, index) =>
            store.saveTaskAndEvent(record, { task: record.task }, false, {
              messageId: record.messageId,
              expiresAt: index === 0 ? Date.now() - 1 : expiresAt,
            }),
          ),
        );
        expect(saved.map((entry) => [entry.taskId, entry.seq])).toEqual(
          records.map((record) => [record.id, 1]),
        );
        const found = await Promise.all([
          ...records.map((record) =>
            store.findByMessageId(record.callerKey, record.messageId, expiresAt - 1),
          ),
          store.findByMessageId('client:api', records[1]?.messageId ?? '', expiresAt - 1), // another caller's id
          store.findByMessageId('client:api', randomUUID(), expiresAt - 1),
        ]);
        expect(found).toEqual([
          undefined,
          ...records.slice(1).map((record) => record.id),
          undefined,
          undefined,
        ]);
        for (const record of records) expect(await store.getTask(record.id)).toEqual(record);
      });

      it('finds the task of a remembered (caller, messageId) until it expires', async () => {
        const store = await implementation.fresh({ eventLimit: 10 });
        // Real clock times: the SQL store also drops entries that expired by its own clock when it prunes.
        const expiresAt = Date.now() + 600_000;
        await remember(store, 'client:api', 'm-1', 'task-1', expiresAt);
        await remember(store, 'spoke:finance', 'm-1', 'task-2', expiresAt);
        expect(await store.findByMessageId('client:api', 'm-1', expiresAt - 1)).toBe('task-1');
        expect(await store.findByMessageId('spoke:finance', 'm-1', expiresAt - 1)).toBe('task-2');
        expect(await store.findByMessageId('client:api', 'm-2', expiresAt - 1)).toBeUndefined();
        expect(await store.findByMessageId('client:api', 'm-1', expiresAt)).toBeUndefined();
        await remember(store, 'client:api', 'm-1', 'task-3', expiresAt + 600_000);
        expect(await store.findByMessageId('client:api', 'm-1', expiresAt)).toBe('task-3');
      });

      it("pages one caller's tasks newest status first, filtered by context and state", async () => {
        const store = await implementation.fresh({ eventLimit: 10 });
        const contextId = randomUUID();
        const mine = [
          taskRecord({ id: 'task-a', contextId, at: '2025-03-01T10:00:01.000Z' }),
          taskRecord({
            id: 'task-b',
            contextId,
            at: '2025-03-01T10:00:05.000Z',
            state: 'TASK_STATE_COMPLETED',
          }),
          taskRecord({ id: 'task-c', at: '2025-03-01T10:00:03.000Z' }),
          taskRecord({
            id: 'task-d',
            contextId,
            at: '2025-03-01T10:00:03.000Z',
            state: 'TASK_STATE_COMPLETED',
          }),
          taskRecord({ id: 'task-e', at: '2025-03-01T10:00:04.000Z' }),
        ];
        for (const record of mine) await store.saveTask(record);
        await store.saveTask(taskRecord({ id: 'task-other', callerKey: 'spoke:finance', contextId }));

        const ids: string[][] = [];
        let pageToken: string | undefined;
        do {
          const page = await store.listTasks({ callerKey: 'client:api', pageSize: 2, pageToken });
          expect(page.totalSize).toBe(5);
          ids.push(page.tasks.map((record) => record.id));
          pageToken = page.nextPageToken;
        } while (pageToken !== '' && ids.length < 10);
        // Equal status times (c and d) fall back to id, descending.
        expect(ids).toEqual([['task-b', 'task-e'], ['task-d', 'task-c'], ['task-a']]);

        const inContext = await store.listTasks({ callerKey: 'client:api', contextId, pageSize: 10 });
        expect(inContext.tasks.map((record) => record.id)).toEqual(['task-b', 'task-d', 'task-a']);
        expect(inContext).toMatchObject({ totalSize: 3, nextPageToken: '' });
        const completed = await store.listTasks({
          callerKey: 'client:api',
          contextId,
          state: 'TASK_STATE_COMPLETED',
          pageSize: 1,
        });
        expect(completed.tasks).toEqual([mine[1]]);
        expect(completed.totalSize).toBe(2);
        const rest = await store.listTasks({
          callerKey: 'client:api',
          contextId,
          state: 'TASK_STATE_COMPLETED',
          pageSize: 1,
          pageToken: completed.nextPageToken,
        });
        expect(rest.tasks).toEqual([mine[3]]);
        expect(rest.nextPageToken).toBe('');
        expect((await store.listTasks({ callerKey: 'client:nobody', pageSize: 5 })).tasks).toEqual([]);
      });

      it('evicts the oldest finished task with its events once taskLimit is reached, never an open one', async () => {
        const store = await implementation.fresh({ eventLimit: 10, taskLimit: 3 });
        const oldestDone = taskRecord({
          createdAt: '2025-03-01T10:00:00.000Z',
          state: 'TASK_STATE_COMPLETED',
        });
        const open = taskRecord({ createdAt: '2025-03-01T10:00:01.000Z' });
        const newerDone = taskRecord({ createdAt: '2025-03-01T10:00:02.000Z', state: 'TASK_STATE_FAILED' });
        for (const record of [oldestDone, open, newerDone]) {
          await store.saveTask(record);
          await store.appendEvent(record.id, { task: record.task }, false);
        }
        const fourth = taskRecord({ createdAt: '2025-03-01T10:00:03.000Z' });
        await store.saveTask(fourth);
        expect(await store.getTask(oldestDone.id)).toBeUndefined();
        expect(await store.eventsAfter(oldestDone.id, 0)).toEqual({ entries: [], gap: false });
        for (const kept of [open, newerDone, fourth]) expect(await store.getTask(kept.id)).toEqual(kept);
        expect((await store.eventsAfter(newerDone.id, 0)).entries).toHaveLength(1);
      });

      it('keeps evicting the oldest finished tasks over many more tasks than the limit, never an open one', async () => {
        const store = await implementation.fresh({ eventLimit: 10, taskLimit: 100 });
        const longRunning = taskRecord({ createdAt: '2025-03-01T09:00:00.000Z' });
        await store.saveTask(longRunning);
        const done = [];
        for (let index = 0; index < 300; index += 1) {
          const record = taskRecord({
            createdAt: new Date(Date.UTC(2025, 2, 1, 10, 0, index)).toISOString(),
            state: 'TASK_STATE_COMPLETED',
          });
          await store.saveTask(record);
          done.push(record);
        }
        expect(await store.getTask(longRunning.id)).toEqual(longRunning);
        expect(await store.getTask(done[0]!.id)).toBeUndefined();
        for (const kept of done.slice(-99)) expect(await store.getTask(kept.id)).toEqual(kept);
      });

      it('keeps conversations by contextId and returns the latest save', async () => {
        const store = await implementation.fresh({ eventLimit: 10 });
        const contextId = randomUUID();
        expect(await store.getConversation(contextId)).toBeUndefined();
        const conversation: Conversation = {
          contextId,
          principal: 'api',
          spoke: null,
          turns: [
            { role: 'user', text: 'which spoke?', spoke: null, taskId: null, at: '2025-03-01T10:00:00.000Z' },
            {
              role: 'agent',
              text: 'marketing or finance?',
              spoke: null,
              taskId: null,
              at: '2025-03-01T10:00:00.000Z',
            },
          ],
        };
        await store.saveConversation(conversation);
        expect(await store.getConversation(contextId)).toEqual(conversation);
        conversation.spoke = 'marketing';
        conversation.turns.push({
          role: 'user',
          text: 'marketing: ROI of campaign 7',
          spoke: 'marketing',
          taskId: 'task-7',
          at: '2025-03-01T10:00:10.000Z',
        });
        await store.saveConversation(conversation);
        expect(await store.getConversation(contextId)).toEqual(conversation);
      });

      it('lists the newest audit entries in the order they were appended, within auditLimit', async () => {
        const store = await implementation.fresh({ eventLimit: 10, auditLimit: 3 });
        const entries = [
          auditEntry('s1', 'pending', '2025-03-01T10:00:00.000Z'),
          auditEntry('s2', 'affirming', '2025-03-01T10:00:01.000Z'),
          auditEntry('s3', 'contraindicated', '2025-03-01T10:00:02.000Z'),
          auditEntry('s4', 'affirming', '2025-03-01T10:00:03.000Z'),
        ];
        for (const entry of entries) await store.appendAudit(entry);
        expect(await store.listAudit(2)).toEqual(entries.slice(2));
        expect(await store.listAudit(10)).toEqual(entries.slice(1));
      });
    },
  );
}

// ---------------------------------------------------------------------------------------------------------
// Only the SQL store

for (const harness of [pglite, postgres]) {
  describe.skipIf(harness.skipReason !== undefined)(`SqlTaskStore: ${harness.name}`, () => {
    it('shares one epoch between stores on one database and creates a new one after a wipe', async () => {
      const first = await harness.fresh({ eventLimit: 10 });
      const second = await harness.fresh({ eventLimit: 10 });
      expect(second.epoch).toBe(first.epoch);
      const { db } = await harness.hub();
      await db.query(WIPE_STORE_STATE);
      const afterWipe = await harness.fresh({ eventLimit: 10 });
      expect(afterWipe.epoch).not.toBe(first.epoch);
      expect(afterWipe.epoch).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('answers writes whose batch committed although the prune after it fails, and prunes after the next write', async () => {
      const { db } = await harness.hub();
      await db.query(TRUNCATE_STORE_TABLES);
      let failPrunes = 1;
      const pruneFailure = new Error('canceling statement due to lock timeout');
      // The same database, except that the first prune statement fails as a lock timeout would.
      const flaky = new Proxy(db, {
        get(target, property, receiver) {
          if (property !== 'query') return Reflect.get(target, property, receiver) as unknown;
          return async (text: string, values?: unknown[]) => {
            if (text.includes('WITH doomed AS') && failPrunes > 0) {
              failPrunes -= 1;
              throw pruneFailure;
            }
            return target.query(text, values);
          };
        },
      });
      const warnings: unknown[] = [];
      const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
      const store = await createSqlTaskStore(flaky, { eventLimit: 10, taskLimit: 1, pruneEvery: 1, log });
      const first = taskRecord({ state: 'TASK_STATE_COMPLETED', createdAt: '2025-03-01T10:00:00.000Z' });
      await expect(store.saveTaskAndEvent(first, statusEvent(first, 'one'), true)).resolves.toMatchObject({
        seq: 1,
      });
      expect(await store.getTask(first.id)).toMatchObject({ id: first.id });
      expect(warnings).toEqual([
        expect.objectContaining({
          msg: 'task store prune failed; retrying after the next write',
          err: expect.objectContaining({ message: pruneFailure.message }),
        }),
      ]);
      const second = taskRecord({ state: 'TASK_STATE_COMPLETED', createdAt: '2025-03-01T10:00:01.000Z' });
      await store.saveTaskAndEvent(second, statusEvent(second, 'two'), true);
      // The retried prune kept one task (taskLimit 1): the older one went.
      expect(await store.getTask(first.id)).toBeUndefined();
      expect(await store.getTask(second.id)).toMatchObject({ id: second.id });
    });

    it('prunes expired messageIds and the oldest audit entries every pruneEvery writes', async () => {
      const { db } = await harness.hub();
      await db.query(TRUNCATE_STORE_TABLES);
      let now = 1_000;
      const store = await createSqlTaskStore(db, {
        eventLimit: 10,
        auditLimit: 2,
        pruneEvery: 3,
        now: () => now,
      });
      await remember(store, 'client:api', 'm-1', 'task-1', 1_500); // a new task and its messageId: two writes
      now = 2_000;
      await remember(store, 'client:api', 'm-2', 'task-2', 5_000); // four writes: prunes the expired m-1
      const remaining = await db.query<{ message_id: string }>(`SELECT message_id FROM task_message_ids`);
      expect(remaining.rows).toEqual([{ message_id: 'm-2' }]);
      for (const sid of ['s1', 's2']) {
        await store.appendAudit(auditEntry(sid, 'affirming', '2025-03-01T10:00:01.000Z'));
      }
      // Two writes since the last prune: the audit is at its limit; the third write prunes it back to it.
      expect((await store.listAudit(10)).map((entry) => entry.sid)).toEqual(['s1', 's2']);
      await store.appendAudit(auditEntry('s3', 'affirming', '2025-03-01T10:00:02.000Z'));
      expect((await store.listAudit(10)).map((entry) => entry.sid)).toEqual(['s2', 's3']);
      expect(await store.prune()).toEqual({ tasks: 0, messageIds: 0, auditEntries: 0 });
    });
  });
}

describe('SqlTaskStore across a hub restart (PGlite data directory)', () => {
  it('keeps the task, its events with their seqs, conversations, the audit and the epoch', async () => {
    const store = await pglite.fresh({ eventLimit: 10 });
    const record = taskRecord({ state: 'TASK_STATE_COMPLETED' });
    const remembered = { messageId: record.messageId, expiresAt: Date.now() + 60_000 };
    const appended = [
      await store.saveTaskAndEvent(record, { task: record.task }, false, remembered),
      await store.appendEvent(record.id, statusEvent(record, 'working'), false),
      await store.appendEvent(record.id, { task: record.task }, true),
    ];
    const conversation: Conversation = {
      contextId: record.contextId,
      principal: 'api',
      spoke: 'marketing',
      turns: [],
    };
    await store.saveConversation(conversation);
    const audit = auditEntry('s1', 'affirming', '2025-03-01T10:00:00.000Z');
    await store.appendAudit(audit);

    const reopened = await pglite.restart();
    expect(reopened.db.kind).toBe('pglite');
    const restarted = reopened.store;
    expect(restarted.epoch).toBe(store.epoch);
    expect(await restarted.getTask(record.id)).toEqual(record);
    expect(await restarted.eventsAfter(record.id, 0)).toEqual({ entries: appended, gap: false });
    expect(await restarted.eventsAfter(record.id, 1)).toEqual({ entries: appended.slice(1), gap: false });
    expect(await restarted.getConversation(record.contextId)).toEqual(conversation);
    expect(await restarted.listAudit(1)).toEqual([audit]);
    expect(await restarted.findByMessageId('client:api', record.messageId, Date.now())).toBe(record.id);
    const next = await restarted.appendEvent(record.id, statusEvent(record, 'after restart'), false);
    expect(next.seq).toBe(4);
  });
});
