/** Shared test set-up: one runtime per test file (each file runs in its own process). */
import { beforeAll, type TestContext } from 'vitest';
import { init, runtime } from '../../src/gpu/runtime.js';

/** The one way a test file sets up the GPU: the runtime is initialised before its first test. */
export function useGpu(): void {
  beforeAll(async () => {
    await init();
  });
}

/**
 * Skips the running test — reported as skipped, not passed — when the adapter lacks a feature
 * it exercises. Call at the top of the test body (the runtime exists only once tests run).
 */
export function requireFeature(ctx: Pick<TestContext, 'skip'>, feature: 'shader-f16' | 'subgroups'): void {
  const has = feature === 'shader-f16' ? runtime().hasF16 : runtime().features.has('subgroups');
  ctx.skip(!has, `the adapter lacks ${feature}`);
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
