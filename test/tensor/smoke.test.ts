import { it, expect } from 'vitest';
import { init } from '../../src/gpu/runtime.js';
import { randn, tensor, arange, full, toArray } from '../../src/tensor/creation.js';
it('smoke', async () => {
  const rt = await init();
  const a = randn([4096], { seed: 7 });
  const x = await toArray(a);
  const y = await toArray(randn([4096], { seed: 7 }));
  let m = 0, v = 0; for (const q of x) { m += q; v += q*q; }
  console.log(rt.adapterSummary, x.slice(0,4), m/4096, v/4096);
  expect(Array.from(x)).toEqual(Array.from(y));
  console.log(await toArray(arange(5)), await toArray(full([3], 2.5)), await toArray(tensor([[1,2],[3,4]])));
});
