// A fake CliIo for calling command functions directly: captures what they write to stdout and stderr.
import type { CliIo } from '../../shared/cli/io.js';

export interface CapturedIo extends CliIo {
  /** Each stdout write, in order. */
  readonly out: string[];
  /** Each stderr write, in order. */
  readonly err: string[];
}

export function captureIo(
  argv: readonly string[],
  cwd: string,
  env: Readonly<Record<string, string>> = {},
): CapturedIo {
  const out: string[] = [];
  const err: string[] = [];
  return {
    argv,
    env,
    cwd,
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    signal: new AbortController().signal,
    out,
    err,
  };
}
