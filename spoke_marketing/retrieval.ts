// Brand-guideline retrieval: .md/.txt files split with LangChain's RecursiveCharacterTextSplitter, embedded by
// the spoke's model (a LangChain Embeddings over LlmClient.embed), stored in brand_guideline_chunks (pgvector,
// HNSW cosine) and searched top-k through LangChain's PGVectorStore on the database's shared pool.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { PGVectorStore } from '@langchain/community/vectorstores/pgvector';
import { Embeddings, type EmbeddingsParams } from '@langchain/core/embeddings';
import { RecursiveCharacterTextSplitter } from '@langchain/textsplitters';
import type { Database, Queryable } from '../shared/db.js';
import { AppError } from '../shared/errors.js';
import type { LlmClient } from '../shared/llm_client.js';
import { silentLogger, type Logger } from '../shared/log.js';

/** LangChain embeddings computed by the spoke's own model (node-llama-cpp through {@link LlmClient.embed}). */
export class LlmEmbeddings extends Embeddings {
  private readonly llm: Pick<LlmClient, 'embed'>;
  private readonly batchSize: number;
  private readonly signal: AbortSignal | undefined;

  constructor(
    llm: Pick<LlmClient, 'embed'>,
    options: EmbeddingsParams & { batchSize?: number; signal?: AbortSignal } = {},
  ) {
    const { batchSize, signal, ...params } = options;
    super(params);
    this.llm = llm;
    this.batchSize = batchSize ?? 16;
    this.signal = signal;
  }

  override async embedDocuments(documents: string[]): Promise<number[][]> {
    const vectors: number[][] = [];
    for (let start = 0; start < documents.length; start += this.batchSize) {
      const batch = documents.slice(start, start + this.batchSize);
      vectors.push(...(await this.caller.call(() => this.llm.embed(batch, this.signal))));
    }
    return vectors;
  }

  override async embedQuery(document: string): Promise<number[]> {
    const [vector] = await this.caller.call(() => this.llm.embed([document], this.signal));
    if (vector === undefined) throw new AppError('INTERNAL', 'the model returned no embedding');
    return vector;
  }
}

/** The table and its columns, as PGVectorStore names them. */
export const GUIDELINE_TABLE = 'brand_guideline_chunks';
const GUIDELINE_COLUMNS = {
  idColumnName: 'id',
  vectorColumnName: 'embedding',
  contentColumnName: 'content',
  metadataColumnName: 'metadata',
} as const;

/** pgvector's HNSW index covers `vector` columns of at most this many dimensions (Mistral-7B has 4096). */
export const HNSW_MAX_DIMENSIONS = 2000;

export const SELECT_EMBEDDING_DIMENSIONS = `
SELECT atttypmod AS dimensions FROM pg_attribute
WHERE attrelid = 'brand_guideline_chunks'::regclass AND attname = 'embedding'`;
export const CLEAR_GUIDELINES = `DELETE FROM brand_guideline_chunks; DELETE FROM brand_guideline_sources`;
export const DROP_GUIDELINE_INDEX = `DROP INDEX IF EXISTS brand_guideline_chunks_embedding_hnsw`;
export const CREATE_GUIDELINE_INDEX = `
CREATE INDEX IF NOT EXISTS brand_guideline_chunks_embedding_hnsw
ON brand_guideline_chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)`;
export const LOCK_GUIDELINES = `SELECT pg_advisory_xact_lock(7242010002)`;
export const SELECT_SOURCE = `SELECT sha256, model, dimensions FROM brand_guideline_sources WHERE source = $1`;
export const SELECT_SOURCES = `SELECT source FROM brand_guideline_sources ORDER BY source`;
export const DELETE_SOURCE_CHUNKS = `DELETE FROM brand_guideline_chunks WHERE metadata ->> 'source' = $1`;
export const DELETE_SOURCE = `DELETE FROM brand_guideline_sources WHERE source = $1`;
export const INSERT_CHUNKS = `
INSERT INTO brand_guideline_chunks (content, embedding, metadata)
SELECT content, embedding::vector, metadata
FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS input(content, embedding, metadata)`;
export const UPSERT_SOURCE = `
INSERT INTO brand_guideline_sources (source, sha256, model, dimensions, chunks)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (source) DO UPDATE SET sha256 = EXCLUDED.sha256, model = EXCLUDED.model,
  dimensions = EXCLUDED.dimensions, chunks = EXCLUDED.chunks, indexed_at = now()`;

/** One chunk to store: its text, its vector and its metadata (`source`, `chunkIndex`…). */
export interface GuidelineChunk {
  readonly content: string;
  readonly embedding: readonly number[];
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** pgvector's text form of a vector. */
export function vectorLiteral(vector: readonly number[]): string {
  for (const value of vector) {
    if (!Number.isFinite(value)) throw new AppError('INTERNAL', 'an embedding contains a non-finite number');
  }
  return `[${vector.join(',')}]`;
}

/** Inserts chunks with one statement per batch (arrays per column). */
export async function insertGuidelineChunks(
  db: Queryable,
  chunks: readonly GuidelineChunk[],
  batchSize = 200,
): Promise<number> {
  let written = 0;
  for (let start = 0; start < chunks.length; start += batchSize) {
    const batch = chunks.slice(start, start + batchSize);
    const result = await db.query(INSERT_CHUNKS, [
      batch.map((chunk) => chunk.content.replaceAll('\u0000', '')),
      batch.map((chunk) => vectorLiteral(chunk.embedding)),
      batch.map((chunk) => JSON.stringify(chunk.metadata)),
    ]);
    written += result.rowCount ?? 0;
  }
  return written;
}

/**
 * Sizes the embedding column to `dimensions` (and builds the HNSW cosine index when pgvector can index that
 * size). A different size means a different model: the stored chunks are then dropped, to be re-embedded.
 * Returns whether anything changed.
 */
export async function ensureEmbeddingDimensions(
  db: Pick<Database, 'transaction'>,
  dimensions: number,
): Promise<boolean> {
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 16_000) {
    throw new AppError('INTERNAL', `an embedding of ${dimensions} dimensions cannot be stored`);
  }
  return db.transaction(async (tx) => {
    await tx.query(LOCK_GUIDELINES);
    const current = await tx.query<{ dimensions: number }>(SELECT_EMBEDDING_DIMENSIONS);
    if (current.rows[0]?.dimensions === dimensions) return false;
    await tx.query(DROP_GUIDELINE_INDEX);
    await tx.query(CLEAR_GUIDELINES);
    await tx.query(`ALTER TABLE brand_guideline_chunks ALTER COLUMN embedding TYPE vector(${dimensions})`);
    if (dimensions <= HNSW_MAX_DIMENSIONS) await tx.query(CREATE_GUIDELINE_INDEX);
    return true;
  });
}

/** Options of {@link createGuidelineRetriever}. */
export interface GuidelineRetrieverOptions {
  /** The spoke database (pgvector required: PGlite, or PostgreSQL with the extension). */
  readonly db: Database;
  /** Embeddings to index and query with ({@link LlmEmbeddings} in production). */
  readonly embeddings: Embeddings;
  /** Name of the embedding model, recorded per source so a model change re-embeds. */
  readonly modelName: string;
  /** Characters per chunk. @defaultValue 1000 */
  readonly chunkSize?: number;
  /** Characters shared by neighbouring chunks. @defaultValue 150 */
  readonly chunkOverlap?: number;
  readonly log?: Logger;
}

/** What one indexing pass did. */
export interface IndexReport {
  /** Files (re)embedded. */
  readonly indexed: string[];
  /** Files unchanged since they were embedded with this model. */
  readonly unchanged: string[];
  /** Files gone from the directory whose chunks were removed. */
  readonly removed: string[];
  readonly chunks: number;
  readonly dimensions: number;
}

/** One search hit. */
export interface GuidelineHit {
  readonly content: string;
  /** File path relative to the indexed directory. */
  readonly source: string;
  readonly chunkIndex: number;
  /** Cosine similarity, 1 = same direction. */
  readonly similarity: number;
}

/** Brand guidelines over pgvector. */
export interface GuidelineRetriever {
  /** Embeds new or changed .md/.txt files of `directory` and forgets files no longer there. */
  indexDirectory(directory: string, options?: { readonly signal?: AbortSignal }): Promise<IndexReport>;
  /** The `k` chunks closest to `query`, best first, optionally only from one source file. */
  search(query: string, k?: number, options?: { readonly source?: string }): Promise<GuidelineHit[]>;
  /** The PGVectorStore used for searches (for LangChain chains: `asRetriever()`, MMR…). */
  readonly vectorStore: PGVectorStore;
}

const GUIDELINE_EXTENSIONS = new Set(['.md', '.markdown', '.txt']);

async function listGuidelineFiles(directory: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(directory, { withFileTypes: true, recursive: true });
  } catch (error) {
    throw new AppError(
      'BAD_REQUEST',
      `cannot read the guidelines directory ${directory}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .filter((path) => GUIDELINE_EXTENSIONS.has(path.slice(path.lastIndexOf('.')).toLowerCase()))
    .sort();
}

/**
 * Creates the brand-guideline retriever. PGVectorStore is constructed directly on the database's shared pool
 * (not with `initialize()`), so it pins no client: `initialize()` would hold one connection forever without an
 * 'error' listener (an uncaught "Connection terminated" when it drops), and `end()` would end the shared pool.
 * The table, its dimension and its HNSW index are ours (migrations and {@link ensureEmbeddingDimensions}).
 */
export function createGuidelineRetriever(options: GuidelineRetrieverOptions): GuidelineRetriever {
  const { db, embeddings, modelName } = options;
  const log = (options.log ?? silentLogger()).child({ module: 'retrieval' });
  if (!db.hasVector) {
    throw new AppError(
      'PGVECTOR_MISSING',
      'brand-guideline retrieval needs pgvector, which this database lacks',
      {
        details: { databaseKind: db.kind },
      },
    );
  }
  const vectorStore = new PGVectorStore(embeddings, {
    pool: db.pool,
    tableName: GUIDELINE_TABLE,
    columns: GUIDELINE_COLUMNS,
    distanceStrategy: 'cosine',
    skipInitializationCheck: true,
  });
  const chunkSize = options.chunkSize ?? 1000;
  const chunkOverlap = options.chunkOverlap ?? 150;
  const markdownSplitter = RecursiveCharacterTextSplitter.fromLanguage('markdown', {
    chunkSize,
    chunkOverlap,
  });
  const textSplitter = new RecursiveCharacterTextSplitter({ chunkSize, chunkOverlap });

  return {
    vectorStore,

    async indexDirectory(directory, indexOptions = {}) {
      const signal = indexOptions.signal;
      const files = await listGuidelineFiles(directory);
      const probe = await embeddings.embedQuery('brand guidelines');
      const dimensions = probe.length;
      if (await ensureEmbeddingDimensions(db, dimensions)) {
        log.info({ dimensions, model: modelName }, 'guideline embeddings resized; every file is re-embedded');
      }
      const indexed: string[] = [];
      const unchanged: string[] = [];
      let chunkCount = 0;
      const present = new Set<string>();
      for (const path of files) {
        signal?.throwIfAborted();
        const source = relative(directory, path).split(sep).join('/');
        present.add(source);
        const text = await readFile(path, 'utf8');
        const sha256 = createHash('sha256').update(text).digest('hex');
        const known = await db.query<{ sha256: string; model: string; dimensions: number }>(SELECT_SOURCE, [
          source,
        ]);
        const row = known.rows[0];
        if (
          row !== undefined &&
          row.sha256 === sha256 &&
          row.model === modelName &&
          row.dimensions === dimensions
        ) {
          unchanged.push(source);
          continue;
        }
        const splitter = /\.(md|markdown)$/i.test(path) ? markdownSplitter : textSplitter;
        const pieces = (await splitter.splitText(text)).filter((piece) => piece.trim() !== '');
        const vectors = pieces.length === 0 ? [] : await embeddings.embedDocuments(pieces);
        signal?.throwIfAborted();
        const chunks = pieces.map((content, chunkIndex) => ({
          content,
          embedding: vectors[chunkIndex]!,
          metadata: { source, chunkIndex, sha256 },
        }));
        for (const chunk of chunks) {
          if (chunk.embedding.length !== dimensions) {
            throw new AppError(
              'INTERNAL',
              `the model returned ${chunk.embedding.length} dimensions, expected ${dimensions}`,
            );
          }
        }
        await db.transaction(async (tx) => {
          await tx.query(DELETE_SOURCE_CHUNKS, [source]);
          await insertGuidelineChunks(tx, chunks);
          await tx.query(UPSERT_SOURCE, [source, sha256, modelName, dimensions, chunks.length]);
        });
        indexed.push(source);
        chunkCount += chunks.length;
      }
      const stored = await db.query<{ source: string }>(SELECT_SOURCES);
      const removed = stored.rows.map((row) => row.source).filter((source) => !present.has(source));
      for (const source of removed) {
        await db.transaction(async (tx) => {
          await tx.query(DELETE_SOURCE_CHUNKS, [source]);
          await tx.query(DELETE_SOURCE, [source]);
        });
      }
      log.info(
        { indexed: indexed.length, unchanged: unchanged.length, removed: removed.length, chunks: chunkCount },
        'guidelines indexed',
      );
      return { indexed, unchanged, removed, chunks: chunkCount, dimensions };
    },

    async search(query, k = 4, searchOptions = {}) {
      const vector = await embeddings.embedQuery(query);
      const filter = searchOptions.source === undefined ? undefined : { source: searchOptions.source };
      const results = await vectorStore.similaritySearchVectorWithScore(vector, k, filter);
      return results.map(([document, distance]) => ({
        content: document.pageContent,
        source: String(document.metadata.source ?? ''),
        chunkIndex: Number(document.metadata.chunkIndex ?? 0),
        similarity: 1 - distance,
      }));
    },
  };
}
