import { describe, expect, it } from 'vitest';
import {
  abs,
  add,
  clamp,
  cos,
  div,
  eq,
  erf,
  erfc,
  exp,
  ge,
  gelu,
  geluTanh,
  gt,
  le,
  log,
  lt,
  maximum,
  minimum,
  mul,
  nd,
  ndToNested,
  ne,
  neg,
  powScalar,
  relu,
  rsqrt,
  sigmoid,
  silu,
  sin,
  sqrt,
  sub,
  tanh,
  where,
} from '../../src/cpu/index.js';

const v = (xs: number[]) => nd(xs, [xs.length]);
const arr = (x: { data: Float64Array }) => Array.from(x.data);

describe('erf / erfc', () => {
  // Values from CPython's math.erf / math.erfc (correctly rounded to ~1 ulp).
  const table: [number, number, number][] = [
    [0.1, 0.1124629160182849, 0.8875370839817152],
    [0.5, 0.5204998778130465, 0.4795001221869535],
    [1, 0.8427007929497149, 0.15729920705028513],
    [1.5, 0.9661051464753108, 0.033894853524689274],
    [2, 0.9953222650189527, 0.004677734981047265],
    [2.5, 0.999593047982555, 0.0004069520174449589],
    [2.99, 0.9999764743969194, 2.3525603080640195e-5],
    [3, 0.9999779095030014, 2.2090496998585438e-5],
    [3.5, 0.9999992569016276, 7.430983723414128e-7],
    [4, 0.9999999845827421, 1.541725790028002e-8],
    [5, 0.9999999999984626, 1.5374597944280351e-12],
    [-0.3, -0.3286267594591274, 1.3286267594591274],
    [-3, -0.9999779095030014, 1.9999779095030015],
    [-4.5, -0.9999999998033839, 1.999999999803384],
  ];

  it('matches reference values to 1e-12 absolute', () => {
    for (const [x, e, ec] of table) {
      expect(Math.abs(erf(x) - e)).toBeLessThan(1e-12);
      expect(Math.abs(erfc(x) - ec)).toBeLessThan(1e-12);
    }
    expect(erf(0)).toBe(0);
    expect(erf(40)).toBe(1);
    expect(erf(-40)).toBe(-1);
    expect(Number.isNaN(erf(NaN))).toBe(true);
  });

  it('named points from the spec', () => {
    expect(Math.abs(erf(0.5) - 0.5204998778130465)).toBeLessThan(1e-12);
    expect(Math.abs(erf(1) - 0.8427007929497149)).toBeLessThan(1e-12);
    expect(Math.abs(erf(2) - 0.9953222650189527)).toBeLessThan(1e-12);
    expect(Math.abs(erf(-3) - -0.9999779095030014)).toBeLessThan(1e-12);
  });

  it('erfc keeps relative accuracy in the tail', () => {
    const tail: [number, number][] = [
      [5, 1.5374597944280351e-12],
      [6, 2.1519736712498916e-17],
      [8, 1.1224297172982928e-29],
      [10, 2.088487583762545e-45],
    ];
    for (const [x, e] of tail) expect(Math.abs(erfc(x) / e - 1)).toBeLessThan(1e-13);
  });

  it('is odd and smooth across the series / continued-fraction switch at 3', () => {
    for (const x of [0.01, 0.7, 1.9, 2.999999, 3.000001, 4.2]) expect(erf(-x)).toBe(-erf(x));
    // The jump across x = 3 must be what the slope erf'(3) = 2/sqrt(pi) e^-9 predicts.
    const d = 1e-9;
    const slope = (2 / Math.sqrt(Math.PI)) * Math.exp(-9);
    expect(Math.abs(erf(3 + d) - erf(3 - d) - 2 * d * slope)).toBeLessThan(1e-15);
  });
});

describe('unary ops', () => {
  it('basic math', () => {
    expect(arr(neg(v([1, -2])))).toEqual([-1, 2]);
    expect(arr(exp(v([0, 1])))).toEqual([1, Math.E]);
    expect(arr(log(v([1, Math.E])))).toEqual([0, 1]);
    expect(arr(sqrt(v([4, 9])))).toEqual([2, 3]);
    expect(arr(rsqrt(v([4, 0.25])))).toEqual([0.5, 2]);
    expect(arr(abs(v([-3, 2])))).toEqual([3, 2]);
    expect(arr(sin(v([0, Math.PI / 2])))).toEqual([0, 1]);
    expect(arr(cos(v([0])))).toEqual([1]);
    expect(arr(tanh(v([0])))).toEqual([0]);
    expect(arr(powScalar(v([2, 3]), 3))).toEqual([8, 27]);
    expect(arr(powScalar(v([4]), 0.5))).toEqual([2]);
  });

  it('sigmoid is stable for large |x|', () => {
    const s = sigmoid(v([0, 1, -1000, 1000, -30]));
    expect(s.data[0]).toBe(0.5);
    expect(s.data[1]).toBeCloseTo(1 / (1 + Math.exp(-1)), 15);
    expect(s.data[2]).toBe(0);
    expect(s.data[3]).toBe(1);
    expect(s.data[4] / Math.exp(-30)).toBeCloseTo(1, 12);
  });

  it('relu, silu', () => {
    expect(arr(relu(v([-1, 0, 2])))).toEqual([0, 0, 2]);
    expect(Number.isNaN(relu(v([NaN])).data[0])).toBe(true);
    const s = silu(v([1, -2]));
    expect(s.data[0]).toBeCloseTo(1 / (1 + Math.exp(-1)), 15);
    expect(s.data[1]).toBeCloseTo(-2 / (1 + Math.exp(2)), 15);
  });

  it('gelu (exact) against erf-based reference values', () => {
    // 0.5 x erfc(-x/sqrt2) computed in CPython.
    const cases: [number, number][] = [
      [-10, -7.619853024160593e-23],
      [-5, -1.4332578593959731e-6],
      [-1, -0.15865525393145707],
      [0.5, 0.34573123063700656],
      [3, 2.99595030590511],
    ];
    const g = gelu(v(cases.map((c) => c[0])));
    cases.forEach(([, e], i) => expect(Math.abs(g.data[i] / e - 1)).toBeLessThan(1e-12));
    expect(gelu(v([0])).data[0]).toBe(0);
  });

  it('gelu tanh approximation', () => {
    const x = 0.7;
    const expected = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    expect(geluTanh(v([x])).data[0]).toBe(expected);
    // The approximation is within ~1e-3 of the exact GELU.
    const xs = v([-3, -1, -0.2, 0.4, 2]);
    const diff = sub(gelu(xs), geluTanh(xs));
    for (const d of diff.data) expect(Math.abs(d)).toBeLessThan(1e-3);
  });

  it('clamp', () => {
    expect(arr(clamp(v([-2, 0.5, 3]), -1, 1))).toEqual([-1, 0.5, 1]);
    expect(arr(clamp(v([-2, 3]), undefined, 1))).toEqual([-2, 1]);
    expect(Number.isNaN(clamp(v([NaN]), 0, 1).data[0])).toBe(true);
  });
});

describe('binary ops', () => {
  const a = nd([1, 2, 3, 4, 5, 6], [2, 3]);
  const row = nd([10, 20, 30], [3]);
  const col = nd([100, 200], [2, 1]);

  it('broadcast add/sub/mul/div', () => {
    expect(ndToNested(add(a, row))).toEqual([
      [11, 22, 33],
      [14, 25, 36],
    ]);
    expect(ndToNested(sub(a, col))).toEqual([
      [-99, -98, -97],
      [-196, -195, -194],
    ]);
    expect(ndToNested(mul(col, row))).toEqual([
      [1000, 2000, 3000],
      [2000, 4000, 6000],
    ]);
    expect(ndToNested(div(a, nd([2], [])))).toEqual([
      [0.5, 1, 1.5],
      [2, 2.5, 3],
    ]);
  });

  it('maximum/minimum propagate NaN', () => {
    const x = v([1, 5, NaN]);
    const y = v([3, 2, 0]);
    expect(arr(maximum(x, y)).slice(0, 2)).toEqual([3, 5]);
    expect(arr(minimum(x, y)).slice(0, 2)).toEqual([1, 2]);
    expect(Number.isNaN(maximum(x, y).data[2])).toBe(true);
  });

  it('comparisons return 0/1', () => {
    const x = v([1, 2, 3]);
    const y = v([2, 2, 2]);
    expect(arr(eq(x, y))).toEqual([0, 1, 0]);
    expect(arr(ne(x, y))).toEqual([1, 0, 1]);
    expect(arr(lt(x, y))).toEqual([1, 0, 0]);
    expect(arr(le(x, y))).toEqual([1, 1, 0]);
    expect(arr(gt(x, y))).toEqual([0, 0, 1]);
    expect(arr(ge(x, y))).toEqual([0, 1, 1]);
    expect(arr(eq(v([NaN]), v([NaN])))).toEqual([0]);
  });

  it('where broadcasts all three operands', () => {
    const cond = nd([1, 0, 1], [3]);
    const out = where(cond, a, col);
    expect(ndToNested(out)).toEqual([
      [1, 100, 3],
      [4, 200, 6],
    ]);
  });

  it('throws on incompatible shapes, naming both', () => {
    expect(() => add(a, v([1, 2]))).toThrow(/\[2, 3\] and \[2\]/);
  });
});
