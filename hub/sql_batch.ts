// Coalescing of the SQL task store's per-message traffic: the writes (event appends, task record saves,
// remembered messageIds) made in one event-loop turn go to the database as one statement, and so do the
// messageId lookups, so a hub routing many messages pays a round trip per turn instead of one per write or
// lookup.
import type { Database } from '../shared/db.js';
import { AppError } from '../shared/errors.js';
import { isTerminalState, type StreamResponse } from '../shared/protocol.js';
import type { HubTaskRecord, RememberedMessage } from './tasks.js';

/**
 * One statement for a batch. Events ($1 task ids, $2 the events as one JSON array, $3 final flags, numbered by
 * their position) get consecutive seqs per task in order; `counter` row-locks each task's counter until the
 * statement commits, so concurrent batches never hand out one seq twice. Each task keeps its newest $4 events
 * (the rows this statement inserts are trimmed by the task's next append). Records ($5…$16 columns and $17 the
 * records as one JSON array, one per task id) are upserted and messageIds ($18…$21) remembered in the same
 * statement. The JSON goes as one array each, not as text[] elements: node-postgres escapes every quote of every
 * array element, which cost more hub CPU than any other step of a routed message. One row comes back per event,
 * or one row with no event when the batch has none; each carries the counts of new tasks and remembered
 * messageIds.
 */
const WRITE_BATCH = `
WITH items AS (
  SELECT item.task_id, event.value AS event, item.final, item.ord
  FROM unnest($1::text[], $3::boolean[]) WITH ORDINALITY AS item(task_id, final, ord)
  JOIN json_array_elements($2::json) WITH ORDINALITY AS event(value, ord) ON event.ord = item.ord
), per_task AS (
  SELECT task_id, count(*) AS n FROM items GROUP BY task_id
), counter AS (
  INSERT INTO task_event_counters (task_id, last_seq) SELECT task_id, n FROM per_task
  ON CONFLICT (task_id) DO UPDATE SET last_seq = task_event_counters.last_seq + EXCLUDED.last_seq
  RETURNING task_id, last_seq
), numbered AS (
  SELECT items.task_id, items.event, items.final, items.ord,
         counter.last_seq - per_task.n + row_number() OVER (PARTITION BY items.task_id ORDER BY items.ord) AS seq
  FROM items JOIN per_task USING (task_id) JOIN counter USING (task_id)
), appended AS (
  INSERT INTO task_events (task_id, seq, event, final) SELECT task_id, seq, event, final FROM numbered
), trimmed AS (
  DELETE FROM task_events USING counter
  WHERE task_events.task_id = counter.task_id AND task_events.seq <= counter.last_seq - $4
), saved AS (
  INSERT INTO tasks (id, context_id, tenant, skill_id, parent_task_id, caller_key, trace_id, state, terminal,
                     status_time, deadline_at, created_at, updated_at, record)
  SELECT id, context_id, tenant, skill_id, parent_task_id, caller_key, trace_id, state, terminal, status_time,
         to_timestamp(deadline_ms / 1000), created_at::timestamptz, clock_timestamp(), kept.value
  FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
              $12::text[], $13::boolean[], $14::text[], $15::float8[], $16::text[])
       WITH ORDINALITY AS task(id, context_id, tenant, skill_id, parent_task_id, caller_key, trace_id, state,
                               terminal, status_time, deadline_ms, created_at, ord)
  JOIN json_array_elements($17::json) WITH ORDINALITY AS kept(value, ord) ON kept.ord = task.ord
  ON CONFLICT (id) DO UPDATE SET
    context_id = EXCLUDED.context_id, tenant = EXCLUDED.tenant, skill_id = EXCLUDED.skill_id,
    parent_task_id = EXCLUDED.parent_task_id, caller_key = EXCLUDED.caller_key, trace_id = EXCLUDED.trace_id,
    state = EXCLUDED.state, terminal = EXCLUDED.terminal, status_time = EXCLUDED.status_time,
    deadline_at = EXCLUDED.deadline_at, updated_at = clock_timestamp(), record = EXCLUDED.record
  RETURNING (xmax = 0) AS inserted
), remembered AS (
  INSERT INTO task_message_ids (caller_key, message_id, task_id, expires_at)
  SELECT * FROM unnest($18::text[], $19::text[], $20::text[], $21::bigint[])
  ON CONFLICT (caller_key, message_id) DO UPDATE SET task_id = EXCLUDED.task_id, expires_at = EXCLUDED.expires_at
  RETURNING 1
), counts AS (
  SELECT (SELECT count(*) FROM saved WHERE inserted)::int AS inserted,
         (SELECT count(*) FROM remembered)::int AS remembered
)
SELECT numbered.ord, numbered.seq, counts.inserted, counts.remembered
FROM counts LEFT JOIN numbered ON true`;

/** The tasks remembered for ($1 caller key, $2 messageId) pairs and not expired at $3 (ms), by position. */
const LOOKUP_BATCH = `
SELECT wanted.ord, remembered.task_id
FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS wanted(caller_key, message_id, now, ord)
JOIN task_message_ids AS remembered
  ON remembered.caller_key = wanted.caller_key AND remembered.message_id = wanted.message_id
 AND remembered.expires_at > wanted.now`;

/** A task record's row as it was when its save was queued (the record object may change before the flush). */
interface TaskRow {
  readonly id: string;
  readonly contextId: string;
  readonly target: string;
  readonly skill: string | null;
  readonly parentTaskId: string | null;
  readonly callerKey: string;
  readonly traceId: string;
  readonly state: string;
  readonly terminal: boolean;
  readonly statusTime: string;
  readonly deadline: number;
  readonly createdAt: string;
  readonly json: string;
}

/** A messageId to remember for dedupe: which task the caller's message made, until when. */
interface MessageRow {
  readonly callerKey: string;
  readonly messageId: string;
  readonly taskId: string;
  readonly expiresAt: number;
}

/** One queued write: any of an event of a task, a task record and a remembered messageId. */
interface QueuedWrite {
  readonly event: { readonly taskId: string; readonly json: string; readonly final: boolean } | undefined;
  readonly row: TaskRow | undefined;
  readonly message: MessageRow | undefined;
}

/** What one flushed batch wrote besides events (for the store's prune count). */
export interface BatchWriteCounts {
  readonly insertedTasks: number;
  readonly rememberedMessages: number;
}

/**
 * Collects what is queued during one event-loop turn and hands it to `run` together at the end of the turn
 * (setImmediate). `run` answers each item by position, with its result or an error of its own; when `run`
 * throws, every item of the batch gets that error.
 */
class TurnQueue<Item, Result> {
  private queue: { readonly item: Item; resolve(result: Result): void; reject(error: unknown): void }[] = [];
  private scheduled = false;

  constructor(private readonly run: (items: readonly Item[]) => Promise<readonly (Result | Error)[]>) {}

  add(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    this.scheduled = false;
    try {
      const results = await this.run(batch.map((queued) => queued.item));
      batch.forEach((queued, index) => {
        const result = results[index];
        if (result instanceof Error) queued.reject(result);
        else queued.resolve(result as Result);
      });
    } catch (error) {
      for (const queued of batch) queued.reject(error);
    }
  }
}

/**
 * Queues writes and makes all those queued in one event-loop turn with one statement at the end of the turn.
 * Each caller's promise settles once that statement has committed (an append's with its event's seq), or with
 * the statement's error; a batch fails or succeeds as a whole.
 */
export class SqlWriteBatcher {
  /** Resolves with the event's seq, or undefined for a write without an event. */
  private readonly writes: TurnQueue<QueuedWrite, number | undefined>;

  constructor(
    db: Database,
    eventLimit: number,
    /** Called after each committed batch, before its callers are answered; what it throws fails them all. */
    afterBatch: (counts: BatchWriteCounts) => Promise<void>,
  ) {
    this.writes = new TurnQueue<QueuedWrite, number | undefined>(async (batch) => {
      const events = batch.flatMap((write, index) => (write.event === undefined ? [] : [index]));
      const result = await db.query<{
        ord: string | number | null;
        seq: string | number | null;
        inserted: number;
        remembered: number;
      }>(WRITE_BATCH, batchParameters(batch, eventLimit));
      // `ord` numbers the batch's events from 1; seqs are handed back by the write each event came with.
      const seqs = new Map<number, number>();
      for (const row of result.rows) {
        const writeIndex = row.ord === null ? undefined : events[Number(row.ord) - 1];
        if (writeIndex !== undefined) seqs.set(writeIndex, Number(row.seq));
      }
      const first = result.rows[0];
      await afterBatch({
        insertedTasks: first?.inserted ?? 0,
        rememberedMessages: first?.remembered ?? 0,
      });
      return batch.map((_, index) => seqs.get(index));
    });
  }

  /**
   * Appends `event` to the task's log; with `record`, saves it in the same statement, and with `remember` also
   * remembers the messageId that made the task. Resolves with the event's seq.
   */
  async append(
    taskId: string,
    event: StreamResponse,
    final: boolean,
    record?: HubTaskRecord,
    remember?: RememberedMessage,
  ): Promise<number> {
    const seq = await this.writes.add({
      event: { taskId, json: JSON.stringify(event), final },
      row: record === undefined ? undefined : taskRow(record),
      message:
        record === undefined || remember === undefined
          ? undefined
          : {
              callerKey: record.callerKey,
              messageId: remember.messageId,
              taskId: record.id,
              expiresAt: remember.expiresAt,
            },
    });
    if (seq === undefined) throw new AppError('INTERNAL', `no event seq was assigned for task ${taskId}`);
    return seq;
  }

  /** Saves a task record. */
  async save(record: HubTaskRecord): Promise<void> {
    await this.writes.add({ event: undefined, row: taskRow(record), message: undefined });
  }
}

function taskRow(record: HubTaskRecord): TaskRow {
  return {
    id: record.id,
    contextId: record.contextId,
    target: record.target,
    skill: record.skill,
    parentTaskId: record.parentTaskId,
    callerKey: record.callerKey,
    traceId: record.traceId,
    state: record.task.status.state,
    terminal: isTerminalState(record.task.status.state),
    statusTime: record.task.status.timestamp ?? record.createdAt,
    deadline: record.deadline,
    createdAt: record.createdAt,
    json: JSON.stringify(record),
  };
}

/**
 * The statement's parameters: one array per column; one row per task id and one per caller's messageId (the
 * last queued wins).
 */
function batchParameters(batch: readonly QueuedWrite[], eventLimit: number): unknown[] {
  const events = batch.flatMap((write) => (write.event === undefined ? [] : [write.event]));
  const rows = new Map<string, TaskRow>();
  const messages = new Map<string, MessageRow>();
  for (const write of batch) {
    if (write.row !== undefined) rows.set(write.row.id, write.row);
    if (write.message !== undefined)
      messages.set(`${write.message.callerKey}\u0000${write.message.messageId}`, write.message);
  }
  const tasks = [...rows.values()];
  const remembered = [...messages.values()];
  return [
    events.map((event) => event.taskId),
    jsonArray(events.map((event) => event.json)),
    events.map((event) => event.final),
    eventLimit,
    tasks.map((row) => row.id),
    tasks.map((row) => row.contextId),
    tasks.map((row) => row.target),
    tasks.map((row) => row.skill),
    tasks.map((row) => row.parentTaskId),
    tasks.map((row) => row.callerKey),
    tasks.map((row) => row.traceId),
    tasks.map((row) => row.state),
    tasks.map((row) => row.terminal),
    tasks.map((row) => row.statusTime),
    tasks.map((row) => row.deadline),
    tasks.map((row) => row.createdAt),
    jsonArray(tasks.map((row) => row.json)),
    remembered.map((message) => message.callerKey),
    remembered.map((message) => message.messageId),
    remembered.map((message) => message.taskId),
    remembered.map((message) => Math.ceil(message.expiresAt)),
  ];
}

/** JSON texts joined into the text of one JSON array. */
function jsonArray(texts: readonly string[]): string {
  return `[${texts.join(',')}]`;
}

/** One queued messageId lookup. */
interface QueuedLookup {
  readonly callerKey: string;
  readonly messageId: string;
  readonly now: number;
}

/**
 * Queues messageId lookups and answers all those queued in one event-loop turn with one statement at the end
 * of the turn; a failed statement fails each of them.
 */
export class SqlLookupBatcher {
  private readonly lookups: TurnQueue<QueuedLookup, string | undefined>;

  constructor(db: Database) {
    this.lookups = new TurnQueue<QueuedLookup, string | undefined>(async (batch) => {
      const result = await db.query<{ ord: string | number; task_id: string }>(LOOKUP_BATCH, [
        batch.map((lookup) => lookup.callerKey),
        batch.map((lookup) => lookup.messageId),
        batch.map((lookup) => Math.floor(lookup.now)),
      ]);
      const found = new Map<number, string>();
      for (const row of result.rows) found.set(Number(row.ord), row.task_id);
      return batch.map((_, index) => found.get(index + 1));
    });
  }

  /** The task remembered for the caller's messageId and not expired at `now`, if any. */
  taskOfMessage(callerKey: string, messageId: string, now: number): Promise<string | undefined> {
    return this.lookups.add({ callerKey, messageId, now });
  }
}
