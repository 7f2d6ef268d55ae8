// Keeps docker/ honest without a Docker engine: parses compose.yaml, the Dockerfiles and the Kubernetes
// manifests and checks ports, memory limits, health checks, secrets and environment variables against the
// services' own config schemas and default ports.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { HubConfigSchema } from '../../hub/config.js';
import { DEFAULT_HUB_PORT, LOCAL_SPOKES } from '../../shared/layout.js';
import { SpokeEnvSchema } from '../../shared/spoke_runtime.js';
import { FinanceConfigSchema } from '../../spoke_finance/config.js';
import { MarketingConfigSchema } from '../../spoke_marketing/config.js';
import { REPO_ROOT } from '../helpers/shared_data.js';

const dockerDir = join(REPO_ROOT, 'docker');

/** The variables each service's config schemas know, and a parser of a whole environment. */
const SERVICES = {
  hub: { schemas: [HubConfigSchema] },
  marketing: { schemas: [SpokeEnvSchema, MarketingConfigSchema] },
  finance: { schemas: [SpokeEnvSchema, FinanceConfigSchema] },
} as const;
type ServiceName = keyof typeof SERVICES;

function shapeKeys(schema: z.ZodTypeAny): string[] {
  let inner: z.ZodTypeAny = schema;
  while ('_def' in inner && (inner._def as { schema?: z.ZodTypeAny }).schema !== undefined) {
    inner = (inner._def as { schema: z.ZodTypeAny }).schema;
  }
  return Object.keys((inner as z.AnyZodObject).shape);
}

function knownVariables(service: ServiceName): Set<string> {
  return new Set(SERVICES[service].schemas.flatMap((schema) => shapeKeys(schema)));
}

/** Parses an environment with every schema of the service; returns the problems. */
function environmentProblems(service: ServiceName, env: Record<string, string>): string[] {
  const known = knownVariables(service);
  const problems = Object.keys(env)
    .filter((name) => !known.has(name))
    .map((name) => `${name} is not a ${service} setting`);
  for (const schema of SERVICES[service].schemas) {
    const result = schema.safeParse(env);
    if (!result.success) {
      problems.push(...result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
    }
  }
  return problems;
}

function spokeDefaults(name: string): { apiPort: number; attestationPort: number } {
  const spoke = LOCAL_SPOKES.find((entry) => entry.name === name);
  if (spoke === undefined) throw new Error(`no local spoke ${name}`);
  return spoke;
}

interface ComposeService {
  environment?: Record<string, string>;
  ports?: string[];
  mem_limit?: string;
  cpus?: number;
  user?: string;
  volumes?: string[];
  secrets?: string[];
  healthcheck?: { test: string[] };
  profiles?: string[];
}

const compose = parse(readFileSync(join(dockerDir, 'compose.yaml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  secrets: Record<string, { file: string }>;
};

function service(name: string): ComposeService {
  const found = compose.services[name];
  if (found === undefined) throw new Error(`compose.yaml has no service ${name}`);
  return found;
}

function containerPorts(entry: ComposeService): number[] {
  return (entry.ports ?? []).map((mapping) => Number(mapping.split(':').at(-1)));
}

function healthPort(test: readonly string[]): number {
  const match = /127\.0\.0\.1:(\d+)\/healthz/.exec(test.join(' '));
  if (match === null) throw new Error(`health check does not probe /healthz on a port: ${test.join(' ')}`);
  return Number(match[1]);
}

function bytes(limit: string): number {
  const match = /^(\d+)([kmg])?$/i.exec(limit.trim());
  if (match === null) throw new Error(`unreadable memory limit ${limit}`);
  const unit =
    { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  return Number(match[1]) * unit;
}

describe('docker/compose.yaml', () => {
  it('runs the hub on its configured port with a health check on /healthz', () => {
    const hub = service('hub');
    const env = hub.environment ?? {};
    expect(environmentProblems('hub', env)).toEqual([]);
    const port = Number(env.HUB_PORT ?? DEFAULT_HUB_PORT);
    expect(port).toBe(DEFAULT_HUB_PORT);
    expect(containerPorts(hub)).toEqual([port]);
    expect(healthPort(hub.healthcheck?.test ?? [])).toBe(port);
    expect(hub.user).not.toMatch(/^0(:|$)|root/);
  });

  it.each(['marketing', 'finance'] as const)(
    'runs the %s spoke on its configured API and attestation ports, health-checked on the attestation port',
    (name) => {
      const spoke = service(`spoke_${name}`);
      const env = spoke.environment ?? {};
      expect(environmentProblems(name, env)).toEqual([]);
      const defaults = spokeDefaults(name);
      expect(Number(env.SPOKE_API_PORT)).toBe(defaults.apiPort);
      expect(Number(env.SPOKE_ATTESTATION_PORT)).toBe(defaults.attestationPort);
      expect(containerPorts(spoke).sort()).toEqual([defaults.apiPort, defaults.attestationPort].sort());
      expect(healthPort(spoke.healthcheck?.test ?? [])).toBe(defaults.attestationPort);
      expect(spoke.user).not.toMatch(/^0(:|$)|root/);
    },
  );

  it('gives the marketing spoke 8 GB and 2 CPUs, a 7000 MB model budget inside it, and the model read-only', () => {
    const marketing = service('spoke_marketing');
    const env = marketing.environment ?? {};
    expect(marketing.mem_limit).toBe('8g');
    expect(marketing.cpus).toBe(2);
    expect(env.AGENT_MAX_MEMORY_MB).toBe('7000');
    expect(Number(env.AGENT_MAX_MEMORY_MB) * 1e6).toBeLessThan(bytes(marketing.mem_limit ?? '0'));
    const modelMount = (marketing.volumes ?? []).find((volume) => volume.split(':')[1] === '/models');
    expect(modelMount, 'a /models volume').toBeDefined();
    expect(modelMount?.endsWith(':ro')).toBe(true);
    expect(env.MODEL_PATH?.startsWith('/models/')).toBe(true);
  });

  it.each(['marketing', 'finance'] as const)('hands the %s spoke its attestation key as a secret', (name) => {
    const spoke = service(`spoke_${name}`);
    const keyFile = spoke.environment?.SPOKE_KEY_FILE ?? '';
    const secret = /^\/run\/secrets\/(.+)$/.exec(keyFile)?.[1];
    expect(secret, 'SPOKE_KEY_FILE points into /run/secrets').toBeDefined();
    expect(spoke.secrets).toContain(secret);
    expect(compose.secrets[secret ?? '']?.file).toMatch(new RegExp(`spokes/${name}\\.jwk$`));
  });

  it.each(['marketing', 'finance'] as const)(
    'locks the %s spoke’s HTTP API with the hub’s API key, handed over as a secret',
    (name) => {
      const spoke = service(`spoke_${name}`);
      const keyFile = spoke.environment?.SPOKE_API_KEY_FILE ?? '';
      const secret = /^\/run\/secrets\/(.+)$/.exec(keyFile)?.[1];
      expect(secret, 'SPOKE_API_KEY_FILE points into /run/secrets').toBeDefined();
      expect(spoke.secrets).toContain(secret);
      // The hub reads its key from <AGENTHUB_STATE_DIR>/api-key, i.e. ./state/api-key on this host.
      expect(service('hub').volumes).toContain('./state:/state:ro');
      expect(compose.secrets[secret ?? '']?.file).toBe('./state/api-key');
    },
  );

  it('enrols with the marketing spoke’s memory limit and memory budget, so the config reference values match', () => {
    const enrol = service('enrol');
    const marketing = service('spoke_marketing');
    expect(enrol.profiles).toContain('setup');
    expect(enrol.mem_limit).toBe(marketing.mem_limit);
    expect(enrol.environment?.AGENT_MAX_MEMORY_MB).toBe(marketing.environment?.AGENT_MAX_MEMORY_MB);
    expect(enrol.user).toBe(marketing.user);
  });

  it('includes PostgreSQL with pgvector and Redis, each health-checked', () => {
    const postgres = service('postgres') as ComposeService & { image: string };
    const redis = service('redis') as ComposeService & { image: string };
    expect(postgres.image).toMatch(/^pgvector\/pgvector:/);
    expect(postgres.healthcheck?.test.join(' ')).toContain('pg_isready');
    expect(redis.healthcheck?.test.join(' ')).toContain('redis-cli');
  });
});

describe('docker/*.Dockerfile', () => {
  it.each(['hub.Dockerfile', 'spoke.Dockerfile'])(
    '%s is multi-stage, runs as a non-root user and has a HEALTHCHECK',
    (file) => {
      const text = readFileSync(join(dockerDir, file), 'utf8');
      expect(text.match(/^FROM /gm)?.length ?? 0).toBeGreaterThanOrEqual(2);
      expect(text).toMatch(/^USER node$/m);
      expect(text).toMatch(/^HEALTHCHECK /m);
    },
  );

  it('health-checks the hub on the port it listens on', () => {
    const text = readFileSync(join(dockerDir, 'hub.Dockerfile'), 'utf8');
    const port = Number(/HUB_PORT=(\d+)/.exec(text)?.[1]);
    expect(port).toBe(DEFAULT_HUB_PORT);
    expect(text).toContain(`EXPOSE ${port}`);
    expect(text).toContain(`127.0.0.1:${port}/healthz`);
  });
});

interface K8sContainer {
  name: string;
  ports?: { name: string; containerPort: number }[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string } };
  }[];
  resources?: { limits?: { memory?: string; cpu?: string } };
  livenessProbe?: { httpGet?: { port: number; path: string } };
  readinessProbe?: { httpGet?: { port: number; path: string } };
}
interface K8sDocument {
  kind: string;
  metadata: { name: string };
  spec: {
    replicas?: number;
    clusterIP?: string;
    template?: { spec: { containers: K8sContainer[]; securityContext?: { runAsNonRoot?: boolean } } };
  };
}

const manifests: K8sDocument[] = readdirSync(join(dockerDir, 'k8s'))
  .filter((file) => file.endsWith('.yaml'))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(dockerDir, 'k8s', file), 'utf8')).map(
      (document) => document.toJS() as K8sDocument,
    ),
  );

function deployment(name: string): { doc: K8sDocument; container: K8sContainer } {
  const doc = manifests.find((entry) => entry.kind === 'Deployment' && entry.metadata.name === name);
  const container = doc?.spec.template?.spec.containers[0];
  if (doc === undefined || container === undefined) throw new Error(`no Deployment ${name} with a container`);
  return { doc, container };
}

function literalEnv(container: K8sContainer): Record<string, string> {
  return Object.fromEntries(
    (container.env ?? []).map((entry) => [entry.name, entry.value ?? 'postgres://from-secret/agenthub']),
  );
}

describe('docker/k8s manifests', () => {
  it('runs the hub with a valid environment and probes on its port', () => {
    const { doc, container } = deployment('hub');
    const env = literalEnv(container);
    expect(environmentProblems('hub', env)).toEqual([]);
    const port = Number(env.HUB_PORT);
    expect(container.ports?.map((entry) => entry.containerPort)).toEqual([port]);
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port });
    expect(doc.spec.template?.spec.securityContext?.runAsNonRoot).toBe(true);
  });

  it.each(['marketing', 'finance'] as const)(
    'runs N replicas of the %s spoke behind a headless service, with probes on its configured ports and an 8 GiB limit',
    (name) => {
      const { doc, container } = deployment(`spoke-${name}`);
      const env = literalEnv(container);
      expect(environmentProblems(name, env)).toEqual([]);
      const defaults = spokeDefaults(name);
      expect(Number(env.SPOKE_API_PORT)).toBe(defaults.apiPort);
      expect(Number(env.SPOKE_ATTESTATION_PORT)).toBe(defaults.attestationPort);
      expect(container.ports?.map((entry) => entry.containerPort).sort()).toEqual(
        [defaults.apiPort, defaults.attestationPort].sort(),
      );
      expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: defaults.attestationPort });
      expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: defaults.apiPort });
      expect(container.resources?.limits?.memory).toBe('8Gi');
      expect(Number(env.AGENT_MAX_MEMORY_MB) * 1e6).toBeLessThan(8 * 1024 ** 3);
      expect(doc.spec.replicas).toBeGreaterThan(1);
      const apiKey = container.env?.find((entry) => entry.name === 'SPOKE_API_KEY');
      expect(apiKey?.valueFrom?.secretKeyRef).toEqual({ name: 'agenthub-hub', key: 'api-key' });
      expect(doc.spec.template?.spec.securityContext?.runAsNonRoot).toBe(true);
      const headless = manifests.find(
        (entry) => entry.kind === 'Service' && entry.metadata.name === `spoke-${name}`,
      );
      expect(headless?.spec.clusterIP).toBe('None');
    },
  );
});
