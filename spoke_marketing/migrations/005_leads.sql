-- Leads with their attribution (UTM fields, click ids, first and last touch), their qualification scores and
-- the touchpoints of each journey (multi-touch attribution input).
CREATE TABLE leads (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  external_id text UNIQUE,
  created_at timestamptz NOT NULL,
  email text,
  phone text,
  status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'qualified', 'customer', 'lost')),
  campaign text,
  channel text,
  utm_source text,
  utm_medium text,
  utm_campaign text,
  utm_term text,
  utm_content text,
  utm_id text,
  gclid text,
  gbraid text,
  wbraid text,
  fbclid text,
  ttclid text,
  msclkid text,
  landing_url text,
  referrer text,
  first_touch_channel text,
  first_touch_at timestamptz,
  last_touch_channel text,
  last_touch_at timestamptz,
  persona_id bigint REFERENCES personas (id) ON DELETE SET NULL,
  attributes jsonb NOT NULL DEFAULT '{}',
  converted_at timestamptz,
  revenue_minor bigint CHECK (revenue_minor >= 0),
  currency char(3) NOT NULL DEFAULT 'USD',
  imported_at timestamptz NOT NULL DEFAULT now(),
  CHECK (first_touch_at IS NULL OR last_touch_at IS NULL OR first_touch_at <= last_touch_at)
);
CREATE INDEX leads_created_at ON leads (created_at);
CREATE INDEX leads_campaign ON leads (campaign);
CREATE INDEX leads_persona ON leads (persona_id);
CREATE INDEX leads_gclid ON leads (gclid) WHERE gclid IS NOT NULL;

CREATE TABLE qualifications (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  lead_id bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
  score numeric(7, 4) NOT NULL CHECK (score >= 0 AND score <= 100),
  predicted_ltv_minor bigint CHECK (predicted_ltv_minor >= 0),
  currency char(3) NOT NULL DEFAULT 'USD',
  model text NOT NULL,
  reasons jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX qualifications_lead ON qualifications (lead_id, created_at DESC);

CREATE TABLE touchpoints (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  lead_id bigint REFERENCES leads (id) ON DELETE CASCADE,
  visitor_id text,
  occurred_at timestamptz NOT NULL,
  channel text NOT NULL,
  source text,
  medium text,
  campaign text,
  click_id_type text,
  click_id text,
  url text,
  referrer text,
  CHECK (lead_id IS NOT NULL OR visitor_id IS NOT NULL)
);
CREATE INDEX touchpoints_lead ON touchpoints (lead_id, occurred_at);
CREATE INDEX touchpoints_visitor ON touchpoints (visitor_id, occurred_at);
