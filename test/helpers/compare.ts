/**
 * The one comparison helper of the test suite and its tolerance policy.
 *
 * Every GPU-vs-reference check goes through `expectAllclose` (or `allclose` where a test wants
 * the report instead of a throw): element i passes when
 *
 *     |got_i − want_i| ≤ atol·scale + rtol·|want_i|
 *
 * (numpy.allclose, with NaN positions and infinities required to match), and a failure names
 * the worst element — its index (multi-index when a shape is given), got, want and error — and
 * how many elements failed.
 *
 * Tolerance policy: one entry per dtype and op family. `scale` is what the absolute term is
 * relative to: 1, max|want| (the tensor's own scale, so a few tiny elements cannot dominate), or a
 * scale the test computes from its operands (written in the table) because the rounding error of
 * a sum grows with the size of its terms, not of its result.
 *
 * | family          | atol  | rtol  | scale of atol           | why                                              |
 * |-----------------|-------|-------|-------------------------|--------------------------------------------------|
 * | exact           | 0     | 0     | 1                       | copies, gathers, max/min, compares, selects      |
 * | f32Elementwise  | 1e-6  | 1e-5  | 1                       | one f32 op: ≤ a few ulp (2⁻²³ ≈ 1.2e-7 rel) plus |
 * |                 |       |       |                         | erf's 1.2e-7 fit; measured ≤ 1.2e-6 abs, 2.8e-6  |
 * |                 |       |       |                         | rel (test/kernels/elementwise.test.ts, per op)   |
 * | gather          | 1e-6  | 1e-6  | 1                       | copies are exact; backward adds a few repeats     |
 * | f32Reduction    | 2e-6  | 1e-6  | max Σ|x| over outputs   | pairwise f32 sum: error ∝ Σ|x|·2⁻²⁴·log n         |
 * | matmul          | 1e-6  | 1e-5  | √K · max|want|          | K-term f32 dot: error grows like √K·2⁻²⁴          |
 * | attention       | 1e-5  | 1e-4  | 1                       | softmax + two dots over ≤ 1024 keys, O(1) values |
 * | attentionLarge… | 1e-4  | 1e-4  | 1                       | scores to ±200: their f32 error (≈ |s|·2⁻²³,      |
 * |   …Scores       |       |       |                         | 1e-5 at 200) enters p = exp(s − m) directly      |
 * | norm            | 1e-5  | 1e-5  | max|want|               | forward y: a mean and a variance over D, then one |
 * |                 |       |       |                         | scale (statistics, gradients: derived bounds)    |
 * | resample        | 1e-5  | 0     | max|want|               | ≤ 7 f32 taps per axis; the oracle takes PyTorch's |
 * |                 |       |       |                         | f32 coordinates and weights (float32Coords)      |
 * | softmax         | 1e-7  | 2e-5  | 1                       | exp is a few ulp, the row sum ≤ C·2⁻²⁴ relative   |
 * | optimizer       | 1e-7  | 1e-5  | 1                       | a handful of f32 ops per element; atol for ≈ 0    |
 * | f16             | 2e-3  | 1e-2  | 1                       | one f16 rounding is 2⁻¹¹ ≈ 4.9e-4 relative        |
 * | finiteDiff      | 1e-4  | 1e-3  | 1                       | f32 gradient vs float64 central differences      |
 * | modelForward    | 1e-4  | 0     | max|want|               | a whole network in f32 vs PyTorch f32 (golden)   |
 * | modelGradient   | 1e-3  | 0     | max|want|               | its backward: longer f32 chains, more cancelling |
 * |                 |       |       |                         | (gradients that are exactly 0: golden.ts,        |
 * |                 |       |       |                         | 1e-5 of the matching weight's gradient scale)    |
 *
 * A test may only tighten its family's entry (`tighten`: a smaller atol and/or rtol, e.g. where
 * it measured a lower error or its header promises less); `expectAllclose` refuses an override
 * that is looser than the policy. Kernels whose error has a different *shape* (norms: the size
 * of the terms that cancel; softmax: 1 + |logsumexp|; sums: Σ|x|) pass `derived({ atol, rtol })`
 * and state the derivation in their file header — grep `derived(` to list them all.
 */
import { compareArrays, type CompareResult } from '../../src/cpu/allclose.js';
import { toArray } from '../../src/tensor/creation.js';
import type { Tensor } from '../../src/tensor/tensor.js';

export interface Tolerance {
  atol: number;
  rtol: number;
  /** What atol is multiplied by: 1, max|want|, or a scale the caller passes (see the table). */
  atolScale: 'one' | 'maxWant' | 'caller';
}

/** A bound derived in the test file's header (see above), absolute atol + rtol·|want|. */
export function derived(t: { atol: number; rtol: number }): Tolerance {
  return { atol: t.atol, rtol: t.rtol, atolScale: 'one' };
}

export const TOL = {
  exact: { atol: 0, rtol: 0, atolScale: 'one' },
  f32Elementwise: { atol: 1e-6, rtol: 1e-5, atolScale: 'one' },
  gather: { atol: 1e-6, rtol: 1e-6, atolScale: 'one' },
  f32Reduction: { atol: 2e-6, rtol: 1e-6, atolScale: 'caller' },
  matmul: { atol: 1e-6, rtol: 1e-5, atolScale: 'caller' },
  attention: { atol: 1e-5, rtol: 1e-4, atolScale: 'one' },
  attentionLargeScores: { atol: 1e-4, rtol: 1e-4, atolScale: 'one' },
  norm: { atol: 1e-5, rtol: 1e-5, atolScale: 'maxWant' },
  resample: { atol: 1e-5, rtol: 0, atolScale: 'maxWant' },
  softmax: { atol: 1e-7, rtol: 2e-5, atolScale: 'one' },
  optimizer: { atol: 1e-7, rtol: 1e-5, atolScale: 'one' },
  f16: { atol: 2e-3, rtol: 1e-2, atolScale: 'one' },
  finiteDiff: { atol: 1e-4, rtol: 1e-3, atolScale: 'one' },
  modelForward: { atol: 1e-4, rtol: 0, atolScale: 'maxWant' },
  modelGradient: { atol: 1e-3, rtol: 0, atolScale: 'maxWant' },
} as const satisfies Record<string, Tolerance>;

export interface CloseOptions {
  label?: string;
  /** Reports the worst element by multi-index. */
  shape?: readonly number[];
  /** The atol scale, required (and only allowed) for families whose atolScale is 'caller'. */
  scale?: number;
  /** Tighter values than the family's (never looser: that throws). */
  tighten?: { atol?: number; rtol?: number };
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** The (atol, rtol) a check of family `tol` applies to `want`, after tightening. */
export function resolveTolerance(tol: Tolerance, want: ArrayLike<number>, opts: CloseOptions = {}): { atol: number; rtol: number } {
  const t = opts.tighten ?? {};
  if ((t.atol ?? 0) > tol.atol || (t.rtol ?? 0) > tol.rtol) {
    throw new Error(
      `${opts.label ?? 'allclose'}: tolerance override ${JSON.stringify(t)} is looser than the policy's ${JSON.stringify(tol)}`,
    );
  }
  if ((tol.atolScale === 'caller') !== (opts.scale !== undefined)) {
    throw new Error(`${opts.label ?? 'allclose'}: a scale must be given exactly when the family's atol scale is the caller's`);
  }
  const scale = tol.atolScale === 'maxWant' ? maxAbs(want) : tol.atolScale === 'caller' ? opts.scale! : 1;
  return { atol: (t.atol ?? tol.atol) * scale, rtol: t.rtol ?? tol.rtol };
}

/** Compares and returns the report (never throws on a mismatch). */
export function allclose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance, opts: CloseOptions = {}): CompareResult {
  const { atol, rtol } = resolveTolerance(tol, want, opts);
  return compareArrays(got, want, { atol, rtol, shape: opts.shape, label: opts.label });
}

/** Throws, naming the worst element, unless `got` is close to `want` under `tol`. */
export function expectAllclose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance, opts: CloseOptions = {}): CompareResult {
  const r = allclose(got, want, tol, opts);
  if (!r.ok) throw new Error(r.message);
  if (process.env.SHOW_ERR) console.log(r.message);
  return r;
}

/** max |a − e| / max |e| — the models' tolerance convention, as a number to report. */
export function relByMax(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num = Math.max(num, Math.abs(actual[i] - expected[i]));
    den = Math.max(den, Math.abs(expected[i]));
  }
  return den === 0 ? num : num / den;
}

/** expectAllclose on a GPU tensor's contents. */
export async function expectTensorAllclose(
  t: Tensor,
  want: ArrayLike<number>,
  tol: Tolerance,
  opts: CloseOptions = {},
): Promise<CompareResult> {
  return expectAllclose(await toArray(t), want, tol, opts);
}
