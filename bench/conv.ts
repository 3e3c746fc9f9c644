/**
 * Implicit-GEMM conv2d throughput (GFLOP/s = 2·N·Co·OH·OW·(C/groups)·KH·KW / wall time, the same
 * count for each of forward, input gradient and weight gradient) on InceptionV3 layer shapes,
 * batch 1, with the adapter's tuning-table tile. The weight-gradient time includes summing its
 * split-K partials. Results: bench/results/*-conv.md.
 */
import {
  conv2dInputGradInto,
  conv2dInto,
  conv2dWeightGradInto,
  conv2dWeightGradSplits,
  convOutSize,
  type ConvGeometry,
} from '../src/kernels/conv.js';
import { adapterTuning } from '../src/kernels/tuning.js';
import { init } from '../src/gpu/runtime.js';
import { sum } from '../src/autograd/ops/reduce.js';
import { randn } from '../src/tensor/creation.js';
import { scope } from '../src/tensor/scope.js';
import { empty } from '../src/tensor/tensor.js';
import { adapterLine, gflops, isMain, markdownTable, timeGpu } from './common.js';

interface ConvCase {
  name: string;
  C: number;
  H: number;
  Co: number;
  k: [number, number];
  stride?: number;
  pad?: [number, number];
}

const CASES: ConvCase[] = [
  { name: 'stem conv2d_2 3×3 32→32 @149', C: 32, H: 149, Co: 32, k: [3, 3] },
  { name: 'mixed0 5×5 48→64 @35 pad 2', C: 48, H: 35, Co: 64, k: [5, 5], pad: [2, 2] },
  { name: 'mixed3 3×3/2 288→384 @35', C: 288, H: 35, Co: 384, k: [3, 3], stride: 2 },
  { name: 'mixed4 1×7 128→128 @17 pad (0, 3)', C: 128, H: 17, Co: 128, k: [1, 7], pad: [0, 3] },
  { name: 'mixed9 3×3 448→384 @8 pad 1', C: 448, H: 8, Co: 384, k: [3, 3], pad: [1, 1] },
  { name: 'mixed9 1×1 1280→320 @8', C: 1280, H: 8, Co: 320, k: [1, 1] },
];

export async function printConvBench(): Promise<string> {
  const rows: (string | number)[][] = [];
  for (const c of CASES) {
    const s = c.stride ?? 1;
    const [ph, pw] = c.pad ?? [0, 0];
    const OH = convOutSize(c.H, c.k[0], s, ph, 1);
    const OW = convOutSize(c.H, c.k[1], s, pw, 1);
    const g: ConvGeometry = {
      N: 1,
      C: c.C,
      H: c.H,
      W: c.H,
      Co: c.Co,
      OH,
      OW,
      KH: c.k[0],
      KW: c.k[1],
      stride: [s, s],
      padding: [ph, pw],
      dilation: [1, 1],
      groups: 1,
    };
    const flops = 2 * c.Co * OH * OW * c.C * c.k[0] * c.k[1];
    const x = randn([1, c.C, c.H, c.H], { seed: 1 });
    const w = randn([c.Co, c.C, c.k[0], c.k[1]], { seed: 2 });
    const dy = randn([1, c.Co, OH, OW], { seed: 3 });
    const y = empty([1, c.Co, OH, OW], 'f32');
    const dx = empty([1, c.C, c.H, c.H], 'f32');
    const splits = conv2dWeightGradSplits(g);
    const partial = empty([splits, c.Co, c.C, c.k[0], c.k[1]], 'f32');
    const opts = { minSeconds: 0.5, warmup: 1 };
    const fwd = await timeGpu(() => conv2dInto(x, w, undefined, y, g), opts);
    const dIn = await timeGpu(() => conv2dInputGradInto(dy, w, dx, g), opts);
    const dW = await timeGpu(
      () =>
        scope(() => {
          conv2dWeightGradInto(x, dy, partial, g, splits);
          if (splits > 1) sum(partial, 0);
        }),
      opts,
    );
    rows.push([
      c.name,
      (flops / 1e6).toFixed(1),
      gflops(flops, fwd).toFixed(2),
      gflops(flops, dIn).toFixed(2),
      `${gflops(flops, dW).toFixed(2)} (${splits} splits)`,
    ]);
    for (const t of [x, w, dy, y, dx, partial]) t.dispose();
  }
  const tile = adapterTuning().conv;
  return [
    `Adapter: ${adapterLine()}`,
    `Tile: ${tile.wgX}×${tile.wgY} threads, ${tile.rm}×${tile.rn} outputs per thread; batch 1; wall-clock GFLOP/s (best effort on a shared machine).`,
    '',
    markdownTable(['layer', 'MFLOP', 'forward', 'input grad', 'weight grad'], rows),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  await init();
  console.log(await printConvBench());
}
