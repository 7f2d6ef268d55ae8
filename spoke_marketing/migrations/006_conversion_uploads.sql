-- Offline-conversion uploads to ad platforms: one row per (platform, dedupe_key), so an event is never sent twice.
CREATE TABLE conversion_uploads (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  platform text NOT NULL,
  dedupe_key text NOT NULL,
  lead_id bigint REFERENCES leads (id) ON DELETE SET NULL,
  event_name text,
  payload jsonb NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dry_run', 'sent', 'failed')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  response jsonb,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (platform, dedupe_key)
);
CREATE INDEX conversion_uploads_status ON conversion_uploads (status, created_at);
