// The pure parts of the hub, table-driven: the routing gate's truth table (ATTESTATION.md §5.7, §6.1), the
// deterministic chat intent match, and the task event log's sequence numbers and gap reporting.
import { describe, expect, it } from 'vitest';
import {
  bestSkillOf,
  chooseChatRoute,
  isDecisive,
  scoreIntent,
  stem,
  tokenize,
  type ChatCandidate,
} from '../../hub/chat.js';
import { isAttestationReason, routingGate, type GateInput } from '../../hub/routing.js';
import { InMemoryTaskStore } from '../../hub/tasks.js';
import { META } from '../../shared/protocol.js';

const NOW = 1_800_000_000_000;
const POLICY = { policyId: 'p'.repeat(64), maxAgeMs: 90_000 };
const affirming: GateInput = {
  session: { sid: 's1', alive: true },
  attestation: { status: 'affirming', sid: 's1', attestedAt: NOW - 1_000, policyId: POLICY.policyId },
  ready: true,
};

describe('routing gate', () => {
  it('routes an affirming, fresh, same-session, current-policy, ready replica', () => {
    expect(routingGate(affirming, NOW, POLICY)).toEqual({ routable: true });
  });

  it.each<[string, GateInput, string]>([
    ['no session', { ...affirming, session: undefined }, 'disconnected'],
    ['a dead session', { ...affirming, session: { sid: 's1', alive: false } }, 'session.dead'],
    ['no appraisal yet', { ...affirming, attestation: undefined }, 'attestation.pending'],
    [
      'an appraisal of an earlier session',
      { ...affirming, session: { sid: 's2', alive: true } },
      'attestation.sid_mismatch',
    ],
    [
      'a contraindicated appraisal',
      { ...affirming, attestation: { ...affirming.attestation!, status: 'contraindicated' } },
      'attestation.contraindicated',
    ],
    [
      'a pending appraisal',
      { ...affirming, attestation: { ...affirming.attestation!, status: 'pending' } },
      'attestation.pending',
    ],
    [
      'an appraisal older than 90 s',
      { ...affirming, attestation: { ...affirming.attestation!, attestedAt: NOW - 90_000 } },
      'attestation.stale',
    ],
    [
      'an appraisal under another policy',
      { ...affirming, attestation: { ...affirming.attestation!, policyId: 'q'.repeat(64) } },
      'attestation.policy_mismatch',
    ],
    ['a replica that says it is not ready', { ...affirming, ready: false }, 'not_ready'],
  ])('refuses %s', (_name, input, reason) => {
    expect(routingGate(input, NOW, POLICY)).toEqual({ routable: false, reason });
  });

  it('maps attestation reasons to SPOKE_UNATTESTED and reachability reasons to SPOKE_UNAVAILABLE', () => {
    expect(isAttestationReason('attestation.stale')).toBe(true);
    expect(isAttestationReason('disconnected')).toBe(false);
    expect(isAttestationReason('not_ready')).toBe(false);
  });
});

const CANDIDATES: ChatCandidate[] = [
  {
    spoke: 'marketing',
    description: 'Marketing analysis',
    skills: [
      {
        id: 'campaign-roi-analysis',
        name: 'Campaign ROI analysis',
        description: 'Analyses campaign performance: spend, revenue, ROI and ROAS per channel.',
        tags: ['marketing', 'campaign', 'roi'],
        examples: ['analyse Q4 campaign performance for ROI'],
      },
    ],
  },
  {
    spoke: 'finance',
    description: 'Financial decisions',
    skills: [
      {
        id: 'payback-analysis',
        name: 'Payback and budget recommendation',
        description: 'Computes payback period, CAC efficiency and a budget reallocation.',
        tags: ['finance', 'payback', 'budget'],
        examples: ['what is the payback period of our Q4 spend'],
      },
    ],
  },
];

describe('chat intent match', () => {
  it('tokenises with stop words dropped and stem-lite applied', () => {
    expect(tokenize('What are the campaigns performing?')).toEqual(['campaign', 'perform']);
    expect(stem('budgets')).toBe('budget');
    expect(stem('is')).toBe('is');
  });

  it.each([
    ['analyse the ROI of our Q4 campaigns per channel', 'marketing'],
    ['what is the payback period and budget reallocation', 'finance'],
  ])('routes "%s" to %s', async (message, spoke) => {
    const route = await chooseChatRoute({ message, candidates: CANDIDATES });
    expect(route).toMatchObject({ kind: 'spoke', spoke, reason: 'intent' });
  });

  it.each(['hello there', 'campaign budget'])('asks back instead of guessing for "%s"', async (message) => {
    const route = await chooseChatRoute({ message, candidates: CANDIDATES });
    expect(route.kind).toBe('ambiguous');
    if (route.kind === 'ambiguous')
      expect(route.question).toMatch(/@marketing.*@finance|@finance.*@marketing/);
  });

  it('lets an explicit @prefix, a skill id and the conversation win over intent, in that order', async () => {
    expect(
      await chooseChatRoute({ message: '@finance ROI of campaigns', candidates: CANDIDATES }),
    ).toMatchObject({
      spoke: 'finance',
      reason: 'prefix',
      text: 'ROI of campaigns',
    });
    expect(await chooseChatRoute({ message: 'payback-analysis Q4', candidates: CANDIDATES })).toMatchObject({
      spoke: 'finance',
      reason: 'skill',
    });
    expect(
      await chooseChatRoute({
        message: 'and last year?',
        candidates: CANDIDATES,
        conversationSpoke: 'marketing',
      }),
    ).toMatchObject({ spoke: 'marketing', reason: 'conversation' });
    await expect(chooseChatRoute({ message: '@sales hi', candidates: CANDIDATES })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  /** A spoke with several skills: a prefix or a conversation picks the spoke, the message picks the skill. */
  const TOOLKIT: ChatCandidate = {
    spoke: 'marketing',
    description: 'Marketing analysis',
    skills: [
      ...(CANDIDATES[0]?.skills ?? []),
      {
        id: 'listing-creatives',
        name: 'Compliant listing creatives',
        description: 'Writes fair-housing compliant ad copy for a property listing.',
        tags: ['creative', 'ad', 'listing'],
        examples: ['write a listing ad for 12 Oak Street'],
      },
    ],
  };

  it.each([
    ['how did Q4 go?', 'campaign-roi-analysis'],
    ['write an ad for the Oak Street listing', 'listing-creatives'],
    ['good morning', null],
    // "campaign" is a tag of one skill and "ad" of the other: a tie names no skill.
    ['campaign ad', null],
  ])('picks the skill of a named spoke that "%s" matches best: %s', (message, skill) => {
    expect(bestSkillOf(message, TOOLKIT)).toBe(skill);
  });

  it('gives a route by @prefix or by conversation the skill the message matches, else the last one', async () => {
    const candidates = [TOOLKIT, ...CANDIDATES.slice(1)];
    expect(await chooseChatRoute({ message: '@marketing how did Q4 go?', candidates })).toEqual({
      kind: 'spoke',
      spoke: 'marketing',
      skill: 'campaign-roi-analysis',
      text: 'how did Q4 go?',
      reason: 'prefix',
    });
    // No skill matches: the hub asks which one, listing them, instead of sending a task the spoke would refuse.
    const whichSkill = await chooseChatRoute({ message: '@marketing how did November go?', candidates });
    expect(whichSkill).toMatchObject({
      kind: 'which-skill',
      spoke: 'marketing',
      skills: ['campaign-roi-analysis', 'listing-creatives'],
    });
    expect(whichSkill.kind === 'which-skill' && whichSkill.question).toBe(
      "Which of @marketing's skills should answer this? campaign-roi-analysis (Campaign ROI analysis), " +
        'listing-creatives (Compliant listing creatives). Name one after the agent, e.g. ' +
        '"@marketing campaign-roi-analysis how did November go?".',
    );
    // Naming the skill after the agent routes to it, without the skill id in the text.
    expect(
      await chooseChatRoute({ message: '@marketing campaign-roi-analysis how did November go?', candidates }),
    ).toEqual({
      kind: 'spoke',
      spoke: 'marketing',
      skill: 'campaign-roi-analysis',
      text: 'how did November go?',
      reason: 'prefix',
    });
    // A reply that only names a skill or an agent answers the hub's question about the message before it.
    expect(
      await chooseChatRoute({
        message: 'campaign-roi-analysis',
        candidates,
        pendingQuestion: '@marketing how did November go?',
      }),
    ).toEqual({
      kind: 'spoke',
      spoke: 'marketing',
      skill: 'campaign-roi-analysis',
      text: 'campaign-roi-analysis how did November go?',
      reason: 'skill',
    });
    expect(
      await chooseChatRoute({ message: ' @finance ', candidates, pendingQuestion: 'what is the payback?' }),
    ).toMatchObject({ kind: 'spoke', spoke: 'finance', text: 'what is the payback?', reason: 'prefix' });
    // A new question of its own is routed as it is.
    expect(
      await chooseChatRoute({ message: '@marketing how did Q4 go?', candidates, pendingQuestion: 'hello' }),
    ).toMatchObject({ skill: 'campaign-roi-analysis', text: 'how did Q4 go?' });
    // A spoke with a single skill takes the message and picks for itself.
    expect(await chooseChatRoute({ message: '@finance hi', candidates })).toMatchObject({
      kind: 'spoke',
      skill: null,
    });
    const followUp = {
      candidates,
      conversationSpoke: 'marketing',
      conversationSkill: async () => 'campaign-roi-analysis',
    };
    expect(await chooseChatRoute({ message: 'and the quarter before?', ...followUp })).toMatchObject({
      reason: 'conversation',
      skill: 'campaign-roi-analysis',
    });
    expect(await chooseChatRoute({ message: 'now a listing ad for it', ...followUp })).toMatchObject({
      reason: 'conversation',
      skill: 'listing-creatives',
    });
    // "property" is only in the listing skill's description: too weak a match to leave the conversation's skill,
    // though it is the best match when the conversation has no skill to keep.
    expect(bestSkillOf('and for that property?', TOOLKIT)).toBe('listing-creatives');
    expect(await chooseChatRoute({ message: 'and for that property?', ...followUp })).toMatchObject({
      reason: 'conversation',
      skill: 'campaign-roi-analysis',
    });
    expect(
      await chooseChatRoute({
        ...followUp,
        message: 'and for that property?',
        conversationSkill: async () => null,
      }),
    ).toMatchObject({ reason: 'conversation', skill: 'listing-creatives' });
  });

  it('asks the pluggable classifier only when the match is ambiguous', async () => {
    const asked: string[] = [];
    const classify = {
      classify: async (input: { message: string }) => {
        asked.push(input.message);
        return { spoke: 'finance' };
      },
    };
    expect(await chooseChatRoute({ message: 'hello', candidates: CANDIDATES, classify })).toMatchObject({
      spoke: 'finance',
      reason: 'classifier',
    });
    await chooseChatRoute({ message: 'campaign ROI per channel', candidates: CANDIDATES, classify });
    expect(asked).toEqual(['hello']);
  });

  it('needs a clear margin: close scores are not decisive', () => {
    expect(isDecisive(scoreIntent('campaign budget', CANDIDATES))).toBe(false);
    expect(isDecisive(scoreIntent('campaign roi channel spend', CANDIDATES))).toBe(true);
  });
});

describe('task event log', () => {
  it('numbers events 1, 2, 3… per task, stamps seq and epoch, and reports evicted events as a gap', async () => {
    const store = new InMemoryTaskStore({ eventLimit: 16 });
    for (let index = 0; index < 20; index += 1) {
      await store.appendEvent(
        't1',
        { statusUpdate: { taskId: 't1', contextId: 'c', status: { state: 'TASK_STATE_WORKING' } } },
        false,
      );
    }
    const other = await store.appendEvent(
      't2',
      { statusUpdate: { taskId: 't2', contextId: 'c', status: { state: 'TASK_STATE_WORKING' } } },
      false,
    );
    expect(other.seq).toBe(1);
    const recent = await store.eventsAfter('t1', 10);
    expect(recent.gap).toBe(false);
    expect(recent.entries.map((entry) => entry.seq)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    const first = recent.entries[0]?.event;
    expect(first !== undefined && 'statusUpdate' in first ? first.statusUpdate.metadata : undefined).toEqual({
      [META.seq]: 11,
      [META.epoch]: store.epoch,
    });
    const old = await store.eventsAfter('t1', 2);
    expect(old.gap).toBe(true);
    expect(old.entries[0]?.seq).toBe(5);
  });
});
