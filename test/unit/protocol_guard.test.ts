// The hand-written SendMessage params guard against the zod schema it stands in for: on thousands of seeded
// mutations of valid params, whatever the guard accepts the schema accepts too, and returns unchanged.
import { describe, expect, it } from 'vitest';
import { SendMessageParamsSchema, isSendMessageParams } from '../../shared/protocol.js';
import { seededRandom } from '../helpers/seeded_random.js';

const bases: unknown[] = [
  { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'How did Q4 do?' }] } },
  {
    tenant: 'marketing',
    message: {
      messageId: 'm2',
      contextId: 'c2',
      taskId: 't2',
      role: 'ROLE_AGENT',
      parts: [
        { text: 'hi', mediaType: 'text/plain' },
        { data: { a: [1, 2] }, metadata: { k: 1 } },
      ],
      metadata: { 'agenthub/skill': 'roi' },
      extensions: ['urn:x'],
      referenceTaskIds: ['t1'],
    },
    configuration: { acceptedOutputModes: ['text/plain'], historyLength: 2, returnImmediately: true },
    metadata: { 'agenthub/deadline': 1_900_000_000_000 },
  },
];

const replacements: unknown[] = [
  null,
  0,
  -1,
  1.5,
  1001,
  '',
  'x',
  'x'.repeat(300),
  'x'.repeat(600),
  'Marketing',
  'marketing',
  'ROLE_USER',
  'user',
  true,
  [],
  [{ text: 'a' }],
  [{ text: 'a', data: 1 }],
  [{ url: 'https://example.com/a' }],
  {},
  { text: 'a' },
  { ['k'.repeat(257)]: 1 },
];

/** Every path to a member of a JSON value (object keys and array indexes). */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== 'object' || value === null) return [prefix];
  const entries = Array.isArray(value)
    ? value.map((item, index) => [index, item] as const)
    : Object.entries(value);
  return [prefix, ...entries.flatMap(([key, member]) => paths(member, [...prefix, key]))];
}

function mutate(base: unknown, random: () => number): unknown {
  const value = structuredClone(base) as Record<string | number, unknown>;
  for (let step = 0; step < 1 + Math.floor(random() * 3); step += 1) {
    const all = paths(value).filter((path) => path.length > 0);
    if (all.length === 0) break;
    const path = all[Math.floor(random() * all.length)] as (string | number)[];
    let parent = value as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
    const last = path.at(-1) as string | number;
    const choice = random();
    if (choice < 0.25 && !Array.isArray(parent)) delete parent[last];
    else if (choice < 0.35 && !Array.isArray(parent)) parent[`extra${Math.floor(random() * 3)}`] = 1;
    else parent[last] = structuredClone(replacements[Math.floor(random() * replacements.length)]);
  }
  return JSON.parse(JSON.stringify(value)) as unknown;
}

describe('isSendMessageParams', () => {
  it('accepts the valid bases, as the schema does', () => {
    for (const base of bases) {
      expect(isSendMessageParams(base)).toBe(true);
      expect(SendMessageParamsSchema.safeParse(base).success).toBe(true);
    }
  });

  it('accepts only what the schema accepts, and the schema returns it unchanged (10,000 mutations)', () => {
    const random = seededRandom(20261122);
    let accepted = 0;
    let rejected = 0;
    for (let round = 0; round < 10_000; round += 1) {
      const candidate = mutate(bases[round % bases.length], random);
      if (!isSendMessageParams(candidate)) {
        rejected += 1;
        continue;
      }
      accepted += 1;
      const parsed = SendMessageParamsSchema.safeParse(candidate);
      expect(parsed.success, JSON.stringify(candidate)).toBe(true);
      expect(parsed.data).toEqual(candidate);
    }
    // Both sides of the guard were exercised.
    expect(accepted).toBeGreaterThan(500);
    expect(rejected).toBeGreaterThan(500);
  });
});
