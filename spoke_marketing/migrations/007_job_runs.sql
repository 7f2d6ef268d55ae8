-- Bookkeeping that makes jobs idempotent (a run key is applied once, in the same transaction as its effects)
-- and the budget allocations the hourly optimisation writes.
CREATE TABLE job_runs (
  run_key text PRIMARY KEY,
  job_name text NOT NULL,
  job_id text,
  attempt integer NOT NULL DEFAULT 1,
  summary jsonb NOT NULL DEFAULT '{}',
  applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_runs_name_applied ON job_runs (job_name, applied_at DESC);

CREATE TABLE budget_allocations (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_key text NOT NULL REFERENCES job_runs (run_key) ON DELETE CASCADE,
  campaign text NOT NULL,
  channel text NOT NULL,
  daily_budget_minor bigint NOT NULL CHECK (daily_budget_minor >= 0),
  currency char(3) NOT NULL DEFAULT 'USD',
  share numeric(9, 6),
  rationale jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_key, campaign, channel)
);
CREATE INDEX budget_allocations_created ON budget_allocations (created_at DESC);
