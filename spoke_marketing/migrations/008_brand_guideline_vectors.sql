-- requires: vector
-- Brand-guideline chunks with pgvector embeddings, kept apart so plain PostgreSQL without pgvector can apply
-- every other migration. The column is sized (and its HNSW cosine index built) by retrieval.ts once the
-- embedding model's dimension is known.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE brand_guideline_chunks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  content text NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  embedding vector NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX brand_guideline_chunks_source ON brand_guideline_chunks ((metadata ->> 'source'));

CREATE TABLE brand_guideline_sources (
  source text PRIMARY KEY,
  sha256 text NOT NULL,
  model text NOT NULL,
  dimensions integer NOT NULL CHECK (dimensions > 0),
  chunks integer NOT NULL CHECK (chunks >= 0),
  indexed_at timestamptz NOT NULL DEFAULT now()
);
