// shared/db.ts on both engines: migrations (twice, concurrently, without vectors on PostgreSQL 15), transactions,
// the embedded data-directory lock, and data surviving a PGlite restart.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataDirLockPath, migrate, openDatabase, readDataDirOwner, type Database } from '../../shared/db.js';
import { isAppError } from '../../shared/errors.js';
import { REPO_ROOT } from '../helpers/shared_data.js';
import { createScratchDatabase, postgresReachable, type ScratchDatabase } from '../helpers/postgres.js';

const MARKETING_MIGRATIONS = join(REPO_ROOT, 'spoke_marketing', 'migrations');
const HUB_MIGRATIONS = join(REPO_ROOT, 'hub', 'migrations');

const RELATIONAL_MIGRATIONS = [
  '001_campaigns.sql',
  '002_personas_audiences.sql',
  '003_creatives_experiments.sql',
  '004_marketing_metrics.sql',
  '005_leads.sql',
  '006_conversion_uploads.sql',
  '007_job_runs.sql',
  '009_metrics_margin.sql',
];
const VECTOR_MIGRATION = '008_brand_guideline_vectors.sql';
const HUB_MIGRATION_FILES = [
  '001_tasks.sql',
  '002_attestation_audit.sql',
  '003_conversations.sql',
  '004_task_store.sql',
  '005_drop_open_trace_index.sql',
];

async function tableNames(db: Database): Promise<string[]> {
  const result = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`,
  );
  return result.rows.map((row) => row.table_name);
}

describe.skipIf(!(await postgresReachable('PostgreSQL tests')))(
  'migrations on the real PostgreSQL 15 (no pgvector)',
  () => {
    let scratch: ScratchDatabase;
    let db: Database;

    beforeAll(async () => {
      scratch = await createScratchDatabase('agenthub_test');
      db = await openDatabase({ databaseUrl: scratch.url, service: 'test' });
    });
    afterAll(async () => {
      await db?.close();
      await scratch?.drop();
    });

    it('reports that the server has no pgvector', () => {
      expect(db.kind).toBe('postgres');
      expect(db.hasVector).toBe(false);
    });

    it('refuses a vector migration with PGVECTOR_MISSING, saying how to get pgvector, before applying anything', async () => {
      const error = await migrate(db, MARKETING_MIGRATIONS).catch((caught: unknown) => caught);
      expect(isAppError(error, 'PGVECTOR_MISSING')).toBe(true);
      expect((error as Error).message).toMatch(/008_brand_guideline_vectors\.sql/);
      expect((error as Error).message).toMatch(/pgvector\/pgvector/);
      expect((error as Error).message).toMatch(/skipVector/);
      expect(await tableNames(db)).toEqual(['schema_migrations']);
    });

    it('applies everything but vectors with skipVector, and a second run applies nothing', async () => {
      const first = await migrate(db, MARKETING_MIGRATIONS, { skipVector: true });
      expect(first.applied).toEqual(RELATIONAL_MIGRATIONS);
      expect(first.skipped).toEqual([VECTOR_MIGRATION]);
      const second = await migrate(db, MARKETING_MIGRATIONS, { skipVector: true });
      expect(second).toEqual({ applied: [], skipped: [VECTOR_MIGRATION] });
      const tables = await tableNames(db);
      for (const table of ['campaigns', 'marketing_metrics', 'leads', 'conversion_uploads', 'job_runs']) {
        expect(tables).toContain(table);
      }
      expect(tables).not.toContain('brand_guideline_chunks');
    });

    it('keeps separate ledgers per scope, so the hub and a spoke can share one database', async () => {
      const hub = await migrate(db, HUB_MIGRATIONS);
      expect(hub.applied).toEqual(HUB_MIGRATION_FILES);
      const ledger = await db.query<{ scope: string; n: string }>(
        `SELECT scope, count(*) AS n FROM schema_migrations GROUP BY scope ORDER BY scope`,
      );
      expect(ledger.rows).toEqual([
        { scope: 'hub', n: String(HUB_MIGRATION_FILES.length) },
        { scope: 'spoke_marketing', n: String(RELATIONAL_MIGRATIONS.length) },
      ]);
    });

    it('applies each migration exactly once when two processes migrate at the same time', async () => {
      const other = await createScratchDatabase('agenthub_test');
      const first = await openDatabase({ databaseUrl: other.url, service: 'a' });
      const second = await openDatabase({ databaseUrl: other.url, service: 'b' });
      try {
        const [a, b] = await Promise.all([
          migrate(first, MARKETING_MIGRATIONS, { skipVector: true }),
          migrate(second, MARKETING_MIGRATIONS, { skipVector: true }),
        ]);
        expect([...a.applied, ...b.applied].sort()).toEqual(RELATIONAL_MIGRATIONS);
        const count = await first.query<{ n: string }>(`SELECT count(*) AS n FROM schema_migrations`);
        expect(count.rows[0]?.n).toBe(String(RELATIONAL_MIGRATIONS.length));
      } finally {
        await first.close();
        await second.close();
        await other.drop();
      }
    });

    it('rolls a failed transaction back', async () => {
      const attempt = db.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO campaigns (id, name, channel) VALUES ('c-rollback', 'Rollback', 'search')`,
        );
        throw new Error('boom');
      });
      await expect(attempt).rejects.toThrow('boom');
      const rows = await db.query(`SELECT id FROM campaigns WHERE id = 'c-rollback'`);
      expect(rows.rows).toHaveLength(0);
    });
  },
);

describe('embedded PGlite database', () => {
  let root: string;
  let dataDir: string;
  let db: Database;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agenthub-db-'));
    dataDir = join(root, 'data', 'marketing');
    db = await openDatabase({ dataDir, service: 'marketing' });
  });
  afterAll(async () => {
    await db?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('serves PGlite with pgvector to pg over a 127.0.0.1 socket', async () => {
    expect(db.kind).toBe('pglite');
    expect(db.hasVector).toBe(true);
    expect(db.connectionString).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\//);
    const version = await db.query<{ server_version: string }>('SHOW server_version');
    expect(Number.parseInt(version.rows[0]!.server_version, 10)).toBeGreaterThanOrEqual(15);
  });

  it('applies every migration including vectors, and a second run applies nothing', async () => {
    const first = await migrate(db, MARKETING_MIGRATIONS);
    expect(first.applied).toEqual([...RELATIONAL_MIGRATIONS, VECTOR_MIGRATION].sort());
    expect((await migrate(db, MARKETING_MIGRATIONS)).applied).toEqual([]);
    const extension = await db.query<{ extversion: string }>(
      `SELECT extversion FROM pg_extension WHERE extname = 'vector'`,
    );
    expect(extension.rows[0]?.extversion).toMatch(/^0\.\d+\.\d+$/);
  });

  it('applies each migration once when two migrate calls race on one PGlite', async () => {
    const [a, b] = await Promise.all([migrate(db, HUB_MIGRATIONS), migrate(db, HUB_MIGRATIONS)]);
    expect([...a.applied, ...b.applied].sort()).toEqual(HUB_MIGRATION_FILES);
  });

  it('refuses a migration that was edited after it was applied', async () => {
    const dir = join(root, 'edited', 'migrations');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '001_probe.sql'), 'CREATE TABLE probe (id integer);');
    expect((await migrate(db, dir)).applied).toEqual(['001_probe.sql']);
    await writeFile(join(dir, '001_probe.sql'), 'CREATE TABLE probe (id bigint);');
    const error = await migrate(db, dir).catch((caught: unknown) => caught);
    expect(isAppError(error, 'CONFLICT')).toBe(true);
  });

  it('refuses to open a data directory another live owner holds, naming how to reach it', async () => {
    const error = await openDatabase({ dataDir, service: 'cli' }).catch((caught: unknown) => caught);
    expect(isAppError(error, 'CONFLICT')).toBe(true);
    expect((error as { details: Record<string, unknown> }).details.ownerPid).toBe(process.pid);
    expect((error as { details: Record<string, unknown> }).details.ownerConnectionString).toBe(
      db.connectionString,
    );
    expect((await readDataDirOwner(dataDir))?.connectionString).toBe(db.connectionString);
  });

  it('keeps rows across close and reopen of the data directory', async () => {
    await db.query(
      `INSERT INTO marketing_metrics (campaign, channel, date, spend_minor, clicks) VALUES ('persist', 'search', '2024-10-01', 12345, 7)`,
    );
    await db.close();
    expect(await readDataDirOwner(dataDir)).toBeUndefined();
    db = await openDatabase({ dataDir, service: 'marketing' });
    const rows = await db.query<{ spend_minor: string; clicks: string }>(
      `SELECT spend_minor, clicks FROM marketing_metrics WHERE campaign = 'persist'`,
    );
    expect(rows.rows).toEqual([{ spend_minor: '12345', clicks: '7' }]);
    expect((await migrate(db, MARKETING_MIGRATIONS)).applied).toEqual([]);
  });

  it('takes over a stale lock left by a process that died', async () => {
    const otherDir = join(root, 'data', 'stale');
    const exited = spawnSync(process.execPath, ['-e', 'process.exit(0)']);
    await writeFile(
      dataDirLockPath(otherDir),
      JSON.stringify({
        pid: exited.pid,
        hostname: hostname(),
        service: 'gone',
        startedAt: new Date(0).toISOString(),
      }),
    );
    const reopened = await openDatabase({ dataDir: otherDir, service: 'marketing' });
    try {
      expect((await readDataDirOwner(otherDir))?.pid).toBe(process.pid);
    } finally {
      await reopened.close();
    }
  });
});
