-- Chat conversations (one per A2A contextId) and their messages in order; message_id dedupes redeliveries.
CREATE TABLE conversations (
  id text PRIMARY KEY,
  tenant text,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
  conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  seq integer NOT NULL CHECK (seq >= 0),
  message_id text NOT NULL UNIQUE,
  role text NOT NULL CHECK (role IN ('user', 'agent')),
  parts jsonb NOT NULL,
  task_id text REFERENCES tasks (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (conversation_id, seq)
);
