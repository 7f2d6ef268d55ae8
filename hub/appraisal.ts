// Attestation of each replica link: nonce → POST evidence to the replica's attestation port → appraise →
// replica state (affirming | contraindicated | pending), on every (re)connect and every REATTEST_INTERVAL_MS;
// tells the spoke the result (with an AR token when affirming) and writes the audit log (never the token).
import type { Logger } from 'pino';
import { signAttestationResult, type Appraiser, type SigningKey } from '../shared/attestation.js';
import { toAppError } from '../shared/errors.js';
import { CONTROL_METHODS } from '../shared/protocol.js';
import type { HubConfig } from './config.js';
import { urlHost } from './links.js';
import type { Replica, ReplicaRegistry } from './registry.js';
import type { TaskStore } from './tasks.js';

/** Largest evidence body read from a spoke, in bytes (evidence tokens are capped at 8 KiB). */
const MAX_EVIDENCE_BYTES = 16 * 1024;

/** Fetches evidence: POST `{nonce, sid}` to `url`, returns the response body (the EAT JWT). */
export type EvidenceFetcher = (
  url: string,
  body: { nonce: string; sid: string },
  timeoutMs: number,
) => Promise<string>;

/** The default fetcher over HTTP. */
export const fetchEvidenceOverHttp: EvidenceFetcher = async (url, body, timeoutMs) => {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/eat+jwt' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`evidence endpoint answered HTTP ${response.status}`);
  if (text.length > MAX_EVIDENCE_BYTES) throw new Error('evidence body too large');
  return text.trim();
};

/** Dependencies of the attestation controller. */
export interface AttestationControllerDeps {
  readonly appraiser: Appraiser;
  readonly hubKey: SigningKey;
  readonly registry: ReplicaRegistry;
  readonly store: TaskStore;
  readonly config: Pick<HubConfig, 'REATTEST_INTERVAL_MS' | 'EVIDENCE_TIMEOUT_MS'>;
  readonly logger: Logger;
  readonly fetchEvidence?: EvidenceFetcher | undefined;
}

/** Runs and schedules appraisals of every replica with a live link. */
export class AttestationController {
  private readonly fetchEvidence: EvidenceFetcher;
  /** Replica key → the appraisal in progress (one at a time per replica). */
  private readonly running = new Map<string, Promise<void>>();
  /** Replica key → the appraisal queued behind the running one (at most one; later callers share it). */
  private readonly queued = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  /** Replica key → consecutive evidence failures, for the quick retries below. */
  private readonly evidenceFailures = new Map<string, number>();
  /** Pending quick retries, cleared on stop. */
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly deps: AttestationControllerDeps) {
    this.fetchEvidence = deps.fetchEvidence ?? fetchEvidenceOverHttp;
    this.log = deps.logger.child({ module: 'appraisal' });
  }

  /** Starts periodic re-attestation of every connected replica. */
  start(): void {
    this.timer = setInterval(() => {
      for (const replica of this.deps.registry.all())
        if (replica.session !== undefined) void this.attest(replica);
    }, this.deps.config.REATTEST_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    for (const retry of this.retries) clearTimeout(retry);
    this.retries.clear();
    await Promise.allSettled([...this.running.values()]);
  }

  /**
   * Appraises a replica: now, or — when an appraisal of it is already running — right after that one, so the
   * promise always settles with a verdict on evidence requested after this call. Never throws.
   */
  attest(replica: Replica): Promise<void> {
    const current = this.running.get(replica.key);
    if (current !== undefined) {
      let next = this.queued.get(replica.key);
      if (next === undefined) {
        next = current.then(() => {
          this.queued.delete(replica.key);
          return this.stopped ? undefined : this.attest(replica);
        });
        this.queued.set(replica.key, next);
      }
      return next;
    }
    // Callers fire and forget (link open, the timer, retries): a failure that escapes an appraisal (the audit
    // write to the store) is logged here rather than left as an unhandled rejection.
    const run = this.appraiseOnce(replica)
      .catch((error: unknown) => {
        this.log.error({ replica: replica.key, err: toAppError(error).message }, 'appraisal failed');
      })
      .finally(() => {
        this.running.delete(replica.key);
      });
    this.running.set(replica.key, run);
    return run;
  }

  /**
   * Evidence that could not be fetched (a spoke still starting, a busy event loop) is asked for again after
   * 1 s, 2 s, 4 s … up to the re-attestation interval, instead of leaving the replica pending for a whole
   * interval or letting an affirming result go stale.
   */
  private retrySoon(replica: Replica, sid: string): void {
    const failures = (this.evidenceFailures.get(replica.key) ?? 0) + 1;
    this.evidenceFailures.set(replica.key, failures);
    const delay = Math.min(1000 * 2 ** (failures - 1), this.deps.config.REATTEST_INTERVAL_MS);
    const retry = setTimeout(() => {
      this.retries.delete(retry);
      if (!this.stopped && replica.session?.sid === sid) void this.attest(replica);
    }, delay);
    retry.unref();
    this.retries.add(retry);
  }

  private async appraiseOnce(replica: Replica): Promise<void> {
    const session = replica.session;
    if (session === undefined || this.stopped) return;
    const { appraiser } = this.deps;
    const sid = session.sid;
    const url = `http://${urlHost(replica.address)}:${replica.attestationPort}/v1/evidence`;
    let evidence: string;
    try {
      const nonce = appraiser.issueNonce(replica.spoke, sid);
      evidence = await this.fetchEvidence(url, { nonce, sid }, this.deps.config.EVIDENCE_TIMEOUT_MS);
    } catch (error) {
      if (replica.session?.sid !== sid) return;
      const reason = 'evidence.unavailable';
      this.log.warn(
        { replica: replica.key, sid, err: toAppError(error).message },
        'no evidence from the spoke',
      );
      this.retrySoon(replica, sid);
      // A previous affirming result for this session stays until the gate's max age makes it stale;
      // anything else becomes pending (not routable) with the reason.
      if (replica.attestation?.sid === sid && replica.attestation.status === 'affirming') return;
      this.record(replica, {
        status: 'pending',
        reasons: [reason],
        sid,
        policyId: appraiser.policyId,
        attestedAt: Date.now(),
      });
      await this.audit(replica, sid, 'pending', [reason], null, null);
      return;
    }
    this.evidenceFailures.delete(replica.key);
    const result = await appraiser.appraise(replica.spoke, sid, evidence);
    if (replica.session?.sid !== sid) return;
    this.record(replica, {
      status: result.status,
      reasons: result.reasons,
      sid,
      policyId: result.policyId,
      attestedAt: result.appraisedAt.getTime(),
      kid: result.kid,
      jti: result.jti,
      ueid: result.ueid,
    });
    await this.audit(replica, sid, result.status, result.reasons, result.jti ?? null, result.kid ?? null);
    try {
      if (result.status === 'affirming') {
        const ar = await signAttestationResult(this.deps.hubKey, replica.spoke, sid, result, result.policyId);
        session.channel.notify(CONTROL_METHODS.attestationResult, { status: result.status, reasons: [], ar });
      } else {
        session.channel.notify(CONTROL_METHODS.attestationResult, {
          status: result.status,
          reasons: result.reasons.slice(0, 64),
        });
      }
    } catch (error) {
      this.log.warn(
        { replica: replica.key, err: toAppError(error).message },
        'could not send the attestation result',
      );
    }
  }

  private record(replica: Replica, attestation: NonNullable<Replica['attestation']>): void {
    const previous = replica.attestation;
    replica.attestation = attestation;
    // The registry's change listeners update what derives from it (the attestation gauge, queued requests).
    this.deps.registry.changed(replica);
    const changed = previous?.status !== attestation.status || previous.sid !== attestation.sid;
    const line = {
      replica: replica.key,
      sid: attestation.sid,
      status: attestation.status,
      reasons: attestation.reasons,
    };
    if (attestation.status === 'affirming') {
      if (changed) this.log.info(line, 'replica attested');
    } else {
      this.log.warn(line, 'replica not affirming');
    }
  }

  private async audit(
    replica: Replica,
    sid: string,
    result: 'affirming' | 'contraindicated' | 'pending',
    reasons: readonly string[],
    jti: string | null,
    kid: string | null,
  ): Promise<void> {
    const entry = {
      at: new Date().toISOString(),
      spoke: replica.spoke,
      replica: replica.key,
      sid,
      result,
      reasons,
      policyId: this.deps.appraiser.policyId,
      jti,
      kid,
    };
    this.log.info({ audit: entry }, 'attestation audit');
    await this.deps.store.appendAudit(entry);
  }
}
