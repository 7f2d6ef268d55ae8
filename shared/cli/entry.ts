// Process entry of the CLI: runs main with argv and ends the process with its exit code once standard output
// has drained — a finished command must not linger on handles a library left open (a model-registry request
// that never answers offline keeps a socket pending for minutes).
import process from 'node:process';
import { main } from './main.js';

const exitCode = await main(process.argv.slice(2));
process.stdout.write('', () => process.exit(exitCode));
