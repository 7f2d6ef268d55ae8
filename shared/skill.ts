// The contract between a spoke's skills and the spoke runtime that serves them over A2A: what a skill
// receives (the request's text and data parts, a cancel signal, a way to ask other spokes through the hub)
// and what it returns (text plus a JSON data artifact).
import type { Logger } from 'pino';
import type { JsonSchema } from './llm_client.js';

/** The parts of an incoming A2A message, as a skill sees them. */
export interface SkillInput {
  /** All text parts joined with newlines. */
  readonly text: string;
  /** The `data` parts' values, in order. */
  readonly data: readonly unknown[];
  /** A2A context id (conversation). */
  readonly contextId: string;
  /** A2A task id of this request. */
  readonly taskId: string;
  /** Request metadata (traceparent, deadline, caller…). */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** What a skill gets to run with. */
export interface SkillContext {
  /** Aborted when the caller cancels, the deadline passes or the spoke shuts down. Skills MUST honour it. */
  readonly signal: AbortSignal;
  /** Logger bound to the task (taskId, traceparent). */
  readonly log: Logger;
  /** Reports progress to the caller as a status update (streamed to chat clients). */
  progress(message: string): void;
  /**
   * Asks another spoke through the hub (never directly). Rejects with AppError `SPOKE_UNATTESTED`,
   * `SPOKE_UNAVAILABLE`, `DEADLINE_EXCEEDED`… when the hub cannot deliver.
   */
  callPeer(request: PeerRequest): Promise<PeerResponse>;
}

/** A request from one spoke to another, routed by the hub. */
export interface PeerRequest {
  /** Target spoke name (tenant), e.g. `marketing`. */
  readonly tenant: string;
  /** Skill id at the target, e.g. `campaign-roi-analysis`. */
  readonly skill: string;
  /** Text part of the request. */
  readonly text: string;
  /** Optional data part. */
  readonly data?: unknown;
  /**
   * The conversation the request belongs to (A2A contextId), usually the asking task's own: a peer that keeps
   * per-conversation state (marketing remembers the period asked about) then reads follow-ups in it, and the
   * hub keeps the conversation on the same replica of the peer.
   */
  readonly contextId?: string;
  /** Milliseconds the caller is willing to wait in total. */
  readonly timeoutMs?: number;
}

/** The answer of a peer spoke. */
export interface PeerResponse {
  /** The task id the peer's answer belongs to (at the hub). */
  readonly taskId: string;
  /** Text parts of the artifact, joined. */
  readonly text: string;
  /** The first data part of the artifact, if any. */
  readonly data: unknown;
  /** Task metadata reported by the peer. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** What a skill returns: becomes the task's artifact (a text part and, if given, a data part). */
export interface SkillResult {
  readonly text: string;
  readonly data?: unknown;
  /** Merged into the task's metadata (token counts, timings, grounding report…). */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** A skill a spoke serves; it is also what the agent card lists. */
export interface SkillDefinition {
  /** Stable A2A skill id, e.g. `campaign-roi-analysis`. */
  readonly id: string;
  readonly name: string;
  /** Used by the hub's deterministic intent match: say plainly what the skill answers. */
  readonly description: string;
  readonly tags: readonly string[];
  readonly examples: readonly string[];
  /** JSON schema of the data part the skill accepts (documentation in the card). */
  readonly inputSchema?: JsonSchema;
  /** JSON schema of the data part the skill returns. */
  readonly outputSchema?: JsonSchema;
  /** Runs the skill. Throw AppError (e.g. `VALIDATION_FAILED`) for bad input; the task then fails with it. */
  handler(input: SkillInput, context: SkillContext): Promise<SkillResult>;
}
