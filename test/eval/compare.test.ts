/**
 * The sample-space FID route (fid-samples.ts) against float64 NumPy (test/eval/reference_metrics.py:
 * the nuclear-norm form and the eigh route), the policy of compareFeatureSets for small and bad
 * sets, and the feature cache. Tolerances as in metrics.test.ts: 1e-11 relative to the NumPy
 * nuclear form; 1e-11 to the eigh route with full-rank covariances, 1e-6 with singular ones
 * (eigh takes square roots of round-off eigenvalues in the null space).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareFeatureSets } from '../../src/eval/compare.js';
import { featureStats } from '../../src/eval/feature-stats.js';
import { featureSet, type FeatureSet } from '../../src/eval/features.js';
import { frechetDistance } from '../../src/eval/fid.js';
import { frechetDistanceOfFeatures, sampleSpaceIsCheaper } from '../../src/eval/fid-samples.js';
import { kernelInceptionDistance } from '../../src/eval/kid.js';
import { precisionRecall } from '../../src/eval/precision-recall.js';
import { featuresCachePath, loadReferenceFeatures, saveReferenceFeatures, type StatsKey } from '../../src/eval/stats-cache.js';
import { randn } from '../helpers/random.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(__dirname, 'reference_metrics.py');
const hasNumpy = spawnSync(PYTHON, ['-c', 'import numpy, scipy.linalg'], { stdio: 'ignore' }).status === 0;
const dir = mkdtempSync(path.join(tmpdir(), 'rae-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function features(count: number, dim: number, seed: number, shift: number, offset = 0): FeatureSet {
  const z = randn(count * dim, seed);
  const data = new Float64Array(count * dim);
  for (let r = 0; r < count; r++)
    for (let c = 0; c < dim; c++)
      data[r * dim + c] = offset + z[r * dim + c] + (c > 0 ? 0.5 * z[r * dim + c - 1] : 0) + shift * Math.sin(c);
  return featureSet(data, count, dim);
}

function reference(a: FeatureSet, b: FeatureSet): Record<string, number> {
  const files = [a, b].map((s, i) => {
    const f = path.join(dir, `${i}.bin`);
    writeFileSync(f, new Uint8Array(Float64Array.from(s.data).buffer));
    return f;
  });
  return JSON.parse(execFileSync(PYTHON, [SCRIPT, 'fid', ...files, String(a.dim)], { encoding: 'utf8', maxBuffer: 1 << 28 }));
}

const rel = (got: number, want: number) => Math.abs(got - want) / Math.abs(want);

describe.skipIf(!hasNumpy)('sample-space FID vs NumPy', () => {
  it('full-rank covariances (300 vs 250 samples × 64)', () => {
    const a = features(300, 64, 21, 0);
    const b = features(250, 64, 22, 0.4);
    const ref = reference(a, b);
    const got = frechetDistanceOfFeatures(a, b);
    expect(rel(got.fid, ref.fid_nuclear)).toBeLessThan(1e-11);
    expect(rel(got.fid, ref.fid_eigh)).toBeLessThan(1e-11);
    expect(rel(got.meanTerm, ref.mean_term)).toBeLessThan(1e-12);
    expect(got.warnings).toEqual([]);
    // Symmetric in its arguments (the smaller set is put first internally).
    expect(rel(frechetDistanceOfFeatures(b, a).fid, got.fid)).toBeLessThan(1e-12);
  });

  it('singular covariances with a large common offset (40 vs 57 samples × 300)', () => {
    const a = features(40, 300, 23, 0, 50);
    const b = features(57, 300, 24, 0.3, 50);
    const ref = reference(a, b);
    const got = frechetDistanceOfFeatures(a, b);
    expect(rel(got.fid, ref.fid_nuclear)).toBeLessThan(1e-11);
    expect(rel(got.fid, ref.fid_eigh)).toBeLessThan(1e-6);
    expect(got.warnings).toHaveLength(2);
    expect(got.warnings[0]).toMatch(/set A has 40 samples for 300 features/);
    // The covariance route (checked against NumPy in metrics.test.ts) agrees.
    expect(rel(got.fid, frechetDistance(featureStats(a), featureStats(b)).fid)).toBeLessThan(1e-9);
  });
});

describe('compareFeatureSets', () => {
  it('returns the figures of the individual metrics, choosing the cheaper FID route', () => {
    const a = features(30, 16, 31, 0);
    const b = features(24, 16, 32, 0.5);
    const r = compareFeatureSets(a, b, { a: 'A', b: 'B' }, { kidSubsets: 10, seed: 3 });
    expect(sampleSpaceIsCheaper(30, 24, 16)).toBe(false);
    expect(sampleSpaceIsCheaper(30, 24, 2048)).toBe(true);
    expect(r.fid).toBe(frechetDistance(featureStats(a), featureStats(b)).fid);
    const kid = kernelInceptionDistance(a, b, { subsets: 10, seed: 3 });
    expect([r.kid, r.kidStd, r.kidSubsetSize]).toEqual([kid.kid, kid.kidStd, 24]);
    const pr = precisionRecall(a, b, 3);
    expect([r.precision, r.recall]).toEqual([pr.precision, pr.recall]);
    expect(r.counts).toEqual({ a: 30, b: 24 });
  });

  it('too few images: an error below 2, precision/recall skipped (null) below 4', () => {
    const one = features(1, 8, 33, 0);
    const three = features(3, 8, 34, 0);
    const five = features(5, 8, 35, 0);
    expect(() => compareFeatureSets(one, five, { a: 'A (x)', b: 'B' })).toThrow(
      /A \(x\) has 1 image; FID and KID need at least 2 per set \(precision\/recall 4\)/,
    );
    const r = compareFeatureSets(five, three, { a: 'A', b: 'B' }, { kidSubsets: 5 });
    expect(r.precision).toBeNull();
    expect(r.recall).toBeNull();
    expect(Number.isFinite(r.fid) && Number.isFinite(r.kid)).toBe(true);
    expect(r.warnings.join('\n')).toMatch(/precision\/recall skipped: B has 3 images; they need at least 4 per set/);
  });

  it('NaN features: one error naming the set, the count and the first position', () => {
    const a = features(6, 4, 36, 0);
    const b = features(6, 4, 37, 0);
    b.data[9] = Number.NaN;
    expect(() => compareFeatureSets(a, b, { a: 'A', b: 'samples' })).toThrow(
      /^samples features: 1 non-finite feature value \(NaN or ±Inf\); the first is NaN at row 2, column 1/,
    );
  });
});

describe('reference feature cache', () => {
  const key: StatsKey = { dataset: '/data/cifar|train|size=32', imageCount: 5, featureNetwork: 'net 4-d', weightsSha256: 'ef'.repeat(32) };

  it('round-trips features exactly and refuses another key or a NaN', () => {
    const f = features(5, 4, 38, 0);
    const data = Float32Array.from(f.data);
    const file = featuresCachePath(path.join(dir, 'cache'), key);
    expect(path.basename(file)).toMatch(/\.features\.safetensors$/);
    expect(loadReferenceFeatures(file, key)).toBeUndefined();
    saveReferenceFeatures(file, key, { count: 5, dim: 4, data });
    expect(loadReferenceFeatures(file, key)).toEqual({ count: 5, dim: 4, data });
    expect(() => loadReferenceFeatures(file, { ...key, featureNetwork: 'other' })).toThrow(/cached for .* but asked for/);
    const bytes = readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    bytes.writeFloatLE(Number.NaN, 8 + headerLength + 4 * 7);
    writeFileSync(file, bytes);
    expect(() => loadReferenceFeatures(file, key)).toThrow(/non-finite value \(NaN\) at index 7; delete the file/);
    expect(() => saveReferenceFeatures(file, { ...key, imageCount: 6 }, { count: 5, dim: 4, data })).toThrow(
      /5 images saved under a key saying 6/,
    );
  });
});
