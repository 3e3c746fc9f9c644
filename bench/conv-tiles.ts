/**
 * Forward tile sweep of the implicit-GEMM conv kernel on InceptionV3 K×K shapes, interleaved
 * (each round times every tile once per shape), CPU ms of the process per call.
 * Usage: npx vite-node bench/conv-tiles.ts [batch, default 4] [rounds, default 2] [tiles wgXxwgY:rmxrn,…]
 */
import { conv2dInto, convOutSize, type ConvConfig, type ConvGeometry } from '../src/kernels/conv.js';
import { init, shutdown } from '../src/gpu/runtime.js';
import { randn } from '../src/tensor/creation.js';
import { empty } from '../src/tensor/tensor.js';
import { adapterLine, timeGpu } from './common.js';

const batch = Number(process.argv[2] ?? 4);
const rounds = Number(process.argv[3] ?? 2);
const tiles: ConvConfig[] = (process.argv[4] ?? '8x4:8x8,8x4:12x16,8x4:8x16,8x4:16x8').split(',').map((s) => {
  const [wg, r] = s.split(':');
  const [wgX, wgY] = wg.split('x').map(Number);
  const [rm, rn] = r.split('x').map(Number);
  return { wgX, wgY, rm, rn };
});
const allShapes = [
  { name: '3×3 80→192 @73', C: 80, H: 73, W: 73, Co: 192, k: [3, 3], pad: [0, 0], s: 1 },
  { name: '3×3 96→96 @35 p1', C: 96, H: 35, W: 35, Co: 96, k: [3, 3], pad: [1, 1], s: 1 },
  { name: '7×1 192→192 @17', C: 192, H: 17, W: 17, Co: 192, k: [7, 1], pad: [3, 0], s: 1 },
  { name: '5×5 48→64 @35 p2', C: 48, H: 35, W: 35, Co: 64, k: [5, 5], pad: [2, 2], s: 1 },
  { name: '3×3 448→384 @8 p1', C: 448, H: 8, W: 8, Co: 384, k: [3, 3], pad: [1, 1], s: 1 },
];
// argv[5]: a comma-separated list of shape-name prefixes (default: all).
const pick = process.argv[5]?.split(',');
const shapes = allShapes.filter((c) => !pick || pick.some((p) => c.name.startsWith(p)));
await init();
console.log(adapterLine());
const cpu = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const c of shapes) {
    const OH = convOutSize(c.H, c.k[0], c.s, c.pad[0], 1);
    const OW = convOutSize(c.W, c.k[1], c.s, c.pad[1], 1);
    const g: ConvGeometry = {
      N: batch,
      C: c.C,
      H: c.H,
      W: c.W,
      Co: c.Co,
      OH,
      OW,
      KH: c.k[0],
      KW: c.k[1],
      stride: [c.s, c.s],
      padding: c.pad as [number, number],
      dilation: [1, 1],
      groups: 1,
    };
    const x = randn([batch, c.C, c.H, c.W], { seed: 1 });
    const w = randn([c.Co, c.C, c.k[0], c.k[1]], { seed: 2 });
    const b = randn([c.Co], { seed: 3 });
    const y = empty([batch, c.Co, OH, OW], 'f32');
    for (const t of tiles) {
      const c0 = performance.now();
      const tm = await timeGpu(() => conv2dInto(x, w, b, y, g, { config: t, activation: 'relu' }), { minSeconds: 0.1, warmup: 1 });
      const key = `${c.name} | ${t.wgX}x${t.wgY}:${t.rm}x${t.rn}`;
      cpu.set(key, [...(cpu.get(key) ?? []), tm.cpuMs]);
      if (r === 0) console.log(`${key}: first ${(performance.now() - c0).toFixed(0)} ms incl. compile`);
    }
    for (const t of [x, w, b, y]) t.dispose();
  }
}
for (const c of shapes) {
  console.log(
    `${c.name}: ${tiles
      .map(
        (t) =>
          `${t.wgX}x${t.wgY}:${t.rm}x${t.rn} ${cpu
            .get(`${c.name} | ${t.wgX}x${t.wgY}:${t.rm}x${t.rn}`)!
            .map((v) => v.toFixed(0))
            .join('/')}`,
      )
      .join('  ')}`,
  );
}
shutdown();
