// `agenthub marketing cycle` argument handling called as a plain function: --help and usage errors (exit 2),
// before any database is opened.
import { describe, expect, it } from 'vitest';
import { marketingCycleCommand } from '../../spoke_marketing/cycle_command.js';
import { captureIo } from '../helpers/cli_io.js';

describe('agenthub marketing cycle arguments', () => {
  it('prints the usage on --help and exits 0', async () => {
    const run = captureIo(['--help'], '/nonexistent');
    expect(await marketingCycleCommand(run)).toBe(0);
    expect(run.out.join('')).toMatch(/^usage: agenthub marketing cycle/);
    expect(run.err).toEqual([]);
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['extra'], /Unexpected argument 'extra'/],
    [['--state-dir'], /--state-dir <value>' argument missing/],
  ])('exits 2 on %j, saying what was wrong and how to call it', async (argv, problem) => {
    const run = captureIo(argv, '/nonexistent');
    expect(await marketingCycleCommand(run)).toBe(2);
    const err = run.err.join('');
    expect(err).toMatch(/^error: /);
    expect(err).toMatch(problem);
    expect(err).toMatch(/usage: agenthub marketing cycle/);
    expect(run.out).toEqual([]);
  });
});
