-- Generated ad creatives with their compliance report (Fair Housing, toxicity) and approval, and A/B experiments.
CREATE TABLE creatives (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id text REFERENCES campaigns (id) ON DELETE SET NULL,
  persona_id bigint REFERENCES personas (id) ON DELETE SET NULL,
  channel text,
  headline text NOT NULL,
  body text NOT NULL,
  call_to_action text,
  compliance_report jsonb NOT NULL DEFAULT '{}',
  approved boolean NOT NULL DEFAULT false,
  approved_at timestamptz,
  model text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (NOT approved OR approved_at IS NOT NULL)
);
CREATE INDEX creatives_campaign ON creatives (campaign_id);

ALTER TABLE ads ADD CONSTRAINT ads_creative_fk FOREIGN KEY (creative_id) REFERENCES creatives (id) ON DELETE SET NULL;

CREATE TABLE experiments (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE,
  campaign_id text REFERENCES campaigns (id) ON DELETE SET NULL,
  hypothesis text,
  primary_metric text NOT NULL DEFAULT 'conversions',
  variants jsonb NOT NULL DEFAULT '[]',
  status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'running', 'stopped', 'concluded')),
  result jsonb,
  started_at timestamptz,
  ended_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
