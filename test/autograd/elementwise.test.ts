/**
 * Elementwise ops: forward vs float64 and gradients vs central differences (float64), with
 * broadcasting. Tolerances (f32 GPU vs float64, test/helpers/compare.ts): forward
 * TOL.f32Elementwise, atol 1e-6 + rtol 1e-5 (transcendentals are a few ulp on lavapipe, exact GELU
 * uses an erf with 1.2e-7 relative error; test/kernels/elementwise.test.ts checks each op tighter
 * over wider ranges); gradients TOL.finiteDiff, atol 1e-4 + rtol 1e-3 (the f32 result vs an
 * O(1e-9)-accurate float64 difference).
 */
import type { Tensor } from '../../src/tensor/tensor.js';
import { describe, expect, it } from 'vitest';
import * as C from '../../src/cpu/index.js';
import { gradCheck } from '../../src/autograd/gradcheck.js';
import * as ops from '../../src/autograd/ops/elementwise.js';
import { transpose } from '../../src/autograd/ops/shape.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { sizeOf, useGpu } from '../helpers/setup.js';
import { randomData } from '../helpers/random.js';
import { expectAllclose, TOL } from '../helpers/compare.js';

useGpu();

type Unary = Parameters<typeof ops.unary>[0];
const unaryCases: [Unary, (x: C.NDArray) => C.NDArray, [number, number]][] = [
  ['exp', C.exp, [-2, 2]],
  ['log', C.log, [0.2, 3]],
  ['sqrt', C.sqrt, [0.2, 3]],
  ['rsqrt', C.rsqrt, [0.2, 3]],
  ['abs', C.abs, [-2, 2]],
  ['sin', C.sin, [-3, 3]],
  ['cos', C.cos, [-3, 3]],
  ['tanh', C.tanh, [-3, 3]],
  ['sigmoid', C.sigmoid, [-5, 5]],
  ['relu', C.relu, [-2, 2]],
  ['silu', C.silu, [-4, 4]],
  ['gelu', C.gelu, [-4, 4]],
  ['gelu_tanh', C.geluTanh, [-4, 4]],
  ['neg', C.neg, [-2, 2]],
];

describe('unary ops', () => {
  for (const [op, ref, [lo, hi]] of unaryCases) {
    it(`${op} forward and gradient on [7, 65]`, async () => {
      const shape = [7, 65];
      // Keep relu/abs probes away from the kink at 0, where the derivative is undefined.
      const data = randomData(sizeOf(shape), op.length * 31 + 7, lo, hi).map((v) =>
        ['relu', 'abs'].includes(op) && Math.abs(v) < 1e-3 ? 0.5 : v,
      );
      const r = await gradCheck(
        ([x]) => ops.unary(op, x),
        ([x]) => ref(x),
        [{ data, shape }],
        TOL.finiteDiff,
      );
      expect(r.ok, r.message).toBe(true);
      // The forward at the tolerance the header states (gradCheck's own bound is the gradients').
      const x = tensor(Float32Array.from(data), shape);
      expectAllclose(
        await toArray(ops.unary(op, x)),
        ref(C.nd(Float64Array.from(Float32Array.from(data)), shape)).data,
        TOL.f32Elementwise,
        { label: `${op} forward`, shape },
      );
    });
  }
});

describe('binary ops with broadcasting', () => {
  const cases: [string, (a: Tensor, b: Tensor) => Tensor, (a: C.NDArray, b: C.NDArray) => C.NDArray][] = [
    ['add', ops.add, C.add],
    ['sub', ops.sub, C.sub],
    ['mul', ops.mul, C.mul],
    ['div', ops.div, C.div],
    ['maximum', ops.maximum, C.maximum],
    ['minimum', ops.minimum, C.minimum],
  ];
  const shapes: [number[], number[]][] = [
    [
      [5, 7],
      [5, 7],
    ],
    [
      [3, 1, 7],
      [4, 1],
    ],
    [[65], [2, 1, 65]],
    [[1], [3, 2]],
  ];
  for (const [name, gpu, cpu] of cases) {
    for (const [sa, sb] of shapes) {
      it(`${name} ${JSON.stringify(sa)} ⊕ ${JSON.stringify(sb)}`, async () => {
        const a = randomData(sizeOf(sa), 3, -2, 2);
        // Divisors away from 0; max/min operands never tie.
        const b = randomData(sizeOf(sb), 5, 0.5, 2).map((v, i) => (name === 'div' ? v : (i % 2 ? -v : v) + 0.013));
        const r = await gradCheck(
          ([x, y]) => gpu(x, y),
          ([x, y]) => cpu(x, y),
          [
            { data: a, shape: sa },
            { data: b, shape: sb },
          ],
        );
        expect(r.ok, r.message).toBe(true);
        const [a32, b32] = [Float32Array.from(a), Float32Array.from(b)];
        const want = cpu(C.nd(Float64Array.from(a32), sa), C.nd(Float64Array.from(b32), sb)).data;
        expectAllclose(await toArray(gpu(tensor(a32, sa), tensor(b32, sb))), want, TOL.f32Elementwise, { label: `${name} forward` });
      });
    }
  }

  it('scalar operands and x + x (one tensor used twice)', async () => {
    const a = randomData(12, 9);
    let r = await gradCheck(
      ([x]) => ops.add(ops.mul(x, 3), 0.5),
      ([x]) => C.addScalar(C.mulScalar(x, 3), 0.5),
      [{ data: a, shape: [3, 4] }],
    );
    expect(r.ok, r.message).toBe(true);
    r = await gradCheck(
      ([x]) => ops.add(x, x),
      ([x]) => C.add(x, x),
      [{ data: a, shape: [3, 4] }],
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('pow and clamp', async () => {
    const a = randomData(40, 11, -2, 2).map((v) => (Math.abs(Math.abs(v) - 1) < 1e-3 ? 0.3 : v));
    for (const p of [2, 3, -1, 0.5]) {
      const data = p === 0.5 ? a.map((v) => Math.abs(v) + 0.1) : p === -1 ? a.map((v) => (Math.abs(v) < 0.2 ? 0.7 : v)) : a;
      const r = await gradCheck(
        ([x]) => ops.powScalar(x, p),
        ([x]) => C.powScalar(x, p),
        [{ data, shape: [5, 8] }],
      );
      expect(r.ok, `pow ${p}: ${r.message}`).toBe(true);
    }
    const r = await gradCheck(
      ([x]) => ops.clamp(x, -1, 1),
      ([x]) => C.clamp(x, -1, 1),
      [{ data: a, shape: [5, 8] }],
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('where and comparisons', async () => {
    const a = randomData(21, 1);
    const b = randomData(21, 2);
    const cond = tensor(Float32Array.from(a.map((v) => (v > 0 ? 1 : 0))), [3, 7]);
    const r = await gradCheck(
      ([x, y]) => ops.where(cond, x, y),
      ([x, y]) => C.where({ data: Float64Array.from(a.map((v) => (v > 0 ? 1 : 0))), shape: [3, 7] }, x, y),
      [
        { data: a, shape: [3, 7] },
        { data: b, shape: [3, 7] },
      ],
    );
    expect(r.ok, r.message).toBe(true);
    const x = tensor(Float32Array.from(a), [3, 7]);
    const y = tensor(Float32Array.from(b), [3, 7]);
    for (const op of ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const) {
      const got = await toArray(ops.compare(op, x, y));
      const want = C[op]({ data: a.map(Math.fround), shape: [3, 7] }, { data: b.map(Math.fround), shape: [3, 7] });
      expect(Array.from(got)).toEqual(Array.from(want.data));
    }
  });

  it('non-contiguous operands (transposed view)', async () => {
    const a = randomData(35, 4);
    const r = await gradCheck(
      ([x, y]) => ops.mul(transpose(x, 0, 1), y),
      ([x, y]) => C.mul(C.transpose(x, 0, 1), y),
      [
        { data: a, shape: [5, 7] },
        { data: randomData(35, 6), shape: [7, 5] },
      ],
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('errors name the op and shapes', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    const y = tensor(new Float32Array(8), [2, 4]);
    expect(() => ops.add(x, y)).toThrow(/add: shapes \[2, 3\] and \[2, 4\] cannot be broadcast/);
    x.dispose();
    expect(() => ops.add(x, 1)).toThrow(/disposed/);
  });
});

describe('fused elementwise ops', () => {
  it('modulate, gatedAdd, siluMul with broadcasting match float64 and finite differences', async () => {
    const x = randomData(2 * 5 * 7, 21);
    const s = randomData(2 * 7, 22);
    const c = randomData(2 * 7, 23);
    const X = { data: x, shape: [2, 5, 7] };
    const S = { data: s, shape: [2, 1, 7] };
    const Cc = { data: c, shape: [2, 1, 7] };
    let r = await gradCheck(
      ([a, b, d]) => ops.modulate(a, b, d),
      ([a, b, d]) => C.add(C.mul(a, C.addScalar(d, 1)), b),
      [X, S, Cc],
    );
    expect(r.ok, r.message).toBe(true);
    r = await gradCheck(
      ([a, b, d]) => ops.gatedAdd(a, b, d),
      ([a, b, d]) => C.add(a, C.mul(b, d)),
      [X, S, { data: randomData(70, 24), shape: [2, 5, 7] }],
    );
    expect(r.ok, r.message).toBe(true);
    r = await gradCheck(
      ([a, b]) => ops.siluMul(a, b),
      ([a, b]) => C.mul(C.silu(a), b),
      [X, { data: randomData(70, 25), shape: [2, 5, 7] }],
    );
    expect(r.ok, r.message).toBe(true);
    // Forwards at the stated forward tolerance (gradCheck holds outputs only to the gradients' bound).
    const t = (d: { data: Float64Array; shape: number[] }) => tensor(Float32Array.from(d.data), d.shape);
    const h = (d: { data: Float64Array; shape: number[] }) => C.nd(Float64Array.from(Float32Array.from(d.data)), d.shape);
    const G = { data: randomData(70, 24), shape: [2, 5, 7] };
    const U = { data: randomData(70, 25), shape: [2, 5, 7] };
    expectAllclose(
      await toArray(ops.modulate(t(X), t(S), t(Cc))),
      C.add(C.mul(h(X), C.addScalar(h(Cc), 1)), h(S)).data,
      TOL.f32Elementwise,
      { label: 'modulate' },
    );
    expectAllclose(await toArray(ops.gatedAdd(t(X), t(S), t(G))), C.add(h(X), C.mul(h(S), h(G))).data, TOL.f32Elementwise, {
      label: 'gatedAdd',
    });
    expectAllclose(await toArray(ops.siluMul(t(X), t(U))), C.mul(C.silu(h(X)), h(U)).data, TOL.f32Elementwise, { label: 'siluMul' });
  });
});
