// Test helper: an outgoing link stream as an AsyncIterable (for await), built on Link.open; leaving the loop
// early cancels the stream at the peer.
import type { AppError } from '../../shared/errors.js';
import type { Link } from '../../shared/link.js';

export async function* linkStream(
  link: Pick<Link, 'open'>,
  method: string,
  params: unknown,
): AsyncGenerator<unknown, void, undefined> {
  const buffered: unknown[] = [];
  let ended = false;
  let failure: AppError | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const handle = link.open(method, params, {
    item: (value) => {
      buffered.push(value);
      notify();
    },
    end: () => {
      ended = true;
      notify();
    },
    fail: (error) => {
      failure ??= error;
      notify();
    },
  });
  try {
    for (;;) {
      if (buffered.length > 0) {
        yield buffered.shift();
        continue;
      }
      if (failure !== undefined) throw failure;
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    handle.cancel();
  }
}
