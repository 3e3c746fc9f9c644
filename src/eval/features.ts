/**
 * Feature sets (one row per image, row-major) and the checks every metric runs on them first:
 * a metric fed a NaN returns NaN or, worse, a plausible number, so bad features are an error
 * that says how many values are bad and where the first one is.
 */

export interface FeatureSet {
  /** Number of rows (images). */
  count: number;
  /** Features per row. */
  dim: number;
  /** count × dim values, row-major. */
  data: Float32Array | Float64Array;
}

export class MetricInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricInputError';
  }
}

export function featureSet(data: Float32Array | Float64Array, count: number, dim: number): FeatureSet {
  if (!Number.isSafeInteger(count) || count < 0 || !Number.isSafeInteger(dim) || dim < 1) {
    throw new MetricInputError(`feature set: count ${count} and dim ${dim} must be integers (count ≥ 0, dim ≥ 1)`);
  }
  if (data.length !== count * dim)
    throw new MetricInputError(`feature set: ${count}×${dim} needs ${count * dim} values, got ${data.length}`);
  return { count, dim, data };
}

/** Throws unless every value is finite; names the number of bad values and the first (row, column). */
export function checkFinite(label: string, set: FeatureSet): void {
  const { data, dim } = set;
  let bad = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad > 0) {
    const row = Math.floor(first / dim);
    throw new MetricInputError(
      `${label}: ${bad} non-finite feature value${bad === 1 ? '' : 's'} (NaN or ±Inf); the first is ${data[first]} ` +
        `at row ${row}, column ${first - row * dim} (flat index ${first})`,
    );
  }
}

export function checkCount(metric: string, label: string, set: FeatureSet, needed: number, why: string): void {
  if (set.count < needed)
    throw new MetricInputError(
      `${metric}: ${label} has ${set.count} sample${set.count === 1 ? '' : 's'}, needs at least ${needed} (${why})`,
    );
}

export function checkSameDim(metric: string, a: FeatureSet, b: FeatureSet): void {
  if (a.dim !== b.dim)
    throw new MetricInputError(`${metric}: feature sizes differ (${a.dim} vs ${b.dim}); both sets must come from the same feature network`);
}

/** Dot product of row i of a and row j of b (float64 accumulation). */
export function rowDot(a: FeatureSet, i: number, b: FeatureSet, j: number): number {
  const d = a.dim;
  const x = a.data;
  const y = b.data;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let p = i * d;
  let q = j * d;
  const end = p + d - (d % 4);
  for (; p < end; p += 4, q += 4) {
    s0 += x[p] * y[q];
    s1 += x[p + 1] * y[q + 1];
    s2 += x[p + 2] * y[q + 2];
    s3 += x[p + 3] * y[q + 3];
  }
  for (; p < i * d + d; p++, q++) s0 += x[p] * y[q];
  return s0 + s1 + s2 + s3;
}
