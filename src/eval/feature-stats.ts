/**
 * Streaming mean and covariance of feature vectors in float64: batches are added as they come
 * out of the feature network, so a data set never has to be held in memory at once.
 *
 * Sums are taken around a shift (the first row seen): for features with a large common offset
 * the plain Σx·xᵀ − n·μ·μᵀ formula cancels catastrophically, the shifted one does not.
 * Only the upper triangle is accumulated (the covariance is symmetric).
 */
import { checkFinite, type FeatureSet, MetricInputError } from './features.js';

export interface GaussianStats {
  dim: number;
  /** Number of samples the statistics were computed from. */
  count: number;
  mu: Float64Array;
  /** dim × dim, row-major, unbiased (divided by count − 1, as numpy.cov does). */
  sigma: Float64Array;
}

export class StreamingStats {
  readonly dim: number;
  private count = 0;
  private shift: Float64Array | undefined;
  private readonly sum: Float64Array;
  /** Upper triangle of Σ (x − shift)(x − shift)ᵀ, stored in a full dim × dim array. */
  private readonly outer: Float64Array;
  private readonly centred: Float64Array;

  constructor(dim: number) {
    if (!Number.isSafeInteger(dim) || dim < 1) throw new MetricInputError(`feature statistics: dim must be a positive integer, got ${dim}`);
    this.dim = dim;
    this.sum = new Float64Array(dim);
    this.outer = new Float64Array(dim * dim);
    this.centred = new Float64Array(dim);
  }

  get samples(): number {
    return this.count;
  }

  /** Adds every row of a batch; rejects non-finite values before touching the sums. */
  add(batch: FeatureSet): void {
    if (batch.dim !== this.dim)
      throw new MetricInputError(`feature statistics: batch has ${batch.dim} features per row, expected ${this.dim}`);
    checkFinite(`feature statistics (rows ${this.count}…${this.count + batch.count - 1})`, batch);
    const d = this.dim;
    const x = batch.data;
    const c = this.centred;
    if (!this.shift && batch.count > 0) this.shift = Float64Array.from(x.subarray(0, d));
    const shift = this.shift as Float64Array;
    for (let r = 0; r < batch.count; r++) {
      const base = r * d;
      for (let j = 0; j < d; j++) {
        c[j] = x[base + j] - shift[j];
        this.sum[j] += c[j];
      }
      for (let i = 0; i < d; i++) {
        const ci = c[i];
        if (ci === 0) continue;
        const row = i * d;
        for (let j = i; j < d; j++) this.outer[row + j] += ci * c[j];
      }
    }
    this.count += batch.count;
  }

  /** Mean and unbiased covariance; needs at least 2 samples. */
  finish(): GaussianStats {
    const n = this.count;
    const d = this.dim;
    if (n < 2) throw new MetricInputError(`feature statistics: ${n} sample${n === 1 ? '' : 's'}, a covariance needs at least 2`);
    const shift = this.shift as Float64Array;
    const meanOffset = new Float64Array(d);
    for (let j = 0; j < d; j++) meanOffset[j] = this.sum[j] / n;
    const mu = new Float64Array(d);
    for (let j = 0; j < d; j++) mu[j] = shift[j] + meanOffset[j];
    const sigma = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = i; j < d; j++) {
        const v = (this.outer[i * d + j] - n * meanOffset[i] * meanOffset[j]) / (n - 1);
        sigma[i * d + j] = v;
        sigma[j * d + i] = v;
      }
    }
    return { dim: d, count: n, mu, sigma };
  }
}

export function featureStats(set: FeatureSet): GaussianStats {
  const s = new StreamingStats(set.dim);
  s.add(set);
  return s.finish();
}
