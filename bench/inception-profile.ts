/**
 * Per-kernel GPU time of one InceptionV3 forward (nsfwjs weights) at a batch size, from the
 * timestamp profiler: which kernel families (implicit-GEMM conv, matmul for 1×1 convs, pooling,
 * concatenation copies, resize) the time goes to. Needs an adapter with timestamp-query.
 * Usage: RAE_PROFILE=1 npx vite-node bench/inception-profile.ts [batch, default 8]
 */
import { EngineInception } from '../src/eval/inception.js';
import { loadNsfwjsInception } from '../src/eval/inception-weights.js';
import { init, runtime, shutdown } from '../src/gpu/runtime.js';
import { adapterLine } from './common.js';

const batch = Number(process.argv[2] ?? 8);
await init({ profile: true });
console.log(adapterLine());
const rt = runtime();
if (!rt.profiler) throw new Error('inception-profile: this adapter has no timestamp-query');
const net = new EngineInception(loadNsfwjsInception());
const images = Array.from({ length: batch }, (_, i) => ({
  data: Uint8Array.from({ length: 32 * 32 * 3 }, (_, k) => (k * 7 + i * 13) % 256),
  height: 32,
  width: 32,
}));
await net.features(images, batch); // compiles
rt.profiler.reset();
const c0 = process.cpuUsage();
const t0 = performance.now();
await net.features(images, batch);
const wall = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(c0);
const rep = await rt.profiler.report();
const total = rep.reduce((s, r) => s + r.totalMs, 0);
const family = new Map<string, number>();
for (const r of rep) family.set(r.label.split('|')[0], (family.get(r.label.split('|')[0]) ?? 0) + r.totalMs);
console.log(
  `batch ${batch}: ${wall.toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} CPU-s; GPU time in kernels ${(total / 1000).toFixed(1)} s`,
);
for (const [f, ms] of [...family].sort((a, b) => b[1] - a[1]))
  console.log(`  ${(ms / 1000).toFixed(2).padStart(7)} s ${((100 * ms) / total).toFixed(1).padStart(5)} %  ${f}`);
console.log('top kernels:');
for (const r of rep.slice(0, 12))
  console.log(`  ${(r.totalMs / 1000).toFixed(2).padStart(7)} s ${String(r.calls).padStart(4)}×  ${r.label}`);
net.dispose();
shutdown();
