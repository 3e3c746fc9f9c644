/** The one timing method for every engine, and the correctness check. */
import type { Prepared } from './engine.js';
import type { Expected } from './spec.js';

export interface TimingPlan {
  /** Timed repeats; the median is reported (with min and max). */
  repeats: number;
  /** Calls per repeat are chosen so that one repeat lasts about this long. */
  targetMs: number;
  /** At most this many calls per repeat. */
  maxCalls: number;
}

export interface Measured {
  /** Milliseconds per call: median, min, max over the repeats. */
  median: number;
  min: number;
  max: number;
  callsPerRepeat: number;
}

const now = () => performance.now();

/**
 * Calls per timed repeat, so that a repeat lasts about plan.targetMs. The first call (compilation,
 * allocation) has been made and waited for by the caller; when it took longer than a repeat
 * should, one call per repeat is enough and no estimate is made, else one more untimed call
 * estimates the cost of a call after warm-up.
 */
export async function callsPerRepeat(p: Prepared, plan: TimingPlan, firstCallMs = 0): Promise<number> {
  let estimate = firstCallMs;
  if (firstCallMs < plan.targetMs) {
    const t0 = now();
    await p.run();
    await p.sync();
    estimate = Math.max(now() - t0, 1e-3);
  }
  return Math.max(1, Math.min(plan.maxCalls, Math.round(plan.targetMs / estimate)));
}

/**
 * One untimed repeat of `calls` calls, after the call count is chosen and before the timed
 * repeats. The first repeat of a case is where an engine grows its buffer pool to `calls` outputs
 * in flight (new buffers, zeroed and first touched): on lavapipe the copy case's first repeat took
 * 18.5 and its second 6.6 ms per call where the next eight took 3.8–5.0, so without this the median
 * of five quick repeats measured allocation, not the kernel.
 */
export async function warmUp(p: Prepared, calls: number): Promise<void> {
  await timeRepeat(p, calls);
}

/**
 * One timed repeat, to GPU completion: starts with the GPU idle, issues `calls` calls and waits
 * for the engine to report all their work complete. Milliseconds per call.
 */
export async function timeRepeat(p: Prepared, calls: number): Promise<number> {
  await p.sync();
  const t0 = now();
  for (let i = 0; i < calls; i++) await p.run();
  await p.sync();
  return (now() - t0) / calls;
}

/** Median, min and max of repeat times (ms per call). */
export function summarize(samples: number[], calls: number): Measured {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], callsPerRepeat: calls };
}

/** All repeats of one engine back to back (the suite's runner interleaves engines instead). */
export async function measure(p: Prepared, plan: TimingPlan, firstCallMs = 0): Promise<Measured> {
  const calls = await callsPerRepeat(p, plan, firstCallMs);
  await warmUp(p, calls);
  const samples: number[] = [];
  for (let r = 0; r < plan.repeats; r++) samples.push(await timeRepeat(p, calls));
  return summarize(samples, calls);
}

export interface CheckResult {
  pass: boolean;
  /** What was compared and how far off, in one line. */
  detail: string;
}

/** max |actual − expected| over the sample against tol · max(1, max |expected|). */
export function check(actual: ArrayLike<number>, e: Expected): CheckResult {
  let worst = 0;
  let worstAt = -1;
  let scale = 1;
  for (const v of e.values) scale = Math.max(scale, Math.abs(v));
  for (let s = 0; s < e.indices.length; s++) {
    const i = e.indices[s];
    const a = actual[i];
    const err = i < actual.length && Number.isFinite(a) ? Math.abs(a - e.values[s]) : Number.POSITIVE_INFINITY;
    if (!(err <= worst)) {
      worst = err;
      worstAt = i;
    }
  }
  const bound = e.tol * scale;
  const pass = worst <= bound;
  return {
    pass,
    detail: `${e.output}: ${e.indices.length} sampled values vs float64, max error ${worst.toPrecision(3)} (bound ${bound.toPrecision(3)})${pass ? '' : ` at index ${worstAt}`}`,
  };
}
