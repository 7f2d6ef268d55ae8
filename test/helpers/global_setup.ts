// vitest global setup: runs once before all test files.
export default function setup(): void {
  process.env.AGENTHUB_TEST = '1';
}
