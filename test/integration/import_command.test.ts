// `agenthub import …` (spoke_marketing/data_commands.ts): imports into the embedded database under the state
// directory, reports bad rows with their line and field, and goes through the owning process when one holds it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../shared/db.js';
import { importCommand, marketingDataDir } from '../../spoke_marketing/data_commands.js';
import { selectMetricsByPeriod } from '../../spoke_marketing/store.js';
import { captureIo } from '../helpers/cli_io.js';

const GOOD =
  'date,campaign,channel,spend,clicks\n2024-12-01,Q4,search,10.00,4\n2024-12-02,Q4,search,11.00,5\n';
const BAD = 'date,campaign,channel,spend,clicks\n2024-12-03,Q4,search,10.00,4\n2024-12-04,Q4,search,ten,5\n';

describe('agenthub import', () => {
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agenthub-import-cmd-'));
    await writeFile(join(root, 'good.csv'), GOOD);
    await writeFile(join(root, 'bad.csv'), BAD);
  });
  afterAll(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('rejects a missing kind or file with a usage error', async () => {
    expect(await importCommand(captureIo(['campaigns', 'x.csv'], root))).toBe(2);
    const io = captureIo(['metrics'], root);
    expect(await importCommand(io)).toBe(2);
    expect(io.err.join('')).toContain('import metrics needs a FILE');
    const guidelines = captureIo(['guidelines', 'dir'], root);
    expect(await importCommand(guidelines)).toBe(2);
    expect(guidelines.err.join('')).toContain('--model FILE or set MODEL_PATH');
  });

  it('goes through the process that owns the embedded database, all or nothing', async () => {
    const stateDir = join(root, 'state');
    const owner = await openDatabase({ dataDir: marketingDataDir(stateDir), service: 'marketing' });
    try {
      const good = captureIo(['metrics', 'good.csv', '--state-dir', stateDir, '--json'], root);
      expect(await importCommand(good)).toBe(0);
      expect(JSON.parse(good.out.join(''))).toEqual({ kind: 'metrics', source: 'good.csv', rows: 2 });
      expect(good.err.join('')).toContain(`is owned by process ${process.pid}; going through it`);

      const bad = captureIo(['metrics', 'bad.csv', '--state-dir', stateDir], root);
      expect(await importCommand(bad)).toBe(1);
      expect(bad.err.join('')).toContain('[VALIDATION_FAILED]');
      expect(bad.err.join('')).toContain('bad.csv line 3, field spend: must be a decimal amount');

      const rows = await selectMetricsByPeriod(owner, { from: '2024-12-01', to: '2024-12-31' });
      expect(rows.map((row) => row.date)).toEqual(['2024-12-01', '2024-12-02']);
    } finally {
      await owner.close();
    }
  });

  it('opens the embedded database itself when nobody owns it, and the rows persist', async () => {
    const stateDir = join(root, 'state');
    const io = captureIo(['leads', 'leads.csv'], root);
    await writeFile(join(root, 'leads.csv'), 'external_id,created_at\nL-1,2024-12-01T10:00:00Z\n');
    expect(await importCommand({ ...io, env: { AGENTHUB_STATE_DIR: stateDir } })).toBe(0);
    expect(io.out.join('')).toBe('imported 1 leads row(s) from leads.csv\n');
    const reopened = await openDatabase({ dataDir: marketingDataDir(stateDir), service: 'marketing' });
    try {
      const leads = await reopened.query<{ external_id: string }>('SELECT external_id FROM leads');
      expect(leads.rows).toEqual([{ external_id: 'L-1' }]);
      expect((await selectMetricsByPeriod(reopened, { from: '2024-12-01', to: '2024-12-31' })).length).toBe(
        2,
      );
    } finally {
      await reopened.close();
    }
  });
});
