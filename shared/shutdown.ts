// Graceful stop of a service process on SIGINT/SIGTERM: one orderly close (a second signal does not start
// another), logged, then exit 0 — or exit 1 with the reason when closing fails.
import process from 'node:process';
import type { Logger } from './log.js';

/** Runs `close` once on the first SIGINT or SIGTERM, then ends the process. */
export function closeOnSignals(log: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    close()
      .then(() => {
        log.info('stopped');
        log.flush();
        process.exit(0);
      })
      .catch((error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        log.flush();
        process.exit(1);
      });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
