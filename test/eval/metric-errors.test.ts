/**
 * Bad input to the metrics is an error that says what is wrong — never a number that looks
 * valid — and the reference-statistics cache round-trips exactly and refuses a mismatched key.
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { featureSet, MetricInputError } from '../../src/eval/features.js';
import { featureStats, StreamingStats } from '../../src/eval/feature-stats.js';
import { frechetDistance } from '../../src/eval/fid.js';
import { kernelInceptionDistance } from '../../src/eval/kid.js';
import { precisionRecall } from '../../src/eval/precision-recall.js';
import { loadReferenceStats, saveReferenceStats, statsCachePath, type StatsKey } from '../../src/eval/stats-cache.js';
import { randn } from '../helpers/random.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rae-stats-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const set = (count: number, dim: number, seed: number) => featureSet(Float64Array.from(randn(count * dim, seed)), count, dim);

describe('metric input errors', () => {
  it('names the count and first position of NaN/Inf features', () => {
    const a = set(10, 4, 1);
    a.data[4 * 3 + 2] = Number.NaN;
    a.data[4 * 7 + 1] = Number.POSITIVE_INFINITY;
    const b = set(10, 4, 2);
    const message = /2 non-finite feature values .*first is NaN at row 3, column 2/;
    expect(() => featureStats(a)).toThrow(message);
    expect(() => kernelInceptionDistance(a, b)).toThrow(message);
    expect(() => precisionRecall(b, a)).toThrow(/generated set: 2 non-finite/);
    const s = new StreamingStats(4);
    expect(() => s.add(a)).toThrow(MetricInputError);
    expect(s.samples).toBe(0);
  });

  it('says how many samples each metric needs', () => {
    expect(() => featureStats(set(1, 4, 3))).toThrow(/1 sample, a covariance needs at least 2/);
    expect(() => kernelInceptionDistance(set(1, 4, 3), set(5, 4, 4))).toThrow(/KID: set A has 1 sample, needs at least 2/);
    expect(() => precisionRecall(set(3, 4, 3), set(9, 4, 4))).toThrow(/real set has 3 samples, needs at least 4/);
    expect(() => kernelInceptionDistance(set(5, 4, 3), set(5, 3, 4))).toThrow(/feature sizes differ \(4 vs 3\)/);
    const few = frechetDistance(featureStats(set(3, 4, 5)), featureStats(set(30, 4, 6)));
    expect(few.warnings).toEqual([expect.stringMatching(/set A has 3 samples for 4 features/)]);
    expect(Number.isFinite(few.fid)).toBe(true);
  });

  it('FID rejects non-finite statistics', () => {
    const s = featureStats(set(8, 3, 7));
    s.sigma[4] = Number.NaN;
    expect(() => frechetDistance(s, featureStats(set(8, 3, 8)))).toThrow(/set A sigma has a non-finite value \(NaN\) at index 4/);
  });
});

describe('reference statistics cache', () => {
  const key: StatsKey = { dataset: 'cifar10/train', imageCount: 40, featureNetwork: 'test-net 6-d', weightsSha256: 'ab'.repeat(32) };

  it('round-trips mu and sigma exactly, keyed by data set and network', () => {
    const stats = featureStats(set(40, 6, 9));
    const file = statsCachePath(dir, key);
    expect(path.basename(file)).toMatch(/^train-[0-9a-f]{16}\.stats\.safetensors$/);
    expect(statsCachePath(dir, { ...key, weightsSha256: 'cd'.repeat(32) })).not.toBe(file);
    expect(loadReferenceStats(file, key)).toBeUndefined();
    saveReferenceStats(file, key, stats);
    const back = loadReferenceStats(file, key);
    expect(back?.mu).toEqual(stats.mu);
    expect(back?.sigma).toEqual(stats.sigma);
    expect(back?.count).toBe(40);
  });

  it('refuses a file cached for another key or with a damaged tensor', () => {
    const stats = featureStats(set(40, 6, 10));
    const file = path.join(dir, 'copied.stats.safetensors');
    saveReferenceStats(file, key, stats);
    expect(() => loadReferenceStats(file, { ...key, imageCount: 50 })).toThrow(
      /cached for .*"imageCount":40.* but asked for .*"imageCount":50/,
    );
    // Overwrite the first value of mu (the data section follows the header) with a NaN.
    const bytes = readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const muOffset = 8 + headerLength + JSON.parse(bytes.subarray(8, 8 + headerLength).toString()).mu.data_offsets[0];
    bytes.writeDoubleLE(Number.NaN, muOffset);
    writeFileSync(file, bytes);
    expect(() => loadReferenceStats(file, key)).toThrow(/tensor mu has a non-finite value \(NaN\) at index 0; delete the file/);
    expect(() => saveReferenceStats(file, { ...key, imageCount: 39 }, stats)).toThrow(/40 samples saved under a key saying 39 images/);
  });
});
