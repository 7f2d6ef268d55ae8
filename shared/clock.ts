// ISO-8601 timestamps for per-message paths: each millisecond is formatted once and its string shared.

let lastMs = Number.NaN;
let lastIso = '';

/**
 * `new Date(ms).toISOString()`, remembering the last value: a routed message stamps its task several times
 * within one millisecond (created, dispatched, first event, finished), and at a few thousand messages a second
 * neighbouring tasks share milliseconds too. One formatting instead of four, and one string kept instead of
 * four for as long as the task is.
 */
export function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}
