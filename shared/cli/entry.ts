// Process entry of the CLI when run as plain JavaScript from dist/ (containers): runs main with argv.
import process from 'node:process';
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
