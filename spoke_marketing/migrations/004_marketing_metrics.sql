-- Daily performance per campaign and channel; money in integer minor units of `currency`; one row per
-- (campaign, channel, date, source) so re-importing or re-syncing a day replaces it instead of doubling it.
CREATE TABLE marketing_metrics (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign text NOT NULL,
  channel text NOT NULL,
  date date NOT NULL,
  source text NOT NULL DEFAULT 'import',
  currency char(3) NOT NULL DEFAULT 'USD',
  spend_minor bigint NOT NULL DEFAULT 0 CHECK (spend_minor >= 0),
  impressions bigint NOT NULL DEFAULT 0 CHECK (impressions >= 0),
  clicks bigint NOT NULL DEFAULT 0 CHECK (clicks >= 0),
  leads bigint NOT NULL DEFAULT 0 CHECK (leads >= 0),
  conversions numeric(14, 4) NOT NULL DEFAULT 0 CHECK (conversions >= 0),
  revenue_minor bigint NOT NULL DEFAULT 0 CHECK (revenue_minor >= 0),
  new_customers bigint NOT NULL DEFAULT 0 CHECK (new_customers >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (campaign, channel, date, source)
);
CREATE INDEX marketing_metrics_date ON marketing_metrics (date);
CREATE INDEX marketing_metrics_campaign_date ON marketing_metrics (campaign, date);
