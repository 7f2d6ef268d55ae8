// The hub's Prometheus registry: routed messages, queue depth, routing latency, attestation status per
// replica, late and deduplicated responses, and the hub process's own CPU time (for bench/hub_routing.ts).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReplicaStatus } from './registry.js';

const STATUSES: readonly ReplicaStatus[] = ['affirming', 'contraindicated', 'pending', 'disconnected'];

/** Outcome label of a routed message. */
export type RouteOutcome = 'completed' | 'failed' | 'canceled' | 'interrupted' | string;

/** The hub's metrics, behind small methods so callers never touch label plumbing. */
export class HubMetrics {
  readonly registry = new Registry();
  private readonly routedTotal: Counter<'spoke' | 'outcome'>;
  private readonly rejectedTotal: Counter<'spoke' | 'code'>;
  private readonly queueDepth: Gauge<'spoke'>;
  private readonly latency: Histogram<'spoke'>;
  private readonly attestation: Gauge<'spoke' | 'replica' | 'status'>;
  private readonly lateTotal: Counter;
  private readonly dedupedTotal: Counter;
  /** Labelled children, cached: resolving labels per call hashed them on every routed message. */
  private readonly routedChildren = new Map<string, Counter.Internal>();
  private readonly latencyChildren = new Map<string, Histogram.Internal<'spoke'>>();

  constructor() {
    this.routedTotal = new Counter({
      name: 'hub_routed_messages_total',
      help: 'Messages the hub delivered to a spoke replica, by final outcome.',
      labelNames: ['spoke', 'outcome'],
      registers: [this.registry],
    });
    this.rejectedTotal = new Counter({
      name: 'hub_rejected_requests_total',
      help: 'Requests refused before delivery (unattested, unavailable, queue full…), by error code.',
      labelNames: ['spoke', 'code'],
      registers: [this.registry],
    });
    this.queueDepth = new Gauge({
      name: 'hub_queue_depth',
      help: 'Requests waiting for a free replica slot, per spoke.',
      labelNames: ['spoke'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'hub_route_latency_seconds',
      help: 'Time from accepting a request to its final event, per spoke.',
      labelNames: ['spoke'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [this.registry],
    });
    this.attestation = new Gauge({
      name: 'hub_replica_attestation_status',
      help: '1 for the current attestation status of each spoke replica, 0 for the others.',
      labelNames: ['spoke', 'replica', 'status'],
      registers: [this.registry],
    });
    this.lateTotal = new Counter({
      name: 'hub_late_responses_total',
      help: 'Spoke events that arrived after their request had timed out or been canceled (dropped).',
      registers: [this.registry],
    });
    this.dedupedTotal = new Counter({
      name: 'hub_deduplicated_requests_total',
      help: 'Requests whose messageId matched an earlier request from the same caller (not delivered again).',
      registers: [this.registry],
    });
    new Gauge({
      name: 'hub_process_cpu_microseconds',
      help: 'CPU time the hub process has used since it started, in microseconds, by mode (user, system).',
      labelNames: ['mode'],
      registers: [this.registry],
      collect() {
        const usage = process.cpuUsage();
        this.set({ mode: 'user' }, usage.user);
        this.set({ mode: 'system' }, usage.system);
      },
    });
  }

  routed(spoke: string, outcome: RouteOutcome, seconds: number): void {
    const key = `${spoke}\u0000${outcome}`;
    let counter = this.routedChildren.get(key);
    if (counter === undefined) {
      counter = this.routedTotal.labels({ spoke, outcome });
      this.routedChildren.set(key, counter);
    }
    counter.inc();
    let histogram = this.latencyChildren.get(spoke);
    if (histogram === undefined) {
      histogram = this.latency.labels({ spoke });
      this.latencyChildren.set(spoke, histogram);
    }
    histogram.observe(seconds);
  }

  rejected(spoke: string, code: string): void {
    this.rejectedTotal.inc({ spoke, code });
  }

  setQueueDepth(spoke: string, depth: number): void {
    this.queueDepth.set({ spoke }, depth);
  }

  setAttestation(spoke: string, replica: string, status: ReplicaStatus): void {
    for (const candidate of STATUSES) {
      this.attestation.set({ spoke, replica, status: candidate }, candidate === status ? 1 : 0);
    }
  }

  removeReplica(spoke: string, replica: string): void {
    for (const status of STATUSES) this.attestation.remove({ spoke, replica, status });
  }

  late(): void {
    this.lateTotal.inc();
  }

  deduplicated(): void {
    this.dedupedTotal.inc();
  }

  /** Prometheus text exposition. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
