// spoke_marketing/retrieval.ts on PGlite + pgvector: relevance with deterministic hashed bag-of-words
// embeddings (the right chunk first), incremental re-indexing, and the real embedding path on the tiny GGUF.
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Embeddings } from '@langchain/core/embeddings';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '../../shared/db.js';
import { openLlm } from '../../shared/llm.js';
import { createGuidelineRetriever, LlmEmbeddings } from '../../spoke_marketing/retrieval.js';
import { REPO_ROOT } from '../helpers/shared_data.js';
import { tinyModelPath } from '../helpers/tiny_model.js';

/** Deterministic embeddings: words hashed (FNV-1a) into buckets, L2-normalised, so shared words mean closeness. */
class HashedBagOfWordsEmbeddings extends Embeddings {
  constructor(private readonly dimensions = 256) {
    super({});
  }

  private embed(text: string): number[] {
    const vector = new Array<number>(this.dimensions).fill(0);
    for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
      if (word.length < 3) continue;
      let hash = 0x811c9dc5;
      for (const char of word) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
      vector[hash % this.dimensions]! += 1;
    }
    const norm = Math.hypot(...vector) || 1;
    return vector.map((value) => value / norm);
  }

  override async embedDocuments(documents: string[]): Promise<number[][]> {
    return documents.map((document) => this.embed(document));
  }

  override async embedQuery(document: string): Promise<number[]> {
    return this.embed(document);
  }
}

const GUIDELINES: Record<string, string> = {
  'voice.md': `# Voice and tone

Our voice is warm, direct and confident. Speak to the homeowner as a neighbour would: plain words, short
sentences, no jargon. Never shout with capital letters or stack exclamation marks.`,
  'palette/colours.md': `# Colour palette

Primary colour is harbour blue #1B4F72. Accent colour is sand #F4D03F. Backgrounds stay white; never place
sand text on white backgrounds because contrast is too low.`,
  'legal.txt': `Every housing advertisement carries the Equal Housing Opportunity logo or statement. Do not describe
the ideal buyer by family status, religion, national origin, sex or disability; describe the property instead.`,
};

async function writeGuidelines(directory: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    const path = join(directory, name);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, text);
  }
}

describe('brand-guideline retrieval on PGlite with pgvector', () => {
  let root: string;
  let guidelines: string;
  let db: Database;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agenthub-retrieval-'));
    guidelines = join(root, 'guidelines');
    await writeGuidelines(guidelines, GUIDELINES);
    db = await openDatabase({ dataDir: join(root, 'data', 'marketing'), service: 'marketing' });
    await migrate(db, join(REPO_ROOT, 'spoke_marketing', 'migrations'));
  });
  afterAll(async () => {
    await db?.close();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('ranks the chunk that answers the question first', async () => {
    const retriever = createGuidelineRetriever({
      db,
      embeddings: new HashedBagOfWordsEmbeddings(),
      modelName: 'hashed-bow-256',
      chunkSize: 200,
      chunkOverlap: 0,
    });
    const report = await retriever.indexDirectory(guidelines);
    expect(report.indexed).toEqual(['legal.txt', 'palette/colours.md', 'voice.md']);
    expect(report.dimensions).toBe(256);

    const colour = await retriever.search('which accent colour goes on white backgrounds', 3);
    expect(colour[0]?.source).toBe('palette/colours.md');
    expect(colour[0]?.content).toContain('sand');
    expect(colour[0]!.similarity).toBeGreaterThan(colour[1]!.similarity);

    const legal = await retriever.search('equal housing opportunity statement in advertisement', 3);
    expect(legal[0]?.source).toBe('legal.txt');

    const tone = await retriever.search('tone of voice for the homeowner', 1);
    expect(tone).toEqual([expect.objectContaining({ source: 'voice.md', chunkIndex: 0 })]);

    const onlyVoice = await retriever.search('colour palette', 5, { source: 'voice.md' });
    expect(onlyVoice.length).toBeGreaterThan(0);
    expect(onlyVoice.every((hit) => hit.source === 'voice.md')).toBe(true);
  });

  it('stores the vectors in a sized column with an HNSW cosine index, pinning no pool client', async () => {
    const column = await db.query<{ type: string }>(
      `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
       WHERE attrelid = 'brand_guideline_chunks'::regclass AND attname = 'embedding'`,
    );
    expect(column.rows[0]?.type).toBe('vector(256)');
    const index = await db.query<{ indexdef: string }>(
      `SELECT indexdef FROM pg_indexes WHERE tablename = 'brand_guideline_chunks' AND indexdef LIKE '%hnsw%'`,
    );
    expect(index.rows[0]?.indexdef).toMatch(/USING hnsw \(embedding vector_cosine_ops\)/);
    const retriever = createGuidelineRetriever({
      db,
      embeddings: new HashedBagOfWordsEmbeddings(),
      modelName: 'x',
    });
    expect(retriever.vectorStore.client).toBeUndefined();
  });

  it('re-embeds only changed files and forgets deleted ones', async () => {
    const retriever = createGuidelineRetriever({
      db,
      embeddings: new HashedBagOfWordsEmbeddings(),
      modelName: 'hashed-bow-256',
      chunkSize: 200,
      chunkOverlap: 0,
    });
    await writeFile(
      join(guidelines, 'voice.md'),
      `${GUIDELINES['voice.md']}\n\nSign off with the agent's first name.`,
    );
    await unlink(join(guidelines, 'legal.txt'));
    const report = await retriever.indexDirectory(guidelines);
    expect(report).toMatchObject({
      indexed: ['voice.md'],
      unchanged: ['palette/colours.md'],
      removed: ['legal.txt'],
    });
    const sources = await db.query<{ source: string }>(
      `SELECT DISTINCT metadata ->> 'source' AS source FROM brand_guideline_chunks ORDER BY 1`,
    );
    expect(sources.rows.map((row) => row.source)).toEqual(['palette/colours.md', 'voice.md']);
  });

  it('embeds with the tiny GGUF through LlmEmbeddings: 64 dimensions stored and searchable', async () => {
    const llm = await openLlm({ model: await tinyModelPath(), cacheDir: join(root, 'models'), threads: 1 });
    try {
      const retriever = createGuidelineRetriever({
        db,
        embeddings: new LlmEmbeddings(llm, { batchSize: 4 }),
        modelName: llm.modelName,
        chunkSize: 120,
        chunkOverlap: 20,
      });
      const report = await retriever.indexDirectory(guidelines);
      expect(report.dimensions).toBe(64);
      expect(report.indexed).toEqual(['palette/colours.md', 'voice.md']);
      const stored = await db.query<{ n: string; dims: number }>(
        `SELECT count(*) AS n, min(vector_dims(embedding)) AS dims FROM brand_guideline_chunks`,
      );
      expect(Number(stored.rows[0]?.n)).toBe(report.chunks);
      expect(stored.rows[0]?.dims).toBe(64);
      const hits = await retriever.search('harbour blue', 3);
      expect(hits).toHaveLength(3);
      for (const hit of hits) {
        expect(['palette/colours.md', 'voice.md']).toContain(hit.source);
        expect(Number.isFinite(hit.similarity)).toBe(true);
      }
      const again = await retriever.indexDirectory(guidelines);
      expect(again.unchanged).toEqual(['palette/colours.md', 'voice.md']);
    } finally {
      await llm.close();
    }
  });
});
