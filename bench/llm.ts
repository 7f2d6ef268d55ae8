// Benchmark of the LLM runtime: peak RSS of a process running it (VmHWM) against the 7,000 MB budget,
// generation speed through the runtime vs raw node-llama-cpp, and time to first token of a request that
// reuses the shared system prompt. `npx tsx bench/llm.ts`; BENCH_QUICK=1 for a tiny-model smoke run.
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama, LlamaChatSession, LlamaLogLevel, MistralChatWrapper } from 'node-llama-cpp';
import { validateModelFile, writeMistral7bShapeModel, writeTinyModel } from '../shared/gguf.js';
import { defaultThreadCount, openLlm } from '../shared/llm.js';

/** A long shared system prompt, so reusing its evaluated tokens is what the second request saves. */
const SYSTEM_PROMPT = [
  'You are the marketing analyst agent of a hub-and-spoke system. You explain campaign results to finance.',
  'Every number you quote comes from the metrics you are given; you never compute ROI yourself.',
  'Channels: email, paid search, paid social, display, affiliates, organic search and referrals.',
  'Metrics: spend, revenue, conversions, cost per acquisition, return on ad spend and ROI in percent.',
  'Answer in two or three short sentences, name the channel, and say how confident the data lets you be.',
  'When the data is thin, say so. When a channel lost money, say which one and by how much.',
].join(' ');
const FIRST_PROMPT = 'Which channel had the best ROI last quarter, and why?';
const SECOND_PROMPT = 'Which channel should lose budget next quarter?';

/** What a child process measured. */
interface ChildReport {
  readonly contextTokens: number;
  readonly generatedTokens: number;
  readonly genTokPerS: number | null;
  readonly ttftFirstMs: number | null;
  readonly ttftSecondMs: number | null;
  readonly reusedPrefixTokens: number;
  readonly loadMs: number;
}

interface ChildTask {
  readonly mode: 'runtime' | 'raw';
  readonly modelPath: string;
  readonly maxTokens: number;
  readonly threads: number;
  readonly maxMemoryMb: number;
  readonly contextSize: number;
}

/** Runs the request pair through openLlm (what the spoke runs). */
async function runRuntime(task: ChildTask): Promise<ChildReport> {
  const started = performance.now();
  const llm = await openLlm({
    model: task.modelPath,
    cacheDir: tmpdir(),
    threads: task.threads,
    gpu: false,
    maxMemoryMb: task.maxMemoryMb,
    download: false,
  });
  const loadMs = performance.now() - started;
  try {
    const first = await llm.generateText({
      system: SYSTEM_PROMPT,
      prompt: FIRST_PROMPT,
      maxTokens: task.maxTokens,
    });
    const second = await llm.generateText({
      system: SYSTEM_PROMPT,
      prompt: SECOND_PROMPT,
      maxTokens: task.maxTokens,
    });
    return {
      contextTokens: llm.info.contextSize,
      generatedTokens: first.usage.completionTokens,
      genTokPerS: first.usage.generationTokensPerSecond,
      ttftFirstMs: first.usage.timeToFirstTokenMs,
      ttftSecondMs: second.usage.timeToFirstTokenMs,
      reusedPrefixTokens: second.usage.reusedPrefixTokens,
      loadMs,
    };
  } finally {
    await llm.close();
  }
}

/** Runs the first request with node-llama-cpp directly and identical settings (the baseline). */
async function runRaw(task: ChildTask): Promise<ChildReport> {
  const started = performance.now();
  const llama = await getLlama({
    gpu: false,
    build: 'never',
    maxThreads: task.threads,
    logLevel: LlamaLogLevel.error,
  });
  const model = await llama.loadModel({ modelPath: task.modelPath, useMmap: false, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: task.contextSize,
    sequences: 1,
    threads: task.threads,
  });
  const loadMs = performance.now() - started;
  const session = new LlamaChatSession({
    contextSequence: context.getSequence(),
    chatWrapper: new MistralChatWrapper(),
    systemPrompt: SYSTEM_PROMPT,
  });
  let generatedTokens = 0;
  let firstTokenAt: number | null = null;
  const requestStarted = performance.now();
  await session.promptWithMeta(FIRST_PROMPT, {
    maxTokens: task.maxTokens,
    temperature: 0,
    onToken: (tokens) => {
      if (tokens.length > 0 && firstTokenAt === null) firstTokenAt = performance.now();
      generatedTokens += tokens.length;
    },
  });
  const ended = performance.now();
  await model.dispose();
  const firstAt: number | null = firstTokenAt;
  return {
    contextTokens: context.contextSize,
    generatedTokens,
    genTokPerS:
      firstAt !== null && generatedTokens > 1 && ended > firstAt
        ? ((generatedTokens - 1) * 1000) / (ended - firstAt)
        : null,
    ttftFirstMs: firstAt === null ? null : firstAt - requestStarted,
    ttftSecondMs: null,
    reusedPrefixTokens: 0,
    loadMs,
  };
}

/** Child side: run the task, report, wait for the parent to read /proc/<pid>/status, exit. */
async function child(task: ChildTask): Promise<void> {
  const report = task.mode === 'runtime' ? await runRuntime(task) : await runRaw(task);
  process.send?.({ report });
  process.on('message', () => process.exit(0));
}

async function peakRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kilobytes = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (kilobytes === undefined) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kilobytes) * 1024;
}

/** Parent side: runs a task in a child process; returns its report and its peak RSS. */
function runChild(task: ChildTask): Promise<{ report: ChildReport; peakRssBytes: number }> {
  return new Promise((resolve, reject) => {
    const process_ = fork(fileURLToPath(import.meta.url), ['--child', JSON.stringify(task)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    process_.once('error', reject);
    process_.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${task.mode} child exited with code ${code}`));
    });
    process_.once('message', (message: { report: ChildReport }) => {
      peakRssBytes(process_.pid ?? 0)
        .then((peak) => {
          process_.send('exit');
          resolve({ report: message.report, peakRssBytes: peak });
        })
        .catch(reject);
    });
  });
}

/** The model to measure: BENCH_MODEL (never deleted), the tiny model (quick), or the cached 7B-shaped file. */
async function prepareModel(quick: boolean): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const given = process.env.BENCH_MODEL;
  if (given !== undefined && given !== '') return { path: given, cleanup: async () => {} };
  if (quick) {
    const directory = await mkdtemp(join(tmpdir(), 'agenthub-bench-llm-'));
    const path = join(directory, 'tiny.gguf');
    await writeTinyModel(path);
    return { path, cleanup: () => rm(directory, { recursive: true, force: true }) };
  }
  const directory = process.env.BENCH_CACHE_DIR ?? join(homedir(), '.cache', 'agenthub', 'bench');
  await mkdir(directory, { recursive: true });
  const path = join(directory, 'mistral-7b-v0.3-shape-q4_k_m.gguf');
  const complete =
    existsSync(path) &&
    (await validateModelFile(path).then(
      () => true,
      () => false,
    ));
  if (!complete) {
    console.log(`writing the Mistral-7B-shaped model (4.37 GB) to ${path} …`);
    const started = performance.now();
    const result = await writeMistral7bShapeModel(path);
    console.log(
      `  ${result.fileBytes.toLocaleString('en-US')} bytes in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  return { path, cleanup: async () => {} };
}

function round(value: number | null, digits: number): number | null {
  return value === null ? null : Number(value.toFixed(digits));
}

async function main(): Promise<void> {
  const quick = process.env.BENCH_QUICK === '1';
  const maxTokens = Number(process.env.BENCH_MAX_TOKENS ?? (quick ? 64 : 24));
  const threads = Number(process.env.BENCH_THREADS ?? defaultThreadCount());
  const maxMemoryMb = Number(process.env.AGENT_MAX_MEMORY_MB ?? 7000);
  const model = await prepareModel(quick);
  try {
    const size = (await stat(model.path)).size;
    console.log(
      `model ${model.path} (${(size / 1e9).toFixed(2)} GB), threads ${threads}, budget ${maxMemoryMb} MB, load ${loadavg()[0]?.toFixed(2)}`,
    );
    const base = { modelPath: model.path, maxTokens, threads, maxMemoryMb };
    const runtime = await runChild({ ...base, mode: 'runtime', contextSize: 0 });
    const raw = await runChild({ ...base, mode: 'raw', contextSize: runtime.report.contextTokens });
    const peakRssMb = runtime.peakRssBytes / 1e6;
    const genRatio =
      runtime.report.genTokPerS !== null && raw.report.genTokPerS !== null
        ? runtime.report.genTokPerS / raw.report.genTokPerS
        : null;
    const ttftRatio =
      runtime.report.ttftFirstMs !== null && runtime.report.ttftSecondMs !== null
        ? runtime.report.ttftSecondMs / runtime.report.ttftFirstMs
        : null;
    console.log(
      `runtime: context ${runtime.report.contextTokens} tokens, load ${(runtime.report.loadMs / 1000).toFixed(1)} s, peak RSS ${peakRssMb.toFixed(0)} MB (budget ${maxMemoryMb} MB)`,
    );
    console.log(
      `  generation ${runtime.report.genTokPerS?.toFixed(2)} tok/s over ${runtime.report.generatedTokens} tokens; raw node-llama-cpp ${raw.report.genTokPerS?.toFixed(2)} tok/s (ratio ${genRatio?.toFixed(2)}, target ≥ 0.90)`,
    );
    console.log(
      `  time to first token: first ${runtime.report.ttftFirstMs?.toFixed(0)} ms, second (same system prompt, ${runtime.report.reusedPrefixTokens} tokens reused) ${runtime.report.ttftSecondMs?.toFixed(0)} ms (ratio ${ttftRatio?.toFixed(2)}, target ≤ 0.50)`,
    );
    console.log(
      `  raw process peak RSS ${(raw.peakRssBytes / 1e6).toFixed(0)} MB; load average now ${loadavg()[0]?.toFixed(2)}`,
    );
    console.log(
      JSON.stringify({
        model: quick ? 'tiny' : given(model.path),
        peak_rss_mb: Math.round(peakRssMb),
        budget_mb: maxMemoryMb,
        context_tokens: runtime.report.contextTokens,
        gen_tokens: runtime.report.generatedTokens,
        gen_tok_per_s_runtime: round(runtime.report.genTokPerS, 2),
        gen_tok_per_s_raw: round(raw.report.genTokPerS, 2),
        gen_ratio: round(genRatio, 2),
        ttft_first_ms: round(runtime.report.ttftFirstMs, 0),
        ttft_second_ms: round(runtime.report.ttftSecondMs, 0),
        ttft_ratio: round(ttftRatio, 2),
        reused_prefix_tokens: runtime.report.reusedPrefixTokens,
        threads,
        load_avg_1m: round(loadavg()[0] ?? null, 2),
      }),
    );
  } finally {
    await model.cleanup();
  }
}

function given(path: string): string {
  return process.env.BENCH_MODEL !== undefined && process.env.BENCH_MODEL !== '' ? path : 'mistral-7b-shape';
}

if (process.argv[2] === '--child') {
  await child(JSON.parse(process.argv[3] ?? '{}') as ChildTask);
} else {
  await main();
}
