// The API key shared by hub and spokes: loading it from its setting or file, and the Bearer check.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyMatcher, loadApiKey } from '../../shared/api_key.js';
import { isAppError } from '../../shared/errors.js';

const KEY = 'k'.repeat(43);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agenthub-api-key-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configError(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isAppError(error, 'CONFIG_INVALID')).toBe(true);
  return (error as Error).message;
}

describe('loadApiKey', () => {
  it('takes the setting over the file, and the trimmed file without a setting', async () => {
    const file = join(dir, 'api-key');
    await writeFile(file, `  ${KEY}\n`);
    expect(await loadApiKey('s'.repeat(16), file, 'API key')).toBe('s'.repeat(16));
    expect(await loadApiKey(undefined, file, 'API key')).toBe(KEY);
    expect(await loadApiKey(undefined, undefined, 'spoke API key')).toBeUndefined();
  });

  it('refuses a key under 16 characters and a file it cannot read, naming the key', async () => {
    const short = join(dir, 'short');
    await writeFile(short, 'fifteen-chars!!\n');
    expect(await configError(loadApiKey(undefined, short, 'spoke API key'))).toBe(
      'the spoke API key must have at least 16 characters',
    );
    expect(await configError(loadApiKey('x'.repeat(15), undefined, 'API key'))).toBe(
      'the API key must have at least 16 characters',
    );
    expect(await configError(loadApiKey(undefined, join(dir, 'missing'), 'API key'))).toContain(
      'cannot read API key file',
    );
  });
});

describe('apiKeyMatcher', () => {
  it('accepts exactly `Bearer <key>`', () => {
    const matches = apiKeyMatcher(KEY);
    expect(matches(`Bearer ${KEY}`)).toBe(true);
    for (const header of [
      undefined,
      '',
      KEY,
      `bearer ${KEY}`,
      `Bearer ${KEY}x`,
      `Bearer  ${KEY}`,
      'Bearer ',
    ]) {
      expect(matches(header)).toBe(false);
    }
  });
});
