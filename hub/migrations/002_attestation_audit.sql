-- Every attestation appraisal the hub made: which spoke replica, on which connection, the verdict and why.
CREATE TABLE attestation_audit (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  spoke text NOT NULL,
  replica text,
  session_id text,
  nonce_sha256 text,
  status text NOT NULL CHECK (status IN ('affirming', 'warning', 'contraindicated', 'none')),
  reasons jsonb NOT NULL DEFAULT '[]',
  claims jsonb,
  measurements jsonb,
  appraised_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attestation_audit_spoke_time ON attestation_audit (spoke, appraised_at DESC);
