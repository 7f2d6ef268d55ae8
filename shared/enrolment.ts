// Local enrolment: on first start, creates the hub and spoke keys, the hub JWKS, the trust store, reference values
// measured from the files on disk and an API key under a state directory; later starts reuse all of it, so a changed
// model or code file shows up as tampering. Only an explicitly changed model path re-enrols that spoke's model value.
//
// State directory layout (directories 0700, secrets 0600, public files 0644):
//   <stateDir>/enrolment.json           record of what was enrolled: version, createdAt, per spoke its model path
//   <stateDir>/api-key                  0600  random API key (43 base64url chars) for the hub's HTTP API
//   <stateDir>/hub/hub-key.jwk          0600  the hub's private Ed25519 JWK (connect tokens, attestation results)
//   <stateDir>/hub/hub-jwks.json        0644  the hub's public JWKS (spokes pin it; served at /.well-known/jwks.json)
//   <stateDir>/hub/trust-store.json     0644  per spoke: public JWKS, host, apiPort, attestationPort
//   <stateDir>/hub/reference-values.json 0644 per spoke: allowed model/code/deps/config values (policyId = its SHA-256)
//   <stateDir>/spokes/<name>.jwk        0600  each spoke's private Ed25519 JWK
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { readConfigJson } from './config.js';
import { AppError } from './errors.js';
import {
  generateSigningKeyJwk,
  importSigningKey,
  parseReferenceValues,
  parseTrustStore,
  publicJwks,
  referenceEntryFor,
  spokeIdOf,
  type JWK,
  type SigningKey,
  type TrustStore,
} from './attestation.js';
import { measure, type MeasurementSpec } from './measure.js';

/** One spoke to enrol: its name, what to measure, and where the hub reaches it. */
export interface EnrolmentSpoke {
  name: string;
  measurement: MeasurementSpec;
  host: string;
  apiPort: number;
  attestationPort: number;
}

/** Where the enrolment lives and what it holds. */
export interface Enrolment {
  stateDir: string;
  hubKeyFile: string;
  hubJwksFile: string;
  trustStoreFile: string;
  referenceValuesFile: string;
  /** The hub's API key (also in `<stateDir>/api-key`). */
  apiKey: string;
  /** Path of a spoke's private key file. */
  spokeKeyFile(name: string): string;
  /** True when this call created the enrolment; false when it reused an existing one. */
  created: boolean;
  /** Spokes whose model reference value was re-enrolled because their model path changed (log these). */
  reenrolled: string[];
  /** Spokes enrolled by this call into an existing enrolment (new names). */
  added: string[];
}

const ENROLMENT_VERSION = 1;
const SECRET_MODE = 0o600;
const PUBLIC_MODE = 0o644;
const DIR_MODE = 0o700;

const enrolmentRecord = z
  .object({
    version: z.literal(ENROLMENT_VERSION),
    createdAt: z.string(),
    spokes: z.record(z.string(), z.object({ modelPath: z.string().nullable() }).strict()),
  })
  .strict();
type EnrolmentRecord = z.infer<typeof enrolmentRecord>;

interface Paths {
  stateDir: string;
  record: string;
  apiKey: string;
  hubDir: string;
  hubKey: string;
  hubJwks: string;
  trustStore: string;
  referenceValues: string;
  spokesDir: string;
  spokeKey(name: string): string;
}

function pathsOf(stateDir: string): Paths {
  const root = resolve(stateDir);
  const hubDir = join(root, 'hub');
  const spokesDir = join(root, 'spokes');
  return {
    stateDir: root,
    record: join(root, 'enrolment.json'),
    apiKey: join(root, 'api-key'),
    hubDir,
    hubKey: join(hubDir, 'hub-key.jwk'),
    hubJwks: join(hubDir, 'hub-jwks.json'),
    trustStore: join(hubDir, 'trust-store.json'),
    referenceValues: join(hubDir, 'reference-values.json'),
    spokesDir,
    spokeKey: (name) => {
      spokeIdOf(name);
      return join(spokesDir, `${name}.jwk`);
    },
  };
}

async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: DIR_MODE });
  await chmod(path, DIR_MODE);
}

/** Writes `text` atomically (temp file + rename) with `mode`, independent of the umask. */
async function writeFileAtomic(path: string, text: string, mode: number): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.chmod(mode);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** Reads a secret file, refusing one that group or others may read or write (as ssh does). */
async function readSecret(path: string): Promise<string> {
  let info;
  try {
    info = await stat(path);
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', `enrolment is incomplete: ${path} is missing`, { cause });
  }
  if ((info.mode & 0o077) !== 0) {
    throw new AppError(
      'CONFIG_INVALID',
      `${path} must be mode 0600 (found ${(info.mode & 0o777).toString(8)})`,
    );
  }
  return readFile(path, 'utf8');
}

async function loadKey(path: string): Promise<SigningKey> {
  const text = await readSecret(path);
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', `${path} is not a JWK`, { cause });
  }
  return importSigningKey(jwk);
}

async function createKey(path: string): Promise<SigningKey> {
  const jwk = await generateSigningKeyJwk();
  await writeFileAtomic(path, `${JSON.stringify(jwk, null, 2)}\n`, SECRET_MODE);
  return importSigningKey(jwk);
}

function modelPathOf(spec: MeasurementSpec): string | null {
  return spec.modelPath === null ? null : resolve(spec.modelPath);
}

function validateSpokes(spokes: readonly EnrolmentSpoke[]): void {
  const seen = new Set<string>();
  for (const spoke of spokes) {
    spokeIdOf(spoke.name);
    if (seen.has(spoke.name)) throw new AppError('BAD_REQUEST', `spoke ${spoke.name} is listed twice`);
    seen.add(spoke.name);
  }
}

function addressOf(spoke: EnrolmentSpoke): { host: string; apiPort: number; attestationPort: number } {
  return { host: spoke.host, apiPort: spoke.apiPort, attestationPort: spoke.attestationPort };
}

type JsonObject = Record<string, unknown>;

/** Options of {@link enrolLocal}. */
export interface EnrolLocalOptions {
  /**
   * Measure every enrolled spoke's model, code, dependencies and config afresh (keys, trust store and API key
   * are kept): the operator's deliberate "accept what is on disk now", e.g. after changing the code. Listed in
   * `reenrolled`. @defaultValue false
   */
  readonly remeasure?: boolean;
}

/**
 * Enrols `spokes` into `stateDir` (layout in this file's header). The first call creates everything and returns
 * `created: true`. A later call reuses keys, API key and reference values (`created: false`): a spoke whose
 * `measurement.modelPath` differs from the enrolled one gets a new model reference value (listed in `reenrolled`);
 * a spoke not enrolled before is added (listed in `added`); spoke addresses in the trust store follow the call.
 * Files that hold secrets must be 0600, or CONFIG_INVALID is thrown.
 */
export async function enrolLocal(
  stateDir: string,
  spokes: readonly EnrolmentSpoke[],
  options: EnrolLocalOptions = {},
): Promise<Enrolment> {
  validateSpokes(spokes);
  const paths = pathsOf(stateDir);
  await ensureDir(paths.stateDir);
  await ensureDir(paths.hubDir);
  await ensureDir(paths.spokesDir);

  const existing = await readFile(paths.record, 'utf8').then(
    (text) => text,
    () => null,
  );
  const created = existing === null;
  let record: EnrolmentRecord;
  if (existing === null) {
    record = { version: ENROLMENT_VERSION, createdAt: new Date().toISOString(), spokes: {} };
  } else {
    let json: unknown;
    try {
      json = JSON.parse(existing);
    } catch (cause) {
      throw new AppError('CONFIG_INVALID', `${paths.record} is not JSON`, { cause });
    }
    const parsed = enrolmentRecord.safeParse(json);
    if (!parsed.success) throw new AppError('CONFIG_INVALID', `${paths.record} is not an enrolment record`);
    record = parsed.data;
  }

  let apiKey: string;
  let hubKey: SigningKey;
  let trustStore: { version: 1; spokes: Record<string, JsonObject> };
  let references: { version: 1; spokes: Record<string, JsonObject> };
  /** The trust store as enrolled before this call (null on the first enrolment). */
  let enrolledTrust: TrustStore | null = null;
  if (created) {
    apiKey = randomBytes(32).toString('base64url');
    await writeFileAtomic(paths.apiKey, `${apiKey}\n`, SECRET_MODE);
    hubKey = await createKey(paths.hubKey);
    trustStore = { version: 1, spokes: {} };
    references = { version: 1, spokes: {} };
  } else {
    apiKey = (await readSecret(paths.apiKey)).trim();
    hubKey = await loadKey(paths.hubKey);
    trustStore = (await readConfigJson(paths.trustStore, 'enrolment file')) as typeof trustStore;
    references = (await readConfigJson(paths.referenceValues, 'enrolment file')) as typeof references;
    // Validate what is on disk before building on it.
    enrolledTrust = parseTrustStore(trustStore);
    parseReferenceValues(JSON.stringify(references));
  }

  const reenrolled: string[] = [];
  const added: string[] = [];
  for (const spoke of spokes) {
    const enrolled = record.spokes[spoke.name];
    const modelPath = modelPathOf(spoke.measurement);
    if (enrolled === undefined) {
      const key = await createKey(paths.spokeKey(spoke.name));
      trustStore.spokes[spoke.name] = { jwks: publicJwks([key]), ...addressOf(spoke) };
      references.spokes[spoke.name] = referenceEntryFor(await measure(spoke.measurement));
      record.spokes[spoke.name] = { modelPath };
      if (!created) added.push(spoke.name);
      continue;
    }
    const key = await loadKey(paths.spokeKey(spoke.name));
    const trusted = trustStore.spokes[spoke.name];
    const reference = references.spokes[spoke.name];
    if (trusted === undefined || reference === undefined) {
      throw new AppError(
        'CONFIG_INVALID',
        `enrolment of spoke ${spoke.name} is incomplete (trust store or reference values)`,
      );
    }
    const pinned = enrolledTrust?.spokes.get(spoke.name);
    if (pinned?.jwks.keys.every((jwk) => jwk.kid !== key.kid)) {
      throw new AppError(
        'CONFIG_INVALID',
        `spoke ${spoke.name}: its key file does not match the trust store`,
      );
    }
    trustStore.spokes[spoke.name] = { ...trusted, ...addressOf(spoke) };
    if (options.remeasure === true) {
      references.spokes[spoke.name] = referenceEntryFor(await measure(spoke.measurement));
      record.spokes[spoke.name] = { modelPath };
      reenrolled.push(spoke.name);
    } else if (enrolled.modelPath !== modelPath) {
      // The operator chose another model explicitly: only the model value is re-measured; code, deps and config
      // keep their enrolled values so tampering there is still caught.
      const fresh = referenceEntryFor(await measure(spoke.measurement));
      references.spokes[spoke.name] = { ...reference, model: fresh.model };
      record.spokes[spoke.name] = { modelPath };
      reenrolled.push(spoke.name);
    }
  }

  await writeFileAtomic(paths.hubJwks, `${JSON.stringify(publicJwks([hubKey]), null, 2)}\n`, PUBLIC_MODE);
  const trustText = `${JSON.stringify(trustStore, null, 2)}\n`;
  parseTrustStore(JSON.parse(trustText));
  await writeFileAtomic(paths.trustStore, trustText, PUBLIC_MODE);
  if (created || reenrolled.length > 0 || added.length > 0) {
    const referenceText = `${JSON.stringify(references, null, 2)}\n`;
    parseReferenceValues(referenceText);
    await writeFileAtomic(paths.referenceValues, referenceText, PUBLIC_MODE);
  }
  // The record is written last: an interrupted first enrolment leaves no record and is redone from scratch.
  await writeFileAtomic(paths.record, `${JSON.stringify(record, null, 2)}\n`, PUBLIC_MODE);

  return {
    stateDir: paths.stateDir,
    hubKeyFile: paths.hubKey,
    hubJwksFile: paths.hubJwks,
    trustStoreFile: paths.trustStore,
    referenceValuesFile: paths.referenceValues,
    apiKey,
    spokeKeyFile: paths.spokeKey,
    created,
    reenrolled,
    added,
  };
}
