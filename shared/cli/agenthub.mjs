#!/usr/bin/env node
// The `agenthub` command: loads the TypeScript CLI through tsx, so a clone runs without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
