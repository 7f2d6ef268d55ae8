#!/usr/bin/env node
// The `agenthub` command: loads the TypeScript CLI through tsx, so a clone runs without a build step.
import { register } from 'tsx/esm/api';

register();
await import('./entry.ts');
