// The hub's in-memory view of every spoke replica: its live link session, attestation state, declared load
// and agent card. links.ts and appraisal.ts write it; routing.ts reads it through the pure routing gate.
import type { CardSkill } from '../shared/agent_card.js';
import type { StreamHandle, StreamSink } from '../shared/link.js';
import type { Heartbeat } from '../shared/protocol.js';

/** What a replica's link offers the router (shared/link.ts's Link satisfies it; tests may fake it). */
export interface ReplicaChannel {
  request(
    method: string,
    params: unknown,
    options?: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<unknown>;
  /** A stream request whose results go to `sink` as they arrive (see shared/link.ts `Link.open`). */
  open(method: string, params: unknown, sink: StreamSink): StreamHandle;
  notify(method: string, params: unknown): void;
  /** Closes the link (1000 by default); pending calls fail with SPOKE_UNAVAILABLE. */
  close(code?: number, reason?: string): void;
  readonly closed: boolean;
}

/** Status of one replica as reported by `GET /v1/spokes`. */
export type ReplicaStatus = 'affirming' | 'contraindicated' | 'pending' | 'disconnected';

/** The authenticated link session the hub holds with a replica. */
export interface ReplicaSession {
  /** Session id bound into the connect token, nonces and evidence. */
  readonly sid: string;
  readonly connectedAt: number;
  readonly channel: ReplicaChannel;
  /** False once a ping went unanswered; the link is terminated right after. */
  alive: boolean;
}

/** The latest appraisal of a replica (bound to the session it was made for). */
export interface ReplicaAttestation {
  readonly status: 'affirming' | 'contraindicated' | 'pending';
  readonly reasons: readonly string[];
  readonly sid: string;
  readonly policyId: string;
  /** ms since the epoch of the appraisal that produced this state. */
  readonly attestedAt: number;
  readonly kid?: string | undefined;
  readonly jti?: string | undefined;
  readonly ueid?: string | undefined;
}

/** The parts of a spoke's agent card the hub routes on. */
export interface SpokeCard {
  readonly name: string;
  readonly description: string;
  readonly skills: readonly CardSkill[];
}

/** One replica of one spoke type (one resolved address). */
export interface Replica {
  /** `spoke@address:apiPort`, stable across reconnects. */
  readonly key: string;
  readonly spoke: string;
  readonly address: string;
  readonly apiPort: number;
  readonly attestationPort: number;
  session: ReplicaSession | undefined;
  attestation: ReplicaAttestation | undefined;
  /** Last heartbeat; capacity defaults until the first one. */
  load: Heartbeat & { readonly reportedAt: number | undefined };
  /** Requests the hub has in flight on this replica. */
  outstanding: number;
  /** When the link last dropped (ms since the epoch), for the status page. */
  disconnectedAt: number | undefined;
}

/** Derived status of a replica: no session → disconnected; no appraisal for this session → pending. */
export function replicaStatus(replica: Replica): ReplicaStatus {
  if (replica.session === undefined) return 'disconnected';
  if (replica.attestation === undefined || replica.attestation.sid !== replica.session.sid) return 'pending';
  return replica.attestation.status;
}

type ChangeListener = (replica: Replica) => void;

/** Configured spokes, their replicas and their cards. */
export class ReplicaRegistry {
  private readonly replicasBySpoke = new Map<string, Map<string, Replica>>();
  private readonly cards = new Map<string, SpokeCard>();
  private readonly listeners = new Set<ChangeListener>();

  constructor(
    spokeNames: readonly string[],
    private readonly defaultCapacity: number,
  ) {
    for (const name of spokeNames) this.replicasBySpoke.set(name, new Map());
  }

  /** Names of the configured spokes (tenants), in configuration order. */
  spokeNames(): string[] {
    return [...this.replicasBySpoke.keys()];
  }

  hasSpoke(name: string): boolean {
    return this.replicasBySpoke.has(name);
  }

  /** Replicas of one spoke (empty when none resolved yet). */
  replicasOf(spoke: string): Replica[] {
    return [...(this.replicasBySpoke.get(spoke)?.values() ?? [])];
  }

  all(): Replica[] {
    return [...this.replicasBySpoke.values()].flatMap((replicas) => [...replicas.values()]);
  }

  get(key: string): Replica | undefined {
    for (const replicas of this.replicasBySpoke.values()) {
      const replica = replicas.get(key);
      if (replica !== undefined) return replica;
    }
    return undefined;
  }

  /** Adds a replica for a resolved address (idempotent). */
  add(spoke: string, address: string, apiPort: number, attestationPort: number): Replica {
    const replicas = this.replicasBySpoke.get(spoke);
    if (replicas === undefined) throw new Error(`spoke ${spoke} is not configured`);
    const key = `${spoke}@${address.includes(':') ? `[${address}]` : address}:${apiPort}`;
    const existing = replicas.get(key);
    if (existing !== undefined) return existing;
    const replica: Replica = {
      key,
      spoke,
      address,
      apiPort,
      attestationPort,
      session: undefined,
      attestation: undefined,
      load: { inflight: 0, capacity: this.defaultCapacity, ready: true, reportedAt: undefined },
      outstanding: 0,
      disconnectedAt: undefined,
    };
    replicas.set(key, replica);
    this.changed(replica);
    return replica;
  }

  /** Removes a replica whose address no longer resolves. */
  remove(replica: Replica): void {
    this.replicasBySpoke.get(replica.spoke)?.delete(replica.key);
    replica.session = undefined;
    replica.attestation = undefined;
    this.changed(replica);
  }

  setCard(spoke: string, card: SpokeCard): void {
    this.cards.set(spoke, card);
  }

  card(spoke: string): SpokeCard | undefined {
    return this.cards.get(spoke);
  }

  /** Spokes whose card lists `skillId`. */
  spokesWithSkill(skillId: string): string[] {
    return [...this.cards.entries()]
      .filter(([, card]) => card.skills.some((skill) => skill.id === skillId))
      .map(([name]) => name);
  }

  /** Subscribes to replica changes (session, attestation, load); returns the unsubscribe function. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells listeners that `replica` changed. */
  changed(replica: Replica): void {
    for (const listener of this.listeners) listener(replica);
  }
}
