/** Shared test set-up: one runtime per test file (each file runs in its own process). */
import { beforeAll } from 'vitest';
import { init } from '../../src/gpu/runtime.js';

export function useGpu(): void {
  beforeAll(async () => {
    await init();
  });
}

/** Deterministic float64 test data in [-1, 1) (or a custom range). */
export function randomData(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let s = seed >>> 0 || 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + (hi - lo) * (s / 2 ** 32);
  }
  return out;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Collects garbage and lets FinalizationRegistry callbacks run, so tensors that earlier tests
 * dropped without dispose() are released before a memory baseline is taken (otherwise the
 * safety net may release them in the middle of the measurement).
 */
export async function settleGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 0));
  }
}
