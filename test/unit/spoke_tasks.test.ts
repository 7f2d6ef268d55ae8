// The spoke task engine's streams: events leave in bursts, and a burst that ends the task leaves as one final
// task snapshot (what keeps a routed answer to two frames), while progress in later turns still streams.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.js';
import { META, type StreamResponse } from '../../shared/protocol.js';
import type { SkillDefinition } from '../../shared/skill.js';
import { ERROR_METADATA_KEY, createTaskEngine } from '../../shared/spoke_tasks.js';

function skill(id: string, handler: SkillDefinition['handler']): SkillDefinition {
  return { id, name: id, description: `test skill ${id}`, tags: [id], examples: [], handler };
}

const skills: SkillDefinition[] = [
  skill('now', async (input) => ({ text: `now: ${input.text}`, data: { n: 1 } })),
  skill('steps', async (_input, context) => {
    context.progress('step 1');
    await sleep(20);
    context.progress('step 2');
    await sleep(20);
    return { text: 'stepped' };
  }),
  skill('refuse', async () => {
    throw new AppError('VALIDATION_FAILED', 'no such campaign');
  }),
];

function engine() {
  return createTaskEngine({
    skills,
    capacity: 2,
    callPeer: () => Promise.reject(new AppError('SPOKE_UNAVAILABLE', 'no hub in this test')),
  });
}

async function streamOf(
  skillId: string,
  text = 'hello',
  configuration?: { historyLength: number },
): Promise<StreamResponse[]> {
  const answer = engine().handle(
    'SendStreamingMessage',
    {
      message: { messageId: `m-${skillId}`, role: 'ROLE_USER', parts: [{ text }] },
      metadata: { [META.skill]: skillId },
      ...(configuration === undefined ? {} : { configuration }),
    },
    new AbortController().signal,
  ) as AsyncIterable<StreamResponse>;
  const events: StreamResponse[] = [];
  for await (const event of answer) events.push(event);
  return events;
}

function describeEvent(event: StreamResponse): string {
  if ('task' in event) return `task ${event.task.status.state}`;
  if ('statusUpdate' in event) return `status ${event.statusUpdate.status.state}`;
  if ('artifactUpdate' in event) return 'artifact';
  return 'message';
}

describe('spoke task streams', () => {
  it('answers a skill that finishes at once with one final task carrying the artifact', async () => {
    const events = await streamOf('now', 'q4');
    expect(events.map(describeEvent)).toEqual(['task TASK_STATE_COMPLETED']);
    const task = 'task' in events[0]! ? events[0].task : undefined;
    expect(task?.artifacts?.[0]?.parts).toEqual([
      { text: 'now: q4' },
      { data: { n: 1 }, mediaType: 'application/json' },
    ]);
    expect(task?.history?.[0]?.parts).toEqual([{ text: 'q4' }]);
    expect(task?.metadata?.[META.skill]).toBe('now');
  });

  it('streams progress made in later turns as status events, then ends with the final task', async () => {
    const events = await streamOf('steps');
    expect(events.map(describeEvent)).toEqual([
      'task TASK_STATE_WORKING',
      'status TASK_STATE_WORKING',
      'task TASK_STATE_COMPLETED',
    ]);
    const first = events[0]!;
    const progress = events[1]!;
    expect('task' in first ? first.task.status.message?.parts : undefined).toEqual([{ text: 'step 1' }]);
    expect('statusUpdate' in progress ? progress.statusUpdate.status.message?.parts : undefined).toEqual([
      { text: 'step 2' },
    ]);
    const last = events[2]!;
    expect('task' in last ? last.task.artifacts?.[0]?.parts : undefined).toEqual([{ text: 'stepped' }]);
  });

  it('leaves the history out of stream snapshots when the request asks for none (as the hub does)', async () => {
    const events = await streamOf('steps', 'q4', { historyLength: 0 });
    const tasks = events.flatMap((event) => ('task' in event ? [event.task] : []));
    expect(tasks).toHaveLength(2);
    for (const task of tasks) expect(task.history).toBeUndefined();
  });

  it('answers a skill that fails at once with one failed task naming the error code', async () => {
    const events = await streamOf('refuse');
    expect(events.map(describeEvent)).toEqual(['task TASK_STATE_FAILED']);
    const task = 'task' in events[0]! ? events[0].task : undefined;
    expect(task?.metadata?.[ERROR_METADATA_KEY]).toEqual({
      code: 'VALIDATION_FAILED',
      message: 'no such campaign',
    });
    expect(task?.status.message?.parts[0]?.text).toBe('VALIDATION_FAILED: no such campaign');
  });
});
