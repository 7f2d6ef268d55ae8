// Keeps the README's configuration table equal to what the config schemas document (`npm run docs:config`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { entriesFromSource, readmeWithConfigTable } from '../../shared/config_doc.js';
import { REPO_ROOT } from '../helpers/shared_data.js';

describe('README configuration table', () => {
  it('equals the table generated from the config schemas', async () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    expect(await readmeWithConfigTable(readme)).toBe(readme);
  });

  it('reads a variable, its description and its default from a TSDoc comment', () => {
    const source = [
      'const Schema = z.object({',
      '  /** Port of the thing,',
      '   * in TCP terms. @defaultValue `8080` */',
      '  THING_PORT: z.number(),',
      '  /** Interface. Default 127.0.0.1. */',
      '  THING_HOST: z.string(),',
      '});',
    ].join('\n');
    expect(entriesFromSource('thing', source)).toEqual([
      {
        service: 'thing',
        name: 'THING_PORT',
        description: 'Port of the thing, in TCP terms.',
        defaultValue: '`8080`',
      },
      { service: 'thing', name: 'THING_HOST', description: 'Interface.', defaultValue: '127.0.0.1' },
    ]);
  });
});
