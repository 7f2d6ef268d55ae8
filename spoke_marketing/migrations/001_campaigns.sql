-- Campaign hierarchy of the marketing spoke: campaigns, their ad sets and ads (platform ids kept as text).
CREATE TABLE campaigns (
  id text PRIMARY KEY,
  name text NOT NULL,
  channel text NOT NULL,
  platform text NOT NULL DEFAULT 'other',
  external_id text,
  objective text,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('draft', 'active', 'paused', 'archived')),
  special_ad_categories text[] NOT NULL DEFAULT '{}',
  daily_budget_minor bigint CHECK (daily_budget_minor >= 0),
  currency char(3) NOT NULL DEFAULT 'USD',
  starts_on date,
  ends_on date,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (platform, external_id)
);

CREATE TABLE ad_sets (
  id text PRIMARY KEY,
  campaign_id text NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  name text NOT NULL,
  external_id text,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('draft', 'active', 'paused', 'archived')),
  daily_budget_minor bigint CHECK (daily_budget_minor >= 0),
  optimization_goal text,
  billing_event text,
  targeting jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ad_sets_campaign ON ad_sets (campaign_id);

CREATE TABLE ads (
  id text PRIMARY KEY,
  ad_set_id text NOT NULL REFERENCES ad_sets (id) ON DELETE CASCADE,
  name text NOT NULL,
  external_id text,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('draft', 'active', 'paused', 'archived')),
  creative_id bigint,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ads_ad_set ON ads (ad_set_id);
