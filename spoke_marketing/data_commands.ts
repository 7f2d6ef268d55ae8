// CLI commands over the marketing spoke's data: `agenthub import metrics|leads FILE`, `agenthub import
// guidelines DIR` and `agenthub jobs`. They open the embedded database under the state directory, or go through
// the running spoke's socket when that process owns it (an embedded data directory has one owner).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CliCommand, CliIo } from '../shared/cli/io.js';
import { migrate, openDatabase, readDataDirOwner, type Database } from '../shared/db.js';
import { MARKETING_QUEUES } from '../shared/job_contracts.js';
import { createJobRunner, type JobRunInfo, type JobRunner, type ScheduleInfo } from '../shared/jobs.js';
import { resolveStateDir } from '../shared/layout.js';
import { failure, openThroughOwner, parseCommandArgs, usageError } from './cli_support.js';
import { importFile, type ImportKind } from './importer.js';
import { createGuidelineRetriever, LlmEmbeddings } from './retrieval.js';

/** The marketing spoke's embedded database directory under a state directory. */
export function marketingDataDir(stateDir: string): string {
  return join(stateDir, 'data', 'marketing');
}

/** The embedded job-queue database directory under a state directory (used only when neither URL is set). */
export function jobsDataDir(stateDir: string): string {
  return join(stateDir, 'data', 'jobs');
}

/** The marketing spoke's migrations. */
export const MARKETING_MIGRATIONS_DIR = resolve(import.meta.dirname, 'migrations');

const IMPORT_USAGE = [
  'usage: agenthub import metrics FILE | import leads FILE | import guidelines DIR',
  '         [--state-dir DIR] [--json] [--model FILE|hf:URI]',
  '  metrics/leads: CSV, JSON array or JSON Lines; every row is validated and the file is imported in one',
  '  transaction, so one bad row imports nothing (the error names its line and field).',
  '  metrics columns: date, campaign, channel, spend (or spend_minor), impressions, clicks, leads, conversions,',
  '    revenue (or revenue_minor), currency, new_customers, source',
  '  leads columns: created_at, external_id, email, phone, status, campaign, channel, utm_*, gclid, gbraid,',
  '    wbraid, fbclid, ttclid, msclkid, landing_url, referrer, first_/last_touch_channel, first_/last_touch_at,',
  '    converted_at, revenue, currency, attr_* (clustering attributes)',
  '  guidelines: embeds the .md/.txt files of DIR with the spoke model (--model or MODEL_PATH) into pgvector.',
  '  Database: DATABASE_URL, else <state>/data/marketing (through the running spoke when it owns it).',
].join('\n');

const JOBS_USAGE = [
  'usage: agenthub jobs [--state-dir DIR] [--json] [--limit N]',
  '  Schedules, last runs and failures of the marketing jobs (REDIS_URL, else DATABASE_URL, else the',
  '  embedded queue under <state>/data/jobs, reached through the running spoke when it owns it).',
].join('\n');

/**
 * Opens the marketing database for a command: DATABASE_URL when set; else the embedded directory, or — when
 * a live process (the spoke) owns it — that process's socket.
 */
async function openMarketingDatabase(io: CliIo, stateDir: string): Promise<Database> {
  const databaseUrl = io.env.DATABASE_URL;
  if (databaseUrl !== undefined && databaseUrl !== '') return openDatabase({ databaseUrl, service: 'cli' });
  const dataDir = marketingDataDir(stateDir);
  return openThroughOwner(io, dataDir, (owner) =>
    openDatabase(owner === undefined ? { dataDir, service: 'cli' } : { databaseUrl: owner, service: 'cli' }),
  );
}

/** `agenthub import metrics|leads FILE` and `agenthub import guidelines DIR` (argv: the words after `import`). */
export const importCommand: CliCommand = async (io) => {
  const parsed = parseCommandArgs(
    io,
    IMPORT_USAGE,
    { 'state-dir': { type: 'string' }, json: { type: 'boolean' }, model: { type: 'string' } },
    true,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [kind, target, ...extra] = positionals;
  if (kind !== 'metrics' && kind !== 'leads' && kind !== 'guidelines') {
    return usageError(io, IMPORT_USAGE, `expected metrics, leads or guidelines, got ${kind ?? 'nothing'}`);
  }
  if (target === undefined)
    return usageError(io, IMPORT_USAGE, `import ${kind} needs a ${kind === 'guidelines' ? 'DIR' : 'FILE'}`);
  if (extra.length > 0) return usageError(io, IMPORT_USAGE, `unexpected arguments: ${extra.join(' ')}`);
  const modelSetting = values.model ?? io.env.MODEL_PATH;
  if (kind === 'guidelines' && (modelSetting === undefined || modelSetting === '')) {
    return usageError(
      io,
      IMPORT_USAGE,
      'import guidelines embeds with the spoke model: pass --model FILE or set MODEL_PATH',
    );
  }

  const stateDir = resolveStateDir(io.cwd, values['state-dir'], io.env.AGENTHUB_STATE_DIR);
  const path = resolve(io.cwd, target);
  let db: Database | undefined;
  try {
    db = await openMarketingDatabase(io, stateDir);
    await migrate(db, MARKETING_MIGRATIONS_DIR, { skipVector: kind !== 'guidelines' && !db.hasVector });
    if (kind === 'guidelines') {
      const { openLlm } = await import('../shared/llm.js');
      const model = modelSetting!.startsWith('hf:') ? modelSetting! : resolve(io.cwd, modelSetting!);
      const llm = await openLlm({ model, cacheDir: join(stateDir, 'models') });
      try {
        const retriever = createGuidelineRetriever({
          db,
          embeddings: new LlmEmbeddings(llm, { signal: io.signal }),
          modelName: llm.modelName,
        });
        const report = await retriever.indexDirectory(path, { signal: io.signal });
        io.stdout(
          values.json === true
            ? `${JSON.stringify({ kind, source: target, ...report })}\n`
            : `indexed ${report.indexed.length} file(s) into ${report.chunks} chunk(s) of ${report.dimensions} dimensions; ` +
                `${report.unchanged.length} unchanged, ${report.removed.length} removed\n`,
        );
      } finally {
        await llm.close();
      }
      return 0;
    }
    const result = await importFile(db, kind satisfies ImportKind, path);
    io.stdout(
      values.json === true
        ? `${JSON.stringify(result)}\n`
        : `imported ${result.rows} ${kind} row(s) from ${result.source}\n`,
    );
    return 0;
  } catch (error) {
    return failure(io, error);
  } finally {
    await db?.close();
  }
};

/** Where the job queue is, from the environment and the state directory; undefined when nothing exists yet. */
async function openJobRunner(io: CliIo, stateDir: string): Promise<JobRunner | undefined> {
  const redisUrl = io.env.REDIS_URL;
  if (redisUrl !== undefined && redisUrl !== '')
    return createJobRunner({ redisUrl, queues: MARKETING_QUEUES });
  const databaseUrl = io.env.DATABASE_URL;
  if (databaseUrl !== undefined && databaseUrl !== '')
    return createJobRunner({ databaseUrl, queues: MARKETING_QUEUES });
  const dataDir = jobsDataDir(stateDir);
  const owner = await readDataDirOwner(dataDir);
  if (owner?.connectionString !== undefined) {
    io.stderr(`note: ${dataDir} is owned by process ${owner.pid}; going through it\n`);
    return createJobRunner({ databaseUrl: owner.connectionString, queues: MARKETING_QUEUES });
  }
  if (!existsSync(dataDir)) return undefined;
  return createJobRunner({ dataDir, queues: MARKETING_QUEUES });
}

function describeRepeat(schedule: ScheduleInfo): string {
  if (schedule.every !== null) return `every ${schedule.every / 1000}s`;
  return `cron '${schedule.cron ?? ''}'${schedule.tz === null ? '' : ` ${schedule.tz}`}`;
}

function describeRun(run: JobRunInfo): string {
  const when = run.finishedAt ?? run.createdAt;
  const reason = run.failedReason === null ? '' : `: ${run.failedReason}`;
  return `  ${when}  ${run.queue}  ${run.name}  ${run.state} after ${run.attemptsMade} attempt(s)${reason}`;
}

/** `agenthub jobs`: the marketing schedules, the latest runs and the failures kept for inspection. */
export const jobsCommand: CliCommand = async (io) => {
  const parsed = parseCommandArgs(io, JOBS_USAGE, {
    'state-dir': { type: 'string' },
    json: { type: 'boolean' },
    limit: { type: 'string' },
  });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const limit = values.limit === undefined ? 10 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    return usageError(io, JOBS_USAGE, `--limit must be a whole number from 1 to 1000, got ${values.limit}`);
  }
  const stateDir = resolveStateDir(io.cwd, values['state-dir'], io.env.AGENTHUB_STATE_DIR);
  let runner: JobRunner | undefined;
  try {
    runner = await openJobRunner(io, stateDir);
    const report =
      runner === undefined
        ? { backend: null, schedules: [], recentRuns: [], failures: [] }
        : {
            backend: runner.backend,
            schedules: await runner.listSchedules(),
            recentRuns: await runner.recentRuns(limit),
            failures: await runner.failures(limit),
          };
    if (values.json === true) {
      io.stdout(`${JSON.stringify(report)}\n`);
      return 0;
    }
    if (runner === undefined) {
      io.stdout(
        `no job queue yet under ${jobsDataDir(stateDir)} (it is created when the marketing spoke starts)\n`,
      );
      return 0;
    }
    const lines = [`Job queue: ${report.backend}`, 'Schedules:'];
    if (report.schedules.length === 0) lines.push('  none');
    for (const schedule of report.schedules) {
      lines.push(
        `  ${schedule.queue}  ${schedule.id}  ${describeRepeat(schedule)}  next ${schedule.nextRunAt ?? 'unknown'}`,
      );
    }
    lines.push('Last runs:');
    if (report.recentRuns.length === 0) lines.push('  none');
    lines.push(...report.recentRuns.map(describeRun));
    lines.push('Failures:');
    if (report.failures.length === 0) lines.push('  none');
    lines.push(...report.failures.map(describeRun));
    io.stdout(`${lines.join('\n')}\n`);
    return 0;
  } catch (error) {
    return failure(io, error);
  } finally {
    await runner?.close({ graceMs: 1000 });
  }
};
