// The `agenthub` command line: maps command words to command modules (loaded lazily, so `agenthub status`
// never loads node-llama-cpp) and runs one with the process's streams. It is the one composition root that
// spans services, so it may name their command modules; services themselves import only from shared/.
import process from 'node:process';
import type { CliCommand, CliIo } from './io.js';
import { errorMessage } from '../errors.js';

type Loader = () => Promise<CliCommand>;

/** Command words → loader of the command, with a one-line summary for `agenthub help`. */
const COMMANDS: ReadonlyArray<{ words: readonly string[]; summary: string; load: Loader }> = [
  {
    words: ['up'],
    summary: 'up [--model FILE|hf:URI] [--state-dir DIR]   start the hub and every spoke locally',
    load: async () => (await import('./up_command.js')).upCommand,
  },
  {
    words: ['enrol'],
    summary: 'enrol [--model FILE|hf:URI] [--host SPOKE=HOST]… keys, trust store and reference values only',
    load: async () => (await import('./enrol_command.js')).enrolCommand,
  },
  {
    words: ['model'],
    summary: 'model tiny --out FILE | model shape mistral-7b --out FILE   generate a test or benchmark GGUF',
    load: async () => (await import('./model_command.js')).modelCommand,
  },
  {
    words: ['sample'],
    summary: 'sample q4 --out FILE [--seed N]                 write the sample Q4 campaign CSV',
    load: async () => (await import('../../spoke_marketing/roi_command.js')).sampleCommand,
  },
  {
    words: ['analyze', 'roi'],
    summary:
      'analyze roi --input FILE.csv [--model FILE] [--json]   campaign-ROI metrics (+ narrative with a model)',
    load: async () => (await import('../../spoke_marketing/roi_command.js')).analyzeRoiCommand,
  },
  {
    words: ['analyze', 'attribution'],
    summary: 'analyze attribution --model NAME --input FILE [--json]   multi-touch attribution',
    load: async () =>
      (await import('../../spoke_marketing/attribution_command.js')).analyzeAttributionCommand,
  },
  {
    words: ['analyze', 'clusters'],
    summary: 'analyze clusters --input FILE.csv --min-cluster-size N [--min-samples N]   HDBSCAN labels',
    load: async () => (await import('../../spoke_marketing/analytics_commands.js')).analyzeClustersCommand,
  },
  {
    words: ['analyze', 'abtest'],
    summary: 'analyze abtest --control-conversions N --control-visitors N … [--json]   A/B statistics',
    load: async () => (await import('../../spoke_marketing/analytics_commands.js')).analyzeAbtestCommand,
  },
  {
    words: ['analyze', 'ltv'],
    summary: 'analyze ltv --input FILE [--json]               BG/NBD + Gamma-Gamma customer value',
    load: async () => (await import('../../spoke_marketing/analytics_commands.js')).analyzeLtvCommand,
  },
  {
    words: ['analyze', 'compliance'],
    summary: 'analyze compliance --text "…" [--json]          Fair Housing and toxicity check',
    load: async () => (await import('../../spoke_marketing/analytics_commands.js')).analyzeComplianceCommand,
  },
  {
    words: ['import'],
    summary: 'import metrics|leads FILE | import guidelines DIR   load data (all or nothing)',
    load: async () => (await import('../../spoke_marketing/data_commands.js')).importCommand,
  },
  {
    words: ['jobs'],
    summary: 'jobs [--json]                                   schedules, last runs, failures',
    load: async () => (await import('../../spoke_marketing/data_commands.js')).jobsCommand,
  },
  {
    words: ['marketing', 'cycle'],
    summary:
      'marketing cycle [--json] [--model FILE]             personas → creatives → deploy (dry-run) → sync → budgets → attribution',
    load: async () => (await import('../../spoke_marketing/cycle_command.js')).marketingCycleCommand,
  },
  {
    words: ['status'],
    summary: 'status [--json]                               spokes and their attestation status',
    load: async () => (await import('./status_command.js')).statusCommand,
  },
  {
    words: ['chat'],
    summary: 'chat "message" [--context ID] [--json]        ask through the hub',
    load: async () => (await import('./status_command.js')).chatCommand,
  },
];

function usage(): string {
  const lines = COMMANDS.map((command) => `  agenthub ${command.summary}`);
  return `usage:\n${lines.join('\n')}\n\nEvery command accepts --state-dir DIR (or AGENTHUB_STATE_DIR); --json prints JSON.\n`;
}

/** Finds the longest registered command whose words prefix `argv`. */
function findCommand(argv: readonly string[]): { load: Loader; rest: readonly string[] } | null {
  let best: { load: Loader; length: number } | null = null;
  for (const command of COMMANDS) {
    const matches = command.words.every((word, index) => argv[index] === word);
    if (matches && (best === null || command.words.length > best.length)) {
      best = { load: command.load, length: command.words.length };
    }
  }
  return best === null ? null : { load: best.load, rest: argv.slice(best.length) };
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(usage());
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv);
  if (found === null) {
    process.stderr.write(`agenthub: unknown command "${argv.join(' ')}"\n\n${usage()}`);
    return 2;
  }
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const io: CliIo = {
    argv: found.rest,
    env: process.env,
    cwd: process.cwd(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    signal: controller.signal,
  };
  try {
    const command = await found.load();
    return await command(io);
  } catch (error) {
    const code =
      typeof error === 'object' && error !== null && 'code' in error ? `${String(error.code)}: ` : '';
    process.stderr.write(`agenthub: ${code}${errorMessage(error)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
