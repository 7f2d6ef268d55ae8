// `agenthub marketing cycle`: opens the marketing database (DATABASE_URL, else the embedded one under
// `<state>/data/marketing`), runs the lifecycle once with dry-run ad platforms and prints the report.
import type { CliCommand } from '../shared/cli/io.js';
import { resolveStateDir } from '../shared/layout.js';
import type { LlmClient } from '../shared/llm_client.js';
import { silentLogger } from '../shared/log.js';
import { failure, openSpokeModel, openThroughOwner, parseCommandArgs } from './cli_support.js';
import type { CycleReport } from './orchestrator.js';
import { marketingDataDir } from './data_commands.js';
import { openMarketingToolkit } from './toolkit.js';

const USAGE = `usage: agenthub marketing cycle [--state-dir DIR] [--json] [--model FILE|hf:URI]
  Runs the marketing lifecycle once: discover personas → generate creatives → deploy (dry-run: requests are
  recorded, nothing is sent) → sync metrics → optimise budgets → attribute and record conversion uploads.
  --state-dir  state directory (default AGENTHUB_STATE_DIR or .agenthub); the database is <dir>/data/marketing
               unless DATABASE_URL is set
  --model      GGUF model (or MODEL_PATH) for persona names and creative copy; without one creatives are skipped
  --json       print the cycle report as JSON
Exit code: 0 every step done or skipped, 1 a step failed or the cycle could not run, 2 usage error.`;

function formatReport(report: CycleReport): string {
  const lines = [`marketing cycle ${report.cycleId} (${report.startedAt} → ${report.finishedAt})`];
  lines.push(
    `platforms: ${Object.entries(report.platformModes)
      .map(([name, mode]) => `${name} ${mode}`)
      .join(', ')}`,
  );
  for (const step of report.steps) {
    if (step.status === 'done')
      lines.push(`  ✓ ${step.step} (${step.durationMs} ms) ${summarise(step.result)}`);
    else if (step.status === 'skipped') lines.push(`  – ${step.step} skipped: ${step.reason}`);
    else lines.push(`  ✗ ${step.step} failed [${step.error.code}]: ${step.error.message}`);
  }
  lines.push(report.ok ? 'ok' : 'finished with failures');
  return `${lines.join('\n')}\n`;
}

/** One line of the counts in a step result (numbers and short arrays only). */
function summarise(result: unknown): string {
  if (typeof result !== 'object' || result === null) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(result)) {
    if (typeof value === 'number' || typeof value === 'string') parts.push(`${key}=${value}`);
    else if (Array.isArray(value)) parts.push(`${key}=${value.length}`);
  }
  return parts.join(' ');
}

/** `agenthub marketing cycle` (argv: the words after `marketing cycle`). */
export const marketingCycleCommand: CliCommand = async (io) => {
  const parsed = parseCommandArgs(io, USAGE, {
    'state-dir': { type: 'string' },
    json: { type: 'boolean' },
    model: { type: 'string' },
  });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const stateDir = resolveStateDir(io.cwd, values['state-dir'], io.env.AGENTHUB_STATE_DIR);
  const dataDir = marketingDataDir(stateDir);
  const modelSetting = values.model ?? io.env.MODEL_PATH;
  let llm: LlmClient | null = null;
  let toolkit: Awaited<ReturnType<typeof openMarketingToolkit>> | undefined;
  try {
    if (modelSetting !== undefined && modelSetting !== '')
      llm = await openSpokeModel(io, stateDir, modelSetting);
    // The running spoke may own the embedded database: then go through its socket, as `agenthub import` does.
    toolkit = await openThroughOwner(io, dataDir, (owner) => {
      const databaseUrl = owner ?? io.env.DATABASE_URL;
      return openMarketingToolkit({
        ...(databaseUrl === undefined ? {} : { databaseUrl }),
        dataDir,
        llm,
        platformMode: 'dry-run',
        log: silentLogger(),
      });
    });
    const report = await toolkit.runCycle({}, io.signal);
    io.stdout(values.json === true ? `${JSON.stringify(report)}\n` : formatReport(report));
    return report.ok ? 0 : 1;
  } catch (error) {
    return failure(io, error);
  } finally {
    await toolkit?.close();
    await llm?.close();
  }
};
