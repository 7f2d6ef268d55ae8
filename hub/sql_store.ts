// The hub's persistent TaskStore on PostgreSQL or the embedded PGlite (hub/migrations): task records, per-task
// event logs with a database-wide epoch, the messageId dedupe window, conversations and the attestation
// audit, with the same semantics as InMemoryTaskStore; plus openHubStore, which opens and migrates the database.
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { migrate, openDatabase, type Database } from '../shared/db.js';
import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { StreamResponse } from '../shared/protocol.js';
import {
  withSequence,
  type AttestationAuditEntry,
  type Conversation,
  type ConversationTurn,
  type EventReplay,
  type HubTaskRecord,
  type RememberedMessage,
  type TaskEventEntry,
  type TaskListQuery,
  type TaskStore,
} from './tasks.js';
import { SqlLookupBatcher, SqlWriteBatcher } from './sql_batch.js';

/** The hub's numbered migrations (applied with scope `hub`). */
export const HUB_MIGRATIONS_DIR = resolve(import.meta.dirname, 'migrations');

// ---------------------------------------------------------------------------------------------------------
// SQL

const SELECT_EPOCH = `SELECT value FROM hub_store_state WHERE key = 'epoch'`;
const INSERT_EPOCH = `INSERT INTO hub_store_state (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING`;

const SELECT_TASK = `SELECT record FROM tasks WHERE id = $1`;
const COUNT_CALLER_TASKS = `
SELECT count(*)::int AS total FROM tasks
WHERE caller_key = $1 AND ($2::text IS NULL OR context_id = $2) AND ($3::text IS NULL OR state = $3)`;
/** Newest status first; the page token is the (status_time, id) of the last row of the previous page. */
const SELECT_CALLER_TASKS_PAGE = `
SELECT record, status_time, id FROM tasks
WHERE caller_key = $1 AND ($2::text IS NULL OR context_id = $2) AND ($3::text IS NULL OR state = $3)
  AND ($4::text IS NULL OR (status_time, id COLLATE "C") < ($4::text COLLATE "C", $5::text COLLATE "C"))
ORDER BY status_time DESC, id COLLATE "C" DESC
LIMIT $6`;

const SELECT_EVENTS_AFTER = `
SELECT seq, event, final FROM task_events WHERE task_id = $1 AND seq > $2 ORDER BY seq`;

const SELECT_LAST_SEQ = `SELECT last_seq FROM task_event_counters WHERE task_id = $1`;

const SELECT_CONVERSATION = `SELECT principal, spoke, turns FROM conversations WHERE id = $1`;
const UPSERT_CONVERSATION = `
INSERT INTO conversations (id, principal, spoke, turns) VALUES ($1, $2, $3, $4::json)
ON CONFLICT (id) DO UPDATE SET
  principal = EXCLUDED.principal, spoke = EXCLUDED.spoke, turns = EXCLUDED.turns, updated_at = now()`;

const INSERT_AUDIT = `
INSERT INTO attestation_audit (appraised_at, spoke, replica, session_id, status, reasons, policy_id, jti, kid)
VALUES ($1::timestamptz, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)`;
/** The newest `$1` entries, returned in the order they were appended (as InMemoryTaskStore does). */
const SELECT_NEWEST_AUDIT = `
SELECT appraised_at, spoke, replica, session_id, status, reasons, policy_id, jti, kid FROM (
  SELECT * FROM attestation_audit ORDER BY id DESC LIMIT $1
) newest ORDER BY id`;

/** Deletes the oldest finished tasks beyond `$1` tasks in all, with their events and seq counters. */
const PRUNE_FINISHED_TASKS = `
WITH doomed AS (
  DELETE FROM tasks WHERE id IN (
    SELECT id FROM tasks WHERE terminal ORDER BY created_at, id
    LIMIT (SELECT GREATEST(0, count(*) - $1) FROM tasks)
  ) RETURNING id
), doomed_events AS (
  DELETE FROM task_events WHERE task_id IN (SELECT id FROM doomed)
), doomed_counters AS (
  DELETE FROM task_event_counters WHERE task_id IN (SELECT id FROM doomed)
)
SELECT count(*)::int AS pruned FROM doomed`;
const PRUNE_EXPIRED_MESSAGE_IDS = `DELETE FROM task_message_ids WHERE expires_at <= $1`;
const PRUNE_EXCESS_MESSAGE_IDS = `
DELETE FROM task_message_ids WHERE remembered IN (
  SELECT remembered FROM task_message_ids ORDER BY remembered
  LIMIT (SELECT GREATEST(0, count(*) - $1) FROM task_message_ids)
)`;
const PRUNE_EXCESS_AUDIT = `
DELETE FROM attestation_audit WHERE id IN (
  SELECT id FROM attestation_audit ORDER BY id
  LIMIT (SELECT GREATEST(0, count(*) - $1) FROM attestation_audit)
)`;

// ---------------------------------------------------------------------------------------------------------
// Store

/** Bounds and clock of {@link SqlTaskStore}. */
export interface SqlTaskStoreOptions {
  /** Events kept per task; older ones are deleted on append (a replay from before them reports a gap). */
  readonly eventLimit: number;
  /** Tasks kept; beyond it the oldest finished tasks (and their events) are pruned. @defaultValue 50000 */
  readonly taskLimit?: number;
  /** Audit entries kept; the oldest go first. @defaultValue 10000 */
  readonly auditLimit?: number;
  /**
   * Writes (new tasks, remembered messageIds, audit entries) between two prunes. The prune runs inside the
   * write that reaches this count, so a table exceeds its limit by at most this many rows. @defaultValue 100
   */
  readonly pruneEvery?: number;
  /** Clock for pruning expired messageIds, ms since the Unix epoch. @defaultValue Date.now */
  readonly now?: () => number;
  readonly log?: Logger;
}

/** What one {@link SqlTaskStore.prune} deleted. */
export interface PruneResult {
  readonly tasks: number;
  readonly messageIds: number;
  readonly auditEntries: number;
}

interface TaskRow {
  readonly record: unknown;
}
interface TaskPageRow extends TaskRow {
  readonly status_time: string;
  readonly id: string;
}
interface EventRow {
  readonly seq: string | number;
  readonly event: unknown;
  readonly final: boolean;
}
interface ConversationRow {
  readonly principal: string;
  readonly spoke: string | null;
  readonly turns: unknown;
}
interface AuditRow {
  readonly appraised_at: Date;
  readonly spoke: string;
  readonly replica: string | null;
  readonly session_id: string | null;
  readonly status: string;
  readonly reasons: unknown;
  readonly policy_id: string;
  readonly jti: string | null;
  readonly kid: string | null;
}

/**
 * A {@link TaskStore} in SQL with InMemoryTaskStore's semantics, so tasks, event logs, conversations and the
 * audit survive a hub restart. The epoch is created once per database (kept across restarts, new after a
 * wipe). Event appends, record saves and remembered messageIds are written one statement per event-loop
 * turn (sql_batch.ts); that statement row-locks each task's counter, so concurrent appends for one task
 * get 1, 2, 3… without holes. Retention: appends keep about the newest `eventLimit` events of each task;
 * every `pruneEvery` writes the oldest finished tasks beyond `taskLimit`, expired and excess messageIds and
 * excess audit entries are deleted ({@link SqlTaskStore.prune}). Records are returned as copies: a caller
 * that changes a record it read must `saveTask` it. Build one with {@link createSqlTaskStore}.
 */
export class SqlTaskStore implements TaskStore {
  private readonly eventLimit: number;
  private readonly taskLimit: number;
  private readonly auditLimit: number;
  private readonly pruneEvery: number;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private writesSincePrune = 0;
  /** Event appends, record saves and remembered messageIds, one statement per event-loop turn. */
  private readonly writes: SqlWriteBatcher;
  /** messageId lookups, one statement per event-loop turn. */
  private readonly lookups: SqlLookupBatcher;
  private pruning: Promise<PruneResult> | undefined;

  /** Use {@link createSqlTaskStore}, which reads or creates the epoch first. */
  constructor(
    private readonly db: Database,
    readonly epoch: string,
    options: SqlTaskStoreOptions,
  ) {
    if (!Number.isInteger(options.eventLimit) || options.eventLimit < 1) {
      throw new AppError(
        'CONFIG_INVALID',
        `eventLimit must be a positive integer, got ${options.eventLimit}`,
      );
    }
    this.eventLimit = options.eventLimit;
    this.taskLimit = options.taskLimit ?? 50_000;
    this.auditLimit = options.auditLimit ?? 10_000;
    this.pruneEvery = Math.max(1, options.pruneEvery ?? 100);
    this.now = options.now ?? Date.now;
    this.log = options.log;
    this.writes = new SqlWriteBatcher(db, this.eventLimit, (counts) =>
      this.countWrites(counts.insertedTasks + counts.rememberedMessages),
    );
    this.lookups = new SqlLookupBatcher(db);
  }

  async saveTask(record: HubTaskRecord): Promise<void> {
    await this.writes.save(record);
  }

  async saveTaskAndEvent(
    record: HubTaskRecord,
    event: StreamResponse,
    final: boolean,
    remember?: RememberedMessage,
  ): Promise<TaskEventEntry> {
    const seq = await this.writes.append(record.id, event, final, record, remember);
    return this.loggedEntry(record.id, seq, event, final);
  }

  async getTask(id: string): Promise<HubTaskRecord | undefined> {
    const result = await this.db.query<TaskRow>(SELECT_TASK, [id]);
    const row = result.rows[0];
    return row === undefined ? undefined : taskRecordOf(row.record, id);
  }

  async listTasks(
    query: TaskListQuery,
  ): Promise<{ tasks: HubTaskRecord[]; nextPageToken: string; totalSize: number }> {
    const filters = [query.callerKey, query.contextId ?? null, query.state ?? null];
    const cursor = decodePageToken(query.pageToken);
    const pageSize = Math.max(0, Math.floor(query.pageSize));
    const [count, page] = await Promise.all([
      this.db.query<{ total: number }>(COUNT_CALLER_TASKS, filters),
      this.db.query<TaskPageRow>(SELECT_CALLER_TASKS_PAGE, [
        ...filters,
        cursor?.statusTime ?? null,
        cursor?.id ?? null,
        pageSize + 1,
      ]),
    ]);
    const rows = page.rows.slice(0, pageSize);
    const last = rows.at(-1);
    const hasMore = page.rows.length > pageSize && last !== undefined;
    return {
      tasks: rows.map((row) => taskRecordOf(row.record, row.id)),
      nextPageToken: hasMore ? encodePageToken({ statusTime: last.status_time, id: last.id }) : '',
      totalSize: count.rows[0]?.total ?? 0,
    };
  }

  findByMessageId(key: string, messageId: string, now: number): Promise<string | undefined> {
    return this.lookups.taskOfMessage(key, messageId, now);
  }

  async appendEvent(taskId: string, event: StreamResponse, final: boolean): Promise<TaskEventEntry> {
    const seq = await this.writes.append(taskId, event, final);
    return this.loggedEntry(taskId, seq, event, final);
  }

  private loggedEntry(taskId: string, seq: number, event: StreamResponse, final: boolean): TaskEventEntry {
    return { taskId, seq, epoch: this.epoch, event: withSequence(event, seq, this.epoch), final };
  }

  async eventsAfter(taskId: string, afterSeq: number): Promise<EventReplay> {
    const result = await this.db.query<EventRow>(SELECT_EVENTS_AFTER, [taskId, afterSeq]);
    const entries = result.rows.map((row): TaskEventEntry => ({
      taskId,
      seq: Number(row.seq),
      epoch: this.epoch,
      // Stamped here: events are stored as routed (rows written before that carry the same stamp already).
      event: withSequence(streamResponseOf(row.event, taskId), Number(row.seq), this.epoch),
      final: row.final,
    }));
    // Seqs have no holes and trimming removes a prefix, so the first row after afterSeq is the oldest kept
    // event whenever any kept event is later than afterSeq: a gap is exactly "that row is not afterSeq + 1".
    const first = entries[0];
    return { entries, gap: first !== undefined && first.seq > afterSeq + 1 };
  }

  async lastEventSeq(taskId: string): Promise<number> {
    const result = await this.db.query<{ last_seq: string | number }>(SELECT_LAST_SEQ, [taskId]);
    const row = result.rows[0];
    return row === undefined ? 0 : Number(row.last_seq);
  }

  async getConversation(contextId: string): Promise<Conversation | undefined> {
    const result = await this.db.query<ConversationRow>(SELECT_CONVERSATION, [contextId]);
    const row = result.rows[0];
    if (row === undefined) return undefined;
    return { contextId, principal: row.principal, spoke: row.spoke, turns: turnsOf(row.turns, contextId) };
  }

  async saveConversation(conversation: Conversation): Promise<void> {
    await this.db.query(UPSERT_CONVERSATION, [
      conversation.contextId,
      conversation.principal,
      conversation.spoke,
      JSON.stringify(conversation.turns),
    ]);
  }

  async appendAudit(entry: AttestationAuditEntry): Promise<void> {
    await this.db.query(INSERT_AUDIT, [
      entry.at,
      entry.spoke,
      entry.replica,
      entry.sid,
      entry.result,
      JSON.stringify(entry.reasons),
      entry.policyId,
      entry.jti,
      entry.kid,
    ]);
    await this.countWrites(1);
  }

  /** The newest `limit` audit entries in the order they were appended; `at` comes back as ISO-8601 UTC. */
  async listAudit(limit: number): Promise<AttestationAuditEntry[]> {
    const result = await this.db.query<AuditRow>(SELECT_NEWEST_AUDIT, [Math.max(0, Math.floor(limit))]);
    return result.rows.map((row) => auditEntryOf(row));
  }

  /**
   * Deletes the oldest finished tasks beyond `taskLimit` (with their events), expired messageIds, the oldest
   * messageIds beyond `taskLimit` and the oldest audit entries beyond `auditLimit`. Runs by itself every
   * `pruneEvery` writes; concurrent calls share one run.
   */
  prune(): Promise<PruneResult> {
    this.pruning ??= this.runPrune().finally(() => {
      this.pruning = undefined;
    });
    return this.pruning;
  }

  private async runPrune(): Promise<PruneResult> {
    this.writesSincePrune = 0;
    const tasks = await this.db.query<{ pruned: number }>(PRUNE_FINISHED_TASKS, [this.taskLimit]);
    const expired = await this.db.query(PRUNE_EXPIRED_MESSAGE_IDS, [this.now()]);
    const excess = await this.db.query(PRUNE_EXCESS_MESSAGE_IDS, [this.taskLimit]);
    const audit = await this.db.query(PRUNE_EXCESS_AUDIT, [this.auditLimit]);
    const result: PruneResult = {
      tasks: tasks.rows[0]?.pruned ?? 0,
      messageIds: (expired.rowCount ?? 0) + (excess.rowCount ?? 0),
      auditEntries: audit.rowCount ?? 0,
    };
    if (result.tasks + result.messageIds + result.auditEntries > 0)
      this.log?.debug(result, 'task store pruned');
    return result;
  }

  /**
   * Counts a committed batch's writes and prunes when due. A failed prune is logged and tried again after the
   * next batch: the batch's own rows are committed, so its writers must not see the prune's error.
   */
  private async countWrites(count: number): Promise<void> {
    this.writesSincePrune += count;
    if (this.writesSincePrune < this.pruneEvery) return;
    try {
      await this.prune();
    } catch (error) {
      this.writesSincePrune = this.pruneEvery;
      this.log?.warn({ err: error }, 'task store prune failed; retrying after the next write');
    }
  }
}

/**
 * Opens the SQL task store on a migrated database: reads the database's epoch, creating it on first use
 * (two hubs racing on a new database agree on the one inserted first).
 */
export async function createSqlTaskStore(db: Database, options: SqlTaskStoreOptions): Promise<SqlTaskStore> {
  await db.query(INSERT_EPOCH, [randomUUID()]);
  const result = await db.query<{ value: string }>(SELECT_EPOCH);
  const epoch = result.rows[0]?.value;
  if (epoch === undefined) throw new AppError('INTERNAL', 'the task store epoch could not be created');
  return new SqlTaskStore(db, epoch, options);
}

/** Options of {@link openHubStore}. */
export interface OpenHubStoreOptions {
  /** PostgreSQL URL; when unset the embedded PGlite database in `dataDir` is used. */
  readonly databaseUrl?: string | undefined;
  /** Embedded PGlite data directory (created when missing); required without `databaseUrl`. */
  readonly dataDir?: string | undefined;
  readonly log: Logger;
  /** Events kept per task (the in-memory store's eventLimit). */
  readonly eventLimit: number;
  /** Tasks kept; the oldest finished ones are pruned beyond it. @defaultValue 50000 */
  readonly taskLimit?: number | undefined;
  /** Audit entries kept. @defaultValue 10000 */
  readonly auditLimit?: number | undefined;
}

/** An open hub store; `close()` ends the pool and, for PGlite, flushes and closes the data directory. */
export interface HubStore {
  readonly store: SqlTaskStore;
  /** The open database (for health checks and metrics; the store owns its tables). */
  readonly db: Database;
  close(): Promise<void>;
}

/**
 * Opens the hub's database (service `hub`; PGlite without pgvector, which the hub does not use), applies
 * hub/migrations with scope `hub` and returns the store. Call `close()` after the router and HTTP server
 * stopped writing (the last `saveTask`/`appendEvent` must have settled). Throws `CONFLICT` when another live
 * process owns the PGlite data directory.
 */
export async function openHubStore(options: OpenHubStoreOptions): Promise<HubStore> {
  const db = await openDatabase({
    ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    service: 'hub',
    log: options.log,
    withVector: false,
  });
  try {
    const migrated = await migrate(db, HUB_MIGRATIONS_DIR, { scope: 'hub' });
    if (migrated.applied.length > 0)
      options.log.info({ applied: migrated.applied }, 'hub migrations applied');
    const store = await createSqlTaskStore(db, {
      eventLimit: options.eventLimit,
      ...(options.taskLimit === undefined ? {} : { taskLimit: options.taskLimit }),
      ...(options.auditLimit === undefined ? {} : { auditLimit: options.auditLimit }),
      log: options.log.child({ module: 'task_store' }),
    });
    options.log.info({ kind: db.kind, epoch: store.epoch }, 'hub task store opened');
    return { store, db, close: () => db.close() };
  } catch (error) {
    await db.close();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Rows read as JSON: checked before they are trusted (a hand-edited or foreign row fails loudly).

function taskRecordOf(value: unknown, where: string): HubTaskRecord {
  if (
    isObject(value) &&
    typeof value.id === 'string' &&
    typeof value.callerKey === 'string' &&
    Array.isArray(value.hops) &&
    Array.isArray(value.childTaskIds) &&
    isObject(value.task) &&
    isObject(value.task.status) &&
    typeof value.task.status.state === 'string'
  ) {
    return value as unknown as HubTaskRecord;
  }
  throw corruptRow('tasks', where);
}

function streamResponseOf(value: unknown, taskId: string): StreamResponse {
  if (isObject(value)) {
    const kinds = ['task', 'message', 'statusUpdate', 'artifactUpdate'].filter((kind) =>
      isObject(value[kind]),
    );
    if (kinds.length === 1 && Object.keys(value).length === 1) return value as unknown as StreamResponse;
  }
  throw corruptRow('task_events', taskId);
}

function turnsOf(value: unknown, contextId: string): ConversationTurn[] {
  if (Array.isArray(value) && value.every((turn) => isObject(turn) && typeof turn.text === 'string')) {
    return value as ConversationTurn[];
  }
  throw corruptRow('conversations', contextId);
}

function auditEntryOf(row: AuditRow): AttestationAuditEntry {
  const result = row.status;
  const reasons = row.reasons;
  if (
    (result === 'affirming' || result === 'contraindicated' || result === 'pending') &&
    Array.isArray(reasons) &&
    reasons.every((reason) => typeof reason === 'string')
  ) {
    return {
      at: row.appraised_at.toISOString(),
      spoke: row.spoke,
      replica: row.replica ?? '',
      sid: row.session_id ?? '',
      result,
      reasons,
      policyId: row.policy_id,
      jti: row.jti,
      kid: row.kid,
    };
  }
  throw corruptRow('attestation_audit', `${row.spoke} at ${row.appraised_at.toISOString()}`);
}

function isObject(value: unknown): value is Record<string, unknown> & { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function corruptRow(table: string, where: string): AppError {
  return new AppError('INTERNAL', `a ${table} row (${where}) does not hold what the hub wrote`, {
    details: { table, where },
  });
}

// ---------------------------------------------------------------------------------------------------------
// Page tokens: opaque to callers; the (status_time, id) after which the next page starts.

interface PageCursor {
  readonly statusTime: string;
  readonly id: string;
}

function encodePageToken(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify([cursor.statusTime, cursor.id]), 'utf8').toString('base64url');
}

/** A missing or unreadable token starts at the first page, as InMemoryTaskStore does. */
function decodePageToken(token: string | undefined): PageCursor | undefined {
  if (token === undefined || token === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2) {
      const [statusTime, id] = parsed as unknown[];
      if (typeof statusTime === 'string' && typeof id === 'string') return { statusTime, id };
    }
  } catch {
    // Not base64url JSON: a token from another store or a hand-written one, treated like no token.
  }
  return undefined;
}
