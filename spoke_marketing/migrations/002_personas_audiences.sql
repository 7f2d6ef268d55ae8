-- Personas found by clustering leads (one discovery run replaces the active set) and the platform audiences built on them.
CREATE TABLE personas (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  description text,
  cluster_label integer,
  size integer NOT NULL DEFAULT 0 CHECK (size >= 0),
  summary jsonb NOT NULL DEFAULT '{}',
  discovery_run_key text,
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX personas_active ON personas (active) WHERE active;
CREATE INDEX personas_run ON personas (discovery_run_key);

CREATE TABLE audiences (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  persona_id bigint REFERENCES personas (id) ON DELETE SET NULL,
  platform text NOT NULL,
  external_id text,
  definition jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (platform, external_id)
);
