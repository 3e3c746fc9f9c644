/**
 * Where InceptionV3's forward spends its time: every distinct Conv2D shape of the nsfwjs network
 * (walked from the layer graph with the shapes it implies at 299×299), timed as the engine's
 * Inception runs it — conv2d with the folded-BN bias, then relu — at a batch size, and weighted
 * by how many layers have that shape. CPU time of the process per call is the figure that the
 * other processes on a shared machine disturb least (on lavapipe it is the work itself).
 * Usage: npx vite-node bench/inception-layers.ts [batch, default 8] [minSeconds, default 0.3]
 */
import * as ops from '../src/autograd/ops/index.js';
import { noGrad } from '../src/autograd/tape.js';
import { loadNsfwjsInception } from '../src/eval/inception-weights.js';
import { init, shutdown } from '../src/gpu/runtime.js';
import { convOutSize } from '../src/kernels/conv.js';
import { randn } from '../src/tensor/creation.js';
import { scope } from '../src/tensor/scope.js';
import { adapterLine, markdownTable, timeGpu } from './common.js';

const batch = Number(process.argv[2] ?? 8);
const minSeconds = Number(process.argv[3] ?? 0.3);
await init();
console.log(adapterLine());
const net = loadNsfwjsInception();

type Shape = [number, number, number]; // C, H, W
const shapes = new Map<string, Shape>();
interface Case {
  key: string;
  C: number;
  H: number;
  W: number;
  Co: number;
  k: [number, number];
  stride: [number, number];
  pad: [number, number];
  count: number;
}
const cases = new Map<string, Case>();
const pair = (v: unknown) => v as [number, number];
const same = (cfg: Record<string, unknown>, k: [number, number]): [number, number] =>
  cfg.padding === 'same' ? [(k[0] - 1) / 2, (k[1] - 1) / 2] : [0, 0];
for (const l of net.layers) {
  const ins = l.inbound.map((n) => shapes.get(n)!);
  let out: Shape;
  switch (l.className) {
    case 'InputLayer':
      out = [3, 299, 299];
      break;
    case 'Conv2D': {
      const [C, H, W] = ins[0];
      const kshape = net.weights.get(`${l.name}/kernel`)!.shape;
      const k: [number, number] = [kshape[0], kshape[1]];
      const stride = pair(l.config.strides);
      const pad = same(l.config, k);
      const Co = kshape[3];
      const key = `${k[0]}×${k[1]}${stride[0] > 1 ? `/${stride[0]}` : ''} ${C}→${Co} @${H}×${W}${pad[0] || pad[1] ? ` pad ${pad.join(',')}` : ''}`;
      const c = cases.get(key) ?? { key, C, H, W, Co, k, stride, pad, count: 0 };
      c.count++;
      cases.set(key, c);
      out = [Co, convOutSize(H, k[0], stride[0], pad[0], 1), convOutSize(W, k[1], stride[1], pad[1], 1)];
      break;
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const [C, H, W] = ins[0];
      const k = pair(l.config.pool_size);
      const stride = pair(l.config.strides);
      const pad = same(l.config, k);
      out = [C, convOutSize(H, k[0], stride[0], pad[0], 1), convOutSize(W, k[1], stride[1], pad[1], 1)];
      break;
    }
    case 'Concatenate':
      out = [ins.reduce((s, x) => s + x[0], 0), ins[0][1], ins[0][2]];
      break;
    default:
      out = ins[0];
  }
  shapes.set(l.name, out);
  if (l.name === 'mixed10') break;
}

const rows: { c: Case; mflop: number; cpuMs: number; ms: number }[] = [];
for (const c of cases.values()) {
  const OH = convOutSize(c.H, c.k[0], c.stride[0], c.pad[0], 1);
  const OW = convOutSize(c.W, c.k[1], c.stride[1], c.pad[1], 1);
  const mflop = (2 * batch * c.Co * OH * OW * c.C * c.k[0] * c.k[1]) / 1e6;
  const x = randn([batch, c.C, c.H, c.W], { seed: 1 }).keep();
  const w = randn([c.Co, c.C, ...c.k], { seed: 2 }).keep();
  const b = randn([c.Co], { seed: 3 }).keep();
  const t = await timeGpu(() => noGrad(() => scope(() => void ops.conv2dRelu(x, w, b, { stride: c.stride, padding: c.pad }))), {
    minSeconds,
    warmup: 1,
  });
  rows.push({ c, mflop, cpuMs: t.cpuMs, ms: t.ms });
  for (const t of [x, w, b]) t.dispose();
}
const total = rows.reduce((s, r) => s + r.cpuMs * r.c.count, 0);
const totalFlop = rows.reduce((s, r) => s + r.mflop * r.c.count, 0);
console.log(`batch ${batch}: ${rows.length} distinct conv shapes, ${[...cases.values()].reduce((s, c) => s + c.count, 0)} layers`);
console.log(
  markdownTable(
    ['conv', 'layers', 'MFLOP/layer', 'CPU ms/layer', 'wall ms/layer', 'GFLOP/CPU-s', 'share of CPU'],
    rows
      .sort((a, b) => b.cpuMs * b.c.count - a.cpuMs * a.c.count)
      .map((r) => [
        r.c.key,
        r.c.count,
        r.mflop.toFixed(0),
        r.cpuMs.toFixed(0),
        r.ms.toFixed(0),
        (r.mflop / r.cpuMs).toFixed(2),
        `${((100 * r.cpuMs * r.c.count) / total).toFixed(1)} %`,
      ]),
  ),
);
console.log(
  `conv+relu total: ${(total / 1000).toFixed(1)} CPU-s per batch of ${batch} = ${(total / 1000 / batch).toFixed(2)} CPU-s/image; ${(totalFlop / 1000 / batch).toFixed(2)} GFLOP/image; ${(totalFlop / total).toFixed(2)} GFLOP/CPU-s`,
);
shutdown();
