// Database opening for every service: PostgreSQL through `pg` when DATABASE_URL is set, otherwise an embedded
// PGlite (with pgvector) owned by this process and served to `pg` over a 127.0.0.1 socket; the `Queryable`
// seam, transactions, the data-directory owner lock and the numbered-migration runner.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';
import { AppError, errorMessage } from './errors.js';
import { silentLogger, type Logger } from './log.js';

/** The minimal query surface repositories take, so the same code runs on a pool, a transaction or PGlite. */
export interface Queryable {
  query<R = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

/** An open database: a `pg` pool plus what callers need to know about the server behind it. */
export interface Database extends Queryable {
  /** `postgres` for a server reached through DATABASE_URL, `pglite` for the embedded database this process owns. */
  readonly kind: 'postgres' | 'pglite';
  /** Whether the server can provide the pgvector `vector` type (installed or installable). */
  readonly hasVector: boolean;
  /** The pool every query goes through. Do not `end()` it; call {@link Database.close}. */
  readonly pool: pg.Pool;
  /**
   * Runs `fn` inside BEGIN … COMMIT on one pooled connection (ROLLBACK when it throws). Inside `fn` use only
   * `tx`: on PGlite every connection shares one backend and an open transaction holds the others back, so a
   * query on another connection while the transaction is open waits forever.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Ends the pool; for PGlite also stops the socket server, flushes and closes the data directory and frees its lock. */
  close(): Promise<void>;
  /** A `postgres://` URL other clients in this process or on this host can use to reach the same database. */
  readonly connectionString: string;
}

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** PostgreSQL URL; when set the embedded database is not used. */
  readonly databaseUrl?: string;
  /** Embedded PGlite data directory (created when missing); required when `databaseUrl` is unset. */
  readonly dataDir?: string;
  /** Service name (`hub`, `marketing`…), used in logs and in the data-directory lock. */
  readonly service: string;
  readonly log?: Logger;
  /** PGlite only: load the pgvector extension (a queue-only instance does not need it). @defaultValue true */
  readonly withVector?: boolean;
  /** Connections in this database's own pool. @defaultValue 8 */
  readonly poolMax?: number;
  /**
   * PGlite only: connections the socket server accepts, across every pool of every client (this pool, a
   * PGVectorStore's pinned client, other processes going through the socket). The pglite-socket default is 1,
   * which fails the second client with "Too many connections". @defaultValue 64
   */
  readonly maxConnections?: number;
}

const DEFAULT_POOL_MAX = 8;
const DEFAULT_MAX_CONNECTIONS = 64;

const SELECT_VECTOR_AVAILABLE = `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS available`;

/**
 * Opens the database of one service. With `databaseUrl` it is a `pg.Pool` on that PostgreSQL server. Without
 * it, the embedded PGlite database in `dataDir` is opened with pgvector, served on 127.0.0.1 (ephemeral port)
 * through pglite-socket and reached with the same `pg` code. PGlite has no data-directory lock of its own, so
 * a `<dataDir>.lock` file records the owning process; opening a directory a live process owns throws
 * `CONFLICT` whose details carry `ownerPid` and `ownerConnectionString` (go through the owner instead).
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const log = (options.log ?? silentLogger()).child({ module: 'db', service: options.service });
  if (options.databaseUrl !== undefined && options.databaseUrl !== '') {
    return openPostgres(options.databaseUrl, options.poolMax ?? DEFAULT_POOL_MAX, log);
  }
  if (options.dataDir === undefined || options.dataDir === '') {
    throw new AppError('CONFIG_INVALID', 'openDatabase needs a databaseUrl (DATABASE_URL) or a dataDir', {
      details: { service: options.service },
    });
  }
  return openPglite({
    dataDir: resolve(options.dataDir),
    service: options.service,
    poolMax: options.poolMax ?? DEFAULT_POOL_MAX,
    maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    withVector: options.withVector ?? true,
    log,
  });
}

async function openPostgres(databaseUrl: string, poolMax: number, log: Logger): Promise<Database> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolMax });
  pool.on('error', (error) => log.warn({ err: error }, 'idle PostgreSQL connection failed'));
  let hasVector: boolean;
  try {
    const result = await pool.query<{ available: boolean }>(SELECT_VECTOR_AVAILABLE);
    hasVector = result.rows[0]?.available === true;
  } catch (error) {
    await pool.end();
    throw new AppError(
      'UPSTREAM_ERROR',
      `cannot reach PostgreSQL at ${redactUrl(databaseUrl)}: ${errorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
  log.info({ url: redactUrl(databaseUrl), hasVector }, 'database opened');
  return createDatabase({
    kind: 'postgres',
    hasVector,
    pool,
    connectionString: databaseUrl,
    onClose: async () => {},
  });
}

interface PgliteOpenPlan {
  readonly dataDir: string;
  readonly service: string;
  readonly poolMax: number;
  readonly maxConnections: number;
  readonly withVector: boolean;
  readonly log: Logger;
}

async function openPglite(plan: PgliteOpenPlan): Promise<Database> {
  await mkdir(dirname(plan.dataDir), { recursive: true });
  const lock = await acquireDataDirLock(plan.dataDir, plan.service);
  let pglite: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    const started = Date.now();
    pglite = await PGlite.create({
      dataDir: plan.dataDir,
      ...(plan.withVector ? { extensions: { vector } } : {}),
    });
    server = new PGLiteSocketServer({
      db: pglite,
      host: '127.0.0.1',
      port: 0,
      maxConnections: plan.maxConnections,
    });
    await server.start();
    const connectionString = `postgres://postgres@${server.getServerConn()}/postgres?sslmode=disable`;
    await lock.recordConnectionString(connectionString);
    const pool = new pg.Pool({ connectionString, max: plan.poolMax });
    pool.on('error', (error) => plan.log.warn({ err: error }, 'idle PGlite socket connection failed'));
    plan.log.info(
      { dataDir: plan.dataDir, connection: server.getServerConn(), ms: Date.now() - started },
      'embedded database opened',
    );
    const openedPglite = pglite;
    const openedServer = server;
    return createDatabase({
      kind: 'pglite',
      hasVector: plan.withVector,
      pool,
      connectionString,
      onClose: async () => {
        await openedServer.stop();
        await openedPglite.close();
        await lock.release();
      },
    });
  } catch (error) {
    await server?.stop().catch(() => undefined);
    await pglite?.close().catch(() => undefined);
    await lock.release();
    throw error;
  }
}

interface DatabaseParts {
  readonly kind: Database['kind'];
  readonly hasVector: boolean;
  readonly pool: pg.Pool;
  readonly connectionString: string;
  readonly onClose: () => Promise<void>;
}

function createDatabase(parts: DatabaseParts): Database {
  const { pool } = parts;
  let closing: Promise<void> | undefined;
  return {
    kind: parts.kind,
    hasVector: parts.hasVector,
    pool,
    connectionString: parts.connectionString,
    query: (text, params) => queryOn(pool, text, params),
    transaction: (fn) => runTransaction(pool, fn),
    close: () => {
      closing ??= (async () => {
        await pool.end();
        await parts.onClose();
      })();
      return closing;
    },
  };
}

/** Runs one query on a pool or client; rows are typed by the caller, as with `pg`'s own generic. */
function queryOn<R>(
  target: pg.Pool | pg.PoolClient,
  text: string,
  params: readonly unknown[] | undefined,
): Promise<{ rows: R[]; rowCount: number | null }> {
  return target.query(
    text,
    params === undefined ? undefined : [...params],
  ) as Promise<pg.QueryResult> as Promise<{
    rows: R[];
    rowCount: number | null;
  }>;
}

async function runTransaction<T>(pool: pg.Pool, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: unknown;
  try {
    await client.query('BEGIN');
    const tx: Queryable = {
      query: (text, params) => queryOn(client, text, params),
    };
    const result = await fn(tx);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError;
    }
    throw error;
  } finally {
    // A connection whose ROLLBACK failed is in an unknown state: destroy it instead of returning it to the pool.
    client.release(broken instanceof Error ? broken : undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Data-directory owner lock (PGlite has none: a second process opening the same directory corrupts it).

/** Who owns an embedded data directory, as recorded in its `<dataDir>.lock` file. */
export interface DataDirOwner {
  readonly pid: number;
  readonly hostname: string;
  readonly service: string;
  readonly startedAt: string;
  /** Set once the owner's socket server listens: other processes reach the same database through it. */
  readonly connectionString?: string;
}

interface DataDirLock {
  recordConnectionString(connectionString: string): Promise<void>;
  release(): Promise<void>;
}

const locksHeldByThisProcess = new Set<string>();

/** The lock file that guards an embedded data directory. */
export function dataDirLockPath(dataDir: string): string {
  return `${resolve(dataDir)}.lock`;
}

/**
 * Reads the owner of `dataDir` when a live process holds it; `undefined` when the directory is free or its
 * lock is stale (the recorded process is gone).
 */
export async function readDataDirOwner(dataDir: string): Promise<DataDirOwner | undefined> {
  const lockPath = dataDirLockPath(dataDir);
  const owner = await readLockFile(lockPath);
  return owner !== undefined && isOwnerAlive(owner, lockPath) ? owner : undefined;
}

async function readLockFile(lockPath: string): Promise<DataDirOwner | undefined> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<DataDirOwner>;
    if (typeof parsed.pid !== 'number' || typeof parsed.hostname !== 'string') return undefined;
    return {
      pid: parsed.pid,
      hostname: parsed.hostname,
      service: String(parsed.service ?? ''),
      startedAt: String(parsed.startedAt ?? ''),
      ...(typeof parsed.connectionString === 'string' ? { connectionString: parsed.connectionString } : {}),
    };
  } catch {
    // A torn or foreign file: treat like a stale lock so a crash mid-write never blocks the directory forever.
    return undefined;
  }
}

function isOwnerAlive(owner: DataDirOwner, lockPath: string): boolean {
  if (owner.hostname !== hostname()) return true; // Another host (shared volume): we cannot tell, so respect it.
  if (owner.pid === process.pid) return locksHeldByThisProcess.has(lockPath);
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function acquireDataDirLock(dataDir: string, service: string): Promise<DataDirLock> {
  const lockPath = dataDirLockPath(dataDir);
  const owner: DataDirOwner = {
    pid: process.pid,
    hostname: hostname(),
    service,
    startedAt: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.writeFile(JSON.stringify(owner));
      await handle.close();
      locksHeldByThisProcess.add(lockPath);
      let released = false;
      return {
        recordConnectionString: async (connectionString) => {
          await writeFile(lockPath, JSON.stringify({ ...owner, connectionString }));
        },
        release: async () => {
          if (released) return;
          released = true;
          locksHeldByThisProcess.delete(lockPath);
          await unlink(lockPath).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const current = await readLockFile(lockPath);
    if (current !== undefined && isOwnerAlive(current, lockPath)) {
      throw new AppError(
        'CONFLICT',
        `the embedded database ${dataDir} is in use by process ${current.pid} (${current.service || 'unknown service'}` +
          ` on ${current.hostname}); stop it or connect through it` +
          (current.connectionString === undefined ? '' : ` at ${current.connectionString}`) +
          `. If that process is gone, delete ${lockPath}.`,
        {
          details: {
            dataDir,
            lockFile: lockPath,
            ownerPid: current.pid,
            ownerService: current.service,
            ownerHostname: current.hostname,
            ...(current.connectionString === undefined
              ? {}
              : { ownerConnectionString: current.connectionString }),
          },
        },
      );
    }
    // Stale lock (owner gone): remove it and try again; `wx` keeps two racing openers from both winning.
    await unlink(lockPath).catch(() => undefined);
  }
  throw new AppError('CONFLICT', `could not take the lock ${lockPath}: another process keeps replacing it`, {
    details: { dataDir, lockFile: lockPath },
  });
}

// ---------------------------------------------------------------------------------------------------------
// Migrations: numbered `.sql` files applied in order, each in its own transaction under an advisory lock.

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /**
   * Skip the migrations that need pgvector (and report them in `skipped`), so plain PostgreSQL without the
   * extension gets every relational table. They apply on a later run once the server has pgvector.
   */
  readonly skipVector?: boolean;
  /** Ledger scope, so several services can share one database. @defaultValue the directory's parent folder name */
  readonly scope?: string;
}

/** What one {@link migrate} call did. */
export interface MigrateResult {
  /** File names applied by this call, in order. */
  readonly applied: string[];
  /** Vector migrations left out because of `skipVector`. */
  readonly skipped: string[];
}

/** One numbered migration file. */
export interface MigrationFile {
  /** The number prefix as written (`001`). */
  readonly version: string;
  /** The file name (`001_campaigns.sql`). */
  readonly name: string;
  readonly sql: string;
  /** SHA-256 of the file, recorded so an edited applied migration is detected. */
  readonly checksum: string;
  /** Whether the file needs the pgvector extension. */
  readonly needsVector: boolean;
}

/** The advisory-lock key every migration transaction takes (same key for all scopes: migrations are rare). */
export const MIGRATION_LOCK_KEY = 7_242_010_001;

const MIGRATION_FILE_PATTERN = /^(\d{3,})_[a-z0-9_]+\.sql$/;
const VECTOR_MARKERS = [
  /^\s*--\s*requires:\s*vector\b/im,
  /\bcreate\s+extension\s+(if\s+not\s+exists\s+)?"?vector"?/i,
  /\bvector\s*\(\s*\d+\s*\)/i,
  /\busing\s+(hnsw|ivfflat)\b/i,
];

const CREATE_LEDGER = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  scope text NOT NULL,
  version text NOT NULL,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, version)
)`;
const TAKE_MIGRATION_LOCK = `SELECT pg_advisory_xact_lock($1::bigint)`;
const SELECT_APPLIED = `SELECT version, name, checksum FROM schema_migrations WHERE scope = $1`;
const SELECT_APPLIED_VERSION = `SELECT checksum FROM schema_migrations WHERE scope = $1 AND version = $2`;
const INSERT_APPLIED = `INSERT INTO schema_migrations (scope, version, name, checksum) VALUES ($1, $2, $3, $4)`;

/** Reads the numbered migration files of `migrationsDir` in order; rejects duplicate numbers and odd names. */
async function readMigrations(migrationsDir: string): Promise<MigrationFile[]> {
  const entries = (await readdir(migrationsDir)).filter((name) => name.endsWith('.sql')).sort();
  const seen = new Map<string, string>();
  const files: MigrationFile[] = [];
  for (const name of entries) {
    const match = MIGRATION_FILE_PATTERN.exec(name);
    if (match === null) {
      throw new AppError(
        'CONFIG_INVALID',
        `migration ${name} in ${migrationsDir} is not named NNN_snake_case.sql`,
        {
          details: { file: name },
        },
      );
    }
    const version = match[1]!;
    const previous = seen.get(version);
    if (previous !== undefined) {
      throw new AppError('CONFIG_INVALID', `migrations ${previous} and ${name} share the number ${version}`, {
        details: { files: [previous, name] },
      });
    }
    seen.set(version, name);
    const sql = await readFile(join(migrationsDir, name), 'utf8');
    files.push({
      version,
      name,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
      needsVector: VECTOR_MARKERS.some((marker) => marker.test(sql)),
    });
  }
  return files;
}

/**
 * Applies the numbered `.sql` files of `migrationsDir` that are not yet recorded in `schema_migrations`.
 * Each file runs in its own transaction that first takes `pg_advisory_xact_lock(MIGRATION_LOCK_KEY)` and then
 * re-checks the ledger, so running twice is a no-op and concurrent callers (other processes, other replicas)
 * apply each file exactly once. On PGlite every socket connection shares one backend, where advisory locks
 * are re-entrant; there the serialisation comes from PGlite running one transaction at a time and the
 * re-check inside it. Throws `PGVECTOR_MISSING` before applying anything when a pending file needs pgvector
 * and the server lacks it (unless `skipVector`), and `CONFLICT` when an applied file was edited afterwards.
 */
export async function migrate(
  db: Database,
  migrationsDir: string,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const scope = options.scope ?? basename(dirname(resolve(migrationsDir)));
  const files = await readMigrations(migrationsDir);
  await db.transaction(async (tx) => {
    await tx.query(TAKE_MIGRATION_LOCK, [MIGRATION_LOCK_KEY]);
    await tx.query(CREATE_LEDGER);
  });
  const appliedRows = await db.query<{ version: string; name: string; checksum: string }>(SELECT_APPLIED, [
    scope,
  ]);
  const applied = new Map(appliedRows.rows.map((row) => [row.version, row]));
  for (const file of files) {
    const record = applied.get(file.version);
    if (record !== undefined) assertUnchanged(file, record.checksum);
  }
  const pending = files.filter((file) => !applied.has(file.version));
  const skipped = options.skipVector === true ? pending.filter((file) => file.needsVector) : [];
  const toApply = pending.filter((file) => !skipped.includes(file));
  const needingVector = toApply.filter((file) => file.needsVector);
  if (needingVector.length > 0 && !db.hasVector) throw pgvectorMissing(db, needingVector);

  const appliedNow: string[] = [];
  for (const file of toApply) {
    const didApply = await db.transaction(async (tx) => {
      await tx.query(TAKE_MIGRATION_LOCK, [MIGRATION_LOCK_KEY]);
      const existing = await tx.query<{ checksum: string }>(SELECT_APPLIED_VERSION, [scope, file.version]);
      const already = existing.rows[0];
      if (already !== undefined) {
        assertUnchanged(file, already.checksum);
        return false;
      }
      try {
        await tx.query(file.sql);
      } catch (error) {
        throw migrationFailed(db, file, error);
      }
      await tx.query(INSERT_APPLIED, [scope, file.version, file.name, file.checksum]);
      return true;
    });
    if (didApply) appliedNow.push(file.name);
  }
  return { applied: appliedNow, skipped: skipped.map((file) => file.name) };
}

function assertUnchanged(file: MigrationFile, recordedChecksum: string): void {
  if (recordedChecksum !== file.checksum) {
    throw new AppError(
      'CONFLICT',
      `migration ${file.name} was changed after it was applied; add a new numbered migration instead`,
      { details: { file: file.name, recordedChecksum, fileChecksum: file.checksum } },
    );
  }
}

const PGVECTOR_HOW_TO =
  'Install pgvector on that server (the pgvector/pgvector Docker image; the postgresql-<major>-pgvector ' +
  'package where your distribution has it; or build it from source, see https://github.com/pgvector/pgvector#installation), ' +
  'or unset DATABASE_URL to use the embedded PGlite database, which includes pgvector, ' +
  'or apply everything but vectors with migrate(db, dir, { skipVector: true }) (`--skip-vector` on the CLI).';

function pgvectorMissing(db: Database, files: readonly MigrationFile[]): AppError {
  const names = files.map((file) => file.name);
  return new AppError(
    'PGVECTOR_MISSING',
    `migration ${names.join(', ')} needs the pgvector extension (type "vector"), which this PostgreSQL server ` +
      `does not provide. ${PGVECTOR_HOW_TO}`,
    { details: { files: names, databaseKind: db.kind } },
  );
}

function migrationFailed(db: Database, file: MigrationFile, error: unknown): AppError {
  const text = errorMessage(error);
  if (file.needsVector && /extension "vector" is not available|type "vector" does not exist/i.test(text)) {
    return pgvectorMissing(db, [file]);
  }
  return new AppError('INTERNAL', `migration ${file.name} failed: ${text}`, {
    cause: error,
    details: { file: file.name },
  });
}

/** The URL with its password replaced, for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable database URL)';
  }
}
