import { init, runtime } from '../src/gpu/runtime.js';
import * as ops from '../src/autograd/ops/index.js';
import { compileStep } from '../src/tensor/compile.js';
import { randn } from '../src/tensor/creation.js';
import type { Tensor } from '../src/tensor/tensor.js';
await init();
const rt = runtime();
const x = randn([256], { seed: 1 });
const body = (a: Tensor) => { let h = a; for (let i = 0; i < 300; i++) h = ops.add(ops.mul(h, 0.999), 0.001); return h; };
const c = compileStep(body);
for (let i = 0; i < 4; i++) c(x).dispose();
await rt.sync();
const dev = rt.device;
const origSubmit = dev.queue.submit.bind(dev.queue);
let submitMs = 0;
(dev.queue as any).submit = (b: any) => { const t = performance.now(); origSubmit(b); submitMs += performance.now() - t; };
for (let r = 0; r < 5; r++) {
  submitMs = 0;
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) c(x).dispose();
  const host = (performance.now() - t0) / 10;
  await rt.sync();
  console.log(`replay host ${(host * 1000 / 300).toFixed(2)} µs/dispatch, of which submit ${(submitMs / 10 * 1000 / 300).toFixed(2)}`);
  const t1 = performance.now();
  for (let i = 0; i < 3; i++) body(x).dispose();
  console.log(`eager host ${((performance.now() - t1) / 3 * 1000 / 600).toFixed(2)} µs/dispatch`);
  await rt.sync();
}
process.exit(0);
