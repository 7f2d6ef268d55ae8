// Agent cards and A2A payloads against the A2A v1 JSON Schema bundle (read in place from ../shared/vectors,
// $refs rewritten as PROTOCOL.md §1.10 explains): the live spoke card, the hub's multi-tenant card, and the
// spoke's SendMessage and stream responses.
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EXTENSION_URIS,
  buildHubCard,
  buildSpokeCard,
  describeSpokeCard,
  parseAgentCard,
  type AgentCard,
} from '../../shared/agent_card.js';
import { WS_BINDING_URI } from '../../shared/protocol.js';
import { PING_SPOKE_SKILLS } from '../helpers/ping_spoke_main.js';
import { hasShared, sharedPath } from '../helpers/shared_data.js';
import {
  makeKeys,
  messageParams,
  rpc,
  rpcStream,
  startTestSpoke,
  type TestSpoke,
} from './spoke_runtime_helpers.js';

const SCHEMA_FILE = 'vectors/a2a_v1_schema.json';
const schemaPresent = hasShared(SCHEMA_FILE);

/** `lf.a2a.v1.TaskStatus.jsonschema.json` → `#/definitions/TaskStatus`, with definition keys de-spaced to match. */
function loadValidators(): (definition: string) => ValidateFunction {
  const bundle = JSON.parse(readFileSync(sharedPath(SCHEMA_FILE), 'utf8')) as {
    definitions: Record<string, unknown>;
  };
  const definitions: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(bundle.definitions)) {
    const copy = { ...(value as Record<string, unknown>) };
    delete copy.$schema;
    definitions[key.replace(/ /g, '')] = copy;
  }
  const rewritten = JSON.parse(
    JSON.stringify({ definitions }).replace(
      /"\$ref":"(?:lf\.a2a\.v1|google\.protobuf)\.([A-Za-z0-9]+)\.jsonschema\.json"/g,
      '"$ref":"#/definitions/$1"',
    ),
  ) as { definitions: Record<string, unknown> };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  // ProtoJSON timestamps: RFC 3339 in UTC (A2A: ISO-8601 UTC with milliseconds).
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/);
  ajv.addSchema({ $id: 'a2a', ...rewritten });
  return (definition) => {
    const validate = ajv.getSchema(`a2a#/definitions/${definition}`);
    if (validate === undefined) throw new Error(`no definition ${definition}`);
    return validate;
  };
}

function expectValid(validate: ValidateFunction, value: unknown): void {
  const ok = validate(value);
  expect(ok ? [] : validate.errors).toEqual([]);
}

describe.skipIf(!schemaPresent)('A2A v1 JSON schema conformance', () => {
  let validator: (definition: string) => ValidateFunction;
  let testSpoke: TestSpoke;

  beforeAll(async () => {
    validator = loadValidators();
    testSpoke = await startTestSpoke(await makeKeys(), { capacity: 3 });
  });

  afterAll(async () => {
    await testSpoke?.spoke.close({ graceMs: 0 });
  });

  it('validates the live spoke card, with JSON-RPC and WS interfaces and skill schemas in an extension', async () => {
    const response = await fetch(`${testSpoke.spoke.apiUrl}/.well-known/agent-card.json`);
    expect(response.status).toBe(200);
    const card = (await response.json()) as AgentCard;
    expectValid(validator('AgentCard'), card);
    expect(card.supportedInterfaces).toEqual([
      { url: `${testSpoke.spoke.apiUrl}/a2a`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
      {
        url: `${testSpoke.spoke.apiUrl.replace('http', 'ws')}/v1/hub`,
        protocolBinding: WS_BINDING_URI,
        protocolVersion: '1.0',
      },
    ]);
    expect(card.skills.map((skill) => skill.id)).toEqual(['ping', 'echo', 'sleep', 'loop', 'ask']);
    const described = describeSpokeCard(parseAgentCard(card));
    expect(described.capacity).toBe(3);
    expect(described.skills.find((skill) => skill.id === 'sleep')?.inputSchema).toEqual(
      PING_SPOKE_SKILLS.find((skill) => skill.id === 'sleep')?.inputSchema,
    );
  });

  it('validates the hub card: one interface per tenant and our extensions advertised', () => {
    const card = buildHubCard({
      url: 'http://127.0.0.1:8080/',
      version: '0.1.0',
      tenants: [
        { name: 'marketing', description: 'campaign analysis', skills: PING_SPOKE_SKILLS },
        {
          name: 'finance',
          description: 'financial decisions',
          skills: [PING_SPOKE_SKILLS[0] as (typeof PING_SPOKE_SKILLS)[0]],
        },
      ],
    });
    expectValid(validator('AgentCard'), card);
    expect(card.supportedInterfaces).toEqual([
      {
        url: 'http://127.0.0.1:8080/a2a',
        protocolBinding: 'JSONRPC',
        protocolVersion: '1.0',
        tenant: 'marketing',
      },
      {
        url: 'http://127.0.0.1:8080/a2a',
        protocolBinding: 'JSONRPC',
        protocolVersion: '1.0',
        tenant: 'finance',
      },
    ]);
    const uris = card.capabilities.extensions.map((extension) => extension.uri);
    for (const uri of [
      EXTENSION_URIS.seq,
      EXTENSION_URIS.epoch,
      EXTENSION_URIS.afterSeq,
      EXTENSION_URIS.deadline,
      EXTENSION_URIS.traceparent,
    ]) {
      expect(uris).toContain(uri);
    }
    expect(card.skills.filter((skill) => skill.id === 'ping').map((skill) => skill.tags.at(-1))).toEqual([
      'tenant:marketing',
      'tenant:finance',
    ]);
  });

  it('rejects what A2A v1 does not allow: a schema member on a skill, a v0.3 top-level url', () => {
    const card = buildSpokeCard({
      name: 'x',
      description: 'x',
      version: '1',
      url: 'http://127.0.0.1:1',
      skills: PING_SPOKE_SKILLS,
      streaming: true,
      capacity: 1,
    });
    const validate = validator('AgentCard');
    expect(validate({ ...card, skills: [{ ...card.skills[0], inputSchema: { type: 'object' } }] })).toBe(
      false,
    );
    expect(validate({ ...card, url: 'http://127.0.0.1:1', protocolVersion: '0.3' })).toBe(false);
  });

  it('validates SendMessage responses and every stream event the spoke emits', async () => {
    const reply = await rpc(
      testSpoke.spoke,
      'SendMessage',
      messageParams('echo', { skill: 'echo', data: { a: 1 } }),
    );
    expectValid(validator('SendMessageResponse'), reply.body.result);
    const failed = await rpc(
      testSpoke.spoke,
      'SendMessage',
      messageParams('sleep', { skill: 'sleep', data: { ms: -1 } }),
    );
    expectValid(validator('SendMessageResponse'), failed.body.result);
    const events = await rpcStream(
      testSpoke.spoke,
      'SendStreamingMessage',
      messageParams('sleep 5', { skill: 'sleep' }),
    );
    // The started task, then the final task (artifact and terminal status made in one turn go out as one).
    expect(events.length).toBe(2);
    for (const event of events) expectValid(validator('StreamResponse'), event.result);
  });
});
