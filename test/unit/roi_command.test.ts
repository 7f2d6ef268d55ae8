// `agenthub analyze roi` and `agenthub sample q4` called as plain functions: table and JSON output, exit codes
// 1 (bad input, naming the line) and 2 (usage).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../shared/cli/io.js';
import { analyzeRoiCommand, sampleCommand } from '../../spoke_marketing/roi_command.js';
import type { CampaignRoiAnswer } from '../../spoke_marketing/roi_skill.js';

const directory = mkdtempSync(join(tmpdir(), 'roi-command-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function io(argv: string[], env: Record<string, string> = {}): CliIo & { out: string; err: string } {
  const captured = {
    argv,
    env,
    cwd: directory,
    signal: new AbortController().signal,
    out: '',
    err: '',
    stdout(text: string) {
      captured.out += text;
    },
    stderr(text: string) {
      captured.err += text;
    },
  };
  return captured;
}

describe('agenthub sample q4 / analyze roi', () => {
  it('writes the sample, then analyses it as JSON without a model', async () => {
    const sample = io(['q4', '--out', 'q4.csv', '--seed', '3']);
    expect(await sampleCommand(sample)).toBe(0);
    expect(sample.err).toMatch(/wrote 2208 rows/);
    expect(readFileSync(join(directory, 'q4.csv'), 'utf8').split('\n')[0]).toMatch(
      /^date,campaign,channel,spend/,
    );

    const run = io(['--input', 'q4.csv', '--json']);
    expect(await analyzeRoiCommand(run)).toBe(0);
    const answer = JSON.parse(run.out) as CampaignRoiAnswer;
    expect(answer.analysis_type).toBe('campaign_roi');
    expect(answer.marketing_metrics.period.label).toBe('2025-Q4');
    expect(answer.llm_analysis).toBeNull();
    expect(answer.llm_unavailable_reason).toMatch(/no model given/);
  });

  it('prints a readable table by default and honours --period', async () => {
    expect(await sampleCommand(io(['q4', '--out', 'table.csv']))).toBe(0);
    const run = io(['--input', 'table.csv', '--period', '2025-Q3']);
    expect(await analyzeRoiCommand(run)).toBe(0);
    expect(run.out).toMatch(/^Campaign ROI 2025-Q3/);
    for (const channel of ['overall', 'email', 'social', 'search', 'display'])
      expect(run.out).toMatch(new RegExp(`^${channel}\\s`, 'm'));
    expect(run.out).toContain('ROI basis: margin_adjusted');
    expect(run.out).toMatch(/Narrative: none/);
  });

  it('exits 1 naming the line of a bad row', async () => {
    writeFileSync(
      join(directory, 'bad.csv'),
      'campaign,channel,date,spend\na,search,2025-10-01,10\nb,search,2025-10-02,ten\n',
    );
    const run = io(['--input', 'bad.csv']);
    expect(await analyzeRoiCommand(run)).toBe(1);
    expect(run.err).toMatch(/bad\.csv line 3: spend/);
  });

  it('exits 1 when the file is missing', async () => {
    const run = io(['--input', 'missing.csv']);
    expect(await analyzeRoiCommand(run)).toBe(1);
    expect(run.err).toMatch(/cannot read missing\.csv: ENOENT/);
  });

  it.each([
    [[]],
    [['--input']],
    [['--input', 'x.csv', '--bogus']],
    [['--input', 'x.csv', '--period', 'someday']],
  ])('exits 2 on usage errors %j', async (argv) => {
    const run = io(argv);
    expect(await analyzeRoiCommand(run)).toBe(2);
    expect(run.err).toMatch(/usage: agenthub analyze roi/);
  });

  it.each([[['q5']], [['q4', '--seed', 'abc']], [['q4', '--year', '99999']]])(
    'sample exits 2 on %j',
    async (argv) => {
      expect(await sampleCommand(io(argv))).toBe(2);
    },
  );

  it('prints the sample to stdout without --out', async () => {
    const run = io(['q4', '--seed', '5', '--year', '2024']);
    expect(await sampleCommand(run)).toBe(0);
    expect(run.out.split('\n')[1]).toMatch(/^2024-07-01,/);
  });
});
