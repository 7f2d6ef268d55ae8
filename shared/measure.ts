// Measurements a spoke reports in its attestation evidence: SHA-256 of the model file, the code tree, the lock
// file and the runtime configuration facts, plus a caching measurer that re-hashes in the background so a
// changed byte is caught even when size and mtime were restored.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import inspector from 'node:inspector';
import { basename, relative, resolve, sep } from 'node:path';
import { AppError } from './errors.js';

/** A SHA-256 digest as carried in evidence and reference values: always 64 lower-case hex characters. */
export interface Digest {
  alg: 'sha-256';
  digest: string;
}

/**
 * Runtime configuration facts of a spoke process. They are compared field by field against the reference
 * values, and their canonical JSON (see {@link configDigest}) is hashed into `meas.config.digest`.
 */
export interface ConfigFacts {
  /** `/sys/fs/cgroup/memory.max` in bytes; `null` when it reads `max` (unlimited) or is absent. */
  mem_max_bytes: number | null;
  /** The LLM memory budget the spoke enforces (`AGENT_MAX_MEMORY_MB`), or `null` for a spoke without an LLM. */
  agent_max_memory_mb: number | null;
  /** `process.getuid()`; `-1` on a platform without uids. */
  uid: number;
  /** Whether the Node inspector is active (URL open, `--inspect*` in execArgv or NODE_OPTIONS). */
  inspector: boolean;
}

/** The `meas` map of evidence profile `evidence/v1` (ATTESTATION.md §5.3). */
export interface Measurements {
  /** Streaming SHA-256 of the model file and its size in bytes (the empty-string digest and 0 when no model). */
  model: Digest & { size: number };
  /** SHA-256 of the sorted code manifest (see {@link measureCode}). */
  code: Digest;
  /** SHA-256 of the dependency lock file. */
  deps: Digest;
  /** SHA-256 of the canonical facts JSON, with the facts themselves for field-by-field appraisal. */
  config: Digest & { facts: ConfigFacts };
  /** The image digest baked in at build time; informational, because the spoke reports it about itself. */
  image: Digest & { selfReported: true };
}

/** What to measure. Paths may be relative to the process working directory. */
export interface MeasurementSpec {
  /** The model file (GGUF), or `null` for a spoke without a model. */
  modelPath: string | null;
  /** Files and directories whose contents make up the code measurement. */
  codePaths: readonly string[];
  /** The dependency lock file (`package-lock.json`). */
  lockfilePath: string;
  /** The spoke's LLM memory budget in MiB, reported as a config fact. */
  agentMaxMemoryMb: number | null;
  /** Image digest from the build (`sha256:<hex>` or bare hex); absent → digest of the empty string. */
  imageDigest?: string;
  /** Where to read the cgroup v2 memory limit; defaults to `/sys/fs/cgroup/memory.max` (tests point it elsewhere). */
  cgroupMemoryMaxPath?: string;
}

/** SHA-256 of the empty string: the model digest of a spoke without a model, and of an unknown image. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Directory names never included in the code manifest. */
export const CODE_SKIP_DIRS: readonly string[] = Object.freeze(['node_modules', '.git', 'dist']);

const DEFAULT_CGROUP_MEMORY_MAX = '/sys/fs/cgroup/memory.max';
const HEX64 = /^[0-9a-f]{64}$/;

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function sha256(digest: string): Digest {
  return { alg: 'sha-256', digest };
}

/** Streams `path` through SHA-256; returns the hex digest and the number of bytes hashed. */
export async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const bytes = chunk as Buffer;
    size += bytes.length;
    hash.update(bytes);
  }
  return { digest: hash.digest('hex'), size };
}

async function hashModel(modelPath: string | null): Promise<Digest & { size: number }> {
  if (modelPath === null) return { ...sha256(EMPTY_SHA256), size: 0 };
  try {
    const { digest, size } = await hashFile(modelPath);
    return { ...sha256(digest), size };
  } catch (cause) {
    throw new AppError('MODEL_NOT_FOUND', `cannot read model file ${modelPath}`, { cause });
  }
}

async function collectFiles(root: string, label: string, out: Map<string, string>): Promise<void> {
  const info = await stat(root).catch((cause: unknown) => {
    throw new AppError('CONFIG_INVALID', `code path ${root} is not readable`, { cause });
  });
  if (info.isFile()) {
    if (!out.has(label)) out.set(label, root);
    return;
  }
  if (!info.isDirectory()) return;
  const pending: string[] = [root];
  while (pending.length > 0) {
    const dir = pending.pop() as string;
    const entries = await readdir(dir, { withFileTypes: true });
    for (const entry of entries) {
      const full = resolve(dir, entry.name);
      if (entry.isDirectory()) {
        if (!CODE_SKIP_DIRS.includes(entry.name)) pending.push(full);
        continue;
      }
      // A symlink counts only when it points at a regular file; symlinked directories are not followed.
      const isFile =
        entry.isFile() || (entry.isSymbolicLink() && (await stat(full).catch(() => null))?.isFile());
      if (!isFile) continue;
      const rel = `${label}/${relative(root, full).split(sep).join('/')}`;
      if (!out.has(rel)) out.set(rel, full);
    }
  }
}

/**
 * Code measurement: SHA-256 over the sorted manifest of lines `relative_path NUL sha256(file) LF`. Each entry's
 * path is `<basename of its code path>/<path inside it>` (a file code path is just its basename), so the digest
 * does not depend on where the tree is checked out. `node_modules`, `.git` and `dist` are skipped.
 */
export async function measureCode(codePaths: readonly string[]): Promise<Digest> {
  const files = new Map<string, string>();
  for (const codePath of codePaths) {
    const root = resolve(codePath);
    await collectFiles(root, basename(root), files);
  }
  const lines: string[] = [];
  for (const rel of [...files.keys()].sort()) {
    const { digest } = await hashFile(files.get(rel) as string);
    lines.push(`${rel}\0${digest}\n`);
  }
  return sha256(sha256Hex(lines.join('')));
}

async function hashLockfile(lockfilePath: string): Promise<Digest> {
  try {
    return sha256((await hashFile(lockfilePath)).digest);
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', `cannot read lock file ${lockfilePath}`, { cause });
  }
}

/** True when the Node inspector is open now, or was requested through `execArgv` or `NODE_OPTIONS`. */
export function inspectorActive(): boolean {
  if (inspector.url() !== undefined) return true;
  const requested = (arg: string): boolean => /^--inspect(?:-brk|-port|-wait)?(?:=|$)/.test(arg);
  if (process.execArgv.some(requested)) return true;
  return (process.env.NODE_OPTIONS ?? '').split(/\s+/).some(requested);
}

async function readMemoryMax(path: string): Promise<number | null> {
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch {
    return null;
  }
  if (!/^\d{1,19}$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

/** Reads the runtime configuration facts of this process. */
export async function readConfigFacts(
  spec: Pick<MeasurementSpec, 'agentMaxMemoryMb' | 'cgroupMemoryMaxPath'>,
): Promise<ConfigFacts> {
  return {
    mem_max_bytes: await readMemoryMax(spec.cgroupMemoryMaxPath ?? DEFAULT_CGROUP_MEMORY_MAX),
    agent_max_memory_mb: spec.agentMaxMemoryMb,
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
    inspector: inspectorActive(),
  };
}

/** SHA-256 of the facts' canonical JSON (fixed key order); the hub recomputes it to check `meas.config`. */
export function configDigest(facts: ConfigFacts): Digest {
  const canonical = JSON.stringify({
    mem_max_bytes: facts.mem_max_bytes,
    agent_max_memory_mb: facts.agent_max_memory_mb,
    uid: facts.uid,
    inspector: facts.inspector,
  });
  return sha256(sha256Hex(canonical));
}

/** Normalises an image digest (`sha256:<hex>` or bare hex) to 64 lower-case hex; absent → the empty digest. */
export function normaliseImageDigest(imageDigest: string | undefined): string {
  if (imageDigest === undefined || imageDigest === '') return EMPTY_SHA256;
  const hex = imageDigest.replace(/^sha256:/i, '').toLowerCase();
  if (!HEX64.test(hex)) {
    throw new AppError('CONFIG_INVALID', 'image digest must be sha256:<64 hex> or 64 hex characters', {
      details: { imageDigest },
    });
  }
  return hex;
}

/** Measures everything once. A missing model file is MODEL_NOT_FOUND; a missing code path or lock file is CONFIG_INVALID. */
export async function measure(spec: MeasurementSpec): Promise<Measurements> {
  const model = await hashModel(spec.modelPath);
  const code = await measureCode(spec.codePaths);
  const deps = await hashLockfile(spec.lockfilePath);
  const facts = await readConfigFacts(spec);
  return {
    model,
    code,
    deps,
    config: { ...configDigest(facts), facts },
    image: { ...sha256(normaliseImageDigest(spec.imageDigest)), selfReported: true },
  };
}

/** A caching measurer: cheap to ask on every evidence request, re-hashes in the background. */
export interface Measurer {
  /**
   * The latest completed measurements. Stats the model file first: when its (dev, ino, size, mtime, ctime)
   * differ from the ones the cached digest was taken under, a forced re-hash runs and this awaits it.
   */
  current(): Promise<Measurements>;
  /** Starts the periodic full re-hash (every `remeasureIntervalMs`); the timer does not keep the process alive. */
  start(): void;
  /** Stops the periodic re-hash. */
  stop(): void;
  /** The latest completed measurements without any stat check (`null` before the first one completes). */
  peek(): Measurements | null;
}

/** Options of {@link createMeasurer}. */
export interface MeasurerOptions {
  /** Interval of the background full re-hash in milliseconds (15 min in production; ~1 s in tests). */
  remeasureIntervalMs: number;
  /** Called when a background re-hash fails; the cached measurements are dropped so `current()` retries. */
  onError?: (error: unknown) => void;
}

type ModelStamp = string;

async function modelStamp(modelPath: string | null): Promise<ModelStamp> {
  if (modelPath === null) return 'no-model';
  try {
    const s = await stat(modelPath, { bigint: false });
    return [s.dev, s.ino, s.size, s.mtimeMs, s.ctimeMs].join(':');
  } catch {
    return 'missing';
  }
}

/** Creates a {@link Measurer} for `spec`. Nothing is hashed until `current()` or `start()`. */
export function createMeasurer(spec: MeasurementSpec, options: MeasurerOptions): Measurer {
  if (!Number.isFinite(options.remeasureIntervalMs) || options.remeasureIntervalMs <= 0) {
    throw new AppError('CONFIG_INVALID', 'remeasureIntervalMs must be a positive number of milliseconds');
  }
  let latest: { measurements: Measurements; stamp: ModelStamp } | null = null;
  let inFlight: { run: Promise<Measurements>; forced: boolean } | null = null;
  let timer: NodeJS.Timeout | null = null;

  const remeasure = (forced: boolean): Promise<Measurements> => {
    if (inFlight !== null) return inFlight.run;
    const run = (async () => {
      // The stamp is taken before hashing: a change during the hash leaves a stale stamp, which forces a re-hash.
      const stamp = await modelStamp(spec.modelPath);
      const measurements = await measure(spec);
      latest = { measurements, stamp };
      return measurements;
    })().finally(() => {
      inFlight = null;
    });
    inFlight = { run, forced };
    return run;
  };

  return {
    async current() {
      // A background re-hash never blocks evidence (it may take seconds on a 4 GiB model); a forced one does.
      for (let attempt = 0; attempt < 3; attempt += 1) {
        if (inFlight?.forced === true) await inFlight.run.catch(() => undefined);
        const stamp = await modelStamp(spec.modelPath);
        if (latest !== null && latest.stamp === stamp) return latest.measurements;
        // Stale or missing: a running background hash may have started before the change, so wait for it and
        // then hash again under the new stamp.
        if (inFlight !== null) {
          await inFlight.run.catch(() => undefined);
          continue;
        }
        await remeasure(true);
      }
      return remeasure(true);
    },
    start() {
      if (timer !== null) return;
      timer = setInterval(() => {
        if (inFlight !== null) return;
        remeasure(false).catch((error: unknown) => {
          latest = null;
          options.onError?.(error);
        });
      }, options.remeasureIntervalMs);
      timer.unref();
    },
    stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
    peek() {
      return latest?.measurements ?? null;
    },
  };
}
