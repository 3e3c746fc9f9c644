/**
 * Inception (nsfwjs weights, engine) images/s at a few batch sizes: the figure that decides how many
 * images an rFID/gFID can afford. Random u8 images at 32×32 (resized to 299×299 on the device), one
 * untimed warm-up batch per size (pipeline compiles), then `reps` timed batches; wall and CPU time.
 * Usage: npx vite-node bench/inception-throughput.ts [batch sizes, default 8,16,32] [reps, default 2]
 */
import { EngineInception } from '../src/eval/inception.js';
import { loadNsfwjsInception } from '../src/eval/inception-weights.js';
import { init, shutdown } from '../src/gpu/runtime.js';
import { adapterLine } from './common.js';

const sizes = (process.argv[2] ?? '8,16,32').split(',').map(Number);
const reps = Number(process.argv[3] ?? 2);
await init();
console.log(adapterLine());
const t0 = performance.now();
const net = new EngineInception(loadNsfwjsInception());
console.log(`weights + network build: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const image = (seed: number) => {
  const data = new Uint8Array(32 * 32 * 3);
  let s = seed * 2654435761;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, height: 32, width: 32 };
};
for (const b of sizes) {
  const imgs = Array.from({ length: b }, (_, i) => image(i + 1));
  const w0 = performance.now();
  await net.features(imgs, b);
  const warm = (performance.now() - w0) / 1000;
  const c0 = process.cpuUsage();
  const t = performance.now();
  for (let r = 0; r < reps; r++) await net.features(imgs, b);
  const sec = (performance.now() - t) / 1000;
  const cpu = process.cpuUsage(c0);
  const n = b * reps;
  console.log(
    `batch ${b}: first batch ${warm.toFixed(1)} s; ${n} images in ${sec.toFixed(1)} s wall → ${(n / sec).toFixed(2)} img/s (CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s)`,
  );
}
net.dispose();
shutdown();
