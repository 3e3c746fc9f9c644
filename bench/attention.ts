/**
 * Fused attention: forward and forward+backward time per call and nominal GFLOP/s (forward
 * 4·B·H·N²·D, backward 10·B·H·N²·D: the usual flash-attention accounting; the kernels recompute
 * the scores, so they execute more). "First call" is one forward+backward on a fresh shape with
 * the pipelines not yet compiled by this process (Mesa's disk cache may still hold them).
 *
 * `printAttentionBench()` returns a markdown table (for bench/run.ts); run directly with
 * `npx vite-node bench/attention.ts [--sweep]` (vite-node hides the script from argv, so the
 * module also runs when RAE_BENCH_ATTENTION=1) or `node dist/bench/attention.js` after a build.
 * `--sweep` compares code shapes (streamed/staged, loops/unrolled, register blocks) on one case.
 */
import { init, runtime } from '../src/gpu/runtime.js';
import { attentionBackward, attentionForward, chooseAttentionConfig, type AttentionConfig } from '../src/kernels/attention.js';
import { randn } from '../src/tensor/creation.js';
import { empty } from '../src/tensor/tensor.js';
import { adapterLine, gflops, isMain, markdownTable, timeGpu, type TimingOptions } from './common.js';

export interface AttentionBenchCase {
  b: number;
  h: number;
  n: number;
  d: number;
}

export interface AttentionBenchRow extends AttentionBenchCase {
  config: string;
  firstMs: number;
  forwardMs: number;
  forwardBackwardMs: number;
  forwardGflops: number;
  forwardBackwardGflops: number;
}

export const DEFAULT_CASES: AttentionBenchCase[] = [
  { b: 1, h: 4, n: 256, d: 64 },
  { b: 1, h: 16, n: 256, d: 72 },
  { b: 1, h: 6, n: 256, d: 128 },
  { b: 2, h: 6, n: 256, d: 32 },
  { b: 1, h: 1, n: 1024, d: 16 },
];

export const describeConfig = (c: AttentionConfig): string =>
  `${c.stage ? `stage ${c.stage}` : 'stream'}, ${c.loops ? 'loops' : 'unrolled'}, ${c.rows} thr × ${c.perThread} rows, ${c.unroll}/step`;

/** One case; `config` overrides the adapter's choice for both passes. */
export async function benchAttentionCase(
  c: AttentionBenchCase,
  config?: AttentionConfig,
  timing: TimingOptions & { repeats?: number } = {},
): Promise<AttentionBenchRow> {
  const rt = runtime();
  const { b, h, n, d } = c;
  const shape = [b, h, n, d];
  const [q, k, v, g] = [1, 2, 3, 4].map((seed) => randn(shape, { seed }));
  const o = empty(shape);
  const lse = empty([b, h, n]);
  const grads = [empty(shape), empty(shape), empty(shape)];
  const scale = 1 / Math.sqrt(d);
  const opts = { config };
  const fwd = () => attentionForward(q, k, v, o, lse, scale, opts);
  const fwdBwd = () => {
    fwd();
    attentionBackward(q, k, v, o, lse, g, grads[0], grads[1], grads[2], scale, opts);
  };
  await rt.sync();
  const t0 = performance.now();
  fwdBwd();
  await rt.sync();
  const firstMs = performance.now() - t0;
  // Best of `repeats`: on a shared machine the fastest run is the one least disturbed by others.
  let tf = await timeGpu(fwd, { minSeconds: 0.3, ...timing });
  let tb = await timeGpu(fwdBwd, { minSeconds: 0.3, ...timing });
  for (let i = 1; i < (timing.repeats ?? 3); i++) {
    const f = await timeGpu(fwd, { minSeconds: 0.3, ...timing, warmup: 0 });
    const fb = await timeGpu(fwdBwd, { minSeconds: 0.3, ...timing, warmup: 0 });
    if (f.ms < tf.ms) tf = f;
    if (fb.ms < tb.ms) tb = fb;
  }
  for (const t of [q, k, v, g, o, lse, ...grads]) t.dispose();
  const flop = b * h * n * n * d;
  const label = config
    ? describeConfig(config)
    : `fwd ${describeConfig(chooseAttentionConfig(d, 'forward'))}; bwd ${describeConfig(chooseAttentionConfig(d, 'backward'))}`;
  return {
    ...c,
    config: label,
    firstMs,
    forwardMs: tf.ms,
    forwardBackwardMs: tb.ms,
    forwardGflops: gflops(4 * flop, tf),
    forwardBackwardGflops: gflops(14 * flop, tb),
  };
}

/** The default cases with the adapter's configuration. */
export async function benchAttention(
  cases: AttentionBenchCase[] = DEFAULT_CASES,
  timing: TimingOptions & { repeats?: number } = {},
): Promise<AttentionBenchRow[]> {
  const rows: AttentionBenchRow[] = [];
  for (const c of cases) rows.push(await benchAttentionCase(c, undefined, timing));
  return rows;
}

export function formatAttentionResults(rows: AttentionBenchRow[]): string {
  return markdownTable(
    ['B·H·N·D', 'config', 'first call ms', 'fwd ms', 'fwd GFLOP/s', 'fwd+bwd ms', 'fwd+bwd GFLOP/s'],
    rows.map((r) => [
      `${r.b}·${r.h}·${r.n}·${r.d}`,
      r.config,
      r.firstMs.toFixed(0),
      r.forwardMs.toFixed(2),
      r.forwardGflops.toFixed(2),
      r.forwardBackwardMs.toFixed(2),
      r.forwardBackwardGflops.toFixed(2),
    ]),
  );
}

export async function printAttentionBench(): Promise<string> {
  return formatAttentionResults(await benchAttention());
}

/** Code shapes compared by `--sweep`. */
export const SWEEP_CONFIGS: AttentionConfig[] = [
  { rows: 32, perThread: 4, unroll: 4, stage: 0, loops: true },
  { rows: 32, perThread: 2, unroll: 4, stage: 0, loops: true },
  { rows: 16, perThread: 8, unroll: 4, stage: 0, loops: true },
  { rows: 64, perThread: 1, unroll: 4, stage: 0, loops: true },
  { rows: 32, perThread: 4, unroll: 4, stage: 16, loops: true },
  { rows: 32, perThread: 4, unroll: 1, stage: 0, loops: false },
  { rows: 64, perThread: 1, unroll: 4, stage: 16, loops: false },
];

async function main(): Promise<void> {
  await init();
  console.log(`Adapter: ${adapterLine()}\n`);
  if (process.argv.includes('--sweep')) {
    const rows: AttentionBenchRow[] = [];
    for (const config of SWEEP_CONFIGS) rows.push(await benchAttentionCase({ b: 1, h: 4, n: 256, d: 64 }, config));
    console.log(formatAttentionResults(rows));
    return;
  }
  console.log(await printAttentionBench());
}

if (isMain(import.meta.url) || process.env.RAE_BENCH_ATTENTION === '1') {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
