// CLI commands of campaign-ROI analysis: `agenthub analyze roi --input FILE.csv [--json] [--model FILE]
// [--period P]` (offline, on a file; narrative only with a model) and `agenthub sample q4 --out FILE`.
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CliCommand } from '../shared/cli/io.js';
import { isAppError } from '../shared/errors.js';
import { resolveStateDir } from '../shared/layout.js';
import type { LlmClient } from '../shared/llm_client.js';
import { parseCampaignCsv, parsePeriodLabel } from './campaign_rows.js';
import { failure, openSpokeModel, parseCommandArgs, usageError } from './cli_support.js';
import type { GroupWithChange, PeriodRequest } from './roi.js';
import { analyzeCampaignRoi, type CampaignRoiAnswer } from './roi_skill.js';
import { generateSampleCampaignCsv } from './sample_data.js';

const ANALYZE_USAGE = [
  'usage: agenthub analyze roi --input FILE.csv [--json] [--model FILE|hf:URI] [--period 2025-Q4|2025-10|all]',
  '  Campaign-ROI metrics per channel and campaign (CTR, CPC, CPM, CVR, CPA, CPL, ROAS, ROI, funnel, change',
  '  against the previous period). A narrative is added only with a model (--model or MODEL_PATH).',
  '  Columns: campaign, channel, date (YYYY-MM-DD) or period (YYYY-Qn / YYYY-MM), spend, impressions, clicks,',
  '  leads, conversions, revenue; optional margin or cost_of_goods, new_customers.',
].join('\n');

const SAMPLE_USAGE = [
  'usage: agenthub sample q4 [--out FILE] [--seed N] [--year YYYY]',
  '  Writes a seeded daily campaign CSV (email, social, search, display) for Q3 and Q4 of the year.',
].join('\n');

function pad(text: string, width: number, alignRight: boolean): string {
  return alignRight ? text.padStart(width) : text.padEnd(width);
}

function money(text: string | null): string {
  if (text === null) return '-';
  const [whole, fraction] = text.split('.');
  return `${whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${fraction}`;
}

function percent(value: number | null, decimals = 2): string {
  return value === null ? '-' : `${(value * 100).toFixed(decimals)}%`;
}

function plain(value: number | null, decimals = 2): string {
  return value === null ? '-' : value.toFixed(decimals);
}

function tableRow(name: string, group: GroupWithChange): string[] {
  return [
    name,
    money(group.spend),
    money(group.revenue),
    group.impressions === null ? '-' : String(group.impressions),
    group.clicks === null ? '-' : String(group.clicks),
    group.conversions === null ? '-' : String(group.conversions),
    percent(group.ctr),
    plain(group.cpc),
    plain(group.cpm),
    percent(group.cvr),
    plain(group.cpa),
    group.roas === null ? '-' : `${group.roas.toFixed(2)}x`,
    percent(group.roi.value, 1),
    percent(group.change_vs_previous?.revenue.relative_change ?? null, 1),
  ];
}

/** Renders the answer as a readable text table. */
export function renderRoiTable(answer: CampaignRoiAnswer): string {
  const metrics = answer.marketing_metrics;
  const header = [
    '',
    'spend',
    'revenue',
    'impr',
    'clicks',
    'conv',
    'CTR',
    'CPC',
    'CPM',
    'CVR',
    'CPA',
    'ROAS',
    'ROI',
    'Δrev',
  ];
  const body = [
    tableRow('overall', metrics.overall),
    ...metrics.channels.map((channel) => tableRow(channel.channel, channel)),
  ];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...body.map((row) => row[column]!.length)),
  );
  const render = (row: readonly string[]): string =>
    row.map((cell, column) => pad(cell, widths[column]!, column > 0)).join('  ');
  const previous = metrics.previous_period === null ? 'none in the data' : metrics.previous_period.label;
  const lines = [
    `Campaign ROI ${metrics.period.label} (data ${metrics.period.data_from} to ${metrics.period.data_to}), ` +
      `${metrics.row_counts.analysed} of ${metrics.row_counts.total} rows; previous period: ${previous}`,
    '',
    render(header),
    render(header.map((_, column) => '-'.repeat(widths[column]!))),
    ...body.map(render),
    '',
    `ROI basis: ${metrics.overall.roi.basis} = ${metrics.overall.roi.formula}; Δrev = revenue change against the previous period.`,
  ];
  const { components } = answer.confidence;
  lines.push(
    `Confidence ${answer.confidence_score.toFixed(2)} (sample size ${components.sample_size.toFixed(2)}, ` +
      `completeness ${components.completeness.toFixed(2)}, grounding ${components.grounding === null ? 'n/a' : components.grounding.toFixed(2)})`,
  );
  const analysis = answer.llm_analysis;
  if (analysis === null) {
    lines.push(`Narrative: none (${answer.llm_unavailable_reason ?? 'no model'})`);
  } else {
    lines.push('', analysis.performance_summary, '', analysis.roi_analysis);
    for (const item of analysis.channel_analysis) lines.push(`- ${item.channel}: ${item.assessment}`);
    for (const recommendation of analysis.optimisation_recommendations) lines.push(`* ${recommendation}`);
    if (analysis.grounding.ungrounded.length > 0) {
      lines.push(
        `WARNING: the narrative quotes numbers that match no computed metric: ${analysis.grounding.ungrounded.map((item) => item.number).join(', ')}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** `agenthub analyze roi …` (argv is everything after `analyze roi`). */
export const analyzeRoiCommand: CliCommand = async (io) => {
  const parsed = parseCommandArgs(io, ANALYZE_USAGE, {
    input: { type: 'string', short: 'i' },
    json: { type: 'boolean' },
    model: { type: 'string' },
    period: { type: 'string' },
  });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  if (values.input === undefined) return usageError(io, ANALYZE_USAGE, '--input FILE.csv is required');
  let period: PeriodRequest;
  if (values.period !== undefined) {
    const parsed = values.period === 'all' ? 'all' : parsePeriodLabel(values.period);
    if (parsed === null)
      return usageError(io, ANALYZE_USAGE, `--period ${values.period} is not YYYY-Qn, YYYY-MM or all`);
    period = parsed;
  }

  let text: string;
  try {
    text = await readFile(resolve(io.cwd, values.input), 'utf8');
  } catch (error) {
    return failure(
      io,
      new Error(`cannot read ${values.input}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`),
    );
  }
  const modelPath = values.model ?? io.env.MODEL_PATH;
  let llm: LlmClient | null = null;
  try {
    const rows = parseCampaignCsv(text, { source: values.input });
    if (modelPath !== undefined && modelPath !== '') {
      const stateDir = resolveStateDir(io.cwd, undefined, io.env.AGENTHUB_STATE_DIR);
      llm = await openSpokeModel(io, stateDir, modelPath);
    }
    const { answer } = await analyzeCampaignRoi(rows, {
      llm,
      period,
      signal: io.signal,
      llmUnavailableReason: 'no model given (--model FILE or MODEL_PATH); metrics only',
    });
    io.stdout(values.json === true ? `${JSON.stringify(answer, null, 2)}\n` : renderRoiTable(answer));
    return 0;
  } catch (error) {
    if (isAppError(error) || error instanceof Error) return failure(io, error);
    throw error;
  } finally {
    await llm?.close();
  }
};

/** `agenthub sample q4 [--out FILE] [--seed N] [--year YYYY]` (argv is everything after `sample`). */
export const sampleCommand: CliCommand = async (io) => {
  const parsed = parseCommandArgs(
    io,
    SAMPLE_USAGE,
    { out: { type: 'string', short: 'o' }, seed: { type: 'string' }, year: { type: 'string' } },
    true,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || positionals[0] !== 'q4') {
    return usageError(io, SAMPLE_USAGE, `unknown sample "${positionals.join(' ')}" (available: q4)`);
  }
  const seed = values.seed === undefined ? 42 : Number(values.seed);
  const year = values.year === undefined ? 2025 : Number(values.year);
  if (!Number.isInteger(seed))
    return usageError(io, SAMPLE_USAGE, `--seed must be an integer (got ${values.seed})`);
  if (!Number.isInteger(year) || year < 1970 || year > 9999) {
    return usageError(io, SAMPLE_USAGE, `--year must be a year 1970-9999 (got ${values.year})`);
  }
  const csv = generateSampleCampaignCsv({ seed, year });
  if (values.out === undefined) {
    io.stdout(csv);
    return 0;
  }
  try {
    await writeFile(resolve(io.cwd, values.out), csv, 'utf8');
  } catch (error) {
    return failure(
      io,
      new Error(`cannot write ${values.out}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`),
    );
  }
  io.stderr(`wrote ${csv.split('\n').length - 2} rows (Q3 and Q4 ${year}, seed ${seed}) to ${values.out}\n`);
  return 0;
};
