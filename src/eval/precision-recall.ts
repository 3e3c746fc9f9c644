/**
 * Improved precision and recall (Kynkäänniemi et al. 2019). Each set's manifold is the union of
 * balls around its samples, each ball's radius the distance to that sample's k-th nearest
 * neighbour within the set (the sample itself not counted; k = 3 by default). Precision: the
 * fraction of generated samples inside the real manifold; recall: the fraction of real samples
 * inside the generated manifold. A point on a ball's boundary counts as inside (≤), as in the
 * authors' code.
 *
 * Distances are exact float64 sums of squared differences (no ‖a‖² + ‖b‖² − 2a·b shortcut,
 * which can move a point across a boundary by round-off); comparisons are on squared distances.
 */
import { checkFinite, checkSameDim, type FeatureSet, MetricInputError } from './features.js';

export interface PrecisionRecall {
  precision: number;
  recall: number;
  k: number;
}

function squaredDistance(x: FeatureSet, i: number, y: FeatureSet, j: number): number {
  const d = x.dim;
  let s = 0;
  let p = i * d;
  let q = j * d;
  for (let c = 0; c < d; c++, p++, q++) {
    const t = x.data[p] - y.data[q];
    s += t * t;
  }
  return s;
}

/** Squared distance from every row to its k-th nearest other row of the same set. */
export function kthNeighbourRadii(set: FeatureSet, k: number): Float64Array {
  const n = set.count;
  const radii = new Float64Array(n);
  // The k smallest distances seen so far per row, ascending (k is small: insertion is cheap).
  const best = new Float64Array(n * k).fill(Number.POSITIVE_INFINITY);
  const insert = (row: number, v: number): void => {
    const base = row * k;
    if (v >= best[base + k - 1]) return;
    let p = k - 1;
    while (p > 0 && best[base + p - 1] > v) {
      best[base + p] = best[base + p - 1];
      p--;
    }
    best[base + p] = v;
  };
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = squaredDistance(set, i, set, j);
      insert(i, v);
      insert(j, v);
    }
  }
  for (let i = 0; i < n; i++) radii[i] = best[i * k + k - 1];
  return radii;
}

/** Fraction of rows of `probe` within some ball (centre row of `manifold`, squared radius). */
function coverage(probe: FeatureSet, manifold: FeatureSet, radii: Float64Array): number {
  let inside = 0;
  for (let i = 0; i < probe.count; i++) {
    for (let j = 0; j < manifold.count; j++) {
      if (squaredDistance(probe, i, manifold, j) <= radii[j]) {
        inside++;
        break;
      }
    }
  }
  return inside / probe.count;
}

export function precisionRecall(real: FeatureSet, generated: FeatureSet, k = 3): PrecisionRecall {
  if (!Number.isSafeInteger(k) || k < 1) throw new MetricInputError(`precision/recall: k must be a positive integer, got ${k}`);
  checkSameDim('precision/recall', real, generated);
  for (const [label, s] of [
    ['real set', real],
    ['generated set', generated],
  ] as const) {
    if (s.count < k + 1) {
      throw new MetricInputError(
        `precision/recall: ${label} has ${s.count} sample${s.count === 1 ? '' : 's'}, needs at least ${k + 1} (each sample's ${k}-th nearest neighbour among the others)`,
      );
    }
  }
  checkFinite('precision/recall: real set', real);
  checkFinite('precision/recall: generated set', generated);
  const realRadii = kthNeighbourRadii(real, k);
  const generatedRadii = kthNeighbourRadii(generated, k);
  return { precision: coverage(generated, real, realRadii), recall: coverage(real, generated, generatedRadii), k };
}
