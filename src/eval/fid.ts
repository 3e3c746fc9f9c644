/**
 * Fréchet distance between two Gaussians (FID when the Gaussians are fitted to Inception
 * features):
 *
 *     ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1^½ Σ2 Σ1^½)^½
 *
 * The trace of the matrix square root is the sum of the square roots of the eigenvalues of
 * Σ1^½ Σ2 Σ1^½. With Σ1 = V Λ Vᵀ, that matrix is similar to B Σ2 Bᵀ where B = Λ^½ Vᵀ, so two
 * symmetric eigendecompositions suffice (one with vectors, one values only) and no
 * non-symmetric square root (scipy.linalg.sqrtm's Schur route, which can return complex
 * round-off) is ever formed. Eigenvalues that round-off pushed below zero (both matrices are
 * positive semi-definite) are clamped to 0; rows of B with λ = 0 are dropped, which also makes
 * the product cheaper when there are fewer samples than features.
 */
import type { GaussianStats } from './feature-stats.js';
import { MetricInputError } from './features.js';
import { symmetricEigen } from './symmetric-eigen.js';

export interface FidResult {
  fid: number;
  /** ‖μ1 − μ2‖². */
  meanTerm: number;
  /** tr Σ1 + tr Σ2 − 2 tr (Σ1^½ Σ2 Σ1^½)^½. */
  covarianceTerm: number;
  /** Warnings worth printing next to the figure (few samples for the feature size). */
  warnings: string[];
}

function checkStats(label: string, s: GaussianStats): void {
  if (s.count < 2)
    throw new MetricInputError(`FID: ${label} has ${s.count} sample${s.count === 1 ? '' : 's'}, needs at least 2 for a covariance`);
  if (s.mu.length !== s.dim || s.sigma.length !== s.dim * s.dim) {
    throw new MetricInputError(`FID: ${label} statistics have mu of ${s.mu.length} and sigma of ${s.sigma.length} values for dim ${s.dim}`);
  }
  for (const [name, arr] of [
    ['mu', s.mu],
    ['sigma', s.sigma],
  ] as const) {
    for (let i = 0; i < arr.length; i++) {
      if (!Number.isFinite(arr[i])) throw new MetricInputError(`FID: ${label} ${name} has a non-finite value (${arr[i]}) at index ${i}`);
    }
  }
}

export function frechetDistance(a: GaussianStats, b: GaussianStats): FidResult {
  checkStats('set A', a);
  checkStats('set B', b);
  if (a.dim !== b.dim) throw new MetricInputError(`FID: feature sizes differ (${a.dim} vs ${b.dim})`);
  const d = a.dim;
  const warnings: string[] = [];
  for (const [label, s] of [
    ['set A', a],
    ['set B', b],
  ] as const) {
    if (s.count < d) {
      warnings.push(
        `FID: ${label} has ${s.count} samples for ${d} features: its covariance is singular (rank ≤ ${s.count - 1}) and the FID is biased upwards; use ≥ ${d} samples for figures worth comparing`,
      );
    }
  }
  let meanTerm = 0;
  for (let i = 0; i < d; i++) meanTerm += (a.mu[i] - b.mu[i]) ** 2;
  let traceA = 0;
  let traceB = 0;
  for (let i = 0; i < d; i++) {
    traceA += a.sigma[i * d + i];
    traceB += b.sigma[i * d + i];
  }
  const traceSqrt = traceSqrtProduct(a.sigma, b.sigma, d);
  const covarianceTerm = traceA + traceB - 2 * traceSqrt;
  return { fid: meanTerm + covarianceTerm, meanTerm, covarianceTerm, warnings };
}

/** tr (S1^½ S2 S1^½)^½ for symmetric positive semi-definite S1, S2 (d × d, row-major). */
export function traceSqrtProduct(s1: Float64Array, s2: Float64Array, d: number): number {
  const { values, vectors } = symmetricEigen(s1, d, true);
  const v = vectors as Float64Array;
  const largest = Math.max(Math.abs(values[0]), Math.abs(values[d - 1]));
  // Rows with λ ≤ 0 (or round-off-sized) add nothing to B; keeping them only costs time.
  const keep: number[] = [];
  for (let i = 0; i < d; i++) if (values[i] > largest * d * Number.EPSILON) keep.push(i);
  const r = keep.length;
  if (r === 0) return 0;
  // B (r × d): row k = sqrt(λ) · eigenvector.
  const bm = new Float64Array(r * d);
  keep.forEach((i, k) => {
    const s = Math.sqrt(values[i]);
    for (let j = 0; j < d; j++) bm[k * d + j] = s * v[i * d + j];
  });
  // T = B · S2 (r × d), row by row as a sum of S2's rows, so every inner loop is contiguous.
  const t = new Float64Array(r * d);
  for (let k = 0; k < r; k++) {
    const tk = k * d;
    for (let j = 0; j < d; j++) {
      const bkj = bm[k * d + j];
      if (bkj === 0) continue;
      const sj = j * d;
      for (let c = 0; c < d; c++) t[tk + c] += bkj * s2[sj + c];
    }
  }
  // M = T · Bᵀ (r × r), symmetric: compute the upper triangle as row dot products.
  const m = new Float64Array(r * r);
  for (let i = 0; i < r; i++) {
    for (let j = i; j < r; j++) {
      let s = 0;
      const ti = i * d;
      const bj = j * d;
      for (let c = 0; c < d; c++) s += t[ti + c] * bm[bj + c];
      m[i * r + j] = s;
    }
  }
  // T·Bᵀ is symmetric only up to round-off: mirror the computed upper triangle.
  for (let i = 0; i < r; i++) for (let j = i + 1; j < r; j++) m[j * r + i] = m[i * r + j];
  const mu = symmetricEigen(m, r, false).values;
  let trace = 0;
  for (let i = 0; i < r; i++) if (mu[i] > 0) trace += Math.sqrt(mu[i]);
  return trace;
}
