// Locates the design data and test vectors kept beside the repository (../shared), read in place.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Absolute path of the repository root. */
export const REPO_ROOT = repoRoot;

/** Absolute path of `../shared/<relative>` (design notes, data, vectors beside the repository). */
export function sharedPath(relative: string): string {
  return resolve(repoRoot, '..', 'shared', relative);
}

/** True when `../shared/<relative>` exists; tests that need it use `describe.skipIf(!hasShared(...))`. */
export function hasShared(relative: string): boolean {
  const present = existsSync(sharedPath(relative));
  if (!present) {
    console.warn(`skipping: ../shared/${relative} is absent (tests read the shared data in place)`);
  }
  return present;
}
