/**
 * Deterministic pseudo-random test data (not a model of torch's RNG): the same seed always
 * gives the same numbers, on any machine.
 */
import { type NDArray, ndZeros } from './ndarray.js';

/** mulberry32: small, fast 32-bit PRNG returning floats in [0, 1). */
export function makeRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [lo, hi). */
export function ndRandUniform(shape: readonly number[], seed: number, lo = -1, hi = 1): NDArray {
  const rng = makeRng(seed);
  const out = ndZeros(shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = lo + (hi - lo) * rng();
  return out;
}

/** Standard normal values (Box-Muller). */
export function ndRandn(shape: readonly number[], seed: number, std = 1): NDArray {
  const rng = makeRng(seed);
  const out = ndZeros(shape);
  for (let i = 0; i < out.data.length; i += 2) {
    const u1 = 1 - rng(); // in (0, 1], so log is finite
    const u2 = rng();
    const r = Math.sqrt(-2 * Math.log(u1));
    out.data[i] = std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.data.length) out.data[i + 1] = std * r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
