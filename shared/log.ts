// Structured JSON logging (pino) shared by every service; one logger per process, child loggers per module.
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Creates the process logger. `level` defaults to `LOG_LEVEL` handling in each service's config. */
export function createLogger(service: string, level = 'info'): Logger {
  return pino({ level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that discards everything, for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
