// The hub's links to spoke replicas: resolve each configured spoke's host to its replica addresses
// (re-resolved periodically), dial one WebSocket per replica with a fresh connect token, keep it alive with
// ping/pong (terminate after a missed pong), reconnect with jittered backoff, and fetch the spoke's card.
import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { AGENT_CARD_PATH, describeSpokeCard, parseAgentCard } from '../shared/agent_card.js';
import { signConnectToken, type SigningKey, type TrustStore } from '../shared/attestation.js';
import { toAppError } from '../shared/errors.js';
import { createLink, type LinkRequestContext } from '../shared/link.js';
import {
  CONTROL_METHODS,
  HeartbeatSchema,
  HUB_LINK_PATH,
  LIMITS,
  LINK_SUBPROTOCOL,
} from '../shared/protocol.js';
import type { HubConfig } from './config.js';
import type { Replica, ReplicaRegistry } from './registry.js';

/** Resolves a host name to every address it has (one replica per address). */
export type HostResolver = (host: string) => Promise<string[]>;

/** The default resolver: `dns.lookup(host, {all: true})`, so /etc/hosts and IP literals work too. */
export const resolveWithDns: HostResolver = async (host) => {
  if (isIP(host) !== 0) return [host];
  const records = await lookup(host, { all: true });
  return [...new Set(records.map((record) => record.address))];
};

/** Serves requests a spoke sends up its link (the router's handler). */
export type LinkRequestHandlerFactory = (
  replica: Replica,
) => (
  method: string,
  params: unknown,
  context: LinkRequestContext,
) => Promise<unknown> | AsyncIterable<unknown>;

/** Dependencies of the link manager. */
export interface LinkManagerDeps {
  readonly trustStore: TrustStore;
  readonly hubKey: SigningKey;
  readonly registry: ReplicaRegistry;
  readonly config: Pick<
    HubConfig,
    'PING_INTERVAL_MS' | 'RECONNECT_MIN_MS' | 'RECONNECT_MAX_MS' | 'DNS_REFRESH_MS' | 'EVIDENCE_TIMEOUT_MS'
  >;
  readonly logger: Logger;
  readonly handleRequest: LinkRequestHandlerFactory;
  /** Called when a replica's link opens (a new sid): attest it now. */
  readonly onSessionOpen: (replica: Replica) => void;
  readonly resolveHost?: HostResolver | undefined;
}

/** One replica's connection loop. */
interface Connection {
  readonly replica: Replica;
  socket: WebSocket | undefined;
  failures: number;
  reconnectTimer: NodeJS.Timeout | undefined;
  pingTimer: NodeJS.Timeout | undefined;
  awaitingPong: boolean;
  stopped: boolean;
}

/** Formats an address for a URL (IPv6 in brackets). */
export function urlHost(address: string): string {
  return isIP(address) === 6 ? `[${address}]` : address;
}

/** Dials and keeps the links to every replica of every configured spoke. */
export class LinkManager {
  private readonly connections = new Map<string, Connection>();
  private readonly resolveHost: HostResolver;
  private refreshTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly deps: LinkManagerDeps) {
    this.resolveHost = deps.resolveHost ?? resolveWithDns;
  }

  /** Resolves every spoke and starts dialling; re-resolves every DNS_REFRESH_MS. */
  async start(): Promise<void> {
    await this.refresh();
    this.refreshTimer = setInterval(() => void this.refresh(), this.deps.config.DNS_REFRESH_MS);
    this.refreshTimer.unref();
  }

  /** Closes every link with 1001 (going away) and stops reconnecting. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.refreshTimer);
    const closing: Promise<void>[] = [];
    for (const connection of this.connections.values())
      closing.push(this.stop(connection, 1001, 'hub shutting down'));
    await Promise.all(closing);
  }

  /** Resolves each spoke's host; adds replicas for new addresses and drops vanished ones. */
  async refresh(): Promise<void> {
    for (const spoke of this.deps.trustStore.spokes.values()) {
      let addresses: string[];
      try {
        addresses = await this.resolveHost(spoke.host);
      } catch (error) {
        this.deps.logger.warn(
          { spoke: spoke.name, host: spoke.host, err: toAppError(error).message },
          'resolve failed',
        );
        continue;
      }
      if (this.closed) return;
      const current = new Set<string>();
      for (const address of addresses) {
        const replica = this.deps.registry.add(spoke.name, address, spoke.apiPort, spoke.attestationPort);
        current.add(replica.key);
        if (!this.connections.has(replica.key)) {
          const connection: Connection = {
            replica,
            socket: undefined,
            failures: 0,
            reconnectTimer: undefined,
            pingTimer: undefined,
            awaitingPong: false,
            stopped: false,
          };
          this.connections.set(replica.key, connection);
          void this.dial(connection);
        }
      }
      for (const replica of this.deps.registry.replicasOf(spoke.name)) {
        if (current.has(replica.key)) continue;
        const connection = this.connections.get(replica.key);
        if (connection !== undefined) await this.stop(connection, 1001, 'replica no longer resolves');
        this.connections.delete(replica.key);
        this.deps.registry.remove(replica);
        this.deps.logger.info({ replica: replica.key }, 'replica removed (address no longer resolves)');
      }
    }
  }

  private async dial(connection: Connection): Promise<void> {
    if (connection.stopped || this.closed) return;
    const { replica } = connection;
    const sid = randomUUID();
    const log = this.deps.logger.child({ replica: replica.key, sid });
    let token: string;
    try {
      token = await signConnectToken(this.deps.hubKey, replica.spoke, sid);
    } catch (error) {
      log.error({ err: toAppError(error).message }, 'cannot sign a connect token');
      this.scheduleReconnect(connection);
      return;
    }
    if (connection.stopped || this.closed) return;
    const url = `ws://${urlHost(replica.address)}:${replica.apiPort}${HUB_LINK_PATH}`;
    const socket = new WebSocket(url, [LINK_SUBPROTOCOL], {
      headers: { Authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      maxPayload: LIMITS.maxFrameBytes,
      handshakeTimeout: this.deps.config.EVIDENCE_TIMEOUT_MS,
    });
    connection.socket = socket;
    socket.on('unexpected-response', (_request, response) => {
      log.warn({ status: response.statusCode }, 'spoke refused the link');
      socket.terminate();
    });
    socket.on('error', (error) => log.debug({ err: error.message }, 'link socket error'));
    socket.on('pong', () => {
      connection.awaitingPong = false;
    });
    socket.once('open', () => {
      connection.failures = 0;
      const link = createLink(
        socket,
        {
          onRequest: this.deps.handleRequest(replica),
          onNotification: (method, params) => this.onNotification(replica, method, params),
        },
        // A spoke streams several frames per request; its link is authenticated and attested, so the
        // flood guard sits well above what the hub routes (the link default since the spoke side, receiving
        // about six frames per peer call, closed its link at 5000 frames/s).
        { log, idPrefix: 'h', maxIncomingPerSecond: 50_000, maxIncomingBurst: 100_000 },
      );
      replica.session = { sid, connectedAt: Date.now(), channel: link, alive: true };
      replica.disconnectedAt = undefined;
      this.deps.registry.changed(replica);
      log.info('link up');
      this.startPing(connection);
      this.deps.onSessionOpen(replica);
      void this.fetchCard(replica, log);
    });
    socket.once('close', (code) => {
      clearInterval(connection.pingTimer);
      if (connection.socket === socket) connection.socket = undefined;
      if (replica.session?.sid === sid) {
        replica.session = undefined;
        replica.disconnectedAt = Date.now();
        this.deps.registry.changed(replica);
        log.info({ code }, 'link down');
      }
      this.scheduleReconnect(connection);
    });
  }

  /** Pings every interval; a ping still unanswered at the next tick means a dead peer: terminate. */
  private startPing(connection: Connection): void {
    clearInterval(connection.pingTimer);
    connection.awaitingPong = false;
    connection.pingTimer = setInterval(() => {
      const socket = connection.socket;
      if (socket === undefined || socket.readyState !== WebSocket.OPEN) return;
      if (connection.awaitingPong) {
        const session = connection.replica.session;
        if (session !== undefined) session.alive = false;
        this.deps.logger.warn(
          { replica: connection.replica.key },
          'no pong within one interval: terminating link',
        );
        socket.terminate();
        return;
      }
      connection.awaitingPong = true;
      socket.ping();
    }, this.deps.config.PING_INTERVAL_MS);
    connection.pingTimer.unref();
  }

  private scheduleReconnect(connection: Connection): void {
    if (connection.stopped || this.closed || connection.reconnectTimer !== undefined) return;
    const { RECONNECT_MIN_MS, RECONNECT_MAX_MS } = this.deps.config;
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** Math.min(connection.failures, 20));
    connection.failures += 1;
    // Full jitter, but never below the minimum, so a refusing spoke is not hammered.
    const delay = RECONNECT_MIN_MS + Math.random() * Math.max(0, ceiling - RECONNECT_MIN_MS);
    connection.reconnectTimer = setTimeout(() => {
      connection.reconnectTimer = undefined;
      void this.dial(connection);
    }, delay);
    connection.reconnectTimer.unref();
  }

  private async stop(connection: Connection, code: number, reason: string): Promise<void> {
    connection.stopped = true;
    clearTimeout(connection.reconnectTimer);
    clearInterval(connection.pingTimer);
    const socket = connection.socket;
    if (socket === undefined || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        socket.terminate();
        resolve();
      }, 1000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      const session = connection.replica.session;
      if (session !== undefined) session.channel.close(code, reason);
      else socket.close(code, reason);
    });
  }

  private onNotification(replica: Replica, method: string, params: unknown): void {
    if (method !== CONTROL_METHODS.heartbeat) {
      this.deps.logger.debug({ replica: replica.key, method }, 'ignored notification');
      return;
    }
    const heartbeat = HeartbeatSchema.safeParse(params);
    if (!heartbeat.success) {
      this.deps.logger.warn({ replica: replica.key }, 'malformed heartbeat ignored');
      return;
    }
    replica.load = { ...heartbeat.data, reportedAt: Date.now() };
    this.deps.registry.changed(replica);
  }

  /**
   * Fetches the replica's agent card (skills for routing, capacity until the first heartbeat). A failed fetch
   * (a spoke still starting can be too busy to answer) is retried after 1, 2, 4 … s (at most 30 s apart) while
   * the same link session lasts, so the hub's card and intent routing always learn the spoke's skills.
   */
  private async fetchCard(replica: Replica, log: Logger, attempt = 1): Promise<void> {
    const sid = replica.session?.sid;
    const url = `http://${urlHost(replica.address)}:${replica.apiPort}${AGENT_CARD_PATH}`;
    try {
      const response = await fetch(url, {
        signal: AbortSignal.timeout(this.deps.config.EVIDENCE_TIMEOUT_MS),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const text = await response.text();
      if (text.length > LIMITS.maxHttpBodyBytes) throw new Error('card too large');
      const card = parseAgentCard(JSON.parse(text));
      const described = describeSpokeCard(card);
      this.deps.registry.setCard(replica.spoke, {
        name: replica.spoke,
        description: card.description,
        skills: described.skills,
      });
      if (replica.load.reportedAt === undefined) {
        replica.load = { ...replica.load, capacity: described.capacity };
        this.deps.registry.changed(replica);
      }
    } catch (error) {
      const delayMs = Math.min(1000 * 2 ** (attempt - 1), 30_000);
      log.warn({ url, err: toAppError(error).message, retryInMs: delayMs }, 'agent card fetch failed');
      const retry = setTimeout(() => {
        if (sid !== undefined && replica.session?.sid === sid) void this.fetchCard(replica, log, attempt + 1);
      }, delayMs);
      retry.unref();
    }
  }
}
