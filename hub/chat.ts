// Chat routing: which spoke answers a person's free-text message. Explicit `@spoke` prefix, then a skill id,
// then the conversation's spoke (multi-turn), then a deterministic intent match over the spokes' cards; an
// ambiguous match yields a clarifying question (or asks an optional pluggable classifier) instead of a guess.
// A spoke named by prefix gets the skill of its own that the message matches best; a follow-up keeps its
// conversation's last skill unless the message clearly matches another of the spoke's skills.
import type { CardSkill } from '../shared/agent_card.js';
import { AppError } from '../shared/errors.js';

/** A spoke the chat may route to, with the card facts the intent match reads. */
export interface ChatCandidate {
  readonly spoke: string;
  readonly description: string;
  readonly skills: readonly CardSkill[];
}

/** An optional classifier (e.g. an LLM) consulted only when the deterministic match is ambiguous. */
export interface ChatClassifier {
  /** Returns the chosen spoke name, or null to fall back to a clarifying question. */
  classify(
    input: { readonly message: string; readonly candidates: readonly ChatCandidate[] },
    signal?: AbortSignal,
  ): Promise<{ readonly spoke: string } | null>;
}

/** Score of one spoke for a message. */
export interface IntentScore {
  readonly spoke: string;
  readonly score: number;
  /** The best-matching skill of that spoke. */
  readonly skill: string | null;
}

/** Why a route was chosen. */
export type ChatRouteReason = 'prefix' | 'skill' | 'conversation' | 'intent' | 'classifier';

/** The chat router's decision. */
export type ChatRoute =
  | {
      readonly kind: 'spoke';
      readonly spoke: string;
      readonly skill: string | null;
      /** The message without the `@spoke` prefix. */
      readonly text: string;
      readonly reason: ChatRouteReason;
    }
  | {
      readonly kind: 'ambiguous';
      readonly candidates: readonly IntentScore[];
      /** The clarifying question to send back. */
      readonly question: string;
    }
  | {
      /** The spoke is known but not which of its skills: asked back instead of the spoke refusing the task. */
      readonly kind: 'which-skill';
      readonly spoke: string;
      /** The spoke's skill ids. */
      readonly skills: readonly string[];
      readonly question: string;
    };

/**
 * Intent scoring, documented so operators can predict it:
 * - the message and each card field are tokenised: lower case, split on anything but letters and digits,
 *   tokens shorter than 2 characters and common English stop words dropped, then stemmed "lite" (one of the
 *   suffixes -ing, -ed, -ies→y, -es, -s, -ly, -ment, -ation removed when at least 3 characters remain);
 * - a token's weight for a spoke is the highest weight of a field of any of its skills that contains it:
 *   skill id, name or tags {@link WEIGHTS.strong} (3), description {@link WEIGHTS.description} (2), examples
 *   {@link WEIGHTS.example} (1); a token equal to the spoke's own name weighs 3 too;
 * - a token counts only for the spoke it points to most strongly: its weight is added to that spoke's score
 *   when it is higher than its weight for every other spoke, and to nobody's when the highest weights tie.
 *   Vocabulary every agent shares ("ROI", "Q4", "marketing spend" asked of finance) decides nothing;
 * - the spoke's reported skill is the one whose fields match the message's tokens best; for a spoke named by
 *   `@prefix`, only a skill that outscores each of the spoke's other skills; for a spoke kept from the
 *   conversation, the conversation's last skill unless another of its skills wins clearly by the rule below
 *   (so "and the month before?" stays with the skill the conversation is about);
 * - the best spoke wins only if its score is at least {@link MIN_SCORE} and beats the runner-up by at least
 *   {@link MIN_MARGIN} (and by a quarter of its own score); otherwise the match is ambiguous.
 */
export const WEIGHTS = Object.freeze({ strong: 3, description: 2, example: 1 });
/** Lowest score that can win. */
export const MIN_SCORE = 3;
/** Smallest lead over the runner-up that can win. */
export const MIN_MARGIN = 2;

const STOP_WORDS = new Set(
  (
    'a an and are as at be but by can could do does for from give had has have how i in into is it its me my of ' +
    'on or our please should so than that the their them then there these this those to us was we what when ' +
    'which who why will with would you your about tell show get let make need want like just some any all'
  ).split(' '),
);

const SUFFIXES: ReadonlyArray<readonly [string, string]> = [
  ['ation', ''],
  ['ment', ''],
  ['ing', ''],
  ['ies', 'y'],
  ['ed', ''],
  ['es', ''],
  ['ly', ''],
  ['s', ''],
];

/** Stem-lite: strips one common suffix when at least 3 characters remain. */
export function stem(word: string): string {
  for (const [suffix, replacement] of SUFFIXES) {
    if (word.endsWith(suffix) && word.length - suffix.length >= 3) {
      return word.slice(0, word.length - suffix.length) + replacement;
    }
  }
  return word;
}

/** Tokens of a text as the intent match sees them. */
export function tokenize(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((token) => token.length >= 2 && !STOP_WORDS.has(token))
    .map(stem);
}

function skillTokens(skill: CardSkill): {
  strong: Set<string>;
  description: Set<string>;
  example: Set<string>;
} {
  return {
    strong: new Set([...tokenize(skill.id), ...tokenize(skill.name), ...skill.tags.flatMap(tokenize)]),
    description: new Set(tokenize(skill.description)),
    example: new Set((skill.examples ?? []).flatMap(tokenize)),
  };
}

/** Weight of one message token for one skill of the spoke whose stemmed name is `own`. */
function tokenWeight(token: string, own: string, fields: ReturnType<typeof skillTokens>): number {
  if (token === own || fields.strong.has(token)) return WEIGHTS.strong;
  if (fields.description.has(token)) return WEIGHTS.description;
  return fields.example.has(token) ? WEIGHTS.example : 0;
}

/** Each skill of `candidate` with the summed weights of `tokens` for it, in card order. */
function skillScores(tokens: readonly string[], candidate: ChatCandidate): { id: string; score: number }[] {
  const own = stem(candidate.spoke);
  return candidate.skills.map((skill) => {
    const fields = skillTokens(skill);
    return { id: skill.id, score: tokens.reduce((sum, token) => sum + tokenWeight(token, own, fields), 0) };
  });
}

/** Scores every candidate for `message`, best first (ties broken by spoke name for determinism). */
export function scoreIntent(message: string, candidates: readonly ChatCandidate[]): IntentScore[] {
  const tokens = [...new Set(tokenize(message))];
  const matched = candidates.map((candidate) => {
    const own = stem(candidate.spoke);
    const fields = candidate.skills.map(skillTokens);
    const tokenWeights = tokens.map((token) =>
      Math.max(token === own ? WEIGHTS.strong : 0, ...fields.map((field) => tokenWeight(token, own, field))),
    );
    let bestSkill: string | null = null;
    let bestSkillScore = 0;
    for (const skill of skillScores(tokens, candidate)) {
      if (skill.score > bestSkillScore) {
        bestSkillScore = skill.score;
        bestSkill = skill.id;
      }
    }
    return { spoke: candidate.spoke, tokenWeights, skill: bestSkill };
  });
  const scores = matched.map((entry): IntentScore => {
    let score = 0;
    entry.tokenWeights.forEach((weight, index) => {
      const strongestElsewhere = Math.max(
        0,
        ...matched.filter((other) => other !== entry).map((other) => other.tokenWeights[index] ?? 0),
      );
      if (weight > strongestElsewhere) score += weight;
    });
    return { spoke: entry.spoke, score, skill: score > 0 ? entry.skill : null };
  });
  return scores.sort((a, b) => b.score - a.score || a.spoke.localeCompare(b.spoke));
}

/**
 * The skill of `candidate` that `message` matches better than each of its other skills, or null when none
 * does (no match, or a tie): the spoke is then left to pick, or to ask which skill is meant. A spoke's own
 * name counts for all its skills alike, so it decides nothing here.
 */
export function bestSkillOf(message: string, candidate: ChatCandidate): string | null {
  const [best, runnerUp] = rankedSkills(message, candidate);
  if (best === undefined || best.score === 0 || (runnerUp !== undefined && runnerUp.score === best.score)) {
    return null;
  }
  return best.id;
}

/**
 * The skill of `candidate` that `message` matches clearly, by the rule that decides between spokes (see
 * {@link WEIGHTS}), or null: what moves a conversation off the skill it is about.
 */
export function clearSkillOf(message: string, candidate: ChatCandidate): string | null {
  const [best, runnerUp] = rankedSkills(message, candidate);
  return best !== undefined && winsClearly(best.score, runnerUp?.score ?? 0) ? best.id : null;
}

function rankedSkills(message: string, candidate: ChatCandidate): { id: string; score: number }[] {
  return skillScores([...new Set(tokenize(message))], candidate).sort((a, b) => b.score - a.score);
}

/** True when the best score wins clearly (see {@link WEIGHTS} for the rule). */
export function isDecisive(scores: readonly IntentScore[]): boolean {
  const best = scores[0];
  return best !== undefined && winsClearly(best.score, scores[1]?.score ?? 0);
}

function winsClearly(best: number, runnerUp: number): boolean {
  return best >= MIN_SCORE && best - runnerUp >= Math.max(MIN_MARGIN, Math.ceil(best / 4));
}

/** The question asked back when the target is ambiguous. */
export function clarifyingQuestion(
  candidates: readonly ChatCandidate[],
  scores: readonly IntentScore[],
): string {
  const relevant = scores.filter((score) => score.score > 0);
  const listed = (
    relevant.length >= 2 ? relevant.map((score) => score.spoke) : candidates.map((c) => c.spoke)
  ).map((name) => {
    const candidate = candidates.find((c) => c.spoke === name);
    return `@${name}${candidate === undefined || candidate.description === '' ? '' : ` (${candidate.description})`}`;
  });
  if (listed.length === 0) return 'No agent is available to answer right now. Please try again later.';
  return `Which agent should answer this? ${listed.join(', ')}. Start your message with the agent's name, e.g. "${listed[0]?.split(' ')[0] ?? ''} …".`;
}

/** Inputs of {@link chooseChatRoute}. */
export interface ChatRouteInput {
  readonly message: string;
  /** Every configured spoke (with its card facts when known). */
  readonly candidates: readonly ChatCandidate[];
  /** The spoke this conversation is with, when continuing one. */
  readonly conversationSpoke?: string | null | undefined;
  /**
   * The skill its last task was routed to, kept unless a follow-up clearly matches another of that spoke's
   * skills; asked only then (a store read).
   */
  readonly conversationSkill?: (() => Promise<string | null>) | undefined;
  /**
   * The message the hub last answered with a clarifying question in this conversation, if that was the last
   * turn: a reply that only names an agent or a skill ("@marketing", "campaign-roi-analysis") is routed with it.
   */
  readonly pendingQuestion?: string | undefined;
  readonly classify?: ChatClassifier | undefined;
  readonly signal?: AbortSignal | undefined;
}

const PREFIX = /^\s*@([a-z][a-z0-9-]{0,31})\b[\s,:]*/i;

/**
 * Decides which spoke, and which of its skills, answers a chat message: a clarifying question when either is
 * unclear. Throws NOT_FOUND for an `@name` that is no configured spoke.
 */
export async function chooseChatRoute(input: ChatRouteInput): Promise<ChatRoute> {
  const pending = input.pendingQuestion;
  const route = await chooseSpoke(
    pending !== undefined && onlyNamesAgentsOrSkills(input.message, input.candidates)
      ? { ...input, message: `${input.message.trim()} ${pending.replace(PREFIX, '')}` }
      : input,
  );
  if (route.kind !== 'spoke' || route.skill !== null) return route;
  const skills = input.candidates.find((candidate) => candidate.spoke === route.spoke)?.skills ?? [];
  // A spoke with one skill (or whose card is not known yet) takes the task and picks for itself.
  if (skills.length < 2) return route;
  const listed = skills.map((skill) => `${skill.id} (${skill.name})`).join(', ');
  const example = `@${route.spoke} ${skills[0]!.id} ${route.text.trim() === '' ? '…' : route.text.trim()}`;
  return {
    kind: 'which-skill',
    spoke: route.spoke,
    skills: skills.map((skill) => skill.id),
    question: `Which of @${route.spoke}'s skills should answer this? ${listed}. Name one after the agent, e.g. "${example}".`,
  };
}

/** True when every word of `message` is an `@agent` or a skill id of the candidates (an answer to a question back). */
function onlyNamesAgentsOrSkills(message: string, candidates: readonly ChatCandidate[]): boolean {
  const words = message.trim().split(/\s+/);
  return (
    words[0] !== '' &&
    words.every((word) =>
      candidates.some(
        (candidate) =>
          word.toLowerCase() === `@${candidate.spoke}` || candidate.skills.some((skill) => skill.id === word),
      ),
    )
  );
}

async function chooseSpoke(input: ChatRouteInput): Promise<ChatRoute> {
  const { message, candidates } = input;
  const prefix = PREFIX.exec(message);
  if (prefix?.[1] !== undefined) {
    const name = prefix[1].toLowerCase();
    const named = candidates.find((candidate) => candidate.spoke === name);
    if (named === undefined) {
      throw new AppError('NOT_FOUND', `no agent named @${name}`, {
        details: { agents: candidates.map((candidate) => candidate.spoke) },
      });
    }
    const text = message.slice(prefix[0].length);
    // "@marketing campaign-roi-analysis how did November go?" names the skill itself.
    const [firstWord = '', rest = ''] = text.split(/\s+(.*)/s);
    const skill = named.skills.find((entry) => entry.id === firstWord);
    if (skill !== undefined) {
      return {
        kind: 'spoke',
        spoke: name,
        skill: skill.id,
        text: rest === '' ? text : rest,
        reason: 'prefix',
      };
    }
    return { kind: 'spoke', spoke: name, skill: bestSkillOf(text, named), text, reason: 'prefix' };
  }
  const firstWord = message.trim().split(/\s+/)[0]?.replace(/^[#/]/, '') ?? '';
  for (const candidate of candidates) {
    const skill = candidate.skills.find((entry) => entry.id === firstWord);
    if (skill !== undefined) {
      return { kind: 'spoke', spoke: candidate.spoke, skill: skill.id, text: message, reason: 'skill' };
    }
  }
  const conversationSpoke = input.conversationSpoke;
  const conversing = candidates.find((candidate) => candidate.spoke === conversationSpoke);
  if (conversing !== undefined) {
    return {
      kind: 'spoke',
      spoke: conversing.spoke,
      skill:
        clearSkillOf(message, conversing) ??
        (await input.conversationSkill?.()) ??
        bestSkillOf(message, conversing),
      text: message,
      reason: 'conversation',
    };
  }
  const scores = scoreIntent(message, candidates);
  const best = scores[0];
  if (best !== undefined && isDecisive(scores)) {
    return { kind: 'spoke', spoke: best.spoke, skill: best.skill, text: message, reason: 'intent' };
  }
  if (input.classify !== undefined && candidates.length > 0) {
    const choice = await input.classify.classify({ message, candidates }, input.signal);
    if (choice !== null && candidates.some((candidate) => candidate.spoke === choice.spoke)) {
      return { kind: 'spoke', spoke: choice.spoke, skill: null, text: message, reason: 'classifier' };
    }
  }
  return { kind: 'ambiguous', candidates: scores, question: clarifyingQuestion(candidates, scores) };
}
