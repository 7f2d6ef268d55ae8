// CancelSource: fires once, calls function and handleEvent listeners, and makes a matching AbortSignal on demand.
import { describe, expect, it } from 'vitest';
import { CancelSource } from '../../shared/cancellation.js';

describe('CancelSource', () => {
  it('calls each listener once, skips removed ones, and a signal made before the cancel follows it', () => {
    const cancel = new CancelSource();
    const early = cancel.signal;
    const calls: string[] = [];
    const removed = (): void => void calls.push('removed');
    cancel.addEventListener('abort', () => void calls.push('function'));
    cancel.addEventListener('abort', { handleEvent: () => void calls.push('object') });
    cancel.addEventListener('abort', removed);
    cancel.removeEventListener('abort', removed);
    expect(early.aborted).toBe(false);
    cancel.abort('client gone');
    cancel.abort('again');
    expect(calls).toEqual(['function', 'object']);
    expect(cancel.aborted).toBe(true);
    expect(early.aborted).toBe(true);
    expect(early.reason).toBe('client gone');
  });

  it('makes an already aborted signal after the cancel, with the first reason', () => {
    const cancel = new CancelSource();
    cancel.abort('deadline');
    expect(cancel.signal.aborted).toBe(true);
    expect(cancel.signal.reason).toBe('deadline');
  });
});
