// The longest JSON text a bounded JSON schema admits, in characters: the runtime's default token budget for
// grammar-constrained output, so a valid answer is never cut off by maxTokens (a token spells ≥ 1 character).
import type { JsonSchema } from './llm_client.js';

/** Room for one scalar number as the grammar writes it (sign, digits, fraction, exponent). */
const NUMBER_CHARS = 24;

/**
 * An upper bound on the serialised length of any value `schema` admits (compact JSON, no escapes), or null
 * when the schema leaves a string or array unbounded (then no bound exists).
 */
export function maxJsonLength(schema: JsonSchema): number | null {
  const options = (schema.oneOf ?? schema.anyOf) as JsonSchema[] | undefined;
  if (options !== undefined) return maxOf(options.map((option) => maxJsonLength(option)));
  if (Array.isArray(schema.enum)) return maxOf(schema.enum.map((value) => JSON.stringify(value).length));
  if ('const' in schema) return JSON.stringify(schema.const).length;
  const type = schema.type;
  if (Array.isArray(type)) return maxOf(type.map((entry) => maxJsonLength({ ...schema, type: entry })));
  switch (type) {
    case 'string':
      return typeof schema.maxLength === 'number' ? schema.maxLength + 2 : null;
    case 'number':
    case 'integer':
      return NUMBER_CHARS;
    case 'boolean':
      return 5;
    case 'null':
      return 4;
    case 'array': {
      if (typeof schema.maxItems !== 'number') return null;
      const item = maxJsonLength((schema.items ?? {}) as JsonSchema);
      return item === null ? null : 2 + schema.maxItems * (item + 1);
    }
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
      let total = 2;
      for (const [name, property] of Object.entries(properties)) {
        const value = maxJsonLength(property);
        if (value === null) return null;
        total += JSON.stringify(name).length + 1 + value + 1;
      }
      return total;
    }
    default:
      return null;
  }
}

function maxOf(values: ReadonlyArray<number | null>): number | null {
  let best = 0;
  for (const value of values) {
    if (value === null) return null;
    best = Math.max(best, value);
  }
  return best;
}
