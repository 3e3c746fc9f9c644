/**
 * Elementwise ops in float64: unary maps, broadcasting binary ops, where, comparisons.
 */
import { type NDArray, broadcastShapes, broadcastStrides, forEachIndex, ndZeros } from './ndarray.js';

/** Applies `f` to every element. */
export function map(x: NDArray, f: (v: number) => number): NDArray {
  const out = ndZeros(x.shape);
  for (let i = 0; i < x.data.length; i++) out.data[i] = f(x.data[i]);
  return out;
}

/** Broadcasting binary op (NumPy rules). */
export function map2(a: NDArray, b: NDArray, f: (x: number, y: number) => number): NDArray {
  const shape = broadcastShapes(a.shape, b.shape);
  const out = ndZeros(shape);
  forEachIndex(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)], (i, [ia, ib]) => {
    out.data[i] = f(a.data[ia], b.data[ib]);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// erf / erfc to ~1e-15 absolute (and full relative accuracy of erfc in the tail, which keeps
// gelu(x) accurate for very negative x).

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * erf(x) for |x| <= 3 via the everywhere-positive series
 *   erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n (2x^2)^n * x / (1*3*5*...*(2n+1)).
 * All terms have the same sign, so there is no cancellation (unlike the Taylor series).
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 500; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/**
 * erfc(x) for x >= 3 via the continued fraction
 *   erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
 * evaluated with the modified Lentz algorithm.
 */
function erfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 1000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    d = 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  // The continued fraction would compute Inf/Inf at the infinities.
  if (x === Infinity) return 0;
  if (x === -Infinity) return 2;
  if (x >= 3) return erfcContinuedFraction(x);
  if (x <= -3) return 2 - erfcContinuedFraction(-x);
  return 1 - erfSeries(x);
}

export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (Math.abs(x) < 3) return erfSeries(x);
  const tail = erfcContinuedFraction(Math.abs(x));
  return x > 0 ? 1 - tail : tail - 1;
}

// ---------------------------------------------------------------------------------------------
// Scalar definitions (exported so tests and other oracles can use the exact same formulas).

/** Numerically stable logistic: never evaluates exp of a large positive number. */
export function sigmoidScalar(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

/** Exact GELU: x * Phi(x) = 0.5 x erfc(-x / sqrt 2) (erfc form keeps the negative tail accurate). */
export function geluScalar(v: number): number {
  return 0.5 * v * erfc(-v / Math.SQRT2);
}

/** GELU, tanh approximation (PyTorch approximate='tanh'). */
export function geluTanhScalar(v: number): number {
  const k = Math.sqrt(2 / Math.PI);
  return 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v * v * v)));
}

// ---------------------------------------------------------------------------------------------
// Unary ops.

export const neg = (x: NDArray): NDArray => map(x, (v) => -v);
export const exp = (x: NDArray): NDArray => map(x, Math.exp);
export const log = (x: NDArray): NDArray => map(x, Math.log);
export const sqrt = (x: NDArray): NDArray => map(x, Math.sqrt);
export const rsqrt = (x: NDArray): NDArray => map(x, (v) => 1 / Math.sqrt(v));
export const abs = (x: NDArray): NDArray => map(x, Math.abs);
export const sin = (x: NDArray): NDArray => map(x, Math.sin);
export const cos = (x: NDArray): NDArray => map(x, Math.cos);
export const tanh = (x: NDArray): NDArray => map(x, Math.tanh);
export const sigmoid = (x: NDArray): NDArray => map(x, sigmoidScalar);
/** relu(NaN) = NaN, as in PyTorch. */
export const relu = (x: NDArray): NDArray => map(x, (v) => (v > 0 || Number.isNaN(v) ? v : 0));
export const silu = (x: NDArray): NDArray => map(x, (v) => v * sigmoidScalar(v));
export const gelu = (x: NDArray): NDArray => map(x, geluScalar);
export const geluTanh = (x: NDArray): NDArray => map(x, geluTanhScalar);
export const erfArray = (x: NDArray): NDArray => map(x, erf);
export const square = (x: NDArray): NDArray => map(x, (v) => v * v);
export const powScalar = (x: NDArray, p: number): NDArray => map(x, (v) => v ** p);
export const mulScalar = (x: NDArray, s: number): NDArray => map(x, (v) => v * s);
export const addScalar = (x: NDArray, s: number): NDArray => map(x, (v) => v + s);

/** torch.clamp: min(max(x, lo), hi); NaN stays NaN. Either bound may be omitted. */
export function clamp(x: NDArray, lo?: number, hi?: number): NDArray {
  return map(x, (v) => {
    if (Number.isNaN(v)) return v;
    if (lo !== undefined && v < lo) v = lo;
    if (hi !== undefined && v > hi) v = hi;
    return v;
  });
}

// ---------------------------------------------------------------------------------------------
// Binary ops (broadcasting).

export const add = (a: NDArray, b: NDArray): NDArray => map2(a, b, (x, y) => x + y);
export const sub = (a: NDArray, b: NDArray): NDArray => map2(a, b, (x, y) => x - y);
export const mul = (a: NDArray, b: NDArray): NDArray => map2(a, b, (x, y) => x * y);
export const div = (a: NDArray, b: NDArray): NDArray => map2(a, b, (x, y) => x / y);
/** torch.maximum / minimum propagate NaN; Math.max / Math.min do the same. */
export const maximum = (a: NDArray, b: NDArray): NDArray => map2(a, b, Math.max);
export const minimum = (a: NDArray, b: NDArray): NDArray => map2(a, b, Math.min);

// Comparisons return 1 for true and 0 for false (NaN compares false except in ne).
export const eq = (a: NDArray, b: NDArray): NDArray => map2(a, b, (x, y) => (x === y ? 1 : 0));
export const ne = (a: NDArray, b: NDArray): NDArray => map2(a, b, (x, y) => (x !== y ? 1 : 0));
export const lt = (a: NDArray, b: NDArray): NDArray => map2(a, b, (x, y) => (x < y ? 1 : 0));
export const le = (a: NDArray, b: NDArray): NDArray => map2(a, b, (x, y) => (x <= y ? 1 : 0));
export const gt = (a: NDArray, b: NDArray): NDArray => map2(a, b, (x, y) => (x > y ? 1 : 0));
export const ge = (a: NDArray, b: NDArray): NDArray => map2(a, b, (x, y) => (x >= y ? 1 : 0));

/** torch.where(cond, a, b) with three-way broadcasting; cond is true where nonzero. */
export function where(cond: NDArray, a: NDArray, b: NDArray): NDArray {
  const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape), b.shape);
  const out = ndZeros(shape);
  const strides = [cond.shape, a.shape, b.shape].map((s) => broadcastStrides(s, shape));
  forEachIndex(shape, strides, (i, [ic, ia, ib]) => {
    out.data[i] = cond.data[ic] !== 0 ? a.data[ia] : b.data[ib];
  });
  return out;
}
