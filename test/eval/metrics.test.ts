/**
 * FID, KID, precision/recall and the streaming feature statistics against a float64
 * NumPy/SciPy computation (test/eval/reference_metrics.py run by Debian's /usr/bin/python3) on
 * random features this test writes. Skipped (and reported as skipped) where that Python cannot
 * import numpy and scipy.
 *
 * Tolerances (relative to the reference figure unless said otherwise; measured in brackets):
 * - statistics: 1e-12 of max|Σ| (and of the 1000 offset for μ) — float64 sums of the same
 *   products in another order;
 * - FID vs the sample-space form ‖X1c·X2cᵀ‖_* (exact even with singular covariances): 1e-11
 *   [1.2e-14 at 300×64];
 * - FID vs the eigh route and scipy.linalg.sqrtm(Σ1·Σ2) (the pytorch-fid formula): 1e-11 and
 *   1e-10 at 300×64 [1.2e-14, 1.3e-14]; with singular covariances (400×1024) 1e-6 and 1e-5:
 *   both take square roots of round-off-sized eigenvalues in the null space, which ours drops
 *   [at 500×2048: 2.6e-8 vs eigh];
 * - KID: 1e-12 absolute per subset estimate [9e-15], 1e-12 on the mean [1.7e-14], 1e-11 on the
 *   std [1.9e-14];
 * - precision and recall: exactly equal (counts; no sample sits within round-off of a boundary
 *   in these draws — a draw that did would show up as a 1/n difference, not a silent pass).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { featureSet, type FeatureSet } from '../../src/eval/features.js';
import { featureStats, StreamingStats } from '../../src/eval/feature-stats.js';
import { frechetDistance } from '../../src/eval/fid.js';
import { kernelInceptionDistance, kidSubsetIndices } from '../../src/eval/kid.js';
import { precisionRecall } from '../../src/eval/precision-recall.js';
import { randn } from '../helpers/random.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(__dirname, 'reference_metrics.py');
const hasNumpy = spawnSync(PYTHON, ['-c', 'import numpy, scipy.linalg'], { stdio: 'ignore' }).status === 0;

const dir = mkdtempSync(path.join(tmpdir(), 'rae-metrics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Gaussian features with a per-set mean shift and a few correlated columns, so FID has both terms. */
function features(count: number, dim: number, seed: number, shift: number): FeatureSet {
  const z = randn(count * dim, seed);
  const data = new Float64Array(count * dim);
  for (let r = 0; r < count; r++) {
    for (let c = 0; c < dim; c++) {
      const mix = c > 0 ? 0.5 * z[r * dim + c - 1] : 0;
      data[r * dim + c] = z[r * dim + c] + mix + shift * Math.sin(c);
    }
  }
  return featureSet(data, count, dim);
}

function write(name: string, set: FeatureSet): string {
  const file = path.join(dir, name);
  writeFileSync(file, new Uint8Array(Float64Array.from(set.data).buffer));
  return file;
}

function reference(...args: string[]): Record<string, unknown> {
  const out = execFileSync(PYTHON, [SCRIPT, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return JSON.parse(out) as Record<string, unknown>;
}

const rel = (got: number, want: number): number => Math.abs(got - want) / Math.abs(want);

describe.skipIf(!hasNumpy)('metrics vs float64 NumPy/SciPy', () => {
  it('streaming statistics equal numpy mean/cov, in any batching', () => {
    const a = features(300, 64, 1, 0.3);
    // Add a large common offset: the shifted sums must not cancel catastrophically.
    const offset = featureSet(
      a.data.map((v) => v + 1000),
      a.count,
      a.dim,
    );
    const ref = reference('fid', write('s.bin', offset), write('s2.bin', offset), '64');
    const s = new StreamingStats(64);
    for (let start = 0; start < 300; start += 77) {
      const end = Math.min(300, start + 77);
      s.add(featureSet(offset.data.subarray(start * 64, end * 64), end - start, 64));
    }
    const stats = s.finish();
    const scale = ref.sigma1_max as number;
    const mu = ref.mu1 as number[];
    const diag = ref.sigma1_diag as number[];
    const row0 = ref.sigma1_row0 as number[];
    let worst = 0;
    for (let i = 0; i < 64; i++) {
      worst = Math.max(
        worst,
        Math.abs(stats.mu[i] - mu[i]) / 1000,
        Math.abs(stats.sigma[i * 65] - diag[i]) / scale,
        Math.abs(stats.sigma[i] - row0[i]) / scale,
      );
    }
    expect(worst).toBeLessThan(1e-12);
  });

  it('FID at 300×64 matches the sample-space form, scipy sqrtm and the eigh route', () => {
    const a = features(300, 64, 2, 0);
    const b = features(300, 64, 3, 0.4);
    const ref = reference('fid', write('a.bin', a), write('b.bin', b), '64');
    const got = frechetDistance(featureStats(a), featureStats(b));
    expect(got.warnings).toEqual([]);
    expect(rel(got.fid, ref.fid_nuclear as number)).toBeLessThan(1e-11);
    expect(rel(got.fid, ref.fid_eigh as number)).toBeLessThan(1e-11);
    expect(rel(got.fid, ref.fid_sqrtm as number)).toBeLessThan(1e-10);
    expect(rel(got.meanTerm, ref.mean_term as number)).toBeLessThan(1e-12);
    // Identical sets: FID is 0 up to round-off.
    expect(Math.abs(frechetDistance(featureStats(a), featureStats(a)).fid)).toBeLessThan(1e-9);
  });

  it('FID at 400×1024 (fewer samples than features: singular covariances) matches and warns', () => {
    const a = features(400, 1024, 4, 0);
    const b = features(400, 1024, 5, 0.2);
    const ref = reference('fid', write('a1k.bin', a), write('b1k.bin', b), '1024');
    const got = frechetDistance(featureStats(a), featureStats(b));
    expect(got.warnings.length).toBe(2);
    expect(got.warnings[0]).toMatch(/400 samples for 1024 features/);
    expect(rel(got.fid, ref.fid_nuclear as number)).toBeLessThan(1e-11);
    // Both full-space references take square roots of round-off-sized eigenvalues of the
    // singular matrices (each ≈ √(ε·‖Σ‖)), which add up over the ~600-dimensional null space.
    expect(rel(got.fid, ref.fid_eigh as number)).toBeLessThan(1e-6);
    expect(rel(got.fid, ref.fid_sqrtm as number)).toBeLessThan(1e-5);
  }, 600_000);

  it('KID (mean and std over subsets) matches a direct NumPy computation on the same subsets', () => {
    const a = features(220, 64, 6, 0);
    const b = features(180, 64, 7, 0.3);
    const options = { subsets: 20, subsetSize: 100, seed: 11 };
    const got = kernelInceptionDistance(a, b, options);
    expect(got.subsetSize).toBe(100);
    const idx = kidSubsetIndices(220, 180, 100, 20, 11);
    const flat = new Int32Array(20 * 2 * 100);
    idx.forEach(([ia, ib], s) => {
      flat.set(ia, s * 200);
      flat.set(ib, s * 200 + 100);
    });
    const idxFile = path.join(dir, 'idx.bin');
    writeFileSync(idxFile, new Uint8Array(flat.buffer));
    const ref = reference('kid', write('ka.bin', a), write('kb.bin', b), '64', idxFile, '100', '20');
    const estimates = ref.estimates as number[];
    for (let s = 0; s < 20; s++) expect(Math.abs(got.estimates[s] - estimates[s])).toBeLessThan(1e-12);
    expect(rel(got.kid, ref.kid as number)).toBeLessThan(1e-12);
    expect(rel(got.kidStd, ref.kid_std as number)).toBeLessThan(1e-11);
    // A shifted set is farther than a set from the same distribution.
    const same = kernelInceptionDistance(a, features(180, 64, 8, 0), options);
    expect(same.kid).toBeLessThan(got.kid);
  });

  it('precision and recall (k = 3) equal the NumPy k-NN computation', () => {
    const real = features(200, 32, 9, 0);
    const gen = features(240, 32, 10, 0.25);
    const ref = reference('pr', write('pa.bin', real), write('pb.bin', gen), '32', '3');
    const got = precisionRecall(real, gen, 3);
    expect(got.precision).toBe(ref.precision);
    expect(got.recall).toBe(ref.recall);
    expect(got.precision).toBeGreaterThan(0);
    expect(got.precision).toBeLessThan(1);
  });
});
