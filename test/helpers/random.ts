/**
 * The one seeded random helper of the test suite. Everything draws from mulberry32
 * (src/cpu/random.ts `makeRng`), so the same seed gives the same data on any machine, and data
 * that a float64 reference reads is exactly what the GPU got (f32 data is rounded first).
 */
import { makeRng } from '../../src/cpu/random.js';

/** Uniform float64 values in [lo, hi). */
export function randomData(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = makeRng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Normal(shift, scale²) samples (Box–Muller, one per pair of draws), rounded to f32. */
export function randn(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  const r = makeRng(seed);
  const out = new Float32Array(n);
  // 1 − r() lies in (0, 1], so the log is finite.
  for (let i = 0; i < n; i++) out[i] = shift + scale * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return out;
}

/** Uniform f32 values in [-scale, scale). */
export function uniformF32(n: number, seed: number, scale = 1): Float32Array {
  return Float32Array.from(randomData(n, seed, -scale, scale));
}

/** Integers in [0, hi). */
export function randomInts(n: number, seed: number, hi: number): Int32Array {
  const r = makeRng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * hi));
}
