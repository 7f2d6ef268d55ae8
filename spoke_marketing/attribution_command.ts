// `agenthub analyze attribution`: reads a ChannelAttribution path file or a per-touch journey CSV and prints
// the channel credit of one attribution model as a table or JSON.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CliCommand, CliIo } from '../shared/cli/io.js';
import { errorMessage, isAppError } from '../shared/errors.js';
import {
  ATTRIBUTION_MODELS,
  attribute,
  parseJourneyCsv,
  parsePathFile,
  type AttributionModel,
  type AttributionResult,
  type ConversionPath,
} from './attribution.js';

const USAGE = `usage: agenthub analyze attribution --model NAME --input FILE [--half-life-hours N] [--markov-order N] [--json]
  --model            one of ${ATTRIBUTION_MODELS.join(', ')}
  --input            path file (path;total_conversions;total_conversion_value;total_null) or
                     journey CSV (journey_id,timestamp,channel,converted,value)
  --half-life-hours  time-decay half-life in hours (default 168 = 7 days); needs a journey CSV
  --markov-order     Markov chain order (default 1)
  --json             print the result as JSON
`;

interface AttributionArgs {
  model: AttributionModel;
  input: string;
  halfLifeHours: number | undefined;
  markovOrder: number | undefined;
  json: boolean;
}

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): AttributionArgs | 'help' {
  const values = new Map<string, string>();
  let json = false;
  const valued = new Set(['--model', '--input', '--half-life-hours', '--markov-order']);
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index]!;
    if (argument === '--help' || argument === '-h') return 'help';
    if (argument === '--json') {
      json = true;
      continue;
    }
    const equals = argument.indexOf('=');
    const name = equals > 0 ? argument.slice(0, equals) : argument;
    if (!valued.has(name)) throw new UsageError(`unknown argument "${argument}"`);
    if (values.has(name)) throw new UsageError(`${name} given twice`);
    const value = equals > 0 ? argument.slice(equals + 1) : argv[++index];
    if (value === undefined || value === '' || (equals < 0 && value.startsWith('--'))) {
      throw new UsageError(`${name} needs a value`);
    }
    values.set(name, value);
  }
  const model = values.get('--model');
  const input = values.get('--input');
  if (model === undefined) throw new UsageError('--model is required');
  if (input === undefined) throw new UsageError('--input is required');
  if (!(ATTRIBUTION_MODELS as readonly string[]).includes(model)) {
    throw new UsageError(`unknown model "${model}" (expected one of ${ATTRIBUTION_MODELS.join(', ')})`);
  }
  const halfLifeText = values.get('--half-life-hours');
  const halfLifeHours = halfLifeText === undefined ? undefined : Number(halfLifeText);
  if (halfLifeHours !== undefined && !(Number.isFinite(halfLifeHours) && halfLifeHours > 0)) {
    throw new UsageError(`--half-life-hours must be a positive number, got "${halfLifeText}"`);
  }
  const orderText = values.get('--markov-order');
  const markovOrder = orderText === undefined ? undefined : Number(orderText);
  if (markovOrder !== undefined && !(Number.isInteger(markovOrder) && markovOrder >= 1)) {
    throw new UsageError(`--markov-order must be a positive integer, got "${orderText}"`);
  }
  return { model: model as AttributionModel, input, halfLifeHours, markovOrder, json };
}

/** Chooses the reader from the header: `path` + `total_conversions` → path file, `journey_id` → journey CSV. */
function parseInput(text: string, source: string): ConversionPath[] {
  const header = (text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '').toLowerCase();
  const columns = header.split(/[;,]/).map((column) => column.trim().replace(/^"|"$/g, ''));
  if (columns.includes('path') && columns.includes('total_conversions')) return parsePathFile(text, source);
  if (columns.includes('journey_id')) return parseJourneyCsv(text, source);
  throw new Error(
    `${source} line 1: unrecognised header; expected path;total_conversions;... or journey_id,timestamp,channel,converted,value`,
  );
}

function formatTable(result: AttributionResult, pathCount: number): string {
  const rows = Object.entries(result.byChannel).sort(([, a], [, b]) => b.conversions - a.conversions);
  const width = Math.max(7, ...rows.map(([channel]) => channel.length));
  const lines = [
    `model ${result.model}: ${pathCount} paths, ${round(result.totalConversions, 4)} conversions, value ${round(result.totalValue, 2)}`,
    `${'channel'.padEnd(width)}  ${'conversions'.padStart(14)}  ${'share'.padStart(7)}  ${'value'.padStart(14)}`,
  ];
  for (const [channel, credit] of rows) {
    const share = result.totalConversions > 0 ? (100 * credit.conversions) / result.totalConversions : 0;
    lines.push(
      `${channel.padEnd(width)}  ${credit.conversions.toFixed(4).padStart(14)}  ${`${share.toFixed(2)}%`.padStart(7)}  ${credit.value.toFixed(2).padStart(14)}`,
    );
  }
  const conversion = result.details?.['conversionProbability'];
  if (typeof conversion === 'number') lines.push(`P(conversion) from (start): ${conversion.toFixed(10)}`);
  return `${lines.join('\n')}\n`;
}

function round(value: number, digits: number): string {
  return Number(value.toFixed(digits)).toString();
}

/** `agenthub analyze attribution`: 0 on success, 1 on unreadable or invalid input, 2 on a usage error. */
export const analyzeAttributionCommand: CliCommand = async (io: CliIo): Promise<number> => {
  let args: AttributionArgs | 'help';
  try {
    args = parseArgs(io.argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`error: ${error.message}\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  try {
    const file = resolve(io.cwd, args.input);
    const text = await readFile(file, { encoding: 'utf8', signal: io.signal });
    const paths = parseInput(text, args.input);
    const result = attribute(paths, args.model, {
      ...(args.halfLifeHours === undefined ? {} : { halfLifeMs: args.halfLifeHours * 3_600_000 }),
      ...(args.markovOrder === undefined ? {} : { markovOrder: args.markovOrder }),
    });
    io.stdout(args.json ? `${JSON.stringify(result, null, 2)}\n` : formatTable(result, paths.length));
    return 0;
  } catch (error) {
    const message = errorMessage(error);
    io.stderr(`error: ${isAppError(error) ? `${error.code}: ${message}` : message}\n`);
    return 1;
  }
};
