/**
 * Tests of the tests: gradCheck (src/autograd/gradcheck.ts) and the golden gradient comparison
 * (test/helpers/golden.ts) must fail on a deliberately wrong gradient and on perturbed data, and
 * pass on the correct ones — otherwise a passing suite says nothing.
 */
import { describe, expect, it } from 'vitest';
import * as C from '../../src/cpu/index.js';
import { gradCheck } from '../../src/autograd/gradcheck.js';
import { map } from '../../src/autograd/ops/map.js';
import { record } from '../../src/autograd/tape.js';
import type { LoadedTensor } from '../../src/io/safetensors.js';
import { tensor } from '../../src/tensor/creation.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { expectGradientsMatch, gradientErrors, type Golden } from '../helpers/golden.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

/** x² with a chosen backward expression over g (in0) and x (in1). */
const square = (grad: string) => (x: Tensor) =>
  record(
    'square_under_test',
    map('square_under_test', [x], 'in0 * in0'),
    [x],
    (g, [xs]) => [map('square_under_test_grad', [g, xs], grad)],
    [x],
  );
const cpuSquare = ([x]: C.NDArray[]) => C.mul(x, x);
const input = () => [{ data: randomData(35, 7, -2, 2), shape: [5, 7] }];

describe('gradCheck fails on wrong gradients and wrong data', () => {
  it('passes the correct backward (the control)', async () => {
    const r = await gradCheck(([x]) => square('in0 * 2.0 * in1')(x), cpuSquare, input());
    expect(r.ok, r.message).toBe(true);
  });

  it('fails a backward that forgets the factor 2, naming the gradient', async () => {
    const r = await gradCheck(([x]) => square('in0 * in1')(x), cpuSquare, input());
    expect(r.ok).toBe(false);
    expect(r.output.ok).toBe(true);
    expect(r.grads[0]!.ok).toBe(false);
    expect(r.message).toMatch(/grad\[0\].*worst at \[\d, \d\]/);
  });

  it('fails a backward off by 1% (10× the rtol) and one with the wrong sign on half the elements', async () => {
    let r = await gradCheck(([x]) => square('in0 * 2.02 * in1')(x), cpuSquare, input());
    expect(r.ok).toBe(false);
    r = await gradCheck(([x]) => square('in0 * 2.0 * abs(in1)')(x), cpuSquare, input());
    expect(r.ok).toBe(false);
  });

  it('fails when the float64 reference is perturbed (forward by 1e-2, or scaled by 1.01)', async () => {
    let r = await gradCheck(
      ([x]) => square('in0 * 2.0 * in1')(x),
      ([x]) => C.addScalar(C.mul(x, x), 1e-2),
      input(),
    );
    expect(r.output.ok).toBe(false);
    expect(r.ok).toBe(false);
    r = await gradCheck(
      ([x]) => square('in0 * 2.0 * in1')(x),
      ([x]) => C.mulScalar(C.mul(x, x), 1.01),
      input(),
    );
    expect(r.output.ok).toBe(false);
    expect(r.grads[0]!.ok).toBe(false);
  });

  it('fails an input that received no gradient, and a graph that records none', async () => {
    const two = [...input(), { data: randomData(35, 8), shape: [5, 7] }];
    const r = await gradCheck(
      ([x]) => square('in0 * 2.0 * in1')(x),
      ([x, y]) => C.add(C.mul(x, x), C.mulScalar(y, 0)),
      two,
    );
    expect(r.ok).toBe(false);
    expect(r.grads[0]!.ok).toBe(true);
    expect(r.message).toMatch(/input 1: no gradient was computed/);
    await expect(gradCheck(([x]) => map('unrecorded_square', [x], 'in0 * in0'), cpuSquare, input())).rejects.toThrow(
      /does not require grad/,
    );
  });
});

/** A fake fixture with one attention layer's key weight and (mathematically zero) key bias. */
function fixture(grads: Record<string, number[]>): Golden {
  const t = (data: number[]): LoadedTensor =>
    ({ data: Float32Array.from(data), shape: [data.length], dtype: 'f32' }) as unknown as LoadedTensor;
  return {
    meta: { model: 'fake', config: {} },
    params: new Map(),
    inputs: new Map(),
    outputs: new Map(),
    grads: new Map(Object.entries(grads).map(([k, v]) => [k, t(v)])),
  };
}

function withGrads(grads: Record<string, number[]>): Map<string, Tensor> {
  return new Map(
    Object.entries(grads).map(([k, v]) => {
      const p = tensor(Float32Array.from(v), [v.length]);
      p.grad = tensor(Float32Array.from(v), [v.length]);
      return [k, p] as const;
    }),
  );
}

describe('golden gradient comparison fails on wrong gradients', () => {
  const W = 'l.attention.attention.key.weight';
  const B = 'l.attention.attention.key.bias';
  const Q = 'l.attention.attention.query.bias';
  const ref = { [W]: [0.5, -0.25, 0.125, 0.3], [B]: [4e-8, -3e-8], [Q]: [0.01, -0.02] };

  it('passes the reference itself, with bias noise of the size PyTorch leaves', async () => {
    const got = withGrads({ ...ref, [B]: [1e-7, -2e-7] });
    const errors = await expectGradientsMatch(fixture(ref), got, [W, B, Q]);
    expect(errors.size).toBe(3);
  });

  it('fails a key bias with a small real gradient (1e-4 = 2e-4 of the weight scale), which the old fallback passed', async () => {
    const errors = await gradientErrors(fixture(ref), withGrads({ ...ref, [B]: [1e-4, 0] }));
    expect(errors.get(B)).toBeGreaterThan(1e-3);
    await expect(expectGradientsMatch(fixture(ref), withGrads({ ...ref, [B]: [1e-4, 0] }), [W, B, Q])).rejects.toThrow(/key\.bias/);
  });

  it('compares a tiny gradient that is not a key bias by relative error (a query bias off by 1%)', async () => {
    const got = withGrads({ ...ref, [Q]: [0.0101, -0.02] });
    expect((await gradientErrors(fixture(ref), got)).get(Q)).toBeCloseTo(0.005, 6);
    await expect(expectGradientsMatch(fixture(ref), got, [W, B, Q])).rejects.toThrow(/query\.bias/);
  });

  it('fails when a parameter has no fixture gradient, or the fixture one the model lacks', async () => {
    await expect(expectGradientsMatch(fixture(ref), withGrads(ref), [W, B, Q, 'l.extra.weight'])).rejects.toThrow(
      /not in the fixture \[l\.extra\.weight\]/,
    );
    await expect(gradientErrors(fixture({ ...ref, 'l.missing': [1] }), withGrads(ref))).rejects.toThrow(/l\.missing/);
  });

  it('refuses a listed zero gradient whose reference is not zero', async () => {
    const bad = { ...ref, [B]: [0.1, 0] };
    await expect(gradientErrors(fixture(bad), withGrads(bad))).rejects.toThrow(/listed as mathematically zero/);
  });
});
