// Persona discovery: documented feature scaling, clusters recovered from seeded synthetic leads, summaries
// computed in code, deterministic names without a model, bounded and Fair-Housing-checked LLM naming.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.js';
import type { LlmClient, StructuredRequest, StructuredResult } from '../../shared/llm_client.js';
import {
  discoverPersonas,
  personaNamingSchema,
  scaleLeadFeatures,
  type LeadFeatures,
  type Urgency,
} from '../../spoke_marketing/personas.js';
import { createRandom } from '../../spoke_marketing/random.js';

function syntheticLeads(seed: number): LeadFeatures[] {
  const random = createRandom(seed);
  const segments: { count: number; budget: number; location: string; type: string; urgency: Urgency[] }[] = [
    { count: 60, budget: 30_000_000, location: 'Downtown', type: 'condo', urgency: ['high'] },
    { count: 45, budget: 75_000_000, location: 'Maple Hills', type: 'single_family', urgency: ['medium'] },
    { count: 30, budget: 12_000_000, location: 'County North', type: 'land', urgency: ['low'] },
  ];
  const leads: LeadFeatures[] = [];
  let id = 1;
  for (const segment of segments) {
    for (let index = 0; index < segment.count; index += 1) {
      leads.push({
        id: id++,
        budgetMinor: Math.round(segment.budget * Math.exp(0.12 * random.normal())),
        location: segment.location,
        urgency: segment.urgency[Math.floor(random.next() * segment.urgency.length)]!,
        propertyType: segment.type,
      });
    }
  }
  return leads;
}

class ScriptedLlm implements LlmClient {
  readonly modelName = 'scripted';
  readonly requests: StructuredRequest<unknown>[] = [];
  constructor(private readonly output: (request: StructuredRequest<unknown>) => unknown) {}
  async generateStructured<T>(request: StructuredRequest<T>): Promise<StructuredResult<T>> {
    this.requests.push(request as StructuredRequest<unknown>);
    const value = request.validate(this.output(request as StructuredRequest<unknown>));
    return {
      value,
      rawText: '',
      usage: {
        promptTokens: 1,
        reusedPrefixTokens: 0,
        completionTokens: 1,
        timeToFirstTokenMs: null,
        totalMs: 1,
        generationTokensPerSecond: null,
        attempts: 1,
      },
    };
  }
  async generateText(): Promise<never> {
    throw new AppError('UNSUPPORTED_OPERATION', 'not scripted');
  }
  async embed(): Promise<never> {
    throw new AppError('UNSUPPORTED_OPERATION', 'not scripted');
  }
  async close(): Promise<void> {}
}

describe('scaleLeadFeatures', () => {
  const leads: LeadFeatures[] = [
    { budgetMinor: 10_000_000, location: 'A', urgency: 'low', propertyType: 'condo' },
    { budgetMinor: 20_000_000, location: 'B', urgency: 'immediate', propertyType: 'condo' },
    { budgetMinor: 40_000_000, location: 'a ', urgency: 'medium', propertyType: 'Land' },
  ];

  it('uses log budget with a robust z, ordinal urgency 0…2 and 1/√2 one-hots', () => {
    const { points, columns } = scaleLeadFeatures(leads);
    expect(columns).toEqual([
      'budget_log_robust_z',
      'urgency_ordinal',
      'location=a',
      'location=b',
      'property_type=condo',
      'property_type=land',
    ]);
    // median of ln budgets is ln(2e7); MAD = ln 2 → z = ±1/1.4826
    expect(points[0]![0]).toBeCloseTo(-1 / 1.4826, 12);
    expect(points[1]![0]).toBeCloseTo(0, 12);
    expect(Array.from(points.map((point) => point[1]!))).toEqual([0, 2, 2 / 3]);
    // two leads that differ only in one category are at distance 1 in that family
    const distance = Math.hypot(points[0]![2]! - points[1]![2]!, points[0]![3]! - points[1]![3]!);
    expect(distance).toBeCloseTo(1, 12);
  });

  it('prefers regions when every lead has one, and rejects bad leads with VALIDATION_FAILED', () => {
    const withRegions = leads.map((lead, index) => ({ ...lead, region: index === 1 ? 'East' : 'West' }));
    expect(scaleLeadFeatures(withRegions).locationField).toBe('region');
    expect(() => scaleLeadFeatures([{ ...leads[0]!, budgetMinor: 0 }])).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    expect(() => scaleLeadFeatures([{ ...leads[0]!, urgency: 'asap' as Urgency }])).toThrow(/urgency/);
  });
});

describe('discoverPersonas', () => {
  const leads = syntheticLeads(11);

  it('finds the three segments and summarises them in code (no LLM: rule names, flagged)', async () => {
    const personas = await discoverPersonas(leads, { minClusterSize: 15 }, null);
    expect(personas.map((persona) => persona.summary.size)).toEqual([60, 45, 30]);
    const [condo, house, land] = personas;
    expect(condo!.summary.propertyTypes[0]).toEqual({ value: 'condo', share: 1 });
    expect(condo!.summary.topLocations[0]!.value).toBe('downtown');
    expect(house!.summary.medianBudgetMinor).toBeGreaterThan(60_000_000);
    expect(land!.summary.urgency.low).toBe(1);
    expect(personas.every((persona) => persona.nameSource === 'rules')).toBe(true);
    expect(condo!.name).toMatch(/^High-urgency Condo · Downtown · ~\d+k$/);
    expect(condo!.leadIds).toHaveLength(60);
    expect(condo!.description).toMatch(/^60 leads \(44%\), median budget/);
  });

  it('is deterministic', async () => {
    const first = await discoverPersonas(leads, { minClusterSize: 15 }, null);
    const second = await discoverPersonas(leads, { minClusterSize: 15 }, null);
    expect(second).toEqual(first);
  });

  it('asks the LLM once with a bounded schema and uses its names', async () => {
    const llm = new ScriptedLlm(() => ({
      personas: [0, 1, 2].map((clusterLabel) => ({
        clusterLabel,
        name: `Segment ${clusterLabel}`,
        description: 'Buyers of move-in-ready homes in this price band.',
        messaging: ['New listings in your price range'],
      })),
    }));
    const personas = await discoverPersonas(leads, { minClusterSize: 15 }, llm);
    expect(llm.requests).toHaveLength(1);
    expect(personas.map((persona) => persona.name)).toEqual(['Segment 0', 'Segment 1', 'Segment 2']);
    expect(personas.every((persona) => persona.nameSource === 'llm')).toBe(true);
    const schema = JSON.stringify(llm.requests[0]!.schema);
    expect(schema).toContain('"maxItems":3');
    expect(schema).toContain('"maxLength":60');
    expect(llm.requests[0]!.prompt).toContain('cluster 0: 60 leads');
  });

  it('rejects LLM messaging that describes the people (Fair Housing) as LLM_OUTPUT_INVALID', async () => {
    const llm = new ScriptedLlm(() => ({
      personas: [0, 1, 2].map((clusterLabel) => ({
        clusterLabel,
        name: `Segment ${clusterLabel}`,
        description: 'Quiet building',
        messaging: ['Perfect for empty nesters'],
      })),
    }));
    await expect(discoverPersonas(leads, { minClusterSize: 15 }, llm)).rejects.toMatchObject({
      code: 'LLM_OUTPUT_INVALID',
    });
  });

  it('rejects output that names a cluster twice or is unbounded', async () => {
    const duplicate = new ScriptedLlm(() => ({
      personas: [0, 0, 1].map((clusterLabel) => ({
        clusterLabel,
        name: 'x',
        description: 'y',
        messaging: ['z'],
      })),
    }));
    await expect(discoverPersonas(leads, { minClusterSize: 15 }, duplicate)).rejects.toMatchObject({
      code: 'LLM_OUTPUT_INVALID',
    });
    expect(JSON.stringify(personaNamingSchema(2))).toContain('"maxItems":2');
  });

  it('returns no personas for too few leads and honours an aborted signal', async () => {
    expect(await discoverPersonas(leads.slice(0, 5), { minClusterSize: 15 }, null)).toEqual([]);
    const controller = new AbortController();
    controller.abort();
    await expect(
      discoverPersonas(leads, { minClusterSize: 15 }, null, controller.signal),
    ).rejects.toMatchObject({ code: 'CANCELED' });
  });
});
