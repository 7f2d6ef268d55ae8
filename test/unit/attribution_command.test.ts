// `agenthub analyze attribution` as a function: input detection, output formats and exit codes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeAttributionCommand } from '../../spoke_marketing/attribution_command.js';
import { captureIo } from '../helpers/cli_io.js';

const directory = mkdtempSync(join(tmpdir(), 'agenthub-attribution-'));
writeFileSync(
  join(directory, 'paths.csv'),
  'path;total_conversions;total_conversion_value;total_null\nc1 > c2 > c3;1;10;0\nc1;0;0;1\nc2 > c3;0;0;1\n',
);
writeFileSync(
  join(directory, 'journeys.csv'),
  [
    'journey_id,timestamp,channel,converted,value',
    'j1,2024-01-01T00:00:00Z,search,0,0',
    'j1,2024-01-08T00:00:00Z,display,1,30',
  ].join('\n'),
);
writeFileSync(join(directory, 'broken.csv'), 'path;total_conversions\na;many\n');
writeFileSync(join(directory, 'unknown.csv'), 'foo,bar\n1,2\n');

afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIo(argv, directory);
  const code = await analyzeAttributionCommand(io);
  return { code, stdout: io.out.join(''), stderr: io.err.join('') };
}

describe('analyze attribution command', () => {
  it('prints Markov credit for a path file as JSON', async () => {
    const { code, stdout } = await run(['--model', 'markov', '--input', 'paths.csv', '--json']);
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { byChannel: Record<string, { conversions: number }> };
    expect(result.byChannel['c1']!.conversions).toBeCloseTo(0.2, 12);
    expect(result.byChannel['c3']!.conversions).toBeCloseTo(0.4, 12);
  });

  it('prints a table for a journey CSV with a time-decay half-life in hours', async () => {
    const { code, stdout } = await run([
      '--model=time-decay',
      '--input=journeys.csv',
      '--half-life-hours',
      '168',
    ]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/model time-decay: 1 paths, 1 conversions, value 30/);
    expect(stdout).toMatch(/display\s+0\.6667\s+66\.67%\s+20\.00/);
    expect(stdout).toMatch(/search\s+0\.3333\s+33\.33%\s+10\.00/);
  });

  it.each([
    [[], '--model is required'],
    [['--model', 'markov'], '--input is required'],
    [['--model', 'u-shaped', '--input', 'paths.csv'], 'unknown model "u-shaped"'],
    [['--model', 'linear', '--input', 'paths.csv', '--half-life-hours', '-3'], '--half-life-hours must be'],
    [['--model', 'linear', '--input', 'paths.csv', '--verbose'], 'unknown argument "--verbose"'],
    [['--model', '--input', 'paths.csv'], '--model needs a value'],
  ])('exits 2 on usage error %j', async (argv, message) => {
    const { code, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr).toContain('usage: agenthub analyze attribution');
  });

  it.each([
    [
      ['--model', 'linear', '--input', 'broken.csv'],
      'VALIDATION_FAILED: broken.csv line 2: total_conversions',
    ],
    [['--model', 'linear', '--input', 'unknown.csv'], 'unknown.csv line 1: unrecognised header'],
    [['--model', 'linear', '--input', 'missing.csv'], 'ENOENT'],
    [['--model', 'time-decay', '--input', 'paths.csv'], 'time-decay needs touch timestamps'],
  ])('exits 1 with the reason on bad input %j', async (argv, message) => {
    const { code, stderr } = await run(argv);
    expect(code).toBe(1);
    expect(stderr).toContain(message);
  });
});
