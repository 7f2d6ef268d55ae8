// e2e proof of the hub's chat endpoint with every process on real ports: which spoke a person's question reaches,
// what an ambiguous message gets (stable across repeats), SSE with increasing ids ending in a terminal status, a
// reconnect with Last-Event-ID or ?afterSeq= that resumes without loss or duplication, and a follow-up to finance
// that marketing reads in the same conversation.
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCommand } from '../../spoke_marketing/data_commands.js';
import { generateSampleCampaignCsv } from '../../spoke_marketing/sample_data.js';
import { captureIo } from '../helpers/cli_io.js';
import { startSystem, type RunningSystem } from '../helpers/system.js';
import { tinyModelPath } from '../helpers/tiny_model.js';

let system: RunningSystem;

beforeAll(async () => {
  system = await startSystem({ marketingModel: await tinyModelPath() });
}, 150_000);

afterAll(async () => {
  await system?.close();
});

interface ChatAnswer {
  reply: string;
  spoke: string | null;
  taskId: string | null;
  contextId: string;
  state?: string;
  clarification?: boolean;
  candidates?: string[];
  skills?: string[];
}

async function chat(message: string): Promise<ChatAnswer> {
  const answer = await system.hub('/v1/chat', { body: { message } });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body as ChatAnswer;
}

interface HubTaskView {
  target: string;
  hops: { from: string; to: string; outcome: string | null }[];
}

/** The routed spoke as the hub's task record tells it (not only as the chat reply claims). */
async function routedTo(taskId: string): Promise<string[]> {
  const record = await system.hub(`/v1/tasks/${taskId}`);
  expect(record.status).toBe(200);
  const view = record.body as HubTaskView;
  return [view.target, ...view.hops.filter((hop) => hop.from === 'client').map((hop) => hop.to)];
}

const TERMINAL = new Set([
  'TASK_STATE_COMPLETED',
  'TASK_STATE_FAILED',
  'TASK_STATE_CANCELED',
  'TASK_STATE_REJECTED',
]);

describe('chat routing', () => {
  it('sends "How did our Q4 campaigns do?" to the marketing spoke', async () => {
    const answer = await chat('How did our Q4 campaigns do?');
    expect(answer.spoke).toBe('marketing');
    expect(answer.taskId).not.toBeNull();
    expect(await routedTo(answer.taskId!)).toEqual(['marketing', 'marketing']);
    expect(TERMINAL.has(answer.state ?? '')).toBe(true);
    expect(answer.reply).not.toBe('');
  });

  it('sends "What is the payback period of our Q4 marketing spend?" to the finance spoke', async () => {
    const answer = await chat('What is the payback period of our Q4 marketing spend?');
    expect(answer, `reply: ${answer.reply}`).toMatchObject({ spoke: 'finance' });
    expect(await routedTo(answer.taskId!)).toEqual(['finance', 'finance']);
  });

  it('routes "What was our ROI last quarter?" (both spokes speak ROI) deterministically to marketing, every time', async () => {
    const answers = [];
    for (let repeat = 0; repeat < 3; repeat += 1) answers.push(await chat('What was our ROI last quarter?'));
    expect(answers.map((answer) => answer.spoke)).toEqual(['marketing', 'marketing', 'marketing']);
    expect(new Set(answers.map((answer) => answer.contextId)).size).toBe(3);
    for (const answer of answers) expect(await routedTo(answer.taskId!)).toEqual(['marketing', 'marketing']);
  });

  // This system has no campaign rows imported, so the ROI skill answers with what it needs; before the hub
  // picked the skill, the marketing spoke answered 400 "cannot tell which skill is meant" instead.
  it('sends "@marketing how did Q4 go?" to the ROI skill, and a follow-up in the conversation to it too', async () => {
    const first = await chat('@marketing how did Q4 go?');
    const followUp = await system.hub('/v1/chat', {
      body: { message: 'and the quarter before?', contextId: first.contextId },
    });
    expect(followUp.status, JSON.stringify(followUp.body)).toBe(200);
    const second = followUp.body as ChatAnswer;
    // "month" is in an example of the lifetime-value skill ("monthly churn"): a match that weak keeps the conversation's.
    const third = (
      await system.hub('/v1/chat', { body: { message: 'and the month before?', contextId: first.contextId } })
    ).body as ChatAnswer;
    expect(second.contextId).toBe(first.contextId);
    expect(first.reply).toMatch(/campaign rows/);
    // The first turn named no period the spoke could use, so the follow-up has none to count from.
    expect(second.reply).toMatch(
      /"quarter before" counts from the period this conversation last asked about/,
    );
    for (const answer of [first, second, third]) {
      expect(answer.spoke).toBe('marketing');
      expect(TERMINAL.has(answer.state ?? '')).toBe(true);
      const record = await system.hub(`/v1/tasks/${answer.taskId}`);
      expect(record.body).toMatchObject({ target: 'marketing', skill: 'campaign-roi-analysis' });
    }
  });

  it('asks which skill when "@marketing how did November go?" matches none, and routes it once the skill is named', async () => {
    const question = await chat('@marketing how did November go?');
    expect(question).toMatchObject({ spoke: 'marketing', taskId: null, clarification: true });
    expect(question.skills).toContain('campaign-roi-analysis');
    expect(question.skills).toContain('customer-lifetime-value');
    expect(question.reply).toContain('"@marketing campaign-roi-analysis how did November go?"');
    const answer = await chat('@marketing campaign-roi-analysis how did November go?');
    expect(answer.spoke).toBe('marketing');
    const record = await system.hub(`/v1/tasks/${answer.taskId}`);
    expect(record.body).toMatchObject({ target: 'marketing', skill: 'campaign-roi-analysis' });
    // Or answer the question with the skill alone: the hub routes the question it asked about.
    const reply = (
      await system.hub('/v1/chat', {
        body: { message: 'campaign-roi-analysis', contextId: question.contextId },
      })
    ).body as ChatAnswer;
    expect(reply.spoke).toBe('marketing');
    const replied = await system.hub(`/v1/tasks/${reply.taskId}`);
    expect(replied.body).toMatchObject({ target: 'marketing', skill: 'campaign-roi-analysis' });
    // The spoke got the question itself, not only the skill's name.
    const asked = replied.body as { task: { history?: { role: string; parts: { text?: string }[] }[] } };
    expect(asked.task.history?.[0]?.parts[0]?.text).toBe('campaign-roi-analysis how did November go?');
  });

  it('answers "good morning" with the same clarifying question naming both agents, every time, and routes nothing', async () => {
    const answers = [];
    for (let repeat = 0; repeat < 3; repeat += 1) answers.push(await chat('good morning'));
    for (const answer of answers) {
      expect(answer).toMatchObject({ spoke: null, taskId: null, clarification: true });
      expect(answer.reply).toContain('@marketing');
      expect(answer.reply).toContain('@finance');
    }
    expect(new Set(answers.map((answer) => answer.reply)).size).toBe(1);
    expect(new Set(answers.map((answer) => JSON.stringify(answer.candidates))).size).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------------------
// SSE

interface SseEvent {
  id?: number;
  event?: string;
  data: unknown;
}

/** Complete events of an SSE text (a trailing event without its blank line is left out). */
function parseSse(text: string): SseEvent[] {
  const complete = text.slice(0, text.lastIndexOf('\n\n') + 2);
  return complete
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const event: SseEvent = { data: undefined };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        const field = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') event.id = Number(value);
        else if (field === 'event') event.event = value;
        else if (field === 'data') data.push(value);
      }
      event.data = JSON.parse(data.join('\n')) as unknown;
      return event;
    });
}

function stateOf(event: SseEvent): string | undefined {
  const data = event.data as {
    task?: { status?: { state?: string } };
    statusUpdate?: { status?: { state?: string } };
    state?: string;
  };
  return data.task?.status?.state ?? data.statusUpdate?.status?.state ?? data.state;
}

const QUESTION = `@marketing How did our Q4 2025 campaigns do?\n${generateSampleCampaignCsv({ seed: 11 })}`;

function chatStream(messageId: string, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(`${system.hubUrl}/v1/chat`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${system.apiKey}`,
      'content-type': 'application/json',
      accept: 'text/event-stream',
      ...headers,
    },
    body: JSON.stringify({ message: QUESTION, messageId }),
    signal: signal ?? AbortSignal.timeout(90_000),
  });
}

/** Reads an SSE response to its end. */
async function readAll(response: Response): Promise<SseEvent[]> {
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  return parseSse(await response.text());
}

function numbered(events: readonly SseEvent[]): SseEvent[] {
  return events.filter((event) => event.id !== undefined);
}

describe('chat over SSE', () => {
  it('streams several events with increasing ids and ends with a terminal status and the reply', async () => {
    const events = await readAll(await chatStream(randomUUID()));
    const ids = numbered(events).map((event) => event.id);
    expect(ids.length).toBeGreaterThan(1);
    expect(ids).toEqual(ids.map((_id, index) => index + 1));
    expect(TERMINAL.has(stateOf(numbered(events).at(-1)!) ?? '')).toBe(true);
    const done = events.at(-1)!;
    expect(done.event).toBe('done');
    expect(done.data).toMatchObject({ spoke: 'marketing', state: 'TASK_STATE_COMPLETED' });
    expect((done.data as { reply: string }).reply).toContain('Campaign ROI for 2025-Q4');
  }, 120_000);

  it('resumes after a reconnect with Last-Event-ID without loss or duplication: the two partial reads make one full read', async () => {
    const { partOne, partTwo, full, lastSeen, taskId } = await resumed();
    expect(partTwo[0]?.data).toMatchObject({ taskId });
    expect(partTwo.at(-1)).toMatchObject({ event: 'done', data: { taskId, state: 'TASK_STATE_COMPLETED' } });
    expect(numbered(partTwo)[0]?.id).toBe(lastSeen + 1);
    const union = [...numbered(partOne), ...numbered(partTwo)];
    expect(union.map(shape)).toEqual(numbered(full).map(shape));
    expect(TERMINAL.has(stateOf(numbered(full).at(-1)!) ?? '')).toBe(true);

    // The same resume point as ?afterSeq= on the task's event stream.
    const afterSeq = await readAll(
      await fetch(`${system.hubUrl}/v1/tasks/${taskId}/events?afterSeq=${lastSeen}`, {
        headers: { authorization: `Bearer ${system.apiKey}`, accept: 'text/event-stream' },
        signal: AbortSignal.timeout(60_000),
      }),
    );
    expect(numbered(afterSeq).map(shape)).toEqual(numbered(full).slice(lastSeen).map(shape));
  }, 120_000);

  it('replays every event exactly as it was first delivered (same id, same content)', async () => {
    const { partOne, partTwo, full } = await resumed();
    const live = new Map([...numbered(partOne), ...numbered(partTwo)].map((event) => [event.id, event]));
    const changed = numbered(full)
      .filter((event) => JSON.stringify(event) !== JSON.stringify(live.get(event.id)))
      .map((event) => event.id);
    expect(changed, 'ids whose replayed content differs from the live delivery').toEqual([]);
  }, 120_000);
});

/** id, event kind and task state: what loss or duplication would change. */
function shape(event: SseEvent): [number | undefined, string | undefined, string | undefined] {
  return [event.id, event.event, stateOf(event)];
}

interface Resumed {
  partOne: SseEvent[];
  partTwo: SseEvent[];
  full: SseEvent[];
  lastSeen: number;
  taskId: string;
}

let resumedRun: Promise<Resumed> | undefined;
/** One chat stream dropped after its first numbered event, resumed with Last-Event-ID, then read in full. */
function resumed(): Promise<Resumed> {
  resumedRun ??= (async () => {
    const messageId = randomUUID();
    const controller = new AbortController();
    const first = await chatStream(
      messageId,
      {},
      AbortSignal.any([controller.signal, AbortSignal.timeout(90_000)]),
    );
    expect(first.status).toBe(200);
    const reader = first.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const deadline = Date.now() + 60_000;
    // Read until the first numbered event has arrived, then drop the connection.
    while (numbered(parseSse(text)).length === 0) {
      if (Date.now() > deadline)
        throw new Error(`no numbered event within 60 s; got ${JSON.stringify(text)}`);
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    controller.abort();
    const partOne = parseSse(text);
    const taskId = (partOne[0]?.data as { taskId: string }).taskId;
    const lastSeen = numbered(partOne).at(-1)!.id!;
    const partTwo = await readAll(await chatStream(messageId, { 'last-event-id': String(lastSeen) }));
    const full = await readAll(
      await fetch(`${system.hubUrl}/v1/tasks/${taskId}/events`, {
        headers: { authorization: `Bearer ${system.apiKey}`, accept: 'text/event-stream' },
        signal: AbortSignal.timeout(60_000),
      }),
    );
    return { partOne, partTwo, full, lastSeen, taskId };
  })();
  return resumedRun;
}

// Last in this file: it imports campaign rows into marketing, which the questions above must not see.
describe('follow-ups on stored campaign data', () => {
  it('answers "and for the quarter before?" and "what if monthly churn is 3%?" after a finance question about Q4: finance asks marketing in the same conversation', async () => {
    const csvFile = join(system.stateDir, 'sample-q3-q4.csv');
    await writeFile(csvFile, generateSampleCampaignCsv({ seed: 42 }));
    const io = captureIo(['metrics', csvFile], system.stateDir, { AGENTHUB_STATE_DIR: system.stateDir });
    expect(await importCommand(io), io.err.join('')).toBe(0);
    const first = await chat('@finance what is the payback period for Q4 2025?');
    expect(first.spoke).toBe('finance');
    expect(first.reply).toMatch(/^ROI review for 2025-Q4:/);
    const followUp = await system.hub('/v1/chat', {
      body: { message: 'and for the quarter before?', contextId: first.contextId },
    });
    expect(followUp.status, JSON.stringify(followUp.body)).toBe(200);
    const second = followUp.body as ChatAnswer;
    expect(second.spoke).toBe('finance');
    expect(second.reply).toMatch(/^ROI review for 2025-Q3:/);
    expect(second.reply).toContain('LTV:CAC unavailable (no monthly churn rate given)');
    // An assumption stated as a follow-up: the same period, now with LTV:CAC.
    const third = (
      await system.hub('/v1/chat', {
        body: { message: 'what if monthly churn is 3%?', contextId: first.contextId },
      })
    ).body as ChatAnswer;
    expect(third.spoke).toBe('finance');
    expect(third.reply).toMatch(/^ROI review for 2025-Q3:/);
    expect(third.reply).toMatch(/LTV:CAC \d/);
  });
});
