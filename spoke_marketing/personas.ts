// Persona discovery from leads: feature scaling (documented below), HDBSCAN clustering, cluster summaries
// computed in code, and names/messaging from the LLM under a bounded schema (or deterministic names
// without a model). The model only narrates; every number in a persona comes from the summaries.
import { z } from 'zod';
import { AppError } from '../shared/errors.js';
import type { JsonSchema, LlmClient } from '../shared/llm_client.js';
import { checkCompliance } from './compliance.js';
import { hdbscan } from './hdbscan.js';

/** Purchase urgency, in increasing order. */
export const URGENCY_LEVELS = ['low', 'medium', 'high', 'immediate'] as const;
export type Urgency = (typeof URGENCY_LEVELS)[number];

/** What clustering uses from one lead. */
export interface LeadFeatures {
  /** Lead id, carried through to the persona's member list. */
  readonly id?: string | number;
  /** Stated budget (or price-range midpoint) in integer minor units; > 0. */
  readonly budgetMinor: number;
  /** City, neighbourhood or ZIP label. */
  readonly location: string;
  /** Coarser region; when every lead has one, regions replace locations in the features. */
  readonly region?: string;
  readonly urgency: Urgency;
  /** E.g. condo, single_family, townhouse, land. */
  readonly propertyType: string;
}

/** A share of one category inside a cluster. */
export interface CategoryShare {
  readonly value: string;
  readonly share: number;
}

/** Numbers describing one cluster, computed in code. */
export interface PersonaSummary {
  readonly size: number;
  /** Share of all leads (noise included). */
  readonly shareOfLeads: number;
  readonly averageBudgetMinor: number;
  readonly medianBudgetMinor: number;
  readonly budgetP25Minor: number;
  readonly budgetP75Minor: number;
  /** Share of members per urgency level. */
  readonly urgency: Readonly<Record<Urgency, number>>;
  /** Most common locations (or regions), largest first, at most 3. */
  readonly topLocations: readonly CategoryShare[];
  /** Property types, largest first, at most 3. */
  readonly propertyTypes: readonly CategoryShare[];
  /** Mean HDBSCAN membership probability of the members. */
  readonly averageMembership: number;
}

/** One discovered persona. */
export interface Persona {
  readonly clusterLabel: number;
  readonly name: string;
  readonly description: string;
  /** Up to three messaging angles about the property offer (never about who the buyers are). */
  readonly messaging: readonly string[];
  /** 'llm' when the model wrote name/description/messaging; 'rules' for the deterministic fallback. */
  readonly nameSource: 'llm' | 'rules';
  readonly summary: PersonaSummary;
  /** Indices into the input array. */
  readonly memberIndices: readonly number[];
  /** Ids of the members that had one. */
  readonly leadIds: readonly (string | number)[];
}

/** Options of {@link discoverPersonas}. */
export interface DiscoverPersonasOptions {
  readonly minClusterSize: number;
  readonly minSamples?: number;
  readonly method?: 'hdbscan';
}

/** Categories kept as their own one-hot column; rarer ones share an "other" column. */
export const MAX_CATEGORY_COLUMNS = 12;

/**
 * Feature scaling, chosen so that one unit of distance means "one robust standard deviation" for every
 * feature family:
 *  - budget: ln(budget), then robust z = (x − median) / (1.4826 · MAD) (IQR/1.349 when MAD is 0, else 1);
 *  - urgency: ordinal 0…3 mapped to 0…2 (low → immediate spans two robust SDs);
 *  - location (region when every lead has one) and property type: one-hot with value 1/√2, so two leads
 *    differing in the category are at distance exactly 1; beyond {@link MAX_CATEGORY_COLUMNS} categories
 *    the rarest share an "other" column.
 */
export function scaleLeadFeatures(leads: readonly LeadFeatures[]): {
  points: Float64Array[];
  columns: string[];
  locationField: 'location' | 'region';
} {
  leads.forEach(validateLead);
  const logBudgets = leads.map((lead) => Math.log(lead.budgetMinor));
  const center = median(logBudgets);
  const mad = median(logBudgets.map((value) => Math.abs(value - center))) * 1.4826;
  const iqr = (quantile(logBudgets, 0.75) - quantile(logBudgets, 0.25)) / 1.349;
  const scale = mad > 0 ? mad : iqr > 0 ? iqr : 1;
  const locationField =
    leads.length > 0 && leads.every((lead) => (lead.region ?? '').trim() !== '') ? 'region' : 'location';
  const locations = categoryColumns(leads.map((lead) => categoryOf(lead, locationField)));
  const types = categoryColumns(leads.map((lead) => normaliseCategory(lead.propertyType)));
  const oneHot = Math.SQRT1_2;
  const columns = [
    'budget_log_robust_z',
    'urgency_ordinal',
    ...locations.map((name) => `${locationField}=${name}`),
    ...types.map((name) => `property_type=${name}`),
  ];
  const points = leads.map((lead, index) => {
    const row = new Float64Array(columns.length);
    row[0] = (logBudgets[index]! - center) / scale;
    row[1] = (URGENCY_LEVELS.indexOf(lead.urgency) * 2) / (URGENCY_LEVELS.length - 1);
    row[2 + columnIndex(locations, categoryOf(lead, locationField))] = oneHot;
    row[2 + locations.length + columnIndex(types, normaliseCategory(lead.propertyType))] = oneHot;
    return row;
  });
  return { points, columns, locationField };
}

function validateLead(lead: LeadFeatures, index: number): void {
  if (!Number.isSafeInteger(lead.budgetMinor) || lead.budgetMinor <= 0) {
    throw new AppError(
      'VALIDATION_FAILED',
      `lead ${index}: budgetMinor must be a positive integer, got ${lead.budgetMinor}`,
      {
        details: { index, field: 'budgetMinor' },
      },
    );
  }
  if (!(URGENCY_LEVELS as readonly string[]).includes(lead.urgency)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `lead ${index}: urgency must be one of ${URGENCY_LEVELS.join(', ')}, got ${String(lead.urgency)}`,
      {
        details: { index, field: 'urgency' },
      },
    );
  }
  if (typeof lead.location !== 'string' || lead.location.trim() === '') {
    throw new AppError('VALIDATION_FAILED', `lead ${index}: location is required`, {
      details: { index, field: 'location' },
    });
  }
  if (typeof lead.propertyType !== 'string' || lead.propertyType.trim() === '') {
    throw new AppError('VALIDATION_FAILED', `lead ${index}: propertyType is required`, {
      details: { index, field: 'propertyType' },
    });
  }
}

function normaliseCategory(value: string): string {
  return value.trim().toLowerCase().replace(/\s+/g, ' ');
}

function categoryOf(lead: LeadFeatures, field: 'location' | 'region'): string {
  return normaliseCategory(field === 'region' ? lead.region! : lead.location);
}

const OTHER = 'other';

function categoryColumns(values: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  const ordered = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([value]) => value);
  return ordered.length <= MAX_CATEGORY_COLUMNS
    ? ordered
    : [...ordered.slice(0, MAX_CATEGORY_COLUMNS - 1), OTHER];
}

function columnIndex(columns: readonly string[], value: string): number {
  const index = columns.indexOf(value);
  return index >= 0 ? index : columns.indexOf(OTHER);
}

function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below);
}

function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

function shares(values: readonly string[], limit: number): CategoryShare[] {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([value, count]) => ({ value, share: count / values.length }));
}

/** Summarises the members of one cluster. */
export function summariseCluster(
  leads: readonly LeadFeatures[],
  members: readonly number[],
  probabilities: ArrayLike<number>,
  locationField: 'location' | 'region',
): PersonaSummary {
  const budgets = members.map((index) => leads[index]!.budgetMinor);
  const urgency = Object.fromEntries(URGENCY_LEVELS.map((level) => [level, 0])) as Record<Urgency, number>;
  for (const index of members) urgency[leads[index]!.urgency] += 1;
  for (const level of URGENCY_LEVELS) urgency[level] /= members.length;
  return {
    size: members.length,
    shareOfLeads: members.length / leads.length,
    averageBudgetMinor: Math.round(budgets.reduce((sum, value) => sum + value, 0) / budgets.length),
    medianBudgetMinor: Math.round(median(budgets)),
    budgetP25Minor: Math.round(quantile(budgets, 0.25)),
    budgetP75Minor: Math.round(quantile(budgets, 0.75)),
    urgency,
    topLocations: shares(
      members.map((index) => categoryOf(leads[index]!, locationField)),
      3,
    ),
    propertyTypes: shares(
      members.map((index) => normaliseCategory(leads[index]!.propertyType)),
      3,
    ),
    averageMembership: members.reduce((sum, index) => sum + probabilities[index]!, 0) / members.length,
  };
}

/** Budget in major units, compact ("450k", "1.2M"); minor units are hundredths. */
function formatBudget(minor: number): string {
  const major = minor / 100;
  if (major >= 1e6) return `${(major / 1e6).toFixed(major >= 1e7 ? 0 : 1)}M`;
  if (major >= 1e3) return `${Math.round(major / 1e3)}k`;
  return String(Math.round(major));
}

function dominantUrgency(summary: PersonaSummary): Urgency {
  return URGENCY_LEVELS.reduce(
    (best, level) => (summary.urgency[level] > summary.urgency[best] ? level : best),
    URGENCY_LEVELS[0],
  );
}

function titleCase(value: string): string {
  return value.replace(/[_-]+/g, ' ').replace(/\b\p{L}/gu, (letter) => letter.toUpperCase());
}

/** Deterministic persona text built from the summary alone. */
export function describePersonaFromSummary(summary: PersonaSummary): {
  name: string;
  description: string;
  messaging: string[];
} {
  const type = summary.propertyTypes[0]?.value ?? 'property';
  const place = summary.topLocations[0]?.value ?? 'various areas';
  const urgency = dominantUrgency(summary);
  const name = `${titleCase(urgency)}-urgency ${titleCase(type)} · ${titleCase(place)} · ~${formatBudget(summary.medianBudgetMinor)}`;
  const description =
    `${summary.size} leads (${(summary.shareOfLeads * 100).toFixed(0)}%), median budget ${formatBudget(summary.medianBudgetMinor)} ` +
    `(IQR ${formatBudget(summary.budgetP25Minor)}–${formatBudget(summary.budgetP75Minor)}), ` +
    `${(summary.urgency[urgency] * 100).toFixed(0)}% ${urgency} urgency, ` +
    `${((summary.propertyTypes[0]?.share ?? 0) * 100).toFixed(0)}% ${type}, ` +
    `${((summary.topLocations[0]?.share ?? 0) * 100).toFixed(0)}% in ${place}.`;
  const messaging = [
    `${titleCase(type)} listings in ${titleCase(place)} around ${formatBudget(summary.medianBudgetMinor)}`,
    urgency === 'high' || urgency === 'immediate'
      ? 'Move-in-ready homes and fast closing'
      : 'New listings and market updates',
  ];
  return { name, description, messaging };
}

// ---------------------------------------------------------------------------------------------------
// LLM naming

export const MAX_PERSONA_NAME_LENGTH = 60;
export const MAX_PERSONA_DESCRIPTION_LENGTH = 300;
export const MAX_MESSAGING_ITEMS = 3;
export const MAX_MESSAGING_LENGTH = 160;

/** JSON schema for the naming call; every string and array is bounded. */
export function personaNamingSchema(clusterCount: number): JsonSchema {
  return {
    type: 'object',
    properties: {
      personas: {
        type: 'array',
        minItems: clusterCount,
        maxItems: clusterCount,
        items: {
          type: 'object',
          properties: {
            clusterLabel: { type: 'integer', minimum: 0, maximum: Math.max(0, clusterCount - 1) },
            name: { type: 'string', minLength: 1, maxLength: MAX_PERSONA_NAME_LENGTH },
            description: { type: 'string', minLength: 1, maxLength: MAX_PERSONA_DESCRIPTION_LENGTH },
            messaging: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_MESSAGING_ITEMS,
              items: { type: 'string', minLength: 1, maxLength: MAX_MESSAGING_LENGTH },
            },
          },
          required: ['clusterLabel', 'name', 'description', 'messaging'],
          additionalProperties: false,
        },
      },
    },
    required: ['personas'],
    additionalProperties: false,
  };
}

type NamedPersona = { clusterLabel: number; name: string; description: string; messaging: string[] };

function namingValidator(clusterCount: number): (value: unknown) => NamedPersona[] {
  const schema = z
    .object({
      personas: z
        .array(
          z
            .object({
              clusterLabel: z
                .number()
                .int()
                .min(0)
                .max(clusterCount - 1),
              name: z.string().trim().min(1).max(MAX_PERSONA_NAME_LENGTH),
              description: z.string().trim().min(1).max(MAX_PERSONA_DESCRIPTION_LENGTH),
              messaging: z
                .array(z.string().trim().min(1).max(MAX_MESSAGING_LENGTH))
                .min(1)
                .max(MAX_MESSAGING_ITEMS),
            })
            .strict(),
        )
        .length(clusterCount),
    })
    .strict();
  return (value) => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new AppError(
        'LLM_OUTPUT_INVALID',
        `persona naming output invalid: ${parsed.error.issues[0]?.message ?? 'unknown'}`,
      );
    }
    const labels = new Set(parsed.data.personas.map((persona) => persona.clusterLabel));
    if (labels.size !== clusterCount) {
      throw new AppError('LLM_OUTPUT_INVALID', 'persona naming output must name every cluster exactly once');
    }
    for (const persona of parsed.data.personas) {
      // Messaging goes into ads: it must pass the Fair Housing engine (describe the property, not the people).
      for (const text of [persona.name, persona.description, ...persona.messaging]) {
        const report = checkCompliance(text);
        if (!report.compliant) {
          throw new AppError('LLM_OUTPUT_INVALID', `persona text fails Fair Housing rules: "${text}"`, {
            details: { findings: report.findings.map((finding) => finding.ruleId) },
          });
        }
      }
    }
    return parsed.data.personas;
  };
}

const NAMING_SYSTEM_PROMPT =
  'You name real-estate lead segments for a marketing team. Use only the numbers given. Names and ' +
  'messaging must describe the property offer (price band, property type, location, timing), never the ' +
  'people: no race, color, religion, sex, disability, family status, national origin or age. Return JSON.';

async function nameWithLlm(
  summaries: readonly PersonaSummary[],
  llm: LlmClient,
  signal?: AbortSignal,
): Promise<NamedPersona[]> {
  const lines = summaries.map(
    (summary, label) =>
      `cluster ${label}: ${summary.size} leads; median budget ${formatBudget(summary.medianBudgetMinor)} ` +
      `(IQR ${formatBudget(summary.budgetP25Minor)}–${formatBudget(summary.budgetP75Minor)}); urgency ` +
      URGENCY_LEVELS.map((level) => `${level} ${(summary.urgency[level] * 100).toFixed(0)}%`).join(', ') +
      `; locations ${summary.topLocations.map((item) => `${item.value} ${(item.share * 100).toFixed(0)}%`).join(', ')}` +
      `; property types ${summary.propertyTypes.map((item) => `${item.value} ${(item.share * 100).toFixed(0)}%`).join(', ')}`,
  );
  const result = await llm.generateStructured({
    system: NAMING_SYSTEM_PROMPT,
    prompt: `Name each segment (name ≤ ${MAX_PERSONA_NAME_LENGTH} chars, description ≤ ${MAX_PERSONA_DESCRIPTION_LENGTH}, up to ${MAX_MESSAGING_ITEMS} messaging angles).\n${lines.join('\n')}`,
    schema: personaNamingSchema(summaries.length),
    validate: namingValidator(summaries.length),
    maxTokens: 220 * summaries.length + 100,
    ...(signal === undefined ? {} : { signal }),
  });
  return result.value;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new AppError('CANCELED', 'persona discovery was canceled');
}

/**
 * Scales the leads, clusters them with HDBSCAN, summarises each cluster in code and names it — with the
 * LLM under a bounded schema (its messaging must pass the Fair Housing engine), or deterministically from
 * the summary when `llm` is null (`nameSource: 'rules'`). Noise leads belong to no persona.
 * Personas are ordered by size, largest first.
 */
export async function discoverPersonas(
  leads: LeadFeatures[],
  options: DiscoverPersonasOptions,
  llm: LlmClient | null,
  signal?: AbortSignal,
): Promise<Persona[]> {
  if ((options.method ?? 'hdbscan') !== 'hdbscan') {
    throw new AppError('VALIDATION_FAILED', `unknown persona clustering method ${String(options.method)}`);
  }
  throwIfAborted(signal);
  if (leads.length < options.minClusterSize) return [];
  const { points, locationField } = scaleLeadFeatures(leads);
  const clustering = hdbscan(points, {
    minClusterSize: options.minClusterSize,
    minSamples: Math.min(options.minSamples ?? options.minClusterSize, leads.length),
  });
  throwIfAborted(signal);
  const members: number[][] = Array.from({ length: clustering.clusterCount }, () => []);
  clustering.labels.forEach((label, index) => {
    if (label >= 0) members[label]!.push(index);
  });
  const order = members
    .map((_, label) => label)
    .sort((a, b) => members[b]!.length - members[a]!.length || a - b);
  const summaries = order.map((label) =>
    summariseCluster(leads, members[label]!, clustering.probabilities, locationField),
  );
  const named = llm === null ? null : await nameWithLlm(summaries, llm, signal);
  return order.map((label, position): Persona => {
    const summary = summaries[position]!;
    const text =
      named === null
        ? describePersonaFromSummary(summary)
        : named.find((item) => item.clusterLabel === position)!;
    const indices = members[label]!;
    return {
      clusterLabel: position,
      name: text.name,
      description: text.description,
      messaging: text.messaging,
      nameSource: named === null ? 'rules' : 'llm',
      summary,
      memberIndices: indices,
      leadIds: indices.flatMap((index) => (leads[index]!.id === undefined ? [] : [leads[index]!.id!])),
    };
  });
}
