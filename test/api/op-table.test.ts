/**
 * The pointwise op table (src/core/pointwise.ts) drives the op, the Tensor methods and `F`:
 * every entry is checked against its float64 oracle (src/cpu/pointwise.ts), forward and
 * gradient, and its method / F function must exist exactly as flagged. Tolerances as in
 * test/autograd/elementwise.test.ts (f32 GPU vs float64): gradients atol 1e-4 + rtol 1e-3,
 * forward max abs error 2e-5·max(1, |hi|)².
 */
import { describe, expect, it } from 'vitest';
import { gradCheck } from '../../src/autograd/gradcheck.js';
import { UNARY_FUNCTIONALS, UNARY_METHODS, UNARY_NAMES, UNARY_OPS, type UnaryOp } from '../../src/core/pointwise.js';
import { ndRandUniform } from '../../src/cpu/random.js';
import { map as cpuMap } from '../../src/cpu/elementwise.js';
import { UNARY_ORACLES } from '../../src/cpu/pointwise.js';
import { F, ops, tensor, toArray } from '../../src/index.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

describe('pointwise op table', () => {
  for (const op of UNARY_NAMES) {
    it(`${op}: forward and gradient vs its float64 oracle`, async () => {
      const { f, domain, kinks = [] } = UNARY_ORACLES[op];
      const [lo, hi] = domain;
      const shape = [5, 33];
      const x = ndRandUniform(shape, 1000 + op.length * 17, lo, hi);
      // Finite differences across a kink measure nothing: move such samples off it.
      const data = x.data.map((v) => (kinks.some((k) => Math.abs(v - k) < 1e-3) ? v + 0.5 : v));
      const r = await gradCheck(
        ([t]) => ops.unary(op, t),
        ([a]) => cpuMap(a, f),
        [{ data, shape }],
        { atol: 1e-4, rtol: 1e-3 },
      );
      expect(r.ok, r.message).toBe(true);
      expect(r.output.maxAbsErr).toBeLessThan(2e-5 * Math.max(1, Math.abs(hi)) ** 2);
    });
  }

  it('gives every entry flagged `method` a Tensor method that runs the op, and no other entry', async () => {
    const x = tensor([0.25, 0.5, 1.5], [3]);
    for (const op of UNARY_NAMES) {
      const flagged = (UNARY_OPS[op] as { method?: boolean }).method === true;
      expect(typeof (x as unknown as Record<string, unknown>)[op] === 'function', `${op} method`).toBe(flagged || op === 'gelu');
    }
    for (const op of UNARY_METHODS) {
      const viaMethod = await toArray(x[op]());
      const viaOp = await toArray(ops.unary(op, x));
      expect(Array.from(viaMethod), op).toEqual(Array.from(viaOp));
    }
  });

  it('gives every entry flagged `functional` a function of F that runs the op', async () => {
    const x = tensor([-1.5, 0.25, 2], [3]);
    for (const op of UNARY_FUNCTIONALS) {
      const viaF = await toArray(F[op](x));
      const viaOp = await toArray(ops.unary(op, x));
      expect(Array.from(viaF), op).toEqual(Array.from(viaOp));
    }
    expect(UNARY_FUNCTIONALS.length).toBeGreaterThan(0);
  });

  it('rejects names outside the table, at compile time and at run time', () => {
    const x = tensor([1, 2], [2]);
    // @ts-expect-error 'softplus' is not an entry of the table, so not a UnaryOp
    expect(() => ops.unary('softplus', x)).toThrow(/unknown op "softplus"/);
    const name: string = 'exp';
    // @ts-expect-error a plain string is not a UnaryOp
    ops.unary(name, x).dispose();
    const known: UnaryOp = 'exp';
    expect(UNARY_NAMES).toContain(known);
  });
});
