/**
 * All the figures comparing two feature sets — FID, KID (mean and spread over subsets),
 * precision and recall (k = 3) — with one policy for sets that are too small:
 *
 * - fewer than 2 images in a set: an error (no metric is defined: a covariance and the unbiased
 *   MMD² both need 2), saying how many are needed and how many there are;
 * - 2 or 3 images: FID and KID are computed; precision/recall (which need k + 1 = 4) are skipped
 *   with a warning and reported as null — never as a number that looks valid.
 *
 * FID takes the sample-space route when it is cheaper (sets smaller than the feature size, the
 * usual case here), otherwise the covariance route; both are checked against NumPy.
 */
import { featureStats } from './feature-stats.js';
import { checkFinite, checkSameDim, type FeatureSet, MetricInputError } from './features.js';
import { frechetDistance } from './fid.js';
import { frechetDistanceOfFeatures, sampleSpaceIsCheaper } from './fid-samples.js';
import { kernelInceptionDistance } from './kid.js';
import { precisionRecall } from './precision-recall.js';

export const PR_K = 3;

export interface SetComparison {
  fid: number;
  kid: number;
  kidStd: number;
  /** Null when a set has fewer than k + 1 images (see warnings). */
  precision: number | null;
  recall: number | null;
  k: number;
  kidSubsets: number;
  kidSubsetSize: number;
  counts: { a: number; b: number };
  warnings: string[];
}

export interface CompareOptions {
  /** KID subsets (default 100). */
  kidSubsets?: number;
  /** KID subset size cap (default 1000). */
  kidSubsetSize?: number;
  seed?: number;
}

/** `a` plays the real / reference set and `b` the generated one for precision and recall. */
export function compareFeatureSets(
  a: FeatureSet,
  b: FeatureSet,
  labels: { a: string; b: string },
  opts: CompareOptions = {},
): SetComparison {
  checkSameDim('metrics', a, b);
  for (const [label, s] of [
    [labels.a, a],
    [labels.b, b],
  ] as const) {
    if (s.count < 2)
      throw new MetricInputError(
        `${label} has ${s.count} image${s.count === 1 ? '' : 's'}; FID and KID need at least 2 per set (precision/recall ${PR_K + 1})`,
      );
  }
  // One clear line for NaN features before any metric runs (each would report it in its own words).
  checkFinite(`${labels.a} features`, a);
  checkFinite(`${labels.b} features`, b);
  const warnings: string[] = [];
  const fid = sampleSpaceIsCheaper(a.count, b.count, a.dim)
    ? frechetDistanceOfFeatures(a, b)
    : frechetDistance(featureStats(a), featureStats(b));
  warnings.push(...fid.warnings.map((w) => w.replace('set A', labels.a).replace('set B', labels.b)));
  const kid = kernelInceptionDistance(a, b, { subsets: opts.kidSubsets, subsetSize: opts.kidSubsetSize, seed: opts.seed });
  let precision: number | null = null;
  let recall: number | null = null;
  const small = [labels.a, labels.b].filter((_, i) => [a, b][i].count < PR_K + 1);
  if (small.length) {
    warnings.push(
      `precision/recall skipped: ${small.map((l) => `${l} has ${l === labels.a ? a.count : b.count} images`).join(', ')}; they need at least ${PR_K + 1} per set (k = ${PR_K} neighbours)`,
    );
  } else {
    const pr = precisionRecall(a, b, PR_K);
    precision = pr.precision;
    recall = pr.recall;
  }
  if (kid.subsetSize < 50)
    warnings.push(
      `KID: subsets of ${kid.subsetSize} images; the estimate is noisy (see kidStd), use more images for figures worth comparing`,
    );
  return {
    fid: fid.fid,
    kid: kid.kid,
    kidStd: kid.kidStd,
    precision,
    recall,
    k: PR_K,
    kidSubsets: kid.subsets,
    kidSubsetSize: kid.subsetSize,
    counts: { a: a.count, b: b.count },
    warnings,
  };
}
