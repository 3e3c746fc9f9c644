/**
 * Runtime overheads: cost per dispatched op with command batching (one submit per
 * maxDispatchesPerSubmit ops, one sync at the end) against submitting and waiting after every
 * op, and read-back latency by size. Ops are tiny (256-element adds) so the figures are the
 * overhead, not the arithmetic.
 *
 * Run: npm run bench -- runtime
 */
import { map } from '../src/autograd/ops/map.js';
import { runtime } from '../src/gpu/runtime.js';
import { randn, toArray } from '../src/tensor/creation.js';
import type { Tensor } from '../src/tensor/tensor.js';

export interface RuntimeBench {
  adapter: string;
  /** Host time to record one op (JS + Dawn encoding), before any GPU wait. */
  recordUsPerOp: number;
  batchedUsPerOp: number;
  syncedUsPerOp: number;
  readback: { bytes: number; ms: number }[];
}

function addOnce(a: Tensor, b: Tensor): void {
  map('add', [a, b], 'in0 + in1').dispose();
}

export async function benchRuntime(ops = 2000): Promise<RuntimeBench> {
  const rt = runtime();
  const a = randn([256], { seed: 1 });
  const b = randn([256], { seed: 2 });
  for (let i = 0; i < 50; i++) addOnce(a, b);
  await rt.sync();

  let t = performance.now();
  for (let i = 0; i < ops; i++) addOnce(a, b);
  const recorded = ((performance.now() - t) * 1000) / ops;
  await rt.sync();
  const batched = ((performance.now() - t) * 1000) / ops;

  const synced = Math.max(50, Math.floor(ops / 10));
  t = performance.now();
  for (let i = 0; i < synced; i++) {
    addOnce(a, b);
    await rt.sync();
  }
  const perSync = ((performance.now() - t) * 1000) / synced;

  const readback: RuntimeBench['readback'] = [];
  for (const n of [1, 1024, 1 << 20]) {
    const x = randn([n], { seed: 3 });
    await toArray(x);
    const reps = n > 1e5 ? 10 : 50;
    t = performance.now();
    for (let i = 0; i < reps; i++) await toArray(x);
    readback.push({ bytes: 4 * n, ms: (performance.now() - t) / reps });
    x.dispose();
  }
  a.dispose();
  b.dispose();
  return {
    adapter: rt.adapterSummary.description || rt.adapterSummary.device,
    recordUsPerOp: recorded,
    batchedUsPerOp: batched,
    syncedUsPerOp: perSync,
    readback,
  };
}

export async function printRuntimeBench(): Promise<string> {
  const r = await benchRuntime();
  const lines = [
    `adapter: ${r.adapter}`,
    `host time to record one op (JS + Dawn encoding, overlapped with GPU work): ${r.recordUsPerOp.toFixed(1)} µs/op`,
    `dispatch overhead, batched (${runtime().maxDispatchesPerSubmit} per submit, one sync at the end): ${r.batchedUsPerOp.toFixed(1)} µs/op`,
    `dispatch overhead, submit + wait after every op: ${r.syncedUsPerOp.toFixed(1)} µs/op`,
    ...r.readback.map((x) => `read-back of ${x.bytes} B: ${x.ms.toFixed(3)} ms`),
  ];
  return lines.join('\n');
}
