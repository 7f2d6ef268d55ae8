// Where things are on disk: the repository root, each spoke's code paths and the lock file that
// attestation measures, and the default state directory. The enrolment and the spokes must agree on these.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository (package) root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The spokes a local start runs, with their default ports (INTERFACES.md). */
export const LOCAL_SPOKES = Object.freeze([
  { name: 'marketing', apiPort: 8082, attestationPort: 29345 },
  { name: 'finance', apiPort: 8083, attestationPort: 29346 },
] as const);

/** Default hub port. */
export const DEFAULT_HUB_PORT = 8080;

/**
 * The code a spoke runs, as measured by attestation: the shared code, the spoke's own folder and the
 * package manifest. The enrolment computes reference values over exactly these paths.
 */
export function spokeCodePaths(spokeName: string): string[] {
  return [
    resolve(REPO_ROOT, 'shared'),
    resolve(REPO_ROOT, `spoke_${spokeName}`),
    resolve(REPO_ROOT, 'package.json'),
  ];
}

/** The dependency lock file whose digest attestation reports. */
export function lockfilePath(): string {
  return resolve(REPO_ROOT, 'package-lock.json');
}

/** The state directory: `--state-dir`, else `AGENTHUB_STATE_DIR`, else `.agenthub` under `cwd`. */
export function resolveStateDir(
  cwd: string,
  explicit: string | undefined,
  envValue: string | undefined,
): string {
  return resolve(cwd, explicit ?? envValue ?? '.agenthub');
}
