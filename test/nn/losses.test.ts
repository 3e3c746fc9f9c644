/**
 * F.mseLoss and F.l1Loss: values and gradients with respect to both inputs against float64
 * closed forms (mse: mean (a − b)², ∂/∂a = 2(a − b)/N; l1: mean |a − b|, ∂/∂a = sign(a − b)/N; the
 * gradient with respect to b is the negative). Sizes 1, 37 and 5003 (past one workgroup's
 * reduction). Inputs are f32-exact and |a − b| ≥ 1e-3 so sign(a − b) is unambiguous.
 * Tolerances: loss value 1e-5 relative (an f32 reduction over ≤ 5003 terms); gradients 1e-6
 * relative-by-max (one f32 multiply per element).
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { l1Loss, mseLoss } from '../../src/nn/functional.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { relByMax } from '../helpers/golden.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

function pair(n: number, seed: number): [Float64Array, Float64Array] {
  const a = Float64Array.from(Float32Array.from(randomData(n, seed, -2, 2)));
  const b = Float64Array.from(Float32Array.from(randomData(n, seed + 1, -1, 3)));
  for (let i = 0; i < n; i++) if (Math.abs(a[i] - b[i]) < 1e-3) a[i] = Math.fround(b[i] + 0.5);
  return [a, b];
}

const losses = {
  mse: { fn: mseLoss, value: (d: number) => d * d, grad: (d: number, n: number) => (2 * d) / n },
  l1: { fn: l1Loss, value: (d: number) => Math.abs(d), grad: (d: number, n: number) => Math.sign(d) / n },
};

describe('F.mseLoss / F.l1Loss against float64', () => {
  for (const [name, L] of Object.entries(losses)) {
    for (const shape of [[1], [37], [5003], [3, 4, 5]]) {
      it(`${name}Loss on [${shape}]: value and both gradients`, () =>
        scopeAsync(async () => {
          const n = shape.reduce((x, y) => x * y, 1);
          const [a, b] = pair(n, 3 + n);
          const ta = tensor(Float32Array.from(a), shape, { requiresGrad: true });
          const tb = tensor(Float32Array.from(b), shape, { requiresGrad: true });
          const l = L.fn(ta, tb);
          expect(l.shape).toEqual([]);
          let want = 0;
          for (let i = 0; i < n; i++) want += L.value(a[i] - b[i]);
          want /= n;
          const got = (await toArray(l))[0];
          expect(Math.abs(got - want) / want, `${got} vs ${want}`).toBeLessThan(1e-5);
          // Scale the upstream gradient by 3 to check the chain rule, not just the local slope.
          backward(ops.mul(l, 3));
          const ga = Array.from(a, (v, i) => 3 * L.grad(v - b[i], n));
          expect(relByMax(await toArray(ta.grad!), ga)).toBeLessThan(1e-6);
          expect(
            relByMax(
              await toArray(tb.grad!),
              ga.map((v) => -v),
            ),
          ).toBeLessThan(1e-6);
        }));
    }
  }
});
