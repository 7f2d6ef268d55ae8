// Benchmark of the marketing store: brand-guideline chunk inserts (384-dim vectors), HNSW build and top-10
// search through PGVectorStore for 10,000 chunks (BENCH_QUICK=1: 1,000) on PGlite and on PostgreSQL when it has
// pgvector, relational metric upserts on both, and an in-process brute-force top-10 as the baseline of the same
// run. HNSW recall@10 is measured against exact search at the default and a wider ef_search.
// Run: npx tsx bench/store.ts — the last line is one JSON object with units in its keys.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Embeddings } from '@langchain/core/embeddings';
import pg from 'pg';
import { migrate, openDatabase, type Database } from '../shared/db.js';
import {
  CREATE_GUIDELINE_INDEX,
  DROP_GUIDELINE_INDEX,
  createGuidelineRetriever,
  ensureEmbeddingDimensions,
  insertGuidelineChunks,
  type GuidelineChunk,
} from '../spoke_marketing/retrieval.js';
import { upsertMetrics, type MetricsInput } from '../spoke_marketing/store.js';
import { seededRandom } from '../test/helpers/seeded_random.js';

const quick = process.env.BENCH_QUICK === '1';
const chunkCount = quick ? 1_000 : 10_000;
const dimensions = 384;
const queryCount = quick ? 20 : 100;
const metricRowCount = quick ? 2_000 : 10_000;
const postgresUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** hnsw.ef_search of the wide-candidate pass (pgvector's default is 40). */
const WIDE_EF_SEARCH = 200;
const migrationsDir = join(import.meta.dirname, '..', 'spoke_marketing', 'migrations');

function randomUnitVector(random: () => number): number[] {
  const vector = Array.from({ length: dimensions }, () => random() * 2 - 1);
  const norm = Math.hypot(...vector);
  return vector.map((value) => Number((value / norm).toFixed(6)));
}

const random = seededRandom(384);
const chunks: GuidelineChunk[] = Array.from({ length: chunkCount }, (_, index) => ({
  content: `guideline chunk ${index}`,
  embedding: randomUnitVector(random),
  metadata: { source: `bench/${index % 50}.md`, chunkIndex: index },
}));
const queries = Array.from({ length: queryCount }, () => randomUnitVector(random));
const metricRows: MetricsInput[] = Array.from({ length: metricRowCount }, (_, index) => ({
  campaign: `campaign-${index % 40}`,
  channel: ['search', 'social', 'email', 'display'][index % 4]!,
  date: new Date(Date.UTC(2020, 0, 1) + Math.floor(index / 40) * 86_400_000).toISOString().slice(0, 10),
  spendMinor: 1000 + (index % 997),
  impressions: 10_000 + index,
  clicks: 100 + (index % 50),
  leads: index % 7,
  conversions: index % 5,
  revenueMinor: 5000 + (index % 1999),
}));

/** Query embeddings are precomputed vectors: the benchmark measures the store, not a model. */
class PrecomputedEmbeddings extends Embeddings {
  constructor(private readonly byText: Map<string, number[]>) {
    super({});
  }
  override async embedDocuments(documents: string[]): Promise<number[][]> {
    return documents.map((document) => this.byText.get(document) ?? []);
  }
  override async embedQuery(document: string): Promise<number[]> {
    return this.byText.get(document) ?? [];
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function round(value: number, digits = 1): number {
  return Number(value.toFixed(digits));
}

/** Exact cosine top-10 in plain JavaScript over the same vectors: the baseline. */
function bruteForceTop10(query: readonly number[]): number[] {
  const scored = chunks.map((chunk, index) => {
    let dot = 0;
    for (let d = 0; d < dimensions; d += 1) dot += chunk.embedding[d]! * query[d]!;
    return { index, dot };
  });
  scored.sort((a, b) => b.dot - a.dot);
  return scored.slice(0, 10).map((entry) => entry.index);
}

interface VectorFigures {
  readonly vector_insert_rows_per_s: number;
  readonly hnsw_build_s: number;
  readonly hnsw_top10_ms_p50: number;
  readonly hnsw_top10_queries_per_s: number;
  readonly exact_top10_ms_p50: number;
  readonly hnsw_recall_at_10: number;
  readonly hnsw_ef200_top10_ms_p50: number;
  readonly hnsw_ef200_recall_at_10: number;
}

async function measureVectors(db: Database): Promise<VectorFigures> {
  await ensureEmbeddingDimensions(db, dimensions);
  await db.query(DROP_GUIDELINE_INDEX);
  const insertStarted = performance.now();
  await db.transaction((tx) => insertGuidelineChunks(tx, chunks));
  const insertSeconds = (performance.now() - insertStarted) / 1000;
  const buildStarted = performance.now();
  await db.query(CREATE_GUIDELINE_INDEX);
  const buildSeconds = (performance.now() - buildStarted) / 1000;

  const queryTexts = new Map(queries.map((vector, index) => [`query ${index}`, vector]));
  const retriever = createGuidelineRetriever({
    db,
    embeddings: new PrecomputedEmbeddings(queryTexts),
    modelName: 'bench',
  });
  const indexOf = (content: string) => Number(content.slice('guideline chunk '.length));
  const exactTop10 = queries.map((vector) => new Set(bruteForceTop10(vector)));
  const recallOf = (found: readonly number[], index: number) =>
    found.filter((chunkIndex) => exactTop10[index]!.has(chunkIndex)).length;
  const hnswTimes: number[] = [];
  let recallHits = 0;
  const allStarted = performance.now();
  for (const index of queries.keys()) {
    const started = performance.now();
    const hits = await retriever.search(`query ${index}`, 10);
    hnswTimes.push(performance.now() - started);
    recallHits += recallOf(
      hits.map((hit) => indexOf(hit.content)),
      index,
    );
  }
  const allSeconds = (performance.now() - allStarted) / 1000;

  // The same index searched with a wider candidate list (pgvector's default hnsw.ef_search is 40).
  const wideTimes: number[] = [];
  let wideRecallHits = 0;
  for (const [index, vector] of queries.entries()) {
    const started = performance.now();
    const rows = await db.transaction(async (tx) => {
      await tx.query(`SET LOCAL hnsw.ef_search = ${WIDE_EF_SEARCH}`);
      return (
        await tx.query<{ content: string }>(
          'SELECT content FROM brand_guideline_chunks ORDER BY embedding <=> $1::vector LIMIT 10',
          [`[${vector.join(',')}]`],
        )
      ).rows;
    });
    wideTimes.push(performance.now() - started);
    wideRecallHits += recallOf(
      rows.map((row) => indexOf(row.content)),
      index,
    );
  }

  const exactTimes: number[] = [];
  for (const vector of queries) {
    const started = performance.now();
    await db.transaction(async (tx) => {
      await tx.query('SET LOCAL enable_indexscan = off');
      await tx.query('SELECT id FROM brand_guideline_chunks ORDER BY embedding <=> $1::vector LIMIT 10', [
        `[${vector.join(',')}]`,
      ]);
    });
    exactTimes.push(performance.now() - started);
  }
  return {
    vector_insert_rows_per_s: round(chunkCount / insertSeconds),
    hnsw_build_s: round(buildSeconds, 2),
    hnsw_top10_ms_p50: round(median(hnswTimes), 2),
    hnsw_top10_queries_per_s: round(queries.length / allSeconds),
    exact_top10_ms_p50: round(median(exactTimes), 2),
    hnsw_recall_at_10: round(recallHits / (queries.length * 10), 3),
    hnsw_ef200_top10_ms_p50: round(median(wideTimes), 2),
    hnsw_ef200_recall_at_10: round(wideRecallHits / (queries.length * 10), 3),
  };
}

async function measureMetricUpserts(db: Database): Promise<number> {
  const started = performance.now();
  await db.transaction((tx) => upsertMetrics(tx, metricRows));
  return round(metricRowCount / ((performance.now() - started) / 1000));
}

async function benchPglite(): Promise<Record<string, unknown>> {
  const root = await mkdtemp(join(tmpdir(), 'agenthub-bench-store-'));
  const opened = performance.now();
  const db = await openDatabase({ dataDir: join(root, 'marketing'), service: 'bench' });
  try {
    await migrate(db, migrationsDir);
    const openSeconds = round((performance.now() - opened) / 1000, 2);
    const metrics = await measureMetricUpserts(db);
    const vectors = await measureVectors(db);
    return { open_and_migrate_s: openSeconds, metrics_upsert_rows_per_s: metrics, ...vectors };
  } finally {
    await db.close();
    await rm(root, { recursive: true, force: true });
  }
}

async function benchPostgres(): Promise<Record<string, unknown>> {
  const name = `agenthub_bench_${randomUUID().replaceAll('-', '')}`;
  const admin = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (error) {
    return { skipped_reason: `PostgreSQL at ${postgresUrl} is not reachable: ${(error as Error).message}` };
  }
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  const db = await openDatabase({ databaseUrl: url.toString(), service: 'bench' });
  try {
    const version = (await db.query<{ server_version: string }>('SHOW server_version')).rows[0]
      ?.server_version;
    await migrate(db, migrationsDir, { skipVector: !db.hasVector });
    const metrics = await measureMetricUpserts(db);
    const vectors: Record<string, unknown> = db.hasVector
      ? { ...(await measureVectors(db)) }
      : {
          vector_insert_rows_per_s: null,
          hnsw_build_s: null,
          hnsw_top10_ms_p50: null,
          hnsw_top10_queries_per_s: null,
          exact_top10_ms_p50: null,
          hnsw_recall_at_10: null,
          hnsw_ef200_top10_ms_p50: null,
          hnsw_ef200_recall_at_10: null,
          vector_null_reason: `PostgreSQL ${version} on this host has no pgvector extension`,
        };
    return { server_version: version, metrics_upsert_rows_per_s: metrics, ...vectors };
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

function baseline(): Record<string, number> {
  const times: number[] = [];
  for (const query of queries) {
    const started = performance.now();
    bruteForceTop10(query);
    times.push(performance.now() - started);
  }
  return { js_bruteforce_top10_ms_p50: round(median(times), 2) };
}

console.log(
  `store benchmark: ${chunkCount} chunks × ${dimensions} dims, ${queryCount} queries, ${metricRowCount} metric rows`,
);
const baselineFigures = baseline();
console.log(
  `baseline (in-process exact cosine top-10): ${baselineFigures.js_bruteforce_top10_ms_p50} ms per query`,
);
const pgliteFigures = await benchPglite();
console.log('PGlite (socket, pgvector):', pgliteFigures);
const postgresFigures = await benchPostgres();
console.log('PostgreSQL:', postgresFigures);
console.log(
  JSON.stringify({
    bench: 'store',
    quick,
    chunks: chunkCount,
    dimensions,
    queries: queryCount,
    metric_rows: metricRowCount,
    baseline: baselineFigures,
    pglite: pgliteFigures,
    postgres: postgresFigures,
  }),
);
