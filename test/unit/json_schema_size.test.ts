// The longest-JSON bound that sets the default token budget of structured answers.
import { describe, expect, it } from 'vitest';
import { maxJsonLength } from '../../shared/json_schema_size.js';

describe('maxJsonLength', () => {
  it.each([
    ['a bounded string', { type: 'string', maxLength: 10 }, 12],
    ['an enum', { enum: ['up', 'down', 'sideways'] }, 10],
    ['a boolean', { type: 'boolean' }, 5],
    [
      'a nullable bounded string via oneOf',
      { oneOf: [{ type: 'string', maxLength: 3 }, { type: 'null' }] },
      5,
    ],
    [
      'an array of bounded strings',
      { type: 'array', maxItems: 2, items: { type: 'string', maxLength: 3 } },
      2 + 2 * 6,
    ],
    [
      'an object',
      { type: 'object', properties: { a: { type: 'string', maxLength: 4 }, bb: { type: 'boolean' } } },
      2 + (3 + 1 + 6 + 1) + (4 + 1 + 5 + 1),
    ],
  ])('bounds %s', (_name, schema, expected) => {
    expect(maxJsonLength(schema)).toBe(expected);
  });

  it('is at least the length of the longest value the schema admits', () => {
    const schema = {
      type: 'object',
      properties: {
        title: { type: 'string', maxLength: 5 },
        tags: { type: 'array', maxItems: 3, items: { enum: ['x', 'yy'] } },
        note: { oneOf: [{ type: 'string', maxLength: 4 }, { type: 'null' }] },
      },
    };
    const longest = JSON.stringify({ title: 'abcde', tags: ['yy', 'yy', 'yy'], note: 'wxyz' });
    expect(maxJsonLength(schema)).toBeGreaterThanOrEqual(longest.length);
  });

  it.each([
    ['an unbounded string', { type: 'string' }],
    ['an unbounded array', { type: 'array', items: { type: 'boolean' } }],
    ['an object holding an unbounded string', { type: 'object', properties: { a: { type: 'string' } } }],
  ])('has no bound for %s', (_name, schema) => {
    expect(maxJsonLength(schema)).toBeNull();
  });
});
