// A2A v1.0 agent cards (ProtoJSON): a spoke's own card, the hub's multi-tenant card with one interface per
// spoke, the URIs of our protocol extensions, and reading skills (with their JSON schemas) back from a card.
import { z } from 'zod';
import type { JsonSchema } from './llm_client.js';
import { A2A_VERSION, HUB_LINK_PATH, META, WS_BINDING_URI } from './protocol.js';

/** Path of the A2A JSON-RPC endpoint on hub and spokes. */
export const A2A_HTTP_PATH = '/a2a';
/** Well-known path of the agent card. */
export const AGENT_CARD_PATH = '/.well-known/agent-card.json';

/**
 * URIs of our A2A extensions, advertised in `capabilities.extensions`. The metadata keys they define are
 * the {@link META} keys of shared/protocol.ts.
 */
export const EXTENSION_URIS = Object.freeze({
  /** Per-task event sequence number in `StreamResponse` metadata (`META.seq`). */
  seq: 'https://agenthub.local/extensions/seq/v1',
  /** Hub event-log epoch in `StreamResponse` metadata (`META.epoch`). */
  epoch: 'https://agenthub.local/extensions/epoch/v1',
  /** `SubscribeToTask` replay from `metadata[META.afterSeq]`. */
  afterSeq: 'https://agenthub.local/extensions/after-seq/v1',
  /** Absolute deadline (ms since the epoch) in request metadata (`META.deadline`). */
  deadline: 'https://agenthub.local/extensions/deadline/v1',
  /** Idle timeout in request metadata (`META.idleTimeoutMs`). */
  idleTimeout: 'https://agenthub.local/extensions/idle-timeout/v1',
  /** W3C trace context in request metadata (`META.traceparent`). */
  traceparent: 'https://agenthub.local/extensions/traceparent/v1',
  /** Skill selection by id in request metadata (`META.skill`). */
  skill: 'https://agenthub.local/extensions/skill/v1',
  /**
   * JSON schemas of each skill's data input and output. A2A v1 `AgentSkill` admits no extra members, so the
   * schemas travel here: `params.skills[skillId] = {inputSchema?, outputSchema?}` (on the hub card
   * `params.tenants[tenant][skillId]`).
   */
  skillSchemas: 'https://agenthub.local/extensions/skill-schemas/v1',
  /** Concurrent skill runs a spoke serves: `params.capacity`. */
  capacity: 'https://agenthub.local/extensions/capacity/v1',
});

/** A2A v1 `AgentInterface`. */
export interface AgentInterface {
  readonly url: string;
  readonly protocolBinding: string;
  readonly protocolVersion: string;
  readonly tenant?: string;
}

/** A2A v1 `AgentExtension`. */
export interface AgentExtension {
  readonly uri: string;
  readonly description?: string;
  readonly required?: boolean;
  readonly params?: Readonly<Record<string, unknown>>;
}

/** A2A v1 `AgentSkill`. */
export interface AgentSkill {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly examples?: readonly string[];
  readonly inputModes?: readonly string[];
  readonly outputModes?: readonly string[];
}

/** A2A v1 `AgentCard` as we publish it (ProtoJSON, camelCase). */
export interface AgentCard {
  readonly name: string;
  readonly description: string;
  readonly version: string;
  readonly supportedInterfaces: readonly AgentInterface[];
  readonly provider?: { readonly organization: string; readonly url: string };
  readonly capabilities: {
    readonly streaming: boolean;
    readonly pushNotifications: boolean;
    readonly extendedAgentCard: boolean;
    readonly extensions: readonly AgentExtension[];
  };
  readonly defaultInputModes: readonly string[];
  readonly defaultOutputModes: readonly string[];
  readonly skills: readonly AgentSkill[];
}

/** What a card needs to know about one skill: a {@link import('./skill.js').SkillDefinition} fits. */
export interface CardSkill {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly examples?: readonly string[];
  readonly inputSchema?: JsonSchema;
  readonly outputSchema?: JsonSchema;
}

/** Inputs of {@link buildSpokeCard}. */
export interface SpokeCardOptions {
  /** Spoke name, also its tenant name at the hub (e.g. `marketing`). */
  readonly name: string;
  readonly description: string;
  readonly version: string;
  /** Base URL of the spoke's API port, e.g. `http://127.0.0.1:8082` (no trailing path). */
  readonly url: string;
  readonly skills: readonly CardSkill[];
  /** Whether SendStreamingMessage / SubscribeToTask are served (the spoke runtime always streams). */
  readonly streaming: boolean;
  /** Concurrent skill runs. */
  readonly capacity: number;
}

/** One spoke behind the hub, as the hub card lists it. */
export interface HubTenant {
  readonly name: string;
  readonly description: string;
  readonly skills: readonly CardSkill[];
}

/** Inputs of {@link buildHubCard}. */
export interface HubCardOptions {
  /** Base URL of the hub, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly version: string;
  readonly tenants: readonly HubTenant[];
}

const MEDIA_TYPES = Object.freeze(['text/plain', 'application/json']);
const PROVIDER = Object.freeze({ organization: 'AgentHub', url: 'https://agenthub.local' });

function trimBase(url: string): string {
  return url.replace(/\/+$/, '');
}

/** `http(s)://host:port` → `ws(s)://host:port`. */
function toWebSocketUrl(httpUrl: string): string {
  return httpUrl.replace(/^http(s?):\/\//, 'ws$1://');
}

function cardSkill(skill: CardSkill, extraTags: readonly string[] = []): AgentSkill {
  return {
    id: skill.id,
    name: skill.name,
    description: skill.description,
    tags: [...skill.tags, ...extraTags],
    examples: [...(skill.examples ?? [])],
    inputModes: [...MEDIA_TYPES],
    outputModes: [...MEDIA_TYPES],
  };
}

/** `{skillId: {inputSchema?, outputSchema?}}` for the skills that declare a schema. */
function schemasOf(skills: readonly CardSkill[]): Record<string, Record<string, JsonSchema>> {
  const schemas: Record<string, Record<string, JsonSchema>> = {};
  for (const skill of skills) {
    const entry: Record<string, JsonSchema> = {};
    if (skill.inputSchema !== undefined) entry.inputSchema = skill.inputSchema;
    if (skill.outputSchema !== undefined) entry.outputSchema = skill.outputSchema;
    if (Object.keys(entry).length > 0) schemas[skill.id] = entry;
  }
  return schemas;
}

/** The request-metadata extensions every agent of ours understands. */
function requestExtensions(): AgentExtension[] {
  return [
    {
      uri: EXTENSION_URIS.deadline,
      description: `Absolute deadline in ms since the epoch, in request metadata "${META.deadline}"; work stops and the task fails with DEADLINE_EXCEEDED when it passes.`,
      required: false,
    },
    {
      uri: EXTENSION_URIS.traceparent,
      description: `W3C trace context in request metadata "${META.traceparent}", propagated on every hop.`,
      required: false,
    },
    {
      uri: EXTENSION_URIS.skill,
      description: `Skill id in request metadata "${META.skill}" selects the skill; otherwise a data part's "skill" field, the only skill, or a match on the text.`,
      required: false,
    },
  ];
}

/** A spoke's own agent card: JSON-RPC over HTTP at `/a2a` plus the hub WebSocket binding at `/v1/hub`. */
export function buildSpokeCard(options: SpokeCardOptions): AgentCard {
  const base = trimBase(options.url);
  return {
    name: options.name,
    description: options.description,
    version: options.version,
    supportedInterfaces: [
      { url: `${base}${A2A_HTTP_PATH}`, protocolBinding: 'JSONRPC', protocolVersion: A2A_VERSION },
      {
        url: `${toWebSocketUrl(base)}${HUB_LINK_PATH}`,
        protocolBinding: WS_BINDING_URI,
        protocolVersion: A2A_VERSION,
      },
    ],
    provider: PROVIDER,
    capabilities: {
      streaming: options.streaming,
      pushNotifications: false,
      extendedAgentCard: false,
      extensions: [
        ...requestExtensions(),
        {
          uri: EXTENSION_URIS.skillSchemas,
          description:
            'JSON schemas of each skill’s data part: params.skills[skillId] = {inputSchema, outputSchema}.',
          required: false,
          params: { skills: schemasOf(options.skills) },
        },
        {
          uri: EXTENSION_URIS.capacity,
          description:
            'Concurrent skill runs this spoke serves; more are queued up to a bound, then QUEUE_FULL.',
          required: false,
          params: { capacity: options.capacity },
        },
      ],
    },
    defaultInputModes: [...MEDIA_TYPES],
    defaultOutputModes: [...MEDIA_TYPES],
    skills: options.skills.map((skill) => cardSkill(skill)),
  };
}

/**
 * The hub's card: one JSON-RPC interface per spoke (`tenant` = spoke name, "serving multiple agents from one
 * endpoint"), every tenant's skills (tagged `tenant:<name>`; ids stay the spokes' ids, which is what
 * `metadata[META.skill]` carries), and our extensions for event sequence, epoch, replay, deadline and trace
 * context.
 */
export function buildHubCard(options: HubCardOptions): AgentCard {
  const base = trimBase(options.url);
  const tenantNames = options.tenants.map((tenant) => tenant.name);
  const tenantSchemas: Record<string, Record<string, Record<string, JsonSchema>>> = {};
  for (const tenant of options.tenants) tenantSchemas[tenant.name] = schemasOf(tenant.skills);
  return {
    name: 'agenthub',
    description:
      tenantNames.length === 0
        ? 'AgentHub: routes A2A requests to attested spoke agents (no spokes configured).'
        : `AgentHub: routes A2A requests to attested spoke agents. Tenants: ${options.tenants
            .map((tenant) => `${tenant.name} (${tenant.description})`)
            .join('; ')}.`,
    version: options.version,
    supportedInterfaces: options.tenants.map((tenant) => ({
      url: `${base}${A2A_HTTP_PATH}`,
      protocolBinding: 'JSONRPC',
      protocolVersion: A2A_VERSION,
      tenant: tenant.name,
    })),
    provider: PROVIDER,
    capabilities: {
      streaming: true,
      pushNotifications: false,
      extendedAgentCard: false,
      extensions: [
        {
          uri: EXTENSION_URIS.seq,
          description: `Each streamed event carries its per-task sequence number in metadata "${META.seq}".`,
          required: false,
        },
        {
          uri: EXTENSION_URIS.epoch,
          description: `Each streamed event carries the hub event-log epoch in metadata "${META.epoch}"; a new epoch means earlier events are gone.`,
          required: false,
        },
        {
          uri: EXTENSION_URIS.afterSeq,
          description: `SubscribeToTask with metadata "${META.afterSeq}" replays the events after that sequence number.`,
          required: false,
        },
        ...requestExtensions(),
        {
          uri: EXTENSION_URIS.idleTimeout,
          description: `Idle timeout in ms in request metadata "${META.idleTimeoutMs}": no event for that long fails the task with DEADLINE_EXCEEDED.`,
          required: false,
        },
        {
          uri: EXTENSION_URIS.skillSchemas,
          description:
            'JSON schemas of each tenant’s skills: params.tenants[tenant][skillId] = {inputSchema, outputSchema}.',
          required: false,
          params: { tenants: tenantSchemas },
        },
      ],
    },
    defaultInputModes: [...MEDIA_TYPES],
    defaultOutputModes: [...MEDIA_TYPES],
    skills: options.tenants.flatMap((tenant) =>
      tenant.skills.map((skill) => cardSkill(skill, [`tenant:${tenant.name}`])),
    ),
  };
}

const jsonObject = z.record(z.string(), z.unknown());

/** The part of an A2A v1 card our hub relies on; other members are allowed and ignored. */
export const AgentCardSchema = z.object({
  name: z.string().min(1).max(128),
  description: z.string().max(4096),
  version: z.string().min(1).max(64),
  supportedInterfaces: z
    .array(
      z.object({
        url: z.string().url().max(2048),
        protocolBinding: z.string().min(1).max(256),
        protocolVersion: z.string().max(16),
        tenant: z.string().max(64).optional(),
      }),
    )
    .min(1)
    .max(64),
  capabilities: z.object({
    streaming: z.boolean().optional(),
    pushNotifications: z.boolean().optional(),
    extendedAgentCard: z.boolean().optional(),
    extensions: z
      .array(
        z.object({
          uri: z.string().max(512),
          description: z.string().max(4096).optional(),
          required: z.boolean().optional(),
          params: jsonObject.optional(),
        }),
      )
      .max(64)
      .optional(),
  }),
  defaultInputModes: z.array(z.string().max(128)).max(32),
  defaultOutputModes: z.array(z.string().max(128)).max(32),
  skills: z
    .array(
      z.object({
        id: z.string().min(1).max(128),
        name: z.string().max(256),
        description: z.string().max(4096),
        tags: z.array(z.string().max(128)).max(64),
        examples: z.array(z.string().max(2048)).max(64).optional(),
      }),
    )
    .max(256),
});

/** Parses a card received from a peer (at a trust boundary); throws a zod error naming the bad members. */
export function parseAgentCard(value: unknown): z.infer<typeof AgentCardSchema> {
  return AgentCardSchema.parse(value);
}

/**
 * The skills of a spoke card with their JSON schemas re-attached from the skill-schemas extension, and its
 * declared capacity (1 when absent) — what the hub needs to build its own card and route.
 */
export function describeSpokeCard(card: z.infer<typeof AgentCardSchema>): {
  skills: CardSkill[];
  capacity: number;
} {
  const extensions = card.capabilities.extensions ?? [];
  const schemaParams = extensions.find((extension) => extension.uri === EXTENSION_URIS.skillSchemas)?.params;
  const schemaBySkill = (schemaParams?.skills ?? {}) as Record<
    string,
    { inputSchema?: JsonSchema; outputSchema?: JsonSchema }
  >;
  const capacityParam = extensions.find((extension) => extension.uri === EXTENSION_URIS.capacity)?.params
    ?.capacity;
  const capacity =
    typeof capacityParam === 'number' && Number.isInteger(capacityParam) && capacityParam > 0
      ? capacityParam
      : 1;
  const skills = card.skills.map((skill): CardSkill => {
    const schemas = Object.hasOwn(schemaBySkill, skill.id) ? schemaBySkill[skill.id] : undefined;
    return {
      id: skill.id,
      name: skill.name,
      description: skill.description,
      tags: skill.tags,
      examples: skill.examples ?? [],
      ...(schemas?.inputSchema === undefined ? {} : { inputSchema: schemas.inputSchema }),
      ...(schemas?.outputSchema === undefined ? {} : { outputSchema: schemas.outputSchema }),
    };
  });
  return { skills, capacity };
}
