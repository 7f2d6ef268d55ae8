-- The hub's task record (A2A tasks it routed, with their hops) and each task's event log: a monotonic
-- sequence per task so a reconnecting client resumes a stream after the last event it saw.
CREATE TABLE tasks (
  id text PRIMARY KEY,
  context_id text,
  tenant text,
  skill_id text,
  parent_task_id text REFERENCES tasks (id) ON DELETE SET NULL,
  requested_by text,
  state text NOT NULL,
  request jsonb NOT NULL DEFAULT '{}',
  result jsonb,
  error jsonb,
  hops jsonb NOT NULL DEFAULT '[]',
  metadata jsonb NOT NULL DEFAULT '{}',
  deadline_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_context ON tasks (context_id, created_at);
CREATE INDEX tasks_state_updated ON tasks (state, updated_at);

CREATE TABLE task_events (
  task_id text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  seq bigint NOT NULL CHECK (seq >= 0),
  event jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, seq)
);
