/**
 * Row kernels (layerNorm, rmsNorm, softmax, their backward, a row sum) in GB/s against an elementwise copy
 * over the same bytes in the same process, one row per workgroup vs one row per invocation,
 * interleaved (best of `repeats`). Scratch benchmark for the row-kernel variants and the autotuner:
 *   npx vite-node bench/kernels-tune.ts      (env REPEATS=3 SECONDS=0.4; vite-node passes no argv)
 */
import { init, runtime } from '../src/gpu/runtime.js';
import { mapInto } from '../src/kernels/elementwise.js';
import { layerNormBackwardInto, layerNormInto, rmsNormBackwardInto, rmsNormInto } from '../src/kernels/norm.js';
import { reduceInto } from '../src/kernels/reduce.js';
import { setRowStrategy, type RowStrategy } from '../src/kernels/row-reduce.js';
import { softmaxBackwardInto, softmaxInto } from '../src/kernels/softmax.js';
import { randn } from '../src/tensor/creation.js';
import { empty } from '../src/tensor/tensor.js';
import { adapterLine, markdownTable, timeGpu } from './common.js';

export const ROW_SHAPES: [number, number][] = [
  [4096, 384],
  [4096, 256],
  [1024, 96],
  [256, 1152],
];

interface Case {
  name: string;
  /** f32 elements read and written per call (the [rows, D] tensors only). */
  tensors: number;
  run: () => void;
}

export async function benchRows(shapes = ROW_SHAPES, repeats = 3, minSeconds = 0.4, strategies: RowStrategy[] = ['workgroup', 'thread']) {
  const lines: (string | number)[][] = [];
  for (const [rows, D] of shapes) {
    const x = randn([rows, D], { seed: 1 });
    const dy = randn([rows, D], { seed: 2 });
    const w = randn([D], { seed: 3 });
    const b = randn([D], { seed: 4 });
    const y = empty([rows, D]);
    const dx = empty([rows, D]);
    const mean = empty([rows]);
    const rstd = empty([rows]);
    const cases: Case[] = [
      { name: 'copy', tensors: 2, run: () => mapInto({ name: 'copy', expr: 'in0', compute: 'f32' }, [x], y) },
      { name: 'layerNorm', tensors: 2, run: () => layerNormInto(x, w, b, 1e-5, y, mean, rstd) },
      { name: 'layerNorm dx', tensors: 3, run: () => layerNormBackwardInto(x, w, mean, rstd, dy, dx) },
      { name: 'rmsNorm', tensors: 2, run: () => rmsNormInto(x, w, 1e-5, y, rstd) },
      { name: 'rmsNorm dx', tensors: 3, run: () => rmsNormBackwardInto(x, w, rstd, dy, dx) },
      { name: 'softmax', tensors: 2, run: () => softmaxInto(x, y) },
      { name: 'softmax dx', tensors: 3, run: () => softmaxBackwardInto(x, dy, dx) },
      {
        name: 'sum (last dim)',
        tensors: 1,
        run: () => reduceInto(x, { outer: rows, R: D, inner: 1, sOuter: D, sR: 1, sInner: 1 }, mean, 'sum'),
      },
    ];
    const best = new Map<string, number>();
    const bestCpu = new Map<string, number>();
    for (let rep = 0; rep < repeats; rep++) {
      for (const c of cases) {
        for (const s of c.name === 'copy' ? (['auto'] as RowStrategy[]) : strategies) {
          setRowStrategy(s);
          const t = await timeGpu(c.run, { minSeconds, warmup: rep === 0 ? 2 : 0 });
          const k = `${c.name}|${s}`;
          best.set(k, Math.min(best.get(k) ?? Number.POSITIVE_INFINITY, t.ms));
          bestCpu.set(k, Math.min(bestCpu.get(k) ?? Number.POSITIVE_INFINITY, t.cpuMs));
        }
      }
    }
    setRowStrategy('auto');
    const bytes = rows * D * 4;
    const copyGbs = (2 * bytes) / (best.get('copy|auto')! * 1e6);
    // GB per CPU-second: on lavapipe the CPU time is the work itself, far less disturbed by other processes than wall time.
    const copyCpu = (2 * bytes) / (bestCpu.get('copy|auto')! * 1e6);
    for (const c of cases) {
      if (c.name === 'copy') continue;
      const cells = strategies.map((s) => {
        const gbs = (c.tensors * bytes) / (best.get(`${c.name}|${s}`)! * 1e6);
        const cpu = (c.tensors * bytes) / (bestCpu.get(`${c.name}|${s}`)! * 1e6);
        return `${gbs.toFixed(2)} GB/s (${((100 * gbs) / copyGbs).toFixed(0)} %); ${cpu.toFixed(2)} GB/cpu-s (${((100 * cpu) / copyCpu).toFixed(0)} %)`;
      });
      lines.push([`[${rows}, ${D}]`, c.name, `${copyGbs.toFixed(2)} GB/s; ${copyCpu.toFixed(2)} GB/cpu-s`, ...cells]);
    }
    for (const t of [x, dy, w, b, y, dx, mean, rstd]) t.dispose();
  }
  return markdownTable(['shape', 'kernel', 'copy', ...strategies.map((s) => `${s} (fraction of copy)`)], lines);
}

{
  const arg = (name: string, d: number) => Number(process.env[name] ?? d);
  await init();
  console.log(`Adapter: ${adapterLine()}`);
  console.log(
    `Load average: ${(await import('node:os'))
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
  console.log(await benchRows(ROW_SHAPES, arg('REPEATS', 3), arg('SECONDS', 0.4)));
  runtime().destroy();
}
