// Local enrolment into a state directory: files and modes, reuse on later calls, re-enrolment of an explicitly
// changed model path, and tampering (changed model content) that is NOT re-enrolled but contraindicated.
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createAppraiser,
  createConnectTokenVerifier,
  importSigningKey,
  newUeid,
  parseReferenceValues,
  parseTrustStore,
  signConnectToken,
  signEvidence,
  type JWK,
} from '../../shared/attestation.js';
import { enrolLocal, type EnrolmentSpoke } from '../../shared/enrolment.js';
import { measure } from '../../shared/measure.js';

let dir: string;
let stateDir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agenthub-enrol-'));
  stateDir = join(dir, 'state');
  await mkdir(join(dir, 'app'), { recursive: true });
  await writeFile(join(dir, 'app', 'agent.js'), 'export default 1;\n');
  await writeFile(join(dir, 'package-lock.json'), '{}\n');
  await writeFile(join(dir, 'model-a.gguf'), 'model A bytes');
  await writeFile(join(dir, 'model-b.gguf'), 'model B bytes, longer');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function spokeSpec(name: string, model: string | null, apiPort = 8082): EnrolmentSpoke {
  return {
    name,
    host: '127.0.0.1',
    apiPort,
    attestationPort: apiPort + 21263,
    measurement: {
      modelPath: model === null ? null : join(dir, model),
      codePaths: [join(dir, 'app')],
      lockfilePath: join(dir, 'package-lock.json'),
      agentMaxMemoryMb: model === null ? null : 7000,
    },
  };
}

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;
const readJson = async (path: string): Promise<unknown> => JSON.parse(await readFile(path, 'utf8'));

/** Appraises fresh evidence from `name` (signed with its enrolled key, measured now) against the enrolled policy. */
async function appraiseNow(enrolment: Awaited<ReturnType<typeof enrolLocal>>, spoke: EnrolmentSpoke) {
  const appraiser = createAppraiser({
    trustStore: parseTrustStore(await readJson(enrolment.trustStoreFile)),
    referenceValues: parseReferenceValues(await readFile(enrolment.referenceValuesFile, 'utf8')),
  });
  const key = await importSigningKey((await readJson(enrolment.spokeKeyFile(spoke.name))) as JWK);
  const nonce = appraiser.issueNonce(spoke.name, 'sid-1');
  const evidence = await signEvidence(key, {
    spokeName: spoke.name,
    nonce,
    sid: 'sid-1',
    measurements: await measure(spoke.measurement),
    ueid: newUeid(),
    swname: `${spoke.name}-agent`,
    swversion: '0.1.0',
    dbgstat: 'disabled',
    uptimeSeconds: 1,
  });
  return appraiser.appraise(spoke.name, 'sid-1', evidence);
}

describe('enrolLocal', () => {
  it('creates keys, JWKS, trust store, reference values and API key with private files 0600 and directories 0700', async () => {
    const e = await enrolLocal(stateDir, [
      spokeSpec('marketing', 'model-a.gguf'),
      spokeSpec('finance', null, 8083),
    ]);
    expect(e.created).toBe(true);
    expect(e.apiKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await readFile(join(stateDir, 'api-key'), 'utf8')).trim()).toBe(e.apiKey);
    for (const secret of [
      e.hubKeyFile,
      e.spokeKeyFile('marketing'),
      e.spokeKeyFile('finance'),
      join(stateDir, 'api-key'),
    ]) {
      expect(await modeOf(secret)).toBe(0o600);
    }
    for (const directory of [stateDir, join(stateDir, 'hub'), join(stateDir, 'spokes')]) {
      expect(await modeOf(directory)).toBe(0o700);
    }
    const hubJwks = (await readJson(e.hubJwksFile)) as { keys: JWK[] };
    expect(hubJwks.keys).toHaveLength(1);
    expect(hubJwks.keys[0]).not.toHaveProperty('d');
    const trust = parseTrustStore(await readJson(e.trustStoreFile));
    expect([...trust.spokes.keys()].sort()).toEqual(['finance', 'marketing']);
    expect(trust.spokes.get('finance')).toMatchObject({
      host: '127.0.0.1',
      apiPort: 8083,
      attestationPort: 29346,
    });
    const references = parseReferenceValues(await readFile(e.referenceValuesFile, 'utf8'));
    const measured = await measure(spokeSpec('marketing', 'model-a.gguf').measurement);
    expect(references.spokes.get('marketing')?.model).toEqual([
      { digest: measured.model.digest, size: measured.model.size },
    ]);
    expect(references.spokes.get('marketing')?.config).toEqual([measured.config.facts]);
  });

  it('enrols keys that work end to end: the hub key signs connect tokens the spoke verifies, spokes affirm', async () => {
    const marketing = spokeSpec('marketing', 'model-a.gguf');
    const e = await enrolLocal(stateDir, [marketing]);
    const hubKey = await importSigningKey((await readJson(e.hubKeyFile)) as JWK);
    const verifier = createConnectTokenVerifier(
      (await readJson(e.hubJwksFile)) as { keys: JWK[] },
      'marketing',
    );
    expect(await verifier.verify(await signConnectToken(hubKey, 'marketing', 'sid-1'))).toEqual({
      sid: 'sid-1',
    });
    expect((await appraiseNow(e, marketing)).status).toBe('affirming');
  });

  it('reuses everything on a second call: same keys, API key and policy id', async () => {
    const specs = [spokeSpec('marketing', 'model-a.gguf')];
    const first = await enrolLocal(stateDir, specs);
    const files = [
      first.hubKeyFile,
      first.spokeKeyFile('marketing'),
      first.referenceValuesFile,
      first.hubJwksFile,
    ];
    const before = await Promise.all(files.map((f) => readFile(f, 'utf8')));
    const second = await enrolLocal(stateDir, specs);
    expect(second).toMatchObject({ created: false, reenrolled: [], added: [], apiKey: first.apiKey });
    expect(await Promise.all(files.map((f) => readFile(f, 'utf8')))).toEqual(before);
  });

  it('does NOT re-enrol changed model content: the spoke is contraindicated with meas.model.mismatch', async () => {
    const marketing = spokeSpec('marketing', 'model-a.gguf');
    await enrolLocal(stateDir, [marketing]);
    await writeFile(join(dir, 'model-a.gguf'), 'model A bytes, tampered');
    const again = await enrolLocal(stateDir, [marketing]);
    expect(again.reenrolled).toEqual([]);
    const result = await appraiseNow(again, marketing);
    expect(result.status).toBe('contraindicated');
    expect(result.reasons).toEqual(['meas.model.mismatch']);
  });

  it('does NOT re-enrol changed code either', async () => {
    const marketing = spokeSpec('marketing', 'model-a.gguf');
    await enrolLocal(stateDir, [marketing]);
    await writeFile(join(dir, 'app', 'agent.js'), 'export default 2;\n');
    const result = await appraiseNow(await enrolLocal(stateDir, [marketing]), marketing);
    expect(result.reasons).toEqual(['meas.code.mismatch']);
  });

  it('accepts changed code and model content when asked to re-measure, keeping the keys', async () => {
    const marketing = spokeSpec('marketing', 'model-a.gguf');
    const first = await enrolLocal(stateDir, [marketing]);
    const keyBefore = await readFile(first.spokeKeyFile('marketing'), 'utf8');
    await writeFile(join(dir, 'app', 'agent.js'), 'export default 3;\n');
    await writeFile(join(dir, 'model-a.gguf'), 'model A bytes, retrained');
    const again = await enrolLocal(stateDir, [marketing], { remeasure: true });
    expect(again).toMatchObject({ created: false, reenrolled: ['marketing'], apiKey: first.apiKey });
    expect(await readFile(again.spokeKeyFile('marketing'), 'utf8')).toBe(keyBefore);
    expect((await appraiseNow(again, marketing)).status).toBe('affirming');
  });

  it('re-enrols only the model value of a spoke whose model path changed, and says so', async () => {
    const first = await enrolLocal(stateDir, [
      spokeSpec('marketing', 'model-a.gguf'),
      spokeSpec('finance', null, 8083),
    ]);
    const before = parseReferenceValues(await readFile(first.referenceValuesFile, 'utf8'));
    const switched = spokeSpec('marketing', 'model-b.gguf');
    const second = await enrolLocal(stateDir, [switched, spokeSpec('finance', null, 8083)]);
    expect(second.reenrolled).toEqual(['marketing']);
    const after = parseReferenceValues(await readFile(second.referenceValuesFile, 'utf8'));
    expect(after.policyId).not.toBe(before.policyId);
    expect(after.spokes.get('marketing')?.model).not.toEqual(before.spokes.get('marketing')?.model);
    expect(after.spokes.get('marketing')?.code).toEqual(before.spokes.get('marketing')?.code);
    expect(after.spokes.get('finance')).toEqual(before.spokes.get('finance'));
    expect((await appraiseNow(second, switched)).status).toBe('affirming');
    expect((await enrolLocal(stateDir, [switched])).reenrolled).toEqual([]);
  });

  it('adds a spoke that was not enrolled before and updates addresses without touching keys', async () => {
    const first = await enrolLocal(stateDir, [spokeSpec('marketing', 'model-a.gguf')]);
    const key = await readFile(first.spokeKeyFile('marketing'), 'utf8');
    const second = await enrolLocal(stateDir, [
      spokeSpec('marketing', 'model-a.gguf', 9000),
      spokeSpec('finance', null, 8083),
    ]);
    expect(second.added).toEqual(['finance']);
    expect(await readFile(second.spokeKeyFile('marketing'), 'utf8')).toBe(key);
    expect(parseTrustStore(await readJson(second.trustStoreFile)).spokes.get('marketing')?.apiPort).toBe(
      9000,
    );
  });

  it('refuses a private key file that others can read', async () => {
    const e = await enrolLocal(stateDir, [spokeSpec('marketing', 'model-a.gguf')]);
    await chmod(e.spokeKeyFile('marketing'), 0o644);
    await expect(enrolLocal(stateDir, [spokeSpec('marketing', 'model-a.gguf')])).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });

  it('refuses bad or duplicate spoke names', async () => {
    await expect(enrolLocal(stateDir, [spokeSpec('Marketing', null)])).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(enrolLocal(stateDir, [spokeSpec('a', null), spokeSpec('a', null)])).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
  });
});
