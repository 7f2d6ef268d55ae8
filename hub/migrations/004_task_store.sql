-- Fits 001–003 to the hub's TaskStore (hub/sql_store.ts): whole records as json plus the columns it queries
-- by, a per-task event counter, the messageId dedupe window, the store's epoch, and the audit statuses the
-- hub writes. Nothing wrote these tables before this migration, so the dropped columns held no data.

-- Whole records are stored as `json`, not `jsonb`: the store never queries inside them, and jsonb rejects
-- U+0000, which a message text or a model's output may contain.

-- Tasks: `record` is the whole HubTaskRecord; the other columns are copies kept for indexes and filters.
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_parent_task_id_fkey; -- a parent may be pruned first
ALTER TABLE tasks RENAME COLUMN requested_by TO caller_key;
ALTER TABLE tasks
  DROP COLUMN request,
  DROP COLUMN result,
  DROP COLUMN error,
  DROP COLUMN hops,
  DROP COLUMN metadata,
  ALTER COLUMN caller_key SET NOT NULL,
  ALTER COLUMN context_id SET NOT NULL,
  ALTER COLUMN tenant SET NOT NULL,
  ADD COLUMN trace_id text NOT NULL,
  -- record.task.status.timestamp, else record.createdAt: ListTasks orders by it ("C" = the byte order of ISO text).
  ADD COLUMN status_time text COLLATE "C" NOT NULL,
  -- The task state is terminal (completed, failed, canceled, rejected): prunable, never a trace parent.
  ADD COLUMN terminal boolean NOT NULL,
  ADD COLUMN record json NOT NULL;
CREATE INDEX tasks_caller_status_time ON tasks (caller_key, status_time DESC, id COLLATE "C" DESC);
CREATE INDEX tasks_open_trace ON tasks (trace_id, tenant, updated_at DESC) WHERE NOT terminal;
CREATE INDEX tasks_terminal_created ON tasks (created_at, id) WHERE terminal;

-- Events: the log is keyed by task id without a foreign key (as in the in-memory store, an event may be
-- appended before the task row exists); pruning a task deletes its events and counter explicitly.
ALTER TABLE task_events DROP CONSTRAINT IF EXISTS task_events_task_id_fkey;
ALTER TABLE task_events
  ALTER COLUMN event TYPE json USING event::json,
  ADD COLUMN final boolean NOT NULL DEFAULT false;

-- The last seq handed out per task. It outlives pruned events, so seq never goes back (gaps stay detectable).
CREATE TABLE task_event_counters (
  task_id text PRIMARY KEY,
  last_seq bigint NOT NULL CHECK (last_seq >= 1)
);

-- Which task a caller's messageId created, until `expires_at` (ms since the Unix epoch).
CREATE TABLE task_message_ids (
  caller_key text NOT NULL,
  message_id text NOT NULL,
  task_id text NOT NULL,
  expires_at bigint NOT NULL,
  remembered bigint GENERATED ALWAYS AS IDENTITY,
  PRIMARY KEY (caller_key, message_id)
);
CREATE INDEX task_message_ids_expires ON task_message_ids (expires_at);
CREATE INDEX task_message_ids_remembered ON task_message_ids (remembered);

-- Store-wide values; `epoch` is created once per database, so seq numbers stay valid across hub restarts.
CREATE TABLE hub_store_state (
  key text PRIMARY KEY,
  value text NOT NULL
);

-- Conversations: turns as one json array (a turn has no messageId of its own and keeps the task id it
-- answered even after that task is pruned), so the per-message table of 003 goes.
DROP TABLE messages;
ALTER TABLE conversations RENAME COLUMN tenant TO spoke;
ALTER TABLE conversations
  DROP COLUMN metadata,
  ADD COLUMN principal text NOT NULL DEFAULT '',
  ADD COLUMN turns json NOT NULL DEFAULT '[]';

-- Audit: the hub also writes 'pending' (no evidence from the spoke yet, so not routable) besides the verdicts.
ALTER TABLE attestation_audit DROP CONSTRAINT IF EXISTS attestation_audit_status_check;
ALTER TABLE attestation_audit
  ADD CONSTRAINT attestation_audit_status_check
    CHECK (status IN ('affirming', 'warning', 'contraindicated', 'none', 'pending')),
  ADD COLUMN policy_id text NOT NULL DEFAULT '',
  ADD COLUMN jti text,
  ADD COLUMN kid text;
