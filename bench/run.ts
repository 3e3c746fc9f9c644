/**
 * Benchmark entry.
 *
 *   npm run bench -- [--suite NAME[,NAME]] [--quick] [--peers] [--json FILE] [--markdown FILE] [--retune]
 *     the suite of issue #10 (bench/suite): every case timed to GPU completion, checked against a
 *     float64 reference, with the peer engines of bench/peers in the same process (--peers);
 *     a run of all suites also writes bench/results/<adapter>.json and .md (-full without --quick).
 *   npm run bench -- runtime|train-step|matmul|attention|conv|replay-host
 *     the older detailed reports (kernel configurations, per-kernel breakdowns), appended to
 *     bench/results/<adapter>-<name>.md.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { init, runtime, shutdown } from '../src/gpu/runtime.js';
import { type TuneCases, tune } from '../src/kernels/autotune.js';
import { tuningEnabled } from '../src/kernels/tuning-store.js';
import { printAttentionBench } from './attention.js';
import { printConvBench } from './conv.js';
import { printMatmulBench } from './matmul.js';
import { benchReplayHost } from './replay-host.js';
import { printRuntimeBench } from './runtime.js';
import { buildCases, SUITES } from './suite/cases.js';
import type { Engine } from './suite/engine.js';
import type { BenchCase } from './suite/spec.js';
import { oursEngine } from './suite/ours.js';
import { type SuiteResults, toMarkdown } from './suite/report.js';
import { type CaseResult, runCases } from './suite/runner.js';
import { benchTrainStep } from './train-step.js';

const REPORTS: Record<string, () => Promise<string>> = {
  runtime: printRuntimeBench,
  'train-step': benchTrainStep,
  matmul: printMatmulBench,
  attention: printAttentionBench,
  conv: printConvBench,
  'replay-host': benchReplayHost,
};

export const PEERS_DIR = path.resolve('bench/peers');

interface Options {
  suite?: string;
  quick?: boolean;
  peers?: boolean;
  json?: string;
  markdown?: string;
  retune?: boolean;
  progress: boolean;
}

function adapterSlug(): string {
  const s = runtime().adapterSummary;
  return (s.device || s.description || 'adapter')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
}

function commitHash(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' }).trim();
    // Result files a run writes do not make the code it measured dirty.
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/results', ':!BENCHMARKS.md'], {
      encoding: 'utf8',
    }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

/**
 * The autotuner's cases for the suite's kernels: matmuls (A not transposed), row kernels, and on
 * hardware adapters attention (software adapters run attention through the score matrix, whose
 * products are the matmuls; tuning flash configurations there costs minutes of compiles for a
 * path they do not take).
 */
function tuneCasesOf(cases: BenchCase[], software: boolean): TuneCases {
  const out: Required<TuneCases> = { rows: [], matmul: [], attention: [] };
  for (const { op } of cases) {
    if (op.kind === 'matmul' && !op.transA) out.matmul.push({ M: op.M, K: op.K, N: op.N, transB: op.transB });
    else if (op.kind === 'attention' && !software) out.attention.push({ b: op.B, h: op.H, n: op.N, d: op.D, backward: op.backward });
    else if (op.kind === 'layerNorm' || op.kind === 'rmsNorm' || op.kind === 'softmax')
      out.rows.push({ family: op.kind, rows: op.T, D: op.W });
  }
  return out;
}

async function runSuite(opts: Options, argv: string[]): Promise<void> {
  const started = performance.now();
  const loadStart = loadavg()[0];
  // The code measured is the checkout at the start (a long run may outlast a commit).
  const commitAtStart = commitHash();
  const dateAtStart = new Date().toISOString();
  const wanted = opts.suite ? opts.suite.split(',').map((s) => s.trim()) : [...SUITES];
  for (const s of wanted) {
    if (!(SUITES as readonly string[]).includes(s)) throw new Error(`bench: unknown suite '${s}' (have ${SUITES.join(', ')})`);
  }
  let peerModule: typeof import('./peers/index.js') | null = null;
  if (opts.peers) {
    if (!existsSync(path.join(PEERS_DIR, 'node_modules'))) {
      console.error('bench: --peers needs the peer engines, installed apart from the library: run `npm run bench:peers:install` first');
      process.exitCode = 2;
      return;
    }
    peerModule = await import('./peers/index.js');
  }
  // --retune: tuning on, ignoring the cache; the suite's shapes are measured below before any timing.
  const rt = await init({ profile: false, ...(opts.retune ? { retune: true } : {}) });
  const software = rt.caps.software !== null;
  // The copy case always runs: it is the limit of every memory-bound case.
  const cases = buildCases({ software }).filter((c) => (c.suite === 'copy' || wanted.includes(c.suite)) && (!opts.quick || c.quick));
  let tuning = tuningEnabled() ? 'tuning cache (RAE_TUNE=1)' : 'tuning table (no autotuning)';
  if (opts.retune) {
    const t0 = performance.now();
    console.error("bench: --retune: measuring kernel configurations for the suite's shapes…");
    await tune(tuneCasesOf(cases, software), { force: true });
    tuning = `autotuned in this run (--retune, ${((performance.now() - t0) / 1000).toFixed(0)} s)`;
  }
  const peers: Engine[] = [];
  const peerVersions: Record<string, string> = {};
  if (peerModule) {
    const loaded = await peerModule.loadPeers(rt);
    peers.push(...loaded.engines);
    Object.assign(peerVersions, loaded.versions);
  }
  const s = rt.adapterSummary;
  const adapterName = `${s.description} ${s.device}`;
  const plan = opts.quick ? { repeats: 5, targetMs: 150, maxCalls: 50 } : { repeats: 7, targetMs: 400, maxCalls: 200 };
  const bar = opts.progress && process.stderr.isTTY;
  let done = 0;
  const t0 = performance.now();
  // Without a terminal for the bar, one line per finished case (logs of long runs show progress).
  const ms = (c: { median?: number; error?: string }) => (c.median !== undefined ? `${c.median.toFixed(1)} ms` : c.error);
  const onCase = bar
    ? undefined
    : (r: CaseResult) => {
        const peerText = Object.entries(r.peers).map(([n, p]) => `${n} ${ms(p)}`);
        const elapsed = ((performance.now() - t0) / 1000).toFixed(0);
        console.error(`bench [${++done}/${cases.length}] ${elapsed} s ${r.name} ${r.shape}: ours ${ms(r)}; ${peerText.join('; ')}`);
      };
  const engines = [oursEngine({ compiled: true }), oursEngine({ compiled: true, fusion: true }), ...peers];
  const run = await runCases(cases, oursEngine(), engines, { adapterName, plan, progress: bar, onCase });
  const results: SuiteResults = {
    schema: 'rae-webgpu-bench/1',
    adapter: { description: s.description, vendor: s.vendor, architecture: s.architecture, device: s.device, backend: s.backend },
    // The instance toggles init() adds (the runtime does not expose Dawn's own defaults).
    toggles: process.env.RAE_EXPERIMENTAL === '1' ? ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'] : [],
    commit: commitAtStart,
    date: dateAtStart,
    gpuWaits: runtime().quietWaits ? 'quiet (Dawn events polled every 1 ms)' : 'spin (Dawn events polled without pause)',
    tuning,
    command: `npm run bench -- ${argv.join(' ')}`.trim(),
    quick: opts.quick ?? false,
    loadAverage: { start: loadStart, end: loadavg()[0] },
    durationSeconds: (performance.now() - started) / 1000,
    copyBandwidthGBs: run.copyBandwidthGBs,
    knownLimits: run.knownLimits,
    peers: {
      'ours compiled': 'compiled training step (compileStep: recorded once, replayed; the default of the training commands)',
      'ours compiled+fused': 'the same with elementwise fusion',
      ...peerVersions,
    },
    cases: run.cases,
  };
  const md = toMarkdown(results);
  console.log(md);
  const json = `${JSON.stringify(results, null, 2)}\n`;
  if (opts.json) writeFileSync(opts.json, json);
  if (opts.markdown) writeFileSync(opts.markdown, md);
  // The adapter's result files hold whole-suite runs only: a run of some suites must not replace them.
  if (!opts.suite) {
    mkdirSync('bench/results', { recursive: true });
    writeFileSync(path.join('bench/results', `${adapterSlug()}${opts.quick ? '' : '-full'}.json`), json);
    writeFileSync(path.join('bench/results', `${adapterSlug()}${opts.quick ? '' : '-full'}.md`), md);
  }
}

async function runReports(names: string[]): Promise<void> {
  for (const n of names) if (!REPORTS[n]) throw new Error(`bench: unknown report '${n}' (have ${Object.keys(REPORTS).join(', ')})`);
  await init({ profile: process.env.RAE_PROFILE === '1' });
  const s = runtime().adapterSummary;
  mkdirSync('bench/results', { recursive: true });
  for (const n of names) {
    const text = await REPORTS[n]();
    console.log(`== ${n}\n${text}\n`);
    appendFileSync(
      path.join('bench/results', `${adapterSlug()}-${n}.md`),
      `\n## ${new Date().toISOString()} — ${s.description || s.device} (${s.backend})\n\n\`\`\`\n${text}\n\`\`\`\n`,
    );
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const program = new Command('bench')
    .description('rae-webgpu benchmarks')
    .argument('[reports...]', `older detailed reports: ${Object.keys(REPORTS).join(', ')}`)
    .option('--suite <names>', `suites, comma-separated (${SUITES.join(', ')}); default all`)
    .option('--quick', 'the subset of cases and fewer repeats (about 15 min on lavapipe with --peers)')
    .option('--peers', 'also run tfjs-webgpu, onnxruntime-web and jax-js in this process (npm run bench:peers:install)')
    .option('--json <file>', 'write the results as JSON')
    .option('--markdown <file>', 'write the results as markdown')
    .option('--retune', 'measure kernel configurations again instead of using the autotuner cache')
    .option('--no-progress', 'no progress bar')
    .action(async (reports: string[], opts: Options) => {
      if (reports.length) await runReports(reports);
      else await runSuite(opts, argv);
    });
  await program.parseAsync(argv, { from: 'user' });
  shutdown();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
