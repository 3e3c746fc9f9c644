/**
 * Fused attention benchmark: forward and forward+backward wall time per call (GPU-synchronised),
 * and nominal GFLOP/s (forward 4·B·H·N²·D, backward 10·B·H·N²·D, the usual flash-attention
 * accounting; the kernels actually recompute the scores, so they execute more). The first call of
 * each shape is timed separately: it includes the pipeline compiles.
 *
 * Run directly: RAE_BENCH_ATTENTION=1 npx vite-node bench/attention.ts [--sweep [--small]]
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { init, runtime } from '../src/gpu/runtime.js';
import { attentionBackward, attentionForward, attentionTiles, setAttentionTiles, setAttentionUnroll, type AttentionTiles } from '../src/kernels/attention.js';
import { randn } from '../src/tensor/creation.js';
import { empty, type Tensor } from '../src/tensor/tensor.js';

export interface AttentionBenchCase {
  b: number;
  h: number;
  n: number;
  d: number;
}

export interface AttentionBenchResult extends AttentionBenchCase {
  tiles: string;
  /** First forward + backward, including pipeline compilation (ms). */
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
];

async function timeIt(fn: () => void, minMs = 300, minReps = 3): Promise<number> {
  const rt = runtime();
  fn();
  await rt.sync(); // warm
  let reps = 0;
  const t0 = performance.now();
  while (reps < minReps || performance.now() - t0 < minMs) {
    fn();
    await rt.sync();
    reps++;
  }
  return (performance.now() - t0) / reps;
}

export async function benchAttentionCase(c: AttentionBenchCase, opts: { minMs?: number } = {}): Promise<AttentionBenchResult> {
  await init();
  const rt = runtime();
  const { b, h, n, d } = c;
  const shape = [b, h, n, d];
  const [q, k, v, g] = [1, 2, 3, 4].map((seed) => randn(shape, { seed }));
  const o = empty(shape);
  const lse = empty([b, h, n]);
  const grads = [empty(shape), empty(shape), empty(shape)];
  const scale = 1 / Math.sqrt(d);
  const fwd = () => attentionForward(q, k, v, o, lse, scale);
  const fwdBwd = () => {
    fwd();
    attentionBackward(q, k, v, o, lse, g, grads[0], grads[1], grads[2], scale);
  };
  await rt.sync();
  const t0 = performance.now();
  fwdBwd();
  await rt.sync();
  const firstMs = performance.now() - t0;
  const forwardMs = await timeIt(fwd, opts.minMs);
  const forwardBackwardMs = await timeIt(fwdBwd, opts.minMs);
  const t = attentionTiles(d);
  for (const x of [q, k, v, g, o, lse, ...grads] as Tensor[]) x.dispose();
  const flop = b * h * n * n * d;
  return {
    ...c,
    tiles: `rows ${t.rows} cols ${t.cols}`,
    firstMs,
    forwardMs,
    forwardBackwardMs,
    forwardGflops: (4 * flop) / forwardMs / 1e6,
    forwardBackwardGflops: (14 * flop) / forwardBackwardMs / 1e6,
  };
}

export async function benchAttention(cases: AttentionBenchCase[] = DEFAULT_CASES): Promise<AttentionBenchResult[]> {
  const out: AttentionBenchResult[] = [];
  for (const c of cases) out.push(await benchAttentionCase(c));
  return out;
}

function format(r: AttentionBenchResult, label = ''): string {
  return (
    `attention B=${r.b} H=${r.h} N=${r.n} D=${r.d} ${label || r.tiles}: first call ${r.firstMs.toFixed(0)} ms; ` +
    `fwd ${r.forwardMs.toFixed(2)} ms (${r.forwardGflops.toFixed(2)} GFLOP/s); ` +
    `fwd+bwd ${r.forwardBackwardMs.toFixed(2)} ms (${r.forwardBackwardGflops.toFixed(2)} GFLOP/s)`
  );
}

async function main(): Promise<void> {
  const rt = await init();
  console.log(`adapter: ${rt.adapterSummary.description || rt.adapterSummary.device} (${rt.adapterSummary.backend})`);
  const sweep = process.argv.includes('--sweep');
  if (!sweep) {
    for (const r of await benchAttention()) console.log(format(r));
    return;
  }
  const configs: [string, AttentionTiles | null, boolean][] = [];
  for (const unroll of [true, false]) for (const [rows, cols] of [[64, 16], [64, 32], [32, 32], [128, 16]]) configs.push([`rows ${rows} cols ${cols} ${unroll ? 'unrolled' : 'looped'}`, { rows, cols }, unroll]);
  const cases = process.argv.includes('--small') ? [{ b: 1, h: 4, n: 256, d: 64 }] : DEFAULT_CASES;
  for (const c of cases) {
    for (const [label, tiles, unroll] of configs) {
      if (tiles && tiles.cols * (2 * Math.ceil(c.d / 4) * 16 + 8) > rt.limits.maxComputeWorkgroupStorageSize) continue;
      setAttentionTiles(tiles);
      setAttentionUnroll(unroll);
      console.log(format(await benchAttentionCase(c, { minMs: 200 }), label));
    }
  }
  setAttentionTiles(null);
  setAttentionUnroll(true);
}

// Entry point when run as a script (vite-node drops the script from argv, hence the variable).
const script = process.argv[1] ? pathToFileURL(resolve(process.argv[1])).href : '';
if (import.meta.url === script || process.env.RAE_BENCH_ATTENTION === '1') await main();
