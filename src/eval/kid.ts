/**
 * Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of the squared
 * maximum mean discrepancy with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³,
 * averaged over random subsets as the common implementations do (subset size
 * min(1000, |A|, |B|), 100 subsets, each drawn without replacement, independently for A and B).
 *
 * Per subset of size m (X from A, Y from B):
 *
 *     MMD²_u = Σ_{i≠j} k(xᵢ,xⱼ) / (m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ) / (m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ) / m²
 *
 * `kid` is the mean over subsets; `kidStd` is the standard deviation of the per-subset
 * estimates (population form, ddof = 0: torch-fidelity's `kernel_inception_distance_std`). It
 * measures the spread of one subset's estimate, not the standard error of the mean: subsets
 * overlap, so the mean is not an average of independent draws.
 *
 * Kernel values are read from Gram matrices of the whole sets when those fit (≤ 16M entries),
 * computed once instead of once per subset (100 subsets of 1000 from 2000 samples would
 * otherwise recompute each inner product ~75 times).
 */
import { makeRng } from '../cpu/random.js';
import { checkFinite, checkSameDim, type FeatureSet, MetricInputError, rowDot } from './features.js';

export interface KidOptions {
  /** Number of subsets (default 100). */
  subsets?: number;
  /** Largest subset size (default 1000); the size used is min(this, |A|, |B|). */
  subsetSize?: number;
  /** Seed of the subset draws (default 0), so a figure can be reproduced. */
  seed?: number;
}

export interface KidResult {
  kid: number;
  kidStd: number;
  subsets: number;
  subsetSize: number;
  /** The per-subset MMD² estimates. */
  estimates: Float64Array;
}

const GRAM_LIMIT = 16 * 1024 * 1024;

/** Row indices of each subset (without replacement within a subset): [a, b] per subset. */
export function kidSubsetIndices(
  countA: number,
  countB: number,
  size: number,
  subsets: number,
  seed: number,
): Array<[Int32Array, Int32Array]> {
  const rng = makeRng(seed);
  const draw = (n: number): Int32Array => {
    // Partial Fisher–Yates: the first `size` entries of a shuffled 0..n−1.
    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    for (let i = 0; i < size; i++) {
      const j = i + Math.floor(rng() * (n - i));
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    return perm.slice(0, size);
  };
  const out: Array<[Int32Array, Int32Array]> = [];
  for (let s = 0; s < subsets; s++) out.push([draw(countA), draw(countB)]);
  return out;
}

/** Kernel value between row i of x and row j of y, memoised in a Gram matrix when it fits. */
function kernel(x: FeatureSet, y: FeatureSet): (i: number, j: number) => number {
  const d = x.dim;
  const k = (i: number, j: number): number => (rowDot(x, i, y, j) / d + 1) ** 3;
  if (x.count * y.count > GRAM_LIMIT) return k;
  const gram = new Float64Array(x.count * y.count).fill(Number.NaN);
  return (i, j) => {
    const p = i * y.count + j;
    let v = gram[p];
    if (Number.isNaN(v)) {
      v = k(i, j);
      gram[p] = v;
    }
    return v;
  };
}

export function kernelInceptionDistance(a: FeatureSet, b: FeatureSet, options: KidOptions = {}): KidResult {
  const subsets = options.subsets ?? 100;
  const maxSize = options.subsetSize ?? 1000;
  if (!Number.isSafeInteger(subsets) || subsets < 1) throw new MetricInputError(`KID: subsets must be a positive integer, got ${subsets}`);
  if (!Number.isSafeInteger(maxSize) || maxSize < 2) throw new MetricInputError(`KID: subset size must be an integer ≥ 2, got ${maxSize}`);
  checkSameDim('KID', a, b);
  for (const [label, s] of [
    ['set A', a],
    ['set B', b],
  ] as const) {
    if (s.count < 2)
      throw new MetricInputError(
        `KID: ${label} has ${s.count} sample${s.count === 1 ? '' : 's'}, needs at least 2 (the unbiased estimate leaves out i = j pairs, so each subset needs ≥ 2)`,
      );
  }
  checkFinite('KID: set A', a);
  checkFinite('KID: set B', b);
  const m = Math.min(maxSize, a.count, b.count);
  const kaa = kernel(a, a);
  const kbb = kernel(b, b);
  const kab = kernel(a, b);
  const estimates = new Float64Array(subsets);
  const draws = kidSubsetIndices(a.count, b.count, m, subsets, options.seed ?? 0);
  draws.forEach(([ia, ib], s) => {
    let xx = 0;
    let yy = 0;
    let xy = 0;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        // The kernel is symmetric: each unordered pair counted once, doubled below.
        xx += kaa(Math.min(ia[p], ia[q]), Math.max(ia[p], ia[q]));
        yy += kbb(Math.min(ib[p], ib[q]), Math.max(ib[p], ib[q]));
      }
      for (let q = 0; q < m; q++) xy += kab(ia[p], ib[q]);
    }
    estimates[s] = (2 * (xx + yy)) / (m * (m - 1)) - (2 * xy) / (m * m);
  });
  let mean = 0;
  for (const e of estimates) mean += e;
  mean /= subsets;
  let variance = 0;
  for (const e of estimates) variance += (e - mean) ** 2;
  variance /= subsets;
  return { kid: mean, kidStd: Math.sqrt(variance), subsets, subsetSize: m, estimates };
}
