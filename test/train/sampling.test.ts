/**
 * Samplers on a known linear velocity field v(x, t) = a·x + b·t (per element), against float64:
 * - Heun's discrete recursion computed on the host in float64 (the method itself, to f32 accuracy);
 * - the exact ODE solution x(t) = C·e^{a·t} − (b/a)·t − b/a², where Heun's error must be second
 *   order (halving the step divides it by ≈4) and far below Euler's.
 * And class-balanced labels: every class ⌊n/K⌋ or ⌈n/K⌉ times.
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { eulerSample, heunSample, samplerGrid, type VelocityFn } from '../../src/diffusion/flow.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { balancedLabels } from '../../src/train/sample.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const [a, b] = [-1.3, 0.7];
const velocity: VelocityFn = (x, t) => ops.add(ops.mul(x, a), ops.mul(ops.reshape(t, [t.shape[0], 1]), b));
const f = (x: number, t: number) => a * x + b * t;
const exact = (x0: number, t0: number, t: number) => {
  const C = (x0 + (b * t0) / a + b / (a * a)) * Math.exp(-a * t0);
  return C * Math.exp(a * t) - (b / a) * t - b / (a * a);
};

async function run(sampler: typeof heunSample, x0: Float64Array, grid: number[]): Promise<Float32Array> {
  const x = tensor(Float32Array.from(x0), [x0.length, 1]);
  const out = await sampler(velocity, x, grid);
  const host = (await toArray(out)) as Float32Array;
  x.dispose();
  out.dispose();
  return host;
}

describe('Heun sampler', () => {
  const x0 = randomData(8, 3, -2, 2);

  it('equals the float64 Heun recursion on the shifted grid', async () => {
    const grid = samplerGrid(9, 2.5);
    const got = await run(heunSample, x0, grid);
    for (let i = 0; i < x0.length; i++) {
      let x = x0[i];
      for (let s = 0; s < grid.length - 1; s++) {
        const h = grid[s + 1] - grid[s];
        const k1 = f(x, grid[s]);
        const k2 = f(x + h * k1, grid[s + 1]);
        x += (h * (k1 + k2)) / 2;
      }
      expect(Math.abs(got[i] - x)).toBeLessThan(1e-5 * Math.max(1, Math.abs(x)));
    }
  });

  it('converges at second order to the exact solution, far ahead of Euler', async () => {
    const err = async (sampler: typeof heunSample, n: number) => {
      const grid = Array.from({ length: n + 1 }, (_, i) => 1 - i / n);
      const got = await run(sampler, x0, grid);
      return Math.max(...Array.from(got, (v, i) => Math.abs(v - exact(x0[i], 1, 0))));
    };
    const [h8, h16] = [await err(heunSample, 8), await err(heunSample, 16)];
    const e8 = await err(eulerSample, 8);
    expect(h8 / h16).toBeGreaterThan(3.5);
    expect(h8 / h16).toBeLessThan(4.5);
    expect(h8).toBeLessThan(e8 / 5);
  });
});

describe('balancedLabels', () => {
  it('gives every class ⌊n/K⌋ or ⌈n/K⌉ samples, seeded', () => {
    const l = balancedLabels(23, 5, 7);
    const counts = Array.from({ length: 5 }, (_, k) => l.filter((v) => v === k).length);
    expect(counts.every((c) => c === 4 || c === 5)).toBe(true);
    expect(counts.reduce((s, c) => s + c, 0)).toBe(23);
    expect(Array.from(balancedLabels(23, 5, 7))).toEqual(Array.from(l));
  });
});
