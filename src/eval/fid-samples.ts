/**
 * FID straight from two feature sets, in sample space — the cheap route when the sets are
 * smaller than the feature size (every set a small machine can afford at d = 2048).
 *
 * With Xc the centred rows, Σ1 = X1cᵀX1c/(n1−1) and Σ2 = X2cᵀX2c/(n2−1). The non-zero eigenvalues
 * of Σ1^½ Σ2 Σ1^½ are those of Σ1Σ2, which are the squared singular values of
 * M = X1c·X2cᵀ / √((n1−1)(n2−1)) (n1 × n2). So tr (Σ1^½ Σ2 Σ1^½)^½ = ‖M‖_* = Σ √eig(M·Mᵀ), and
 * tr Σ is the sum of squared centred entries over (n − 1). Cost O(n1·n2·d + n³) instead of the
 * O(d³) of two d × d eigendecompositions (≈ 1 min of CPU at d = 2048, see README.md); exact —
 * no covariance is formed, so singular covariances need no special care.
 */
import { checkFinite, checkSameDim, type FeatureSet, MetricInputError } from './features.js';
import type { FidResult } from './fid.js';
import { symmetricEigen } from './symmetric-eigen.js';

/** Centred rows (float64) and their mean. */
function centred(s: FeatureSet): { x: Float64Array; mu: Float64Array } {
  const { count: n, dim: d, data } = s;
  const mu = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) mu[j] += data[r * d + j];
  for (let j = 0; j < d; j++) mu[j] /= n;
  const x = new Float64Array(n * d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) x[r * d + j] = data[r * d + j] - mu[j];
  return { x, mu };
}

function dotRows(a: Float64Array, i: number, b: Float64Array, j: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let p = i * d;
  let q = j * d;
  const end = p + d - (d % 2);
  for (; p < end; p += 2, q += 2) {
    s0 += a[p] * b[q];
    s1 += a[p + 1] * b[q + 1];
  }
  if (d % 2) s0 += a[p] * b[q];
  return s0 + s1;
}

/** Whether the sample-space route is the cheaper one for these sizes. */
export function sampleSpaceIsCheaper(n1: number, n2: number, d: number): boolean {
  const small = Math.min(n1, n2);
  return n1 * n2 * d + small ** 3 < 2 * d ** 3;
}

export function frechetDistanceOfFeatures(a: FeatureSet, b: FeatureSet): FidResult {
  checkSameDim('FID', a, b);
  for (const [label, s] of [
    ['set A', a],
    ['set B', b],
  ] as const) {
    if (s.count < 2)
      throw new MetricInputError(`FID: ${label} has ${s.count} sample${s.count === 1 ? '' : 's'}, needs at least 2 for a covariance`);
  }
  checkFinite('FID: set A', a);
  checkFinite('FID: set B', b);
  const d = a.dim;
  const warnings: string[] = [];
  for (const [label, s] of [
    ['set A', a],
    ['set B', b],
  ] as const) {
    if (s.count < d)
      warnings.push(
        `FID: ${label} has ${s.count} samples for ${d} features: its covariance is singular (rank ≤ ${s.count - 1}) and the FID is biased upwards; use ≥ ${d} samples for figures worth comparing`,
      );
  }
  // Put the smaller set first: M·Mᵀ is then the smaller Gram matrix.
  const [p, q] = a.count <= b.count ? [a, b] : [b, a];
  const cp = centred(p);
  const cq = centred(q);
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (cp.mu[j] - cq.mu[j]) ** 2;
  const trace = (x: Float64Array, n: number) => {
    let s = 0;
    for (const v of x) s += v * v;
    return s / (n - 1);
  };
  const n1 = p.count;
  const n2 = q.count;
  const m = new Float64Array(n1 * n2);
  for (let i = 0; i < n1; i++) for (let j = 0; j < n2; j++) m[i * n2 + j] = dotRows(cp.x, i, cq.x, j, d);
  const g = new Float64Array(n1 * n1);
  for (let i = 0; i < n1; i++)
    for (let j = i; j < n1; j++) {
      const v = dotRows(m, i, m, j, n2);
      g[i * n1 + j] = v;
      g[j * n1 + i] = v;
    }
  const ev = symmetricEigen(g, n1, false).values;
  // G = M·Mᵀ squares M's singular values, so its zero eigenvalues (rank ≤ min(n1 − 1, n2 − 1, d):
  // centring always removes one) come out as ±ε·‖G‖ and their square roots as √ε·‖M‖ each — not
  // negligible. Those below λ_max·n1·ε are round-off and dropped (the same rule as fid.ts).
  const cut = Math.max(Math.abs(ev[0]), Math.abs(ev[n1 - 1])) * n1 * Number.EPSILON;
  let nuclear = 0;
  for (const v of ev) if (v > cut) nuclear += Math.sqrt(v);
  nuclear /= Math.sqrt((n1 - 1) * (n2 - 1));
  const covarianceTerm = trace(cp.x, n1) + trace(cq.x, n2) - 2 * nuclear;
  return { fid: meanTerm + covarianceTerm, meanTerm, covarianceTerm, warnings };
}
